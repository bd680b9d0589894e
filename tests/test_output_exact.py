"""JSON and JSON Lines keep every column and every value exact, and are always valid JSON."""

from __future__ import annotations

import csv
import io
import json

import pytest

NESTED = (
    "select ['nan'::double, 'inf'::double, 1.5] as l, {'x': 'nan'::double, 'y': '-inf'::float} as s, "
    "map {'k': 'inf'::double} as m, [{'q': '-inf'::double}] as ls, null::struct(a double) as ns"
)


def _strict(text: str) -> object:
    """JSON as the standard has it: bare NaN or Infinity tokens are refused."""

    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def _records(stdout: str, fmt: str) -> list[dict[str, object]]:
    if fmt == "json":
        return _strict(stdout)  # type: ignore[return-value]
    return [_strict(line) for line in stdout.splitlines()]  # type: ignore[misc]


# "select 1; ..." sends the result through the Arrow path (render) rather than DuckDB's COPY.
@pytest.mark.parametrize("prefix", ["", "select 1; "])
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_columns_sharing_a_name_are_all_kept(cli, fmt: str, prefix: str) -> None:
    result = cli("sql", prefix + "select 1 as a, 2 as a, 3 as A", "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert _records(result.stdout, fmt) == [{"a": 1, "a_1": 2, "A_2": 3}]


def test_names_differing_only_in_case_keep_their_own_values(cli) -> None:
    result = cli("sql", "select 1 as A, 2 as a", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert list(csv.reader(io.StringIO(result.stdout))) == [["A", "a"], ["1", "2"]]


@pytest.mark.parametrize("prefix", ["", "select 1; "])
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_big_integers_stay_exact(cli, fmt: str, prefix: str) -> None:
    query = (
        "select 12345678901234567890::hugeint as big, 1 as big, 18446744073709551615::ubigint as u, "
        "-170141183460469231731687303715884105727::hugeint as h"
    )
    result = cli("sql", prefix + query, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    record = _records(result.stdout, fmt)[0]
    assert record == {
        "big": 12345678901234567890,
        "big_1": 1,
        "u": 18446744073709551615,
        "h": -170141183460469231731687303715884105727,
    }


UHUGEINT_MAX = 2**128 - 1


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown"])
def test_an_unsigned_128_bit_integer_is_exact_or_refused_never_wrong(cli, fmt: str) -> None:
    # Arrow has no unsigned 128-bit type: DuckDB's export made 2^128 - 1 read as -1.
    fits = cli("sql", f"select 1; select {2**127 - 1}::uhugeint as u, 5::uhugeint as a", "--format", fmt)
    assert fits.exit_code == 0, fits.stderr
    assert str(2**127 - 1) in fits.stdout and "-" not in fits.stdout.replace("|---", "").replace("---", "")
    too_big = cli("sql", f"select 1; select {UHUGEINT_MAX}::uhugeint as u", "--format", fmt)
    if fmt != "markdown":  # a script's last SELECT written by DuckDB, as a single query's: exact
        assert too_big.exit_code == 0 and str(UHUGEINT_MAX) in too_big.stdout, too_big.stderr
        return
    assert too_big.exit_code == 4, too_big.stdout
    assert "column u holds a UHUGEINT above 2^127 - 1" in too_big.stderr and "u::VARCHAR" in too_big.stderr
    assert "-1" not in too_big.stdout


def test_an_unsigned_128_bit_integer_in_parquet_keeps_its_value(cli, tmp_path) -> None:
    import duckdb

    out = tmp_path / "u.parquet"
    result = cli("sql", f"select {2**127 - 1}::uhugeint as u", "--format", "parquet", "--output", str(out))
    assert result.exit_code == 0, result.stderr
    assert duckdb.sql(f"select u::varchar from '{out}'").fetchall() == [(str(2**127 - 1),)]
    refused = cli("sql", f"select {UHUGEINT_MAX}::uhugeint as u", "--format", "parquet", "--output", str(out))
    assert refused.exit_code == 4 and "UHUGEINT above 2^127 - 1" in refused.stderr


def test_a_listing_with_a_big_decimal_stays_exact() -> None:
    from decimal import Decimal

    from liberacion.render import Format, Rows, render

    out = io.StringIO()
    render(Rows(["n", "n"], [[(Decimal(12345678901234567890), 1)]]), Format.json, stdout=out)
    assert json.loads(out.getvalue()) == [{"n": 12345678901234567890, "n_1": 1}]


@pytest.mark.parametrize("prefix", ["", "select 1; "])
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_nan_and_infinity_inside_nested_values_are_valid_json(cli, fmt: str, prefix: str) -> None:
    result = cli("sql", prefix + NESTED, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    record = _records(result.stdout, fmt)[0]
    assert record == {
        "l": [None, "inf", 1.5],
        "s": {"x": None, "y": "-inf"},
        "m": {"k": "inf"},
        "ls": [{"q": "-inf"}],
        "ns": None,
    }


def test_nested_values_in_csv_are_valid_json(cli) -> None:
    result = cli("sql", NESTED, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    assert _strict(row["l"]) == [None, "inf", 1.5] and _strict(row["s"]) == {"x": None, "y": "-inf"}
    assert _strict(row["m"]) == {"k": "inf"}


@pytest.mark.parametrize("prefix", ["", "select 1; "])
def test_a_real_is_written_as_its_shortest_text(cli, prefix: str) -> None:
    result = cli("sql", prefix + "select 0.1::float as r, [0.1::float] as rs", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert '"r":0.1' in result.stdout.replace(" ", "") and '"rs":[0.1]' in result.stdout.replace(" ", "")
