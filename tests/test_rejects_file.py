"""A table's bad rows name the file they came from (``file``, and ``member`` for a zip's member):
in a table of several files (a manifest's ``urls``, openFDA's partitions) ``line_number`` alone
does not say where to look. Rejects written before those columns existed still read, with NULLs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tests.conftest import Cli
from tests.server import LocalServer
from tests.test_fetch import manifest
from tests.test_parts_unify import _zipped

GOOD = "".join(f"{i},{i * 2}\n" for i in range(4, 40))


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return result


def _rows(cli: Cli, query: str, *options: str) -> list[dict[str, str]]:
    out = _ok(cli("sql", *options, "--format", "csv", query)).stdout
    return list(csv.DictReader(io.StringIO(out)))


def test_bad_rows_of_a_table_of_several_files_name_the_file_each_came_from(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """Three files, a bad row on line 3 of each: the rejects held three rows saying ``line 3`` and
    nothing else, so the user could not tell which file to open."""
    bodies = [f"a,b\n1,2\n{bad}\n{GOOD}".encode() for bad in ("3,4,5", "6,7,8", "9,10,11")]
    plain = http_server.add("/part-0.csv", bodies[0], content_type="text/csv")
    secret = http_server.add("/part-1.csv", bodies[1], content_type="text/csv") + "?api_key=s3cr3t&year=2024"
    zipped = http_server.add("/part-2.zip", _zipped("2024/part 2.csv", bodies[2]), content_type="application/zip")
    catalogs = manifest(tmp_path, [{"id": "parts", "title": "Parts", "urls": [plain, secret, zipped]}], name="openfda")
    _ok(cli("--catalogs", str(catalogs), "fetch", "openfda/parts", "--max-bad-rows", "5"))
    rows = _rows(cli, "select line_number, raw_text, reason, file, member from openfda.parts__rejects order by file")
    assert [(r["file"], r["member"], r["line_number"], r["raw_text"]) for r in rows] == [
        (plain, "", "3", "3,4,5"),
        (secret.replace("s3cr3t", "***"), "", "3", "6,7,8"),
        (zipped, "2024/part 2.csv", "3", "9,10,11"),
    ]
    assert all(r["reason"].startswith("TOO MANY COLUMNS") for r in rows)
    info = json.loads(_ok(cli("info", "openfda.parts", "--format", "json")).stdout)
    assert info["current"]["rejects"] == 3


def test_the_bad_rows_of_one_file_name_it_too(cli: Cli, home: Path, tmp_path: Path) -> None:
    """One file gets the same columns (a script reads every table's rejects alike): ``fetch FILE``
    names the file as ``info`` does, JSON Lines' bad lines included."""
    source = tmp_path / "one.csv"
    source.write_text(f"a,b\n1,2\n3,4,5\n{GOOD}")
    lines = tmp_path / "events.jsonl"
    lines.write_text("".join(f'{{"id": {i}}}\n' for i in range(60)) + "{not json\n" + '{"id": 99}\n')
    _ok(cli("fetch", str(source), "--as", "x.one"))
    _ok(cli("fetch", str(lines), "--as", "x.events"))
    for table, line in (("x.one", "3"), ("x.events", "61")):
        [row] = _rows(cli, f"select line_number, file, member, member is null as no_member from {table}__rejects")
        source_url = json.loads(_ok(cli("info", table, "--format", "json")).stdout)["current"]["provenance"]
        assert (row["line_number"], row["file"], row["no_member"]) == (line, source_url["source_url"], "true")
        assert Path(row["file"]).name == ("one.csv" if table == "x.one" else "events.jsonl")


def _as_an_older_version_wrote_it(path: Path) -> None:
    """The rejects file without the columns this version adds, its metadata kept."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert table.column_names[:3] == ["line_number", "raw_text", "reason"]
    pq.write_table(table.select(["line_number", "raw_text", "reason"]), path)


def test_rejects_an_older_version_wrote_still_read_beside_new_ones(cli: Cli, home: Path, tmp_path: Path) -> None:
    """A table whose snapshot an older version published (its rejects without ``file``) is read
    with ``file`` NULL, by ``sql``, ``--as-of``, ``history``, ``diff`` and ``info``: a script
    over every table's rejects must not fail on tables fetched before an upgrade."""
    from liberacion.home import Home
    from liberacion.lake import Lake

    source = tmp_path / "t.csv"
    source.write_text(f"a,b\n1,2\n3,4,5\n{GOOD}")
    _ok(cli("fetch", str(source), "--as", "x.t"))
    old = Lake(Home(home)).current("x.t")
    _as_an_older_version_wrote_it(Path(old.path) / "rejects.parquet")
    query = "select line_number, file is null as unnamed from x.t__rejects"
    assert _rows(cli, query) == [{"line_number": "3", "unnamed": "true"}]
    assert _rows(cli, "select * from x.t__rejects")[0].keys() == {"line_number", "raw_text", "reason", "file", "member"}
    source.write_text(f"a,b\n1,2\n3,4,5\n{GOOD}100,200\n")
    _ok(cli("fetch", str(source), "--as", "x.t"))
    assert _rows(cli, query) == [{"line_number": "3", "unnamed": "false"}]
    assert _rows(cli, query, "--as-of", old.published_at) == [{"line_number": "3", "unnamed": "true"}]
    assert len(json.loads(_ok(cli("history", "x.t", "--format", "json")).stdout)) == 2
    assert "100" in _ok(cli("diff", "x.t", "--format", "csv")).stdout
    assert json.loads(_ok(cli("info", "x.t", "--format", "json")).stdout)["current"]["rejects"] == 1


def test_an_iceberg_lakes_bad_rows_name_their_file(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """A lake outside the home (Iceberg) keeps the same rejects: each bad row names its file."""
    import pytest

    pytest.importorskip("pyiceberg")
    urls = [
        http_server.add(f"/p-{i}.csv", f"a,b\n1,2\n{bad}\n{GOOD}".encode(), content_type="text/csv")
        for i, bad in enumerate(("3,4,5", "6,7,8"))
    ]
    catalogs = manifest(tmp_path, [{"id": "parts", "title": "Parts", "urls": urls}], name="openfda")
    lake = str(tmp_path / "lake")
    _ok(cli("--lake", lake, "--catalogs", str(catalogs), "fetch", "openfda/parts", "--max-bad-rows", "5"))
    out = _ok(cli("--lake", lake, "sql", "--format", "csv", "select file, raw_text from openfda.parts__rejects"))
    assert sorted(csv.reader(io.StringIO(out.stdout)))[1:] == [[urls[0], "3,4,5"], [urls[1], "6,7,8"]]
