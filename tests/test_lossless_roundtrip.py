"""Nothing silently lost: every cell of a converted CSV read back against the text it was published
as. A typed cell must denote the number, date or truth its text says; a missing-value marker must be
NULL and counted in the conversion's report; a row the reader could not parse must be in the
rejects; every other cell must be the published text, byte for byte. The real CSV files (and
zipped and tab-delimited ones) and ugly variants generated here go through ``fetch FILE``."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pytest

from liberacion.convert.typing_rules import FLAGS, MISSING_MARKERS
from liberacion.lake import Lake
from tests.conftest import REALDATA

MARKERS = frozenset(MISSING_MARKERS)
US_TIMES = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S%p", "%m/%d/%Y %I:%M%p")


# -- the round trip -----------------------------------------------------------------------------------


def fetch(cli: Any, path: Path, table: str = "t.x", *args: str) -> dict[str, Any]:
    result = cli("fetch", str(path), "--as", table, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout.splitlines()[0])


def published_rows(text: str, conversion: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows of a file's text as Python's csv module reads them, less what the
    conversion says it left out on purpose (title lines, a notes block, footnotes, blank lines)."""
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=conversion.get("delimiter", ",")))
    rows = rows[conversion.get("skipped_title_lines", 0) :]
    header, body = rows[0], rows[1:]
    if {"trailing_notes", "wonder_notes"} & conversion.keys():
        ends = [i for i, r in enumerate(body) if len(r) == 1 and r[0].strip().strip('"') == "---"]
        body = body[: ends[0]] if ends else body
    body = body[: len(body) - conversion.get("footer_lines", 0)]  # its lines are rows to csv, none quoted over lines
    return header, [r for r in body if r]  # a blank line is no row, to DuckDB as to csv


def repeats_header(row: list[str], header: list[str]) -> bool:
    """A row dropped for repeating the header: its names in any letter case, spaces around them aside."""
    return [v.strip(" ").lower() for v in row] == [h.strip(" ").lower() for h in header]


def denotes(text: str, type_: str, rule: str) -> Any:
    """The value ``text`` says, for a column of ``type_`` (ValueError when it says none)."""
    v = text.strip()
    for flag in FLAGS:  # CDC WONDER's "12.3 (Unreliable)": the number, the flag counted
        if v.lower().endswith(flag):
            v = v[: -len(flag)].strip()
    if type_ == "BIGINT":
        return int(v.replace(",", ""))
    if type_ == "DOUBLE":
        return Decimal(v.rstrip("%").strip().replace(",", ""))
    if type_.startswith("DECIMAL"):
        negative = v.startswith("(") and v.endswith(")")
        amount = Decimal(v.strip("()").replace("$", "").replace(",", "").replace(" ", ""))
        return -amount if negative else amount
    if type_ == "BOOLEAN":
        return v.lower() in ("yes", "y", "true")
    if type_ == "DATE":
        if "day-first" in rule:
            return datetime.strptime(v, "%d/%m/%Y").date()
        if v.find("/") in (1, 2):
            return datetime.strptime(v, "%m/%d/%Y").date()
        return date.fromisoformat(v.replace("/", "-"))
    if type_ == "TIMESTAMP":
        for form in US_TIMES:
            try:
                return datetime.strptime(v.upper(), form)
            except ValueError:
                pass
        return datetime.fromisoformat(v.removesuffix("Z"))
    raise ValueError(f"no reading for {type_}")


def keeps(value: Any, expected: Any, type_: str) -> bool:
    """Does the stored ``value`` denote ``expected``? A DOUBLE does when it is that number, or prints
    back as it with as many significant digits as the text had (a double printed in full,
    ``17.899999999999999``, is that double); never beyond 17 digits, which no double tells apart."""
    if type_ == "DOUBLE":
        if Decimal(value) == expected:
            return True
        digits = len(expected.normalize().as_tuple().digits)
        return digits <= 17 and Decimal(format(value, f".{digits}g")) == expected
    return value == expected


