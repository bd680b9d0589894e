"""DuckDB connections as liberacion opens them, and a way to stop them all at once (Ctrl-C)."""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

MEMORY_LIMIT_ENV = "LIBERACION_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "700MB"


def memory_limit() -> str:
    """DuckDB's memory limit for a conversion or a query (``LIBERACION_MEMORY_LIMIT``); beyond it DuckDB spills."""
    return os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT


# Every open connection, so that Ctrl-C in the main thread can stop a query running in a worker.
_OPEN: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
_LOCK = threading.Lock()


def new_connection(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection without a progress bar (stdout is for data)."""
    import duckdb

    con = duckdb.connect(database)
    con.execute("SET enable_progress_bar = false")
    with _LOCK:
        _OPEN.add(con)
    return con


def interrupt_all() -> None:
    """Interrupt every query running on a liberacion connection: each fails at once as interrupted."""
    with _LOCK:
        connections = list(_OPEN)
    for con in connections:
        try:
            con.interrupt()
        except Exception:  # a connection closed meanwhile has nothing to stop
            continue
