"""A home after a year: many tables in many catalogs, each with a long history.

Each test builds its home by publishing one table and copying that snapshot into many tables and
snapshots, as the lake lays them out (a folder per snapshot, its ``snapshot.json``, the table's
``current`` pointer), so that it stays fast. The tests count what a command reads, never its time.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from liberacion import views
from liberacion.lake import Lake
from liberacion.snapshots import CURRENT_FILE, SNAPSHOT_FILE, Snapshot

CATALOGS = ("cms", "cdc", "fda", "nih")
ID_FORMAT = "%Y%m%dT%H%M%S%fZ"


def grow(home: Path, tables: int, snapshots: int) -> list[str]:
    """Publish ``tables`` tables of ``snapshots`` snapshots each, ``<catalog>.t_NNNN`` spread over
    the catalogs (so every bare name is in each catalog); the views database is rebuilt once."""
    lake = Lake(home)
    seed = lake.publish("seed.seed", pa.table({"a": [1, 2, 3]}))
    record = json.loads((Path(seed.path) / SNAPSHOT_FILE).read_text(encoding="utf-8"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    names = []
    for number in range(tables):
        catalog, table = CATALOGS[number % len(CATALOGS)], f"t_{number // len(CATALOGS):04d}"
        folder = home / "lake" / catalog / table
        for count in range(snapshots):
            when = start + timedelta(days=count, microseconds=number)
            snapshot_id = when.strftime(ID_FORMAT)
            target = folder / "snapshots" / snapshot_id
            shutil.copytree(Path(seed.path), target)
            published = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            text = json.dumps({**record, "table": f"{catalog}.{table}", "id": snapshot_id, "published_at": published})
            (target / SNAPSHOT_FILE).write_text(text, encoding="utf-8")
        (folder / CURRENT_FILE).write_text(snapshot_id + "\n", encoding="utf-8")
        names.append(f"{catalog}.{table}")
    lake.drop("seed.seed")  # a switch: the next writer's rebuild, here at once
    return names


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every snapshot record read through ``Snapshot.load``, in order."""
    seen: list[Path] = []
    original = Snapshot.load.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Snapshot], path: Path) -> Snapshot:
        seen.append(path)
        return original(cls, path)

    monkeypatch.setattr(Snapshot, "load", classmethod(counted))
    return seen


@pytest.mark.parametrize("command", ["info", "history", "diff", "prune"])
def test_a_bare_table_name_reads_no_snapshot_record(home: Path, cli: Any, loads: list[Path], command: str) -> None:
    """``info t_0001`` in a home of many tables names the tables that end so: it used to read every
    snapshot record of every table first (1,000 tables of 50 snapshots: 6 s before a typo was said)."""
    grow(home, tables=40, snapshots=5)
    loads.clear()
    result = cli(command, "t_0001")
    assert result.exit_code == 3, result.output
    assert "did you mean cdc.t_0001 or cms.t_0001 or fda.t_0001 or nih.t_0001?" in " ".join(result.output.split())
    assert loads == []
    result = cli(command, "nosuch")  # no table ends so: what a table name is, still without reading one
    assert result.exit_code == 2, result.output
    assert loads == []


@pytest.mark.parametrize("as_of", [None, "2026-01-03"])
def test_the_snapshots_of_one_table_read_only_its_records(home: Path, cli: Any, as_of: str | None) -> None:
    """``liberacion.snapshots where table_name = ...`` (the README's example) opened the snapshot
    record of every table of the lake; now only the named table's. Shown by damaging another
    table's old record: the query of this one no longer reads it."""
    grow(home, tables=12, snapshots=4)
    (next((home / "lake" / "cdc" / "t_0002" / "snapshots").iterdir()) / SNAPSHOT_FILE).write_text("{oops")
    when = ["--as-of", as_of] if as_of else []
    query = (
        "select count(*) as kept, count(*) filter (where is_current) as current, min(table_name) as t "
        "from liberacion.snapshots where table_name = 'cms.t_0001'"
    )
    result = cli("sql", *when, "--format", "csv", query)
    assert result.exit_code == 0, result.output
    kept = 3 if as_of else 4  # published on Jan 1, 2 and 3 by the end of Jan 3
    assert result.stdout.splitlines() == ["kept,current,t", f"{kept},1,cms.t_0001"]
    result = cli("sql", *when, "--format", "csv", "select count(*) from liberacion.all_snapshots('cms.t_0001')")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == str(kept * 3)
    # The whole listing still reads every record, and says the damaged one is damaged.
    result = cli("sql", "--format", "csv", "select count(*) from liberacion.snapshots")
    assert result.exit_code != 0
    assert "t_0002" in result.output


