"""A table converted from several files (a dataset of several parts, each typed on its own) gets
one schema; the values of each part must come through it whole."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli
from tests.server import LocalServer
from tests.test_fetch import manifest


def test_a_whole_number_too_long_for_a_double_keeps_its_digits_across_parts(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """One part's column typed BIGINT and another's DOUBLE were made DOUBLE, which rounded
    1152921504606846977 to 1.152921504606847e+18 without a word; the column is now text, as it is
    when the same rows come in one file."""
    first = b"id,n\n1,1152921504606846977\n2,3\n"
    second = b"id,n\n3,1.5\n4,2.25\n"
    urls = [http_server.add(f"/part-{i}.csv", body, content_type="text/csv") for i, body in enumerate((first, second))]
    whole = http_server.add("/whole.csv", first + second.split(b"\n", 1)[1], content_type="text/csv")
    datasets = [{"id": "parts", "title": "Parts", "urls": urls}, {"id": "whole", "title": "Whole", "url": whole}]
    catalogs = manifest(tmp_path, datasets, name="openfda")
    fetched = cli("--catalogs", str(catalogs), "fetch", "openfda/parts", "openfda/whole")
    assert fetched.exit_code == 0, fetched.stderr
    shown = {}
    for table in ("parts", "whole"):
        result = cli("sql", "--format", "csv", f"select id, n from openfda.{table} order by id::int")
        assert result.exit_code == 0, result.stderr
        shown[table] = result.stdout.splitlines()
    assert shown["parts"][1] == "1,1152921504606846977"
    assert shown["parts"][1:3] == shown["whole"][1:3]
    assert [line.split(",")[1] for line in shown["parts"][3:]] == ["1.5", "2.25"]


def test_the_missing_value_markers_of_every_part_are_counted(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """Each part's report of its columns replaced the one before: ``info`` said a column held no
    marker when an earlier part had turned its ``NA``s into NULL."""
    first = b"id,m\n1,5\n2,NA\n3,NA\n"
    second = b"id,m\n4,7\n5,8\n"
    urls = [http_server.add(f"/part-{i}.csv", body, content_type="text/csv") for i, body in enumerate((first, second))]
    catalogs = manifest(tmp_path, [{"id": "parts", "title": "Parts", "urls": urls}], name="openfda")
    fetched = cli("--catalogs", str(catalogs), "fetch", "openfda/parts")
    assert fetched.exit_code == 0, fetched.stderr
    info = cli("info", "openfda.parts", "--format", "json")
    assert info.exit_code == 0, info.stderr
    column = json.loads(info.stdout)["current"]["provenance"]["columns"]["m"]
    assert column["type"] == "BIGINT" and column["markers"] == {"NA": 2}


def _zipped(name: str, body: bytes) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, body)
    return buffer.getvalue()


def _parts_and_whole(cli: Cli, http_server: LocalServer, tmp_path: Path, bodies: list[bytes], *, zipped: bool) -> dict:
    """Fetch ``bodies`` as one table of several files and as one file; return both tables' rows
    (as CSV lines) and the parts table's column reports."""
    urls = [
        http_server.add(f"/part-{i}.zip", _zipped(f"part-{i}.csv", body), content_type="application/zip")
        if zipped
        else http_server.add(f"/part-{i}.csv", body, content_type="text/csv")
        for i, body in enumerate(bodies)
    ]
    whole = http_server.add("/whole.csv", bodies[0] + b"".join(b.split(b"\n", 1)[1] for b in bodies[1:]))
    datasets = [{"id": "parts", "title": "Parts", "urls": urls}, {"id": "whole", "title": "Whole", "url": whole}]
    catalogs = manifest(tmp_path, datasets, name="openfda")
    fetched = cli("--catalogs", str(catalogs), "fetch", "openfda/parts", "openfda/whole")
    assert fetched.exit_code == 0, fetched.stderr
    shown: dict = {"stderr": fetched.stderr}
    for table in ("parts", "whole"):
        result = cli("sql", "--format", "csv", f"select * from openfda.{table} order by id::int")
        assert result.exit_code == 0, result.stderr
        shown[table] = result.stdout.splitlines()
    info = cli("info", "openfda.parts", "--format", "json")
    assert info.exit_code == 0, info.stderr
    shown["columns"] = json.loads(info.stdout)["current"]["provenance"]["columns"]
    return shown


