"""Hostile and broken files: each fails alone with one line naming the stage and the cause, nothing
hangs, nothing expands without bound, and nothing is written outside the home.

Every file is made here, small; the limits are set low through their environment variables.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.manifests import write_catalog
from tests.server import LocalServer, RequestHandler

CSV = "id,name\n" + "".join(f"{i},name {i}\n" for i in range(100))


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _xpt(rows: int = 100) -> bytes:
    """A SAS transport (v5) file of ``rows`` rows: SEQN (number), NAME (3 characters), X (number)."""
    import tempfile

    import pandas as pd
    import pyreadstat

    names = [f"n{i:02d}"[:3] for i in range(rows)]
    frame = pd.DataFrame({"SEQN": list(range(rows)), "NAME": names, "X": [i * 1.5 for i in range(rows)]})
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "t.xpt"
        pyreadstat.write_xport(frame, str(path), table_name="DEMO", file_format_version=5)
        return path.read_bytes()


ROW = 8 + 3 + 8  # bytes of one row of _xpt()


def _namestr(data: bytes, index: int) -> int:
    return data.index(b"HEADER RECORD*******NAMESTR") + 80 + 140 * index


def truncated_zip() -> bytes:
    data = _zip({"data.csv": CSV.encode() * 20})
    return data[: len(data) // 2]


def bad_crc_zip() -> bytes:
    data = bytearray(_zip({"data.csv": CSV.encode()}, zipfile.ZIP_STORED))
    at = data.index(b"name 50")
    data[at + 5] = ord("9")
    return bytes(data)


def bad_deflate_zip() -> bytes:
    data = bytearray(_zip({"data.csv": CSV.encode() * 20}))
    data[60] ^= 0xFF  # inside the compressed stream of the only member
    return bytes(data)


def deep_json() -> bytes:
    return b'{"meta": {}, "results": [{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}]}"


def entity_bomb_xlsx() -> bytes:
    laughs = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10)
    )
    return _xlsx([["a", "b"], ["&lol9;", "x"]], prolog=f"<!DOCTYPE worksheet [{laughs}]>")


def xpt_with_letters_in_a_count() -> bytes:
    data = bytearray(_xpt())
    header = data.index(b"HEADER RECORD*******NAMESTR")
    data[header + 52 : header + 54] = b"ab"
    return bytes(data)


BROKEN: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "truncated zip": ("cut.zip", truncated_zip, "damaged or truncated zip"),
    "truncated gzip": ("cut.csv.gz", lambda: gzip.compress(CSV.encode() * 20)[:300], "damaged or truncated gzip"),
    "truncated xlsx": ("cut.xlsx", lambda: _xlsx([["a"], ["1"]])[:-200], "damaged or truncated zip"),
    "bad CRC (stored)": ("crc.zip", bad_crc_zip, "BadZipFile: Bad CRC-32"),
    "bad deflate stream": ("deflate.zip", bad_deflate_zip, "zlib.error"),
    "JSON nested 10,000 deep": ("deep.json", deep_json, "nested deeper than 128 levels"),
    "xlsx entity bomb": ("laughs.xlsx", entity_bomb_xlsx, "declares XML entities"),
    "XPT count with letters": ("letters.xpt", xpt_with_letters_in_a_count, "where counts belong"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_file_fails_alone_with_one_line(cli: Cli, tmp_path: Path, case: str) -> None:
    name, make, cause = BROKEN[case]
    bad = tmp_path / name
    bad.write_bytes(make())
    good = tmp_path / "good.csv"
    good.write_text(CSV, encoding="utf-8")
    result = cli("fetch", str(bad), str(good), "--json")
    assert result.exit_code == 1, result.stderr
    failed, fetched = json_lines(result.stdout)
    assert failed["status"] == "failed" and failed["stage"] == "convert", failed
    assert failed["error_type"] == "ConversionError" and cause in failed["error"], failed["error"]
    assert "internal error" not in failed["error"] and "\n" not in failed["error"]
    assert fetched["status"] == "fetched" and fetched["rows"] == 100
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and cause in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "good.csv", "home"])


def test_a_csv_field_over_128_kb_in_the_first_megabyte_converts(cli: Cli, tmp_path: Path) -> None:
    polygon = "POLYGON((" + "1 2," * 60_000 + "1 2))"  # 240 KB of WKT, as geometry columns have
    path = tmp_path / "shapes.csv"
    path.write_text(f'id,geom\n1,"{polygon}"\n2,POINT(1 2)\n---\n"{"n" * 200_000}"\n', encoding="utf-8")
    record = json_lines(cli("fetch", str(path), "--json").stdout)[0]
    assert record["status"] == "fetched" and record["rows"] == 2, record
    lengths = cli("sql", "select id, length(geom) as n from local.shapes order by id", "-f", "csv").stdout
    assert lengths.split() == ["id,n", f"1,{len(polygon)}", "2,10"]


def _xpt_cases() -> dict[str, tuple[Callable[[bytes], bytes], str]]:
    def negative_length(data: bytes) -> bytes:
        out = bytearray(data)
        at = _namestr(data, 1) + 4  # NAME's length
        out[at : at + 2] = (-16).to_bytes(2, "big", signed=True)
        return bytes(out)

    def cut_inside_a_record(data: bytes) -> bytes:
        start = data.index(b"HEADER RECORD*******OBS") + 80
        return data[: start + 17 * ROW + 5]

    def cut_inside_a_row(data: bytes) -> bytes:
        start = data.index(b"HEADER RECORD*******OBS") + 80
        return data[: start + 4 * 80]  # 320 bytes: 16 rows and 16 bytes of the 17th

    return {
        "negative variable length": (negative_length, "character variable NAME has a length of -16 bytes"),
        "cut inside a record": (cut_inside_a_record, "truncated or damaged"),
        "cut inside a row": (cut_inside_a_row, "its data ends inside a row after 16 rows"),
    }


@pytest.mark.parametrize("case", list(_xpt_cases()))
def test_a_malformed_or_truncated_xpt_is_refused_not_read_short(cli: Cli, tmp_path: Path, case: str) -> None:
    damage, cause = _xpt_cases()[case]
    path = tmp_path / "demo.xpt"
    path.write_bytes(damage(_xpt()))
    result = cli("fetch", str(path), "--json")
    record = json_lines(result.stdout)[0]
    assert record["status"] == "failed" and cause in record["error"], record
    assert "cannot read demo.xpt as SAS transport" in record["error"]


def test_a_whole_xpt_still_reads_every_row(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "demo.xpt"
    path.write_bytes(_xpt(37))
    record = json_lines(cli("fetch", str(path), "--json").stdout)[0]
    assert record["status"] == "fetched" and record["rows"] == 37, record


def test_parquet_garbage_is_refused_never_an_empty_table(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    path.write_bytes(b"PAR1" + bytes(range(256)) * 4 + b"PAR1")
    record = json_lines(cli("fetch", str(path), "--json").stdout)[0]
    assert record["status"] == "failed" and "cannot read rows.parquet as Parquet" in record["error"], record


def test_archives_nested_400_deep_give_one_short_line(cli: Cli, tmp_path: Path) -> None:
    data, name = CSV.encode(), "data.csv"
    for level in range(400):
        data, name = _zip({name: data}, zipfile.ZIP_STORED), f"level{level}.zip"
    path = tmp_path / "nested.zip"
    path.write_bytes(data)
    result = cli("fetch", str(path), "--json")
    record = json_lines(result.stdout)[0]
    assert record["status"] == "failed" and "archives nested more than 3 deep" in record["error"], record
    assert len(record["error"]) < 200
    two_deep = tmp_path / "two.zip"
    two_deep.write_bytes(_zip({"inner.zip": _zip({"data.csv": CSV.encode()})}))
    assert json_lines(cli("fetch", str(two_deep), "--json").stdout)[0]["rows"] == 100


def _xlsx(rows: list[list[str]], prolog: str = "", cells: str = "") -> bytes:
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rels = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    cells = cells or "".join(
        f'<row r="{i + 1}">'
        + "".join(f'<c r="{chr(65 + j)}{i + 1}" t="inlineStr"><is><t>{v}</t></is></c>' for j, v in enumerate(row))
        + "</row>"
        for i, row in enumerate(rows)
    )
    return _zip(
        {
            "[Content_Types].xml": (
                b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                b'<Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
                b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                b'<Override PartName="/xl/worksheets/sheet1.xml" '
                b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
            ),
            "_rels/.rels": (
                f'<?xml version="1.0"?><Relationships xmlns="{package}"><Relationship Id="rId1" '
                f'Type="{rels}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
            ).encode(),
            "xl/workbook.xml": (
                f'<?xml version="1.0"?><workbook xmlns="{main}" xmlns:r="{rels}"><sheets>'
                '<sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>'
            ).encode(),
            "xl/_rels/workbook.xml.rels": (
                f'<?xml version="1.0"?><Relationships xmlns="{package}"><Relationship Id="rId1" '
                f'Type="{rels}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
            ).encode(),
            "xl/worksheets/sheet1.xml": (
                f'<?xml version="1.0"?>\n{prolog}<worksheet xmlns="{main}"><sheetData>{cells}</sheetData></worksheet>'
            ).encode(),
        }
    )


def test_a_workbook_whose_sheet_expands_hugely_is_refused_before_it_is_read(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "huge.xlsx"
    row = '<row><c t="inlineStr"><is><t>1</t></is></c></row>'
    path.write_bytes(_xlsx([], cells=row * 500_000))  # 25 MB of sheet XML, deflated about 340-fold
    record = json_lines(cli("fetch", str(path), "--json").stdout)[0]
    assert record["status"] == "failed", record
    assert "huge.xlsx: xl/worksheets/sheet1.xml: it expands more than 100-fold" in record["error"], record["error"]


def test_nothing_is_written_beside_the_users_files(cli: Cli, tmp_path: Path, home: Path) -> None:
    source = tmp_path / "mine"
    source.mkdir()
    (source / "x.zip").write_bytes(_zip({"a.csv": CSV.encode(), "b.csv": CSV[:-3].encode()}))
    (source / "y.gz").write_bytes(gzip.compress(CSV.encode()))
    (source / "z.xlsx").write_bytes(_xlsx([["id", "name"], ["1", "one"], ["2", "two"]]))
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    stale = home / "work" / f"999999999-{host}-killed"  # scratch of a run killed with kill -9
    stale.mkdir(parents=True)
    (stale / "member.csv").write_text(CSV)
    result = cli("fetch", *(str(p) for p in sorted(source.iterdir())), "--json")
    records = json_lines(result.stdout)
    assert [r["status"] for r in records] == ["fetched"] * 3, result.stderr
    assert [r["rows"] for r in records] == [200, 100, 2]
    assert sorted(p.name for p in source.iterdir()) == ["x.zip", "y.gz", "z.xlsx"]
    assert list((home / "work").iterdir()) == []


def test_a_published_download_leaves_nothing_in_downloads(cli: Cli, http_server: LocalServer, home: Path) -> None:
    url = http_server.add("/rows.csv.gz", gzip.compress(CSV.encode()))
    record = json_lines(cli("fetch", url, "--json").stdout)[0]
    assert record["status"] == "fetched" and record["rows"] == 100, record
    assert [p for p in (home / "downloads").rglob("*") if p.is_file() and p.suffix != ".lock"] == []
    assert list((home / "work").iterdir()) == []


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("big.gz", lambda: gzip.compress(CSV.encode() * 100)),
        ("nested.zip", lambda: _zip({"inner.zip": _zip({"data.csv": CSV.encode() * 100})})),
        ("gz-in-zip.zip", lambda: _zip({"data.csv.gz": gzip.compress(CSV.encode() * 100)})),
        ("wide.xlsx", lambda: _xlsx([["id", "name"], *([[str(i), "x" * 50] for i in range(2_000)])])),
    ],
)
def test_every_decompression_obeys_the_cap(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, make: Callable[[], bytes]
) -> None:
    path = tmp_path / name
    path.write_bytes(make())
    monkeypatch.setenv("LIBERACION_MAX_UNZIPPED_BYTES", "100000")
    record = json_lines(cli("fetch", str(path), "--json").stdout)[0]
    assert record["status"] == "failed", record
    assert f"refusing {name}: it expands to more than 100,000 bytes" in record["error"], record["error"]
    monkeypatch.setenv("LIBERACION_MAX_UNZIPPED_BYTES", "lots")  # a configuration error, before anything runs
    result = cli("fetch", str(path), "--json")
    assert result.exit_code == 5
    assert "LIBERACION_MAX_UNZIPPED_BYTES must be a whole number of bytes" in result.stderr


def _listing(title: str) -> str:
    dataset = {
        "identifier": "https://data.example.gov/api/views/abcd-1234",
        "title": title,
        "distribution": [{"downloadURL": "https://data.example.gov/rows.csv", "mediaType": "text/csv"}],
    }
    return json.dumps({"conformsTo": "https://project-open-data.cio.gov/v1.1/schema", "dataset": [dataset]})


def _endless(request: RequestHandler) -> None:
    """A listing that never ends (stopping at 200 MB so a missing cap fails instead of hanging)."""
    request.send_response(200)
    request.send_header("Content-Type", "application/json")
    request.send_header("Connection", "close")
    request.end_headers()
    request.close_connection = True
    piece = b'{"title": "again"}, ' * 5_000
    try:
        request.wfile.write(b'{"dataset": [')
        for _ in range(200 * 1024 * 1024 // len(piece)):
            request.wfile.write(piece)
    except OSError:
        pass  # the client stopped reading: what we want


@pytest.mark.parametrize(
    ("route", "cause"),
    [
        ({"handler": _endless}, "the document is larger than 1,000,000 bytes"),
        ({"body": b'{"dataset": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"}, "JSON nested too deeply"),
    ],
)
def test_a_hostile_listing_fails_its_source_and_the_others_still_update(
    cli: Cli,
    manifests: Path,
    http_server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    route: dict[str, Any],
    cause: str,
) -> None:
    monkeypatch.setenv("LIBERACION_MAX_LISTING_BYTES", "1000000")
    write_catalog(manifests, "good", [("dcat-us", http_server.add("/good.json", _listing("Hospital Beds")))])
    write_catalog(manifests, "bad", [("dcat-us", http_server.add("/bad.json", **route))])
    result = cli("discover", "good", "bad")
    assert result.exit_code == 1, result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: bad:") and cause in error, error
    query = "select catalog, title from liberacion.datasets where catalog in ('good', 'bad')"
    titles = json.loads(cli("sql", query, "--format", "json").stdout)
    assert titles == [{"catalog": "good", "title": "Hospital Beds"}]


def test_a_large_listing_is_parsed_one_dataset_at_a_time(
    cli: Cli, manifests: Path, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liberacion.catalogs.adapters as adapters

    items = [json.loads(_listing(f"Dataset {i}"))["dataset"][0] for i in range(50)]
    for i, item in enumerate(items):
        item["identifier"] = f"https://data.example.gov/api/views/{i:04d}-abcd"
    body = json.dumps({"conformsTo": "x", "dataset": [*items, items[0]]})  # one record twice: one dataset
    write_catalog(manifests, "big", [("dcat-us", http_server.add("/big.json", body))])

    def whole_document(*_: Any, **__: Any) -> Any:
        raise AssertionError("a listing over STREAM_BYTES is never decoded whole")

    monkeypatch.setattr(adapters, "STREAM_BYTES", 1000)
    monkeypatch.setattr(adapters, "load_json", whole_document)
    result = cli("discover", "big")
    assert result.exit_code == 0, result.stderr
    query = "select count(*) as n, count(distinct id) as ids from liberacion.datasets where catalog = 'big'"
    assert json.loads(cli("sql", query, "--format", "json").stdout) == [{"n": 50, "ids": 50}]