def test_the_snapshots_listing_is_unchanged(home: Path, cli: Any) -> None:
    """Reading the table's name from the paths lists the same rows as the records did."""
    names = grow(home, tables=6, snapshots=3)
    result = cli("sql", "--format", "json", "select * from liberacion.snapshots")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["table_name"] for row in rows] == [name for name in sorted(names) for _ in range(3)]
    for row in rows:
        record = json.loads((Path(row["path"]) / SNAPSHOT_FILE).read_text(encoding="utf-8"))
        assert row["table_name"] == record["table"]
        assert row["snapshot"] == Path(row["path"]).name
        pointer = Path(row["path"]).parent.parent / CURRENT_FILE
        assert row["is_current"] == (row["snapshot"] == pointer.read_text(encoding="utf-8").strip())


class _Spy:
    """A DuckDB connection that notes the transaction of every view it creates."""

    def __init__(self, con: Any, transactions: list[int]) -> None:
        self.con = con
        self.transactions = transactions

    def __enter__(self) -> _Spy:
        self.con.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self.con.__exit__(*exc)

    def execute(self, sql: str, *args: Any) -> Any:
        result = self.con.execute(sql, *args)
        if sql.startswith("CREATE OR REPLACE VIEW"):
            self.transactions.append(self.con.execute("SELECT txid_current()").fetchone()[0])
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


def test_a_publish_writes_the_views_database_in_one_commit(
    home: Path, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish that builds ``lake.duckdb`` anew (here: it is missing) writes a view per table.
    Each view was its own commit (1,000 tables: 1.0-4.5 s a fetch on a busy disk, 0.5-1.0 s in
    one). An update in place writes only the changed ones (``tests/test_views_db.py``)."""
    grow(home, tables=20, snapshots=1)
    (home / "lake.duckdb").unlink()
    transactions: list[int] = []
    opened = views.new_connection
    monkeypatch.setattr(views, "new_connection", lambda *a, **k: _Spy(opened(*a, **k), transactions))
    source = tmp_path / "one.csv"
    source.write_text("a,b\n1,x\n2,y\n", encoding="utf-8")
    result = cli("fetch", str(source), "--as", "nih.new_one")
    assert result.exit_code == 0, result.output
    assert len(transactions) > 21  # the 21 tables' views, the index's and the snapshots'
    assert len(set(transactions)) == 1
    monkeypatch.setattr(views, "new_connection", opened)
    both = "select (select count(*) from nih.new_one) + (select count(*) from cms.t_0004)"
    result = cli("sql", "--format", "csv", both)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "5"


def test_a_release_renaming_every_column_indexes_each_name_once(
    home: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``history`` (and refresh's schema check, and ``diff``) pair removed and added columns by
    their names' likeness: a matcher was built for every pair, and a release renaming all of 1,000
    columns took 50 s. Now one a column, and pairs that cannot be alike are told by cheap bounds."""
    import difflib

    width = 120
    lake = Lake(home)
    lake.publish("cms.wide", pa.table({f"measure_{i}_value": [float(i)] for i in range(width)}))
    lake.publish("cms.wide", pa.table({f"msr_{i}_val_2024": [float(i)] for i in range(width)}))
    indexed: list[str] = []
    original = difflib.SequenceMatcher.set_seq2

    def counted(self: difflib.SequenceMatcher[str], b: str) -> None:
        indexed.append(b)
        original(self, b)

    monkeypatch.setattr(difflib.SequenceMatcher, "set_seq2", counted)
    result = cli("history", "cms.wide", "--format", "json")
    assert result.exit_code == 0, result.output
    [oldest, newest] = json.loads(result.stdout)
    assert oldest["schema_changes"] == "oldest kept snapshot"
    assert newest["schema_changes"].count("→") == width  # every column paired with its new name
    assert "measure_7_value→msr_7_val_2024," in newest["schema_changes"]
    assert len(indexed) <= width