def test_a_marker_keeps_its_text_when_another_part_makes_the_column_text(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """A part that typed a column turned its markers into NULL; another part held text there, so
    the column became text, and the table said ``NA`` in one file's rows and NULL in the other's.
    Now every file keeps its markers as text, as one file of the same rows does."""
    first = b"id,m\n1,5\n2,NA\n3,Not Available\n4,\n"
    second = b"id,m\n5,7\n6,about 8\n7,NA\n"
    shown = _parts_and_whole(cli, http_server, tmp_path, [first, second], zipped=False)
    assert shown["parts"] == shown["whole"]
    assert shown["parts"][2:4] == ["2,NA", "3,Not Available"]
    assert shown["columns"]["m"]["type"] == "VARCHAR" and not shown["columns"]["m"].get("markers")
    assert "m VARCHAR" in shown["stderr"]  # the files were typed differently: still said


def test_a_later_part_typed_where_an_earlier_was_text_keeps_its_markers_too(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """The same in the other order, each part unpacked from a zip (gone once converted): the
    typed part is read again from its download."""
    first = b"id,m\n1,about 8\n2,NA\n"
    second = b"id,m\n3,7\n4,Suppressed\n5,NA\n"
    third = b"id,m\n6,9\n7,10\n"  # typed, without a marker: its values are the same as text
    shown = _parts_and_whole(cli, http_server, tmp_path, [first, second, third], zipped=True)
    assert shown["parts"] == shown["whole"]
    assert shown["parts"][4:6] == ["4,Suppressed", "5,NA"]
    assert shown["columns"]["m"]["type"] == "VARCHAR" and not shown["columns"]["m"].get("markers")


def test_a_typed_part_keeps_its_published_text_when_another_part_makes_the_column_text(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """Only a part with markers was converted again: a part that typed yes/no answers BOOLEAN and
    numbers with thousands separators BIGINT gave the text column ``true`` and ``1234`` where the
    file says ``Y`` and ``1,234``, as one file of the same rows keeps them."""
    first = b'id,ok,n\n1,Y,"1,234"\n2,N,5\n'
    second = b"id,ok,n\n3,maybe,about 8\n4,N,7\n"
    shown = _parts_and_whole(cli, http_server, tmp_path, [first, second], zipped=False)
    assert shown["parts"][1:3] == ['1,Y,"1,234"', "2,N,5"]
    assert shown["parts"] == shown["whole"]
    assert shown["columns"]["ok"]["type"] == "VARCHAR" and shown["columns"]["n"]["type"] == "VARCHAR"


def test_a_part_without_values_in_a_column_does_not_make_it_text(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """A part with no rows (a header alone), or with only empty cells or markers in a column, had
    that column as text of NULLs, and every other part's dates and numbers became text."""
    typed = b"id,d,n\n1,2020-01-02,5\n2,2020-01-03,6\n"
    bodies = [typed, b"id,d,n\n", b"id,d,n\n3,,\n", b"id,d,n\n4,NA,NA\n"]
    shown = _parts_and_whole(cli, http_server, tmp_path, bodies, zipped=False)
    assert shown["parts"] == shown["whole"]
    assert shown["parts"][1:3] == ["1,2020-01-02,5", "2,2020-01-03,6"]
    assert shown["columns"]["d"]["type"] == "DATE" and shown["columns"]["n"]["type"] == "BIGINT"
    assert shown["columns"]["d"]["markers"] == {"NA": 1}
    described = cli("sql", "--format", "csv", "select column_name, column_type from (describe openfda.parts)")
    assert described.stdout.splitlines()[1:] == ["id,VARCHAR", "d,DATE", "n,BIGINT"]


def test_a_type_for_a_column_only_some_parts_have_is_taken(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """``--type extra=VARCHAR`` failed the fetch on the first file, which has no ``extra``: a
    column any file of the table has is known; one no file has is still refused."""
    first = b"id,n\n1,5\n"
    second = b"id,n,extra\n2,6,0042\n3,7,17\n"
    urls = [http_server.add(f"/part-{i}.csv", body, content_type="text/csv") for i, body in enumerate((first, second))]
    catalogs = manifest(tmp_path, [{"id": "parts", "title": "Parts", "urls": urls}], name="openfda")
    fetched = cli("--catalogs", str(catalogs), "fetch", "openfda/parts", "--type", "extra=BIGINT")
    assert fetched.exit_code == 0, fetched.stderr
    shown = cli("sql", "--format", "csv", "select n, extra from openfda.parts order by n")
    assert shown.stdout.splitlines() == ["n,extra", "5,", "6,42", "7,17"]
    missed = cli("--catalogs", str(catalogs), "fetch", "openfda/parts", "--force", "--type", "nosuch=BIGINT")
    assert missed.exit_code != 0
    assert "nosuch" in missed.stderr and "Traceback" not in missed.stderr


def test_a_column_keeps_the_first_file_s_published_name(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """The table's columns are in the first file's order and named from its header, but ``info``
    gave the last file's spelling as each column's published name (``measure_value`` where the
    first file says ``Measure Value``), unlike one file of the same rows."""
    first = b"ID,Measure Value\n1,5\n"
    second = b"id,measure_value\n2,6\n"
    shown = _parts_and_whole(cli, http_server, tmp_path, [first, second], zipped=False)
    assert shown["parts"] == shown["whole"]
    assert [c["original"] for c in shown["columns"].values()] == ["ID", "Measure Value"]


def test_a_type_named_as_one_file_publishes_the_column_types_it_in_every_file(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    """``--type "Zip Code=BIGINT"`` (or the manifest's) typed the first file's ``Zip Code`` but
    not the second file's ``zip_code``, which its values typed; the column was then made text in
    both, and the type asked for dropped without a word."""
    first = b"id,Zip Code\n1,02115\n2,10001\n"
    second = b"id,zip_code\n3,02116\n4,NA\n"
    urls = [http_server.add(f"/part-{i}.csv", body, content_type="text/csv") for i, body in enumerate((first, second))]
    datasets = [
        {"id": "given", "title": "Given", "urls": urls},
        {"id": "declared", "title": "Declared", "urls": urls, "columns": {'"Zip Code"': "BIGINT"}},
    ]
    catalogs = manifest(tmp_path, datasets, name="openfda")
    fetched = cli("--catalogs", str(catalogs), "fetch", "openfda/given", "--type", "Zip Code=BIGINT")
    assert fetched.exit_code == 0, fetched.stderr
    fetched = cli("--catalogs", str(catalogs), "fetch", "openfda/declared")
    assert fetched.exit_code == 0, fetched.stderr
    for table in ("given", "declared"):
        shown = cli("sql", "--format", "csv", f"select typeof(zip_code) t, zip_code from openfda.{table} order by id")
        assert shown.stdout.splitlines() == ["t,zip_code", "BIGINT,2115", "BIGINT,10001", "BIGINT,2116", "BIGINT,"]
