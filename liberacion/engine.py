"""DuckDB connections as liberacion opens them, and a way to stop them all at once (Ctrl-C)."""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import duckdb

T = TypeVar("T")
MEMORY_LIMIT_ENV = "LIBERACION_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "700MB"
# How long Ctrl-C waits for an interrupted query to stop and clean up before leaving anyway.
STOP_SECONDS = 10.0


def memory_limit() -> str:
    """DuckDB's memory limit for a conversion or a query (``LIBERACION_MEMORY_LIMIT``); beyond it DuckDB spills."""
    return os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT


def set_memory_limit(con: duckdb.DuckDBPyConnection) -> None:
    """Cap ``con`` at ``memory_limit()``; a value DuckDB does not take is a ``ConfigError``."""
    import duckdb

    from liberacion.errors import ConfigError

    limit = memory_limit()
    try:
        con.execute("SET memory_limit = '" + limit.replace("'", "''") + "'")
    except duckdb.Error:
        msg = f"{MEMORY_LIMIT_ENV}={limit!r} is not a memory size DuckDB takes; use e.g. 700MB or 4GB"
        raise ConfigError(msg) from None


def set_utc(con: duckdb.DuckDBPyConnection) -> None:
    """Run ``con`` in UTC, whatever the machine's zone. The lake's times are UTC (``published_at``,
    timestamps written with ``Z``) and stored without a zone: in the machine's zone, comparing them
    with ``now()`` or a TIMESTAMPTZ would move them by its offset, and the same query would answer
    differently in New York and in Kolkata."""
    con.execute("SET TimeZone = 'UTC'")


# Every open connection, so that Ctrl-C in the main thread can stop a query running in a worker.
_OPEN: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
_LOCK = threading.Lock()
# The run (see ``Run``) each thread opens its connections for.
_CURRENT = threading.local()


