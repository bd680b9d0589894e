"""Options, overrides and settings that cannot be honoured are one clear error, never ignored without
a word: each case here was once accepted and had no effect (or another one than asked)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import liberacion
from tests.test_errors import assert_one_error

TABLE = "local.t"


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "t.csv"
    path.write_text("a,beds\n1,10\n2,20\n", encoding="utf-8")
    return path


# -- refresh --check asks only -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--force"], ["--check and --force", "downloads nothing"]),  # was: checked, --force ignored
        (["--on-schema-change", "fail"], ["--check and --on-schema-change fail", "publishes nothing"]),
        (["--wait", "60"], ["--check and --wait", "never waits"]),
    ],
)
def test_refresh_check_refuses_options_it_cannot_honour(
    cli: Any, csv_file: Path, args: list[str], words: list[str]
) -> None:
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    assert_one_error(cli("refresh", "--check", *args), 2, *words)
    assert cli("refresh", "--check", "--on-schema-change", "evolve", "--wait", "0").exit_code == 0


def test_refresh_check_from_python_names_the_parameters() -> None:
    with pytest.raises(liberacion.UsageError, match=r"^check and force cannot be combined"):
        liberacion.refresh(check=True, force=True)
    with pytest.raises(liberacion.UsageError, match=r"^check and on_schema_change='fail' cannot be combined"):
        liberacion.refresh(check=True, on_schema_change="fail")


# -- --type and the manifest's [dataset.columns] -------------------------------------------------


def _type_of(column: str, table: str = TABLE) -> str:
    [(kind,)] = liberacion.sql(f"select typeof({column}) from {table} limit 1").fetchall()
    return str(kind)


def test_one_column_typed_twice_is_refused(cli: Any, csv_file: Path) -> None:
    # The first was dropped: --type beds=VARCHAR --type beds=DOUBLE made a DOUBLE column, exit 0.
    result = cli("fetch", str(csv_file), "--as", TABLE, "--type", "beds=VARCHAR", "--type", "beds =DOUBLE")
    assert_one_error(result, 2, "--type names column 'beds' twice (VARCHAR, DOUBLE)", "give each column once")
    assert cli("fetch", str(csv_file), "--as", TABLE, "--type", "beds=VARCHAR", "--type", "beds=varchar").exit_code == 0
    assert _type_of("beds") == "VARCHAR"


def test_type_wins_over_the_manifest_however_each_spells_the_column(
    cli: Any, manifests: Path, http_server: Any
) -> None:
    from tests.manifests import write_catalog

    url = http_server.add("/beds.csv", "Facility ID,Beds\n010001,12\n010005,40\n")
    body = f'\n[[dataset]]\nid = "beds"\nurl = "{url}"\n[dataset.columns]\nbeds = "string"\n'
    write_catalog(manifests, "mine", body=body)
    # The manifest's exact name beat the --type's published name: the column stayed text, exit 0.
    assert cli("fetch", "mine/beds", "--type", "Beds=DOUBLE").exit_code == 0
    assert _type_of("beds", "mine.beds") == "DOUBLE"
    assert cli("fetch", "mine/beds", "--force").exit_code == 0  # without --type, the manifest's type
    assert _type_of("beds", "mine.beds") == "VARCHAR"


# -- an empty --lake -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_lake_is_refused_not_the_default_lake(cli: Any, csv_file: Path, value: str) -> None:
    # It was the home's own lake (or LIBERACION_LAKE's), as if --lake had not been given; --home "" is refused.
    assert_one_error(cli("--lake", value, "fetch", str(csv_file), "--as", TABLE), 2, "--lake: must not be empty")
    with pytest.raises(liberacion.UsageError, match=r"^lake must not be empty"):
        liberacion.fetch([csv_file], as_table=TABLE, lake=value)
    assert liberacion.tables() == []


# -- an option given twice -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["sql", "select 1", "-f", "json", "--format", "csv"],
            "--format given twice: the last, csv, is used (not json)",
        ),
        (["fetch", "t.csv", "--member", "a.csv", "--member", "b.csv"], "--member given twice: the last, b.csv,"),
        (["--home", "one", "--home", "two", "tables"], "--home given twice: the last, two, is used (not one)"),
        (["diff", TABLE, "--from", "previous", "--from", "current"], "--from given twice: the last, current,"),
    ],
)
def test_an_option_of_one_value_given_twice_is_said(cli: Any, args: list[str], said: str) -> None:
    # The last one won and the first was dropped without a word: two --member read as "load both".
    # The last still wins (advice is appended to the command as typed), in a note.
    result = cli(*args)
    assert "Traceback" not in result.stderr
    assert f"note: {said}" in result.stderr


def test_the_same_value_twice_and_repeatable_options_are_taken(cli: Any, csv_file: Path) -> None:
    assert cli("sql", "select 42 as n", "-f", "csv", "-f", "csv").stdout == "n\n42\n"
    result = cli("fetch", str(csv_file), "--as", TABLE, "--type", "a=VARCHAR", "--type", "beds=DOUBLE", "--force")
    assert result.exit_code == 0, result.stderr
    assert (_type_of("a"), _type_of("beds")) == ("VARCHAR", "DOUBLE")


@pytest.mark.parametrize(
    "args",
    [
        ["sql", "select 42 as n", "-f", "csv", "--format", "CSV"],  # one format, spelled twice
        ["--home", "{home}", "--home", "{home}/", "sql", "select 42 as n", "-f", "csv"],  # one directory
        ["sql", "select 42 as n", "-f", "json", "-f", "bogus"],  # refused: its error says so, not "is used"
    ],
)
def test_one_value_in_two_spellings_or_a_refused_one_gets_no_note(cli: Any, home: Path, args: list[str]) -> None:
    # "note: --format given twice: the last, CSV, is used (not csv)" named one value as two.
    result = cli(*[arg.format(home=home) for arg in args])
    assert "note:" not in result.stderr and "Traceback" not in result.stderr


# -- settings from the environment -----------------------------------------------------------------


def test_a_count_of_retries_that_is_not_whole_is_refused(
    cli: Any, csv_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIBERACION_RETRIES", "1.5")  # was 1 retry, the half dropped without a word
    assert_one_error(cli("fetch", str(csv_file), "--as", TABLE), 5, "LIBERACION_RETRIES='1.5' must be a whole number")
    monkeypatch.setenv("LIBERACION_RETRIES", "2.0")
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0


def test_catalog_paths_in_the_environment_are_trimmed(
    cli: Any, manifests: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # " DIR " (a space pasted into a crontab) was "no such catalog manifest or directory", exit 5,
    # where LIBERACION_HOME and LIBERACION_LAKE are trimmed.
    from tests.manifests import write_catalog

    write_catalog(manifests, "mine", body='\n[[dataset]]\nid = "beds"\ntitle = "Beds"\nurl = "https://x.gov/b.csv"\n')
    other = tmp_path / "other"
    other.mkdir()
    write_catalog(other, "theirs", body='\n[[dataset]]\nid = "cots"\ntitle = "Cots"\nurl = "https://x.gov/c.csv"\n')
    monkeypatch.setenv("LIBERACION_CATALOGS", f" {manifests} {os.pathsep} {other}\t")
    result = cli("search", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert {"mine/beds", "theirs/cots"} <= {line.split(",")[0] for line in result.stdout.splitlines()}


@pytest.mark.parametrize("lake", [[], ["--lake", "{home}/lake"]])
def test_a_shared_catalog_without_a_shared_lake_is_refused(
    cli: Any, csv_file: Path, home: Path, monkeypatch: pytest.MonkeyPatch, lake: list[str]
) -> None:
    # LIBERACION_ICEBERG_CATALOG was unused without a word: a crontab missing LIBERACION_LAKE
    # fetched into the home's own lake, exit 0, and the team's lake never changed.
    monkeypatch.setenv("LIBERACION_ICEBERG_CATALOG", "team")
    args = [part.format(home=home) for part in lake]
    result = cli(*args, "fetch", str(csv_file), "--as", TABLE)
    assert_one_error(result, 5, "LIBERACION_ICEBERG_CATALOG='team' names a shared Iceberg catalog, but")
    assert_one_error(cli(*args, "tables"), 5, "unset LIBERACION_ICEBERG_CATALOG")
    monkeypatch.delenv("LIBERACION_ICEBERG_CATALOG")
    assert cli(*args, "tables").stdout.count("\n") == 1  # the header: nothing was fetched


def test_fetch_quiet_with_progress_is_refused(cli: Any, csv_file: Path) -> None:
    # --quiet won and --progress was dropped without a word: no progress, exit 0.
    result = cli("fetch", str(csv_file), "--as", TABLE, "--quiet", "--progress")
    assert_one_error(result, 2, "--quiet and --progress cannot be combined")
    assert liberacion.tables() == []


# -- empty values that read as "not given" -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        # The whole file was loaded, where --member x.csv on a plain file is refused.
        (["fetch", "{csv}", "--as", TABLE, "--member", ""], ["--member must not be empty"]),
        # Every dataset was kept, as if the filter had not been given.
        (["search", "hospital", "--publisher", " "], ["--publisher must not be empty"]),
        (["search", "hospital", "--format-of-data", ""], ["--format-of-data must not be empty"]),
        # The previous snapshot was compared, where --to "" and --from " " are refused.
        (["diff", TABLE, "--from", ""], ["--from: '' is not a snapshot of local.t"]),
        (["diff", TABLE, "--to", ""], ["--to: '' is not a snapshot of local.t"]),
    ],
)
def test_an_empty_value_is_refused_not_taken_as_not_given(
    cli: Any, csv_file: Path, args: list[str], words: list[str]
) -> None:
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    csv_file.write_text("a,beds\n1,10\n2,20\n3,30\n", encoding="utf-8")
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    assert_one_error(cli(*[arg.format(csv=csv_file) for arg in args]), 2, *words)


def test_an_empty_time_from_python_is_refused(csv_file: Path) -> None:
    liberacion.fetch(csv_file, as_table=TABLE)
    with pytest.raises(liberacion.UsageError, match=r"^as_of: invalid time ''"):  # was: the current snapshot
        liberacion.sql(f"select count(*) from {TABLE}", as_of="")
    with pytest.raises(liberacion.UsageError, match=r"^from_snapshot: '' is not a snapshot"):
        liberacion.diff(TABLE, from_snapshot="")
    with pytest.raises(liberacion.UsageError, match=r"^member must not be empty"):
        liberacion.fetch(csv_file, as_table=TABLE, member="")


# -- catalog manifests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # Loaded, then looked up in the listing as an id of its own ("source id d-e3b0c44298fc").
        ('\n[[dataset]]\nid = "a"\nsource_id = ""\n', "[[dataset]] #1 (a): `source_id` is empty"),
        # Refused as "not an array", which it is.
        (
            '\n[[dataset]]\nid = "a"\nurl = "https://x.gov/a.csv"\nkeys = [""]\n',
            "[[dataset]] #1 (a): `keys` holds an empty string",
        ),
    ],
)
def test_a_manifest_value_that_says_nothing_is_refused_when_it_loads(
    cli: Any, manifests: Path, body: str, message: str
) -> None:
    from tests.manifests import write_catalog

    path = write_catalog(manifests, "mine", [("dcat-us", "https://x.gov/data.json")], body=body)
    assert_one_error(cli("catalogs"), 5, f"{path}: {message}")


@pytest.mark.parametrize("value", ["https://data.wa.gov/", "data.wa.gov:443", "*.wa.gov"])
def test_socrata_hosts_that_are_not_host_names_are_refused(
    cli: Any, csv_file: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    # None of them ever equals a request's host: the app token went nowhere, without a word.
    monkeypatch.setenv("LIBERACION_SOCRATA_HOSTS", f"data.ny.gov, {value}")
    result = cli("fetch", str(csv_file), "--as", TABLE)
    assert_one_error(result, 5, f"LIBERACION_SOCRATA_HOSTS: {value!r} is not a host name")
    monkeypatch.setenv("LIBERACION_SOCRATA_HOSTS", "data.ny.gov, DATA.WA.GOV ,127.0.0.1")
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0


def test_tokens_with_stray_whitespace_are_sent_trimmed(
    cli: Any, http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # " sekrit\t" was put in the header as it was: six attempts over 20 s, then "connection failed
    # (InvalidHeader); try again later", which no later try could mend.
    monkeypatch.setenv("LIBERACION_SOCRATA_HOSTS", "127.0.0.1")
    monkeypatch.setenv("LIBERACION_SOCRATA_APP_TOKEN", " sekrit\t")
    monkeypatch.setattr("liberacion.download.session._default", None)  # a client that reads them
    url = http_server.add("/a.csv", "a,b\n1,2\n")
    assert cli("fetch", url, "--as", "local.a").exit_code == 0
    assert http_server.hits("/a.csv")[0].headers.get("X-App-Token") == "sekrit"
    monkeypatch.setenv("LIBERACION_SOCRATA_APP_TOKEN", " ")  # blank: no token at all
    monkeypatch.setattr("liberacion.download.session._default", None)
    assert cli("fetch", url, "--as", "local.a", "--force").exit_code == 0
    assert "X-App-Token" not in http_server.hits("/a.csv")[-1].headers


# -- --format and the --output extension ---------------------------------------------------------------


def test_a_format_that_overrides_the_output_extension_is_said(cli: Any, csv_file: Path, tmp_path: Path) -> None:
    # --format wins (README), but CSV went into x.json without a word.
    out = tmp_path / "x.json"
    result = cli("sql", "select 42 as n", "-f", "csv", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_text() == "n\n42\n"
    assert f"note: --format csv wins: {out} is written as csv, not the json its extension says" in result.stderr
    for agreeing in (["-f", "JSON", "-o", str(out)], ["-o", str(out)], ["-f", "csv", "-o", str(tmp_path / "x.txt")]):
        result = cli("sql", "select 42 as n", *agreeing)
        assert result.exit_code == 0 and "note:" not in result.stderr, result.stderr


def test_a_home_named_with_stray_spaces_is_that_home(
    cli: Any, csv_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # " /srv/liberacion " was a relative path: a home made under a folder named " " in the current
    # directory, exit 0, and the home named stayed empty.
    work, home = tmp_path / "work", tmp_path / "spaced-home"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("LIBERACION_HOME", f" {home} ")
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    assert list(work.iterdir()) == []
    assert (home / "lake" / "local" / "t").is_dir()


def test_a_socrata_domain_no_pointer_reads_is_refused(cli: Any, manifests: Path) -> None:
    from tests.manifests import write_catalog

    # It is read only to look up a source_id; without one it did nothing, without a word.
    path = write_catalog(
        manifests, "mine", [("socrata", "https://x.gov/data.json")], body='socrata_domain = "data.x.gov"\n'
    )
    assert_one_error(cli("catalogs"), 5, f"{path}: [[source]] #1 (socrata): `socrata_domain` is read only to look up")
    with path.open("a", encoding="utf-8") as manifest:
        manifest.write('\n[[dataset]]\nid = "a"\nsource_id = "abcd-efgh"\n')
    assert cli("catalogs").exit_code == 0


@pytest.mark.parametrize(
    "types",
    [
        {"beds": "VARCHAR", "BEDS": "DOUBLE"},  # one name in two cases
        {"Zip Code": "VARCHAR", "zip_code": "BIGINT"},  # its published and its snake_case name
    ],
)
def test_two_overrides_of_one_column_are_refused(tmp_path: Path, types: dict[str, str]) -> None:
    # One was taken, the other dropped without a word.
    path = tmp_path / "t.csv"
    path.write_text("Zip Code,beds\n02115,10\n", encoding="utf-8")
    [result] = liberacion.fetch(path, as_table=TABLE, types=types)
    assert result.status == "failed" and result.error is not None
    (first, one), (second, other) = types.items()
    assert f"types[{first!r}]={one!r} and types[{second!r}]={other!r} both name the column" in result.error


def test_an_override_s_errors_name_the_api_s_parameters_in_the_api(cli: Any, tmp_path: Path) -> None:
    # From Python they said "--type beds=VARCHAR and --type BEDS=DOUBLE", "--type nosuch=BIGINT:
    # no column" and "use --raw": options a caller of liberacion.fetch has no way to give.
    path = tmp_path / "t.csv"
    path.write_text("Zip Code,beds\n02115,10\n02116,ten\n", encoding="utf-8")
    said = {
        "twice": ({"beds": "VARCHAR", "BEDS": "DOUBLE"}, "types['beds']='VARCHAR' and types['BEDS']='DOUBLE' both"),
        "missing": ({"nosuch": "BIGINT"}, "types['nosuch']='BIGINT': no column \"nosuch\""),
        "unfit": ({"beds": "BIGINT"}, "drop the type override or use raw=True"),
    }
    for types, words in said.values():
        [result] = liberacion.fetch(path, as_table=TABLE, types=types)
        assert result.error is not None and words in result.error and "--" not in result.error
    given = cli("fetch", str(path), "--as", TABLE, "--type", "beds=VARCHAR", "--type", "BEDS=DOUBLE")
    assert_one_error(given, 1, "--type beds=VARCHAR and --type BEDS=DOUBLE both name the column 'beds'")
    assert_one_error(cli("fetch", str(path), "--as", TABLE, "--type", "beds=BIGINT"), 1, "or use --raw")


def test_columns_that_differ_only_in_case_each_take_their_own_type(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("beds,BEDS\n1,2\n", encoding="utf-8")
    result = cli("fetch", str(path), "--as", TABLE, "--type", "beds=VARCHAR", "--type", "BEDS=DOUBLE")
    assert result.exit_code == 0, result.stderr
    assert (_type_of("beds"), _type_of("beds_2")) == ("VARCHAR", "DOUBLE")


def test_a_manifest_typing_one_column_twice_is_refused(cli: Any, manifests: Path, http_server: Any) -> None:
    from tests.manifests import write_catalog

    url = http_server.add("/beds.csv", "Facility ID,Beds\n010001,12\n")
    body = f'\n[[dataset]]\nid = "beds"\nurl = "{url}"\n[dataset.columns]\nBeds = "string"\nbeds = "double"\n'
    write_catalog(manifests, "mine", body=body)
    result = cli("fetch", "mine/beds")
    assert_one_error(result, 1, "[dataset.columns] of beds: Beds and beds both name the column 'Beds'")


def test_a_format_of_data_with_stray_spaces_is_that_format(cli: Any) -> None:
    # "xpt " matched no dataset's formats: "no datasets match", where "xpt" and ".XPT" find them.
    result = cli("search", "nhanes", "--format-of-data", " xpt ", "--limit", "1", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("nhanes/")