def round_trip(home: Path, table: str, raw: bytes, encoding: str = "utf-8") -> list[str]:
    """Every cell of ``table`` against the published text ``raw``: the problems found."""
    snapshot = Lake(home).current(table)
    conversion = snapshot.provenance.extra.get("conversion", {})
    columns = list(snapshot.provenance.columns.values())
    con = duckdb.connect()
    data = con.sql(f"SELECT * FROM read_parquet({[str(p) for p in snapshot.data_paths]!r})")
    names, types, rows = data.columns, [str(t) for t in data.types], data.fetchall()
    rejects = snapshot.rejects
    text = raw.removeprefix(b"\xef\xbb\xbf").decode(encoding, "replace")
    header, body = published_rows(text, conversion)
    problems = []
    dropped = [r for r in body if repeats_header(r, header)]
    if len(dropped) != conversion.get("repeated_header_rows", 0):
        noted = conversion.get("repeated_header_rows")
        problems.append(f"{len(dropped)} rows repeat the header, the note says {noted}")
    body = [r for r in body if not repeats_header(r, header)]
    if len(rows) + rejects != len(body):
        problems.append(f"{len(rows)} rows + {rejects} rejects for {len(body)} rows published")
    whole = [r for r in body if len(r) == len(names)]
    if len(whole) != len(rows):
        return [*problems, f"{len(rows)} rows for {len(whole)} rows of {len(names)} fields"]
    texts_by_column = list(zip(*whole)) or [()] * len(names)
    values_by_column = list(zip(*rows)) or [()] * len(names)
    for name, type_, column, texts, values in zip(names, types, columns, texts_by_column, values_by_column):
        counted: dict[str, int] = {}
        # Each distinct (text, value) pair once: wide files repeat their codes millions of times.
        for (text, value), times in Counter(zip(texts, values)).items():
            found: dict[str, int] = {}
            problem = _cell(text, value, type_, column.get("rule", ""), found)
            for spelling, count in found.items():
                counted[spelling] = counted.get(spelling, 0) + count * times
            if problem:
                problems.append(f"{name} ({type_}), {times} row(s): {problem}")
        if counted != column.get("markers", {}):
            problems.append(f"{name} ({type_}): markers {counted}, the report says {column.get('markers', {})}")
    return problems


def _cell(text: str, value: Any, type_: str, rule: str, counted: dict[str, int]) -> str | None:
    trimmed = text.strip()
    if type_ == "VARCHAR" and not rule.startswith("only missing-value markers"):
        return None if value == text or (value is None and text == "") else f"{text!r} became {value!r}"
    if not trimmed:
        return None if value is None else f"an empty cell became {value!r}"
    if trimmed.lower() in MARKERS:
        counted[trimmed] = counted.get(trimmed, 0) + 1
        return None if value is None else f"the marker {text!r} became {value!r}"
    if type_ == "VARCHAR":
        return f"{text!r} in a column of markers only"
    for flag in FLAGS:
        if trimmed.lower().endswith(flag):
            counted[trimmed[-len(flag) :]] = counted.get(trimmed[-len(flag) :], 0) + 1
    try:
        expected = denotes(text, type_, rule)
    except (ValueError, InvalidOperation):
        return f"{text!r} says no {type_}, yet became {value!r}"
    return None if value is not None and keeps(value, expected, type_) else f"{text!r} became {value!r}"


def delimited_files() -> list[Path]:
    if not REALDATA.is_dir():
        return []
    return sorted(p for p in REALDATA.rglob("*") if p.suffix.lower() in (".csv", ".txt", ".zip"))


# -- the real files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", [str(p.relative_to(REALDATA)) for p in delimited_files()] or ["(absent)"])
def test_every_cell_of_a_real_delimited_file_reads_back_as_published(
    cli: Any, home: Path, realdata: Path, relative: str
) -> None:
    path = realdata / relative
    fetch(cli, path, "t.x")
    problems: list[str] = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            tables = [t for t in Lake(home).names() if t.startswith("t.x")]
            assert tables
            for table in tables:
                conversion = Lake(home).current(table).provenance.extra["conversion"]
                raw = archive.read(conversion["member"])
                problems += [f"{table}: {p}" for p in round_trip(home, table, raw, _encoding(conversion))]
    else:
        conversion = Lake(home).current("t.x").provenance.extra["conversion"]
        problems = round_trip(home, "t.x", path.read_bytes(), _encoding(conversion))
    assert problems == [], "\n".join(problems[:20])


