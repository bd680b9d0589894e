"""Files DuckDB's readers refuse as a whole for one flaw: mixed line endings, a NUL byte, one
broken JSON line, UTF-16. Each loads (the flaw repaired in a work copy, or set aside as a bad row,
with a note), or fails with one line that says what is wrong; other refusals say the truth."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from liberacion.lake import Lake


def rows(cli, query: str) -> list[dict]:
    result = cli("sql", query, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def types(cli, table: str) -> dict[str, str]:
    return {r["column_name"]: r["column_type"] for r in rows(cli, f"describe {table}")}


def conversion(home: Path, table: str) -> dict:
    return Lake(home).current(table).provenance.extra["conversion"]


def one_error(result) -> str:
    """The run's one ``error:`` line, checked clean: no traceback, no DuckDB SQL or carets."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for internal in ("LINE 1", "^^^", "read_json(", "read_csv(", "strict_mode"):
        assert internal not in result.stderr
    return errors[0]


# -- line endings ---------------------------------------------------------------------------


@pytest.mark.parametrize("usual, odd", [("\n", "\r\n"), ("\r\n", "\n")])
def test_a_file_mixing_lf_and_crlf_loads_with_a_note(cli, home: Path, tmp_path: Path, usual: str, odd: str) -> None:
    lines = ["id,name,n"] + [f"{i},n{i},{i}" for i in range(3000)]
    source = tmp_path / "mixed.csv"
    source.write_bytes((usual.join(lines[:1500]) + odd + usual.join(lines[1500:]) + usual).encode())

    result = cli("fetch", str(source), "--as", "t.mixed", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 3000 and json.loads(result.stdout)["rejects"] == 0
    assert "note: mixed.csv: mixed line endings (LF and CRLF), all read as LF" in result.stderr
    assert types(cli, "t.mixed")["n"] == "BIGINT"  # no stray CR at the end of a line
    assert rows(cli, "select count(*) c, sum(n) s from t.mixed") == [{"c": 3000, "s": sum(range(3000))}]
    assert conversion(home, "t.mixed")["line_endings"]


def test_line_ends_inside_quoted_values_are_kept_as_they_are(cli, tmp_path: Path) -> None:
    source = tmp_path / "notes.csv"
    source.write_bytes(b'a,b,c\n1,"x\r\ny",2\r\n3,"p\nq",4\n5,z,6\r\n7,"r\rs",8\n')
    result = cli("fetch", str(source), "--as", "t.notes")
    assert result.exit_code == 0, result.stderr
    found = rows(cli, "select a, b, c from t.notes order by a")
    assert found == [
        {"a": 1, "b": "x\r\ny", "c": 2},
        {"a": 3, "b": "p\nq", "c": 4},
        {"a": 5, "b": "z", "c": 6},
        {"a": 7, "b": "r\rs", "c": 8},
    ]


def test_a_consistent_crlf_file_is_read_without_a_note(cli, tmp_path: Path) -> None:
    source = tmp_path / "crlf.csv"
    source.write_bytes(b'a,b\r\n1,"two\r\nlines"\r\n2,x\r\n')
    result = cli("fetch", str(source), "--as", "t.crlf")
    assert result.exit_code == 0 and "line endings" not in result.stderr
    assert rows(cli, "select b from t.crlf order by a") == [{"b": "two\r\nlines"}, {"b": "x"}]


# -- NUL bytes ------------------------------------------------------------------------------


def test_a_nul_byte_is_dropped_with_a_note_and_the_file_loads(cli, home: Path, tmp_path: Path) -> None:
    lines = ["id,name,n"] + [f"{i},n{i},{i}" for i in range(5000)]
    lines[2501] = "2500,bad\x00name,2500"
    source = tmp_path / "nul.csv"
    source.write_text("\n".join(lines) + "\n")

    result = cli("fetch", str(source), "--as", "t.nul", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 5000
    assert "note: nul.csv: dropped 1 NUL byte" in result.stderr
    assert rows(cli, "select name, n from t.nul where id = 2500") == [{"name": "badname", "n": 2500}]
    assert conversion(home, "t.nul")["nul_bytes"] == 1


def test_binary_with_nul_bytes_is_still_refused(cli, tmp_path: Path) -> None:
    blob = tmp_path / "blob.csv"
    blob.write_bytes(b"id,name\n" + b"\x00\x00\x01\x02" * 200)
    assert "it is not CSV" in one_error(cli("fetch", str(blob), "--as", "t.blob"))


# -- JSON Lines -----------------------------------------------------------------------------


def jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_broken_json_line_is_a_bad_row_with_its_line_number(cli, home: Path, tmp_path: Path) -> None:
    source = jsonl(
        tmp_path / "events.jsonl",
        [
            '{"id": "0010", "n": 3, "drug": [{"name": "A"}]}',
            '{"id": "0011", "n": 4, "drug": []}',
            '{"id": "0012", "n": "5',  # cut short
            "",
            '{"id": "0013", "n": 6, "drug": [{"name": "B"}]}',
        ],
    )
    refused = cli("fetch", str(source), "--as", "t.ev", "--max-bad-rows", "0")
    assert refused.exit_code == 1
    assert "1 bad row (of 4) is more than allowed (0)" in one_error(refused)
    assert not Lake(home).exists("t.ev")

    result = cli("fetch", str(source), "--as", "t.ev", "--max-bad-rows", "1", "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["rows"] == 3 and record["rejects"] == 1
    assert "note: t.ev: 1 bad row set aside in t.ev__rejects" in result.stderr
    assert rows(cli, "select id, n from t.ev order by id") == [
        {"id": "0010", "n": 3},
        {"id": "0011", "n": 4},
        {"id": "0013", "n": 6},
    ]
    (bad,) = rows(cli, "select * from t.ev__rejects")
    assert bad["line_number"] == 3 and bad["raw_text"] == '{"id": "0012", "n": "5'
    assert bad["reason"].startswith("INVALID JSON")


def test_a_json_line_that_is_not_an_object_is_a_bad_row(cli, tmp_path: Path) -> None:
    source = jsonl(tmp_path / "mixed.jsonl", [f'{{"a": {i}}}' for i in range(200)] + ["[1, 2]"])
    result = cli("fetch", str(source), "--as", "t.mx", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rejects"] == 1
    (bad,) = rows(cli, "select * from t.mx__rejects")
    assert bad["line_number"] == 201 and bad["reason"].startswith("NOT A RECORD: a list")


def test_a_json_lines_file_of_mostly_bad_lines_fails_with_one_clean_line(cli, tmp_path: Path) -> None:
    source = jsonl(tmp_path / "junk.jsonl", ['{"a": 1}'] + [f'{{"a": {i}' for i in range(5)])
    message = one_error(cli("fetch", str(source), "--as", "t.junk"))
    assert "5 bad rows (of 6) is more than allowed (1)" in message and "--max-bad-rows" in message


@pytest.mark.parametrize(("bad", "at"), [('{"a": 0,,}', 1), ("not json here", 2), ("{ not json", 2)])
def test_a_bad_first_or_second_json_line_is_a_bad_row_too(cli, tmp_path: Path, bad: str, at: int) -> None:
    lines = [f'{{"a": {i}}}' for i in range(300)]
    lines.insert(at - 1, bad)
    result = cli("fetch", str(jsonl(tmp_path / "early.jsonl", lines)), "--as", "t.early", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 300 and json.loads(result.stdout)["rejects"] == 1
    (found,) = rows(cli, "select * from t.early__rejects")
    assert found["line_number"] == at and found["raw_text"] == bad


# -- JSON that holds no records, or records DuckDB would not take ---------------------------


@pytest.mark.parametrize("content, shown", [("42", "42"), ('"hello"', '"hello"'), ("null\n", "null")])
def test_a_json_scalar_is_refused_like_an_empty_list(cli, home: Path, tmp_path: Path, content, shown) -> None:
    source = tmp_path / "count.json"
    source.write_text(content)
    message = one_error(cli("fetch", str(source), "--as", "t.count"))
    assert f"count.json holds no records: it is a single JSON value ({shown})" in message
    assert not Lake(home).exists("t.count")


def test_a_json_integer_beyond_bigint_keeps_every_digit(cli, tmp_path: Path) -> None:
    source = tmp_path / "big.json"
    source.write_text('[{"n": 12345678901234567890, "m": 1}, {"n": 1, "m": 2}]')
    assert cli("fetch", str(source), "--as", "t.big").exit_code == 0
    found = rows(cli, "select n::VARCHAR n from t.big order by m")
    assert found == [{"n": "12345678901234567890"}, {"n": "1"}]
    assert types(cli, "t.big")["m"] == "BIGINT"
    # DuckDB's JSON reader types these DOUBLE: a negative one below BIGINT, a long one, beside decimals.
    doubles = tmp_path / "doubles.json"
    doubles.write_text('[{"n": -9223372036854775809, "d": 1.5}, {"n": 12345678901234567890123, "d": 2}]')
    assert cli("fetch", str(doubles), "--as", "t.doubles").exit_code == 0
    found = rows(cli, "select n::VARCHAR n, d from t.doubles order by d")
    assert found == [{"n": "-9223372036854775809", "d": 1.5}, {"n": "12345678901234567890123", "d": 2.0}]
    assert types(cli, "t.doubles")["d"] == "DOUBLE"


def test_an_empty_json_key_is_named_like_an_empty_csv_header(cli, tmp_path: Path) -> None:
    array = tmp_path / "keys.json"
    array.write_text('[{"": 3, "k": 1}, {"": 4, "k": 2}]')
    lines = jsonl(tmp_path / "keys.jsonl", ['{"": 3, "k": 1}', '{"k": 2}'])
    for source, table in ((array, "t.keys"), (lines, "t.keyl")):
        result = cli("fetch", str(source), "--as", table)
        assert result.exit_code == 0, result.stderr
        assert list(types(cli, table)) == ["column_1", "k"]
    assert rows(cli, "select column_1 from t.keys order by k") == [{"column_1": 3}, {"column_1": 4}]


def test_a_list_mixing_objects_and_other_values_says_which_element(cli, tmp_path: Path) -> None:
    source = tmp_path / "mixed.json"
    source.write_text('[{"a": 1}, [1, 2], "x", {"a": 2}]')
    message = one_error(cli("fetch", str(source), "--as", "t.m"))
    assert "mixed.json: element 2 of its list is a list, not an object" in message
    assert "no JSON objects" not in message
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text('{"results": [{"a": 1}, 7]}')
    assert "element 2 of its 'results' list is a number" in one_error(cli("fetch", str(wrapped), "--as", "t.w"))


# -- UTF-16 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bom, codec", [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")])
def test_utf16_text_with_a_bom_is_read(cli, home: Path, tmp_path: Path, bom: bytes, codec: str) -> None:
    text = "Facility ID\tZIP\tBeds\tState\r\n010001\t02115\t120\tPeñuelas\r\n010005\t00501\t80\tMA\r\n"
    source = tmp_path / "unicode.txt"
    source.write_bytes(bom + text.encode(codec))
    result = cli("fetch", str(source), "--as", "t.u16")
    assert result.exit_code == 0, result.stderr
    assert rows(cli, "select * from t.u16 order by facility_id") == [
        {"facility_id": "010001", "zip": "02115", "beds": 120, "state": "Peñuelas"},
        {"facility_id": "010005", "zip": "00501", "beds": 80, "state": "MA"},
    ]
    assert conversion(home, "t.u16")["encoding"] == "utf-16"


def test_utf16_json_lines_are_read(cli, tmp_path: Path) -> None:
    source = tmp_path / "u16.jsonl"
    source.write_bytes(codecs.BOM_UTF16_LE + '{"a": "ñ", "n": 1}\n{"a": "b", "n": 2}\n'.encode("utf-16-le"))
    assert cli("fetch", str(source), "--as", "t.j16").exit_code == 0
    assert rows(cli, "select a from t.j16 order by n") == [{"a": "ñ"}, {"a": "b"}]


# -- a missing path -------------------------------------------------------------------------


def test_a_missing_file_in_a_folder_is_a_missing_file_not_a_catalog(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fx").mkdir()
    monkeypatch.chdir(tmp_path)
    for ref in ("fx/nosuch.csv", "fx/nosuch", "elsewhere/data.json"):
        result = cli("fetch", ref)
        assert result.exit_code != 0
        assert f"no such file {ref}; check the path" in one_error(result), ref
    assert "no such file" not in cli("fetch", "nocatalog/some-dataset").stderr  # a ref, as before


# -- title lines and repeated headers -------------------------------------------------------


def test_a_title_line_with_a_comma_above_the_header_is_skipped(cli, tmp_path: Path) -> None:
    source = tmp_path / "title.csv"
    source.write_text('Table 3. Deaths by state, 2020\n\nstate,deaths\nAL,"1,234"\nAK,56\n')
    assert cli("fetch", str(source), "--as", "t.title").exit_code == 0
    assert types(cli, "t.title") == {"state": "VARCHAR", "deaths": "BIGINT"}
    assert rows(cli, "select * from t.title order by state") == [
        {"state": "AK", "deaths": 56},
        {"state": "AL", "deaths": 1234},
    ]
    # A header over a blank line and data is still the header.
    plain = tmp_path / "plain.csv"
    plain.write_text("name,city\n\nBob,1\nAnn,2\n")
    assert cli("fetch", str(plain), "--as", "t.plain").exit_code == 0
    assert list(types(cli, "t.plain")) == ["name", "city"]


def test_a_row_repeating_the_header_is_dropped_with_a_note(cli, home: Path, tmp_path: Path) -> None:
    source = tmp_path / "pasted.csv"
    body = "".join(f"{c}{i},{i}\n" for c in "AB" for i in range(50))
    source.write_text("id_code,n\n" + body + "id_code,n\n" + body.replace("A", "C").replace("B", "D"))
    result = cli("fetch", str(source), "--as", "t.pasted", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 200
    assert "note: pasted.csv: dropped 1 row repeating the header" in result.stderr
    assert types(cli, "t.pasted") == {"id_code": "VARCHAR", "n": "BIGINT"}
    assert conversion(home, "t.pasted")["repeated_header_rows"] == 1
    raw = cli("fetch", str(source), "--as", "t.raw", "--raw", "--json")  # --raw keeps every row as published
    assert json.loads(raw.stdout)["rows"] == 201 and "repeating the header" not in raw.stderr


def test_a_row_repeating_the_header_in_other_case_or_spacing_is_dropped(cli, home: Path, tmp_path: Path) -> None:
    source = tmp_path / "cased.csv"
    source.write_text("State,Deaths\nAL,1\nAK,2\nSTATE,DEATHS\nCA,4\n state , deaths \nCO,5\nstate,7\n")
    result = cli("fetch", str(source), "--as", "t.cased", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == 5  # "state,7" repeats one name only: a row
    assert "note: cased.csv: dropped 2 rows repeating the header" in result.stderr
    assert types(cli, "t.cased") == {"state": "VARCHAR", "deaths": "BIGINT"}
    assert conversion(home, "t.cased")["repeated_header_rows"] == 2


# -- bad rows' line numbers -----------------------------------------------------------------


@pytest.mark.parametrize("end", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_bad_rows_line_number_is_its_line_in_the_file(cli, tmp_path: Path, end: str) -> None:
    """DuckDB counts rows: the lines of a quoted value over several lines, above a bad row, and the
    title lines above the header are lines of the file all the same."""
    lines = ["Title line", "Second title", "id,text,n", '1,"a', "b", 'c",5', "2,x"]
    lines += [f"{i},t,{i}" for i in range(3, 300)] + ["", "300,x,1,2", "301,t,301"]
    source = tmp_path / "ln.csv"
    source.write_bytes(end.join(lines).encode() + end.encode())
    assert cli("fetch", str(source), "--as", "t.ln").exit_code == 0
    found = rows(cli, "select line_number, raw_text from t.ln__rejects order by line_number")
    assert found == [{"line_number": 7, "raw_text": "2,x"}, {"line_number": 306, "raw_text": "300,x,1,2"}]
    assert all(lines[bad["line_number"] - 1] == bad["raw_text"] for bad in found)


def test_a_file_of_bad_rows_only_is_not_a_table(cli, tmp_path: Path) -> None:
    # Its one row ragged: "fetched 0 rows", exit 0, a table of nothing and the row in __rejects.
    path = tmp_path / "one.csv"
    path.write_text("a,b\n1,2,3\n", encoding="utf-8")
    result = cli("fetch", str(path), "--as", "s.one", "--max-bad-rows", "5")
    assert result.exit_code == 1
    assert "none of its rows could be read (1 bad row, such as line 2: TOO MANY COLUMNS" in result.stderr
    assert cli("sql", "select 1 from s.one").exit_code == 3  # nothing published
