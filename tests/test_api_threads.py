"""The Python API called from many threads of one process: what one call does stays its own."""

from __future__ import annotations

import _thread
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import liberacion


class Boom(Exception):
    """The caller's own exception, raised in a callback."""


@dataclass
class Running:
    """A long query another thread runs on a liberacion connection; ``started`` once it runs."""

    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    error: list[BaseException] = field(default_factory=list)
    con: object | None = None


@pytest.fixture
def running() -> Iterator[Running]:
    from liberacion.engine import new_connection

    query = Running()
    query.con = con = new_connection()

    def mark(x: int) -> int:
        query.started.set()  # called by DuckDB: the query is under way
        return x

    con.create_function("mark", mark, ["BIGINT"], "BIGINT")

    def run() -> None:
        try:
            con.execute("select count(*) from range(10000000000) t(x) where mark(x) < 0").fetchall()
        except BaseException as err:  # interrupted: what the test looks at
            query.error.append(err)
        finally:
            query.done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert query.started.wait(30)
    try:
        yield query
    finally:
        con.interrupt()
        thread.join(30)
        con.close()


def csv_file(tmp_path: Path, name: str = "a.csv") -> Path:
    path = tmp_path / name
    path.write_text("id,v\n1,10\n2,20\n", encoding="utf-8")
    return path


def test_a_fetch_stopped_by_its_callback_leaves_other_threads_queries_running(
    tmp_path: Path, home: Path, running: Running
) -> None:
    # A callback raising in one request's fetch interrupted every DuckDB query of the process.
    def progress(_event: object) -> None:
        raise Boom("stop")

    with pytest.raises(Boom):
        liberacion.fetch([csv_file(tmp_path)], as_table="t.a", progress=progress)
    assert not running.done.wait(0.3), running.error
    assert not liberacion.tables()


def test_a_progress_callback_exception_reaches_the_caller(tmp_path: Path, home: Path) -> None:
    # It was swallowed: the table "failed" with "internal error (Boom: ...)", the caller's
    # traceback written to the home's log as liberacion's own.
    calls: list[str] = []

    def progress(event: Any) -> None:
        calls.append(event.kind)
        raise Boom("the caller's")

    with pytest.raises(Boom, match="the caller's"):
        liberacion.fetch([csv_file(tmp_path)], as_table="t.a", progress=progress)
    assert calls == ["phase"]  # the first event stopped the run
    assert not liberacion.tables()
    assert not (home / "logs" / "last-error.txt").exists()
    assert not list((home / "work").glob("*"))
    [result] = liberacion.fetch([csv_file(tmp_path)], as_table="t.a")  # nothing left behind in the way
    assert result.status == "fetched"


def test_a_refresh_stopped_by_its_callback_leaves_other_threads_queries_running(
    tmp_path: Path, home: Path, running: Running
) -> None:
    source = csv_file(tmp_path)
    liberacion.fetch([source], as_table="t.a")
    source.write_text("id,v\n1,10\n", encoding="utf-8")

    def on_event(_event: object) -> None:
        raise Boom("stop")

    with pytest.raises(Boom):
        liberacion.refresh(on_event=on_event)
    assert not running.done.wait(0.3), running.error


def test_ctrl_c_in_sql_stops_its_own_query_only(
    tmp_path: Path, home: Path, running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C while ``sql(arrow=True)`` read its rows interrupted every thread's query.
    from liberacion import engine

    liberacion.fetch([csv_file(tmp_path)], as_table="t.a")
    reading = engine.interruptible

    def ctrl_c_while_reading(work: Any, *args: Any) -> Any:
        threading.Timer(0.1, _thread.interrupt_main).start()  # lands while the main thread waits for the rows
        return reading(work, *args)

    monkeypatch.setattr(engine, "interruptible", ctrl_c_while_reading)
    with pytest.raises(KeyboardInterrupt):
        liberacion.sql("select count(*) from range(10000000000) r(x), t.a where x % 7 = 3", arrow=True)
    assert not running.done.wait(0.3), running.error
