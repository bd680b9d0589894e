"""Catalog manifests: the TOML files that name a catalog's listings and curated datasets.

A catalog is one TOML manifest: where its listings are (``[[source]]``) and a few curated datasets
(``[[dataset]]``). Shipped manifests live in ``catalogs/`` at the top of the repository (installed
as ``liberacion/catalogs/shipped``); users add or replace them with ``LIBERACION_CATALOGS`` and
``--catalogs``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liberacion.catalogs.model import (
    CATALOG_PUBLISHER,
    DATA_RANK,
    Catalog,
    Dataset,
    Distribution,
    Source,
    is_web_url,
)
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
    return [(path, level == SHIPPED) for path, level in _levelled_paths(extra_paths)]


SHIPPED, ENVIRONMENT, OPTION = "shipped", CATALOGS_ENV, "--catalogs"


def _levelled_paths(extra_paths: Sequence[Path] = ()) -> list[tuple[Path, str]]:
    """Every manifest with the level that named it (shipped, the environment, ``--catalogs``).

    A file named twice (a directory and a file in it) is read once, at its highest level.
    """
    named: list[tuple[Path, str]] = [(p, SHIPPED) for p in manifests_in(shipped_catalogs_dir())]
    for path, level in _user_paths(extra_paths):
        if path.is_dir():
            named.extend((p, level) for p in manifests_in(path))
        else:  # a missing file is reported when it is read
            named.append((path, level))
    last: dict[Path, int] = {}
    for i, (path, _level) in enumerate(named):
        last[_same_file_key(path)] = i
    return [entry for i, entry in enumerate(named) if last[_same_file_key(entry[0])] == i]


def manifests_in(directory: Path) -> list[Path]:
    """The ``*.toml`` files of a directory, as a shell's ``*.toml`` names them: not its hidden files.

    An editor keeps its lock or backup beside the file it edits (Emacs' ``.#cms.toml``, a link to
    nowhere; macOS' ``._cms.toml``): read as manifests, they broke every command while an edit was
    open, and a broken manifest whose name cannot be read stops every catalog ref.
    """
    return sorted(p for p in directory.glob("*.toml") if not p.name.startswith("."))


def _same_file_key(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:  # a path that cannot be resolved is compared as written
        return path


def _user_paths(extra_paths: Sequence[Path]) -> list[tuple[Path, str]]:
    env = os.environ.get(CATALOGS_ENV, "")
    # Each entry trimmed, as LIBERACION_HOME and LIBERACION_LAKE are: " ~/catalogs" (a space pasted
    # into a crontab) was "no such catalog manifest or directory".
    named = [(Path(p.strip()).expanduser(), ENVIRONMENT) for p in env.split(os.pathsep) if p.strip()]
    return named + [(Path(p).expanduser(), OPTION) for p in extra_paths]


def check_manifest_paths(extra_paths: Sequence[Path] = ()) -> None:
    """Raise ``ConfigError`` naming a path in ``LIBERACION_CATALOGS`` or ``extra_paths`` that does not
    exist, or a directory that holds no manifest.

    A misspelt path, or a directory of ``.yaml`` files, would otherwise leave its catalogs out
    without a word.
    """
    for path, source in _user_paths(extra_paths):
        if not path.exists():
            raise ConfigError(f"{path}: no such catalog manifest or directory (named by {source})")
        if path.is_dir() and not manifests_in(path):
            raise ConfigError(_no_manifests(path, source))


def _no_manifests(directory: Path, source: str) -> str:
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
    except OSError as err:
        return f"{directory}: cannot read the directory (named by {source}): {err.strerror or err}"
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    found = f"found: {shown}" if names else "it is empty"
    return (
        f"{directory}: no catalog manifests (*.toml) in this directory ({found}); "
        f"manifests are TOML files named *.toml (named by {source})"
    )


def load_catalogs(
    extra_paths: Sequence[Path] = (), *, problems: list[ConfigError] | None = None, cache: Path | None = None
) -> list[Catalog]:
    """Shipped manifests, then ``LIBERACION_CATALOGS``, then ``extra_paths``, sorted by name.

    A manifest that cannot be read is left out and its one-line ``ConfigError`` is appended to
    ``problems`` when given; the other catalogs still load. So is the second of two manifests
    declaring the same name at one level (two of your own files: a copy-paste mistake), while a
    higher level replaces a lower one (your manifest over a shipped one). A broken manifest takes
    its catalog with it: no manifest of a lower level (or of its own) stands in for it, as that
    would read another catalog's listings under its name. ``cache``: a JSON file of parsed
    manifests by the sha256 of their text (see ``ParsedManifests``).
    """
    parsed = ParsedManifests(cache)
    found: list[ConfigError] = []
    for path, source in _user_paths(extra_paths):  # what check_manifest_paths says in the CLI
        if path.is_dir() and not manifests_in(path):
            found.append(ConfigError(_no_manifests(path, source)))
    by_name: dict[str, tuple[Catalog, str]] = {}
    broken: dict[str, str] = {}  # catalog name -> the highest level a manifest of it is broken at
    for path, level in _levelled_paths(extra_paths):
        try:
            catalog = read_manifest(path, shipped=level == SHIPPED, parsed=parsed)
        except ConfigError as err:
            found.append(err)
            if (name := _declared_name(err, path)) is not None:
                broken[name] = level
            continue
        earlier = by_name.get(catalog.name)
        if earlier is not None and earlier[1] == level:
            found.append(_duplicate(catalog, earlier[0], level))
            continue
        by_name[catalog.name] = (catalog, level)
    parsed.save()
    if problems is not None:
        problems.extend(found)
    usable = {
        name: catalog
        for name, (catalog, level) in by_name.items()
        if name not in broken or _LEVELS.index(level) > _LEVELS.index(broken[name])
    }
    return [usable[name] for name in sorted(usable)]


_LEVELS = (SHIPPED, ENVIRONMENT, OPTION)  # lowest precedence first


def _declared_name(problem: ConfigError, path: Path) -> str | None:
    """The catalog a broken manifest declares, as a loaded catalog would be named: its ``name``
    when that could be read; for a TOML syntax error, a ``name = "..."`` line of its text, else
    the file's name (``cms.toml`` over the shipped cms is broken, not absent)."""
    declared = getattr(problem, "catalog", None)
    if declared is None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None  # a file that cannot be read declares nothing anyone can tell
        match = re.search(r"""^\s*name\s*=\s*["']([^"'\n]+)["']""", text, re.M)
        declared = match.group(1) if match else path.stem
    return sanitize_identifier(declared, fallback="c")


def _duplicate(catalog: Catalog, earlier: Catalog, level: str) -> ConfigError:
    where = "the shipped catalogs" if level == SHIPPED else level
    problem = ConfigError(
        f"{catalog.path}: catalog {catalog.name!r} is also declared by {earlier.path} (both named by {where}); "
        "rename one of them, or name only one"
    )
    problem.catalog = catalog.name  # type: ignore[attr-defined]
    return problem


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
    """The catalog named ``name``; ``ConfigError`` when a manifest that declares it, or one whose
    name cannot be read (a syntax error), could not be read: another manifest of that name must
    never stand in for it (a table would switch sources).
    """
    problems: list[ConfigError] = []
    catalogs = load_catalogs(extra_paths, problems=problems)
    for problem in problems:  # the one that names this catalog, or one whose name cannot be told
        declared = getattr(problem, "catalog", None)
        # sanitize, not safe_catalog_name: a reserved name is the problem itself, not a new crash
        if declared is None or sanitize_identifier(declared, fallback="c") == name:
            raise problem
    for catalog in catalogs:
        if catalog.name == name:
            return catalog
    known = ", ".join(c.name for c in catalogs) or "none"
    raise NotFound(f"no catalog named {name!r} (known: {known}); see: liberacion catalogs")


def manifest_problems(extra_paths: Sequence[Path] = (), *, cache: Path | None = None) -> list[ConfigError]:
    """Every manifest that cannot be used, one ``ConfigError`` each (empty when all load)."""
    problems: list[ConfigError] = []
    load_catalogs(extra_paths, problems=problems, cache=cache)
    return problems


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
        text = _manifest_text(path)
        data = (parsed or ParsedManifests(None)).parse(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such catalog manifest") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the manifest: {err.strerror or err}") from None
    except ValueError as err:  # tomllib.TOMLDecodeError, without importing tomllib for a cached manifest
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    try:
        return _catalog_from_toml(data, path, shipped=shipped)
    except (ValueError, TypeError) as err:
        problem = ConfigError(f"{path}: {err}")
        problem.catalog = data.get("name") if isinstance(data.get("name"), str) else None  # type: ignore[attr-defined]
        raise problem from None


def _manifest_text(path: Path) -> str:
    """The manifest's text. A byte-order mark (Notepad writes one) is no part of it: TOML would
    call line 1 invalid with nothing to see there. Text that is not UTF-8 is an error naming its line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: the manifest is not UTF-8 text (byte {raw[err.start]:#04x});"
            " save it as UTF-8 (TOML files are UTF-8)"
        ) from None


# The keys a manifest may hold, at each level: anything else is a typo that would be ignored.
TOP_KEYS = ("name", "title", "homepage", "publisher", "description", "source", "dataset")
SOURCE_KEYS = ("kind", "url", "socrata_domain", "rows", "max_pages")
SOURCE_OPTIONS = {"socrata_domain": ("socrata",), "rows": ("ckan",), "max_pages": ("ckan",)}
DATASET_KEYS = (
    "id", "title", "url", "urls", "source_id", "source", "format", "keys", "keywords",
    "description", "publisher", "landing_page", "columns",
)  # fmt: skip
# The type names [dataset.columns] takes: the converter's ``typing_rules.TYPE_NAMES`` (a layer
# above this one; a test keeps the two the same).
COLUMN_TYPES = (
    "string", "text", "varchar", "str", "integer", "int", "bigint", "long",
    "double", "float", "number", "real", "numeric", "decimal", "money",
    "date", "date_dmy", "date_iso", "timestamp", "datetime", "timestamp_us", "boolean", "bool", "percent",
    "date_compact", "yyyymmdd", "timestamptz", "timestamp_tz",
)  # fmt: skip
# Fetch options a manifest cannot hold: the error says where they go instead.
_NOT_IN_MANIFESTS = {
    key: "a manifest cannot choose a zip member or sheet: use liberacion fetch REF --member NAME"
    for key in ("member", "sheet")
}
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}\.)*{_LABEL}(?::\d{{1,5}})?"  # a host name or IPv4 address, with an optional port


def _catalog_from_toml(data: dict[str, Any], path: Path, *, shipped: bool) -> Catalog:
    raw_name = data.get("name")
    if raw_name is None:
        raise ValueError('missing `name` (the catalog name, e.g. name = "cms")')
    if not isinstance(raw_name, str) or not raw_name.strip():
        raise ValueError(f'`name` must be a non-empty string (e.g. name = "cms"), not {_shown(raw_name)}')
    name = safe_catalog_name(raw_name)
    _known_keys(data, TOP_KEYS, "", {"sources": "did you mean [[source]]?", "datasets": "did you mean [[dataset]]?"})
    sources = [_source(entry, i) for i, entry in enumerate(_tables(data, "source"))]
    _distinct_urls(sources)
    datasets: list[Dataset] = []
    publisher = _text(data.get("publisher"), "publisher")
    for i, entry in enumerate(_tables(data, "dataset")):
        dataset = _curated(entry, i, name, sources)
        if dataset.publisher is None and publisher is not None:
            dataset.publisher = publisher
            # The catalog's default yields to the listing's publisher; a dataset's own never does.
            dataset.extra[CATALOG_PUBLISHER] = True
        if (twin := next((d for d in datasets if d.id == dataset.id), None)) is not None:
            raise ValueError(f"[[dataset]] #{i + 1}: {_duplicate_id(twin, dataset, datasets.index(twin))}")
        same = next((d for d in datasets if d.table == dataset.table), None)
        if same is not None:  # two sources would take turns overwriting one table
            both = f"ids {same.id!r} and {dataset.id!r} both make the table {dataset.table}"
            raise ValueError(f"[[dataset]] #{i + 1}: {both}")
        datasets.append(dataset)
    _domains_used(sources, datasets)
    homepage = data.get("homepage")
    if homepage is not None:
        homepage = _web_url(homepage, "homepage")
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


def _duplicate_id(first: Dataset, second: Dataset, first_index: int) -> str:
    """Ids are made safe before they are compared (``A B`` and ``a-b`` are one id): said as written."""
    written = first.extra.get(WRITTEN_ID, first.id)
    other = "has it too" if written == first.id else f"makes it too (id = {written!r})"
    return f"duplicate id {second.id!r}: [[dataset]] #{first_index + 1} {other}; give each its own `id`"


def _known_keys(entry: dict[str, Any], allowed: Sequence[str], where: str, hints: dict[str, str] | None = None) -> None:
    """An unknown key is an error naming it, with the nearest known key when it looks like a typo."""
    import difflib

    for key in entry:
        if key in allowed:
            continue
        prefix = f"{where}: " if where else ""
        if hints and key in hints:
            hint = f" ({hints[key]})"
        elif (elsewhere := _misplaced(key, allowed)) is not None:
            hint = f" ({elsewhere})"
        else:
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(allowed)})"
        raise ValueError(f"{prefix}unknown key {key!r}{hint}")


def _misplaced(key: str, allowed: Sequence[str]) -> str | None:
    """A key of another level: TOML gives every key to the table line above it, so ``publisher``
    written below a ``[[source]]`` is that source's, and ``keys`` below ``[dataset.columns]`` a column."""
    levels = (("the catalog (the top)", TOP_KEYS), ("[[source]]", SOURCE_KEYS), ("[[dataset]]", DATASET_KEYS))
    places = [name for name, keys in levels if key in keys and keys is not allowed]
    if not places:
        return None
    return f"a key of {' or '.join(places)}: TOML gives a key to the [table] line above it, so move it there"


def _shown(value: Any) -> str:
    """A value as the manifest wrote it, for an error: ``true``, ``7``, ``"x"``, ``an array``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return str(value)


def _tables(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"`{key}` must be an array of tables: [[{key}]]")
    return value


def _text(value: Any, key: str, where: str = "") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}`{key}` must be a string, not {_shown(value)}")
    return value.strip() or None


def _source(entry: dict[str, Any], index: int) -> Source:
    where = f"[[source]] #{index + 1}"
    _known_keys(entry, SOURCE_KEYS, where)
    kind = entry.get("kind")
    if kind is None:
        raise ValueError(f"{where}: missing `kind` (one of: {', '.join(KINDS)})")
    if not isinstance(kind, str):
        raise ValueError(f"{where}: `kind` must be one of: {', '.join(KINDS)}, not {_shown(kind)}")
    if kind not in KINDS:
        raise ValueError(f"{where}: {_unknown(kind, KINDS, 'kind')}")
    if "url" not in entry:
        raise ValueError(f"{where}: missing `url` (the {kind} listing's http(s) URL)")
    url = _web_url(entry["url"], "url", where)
    where = f"{where} ({kind})"
    options = {k: v for k, v in entry.items() if k not in ("kind", "url")}
    for key in options:
        if kind not in SOURCE_OPTIONS[key]:
            raise ValueError(f"{where}: `{key}` applies to kind {' or '.join(SOURCE_OPTIONS[key])} only")
    for key in ("rows", "max_pages"):  # a bool is an int to Python, never to a reader of the manifest
        value = options.get(key)
        if key in options and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{where}: `{key}` must be a positive integer, not {_shown(value)}")
    if "socrata_domain" in options:
        options["socrata_domain"] = _socrata_domain(options["socrata_domain"], where)
    return Source(kind=kind, url=url, options=options)


def _domains_used(sources: Sequence[Source], datasets: Sequence[Dataset]) -> None:
    """A ``socrata_domain`` is read only to look up a ``source_id`` in its source: with no pointer
    that may look there, it did nothing, and a reader took it to steer ``discover``."""
    for index, source in enumerate(sources):
        if "socrata_domain" not in source.options:
            continue
        pointers = [d for d in datasets if "source_id" in d.extra]
        if not any(d.extra.get("source") in (None, source.kind, source.url) for d in pointers):
            raise ValueError(
                f"[[source]] #{index + 1} ({source.kind}): `socrata_domain` is read only to look up a [[dataset]]'s"
                " `source_id` in this source, and none looks here: remove it (discover reads the `url`)"
            )


def _distinct_urls(sources: Sequence[Source]) -> None:
    """Two [[source]] of one url (a copy-paste): the listing would be read twice, and the index,
    which keeps a listing's datasets by its url, would hold only one of the two readings."""
    first: dict[str, int] = {}
    for i, source in enumerate(sources):
        if source.url in first:
            raise ValueError(
                f"[[source]] #{i + 1}: the same `url` as [[source]] #{first[source.url] + 1} ({source.url}); "
                "a listing is read once, as one kind: remove one of them"
            )
        first[source.url] = i


def _socrata_domain(value: Any, where: str) -> str:
    """A bare host (``data.cdc.gov``, ``127.0.0.1:8765``). ``https://data.cdc.gov/`` is taken as its
    host: the scheme is always the listing's, and liberacion itself records domains with one."""
    if not isinstance(value, str):
        raise ValueError(f'{where}: `socrata_domain` must be a host name such as "data.cdc.gov", not {_shown(value)}')
    host = value.strip()
    scheme, sep, rest = host.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        host = rest
    host = host.rstrip("/")
    if not re.fullmatch(_HOST, host):
        raise ValueError(f'{where}: `socrata_domain` must be a host name such as "data.cdc.gov", not {_shown(value)}')
    return host


def _curated(entry: dict[str, Any], index: int, catalog: str, sources: Sequence[Source] = ()) -> Dataset:
    where = f"[[dataset]] #{index + 1}"
    raw_id = entry.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or not str(raw_id).strip():
        raise ValueError(f"{where}: missing `id` (it names the dataset: {catalog}/<id>)")
    dataset_id = safe_id(str(raw_id))
    where = f"{where} ({dataset_id})"
    _known_keys(entry, DATASET_KEYS, where, _NOT_IN_MANIFESTS)
    url, urls, source_id = entry.get("url"), entry.get("urls"), entry.get("source_id")
    if sum(x is not None for x in (url, urls, source_id)) != 1:
        raise ValueError(f"{where}: give exactly one of `url`, `urls` or `source_id`")
    if url is not None:
        url = _web_url(url, "url", where)
    if urls is not None:
        urls = _url_list(urls, where)
    if source_id is not None and (isinstance(source_id, bool) or not isinstance(source_id, (str, int))):
        raise ValueError(f"{where}: `source_id` must be a string, not {_shown(source_id)}")
    if isinstance(source_id, str) and not source_id.strip():  # it was looked up as an id of its own
        raise ValueError(f"{where}: `source_id` is empty: give the dataset's id in its [[source]] listing")
    if source_id is not None and not sources:  # it could only ever be "not found in no source"
        raise ValueError(
            f"{where}: `source_id` points into a [[source]] listing and this manifest has none: "
            "add the [[source]] it is listed in, or give the file's `url` instead"
        )
    columns = _columns(entry.get("columns", {}), where)
    fmt = _format(entry.get("format"), where)
    keywords = _strings(entry, "keywords", where)
    extra: dict[str, Any] = {}
    if source_id is not None:
        extra["source_id"] = str(source_id)
    if "source" in entry:
        extra["source"] = _pointer_source(entry["source"], source_id, sources, where)
    if "keys" in entry:
        extra["keys"] = _distinct(_strings(entry, "keys", where), "keys", where)
    if str(raw_id).strip() != dataset_id:
        extra[WRITTEN_ID] = str(raw_id).strip()
    landing_page = entry.get("landing_page")
    if landing_page is not None:
        landing_page = _web_url(landing_page, "landing_page", where)
    distributions = []
    for one in [url] if url is not None else urls or []:
        distributions.append(Distribution(url=one, format=fmt or normalize_format(one)))
    if urls is not None:
        extra["all_files"] = True  # the files are parts of one table (e.g. yearly or partitioned files)
    return Dataset(
        catalog=catalog,
        id=dataset_id,
        title=_text(entry.get("title"), "title", where) or dataset_id,
        distributions=distributions,
        description=_text(entry.get("description"), "description", where),
        publisher=_text(entry.get("publisher"), "publisher", where),
        keywords=keywords,
        modified=None,
        landing_page=landing_page,
        source_kind="manifest",
        format=fmt,
        columns=columns,
        extra=extra,
    )


WRITTEN_ID = "manifest_id"  # Dataset.extra: the id as the manifest wrote it, when made safe differently


def _web_url(value: Any, key: str, where: str = "") -> str:
    """An absolute http(s) URL, as written: a manifest expands nothing (``~``, ``$VARIABLES``, a path
    relative to it), and a URL that still holds ``${...}``, or a ``$`` in its host, was meant to."""
    prefix = f"{where}: " if where else ""
    if not is_web_url(value):
        shown = f", not {_shown(value)}" if value is not None else ""
        hint = ""
        if isinstance(value, str) and "://" not in value and key in ("url", "urls"):
            hint = (
                " (a manifest expands no ~, $VARIABLE or relative path; a file you have:"
                " liberacion fetch PATH --as CATALOG.TABLE)"
            )
        raise ValueError(f'{prefix}`{key}` must be an http(s) URL such as "https://data.example.gov/..."{shown}{hint}')
    url = value.strip()
    host = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0]
    if "${" in url or "$" in host:
        raise ValueError(
            f'{prefix}`{key}` = "{url}": a manifest expands no environment variables; write the URL itself'
        )
    return url


