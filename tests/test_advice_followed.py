"""The advice that ends an error or a note, copied as printed and run: it must run as written, on
the same home and lake the user named, and resolve what the message was about."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from tests.conftest import Cli
from tests.manifests import write_catalog
from tests.server import LocalServer

CSV = "a,b\n1,2\n3,4\n"


def _advised(stderr: str, lead: str) -> list[str]:
    """The command after ``lead`` in the first error or note, split as a shell would, without ``liberacion``."""
    found = re.search(rf"{re.escape(lead)} (liberacion .*?)(?:, then this command again|\)|$)", stderr, re.M)
    assert found, stderr
    words = shlex.split(found.group(1))
    assert words[0] == "liberacion"
    return words[1:]


def test_advice_after_home_names_that_home_and_lists_its_tables(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "project home"  # a space: the advice must quote it
    (tmp_path / "beds.csv").write_text(CSV)
    assert cli("--home", str(other), "fetch", str(tmp_path / "beds.csv"), "--as", "my.beds").exit_code == 0

    missing: Any = cli("--home", str(other), "sql", "select * from my.bedz")
    assert missing.exit_code == 3
    advice = _advised(missing.stderr, "see:")
    assert advice == ["--home", str(other), "tables"]
    listed: Any = cli(*advice, "--format", "csv")  # LIBERACION_HOME names another, empty home
    assert listed.exit_code == 0 and "my,beds" in listed.stdout


def test_advice_after_lake_names_that_lake(cli: Cli, tmp_path: Path) -> None:
    lake = tmp_path / "shared lake"
    (tmp_path / "beds.csv").write_text(CSV)
    assert cli("--lake", str(lake), "fetch", str(tmp_path / "beds.csv"), "--as", "my.beds").exit_code == 0

    missing: Any = cli("--lake", str(lake), "history", "my.bedz")
    assert missing.exit_code == 3
    listed: Any = cli(*_advised(missing.stderr, "see:"), "--format", "csv")
    assert listed.exit_code == 0 and "my,beds" in listed.stdout


def test_a_note_advising_discover_names_the_home(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    result: Any = cli("--home", str(other), "search", "nothing-matches-this")
    assert result.exit_code == 0
    assert "run: liberacion --home " + str(other) + " discover" in result.stderr


def test_run_discover_advice_is_a_command_that_runs_then_the_fetch_works(
    cli: Cli, manifests: Path, http_server: LocalServer
) -> None:
    data = http_server.add("/beds.csv", CSV, content_type="text/csv")
    listing = {"dataset": [{"identifier": "beds", "title": "Beds", "distribution": [{"downloadURL": data}]}]}
    write_catalog(manifests, "evo", [("dcat-us", http_server.add("/evo.json", json.dumps(listing)))])

    first: Any = cli("fetch", "evo/beds")
    assert first.exit_code != 0
    advice = _advised(first.stderr, "run:")
    assert advice == ["discover", "evo"]  # not "discover evo first": a catalog named first
    assert cli(*advice).exit_code == 0
    again: Any = cli("fetch", "evo/beds")
    assert again.exit_code == 0, again.stderr


def test_advice_in_json_lines_names_the_home_typed(
    cli: Cli, manifests: Path, http_server: LocalServer, tmp_path: Path
) -> None:
    # A monitor shows a --json line's error; its advice named no --home, so it ran on another home.
    data = http_server.add("/beds.csv", CSV, content_type="text/csv")
    listing = {"dataset": [{"identifier": "beds", "title": "Beds", "distribution": [{"downloadURL": data}]}]}
    write_catalog(manifests, "evo", [("dcat-us", http_server.add("/evo.json", json.dumps(listing)))])
    other = tmp_path / "team home"

    first: Any = cli("--home", str(other), "fetch", "evo/beds", "--json")
    assert first.exit_code != 0
    (line,) = [json.loads(text) for text in first.stdout.splitlines()]
    advice = _advised(line["error"], "run:")
    assert advice == ["--home", str(other), "discover", "evo"]
    assert cli(*advice).exit_code == 0
    again: Any = cli("--home", str(other), "fetch", "evo/beds", "--json")
    assert again.exit_code == 0, again.stdout


def test_fetch_again_advice_of_a_damaged_table_quotes_its_file(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "my beds.csv"
    source.write_text(CSV)
    assert cli("fetch", str(source), "--as", "my.beds").exit_code == 0
    source.write_text(CSV + "5,6\n")
    assert cli("fetch", str(source), "--as", "my.beds").exit_code == 0
    current = json.loads(cli("info", "my.beds", "--format", "json").stdout)["current"]
    Path(current["path"], "snapshot.json").write_text("{")

    damaged: Any = cli("info", "my.beds")
    assert damaged.exit_code != 0
    advice = _advised(damaged.stderr, "replace it:")
    assert advice == ["fetch", str(source), "--as", "my.beds", "--force"]
    assert cli(*advice).exit_code == 0
    info: Any = cli("info", "my.beds", "--format", "json")
    assert info.exit_code == 0 and json.loads(info.stdout)["current"]["rows"] == 3


def test_a_query_missing_a_tables_file_gives_the_fetch_that_replaces_it(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "my beds.csv"
    source.write_text(CSV)
    assert cli("fetch", str(source), "--as", "my.beds").exit_code == 0
    current = json.loads(cli("info", "my.beds", "--format", "json").stdout)["current"]
    for name in current["files"]:
        Path(current["path"], name).unlink()

    failed: Any = cli("sql", "select count(*) as n from my.beds")
    assert failed.exit_code != 0 and "is missing" in failed.stderr
    advice = _advised(failed.stderr, "replace it:")  # not "see: liberacion info", which shows no fetch
    assert advice == ["fetch", str(source), "--as", "my.beds", "--force"]
    assert cli(*advice).exit_code == 0
    again: Any = cli("sql", "select count(*) as n from my.beds")
    assert again.exit_code == 0 and again.stdout == "n\n2\n"


def test_parquet_refusing_an_interval_advises_sql_and_options_that_run(cli: Cli, tmp_path: Path) -> None:
    query = 'select interval 3 day as "time span"'
    target = tmp_path / "out dir" / "spans.parquet"
    target.parent.mkdir()
    refused: Any = cli("sql", query, "--output", str(target))
    assert refused.exit_code == 2
    found = re.search(r"select it as (.*?)::VARCHAR, or use (.*)$", refused.stderr.strip())
    assert found, refused.stderr
    column, options = found.group(1), shlex.split(found.group(2))
    cast: Any = cli("sql", f"select {column}::VARCHAR as t from ({query})", "--format", "csv")
    assert cast.exit_code == 0 and cast.stdout == "t\n3 days\n"
    # Appended to the command as typed: CSV, in a file named .csv (not CSV inside spans.parquet).
    written: Any = cli("sql", query, "--output", str(target), *options)
    assert written.exit_code == 0, written.stderr
    assert (target.parent / "spans.csv").read_text() == "time span\n3 days\n" and not target.exists()


def test_member_advice_quotes_a_name_with_spaces_and_brackets(cli: Cli, tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("2021 (final)/data file.csv", "a,b\n1,2\n")
        zipped.writestr("2022/data file.csv", "a,b\n3,4\n")
    refused: Any = cli("fetch", str(archive), "--member", "data file.csv", "--as", "my.z")
    assert refused.exit_code != 0
    found = re.search(r"e\.g\. (--member .*)$", refused.stderr.strip())
    assert found, refused.stderr
    options = shlex.split(found.group(1))
    assert options == ["--member", "2021 (final)/data file.csv"]
    assert cli("fetch", str(archive), *options, "--as", "my.z").exit_code == 0
    assert cli("sql", "select * from my.z").stdout == "a,b\n1,2\n"


def test_bad_rows_advice_runs_only_where_there_are_bad_rows(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "clean.csv").write_text(CSV)
    (tmp_path / "ragged.csv").write_text("a,b\n" + "".join(f"{i},x{i}\n" for i in range(300)) + "7,8,9,10\n")
    assert cli("fetch", str(tmp_path / "clean.csv"), "--as", "my.clean").exit_code == 0
    assert cli("fetch", str(tmp_path / "ragged.csv"), "--as", "my.ragged").exit_code == 0

    ragged: Any = cli("info", "my.ragged__rejects")
    assert ragged.exit_code != 0
    found = re.search(r'or liberacion (sql "select \* from my\.ragged__rejects")', ragged.stderr)
    assert found, ragged.stderr
    read: Any = cli(*shlex.split(found.group(1)), "--format", "csv")
    assert read.exit_code == 0 and len(read.stdout.splitlines()) == 2, read.stderr

    for command in (["info", "my.clean__rejects"], ["sql", "select * from my.clean__rejects"]):
        clean: Any = cli(*command)
        assert clean.exit_code == 3
        assert "my.clean has no bad rows" in clean.stderr and "select * from" not in clean.stderr
        assert cli(*_advised(clean.stderr, "see:")).exit_code == 0
