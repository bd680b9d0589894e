"""`sql` over results of millions of rows: Markdown as fast as CSV and the same values, and a
terminal table of a sorted result that runs its query once."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import pytest

from tests.conftest import at_terminal, run_process

# Text holding what Markdown escapes (| and line breaks), NULLs, and each kind of value.
ROWS = (
    "select i, i / 4 as quarter, (i % 1000)::decimal(8, 2) / 7 as rate, date '2001-01-01' + (i % 9000)::int as day, "
    "timestamp '2026-01-01' + to_seconds(i) as at, i % 3 = 0 as flag, "
    "case when i % 7 = 0 then null when i % 5 = 0 then 'a|b' || chr(10) || 'c' || chr(13) else 'row ' || i end as note "
    "from range({n}) t(i)"
)


def _fastest(*args: str, runs: int = 2) -> tuple[float, str]:
    """The quickest of ``runs`` runs of ``liberacion ARGS`` into a pipe, and what it wrote."""
    best, out = float("inf"), ""
    for _ in range(runs):
        start = time.perf_counter()
        done = run_process(*args)
        elapsed = time.perf_counter() - start
        assert done.returncode == 0, done.stderr
        best, out = min(best, elapsed), done.stdout
    return best, out


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def test_markdown_of_a_large_result_is_written_about_as_fast_as_its_csv(home: Path) -> None:
    # Markdown formatted each value in Python: ten times as long as the same result's CSV.
    query = ROWS.format(n=600_000)
    csv_time, csv_text = _fastest("sql", query, "--format", "csv")
    markdown_time, markdown = _fastest("sql", query, "--format", "markdown")
    header, *rows = list(csv.reader(io.StringIO(csv_text, newline="")))
    lines = markdown.split("\n")
    assert lines[0] == "| " + " | ".join(header) + " |" and lines[1] == "|---" * len(header) + "|"
    assert lines[2:] == ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows] + [""]
    assert markdown_time < 3 * csv_time, f"Markdown {markdown_time:.2f} s, CSV {csv_time:.2f} s"


@pytest.mark.parametrize("prefix", ["", "select 1; "])
def test_markdown_of_nested_values_holds_what_their_csv_holds(home: Path, prefix: str) -> None:
    # Through Arrow a nested TIME WITH TIME ZONE lost its offset, a UHUGEINT above 2^127 read -1
    # and a BIT its inner bytes (["12:00:00"], [-1], "\x05\xFD").
    query = "select [timetz '12:00:00+05'] as t, [340282366920938463463374607431768211455::uhugeint] as u, "
    query += "{'b': '101'::bit} as b"
    done = run_process("sql", prefix + query, "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[2] == (
        '| ["12:00:00+05"] | [340282366920938463463374607431768211455] | {"b": "101"} |'
    ), done.stdout


def _footer_count(shown: str) -> int:
    found = re.search(r"([\d,]+) rows, [\d,]+ more rows not shown", shown)
    assert found, shown
    return int(found.group(1).replace(",", ""))


def test_a_sorted_tables_footer_counts_the_rows_it_shows(home: Path) -> None:
    # Past the rows shown, a sorted result was counted by running the query again: its sort twice,
    # and a sample drawn anew, so the footer could count other rows than those shown.
    query = (
        "select i, count(*) over () as drawn, 'name ' || i as name, i * 1.5 as half from range(8000000) t(i) "
        "using sample 50% (bernoulli) order by i desc"
    )
    code, shown = at_terminal(home, "--no-color", "sql", query, "--max-rows", "3")
    assert code == 0, shown
    drawn = re.search(r"│ [\d,]+ │ ([\d,]+) │ name", shown)
    assert drawn, shown
    assert _footer_count(shown) == int(drawn.group(1).replace(",", ""))
    # Every value is still computed: an error past the rows shown is the query's error.
    failing = "select i, 10 // (i - 2000000) as x from range(3000000) t(i) order by i desc"
    code, shown = at_terminal(home, "--no-color", "sql", failing, "--max-rows", "3")
    assert code == 4 and "Division by zero" in shown and "rows not shown" not in shown, shown
