"""The command line is a thin layer over the functions: the same mistake is the same error (class,
exit code and words, the command line adding the command to run) and the same settings apply."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import liberacion


@pytest.fixture
def beds(tmp_path: Path) -> Path:
    source = tmp_path / "beds.csv"
    source.write_text("zip,beds\n02115,12\n10001,300\n", encoding="utf-8")
    [result] = liberacion.fetch(source, as_table="cms.beds")
    assert result.status == "fetched"
    return source


def _api_error(call) -> liberacion.LiberacionError:
    with pytest.raises(liberacion.LiberacionError) as caught:
        call()
    return caught.value


def test_prune_of_a_lake_that_is_not_there_is_an_error_from_python_too(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A typo in LIBERACION_LAKE: the command exits 3; prune() returned an empty report, "nothing to prune".
    monkeypatch.setenv("LIBERACION_LAKE", str(tmp_path / "no-such-lake"))
    result = cli("prune")
    err = _api_error(lambda: liberacion.prune(keep=1))
    assert result.exit_code == err.exit_code == 3
    assert result.stderr.strip() == f"error: {err}"


@pytest.mark.parametrize("command", ["info", "history", "diff", "prune"])
def test_a_bare_table_name_or_a_ref_is_said_as_the_command_says_it(cli, beds: Path, command: str) -> None:
    function = getattr(liberacion, command)
    # "beds" for cms.beds: the command's "did you mean cms.beds?" (not found), not "invalid table name".
    result = cli(command, "beds")
    err = _api_error(lambda: function("beds"))
    assert type(err).__name__ == "NoTable" and result.exit_code == err.exit_code == 3
    assert result.stderr.strip() == f"error: {err}" and "did you mean cms.beds?" in str(err)
    # A dataset ref: its table named, the command line adding the command that takes it.
    ref = "cms/hospital-general-information"
    result = cli(command, ref)
    err = _api_error(lambda ref=ref: function(ref))
    assert isinstance(err, liberacion.UsageError) and result.exit_code == err.exit_code == 2
    said = f"{ref} is a dataset ref, not a table; its table is cms.hospital_general_information"
    assert str(err) == said
    assert result.stderr.strip() == f"error: {said}: liberacion {command} cms.hospital_general_information"
    # Refs no catalog knows: the table fetch's rules would give them, as the command line says.
    for ref, table in [("acme/Beds-2026", "acme.beds_2026"), ("http://example.org/x/beds.csv", "local.beds")]:
        result = cli(command, ref)
        err = _api_error(lambda ref=ref: function(ref))
        assert result.stderr.strip() == f"error: {err}: liberacion {command} {table}"


def test_liberacion_sql_safe_sandboxes_every_query_as_the_readme_says(
    cli, beds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = f"select count(*) from read_csv('{beds}')"
    monkeypatch.setenv("LIBERACION_SQL_SAFE", "1")
    result = cli("sql", outside)  # --safe can only be turned on
    err = _api_error(lambda: liberacion.sql(outside, safe=False).fetchall())  # ran outside the sandbox
    assert isinstance(err, liberacion.SQLError) and result.exit_code == err.exit_code == 4
    assert "disabled by configuration" in str(err)
    assert liberacion.sql("select count(*) from cms.beds", safe=False).fetchall() == [(2,)]
    monkeypatch.setenv("LIBERACION_SQL_SAFE", "maybe")  # a bad setting is said however safe is given
    result = cli("sql", "select 1")
    err = _api_error(lambda: liberacion.sql("select 1", safe=False))
    assert isinstance(err, liberacion.ConfigError) and result.exit_code == err.exit_code == 5
    assert result.stderr.strip() == f"error: {err}"


def test_durations_may_be_timedeltas(cli, beds: Path) -> None:
    # refresh --older-than 1h --wait 1; fetch --wait 1: a Python caller's duration is a timedelta.
    checked = liberacion.refresh(older_than=timedelta(0), wait=timedelta(seconds=1))
    assert [event.event for event in checked.events] == ["unchanged"]
    skipped = liberacion.refresh(older_than=timedelta(hours=1))  # checked a moment ago
    assert [event.event for event in skipped.events] == ["skipped"], skipped.events
    result = cli("refresh", "--older-than", "1h", "--wait", "1", "--json")
    assert result.exit_code == skipped.exit_code == 0 and '"event": "skipped"' in result.stdout
    [result] = liberacion.fetch(beds, as_table="cms.beds", wait=timedelta(seconds=1.5))
    assert result.status == "unchanged"
    with pytest.raises(liberacion.UsageError, match="older_than must be 0 or more seconds"):
        liberacion.refresh(older_than=timedelta(hours=-1))


@pytest.mark.parametrize("command", ["show", "fetch"])
def test_a_table_name_for_a_ref_is_said_as_the_command_says_it(cli, beds: Path, command: str) -> None:
    function = getattr(liberacion, command)
    # fetch("cms.beds") was a failed result, "no such file" (exit 3); show's "invalid dataset reference".
    table = "cms.hospital_general_information"
    result = cli(command, table)
    err = _api_error(lambda: function(table))
    assert isinstance(err, liberacion.UsageError) and result.exit_code == err.exit_code == 2
    said = f"{table} is a table name, not a dataset ref; its ref is cms/hospital-general-information"
    assert str(err) == said
    assert result.stderr.strip() == f"error: {said}: liberacion {command} cms/hospital-general-information"
    result = cli(command, "cms.beds")  # fetched from a file: it has no ref, its catalog is known
    err = _api_error(lambda: function("cms.beds"))
    assert isinstance(err, liberacion.UsageError) and result.exit_code == err.exit_code == 2
    assert result.stderr.strip() == f"error: {err}" and "see: liberacion search" in str(err)


@pytest.mark.parametrize("arrow", [True, False])
def test_a_query_of_a_table_whose_files_are_gone_names_the_fetch_that_mends_it(
    cli, home: Path, beds: Path, arrow: bool
) -> None:
    # The command named the very fetch; sql() said only "fetch the table again, with --force".
    assert liberacion.sql("select 1").fetchall() == [(1,)]  # the views name the files
    for data in (home / "lake" / "cms" / "beds").rglob("data-*.parquet"):
        data.unlink()
    result = cli("sql", "select * from cms.beds")
    err = _api_error(lambda: liberacion.sql("select * from cms.beds", arrow=arrow))
    assert type(err).__name__ == "DamagedSnapshot" and result.exit_code == err.exit_code == 1
    assert result.stderr.strip() == f"error: {err}"
    assert str(err).endswith(f"fetch the table again to replace it: liberacion fetch {beds} --as cms.beds --force")
