"""`sql` writes every DuckDB value exactly, whatever path the result takes: the COPY of one query,
the Arrow stream of a script of several statements or of --safe, and the terminal table."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import at_terminal

# Values that Python, pyarrow or Arrow cannot hold as they are: DuckDB's infinities, a TIMESTAMP
# past 2262 and past 9999, the nanoseconds of a TIMESTAMP_NS, TIME 24:00:00, a TIMETZ's offset,
# the smallest HUGEINT (which DuckDB cannot write from a DECIMAL(38,0), Arrow's form of it), BIT,
# and a DECIMAL inside a list (a float in Python).
SPECIALS = (
    "select 'infinity'::date as di, '-infinity'::timestamp as tni, '-infinity'::timestamptz as tzi, "
    "'1970-01-01 00:00:00.123456789'::timestamp_ns as tns, '294247-01-10 04:00:54.775806'::timestamp as tmax, "
    "'24:00:00'::time as t24, '12:00:00+05'::timetz as ttz, "
    "(-170141183460469231731687303715884105727::hugeint - 1) as hmin, '101'::bit as bits, "
    "[0.333333333333333333333333333333::decimal(38,30)] as ld"
)
EXPECTED = {
    "di": "infinity",
    "tni": "-infinity",
    "tzi": "-infinity",
    "tns": "1970-01-01T00:00:00.123456789",
    "tmax": "294247-01-10T04:00:54.775806",
    "t24": "24:00:00",
    "ttz": "12:00:00+05",
    "bits": "101",
}
HMIN = -(2**127)
THIRD = Decimal("0.333333333333333333333333333333")

# The three ways a result is written: DuckDB's COPY (one query), and the Arrow stream that render
# writes (a script of several statements, or the --safe sandbox, which may not write files).
PATHS = {"one query": ([], ""), "script": ([], "select 1; "), "safe": (["--safe"], "")}


def _strict(text: str) -> object:
    """JSON as jq reads it: bare NaN or Infinity tokens are refused; decimals kept exact."""

    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse, parse_float=Decimal)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_csv_holds_each_value_exactly_on_every_path(cli, fmt: str, path: str) -> None:
    options, prefix = PATHS[path]
    result = cli("sql", *options, prefix + SPECIALS, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout), delimiter="," if fmt == "csv" else "\t"))
    assert len(rows) == 1
    row = rows[0]
    assert {k: row[k] for k in EXPECTED} == EXPECTED
    assert int(row["hmin"]) == HMIN
    assert _strict(row["ld"]) == [THIRD]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_holds_each_value_exactly_on_every_path(cli, fmt: str, path: str) -> None:
    options, prefix = PATHS[path]
    result = cli("sql", *options, prefix + SPECIALS, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    records = _strict(result.stdout) if fmt == "json" else [_strict(line) for line in result.stdout.splitlines()]
    assert isinstance(records, list) and len(records) == 1
    record = records[0]
    assert {k: record[k] for k in EXPECTED} == EXPECTED
    assert record["hmin"] == HMIN
    assert record["ld"] == [THIRD]


@pytest.mark.parametrize("path", PATHS)
def test_json_values_of_the_query_are_json_not_strings(cli, path: str) -> None:
    # A JSON column (json_extract, to_json) and a BIGNUM: through Arrow they were strings.
    options, prefix = PATHS[path]
    query = "select json_extract('{\"a\": [1, {\"b\": null}]}', '$.a') as j, 1e40::bignum as n, 2 as j"
    result = cli("sql", *options, prefix + query, "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert _strict(result.stdout) == {"j": [1, {"b": None}], "n": 10**40 + 303786028427003666890752, "j_1": 2}


def test_a_scripts_output_file_reads_back_in_duckdb_as_written(cli, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = cli("sql", "select 1; " + SPECIALS, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    read = duckdb.sql(f"select * from read_csv('{out}', all_varchar = true)")
    row = dict(zip(read.columns, read.fetchall()[0]))
    assert {k: row[k] for k in EXPECTED} == EXPECTED
    assert int(row["hmin"]) == HMIN


@pytest.mark.parametrize("prefix", ["", "select 1; "])
def test_markdown_holds_what_python_cannot(cli, prefix: str) -> None:
    result = cli("sql", prefix + SPECIALS, "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    header, _, values = result.stdout.splitlines()
    names = [c.strip() for c in header.strip("|").split("|")]
    row = dict(zip(names, (v.strip() for v in values.strip("|").split("|"))))
    assert {k: row[k] for k in EXPECTED} == EXPECTED
    assert row["hmin"] == str(HMIN)
    assert row["ld"] == f"[{THIRD}]"


def test_parquet_keeps_a_time_zones_offset(cli, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    result = cli("sql", "select '12:00:00+05'::timetz as ttz, '12:00:00+00'::timetz as utc", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    read = duckdb.sql(f"select ttz::varchar, utc::varchar from '{out}'").fetchall()
    assert read == [("12:00:00+05", "12:00:00+00")]


def test_the_terminal_shows_infinite_dates_as_infinity(home: Path) -> None:
    # Dates and timestamps alone are fetched as Python values, which make DuckDB's infinity the
    # year 9999 and -infinity the year 1: a table showed 9999-12-31 for a date that is not one.
    query = (
        "select 'infinity'::date as di, '-infinity'::date as dni, 'infinity'::timestamp as ti, "
        "'-infinity'::timestamp_ms as tni, '2024-05-06'::date as d, null::timestamp as n, 7 as DI"
    )
    status, shown = at_terminal(home, "--no-color", "sql", query)
    assert status == 0, shown
    assert "│ di │ dni │ ti │ tni │ d │ n │ DI │" in shown  # each name as the query gave it
    assert "│ infinity │ -infinity │ infinity │ -infinity │ 2024-05-06 │ NULL │ 7 │" in shown
    assert "9999" not in shown and "0001" not in shown


def test_an_error_at_the_terminal_quotes_no_sql_but_the_users(home: Path) -> None:
    # A query with a date column runs inside a SELECT of liberacion's (see the test above).
    query = "select date '2024-01-01' + range::int as d, ('oops' || range)::int as n from range(3)"
    status, shown = at_terminal(home, "--no-color", "sql", query)
    assert status == 4, shown
    assert "error:" in shown and "oops" in shown and "UNION" not in shown and "isinf" not in shown


def test_the_terminal_shows_what_arrow_cannot_give_python(home: Path) -> None:
    # A column of another type (a list) sends the result through Arrow, whose Python values failed
    # on -infinity with a time zone (an internal error), made TIMESTAMP_NS's infinity 2262, wrapped
    # 24:00:00 to midnight and dropped a TIMETZ's offset.
    query = (
        "select '-infinity'::timestamptz as tzi, 'infinity'::timestamp_ns as tns, '24:00:00'::time as t24, "
        "'12:00:00+05'::timetz as ttz, 'infinity'::date as di, [1] as l"
    )
    status, shown = at_terminal(home, "--no-color", "sql", query)
    assert status == 0, shown
    assert "│ -infinity │ infinity │ 24:00:00 │ 12:00:00+05 │ infinity │ [1] │" in shown
    assert "error" not in shown and "2262" not in shown


def test_the_terminal_shows_decimals_in_plain_digits(home: Path) -> None:
    # Python writes a small Decimal as 1.000E-7, and a zero of scale 10 as 0E-10.
    query = "select 0.0000001::decimal(18,10) as rate, 0::decimal(18,10) as zero, 1234567.5::decimal(12,2) as big"
    status, shown = at_terminal(home, "--no-color", "sql", query)
    assert status == 0, shown
    assert "│ 0.0000001000 │ 0.0000000000 │ 1,234,567.50 │" in shown
    assert "E-" not in shown


def test_text_beside_an_infinite_date_is_still_cut_to_the_screen(home: Path) -> None:
    status, shown = at_terminal(home, "--no-color", "sql", "select 'infinity'::date as d, repeat('x', 300) as t")
    assert status == 0, shown
    assert "│ infinity │ xxx" in shown and "x…" in shown and "x" * 300 not in shown
