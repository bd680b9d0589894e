"""liberacion: discover, fetch, convert and query HHS open health data.

The public API has the commands' names: ``fetch``, ``refresh``, ``discover``, ``search``, ``show``,
``sql``, ``tables``, ``info``, ``history``, ``diff`` and ``prune`` (see ``liberacion.api``). It is
re-exported lazily so that ``import liberacion`` (and ``liberacion --help``) stays fast: duckdb and
pyarrow load only when a function that needs them runs. Errors are ``LiberacionError`` and its
subclasses (``UsageError``, ``NotFound``, ``NoTable``, ``SQLError``, ``ConfigError``, ``Busy``, ...,
all in ``liberacion.errors``); notes are ``Note`` warnings.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    **dict.fromkeys(
        ("fetch", "refresh", "discover", "search", "show", "sql", "tables", "info", "history", "diff", "prune"),
        "liberacion.api",
    ),
    "Lake": "liberacion.lake",
    "Provenance": "liberacion.snapshots",
    "Recipe": "liberacion.snapshots",
    "Snapshot": "liberacion.snapshots",
    "resolve_home": "liberacion.home",
    # What the functions return, for annotations (``def load() -> list[liberacion.FetchResult]``).
    "FetchResult": "liberacion.fetching",
    "ProgressEvent": "liberacion.download",
    "ProgressCallback": "liberacion.download",
    "RefreshEvent": "liberacion.refreshing",
    "RefreshReport": "liberacion.refreshing",
    "DiscoverReport": "liberacion.catalogs.index",
    "SearchHit": "liberacion.catalogs.index",
    "CatalogStatus": "liberacion.catalogs.index",
    "Description": "liberacion.resolve",
    "TableInfo": "liberacion.lake",
    "TableDetails": "liberacion.api",
    "HistoryEntry": "liberacion.timeline",
    "TableDiff": "liberacion.compare",
    "PruneReport": "liberacion.api",
    # The errors README names (``except liberacion.UsageError``), and the warnings' category.
    **dict.fromkeys(
        (
            "LiberacionError",
            "UsageError",
            "NotFound",
            "NoTable",
            "SQLError",
            "ConfigError",
            "Busy",
            "SourceError",
            "StorageError",
            "Note",
        ),
        "liberacion.errors",
    ),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    import importlib
    import importlib.util

    module = _EXPORTS.get(name)
    if module is not None:
        return getattr(importlib.import_module(module), name)
    # A submodule not imported yet: ``import liberacion`` then ``liberacion.api.catalogs()`` (as the
    # README writes it) or ``liberacion.lake.Lake`` works, as it would if the package imported them.
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'liberacion' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy exports too, so that tab completion in a notebook offers ``liberacion.fetch``."""
    return sorted({*globals(), *__all__})