def _encoding(conversion: dict[str, Any]) -> str:
    return "utf-8" if conversion.get("encoding", "utf-8").startswith("utf-8") else conversion["encoding"]


# -- ugly variants ------------------------------------------------------------------------------------


def _lines(*rows: str) -> str:
    return "".join(f"{r}\n" for r in rows)


UGLY: dict[str, str] = {
    "thousands, currency, percent": _lines(
        "n,amount,share,note", '"1,234",$1.00,12.345%,a', '"169,936","($1,234.00)",1%,b', "7,-$5,-0.5 %,c"
    ),
    "markers of every spelling": _lines(
        "n,x,label",
        "1,1.5,a",
        "Not Available,not available,b",
        "NOT AVAILABLE,N/A,c",
        "*,Suppressed,d",
        "--,Not Applicable,e",
        "(S),n.a.,f",
        " N/A ,~,g",
    ),
    "codes stay text": _lines("zip,fips,npi,code", "02115,01001,1234567893,0012", "10001,36061,1003000126,13"),
    "dates and times": _lines(
        "d,ts,us",
        "09/02/2023,2023-01-02T03:04:05Z,01/05/2024 01:45:00 PM",
        "02/29/2024,2023-01-02 03:04:05.5,1/5/2024 1:45 am",
        "N/A,2023-01-02T03:04:05.000123,12/31/2023 12:00:00 AM",
    ),
    "invalid dates and two-digit years stay text": _lines(
        "leap,short,late", "02/29/2023,09/02/23,2023-01-01 24:00:00", "02/28/2023,02/28/23,2023-01-01 12:00:00"
    ),
    "spaces, signs, scientific": _lines("n,d,t", " 12 ,1E5,  kept  ", "+5,2.5e-3,tail ", "-0,.5,\u00a0nbsp"),
    "unicode minus and odd numbers stay text": _lines("m,h,n", "\u221212,0x10,NaN", "13,12,inf"),
    "booleans": _lines("a,b,c", "Y,TRUE,t", "N,false,f", "y,Yes,t"),
    "1.0 beside 1": _lines("n,m", "1.0,1", "2,2.50"),
    "duplicate and empty header names": _lines("a,a,,A", "1,2,3,4", "5,6,7,8"),
    "quoted newlines and doubled quotes": _lines("a,b", '1,"line one', 'line two"', '2,"say ""hi"""'),
    "long numbers": _lines(
        "big,wide,fine",
        "12345678901234567890,123456789012345.123456789012345,17.899999999999999",
        "1.5,0.1234567890123456789,75.900000000000006",
        "2.5,1e-400,1.5",
    ),
    "integers beyond BIGINT": _lines("n,s", '1,"1,234"', '99999999999999999999,"99,999,999,999,999,999,999"'),
    "short and long rows": _lines("a,b,c", "1,2,3", "4,5", "6,7,8,9", *(f"{i},{i},{i}" for i in range(300))),
}


@pytest.mark.parametrize("name", list(UGLY))
def test_every_cell_of_an_ugly_csv_reads_back_as_published(cli: Any, home: Path, tmp_path: Path, name: str) -> None:
    path = tmp_path / "ugly.csv"
    path.write_text(UGLY[name], encoding="utf-8", newline="")
    fetch(cli, path, "t.x")
    assert round_trip(home, "t.x", path.read_bytes()) == []


