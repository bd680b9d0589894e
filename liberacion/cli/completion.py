"""Shell completion of table names and dataset refs (``liberacion --install-completion``).

Each TAB runs liberacion once, so these answer from what is cheapest to read: table names from
the lake's directories (no DuckDB), refs from a names file kept beside the dataset index and
written again by DuckDB only when the index is newer than it (pyarrow is never imported).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from liberacion.home import Home, resolve_home

REFS_FILE = "refs.txt"  # under index/: one "catalog/id" per line, the refs of datasets.parquet


def _home(ctx: Any) -> Home:
    """The home and lake the command line names (``--home``, ``--lake`` before the command), else the defaults."""
    option = lake = None
    while ctx is not None:
        option = ctx.params.get("home") or option
        lake = ctx.params.get("lake") or lake
        ctx = ctx.parent
    return Home(resolve_home(Path(option) if option else None), lake_uri=lake)


def _catalog_paths(ctx: Any) -> list[Path]:
    """The manifests ``--catalogs`` names on the command line (before the command)."""
    while ctx is not None:
        if ctx.params.get("catalogs"):
            return [Path(p) for p in ctx.params["catalogs"]]
        ctx = ctx.parent
    return []


def table_names(home: Home) -> list[str]:
    """Every table with a current snapshot, as SQL names it: read from the lake's directories, or
    from the embedded Iceberg catalog of a lake named by ``--lake``."""
    from liberacion.iceberg_lake import IcebergLake, open_lake
    from liberacion.snapshots import CURRENT_FILE

    try:
        lake = open_lake(home)
        if isinstance(lake, IcebergLake):  # its catalog knows the tables
            return lake.names()
        return sorted(f"{p.parent.parent.name}.{p.parent.name}" for p in home.lake.glob(f"*/*/{CURRENT_FILE}"))
    except Exception:  # a lake that cannot be read completes nothing; the command itself reports it
        return []


def refs(home: Home) -> list[str]:
    """The refs of the dataset index, from its names file (rewritten when the index is newer)."""
    index = home.index_file
    names = home.index / REFS_FILE
    try:
        built = index.stat().st_mtime_ns
    except OSError:
        return []
    try:
        if names.stat().st_mtime_ns >= built:
            return names.read_text(encoding="utf-8").split()
    except OSError:
        pass
    try:
        from liberacion.engine import new_connection
        from liberacion.naming import quote_literal

        with new_connection() as con:
            rows = con.execute(f"SELECT DISTINCT ref FROM read_parquet({quote_literal(str(index))}) ORDER BY ref")
            found = [ref for (ref,) in rows.fetchall() if ref]
    except Exception:  # a damaged index completes nothing; the command itself reports it
        return []
    try:
        from liberacion.files import atomic_write

        atomic_write(names, "".join(f"{ref}\n" for ref in found))
    except OSError:  # a read-only home: answer all the same
        pass
    return found


def _last_word(incomplete: str) -> tuple[str, str]:
    """``select * from cms.h`` → (``select * from ``, ``cms.h``): SQL completes its last word."""
    cut = max(incomplete.rfind(" "), incomplete.rfind("\n"), incomplete.rfind("("), incomplete.rfind(","))
    return incomplete[: cut + 1], incomplete[cut + 1 :]


def complete_table(ctx: Any, incomplete: str) -> list[str]:
    return [name for name in table_names(_home(ctx)) if name.startswith(incomplete)]


def complete_ref(ctx: Any, incomplete: str) -> list[str]:
    home = _home(ctx)
    indexed = refs(home)
    found = [ref for ref in indexed if ref.startswith(incomplete)]
    if not indexed:
        return found
    from liberacion.catalogs.manifests import load_catalogs

    try:
        cache = home.state / "manifests.json" if home.root.is_dir() else None  # index.MANIFEST_CACHE
        catalogs = load_catalogs(_catalog_paths(ctx), problems=[], cache=cache)
    except Exception:  # manifests that cannot be listed: offer what the index holds
        return found
    loaded = {catalog.name for catalog in catalogs}
    found = _curated_now(home, catalogs, found, incomplete)
    return sorted(ref for ref in found if ref.split("/", 1)[0] in loaded)


def _curated_now(home: Home, catalogs: list[Any], found: list[str], incomplete: str) -> list[str]:
    """``found`` with the curated datasets of manifests edited since the index was built as they
    are now (search offers the same): a renamed or added one completes, a removed one does not
    (unless its listing holds a dataset of that id)."""
    from liberacion.catalogs.manifests import index_changes
    from liberacion.files import read_json

    coverage = read_json(home.index / "coverage.json")  # index.COVERAGE_FILE
    indexed = coverage.get("manifests") if isinstance(coverage, dict) else None
    changes = index_changes(indexed, catalogs)
    edited = [c for c in catalogs if "datasets" in changes.get(c.name, ())]
    if not edited or not isinstance(indexed, dict):
        return found
    stored = read_json(home.index / "curated.json")  # index.CURATED_FILE
    listed = stored.get("catalogs") if isinstance(stored, dict) else None
    gone: set[str] = set()
    for catalog in edited:
        kept = indexed.get(catalog.name)
        refs_before = kept.get("refs") if isinstance(kept, dict) else None
        entry = listed.get(catalog.name) if isinstance(listed, dict) else None
        still = entry.get("listed") if isinstance(entry, dict) else None
        for ref in refs_before if isinstance(refs_before, list) else []:
            if not isinstance(still, dict) or ref.split("/", 1)[1] not in still:
                gone.add(ref)
    now = {d.ref for c in edited for d in c.datasets if d.ref.startswith(incomplete)}
    return sorted({ref for ref in found if ref not in gone} | now)


def complete_sql(ctx: Any, incomplete: str) -> list[str]:
    head, word = _last_word(incomplete)
    return [head + name for name in table_names(_home(ctx)) if name.startswith(word)]
