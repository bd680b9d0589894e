"""Queries naming the tables a pipeline fetches (files and URLs land in the ``local`` catalog, a
word DuckDB's parser quotes) or any keyword: what a script reads from the exit code and stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.test_pipelines import fetched


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def current_folder(home: Path, table: str) -> Path:
    directory = home / "lake" / table.replace(".", "/")
    return directory / "snapshots" / (directory / "current").read_text().strip()


def test_a_missing_table_of_the_local_catalog_is_named_as_written(cli: Any, tmp_path: Path) -> None:
    """``local`` is a keyword DuckDB's parser quotes: the error said ``"local".nosuch``, and offered
    ``"local".a``, a name to copy that is not the table's."""
    fetched(cli, tmp_path, "local.a")
    missing = cli("sql", "select * from local.nosuch", "--format", "json")
    assert missing.exit_code == 3 and missing.stdout == ""
    assert errors(missing.stderr) == ["error: no table named local.nosuch in the lake; see: liberacion tables"]
    near = cli("sql", "select * from local.aa")
    assert errors(near.stderr) == [
        "error: no table named local.aa in the lake (did you mean local.a?); see: liberacion tables"
    ]


def test_a_damaged_table_of_the_local_catalog_is_said_to_be_damaged(cli: Any, home: Path, tmp_path: Path) -> None:
    """README: every command that reads a damaged table says so, with the fetch that mends it (exit
    1). A ``local`` table's query said there was no such table (exit 3) once ``lake.duckdb`` had
    been rebuilt without its view; so did ``--as-of`` for any table, or that it had no snapshot
    as of a time after its oldest."""
    fetched(cli, tmp_path, "local.a", "loc.a")
    for table in ("local.a", "loc.a"):
        (current_folder(home, table) / "snapshot.json").unlink()
    fetched(cli, tmp_path, "local.b")  # a publish rebuilds lake.duckdb: the damaged tables have no view
    for table in ("local.a", "loc.a"):
        for when in ([], ["--as-of", "2099-01-01"]):
            result = cli("sql", f"select count(*) from {table}", "--format", "csv", *when)
            [line] = errors(result.stderr)
            assert result.exit_code == 1 and line.startswith(f"error: table {table} is damaged"), (when, result.stderr)
            assert f"--as {table} --force" in line and result.stdout == ""


def test_a_keyword_table_name_two_catalogs_hold_is_refused(cli: Any, tmp_path: Path) -> None:
    """README: a name without its catalog, when two catalogs hold it, is refused (exit 2), never
    answered from the first one found; ``"order"`` (quoted, as SQL needs it) was answered."""
    fetched(cli, tmp_path, "local.order", "cms.order")
    result = cli("sql", 'select count(*) as n from "order"', "--format", "json")
    assert result.exit_code == 2 and result.stdout == ""
    assert "order is a table of more than one catalog (cms.order, local.order)" in result.stderr
    assert json.loads(cli("sql", 'select count(*) as n from local."order"', "--format", "json").stdout) == [{"n": 3}]
