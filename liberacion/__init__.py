"""liberacion: discover, fetch, convert and query HHS open health data.

The public API has the commands' names: ``fetch``, ``refresh``, ``discover``, ``search``, ``show``,
``sql``, ``tables``, ``info``, ``history``, ``diff`` and ``prune`` (see ``liberacion.api``). It is
re-exported lazily so that ``import liberacion`` (and ``liberacion --help``) stays fast: duckdb and
pyarrow load only when a function that needs them runs.
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
    "LiberacionError": "liberacion.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'liberacion' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