def _url_list(value: Any, where: str) -> list[str]:
    """``urls``: the files of one table, each once (a file listed twice would load its rows twice)."""
    if not isinstance(value, list) or not value:
        raise ValueError(f'{where}: `urls` must be a non-empty array of http(s) URLs, e.g. urls = ["https://..."]')
    return _distinct([_web_url(u, "urls", where) for u in value], "urls", where)


def _distinct(values: list[str], key: str, where: str) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{where}: `{key}` names {value!r} twice; list each once")
        seen.add(value)
    return values


def _strings(entry: dict[str, Any], key: str, where: str) -> list[str]:
    """An array of non-empty strings (``keys = "id"`` is not split into letters)."""
    value = entry.get(key, [])
    if isinstance(value, list) and any(isinstance(v, str) and not v.strip() for v in value):  # not "not an array"
        raise ValueError(f"{where}: `{key}` holds an empty string: remove it, or write what it stands for")
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        example = '["provider_id"]' if key == "keys" else '["hospitals"]'
        raise ValueError(f"{where}: `{key}` must be an array of strings, e.g. {key} = {example}, not {_shown(value)}")
    return [v.strip() for v in value]


def _columns(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: [dataset.columns] must map column names to type names")
    for column, type_name in value.items():
        if not column.strip():
            raise ValueError(f"{where}: [dataset.columns] has an empty column name: name a column of the file")
        valid = isinstance(type_name, str) and type_name.strip().lower() in COLUMN_TYPES
        if not valid and column in DATASET_KEYS:  # ``keys = [...]`` written below [dataset.columns]
            raise ValueError(
                f"{where}: [dataset.columns] `{column}` is a [[dataset]] key read as a column (TOML gives a key"
                f" to the [table] line above it): move `{column}` above [dataset.columns]"
            )
        if not isinstance(type_name, str):
            raise ValueError(f"{where}: [dataset.columns] `{column}` must be a type name, not {_shown(type_name)}")
        if not valid:
            raise ValueError(f"{where}: [dataset.columns] `{column}`: {_unknown(type_name, COLUMN_TYPES, 'type')}")
    return dict(value)


def _format(value: Any, where: str) -> str | None:
    fmt = _text(value, "format", where)
    if fmt is None:
        return None
    if fmt.lower() not in DATA_RANK:
        raise ValueError(f"{where}: `format`: {_unknown(fmt, tuple(DATA_RANK), 'format')}")
    return fmt.lower()


def _unknown(value: str, known: Sequence[str], what: str) -> str:
    import difflib

    close = difflib.get_close_matches(value.strip().lower(), known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(known)}"
    return f"unknown {what} {value!r} ({hint})"


def _pointer_source(value: Any, source_id: Any, sources: Sequence[Source], where: str) -> str:
    """``source``: which [[source]] (by kind or url) a ``source_id`` points into."""
    if source_id is None:
        raise ValueError(f"{where}: `source` applies only with `source_id` (it says which [[source]] to look in)")
    if not isinstance(value, str):
        raise ValueError(f"{where}: `source` must be a [[source]]'s kind or url, not {_shown(value)}")
    if not any(value in (s.kind, s.url) for s in sources):
        named = ", ".join(dict.fromkeys(s.kind for s in sources)) or "none"
        raise ValueError(f"{where}: `source = {value!r}` matches no [[source]] (kinds here: {named})")
    return value


# -- the index against the manifests now -------------------------------------------------------


def curated_fingerprint(catalog: Catalog) -> str:
    """A catalog's curated datasets as its manifest has them now. The index keeps each catalog's,
    so a reader tells a manifest edited since the index was built (``index_changes``)."""
    return _fingerprint([d.to_dict() for d in catalog.datasets])


def sources_fingerprint(catalog: Catalog) -> str:
    """A catalog's listings (``[[source]]``) as its manifest names them now."""
    return _fingerprint([[s.kind, s.url, s.options] for s in catalog.sources])


def _fingerprint(doc: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def index_changes(indexed: Any, catalogs: Sequence[Catalog]) -> dict[str, list[str]]:
    """Per loaded catalog, what its manifest says now that the index does not hold: ``datasets``
    (curated datasets added, edited, renamed or removed, or a manifest added since), ``listings``
    (its ``[[source]]`` changed: only a discover reads the new listings). ``indexed``: what the
    index recorded of each catalog's manifest (coverage.json's ``manifests``); an index from an
    older version recorded nothing, and nothing can be told."""
    if not isinstance(indexed, dict):
        return {}
    changes: dict[str, list[str]] = {}
    for catalog in catalogs:
        kept = indexed.get(catalog.name)
        if not isinstance(kept, dict):
            if catalog.datasets:
                changes[catalog.name] = ["datasets"]
            continue
        changed = []
        if kept.get("datasets") != curated_fingerprint(catalog):
            changed.append("datasets")
        if kept.get("sources") is not None and kept.get("sources") != sources_fingerprint(catalog):
            changed.append("listings")
        if changed:
            changes[catalog.name] = changed
    return changes
