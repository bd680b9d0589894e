"""Catalog manifests: the TOML files that name a catalog's listings and curated datasets.

A catalog is one TOML manifest: where its listings are (``[[source]]``) and a few curated datasets
(``[[dataset]]``). Shipped manifests live in ``catalogs/`` at the top of the repository (installed
as ``liberacion/catalogs/shipped``); users add or replace them with ``LIBERACION_CATALOGS`` and
``--catalogs``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liberacion.catalogs.model import Catalog, Dataset, Distribution, Source, is_web_url
from liberacion.errors import ConfigError, NotFound
from liberacion.files import atomic_write, read_json
from liberacion.formats import normalize_format
from liberacion.naming import safe_catalog_name, safe_id, sanitize_identifier

CATALOGS_ENV = "LIBERACION_CATALOGS"
KINDS = ("dcat-us", "socrata", "dkan", "openfda", "ckan")
_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_catalogs_dir() -> Path:
    """``liberacion/catalogs/shipped``: in a checkout, a link to ``catalogs/`` at the top."""
    inside = _PACKAGE_DIR / "shipped"
    if inside.is_dir():
        return inside
    return _PACKAGE_DIR.parent.parent / "catalogs"


def manifest_paths(extra_paths: Sequence[Path] = ()) -> list[tuple[Path, bool]]:
    """Every manifest to read, lowest precedence first, each flagged ``shipped`` or not.

    Order: shipped, then ``LIBERACION_CATALOGS`` (os.pathsep-separated), then ``extra_paths``; a later
    manifest with the same ``name`` replaces an earlier one.
    """
    found: list[tuple[Path, bool]] = [(p, True) for p in sorted(shipped_catalogs_dir().glob("*.toml"))]
    env = os.environ.get(CATALOGS_ENV, "")
    user = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    for path in [*user, *(Path(p).expanduser() for p in extra_paths)]:
        if path.is_dir():
            found.extend((p, False) for p in sorted(path.glob("*.toml")))
        else:  # a missing file is reported when it is read
            found.append((path, False))
    return found


def check_manifest_paths(extra_paths: Sequence[Path] = ()) -> None:
    """Raise ``ConfigError`` naming a path in ``LIBERACION_CATALOGS`` or ``extra_paths`` that does not exist.

    A misspelt path would otherwise leave its catalogs out without a word.
    """
    env = os.environ.get(CATALOGS_ENV, "")
    named = [(Path(p).expanduser(), CATALOGS_ENV) for p in env.split(os.pathsep) if p.strip()]
    named += [(Path(p).expanduser(), "--catalogs") for p in extra_paths]
    for path, source in named:
        if not path.exists():
            raise ConfigError(f"{path}: no such catalog manifest or directory (named by {source})")


def load_catalogs(
    extra_paths: Sequence[Path] = (), *, problems: list[ConfigError] | None = None, cache: Path | None = None
) -> list[Catalog]:
    """Shipped manifests, then ``LIBERACION_CATALOGS``, then ``extra_paths``, sorted by name.

    A manifest that cannot be read is left out and its one-line ``ConfigError`` is appended to
    ``problems`` when given; the other catalogs still load. ``cache``: a JSON file of parsed
    manifests by the sha256 of their text (see ``ParsedManifests``).
    """
    parsed = ParsedManifests(cache)
    by_name: dict[str, Catalog] = {}
    for path, shipped in manifest_paths(extra_paths):
        try:
            catalog = read_manifest(path, shipped=shipped, parsed=parsed)
        except ConfigError as err:
            if problems is not None:
                problems.append(err)
            continue
        by_name[catalog.name] = catalog
    parsed.save()
    return [by_name[name] for name in sorted(by_name)]


class ParsedManifests:
    """Manifests' TOML as parsed before, by the sha256 of their text: Python's TOML parser takes
    longer than the rest of an unchanged ``discover``. Keyed by content, so an edited manifest is
    parsed again whatever its mtime says; a damaged cache is parsed around and rewritten."""

    VERSION = 1

    def __init__(self, path: Path | None) -> None:
        self.path = path
        stored = read_json(path) if path is not None else None
        ok = (
            isinstance(stored, dict)
            and stored.get("version") == self.VERSION
            and isinstance(stored.get("by_sha"), dict)
        )
        self._stored: dict[str, Any] = stored["by_sha"] if ok else {}
        self._used: dict[str, Any] = {}
        self._changed = path is not None and not ok

    def parse(self, text: str) -> dict[str, Any]:
        import hashlib

        key = hashlib.sha256(text.encode("utf-8")).hexdigest()
        data = self._stored.get(key)
        if not isinstance(data, dict):
            import tomllib

            data = tomllib.loads(text)
            self._changed = True
        self._used[key] = data
        return data

    def save(self) -> None:
        """Keep what this load used (forgotten manifests leave the cache); written only when it changed."""
        if self.path is None or not (self._changed or self._used.keys() != self._stored.keys()):
            return
        import json

        try:  # dates and times have no JSON form: such a manifest is parsed every time
            text = json.dumps({"version": self.VERSION, "by_sha": self._used}, allow_nan=False)
        except (TypeError, ValueError):
            usable = {k: v for k, v in self._used.items() if _plain_json(v)}
            text = json.dumps({"version": self.VERSION, "by_sha": usable})
        with contextlib.suppress(OSError):  # a cache: the next run parses again
            atomic_write(self.path, text)


def find_catalog(name: str, extra_paths: Sequence[Path] = ()) -> Catalog:
    problems: list[ConfigError] = []
    catalogs = load_catalogs(extra_paths, problems=problems)
    for problem in problems:  # a broken manifest of this name must not silently fall back to another
        declared = getattr(problem, "catalog", None)
        # sanitize, not safe_catalog_name: a reserved name is the problem itself, not a new crash
        if declared is not None and sanitize_identifier(declared, fallback="c") == name:
            raise problem
    for catalog in catalogs:
        if catalog.name == name:
            return catalog
    if problems:  # the one asked for may be the broken one: say so rather than "not found"
        raise problems[0]
    known = ", ".join(c.name for c in catalogs) or "none"
    raise NotFound(f"no catalog named {name!r} (known: {known}); see: liberacion catalogs")


def _plain_json(value: Any) -> bool:
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def read_manifest(path: Path, *, shipped: bool = False, parsed: ParsedManifests | None = None) -> Catalog:
    """Parse and check one manifest; any problem is a one-line ``ConfigError`` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
        data = (parsed or ParsedManifests(None)).parse(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such catalog manifest") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the manifest: {err}") from None
    except ValueError as err:  # tomllib.TOMLDecodeError, without importing tomllib for a cached manifest
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    try:
        return _catalog_from_toml(data, path, shipped=shipped)
    except (ValueError, TypeError) as err:
        problem = ConfigError(f"{path}: {err}")
        problem.catalog = data.get("name") if isinstance(data.get("name"), str) else None  # type: ignore[attr-defined]
        raise problem from None