def test_crlf_and_a_byte_order_mark_change_no_cell(cli: Any, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "crlf.csv"
    text = UGLY["markers of every spelling"]
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    fetch(cli, path, "t.x")
    assert round_trip(home, "t.x", path.read_bytes().replace(b"\r\n", b"\n")) == []
    assert Lake(home).current("t.x").provenance.columns["n"]["original"] == "n"  # no BOM debris


def _long_file(path: Path, rows: int, tail: list[tuple[str, str, str]]) -> None:
    """``rows`` canonical rows (past the 50,000-row sample), then the ``tail``."""
    body = [(str(i), f"{i % 100}.5", f"{i % 9}") for i in range(rows)] + tail
    path.write_text("n,d,k\n" + "".join(f"{a},{b},{c}\n" for a, b, c in body), encoding="utf-8")


def test_surprises_and_markers_past_the_sample_lose_no_cell(cli: Any, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    tail = [
        ("not available", "NOT AVAILABLE", "n.a."),
        ("(S)", "Suppressed", "*"),
        ("N/A", "--", "Not Applicable"),
        ("na", "nan", "hello"),  # text past the sample: the column is read again, as text
        ("12", "123456789012345.123456789012345", "4"),  # more digits than a DOUBLE keeps
    ]
    _long_file(path, 60_000, tail)
    fetch(cli, path, "t.x")
    assert round_trip(home, "t.x", path.read_bytes()) == []
    columns = Lake(home).current("t.x").provenance.columns
    assert [columns[c]["type"] for c in ("n", "d", "k")] == ["BIGINT", "VARCHAR", "VARCHAR"]


# -- defects found by the round trip ------------------------------------------------------------------


def _types(home: Path, table: str) -> dict[str, str]:
    return {name: c["type"] for name, c in Lake(home).current(table).provenance.columns.items()}


def _values(home: Path, table: str, column: str) -> list[Any]:
    snapshot = Lake(home).current(table)
    files = [str(p) for p in snapshot.data_paths]
    return [r[0] for r in duckdb.sql(f"SELECT {column} FROM read_parquet({files!r})").fetchall()]


def test_numbers_a_double_would_change_keep_the_column_as_text(cli: Any, home: Path, tmp_path: Path) -> None:
    """A DOUBLE keeps about 16 digits. `12345678901234567890` among decimals became 12345678901234567168,
    `123456789012345.123456789012345` (which the fast SQL path took) 123456789012345.12, and
    `1e-400` became 0: each column now stays text, exactly as published."""
    path = tmp_path / "digits.csv"
    path.write_text(
        _lines(
            "whole,fast,sep,pct,tiny,printed",
            '1.5,1.5,"1,234.5",1.5%,1.5,17.899999999999999',
            '12345678901234567890,123456789012345.123456789012345,"1,234,567,890,123.4567",'
            "12.3456789012345678%,1e-400,75.9",
        )
    )
    fetch(cli, path, "t.x")
    types = _types(home, "t.x")
    assert {c: types[c] for c in ("whole", "fast", "sep", "pct", "tiny")} == dict.fromkeys(
        ("whole", "fast", "sep", "pct", "tiny"), "VARCHAR"
    )
    assert _values(home, "t.x", "fast") == ["1.5", "123456789012345.123456789012345"]
    # A double printed in full is that double: the column stays a number.
    assert types["printed"] == "DOUBLE" and _values(home, "t.x", "printed") == [17.9, 75.9]
    assert round_trip(home, "t.x", path.read_bytes()) == []


def test_a_double_the_user_asked_for_may_round(cli: Any, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "asked.csv"
    path.write_text(_lines("v", "1.5", "12345678901234567890"))
    fetch(cli, path, "t.x", "--type", "v=double")
    assert _types(home, "t.x") == {"v": "DOUBLE"}
    assert _values(home, "t.x", "v") == [1.5, 12345678901234567890.0]


def test_a_ragged_file_s_header_is_not_taken_for_a_title(cli: Any, home: Path, tmp_path: Path) -> None:
    """A header with fewer fields than most rows (an unquoted comma in a text column) was taken for a
    title line: it and the first wide row were dropped, the row made the header, and the fetch said
    nothing. The header stays the header; the wide rows are bad rows."""
    path = tmp_path / "ragged.csv"
    path.write_text(_lines("id,place,n", '1,"Dallas, TX",3', "4,Austin, TX,6", "7,Waco, TX,9", "8,Tyler, TX,10"))
    result = cli("fetch", str(path), "--as", "t.x")
    assert result.exit_code == 1
    assert "3 bad rows (of 4) is more than allowed (1)" in result.stderr
    assert "t.x" not in Lake(home).names()

    report = fetch(cli, path, "t.x", "--max-bad-rows", "3")
    assert (report["rows"], report["rejects"]) == (1, 3)
    assert list(_types(home, "t.x")) == ["id", "place", "n"]
    assert round_trip(home, "t.x", path.read_bytes()) == []


def test_a_short_header_over_rows_of_data_is_the_header(cli: Any, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text(_lines("a,b", "1,2,3", "4,5,6", "7,8,9"))
    result = cli("fetch", str(path), "--as", "t.x", "--max-bad-rows", "3", "--json")
    # The header taken as such, every row under it is bad (line 2 on): no table of none of its rows.
    assert result.exit_code == 1
    assert "none of its rows could be read (3 bad rows, such as line 2: TOO MANY COLUMNS" in result.stderr
    assert not Lake(home).exists("t.x")


def test_titles_above_a_header_are_still_skipped(cli: Any, home: Path, tmp_path: Path) -> None:
    """What the ragged-header rule must not break: a one-field title, a title with a comma over a
    blank line, and a title of two fields over a header of names (years among them)."""
    for name, text in {
        "one": _lines("Table 1. Deaths", "state,deaths", "AL,3", "AK,4"),
        "blank": _lines("Deaths by state, 2020", "", "state,deaths", "AL,3", "AK,4"),
        "years": _lines("Deaths by state, 2020", "state,2019,2020", "AL,3,5", "AK,4,6"),
    }.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        report = fetch(cli, path, f"t.{name}")
        assert report["rows"] == 2, name
        assert next(iter(_types(home, f"t.{name}"))) == "state", name


def test_a_header_with_names_left_empty_is_not_taken_for_a_title(cli: Any, home: Path, tmp_path: Path) -> None:
    """`id,,,,` has fewer than half its names: it was skipped as a title and the first row of data
    became the header, without a word."""
    path = tmp_path / "unnamed.csv"
    path.write_text(_lines("id,,,,", "1,2,3,4,5", "6,7,8,9,10"))
    result = cli("fetch", str(path), "--as", "t.x", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 2
    assert list(_types(home, "t.x")) == ["id", "column_2", "column_3", "column_4", "column_5"]
    assert round_trip(home, "t.x", path.read_bytes()) == []


def test_lines_skipped_above_the_header_are_said_at_fetch(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "titled.csv"
    path.write_text(_lines("Table 3. Deaths by state, 2020", "", "state,deaths", "AL,3", "AK,4"))
    result = cli("fetch", str(path), "--as", "t.x")
    assert result.exit_code == 0, result.stderr
    assert "note: titled.csv: skipped 2 lines above the header: 'Table 3. Deaths by state, 2020'" in result.stderr


def test_a_long_whole_number_among_json_decimals_keeps_every_digit(cli: Any, home: Path, tmp_path: Path) -> None:
    """README: a very long whole number among a JSON key's decimals keeps every digit. It became
    the DOUBLE 1.2345678901234567e+19."""
    path = tmp_path / "numbers.json"
    path.write_text('[{"v": 1.5, "w": 2.25}, {"v": 12345678901234567890, "w": 17.899999999999999}]')
    fetch(cli, path, "t.x")
    assert _types(home, "t.x") == {"v": "VARCHAR", "w": "DOUBLE"}
    assert _values(home, "t.x", "v") == ["1.5", "12345678901234567890"]


def test_a_title_over_two_lines_does_not_take_the_first_row(cli: Any, home: Path, tmp_path: Path) -> None:
    """A quoted title holding a line end: DuckDB's ``skip`` counts it as one record, as csv does, and
    the newline inside it was added again, so the first row of data was skipped as well."""
    for name, eol in (("lf", "\n"), ("crlf", "\r\n")):
        path = tmp_path / f"{name}.csv"
        path.write_bytes(eol.join(['"Deaths by state,', 'provisional"', "state,deaths", "AL,3", "AK,4", ""]).encode())
        assert fetch(cli, path, f"t.{name}")["rows"] == 2, name
        assert _values(home, f"t.{name}", "state") == ["AL", "AK"], name


def test_rows_of_one_number_under_a_dashes_row_are_rows_not_notes(cli: Any, home: Path, tmp_path: Path) -> None:
    """`---` is a missing-value marker; the rows after one, each a number with empty fields beside
    it, were taken for a notes block and left out of the table, the fetch saying `1 rows`."""
    path = tmp_path / "dashes.csv"
    path.write_text(_lines("a,b", "1,x", "---,", "2,", "3,"))
    assert fetch(cli, path, "t.x")["rows"] == 4
    assert _values(home, "t.x", "a") == [1, None, 2, 3]
    assert round_trip(home, "t.x", path.read_bytes()) == []


def test_a_notes_block_left_out_of_the_table_is_said_at_fetch(cli: Any, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "noted.csv"
    path.write_text(_lines("a,b", "1,x", "2,y", "---,", "Source: CDC,", "Note: provisional,"))
    result = cli("fetch", str(path), "--as", "t.x", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 2
    assert "note: noted.csv: left out 3 lines of notes after a '---' line" in result.stderr


def test_a_quoted_list_of_semicolons_does_not_make_the_file_semicolon_delimited(
    cli: Any, home: Path, tmp_path: Path
) -> None:
    """Each row's quoted value held three semicolons: the file was read as semicolon-delimited, its
    header and first row skipped as a title and made the header, every value split mid-quote."""
    path = tmp_path / "lists.csv"
    path.write_text(_lines("name,codes", 'A,"x;y;z;w"', 'B,"p;q;r;s"', 'C,"k;l;m;n"'))
    assert fetch(cli, path, "t.x")["rows"] == 3
    assert list(_types(home, "t.x")) == ["name", "codes"]
    assert _values(home, "t.x", "codes") == ["x;y;z;w", "p;q;r;s", "k;l;m;n"]
    assert round_trip(home, "t.x", path.read_bytes()) == []


def _rejects(home: Path, table: str) -> list[tuple[int, str]]:
    path = Lake(home).current(table).rejects_path
    return duckdb.sql(f"SELECT line_number, raw_text FROM read_parquet('{path}') ORDER BY 1").fetchall()


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_long_bad_row_is_kept_whole_in_the_rejects(cli: Any, home: Path, tmp_path: Path, eol: str) -> None:
    """DuckDB keeps 10,000 characters of a bad row's text: the rest of the row was lost, the rejects
    table being the only place it is kept."""
    long_row = '1,"' + "x" * 30_000 + eol + "y" * 30_000 + '",extra'
    rows = ["a,b", *(f"{i},v" for i in range(300)), long_row, "2,w", ""]
    path = tmp_path / "long.csv"
    path.write_bytes(eol.join(rows).encode())
    assert fetch(cli, path, "t.x")["rejects"] == 1
    assert _rejects(home, "t.x") == [(302, long_row)]


def test_a_bad_row_after_a_crlf_line_end_does_not_start_with_its_lf(cli: Any, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"a,b\r\n1,2,3\r\n4,5\r\n6,7,8\r\n" + b"".join(b"%d,v\r\n" % i for i in range(300)))
    assert fetch(cli, path, "t.x")["rejects"] == 2
    assert _rejects(home, "t.x") == [(2, "1,2,3"), (4, "6,7,8")]


def test_the_fast_sql_path_takes_only_numbers_a_double_gives_back() -> None:
    """The typed COPY's SQL converts the common spelling of a number without the exact Python check:
    every text it takes must be one the check (``double_keeps``) would take too."""
    import random
    import struct

    from liberacion.convert import typing_rules as rules

    rng = random.Random(7)
    texts = ["17.899999999999999", "123456789012345.123456789012345", "0.1234567890123456789", "12345678901234.57"]
    for _ in range(1500):
        real = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        if not (1e-15 < abs(real) < 1e15):
            real = rng.uniform(-1e6, 1e6)
        texts += [repr(real), f"{real:.17f}", f"{real:.16g}", f"{real:.17g}", f"{real:.20g}"]
        texts.append(f"{rng.randint(0, 10 ** rng.randint(0, 15))}.{rng.randint(0, 10**18):018d}")
    con = duckdb.connect()
    con.execute("CREATE TABLE t (c VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[t] for t in texts])
    for kind in (rules.DOUBLE, rules.DOUBLE_SEP):
        test, _value = rules._fast_sql("c", rules.Decision(kind))
        taken = [c for (c,) in con.execute(f"SELECT c FROM t WHERE {test}").fetchall()]
        assert len(taken) > len(texts) / 3  # the fast path is not empty
        assert [c for c in taken if not rules.double_keeps(c, float(c))] == [], kind
