"""Today's changes tried again as a user would: what broke, kept broken no more."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# A query whose rows depend on how often it has run: the sequence's first ten values pass the
# filter, any later ones do not. A terminal table that runs the query a second time (to count
# the rows past the screen, or to read it again as Arrow) sees none of them.
_RUNS_ONCE = "create sequence s; select {select} from range(10) where nextval('s') <= 10"


def test_a_terminal_table_counts_the_rows_of_the_run_it_shows(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("sql", "--format", "table", "--max-rows", "3", _RUNS_ONCE.format(select="range as i"))
    assert result.exit_code == 0, result.stderr
    assert "10 rows, 7 more rows not shown" in result.stdout, result.stdout


def test_a_terminal_table_of_nested_values_runs_the_query_once(cli) -> None:  # type: ignore[no-untyped-def]
    # A list column takes the Arrow path: it showed "0 rows" where CSV gives ten.
    result = cli("sql", "--format", "table", _RUNS_ONCE.format(select="[range] as l"))
    assert result.exit_code == 0, result.stderr
    assert "[9]" in result.stdout and result.stdout.splitlines()[-1] == "10 rows", result.stdout


def test_a_terminal_table_past_the_screen_counts_a_random_result_as_shown(cli) -> None:  # type: ignore[no-untyped-def]
    # setseed before each run would give the same rows; the count must be of this run's rows,
    # which a second run without the seed tells differently almost always.
    script = "select setseed(0.5); select random() as r from range(20000) where random() < 0.5"
    table = cli("sql", "--format", "table", "--max-rows", "3", script)
    assert table.exit_code == 0, table.stderr
    csv = cli("sql", "--format", "csv", script)
    rows = len(csv.stdout.splitlines()) - 1
    assert f"{rows:,} rows, {rows - 3:,} more rows not shown" in table.stdout, (rows, table.stdout)


def test_a_query_that_spills_before_any_fetch_runs_without_making_the_home(tmp_path: Path) -> None:
    home = tmp_path / "not-yet"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), "LIBERACION_MEMORY_LIMIT": "40MB"}
    query = "select count(*) as n from (select range, random() r from range(3000000) order by r)"
    done = subprocess.run(
        [sys.executable, "-m", "liberacion", "sql", query], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr  # it spilled to a directory DuckDB could not make
    assert done.stdout == "n\n3000000\n" and not home.exists()
