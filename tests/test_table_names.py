"""The table a file or URL lands in without ``--as``: its name without the format extensions (the
rest tells files apart), a Socrata or CMS export's dataset id rather than ``rows`` or
``download``; a table named the older way keeps its name; and a path that is not a file says what
it is."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

import liberacion.fetching as fetching
from liberacion.lake import Lake
from tests.conftest import Cli, run_process
from tests.manifests import dkan_pointer
from tests.server import LocalServer

CSV = "id,n\n1,2\n"


def fetched_tables(cli: Cli, *refs: str) -> list[str]:
    result = cli("fetch", *refs, "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0, result.stderr
    return [r["table"] for r in records]


def test_a_name_keeps_what_follows_its_first_dot(cli: Cli, tmp_path: Path) -> None:
    names = {
        "deaths.2023.csv": "local.deaths_2023",
        "deaths.2024.csv": "local.deaths_2024",
        "harmonized.small.json": "local.harmonized_small",
        "NNDSS_-_TABLE_1O._Hansen_s_disease.csv": "local.nndss_table_1o_hansen_s_disease",
        "counts.csv.gz": "local.counts",  # every known format extension goes, only those
        "DEMO.TXT": "local.demo",
    }
    for name in names:
        body = '[{"id": 1}]' if name.endswith(".json") else CSV
        (tmp_path / name).write_bytes(gzip.compress(body.encode()) if name.endswith(".gz") else body.encode())
    assert fetched_tables(cli, *(str(tmp_path / n) for n in names)) == list(names.values())


def test_export_urls_are_named_by_their_dataset_id(cli: Cli, http_server: LocalServer) -> None:
    socrata = http_server.add("/api/views/abcd-1234/rows.csv", CSV, content_type="text/csv")
    cms = http_server.add("/provider-data/api/1/datastore/query/xubh-q36u/0/download", CSV, content_type="text/csv")
    bare = http_server.add("/download", CSV, content_type="text/csv")  # nothing better: the file's name
    refs = [socrata + "?accessType=DOWNLOAD", cms + "?format=csv", bare + "?format=csv"]
    assert fetched_tables(cli, *refs) == ["local.abcd_1234", "local.xubh_q36u", "local.download"]


def test_a_table_named_the_older_way_keeps_its_name(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh replays the recipe, which records ``--as`` only: the table a file was fetched
    into under the older naming (cut at the first dot) is refreshed in place, not renamed."""
    source = tmp_path / "deaths.2023.csv"
    source.write_text(CSV)
    with monkeypatch.context() as old:  # the naming before: the name cut at its first dot
        old.setattr(fetching, "derived_name", lambda name: "local." + name.split(".", 1)[0])
        assert fetched_tables(cli, str(source)) == ["local.deaths"]
    source.write_text(CSV + "3,4\n")
    result = cli("refresh", "--json")
    assert result.exit_code == 0, result.stderr
    assert Lake(home).names() == ["local.deaths"] and Lake(home).current("local.deaths").rows == 2
    assert fetched_tables(cli, str(source)) == ["local.deaths"]  # fetched again: the same table

    other = tmp_path / "deaths.2024.csv"  # the older naming refused it: local.deaths was taken
    other.write_text(CSV)
    assert fetched_tables(cli, str(other)) == ["local.deaths_2024"]


def test_two_files_of_one_name_are_told_to_use_as(cli: Cli, tmp_path: Path, home: Path) -> None:
    # Refused before anything runs: the first used to be published into local.data, the second failed.
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "data.csv").write_text(CSV)
    (tmp_path / "other.csv").write_text(CSV)
    refs = [str(tmp_path / "a" / "data.csv"), str(tmp_path / "other.csv"), str(tmp_path / "b" / "data.csv")]
    result = cli("fetch", *refs, str(tmp_path / "missing.csv"))
    assert result.exit_code == 2 and result.stdout == ""
    assert "both fetch into local.data" in result.stderr and "--as CATALOG.TABLE" in result.stderr
    assert "fetch them separately" not in result.stderr
    assert Lake(home).names() == []
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "data.csv").write_text(CSV)
    third = tmp_path / "c" / "data.csv"
    result = cli("fetch", *refs, str(third))
    assert result.exit_code == 2 and f"{refs[0]}, {refs[2]} and {third} all fetch" in result.stderr


def test_a_pipe_is_called_a_pipe(cli: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "f.csv"
    os.mkfifo(fifo)
    result = cli("fetch", str(fifo), "--as", "t.fifo")
    assert result.exit_code == 1
    assert f"{fifo} is a pipe, not a file: save what it sends to a file first" in result.stderr
    assert "directory" not in result.stderr

    piped = run_process("fetch", "/dev/stdin", "--as", "t.stdin", input=CSV)  # what `<(...)` gives too
    assert piped.returncode == 1 and "/dev/stdin is a pipe, not a file" in piped.stderr

    folder = cli("fetch", str(tmp_path), "--as", "t.dir")
    assert folder.exit_code == 1 and "is a directory, not a file" in folder.stderr


def test_the_check_for_shared_tables_asks_no_server(
    cli: Cli, http_server: LocalServer, manifests: Path, tmp_path: Path
) -> None:
    # Checking where each REF lands followed a curated pointer (a request), then the run did again.
    file_url = http_server.add("/beds.csv", "a,b\n1,2\n", content_type="text/csv")
    dkan_pointer(http_server, manifests, "abcd-1234", file_url)
    other = tmp_path / "other.csv"
    other.write_text("x\n1\n", encoding="utf-8")
    result = cli("fetch", "pdc/beds", str(other))
    assert result.exit_code == 0, result.stderr
    assert len(http_server.hits("/pdc/items/abcd-1234")) == 1
