"""liberacion used as a library, from a notebook or an Airflow task that never runs the CLI.

Each test is a defect met that way: an option value Python takes for true although it says
"False", a filter of the wrong type that ended as an ``AttributeError``, a broken manifest dropped
without a word, Ctrl-C that reached the caller as DuckDB's ``RuntimeError``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import liberacion
from liberacion.errors import Note, UsageError
from tests.server import LocalServer

FIRST = "facility_id,state,beds\n010001,AL,120\n010005,AL,85\n"
SECOND = "facility_id,state,beds\n010001,AL,125\n010005,AL,85\n020001,AK,40\n"


def published(tmp_path: Path, text: str = FIRST, table: str = "cms.beds") -> Path:
    source = tmp_path / "beds.csv"
    source.write_text(text, encoding="utf-8")
    [result] = liberacion.fetch(source, as_table=table)
    assert result.status in ("fetched", "unchanged"), result.error
    return source


def snapshot_ids(table: str) -> list[str]:
    return [entry.snapshot.id for entry in liberacion.history(table)]


def test_a_flag_given_as_text_is_refused_not_taken_for_true(http_server: LocalServer, tmp_path: Path) -> None:
    """``force="False"`` (what an Airflow template renders) is true to Python: it downloaded and
    published again; ``check="no"`` checked instead of refreshing, ``arrow="no"`` gave Arrow."""
    url = http_server.add("/beds.csv", FIRST)
    [first] = liberacion.fetch(url, as_table="cms.beds")
    assert first.status == "fetched"
    before, requests = snapshot_ids("cms.beds"), len(http_server.requests)
    refused: list[Callable[[], object]] = [
        lambda: liberacion.fetch(url, as_table="cms.beds", force="False"),  # type: ignore[arg-type]
        lambda: liberacion.fetch(url, as_table="cms.beds", raw="no"),  # type: ignore[arg-type]
        lambda: liberacion.fetch(url, as_table="cms.beds", allow_empty=1),  # type: ignore[arg-type]
        lambda: liberacion.refresh(force="false"),  # type: ignore[arg-type]
        lambda: liberacion.refresh(check="no"),  # type: ignore[arg-type]
        lambda: liberacion.sql("select 1", arrow="no"),  # type: ignore[arg-type]
        lambda: liberacion.sql("select 1", safe="off"),  # type: ignore[arg-type]
    ]
    for call in refused:
        with pytest.raises(UsageError, match="must be True or False"):
            call()
    assert snapshot_ids("cms.beds") == before and len(http_server.requests) == requests  # nothing ran
    numpy = pytest.importorskip("numpy")
    assert liberacion.sql("select 1 as x", arrow=numpy.bool_(True)).column("x").to_pylist() == [1]


def test_search_filters_of_the_wrong_type_are_usage_errors() -> None:
    # publisher=5 was AttributeError: 'int' object has no attribute 'casefold'; catalog=5 was
    # "no catalog named 5".
    for filters in ({"publisher": 5}, {"catalog": 5}, {"data_format": ["csv"]}):
        with pytest.raises(UsageError, match="must be text"):
            liberacion.search("hospital", **filters)


def test_the_errors_readme_names_are_reachable_from_the_package() -> None:
    """README: "an argument of the wrong type, ``jobs="4"``, is a ``UsageError``"; ``except
    liberacion.UsageError`` was an AttributeError (only ``LiberacionError`` was exported)."""
    with pytest.raises(liberacion.UsageError):
        liberacion.fetch("beds.csv", jobs="4")  # type: ignore[arg-type]
    with pytest.raises(liberacion.NotFound):
        liberacion.info("cms.nosuch")
    assert liberacion.Note is Note and issubclass(liberacion.NoTable, liberacion.LiberacionError)


def test_bytes_as_refs_are_named_as_given(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as raised:
        liberacion.fetch(b"beds.csv")  # type: ignore[arg-type]
    assert "b'beds.csv'" in str(raised.value)  # was: not [98, 101, 100, ...]


def test_a_broken_manifest_is_said_not_dropped_when_no_problems_list_is_given(manifests: Path) -> None:
    """The commands exit 5 for a manifest that cannot be read; ``search()`` and
    ``api.catalogs()`` left its catalog out without a word (as ``sql()`` does not: a ``Note``)."""
    (manifests / "mine.toml").write_text('name = "mine"\ntitle = 5\n', encoding="utf-8")
    with pytest.warns(Note, match=r"mine\.toml.*left out of the search") as said:
        hits = liberacion.search("hospital")
    assert hits and {warning.filename for warning in said} == {__file__}  # shown at the caller's line
    with pytest.warns(Note, match=r"mine\.toml.*left out of the list"):
        names = [status.name for status in liberacion.api.catalogs()]
    assert "cms" in names and "mine" not in names
    problems: list[Any] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # collected, not said twice
        liberacion.search("hospital", problems=problems)
    assert len(problems) == 1 and "mine.toml" in str(problems[0])


@pytest.fixture
def ctrl_c_in_duckdb(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str], None]:
    """Make ``owner.name`` (once) end as DuckDB ends a query on the main thread when Ctrl-C lands:
    it takes the signal and raises ``RuntimeError: Query interrupted`` (seen with a real SIGINT in
    a diff of 600,000 rows and in the views rebuilt at the end of a refresh; a real signal cannot
    land there on cue: DuckDB checks for it only between tasks, which may be the whole query)."""

    def install(owner: Any, name: str) -> None:
        original = getattr(owner, name)
        calls = [0]

        def interrupted(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] > 1:
                return original(*args, **kwargs)
            raise RuntimeError("Query interrupted")

        monkeypatch.setattr(owner, name, interrupted)

    return install


def test_ctrl_c_in_diff_is_a_keyboard_interrupt(tmp_path: Path, cli: Any, ctrl_c_in_duckdb: Any) -> None:
    """It was ``RuntimeError: Query interrupted`` (the CLI: "internal error", exit 1)."""
    import liberacion.compare

    published(tmp_path)
    published(tmp_path, SECOND)
    ctrl_c_in_duckdb(liberacion.compare, "diff")
    with pytest.raises(KeyboardInterrupt):
        liberacion.diff("cms.beds", keys=["facility_id"])
    assert liberacion.prune().busy == []  # its readers' lock was let go
    assert liberacion.diff("cms.beds", keys=["facility_id"]).added == 1  # the next call works
    assert "keys" in inspect.signature(liberacion.diff).parameters  # help() still shows the options
    ctrl_c_in_duckdb(liberacion.compare, "diff")
    said = cli("diff", "cms.beds")
    assert (said.exit_code, said.stderr) == (130, "error: interrupted\n")


@pytest.mark.parametrize("command", ["fetch", "refresh"])
def test_ctrl_c_while_the_views_are_rebuilt_is_a_keyboard_interrupt(
    command: str, tmp_path: Path, home: Path, ctrl_c_in_duckdb: Any
) -> None:
    """Ctrl-C in the last step of a fetch or refresh (``lake.duckdb`` rebuilt on the main thread)
    was ``RuntimeError: Query interrupted``; the next call finishes the rebuild."""
    import duckdb

    from liberacion.lake import Lake

    source = published(tmp_path)
    source.write_text(SECOND, encoding="utf-8")
    ctrl_c_in_duckdb(Lake, "update_views_db")
    with pytest.raises(KeyboardInterrupt):
        if command == "fetch":
            liberacion.fetch(source, as_table="cms.beds")
        else:
            liberacion.refresh()
    assert liberacion.sql("select count(*) from cms.beds").fetchall() == [(3,)]  # published before the rebuild
    [again] = liberacion.fetch(source, as_table="cms.beds", force=True)
    assert again.status == "fetched"
    with duckdb.connect(str(home / "lake.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from cms.beds").fetchall() == [(3,)]


def test_diff_takes_dates_and_datetimes_as_sql_as_of_does(home: Path) -> None:
    # Its docstring named "a date/time"; a datetime.date was "to_snapshot must be text".
    from datetime import UTC, date, datetime

    import pyarrow as pa

    from liberacion.lake import Lake

    lake = Lake(home)
    lake.publish("cms.beds", pa.table({"id": ["a"], "beds": [1]}))
    first = lake.current("cms.beds")
    lake.publish("cms.beds", pa.table({"id": ["a", "b"], "beds": [1, 2]}))
    by_id = liberacion.diff("cms.beds", keys=["id"])
    when = datetime.fromisoformat(first.published_at.replace("Z", "+00:00"))
    for to in (date.today(), datetime.now(UTC), datetime.now(UTC).replace(tzinfo=None)):
        by_time = liberacion.diff("cms.beds", from_snapshot=when, to_snapshot=to, keys=["id"])
        assert (
            (by_time.old.id, by_time.new.id, by_time.added)
            == (by_id.old.id, by_id.new.id, by_id.added)
            == (
                first.id,
                lake.current("cms.beds").id,
                1,
            )
        )
    with pytest.raises(UsageError, match="to_snapshot must be a date, a datetime or text"):
        liberacion.diff("cms.beds", to_snapshot=5)  # type: ignore[arg-type]


def test_a_snapshot_shows_itself_in_one_short_line(home: Path) -> None:
    # A notebook cell ending in tables() printed every column's rule and the download's headers:
    # 147,586 characters for 9 tables.
    import pyarrow as pa

    from liberacion.lake import Lake

    wide = pa.table({f"c{i}": [i] for i in range(300)})
    Lake(home).publish("cms.wide", wide)
    shown = repr(liberacion.tables())
    assert "Snapshot(table='cms.wide', id=" in shown and "columns=300" in shown
    assert len(shown) < 400 and "\n" not in shown
    assert len(repr(liberacion.info("cms.wide"))) < 600


def test_an_unchanged_fetch_reports_what_the_fetch_that_made_it_did(home: Path, tmp_path: Path) -> None:
    # An unchanged zip of two members reported its last member alone, with no tables; a refresh
    # named the set without the tables in it.
    import zipfile

    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as z:
        z.writestr("a.csv", "id,n\n1,2\n")
        z.writestr("b.csv", "id,n\n1,2\n2,3\n")
    single = tmp_path / "single.csv"
    single.write_text("id,n\n1,2\n", encoding="utf-8")
    for path, table in ((bundle, "s.bundle"), (single, "s.single")):
        [first] = liberacion.fetch(path, as_table=table)
        [again] = liberacion.fetch(path, as_table=table)
        assert again.status == "unchanged" and first.status == "fetched"
        shown = ("table", "rows", "rejects", "snapshot", "tables", "table_rows")
        assert [getattr(again, k) for k in shown] == [getattr(first, k) for k in shown]
    assert first.tables == ["s.single"]
    [event] = liberacion.refresh(["s.bundle__b"]).events
    assert (event.event, event.rows, event.tables) == ("unchanged", 3, ["s.bundle__a", "s.bundle__b"])


def test_a_note_is_said_each_time_and_names_the_callers_line(home: Path, tmp_path: Path) -> None:
    # A notebook cell run again said nothing the second time (Python shows a repeated warning once
    # per place), and the note named liberacion's line or contextlib's, not the cell's.
    repeated = tmp_path / "rep.csv"
    repeated.write_text("a,b\n1,2\nA,B\n3,4\n", encoding="utf-8")
    for _ in range(2):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("default")  # Python's own filter, as a script or a notebook has it
            liberacion.fetch(repeated, as_table="t.rep", force=True)  # the line the note names
        [said] = [w for w in seen if issubclass(w.category, Note)]
        assert "dropped 1 row repeating the header" in str(said.message)
        lines = Path(__file__).read_text(encoding="utf-8").splitlines()
        called = next(i for i, line in enumerate(lines, 1) if "the line the note" in line)
        assert (said.filename, said.lineno) == (__file__, called)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("ignore", Note)  # the caller's filters still decide
        liberacion.fetch(repeated, as_table="t.rep", force=True)
    assert not [w for w in seen if issubclass(w.category, Note)]