class Run:
    """The connections one run (a fetch, a refresh) opens, from whichever of its threads.

    A run that stops (Ctrl-C, a callback that raised) interrupts these only: the Python API may
    be serving other threads of the process, whose queries must go on. A run started inside
    another (a refresh's fetch) counts for the outer one too."""

    def __init__(self) -> None:
        self.parent: Run | None = getattr(_CURRENT, "run", None)
        # The piece of work (``call``) of the parent run this one was started in.
        self.parent_call: _Call | None = getattr(_CURRENT, "call", None)
        self.connections: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
        self.stopped = False
        self.switched = threading.Condition()  # notified as a piece of work that switched a table ends
        self.switching: set[_Call] = set()

    def call(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``work(*args, **kwargs)`` with the connections it opens counted as this run's."""
        previous, previous_call = getattr(_CURRENT, "run", None), getattr(_CURRENT, "call", None)
        this = _CURRENT.call = _Call(self)
        _CURRENT.run = self
        try:
            return work(*args, **kwargs)
        finally:
            _CURRENT.run, _CURRENT.call = previous, previous_call
            with self.switched:
                self.switching.discard(this)
                self.switched.notify_all()

    def interrupt(self) -> None:
        """Interrupt every query running on a connection of this run; no table switches after it."""
        with self.switched:
            self.stopped = True
        with _LOCK:
            connections = list(self.connections)
        _interrupt(connections)

    def wait_for_switches(self) -> None:
        """After ``interrupt``: wait for the work that had begun switching a table when the run
        stopped, until that work has ended (its result handed on, its line said). The table is
        published: the run must say so, not end as if it were not."""
        with self.switched:
            while self.switching:
                self.switched.wait()


class _Call:
    """One piece of work a run is doing (``Run.call``), in whichever thread."""

    def __init__(self, run: Run) -> None:
        self.run = run


@contextmanager
def switching() -> Iterator[None]:
    """Around a commit's switch (the point past which a table is published): refused with
    ``Interrupted`` once the current run (or one it was started in) has stopped; else the pieces
    of work doing it are marked, so that a stop arriving now waits for them to end
    (``Run.wait_for_switches``) and the run reports the table it published."""
    from liberacion.errors import Interrupted

    calls: list[_Call] = []
    call: _Call | None = getattr(_CURRENT, "call", None)
    while call is not None:
        calls.append(call)
        call = call.run.parent_call
    for call in calls:
        with call.run.switched:
            if call.run.stopped:
                raise Interrupted("interrupted before the table was published; it keeps its previous snapshot")
            call.run.switching.add(call)
    yield


def _track(con: duckdb.DuckDBPyConnection) -> None:
    """Remember ``con`` for Ctrl-C, and for the runs the current thread works for (``_LOCK`` held)."""
    _OPEN.add(con)
    run: Run | None = getattr(_CURRENT, "run", None)
    while run is not None:
        run.connections.add(con)
        run = run.parent


def new_connection(database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection without a progress bar (stdout is for data)."""
    import duckdb

    con = duckdb.connect(database, config=_fit_address_space())
    con.execute("SET enable_progress_bar = false")
    set_utc(con)
    with _LOCK:
        _track(con)
    return con


# One in-memory database kept for the process, for small conversions (see small_connection).
_SHARED: list[duckdb.DuckDBPyConnection] = []
# Python functions registered per connection: a function stays in the shared database, and
# calling it after its cursor closed would crash, so a cursor removes its own before closing.
_FUNCTIONS: dict[int, list[str]] = {}


def preload_functions() -> None:
    """Import numpy, which DuckDB's ``create_function`` imports (60-100 ms), on a thread: started
    before a conversion reads its sample (DuckDB leaves the GIL while it reads), it is done by the
    time the slow paths are registered (``benchmarks/fixed_costs.py``)."""
    if "numpy" in sys.modules:
        return
    from liberacion.errors import address_space_limit

    if address_space_limit() is not None:
        # OpenBLAS, loaded with numpy, ends the process when it cannot map its buffers, which it
        # may not while DuckDB reads beside it under a ``ulimit -v``: it is loaded now, alone.
        _import_numpy()
        return
    # A thread the system refuses (``ulimit -u``) only costs the head start.
    with suppress(RuntimeError):
        threading.Thread(target=_import_numpy, name="liberacion-preload", daemon=True).start()


def _fit_address_space() -> dict[str, Any]:
    """A new database's settings under a ``ulimit -v`` (or a container's limit on it): as many
    threads as it has room for. Below the room of one, a ``ConfigError`` saying so: glibc would end
    the process at random, when a thread finds no room for its data."""
    from liberacion.errors import ConfigError, address_space_hint, address_space_threads

    hint = address_space_hint()
    if hint:
        raise ConfigError(hint)
    threads = address_space_threads()
    return {} if threads is None else {"threads": threads}


def _import_numpy() -> None:
    with suppress(ImportError):
        import numpy  # noqa: F401


def create_function(con: duckdb.DuckDBPyConnection, name: str, function: Any, *args: Any, **kwargs: Any) -> None:
    """``con.create_function``, remembered so that ``small_connection`` removes it in time."""
    try:
        import numpy  # noqa: F401  (DuckDB needs it here, and says "not installed" when it fails to load)
    except ImportError as err:
        from liberacion.errors import ConversionError, address_space_hint, one_line

        # numpy's message opens with a page of advice; the cause is on its "Original error" line.
        lines = str(err).splitlines()
        cause = next((line for line in lines if line.startswith("Original error")), lines[0] if lines else "")
        hint = address_space_hint() or "reinstall liberacion's dependencies"
        raise ConversionError(f"numpy could not be loaded ({one_line(ValueError(cause))}); {hint}") from None
    con.create_function(name, function, *args, **kwargs)
    with _LOCK:
        _FUNCTIONS.setdefault(id(con), []).append(name)


@contextmanager
def small_connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for converting a small file: a cursor on one in-memory database kept for the
    process. Opening a database costs ~15-35 ms, which a zip of thousands of small members paid
    thousands of times; a cursor costs under 1 ms. Temporary tables and sequences die with the
    cursor. The shared database never spills (only inputs far below the memory limit come here),
    so it never writes outside the home."""
    import duckdb

    with _LOCK:
        if not _SHARED:
            base = duckdb.connect(":memory:", config=_fit_address_space())
            base.execute("SET temp_directory = ''")
            _SHARED.append(base)
        cursor = _SHARED[0].cursor()
        _track(cursor)
        _FUNCTIONS.pop(id(cursor), None)  # names of a closed connection that had the same id
    try:
        cursor.execute("SET enable_progress_bar = false")
        set_utc(cursor)
        set_memory_limit(cursor)  # the database's: read anew each time
        yield cursor
    finally:
        with _LOCK:
            names = _FUNCTIONS.pop(id(cursor), [])
        try:
            for name in names:
                with suppress(Exception):
                    cursor.remove_function(name)
        finally:
            cursor.close()


def interrupt_all() -> None:
    """Interrupt every query running on a liberacion connection: each fails at once as interrupted."""
    with _LOCK:
        connections = list(_OPEN)
    _interrupt(connections)


def _interrupt(connections: list[duckdb.DuckDBPyConnection]) -> None:
    for con in connections:
        try:
            con.interrupt()
        except Exception:  # a connection closed meanwhile has nothing to stop
            continue


def interruptible(work: Callable[[], T], run: Run | None = None) -> T:
    """Run ``work`` (DuckDB calls) on a worker thread, so that Ctrl-C stops its query at once.

    While DuckDB runs a query the main thread would see Ctrl-C only when the query ends, which
    can be minutes. Here the main thread waits, takes the KeyboardInterrupt, interrupts the
    connections of ``run`` (default: every liberacion connection) and raises it once the worker
    has stopped. The Python API names its run: other threads' queries go on.
    """
    if threading.current_thread() is not threading.main_thread():
        return work()
    outcome: dict[str, Any] = {}
    # Set by the worker once ``work`` has returned or raised, its clean-up (a temporary file
    # removed) done. Not ``Thread.join``: before Python 3.13, a KeyboardInterrupt that lands in
    # ``join`` marks the thread as ended while it still runs, and a second ``join`` returns at once
    # (CPython gh-90882), so the process left before the worker removed its temporary file.
    done = threading.Event()

    def in_worker() -> None:
        try:
            outcome["value"] = work()
        except BaseException as err:  # handed to the main thread as it is
            outcome["error"] = err
        finally:
            done.set()

    worker = threading.Thread(target=in_worker, name="liberacion-query", daemon=True)
    worker.start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        if run is None:
            interrupt_all()
        else:
            run.interrupt()
        done.wait(STOP_SECONDS)  # the interrupted query fails at once; its clean-up runs now
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
