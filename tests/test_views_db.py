"""``lake.duckdb`` brought up to date in place: after any publish, drop or repair it holds exactly
what a database built anew would, and only the views of tables that changed are created again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from liberacion import views
from liberacion.lake import Lake
from liberacion.views import write_views_db

HERE = "database_name = current_database() AND NOT internal"


@pytest.fixture(autouse=True)
def in_place_from_one_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Homes of a few tables here stand for large ones: the file is updated in place from one."""
    monkeypatch.setattr(views, "IN_PLACE_FROM", 1)


def _table(n: int, tag: str = "a") -> pa.Table:
    return pa.table({"code": [f"{i:05d}" for i in range(n)], "tag": [tag] * n})


def _contents(database: Path) -> dict[str, Any]:
    """Every schema, view (with its SQL and comment), macro, table and sequence of ``database``, and
    each view's rows."""
    with duckdb.connect(str(database), read_only=True) as con:
        views = con.execute(
            f"SELECT schema_name, view_name, sql, comment FROM duckdb_views() WHERE {HERE} ORDER BY ALL"
        ).fetchall()
        return {
            "schemas": con.execute(f"SELECT schema_name FROM duckdb_schemas() WHERE {HERE} ORDER BY 1").fetchall(),
            "views": views,
            "macros": con.execute(
                f"SELECT schema_name, function_name, macro_definition FROM duckdb_functions() WHERE {HERE} ORDER BY ALL"
            ).fetchall(),
            "others": con.execute(
                f"SELECT 'table', table_name FROM duckdb_tables() WHERE {HERE} "
                "UNION ALL SELECT 'sequence', sequence_name FROM duckdb_sequences() "
                "WHERE database_name = current_database() ORDER BY ALL"
            ).fetchall(),
            "rows": [
                con.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone() for schema, name, _, _ in views
            ],
        }


def _built_anew(lake: Lake, tmp_path: Path) -> dict[str, Any]:
    fresh = tmp_path / "fresh.duckdb"
    fresh.unlink(missing_ok=True)
    write_views_db(fresh, lake.view_statements(lake.current_snapshots()), lake.prepare_connection)
    return _contents(fresh)


def test_updated_in_place_it_holds_what_a_database_built_anew_holds(home: Path, tmp_path: Path) -> None:
    lake = Lake(home)
    steps = [
        lambda: lake.publish("cms.a", _table(3)),
        lambda: lake.publish("cdc.b", _table(5)),
        lambda: lake.publish("cms.a", _table(7, tag="new")),  # a new snapshot of a table
        lambda: lake.drop("cdc.b"),  # its catalog's schema goes with it
        lambda: lake.publish("cdc.b", _table(1)),
    ]
    for step in steps:
        step()
        assert _contents(lake.home.views_db) == _built_anew(lake, tmp_path)
    assert _contents(lake.home.views_db)["rows"][:2] == [(1,), (7,)]


def _created_views(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements creating a table's view that the views database's writer runs from now on."""
    executed: list[str] = []
    real_execute = duckdb.DuckDBPyConnection.execute

    class Recording:
        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self.con = con

        def __getattr__(self, name: str) -> Any:
            return getattr(self.con, name)

        def __enter__(self) -> Recording:
            return self

        def __exit__(self, *exc: object) -> None:
            self.con.close()

        def execute(self, sql: str, *args: Any) -> Any:
            if sql.startswith("CREATE OR REPLACE VIEW") and "liberacion." not in sql:
                executed.append(sql)
            return real_execute(self.con, sql, *args)

    opened = views.new_connection
    monkeypatch.setattr(views, "new_connection", lambda database: Recording(opened(database)))
    return executed


def test_a_publish_creates_again_only_the_view_of_the_table_it_changed(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = Lake(home)
    for name in ("cms.a", "cms.b", "cdc.c"):
        lake.publish(name, _table(2))
    created = _created_views(monkeypatch)
    lake.publish("cms.b", _table(4))
    assert len(created) == 1 and created[0].startswith('CREATE OR REPLACE VIEW "cms"."b"'), created


def test_a_home_of_fewer_tables_builds_the_file_anew(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "IN_PLACE_FROM", 4)
    lake = Lake(home)
    for name in ("cms.a", "cms.b", "cdc.c"):
        lake.publish(name, _table(2))
    created = _created_views(monkeypatch)
    lake.publish("cms.b", _table(4))  # 3 tables: every view made anew
    assert len(created) == 3
    lake.publish("cms.d", _table(1))  # 4 tables: in place
    assert len(created) == 4 and created[-1].startswith('CREATE OR REPLACE VIEW "cms"."d"'), created


def test_a_view_someone_changed_in_the_file_is_made_again(home: Path, tmp_path: Path) -> None:
    lake = Lake(home)
    lake.publish("cms.a", _table(3))
    with duckdb.connect(str(lake.home.views_db)) as con:
        con.execute("CREATE OR REPLACE VIEW cms.a AS SELECT 42 AS answer")
        con.execute("CREATE VIEW cms.extra AS SELECT 1 AS one")
    lake.publish("cdc.b", _table(2))
    assert _contents(lake.home.views_db) == _built_anew(lake, tmp_path)


@pytest.mark.parametrize("foreign", ["CREATE TABLE cms.mine AS SELECT 1 AS x", "CREATE SEQUENCE cms.counter"])
def test_a_file_holding_more_than_views_is_built_anew(home: Path, tmp_path: Path, foreign: str) -> None:
    lake = Lake(home)
    lake.publish("cms.a", _table(3))
    with duckdb.connect(str(lake.home.views_db)) as con:
        con.execute(foreign)
    lake.publish("cdc.b", _table(2))
    assert _contents(lake.home.views_db) == _built_anew(lake, tmp_path)


def test_a_file_duckdb_cannot_open_is_built_anew(home: Path, tmp_path: Path) -> None:
    lake = Lake(home)
    lake.publish("cms.a", _table(3))
    header = lake.home.views_db.read_bytes()[:12]  # DuckDB's magic stays: only opening it fails
    lake.home.views_db.write_bytes(header + b"\0" * 5000)
    with pytest.warns(UserWarning, match="could not be opened; it was rebuilt"):
        lake.update_views_db()
    assert _contents(lake.home.views_db) == _built_anew(lake, tmp_path)


def test_a_query_reads_the_file_while_it_is_current(home: Path) -> None:
    """A query attaches ``lake.duckdb`` only when it holds the lake's tables as they are now; a
    table changed since (by a writer that did not bring the file up to date) has its views made
    anew in memory."""
    import os

    from liberacion import query
    from liberacion.lake import CURRENT_FILE

    lake = Lake(home)
    lake.publish("cms.a", _table(3))
    lake.publish("cdc.b", _table(2))

    def attached() -> tuple[bool, int]:
        con = query.connect(lake)
        try:
            found = con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'liberacion_views'")
            return found.fetchone() == (1,), con.execute("SELECT count(*) FROM cms.a").fetchone()[0]
        finally:
            con.close()

    assert attached() == (True, 3)
    later = lake.home.views_db.stat().st_mtime_ns + 1_000_000_000
    os.utime(lake.table_dir("cms.a") / CURRENT_FILE, ns=(later, later))
    assert attached() == (False, 3)