def _catalog_from_toml(data: dict[str, Any], path: Path, *, shipped: bool) -> Catalog:
    raw_name = data.get("name")
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise ValueError('missing `name` (the catalog name, e.g. name = "cms")')
    name = safe_catalog_name(raw_name)
    sources = [_source(entry, i) for i, entry in enumerate(_tables(data, "source"))]
    datasets: list[Dataset] = []
    publisher = _text(data.get("publisher"), "publisher")
    for i, entry in enumerate(_tables(data, "dataset")):
        dataset = _curated(entry, i, name)
        dataset.publisher = dataset.publisher or publisher
        if any(d.id == dataset.id for d in datasets):
            raise ValueError(f"[[dataset]] #{i + 1}: duplicate id {dataset.id!r}")
        datasets.append(dataset)
    homepage = data.get("homepage")
    if homepage is not None and not is_web_url(homepage):
        raise ValueError("`homepage` must be an http(s) URL")
    return Catalog(
        name=name,
        title=_text(data.get("title"), "title") or name,
        path=path,
        homepage=homepage,
        description=_text(data.get("description"), "description"),
        sources=sources,
        datasets=datasets,
        shipped=shipped,
    )


def _tables(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"`{key}` must be an array of tables: [[{key}]]")
    return value


def _text(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"`{key}` must be a string")
    return value.strip() or None


def _source(entry: dict[str, Any], index: int) -> Source:
    where = f"[[source]] #{index + 1}"
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r} (use one of: {', '.join(KINDS)})")
    url = entry.get("url")
    if not is_web_url(url):
        raise ValueError(f"{where}: `url` must be an http(s) URL")
    options = {k: v for k, v in entry.items() if k not in ("kind", "url")}
    for key in ("rows", "max_pages"):
        if key in options and (not isinstance(options[key], int) or options[key] < 1):
            raise ValueError(f"{where}: `{key}` must be a positive integer")
    return Source(kind=kind, url=url.strip(), options=options)


def _curated(entry: dict[str, Any], index: int, catalog: str) -> Dataset:
    where = f"[[dataset]] #{index + 1}"
    raw_id = entry.get("id")
    if not isinstance(raw_id, (str, int)) or not str(raw_id).strip():
        raise ValueError(f"{where}: missing `id` (it names the dataset: {catalog}/<id>)")
    dataset_id = safe_id(str(raw_id))
    url, urls, source_id = entry.get("url"), entry.get("urls"), entry.get("source_id")
    if sum(x is not None for x in (url, urls, source_id)) != 1:
        raise ValueError(f"{where} ({dataset_id}): give exactly one of `url`, `urls` or `source_id`")
    if url is not None and not is_web_url(url):
        raise ValueError(f"{where} ({dataset_id}): `url` must be an http(s) URL")
    if urls is not None and (not isinstance(urls, list) or not urls or not all(is_web_url(u) for u in urls)):
        raise ValueError(f"{where} ({dataset_id}): `urls` must be a non-empty array of http(s) URLs")
    columns = entry.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ValueError(f"{where} ({dataset_id}): [dataset.columns] must map column names to type names")
    fmt = _text(entry.get("format"), "format")
    keywords = entry.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise ValueError(f"{where} ({dataset_id}): `keywords` must be an array of strings")
    extra: dict[str, Any] = {}
    if source_id is not None:
        extra["source_id"] = str(source_id)
    for key in ("source", "keys", "member", "sheet"):
        if key in entry:
            extra[key] = entry[key]
    distributions = []
    for one in [url] if url is not None else urls or []:
        one = one.strip()
        distributions.append(Distribution(url=one, format=fmt.lower() if fmt else normalize_format(one)))
    if urls is not None:
        extra["all_files"] = True  # the files are parts of one table (e.g. yearly or partitioned files)
    return Dataset(
        catalog=catalog,
        id=dataset_id,
        title=_text(entry.get("title"), "title") or dataset_id,
        distributions=distributions,
        description=_text(entry.get("description"), "description"),
        publisher=_text(entry.get("publisher"), "publisher"),
        keywords=list(keywords),
        modified=None,
        landing_page=entry.get("landing_page") if is_web_url(entry.get("landing_page")) else None,
        source_kind="manifest",
        format=fmt.lower() if fmt else None,
        columns=dict(columns),
        extra=extra,
    )
