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
    assert result.stderr.strip() == f"error: {_as_option(err)}"


def _as_option(err: Exception) -> str:
    """What the command line says of ``err``: from Python the lake is the parameter ``lake``."""
    return str(err).replace("(check lake or", "(check --lake or")


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


LAKE_FUNCTIONS = {
    "tables": lambda lake: liberacion.tables(lake=lake),
    "sql": lambda lake: liberacion.sql("select * from cms.beds", lake=lake),
    "info": lambda lake: liberacion.info("cms.beds", lake=lake),
    "history": lambda lake: liberacion.history("cms.beds", lake=lake),
    "diff": lambda lake: liberacion.diff("cms.beds", lake=lake),
    "prune": lambda lake: liberacion.prune(lake=lake, dry_run=True),
    "refresh": lambda lake: liberacion.refresh(lake=lake, check=True),
    "show": lambda lake: liberacion.show("cms/hospital-general-information", lake=lake),
}
COMMANDS = {
    "tables": ["tables"],
    "sql": ["sql", "select * from cms.beds"],
    "info": ["info", "cms.beds"],
    "history": ["history", "cms.beds"],
    "diff": ["diff", "cms.beds"],
    "prune": ["prune", "--dry-run"],
    "refresh": ["refresh", "--check"],
    "show": ["show", "cms/hospital-general-information"],
}


def test_lake_names_the_shared_lake_as_the_lake_option_does(
    cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyiceberg")
    shared = tmp_path / "team-lake"
    source = tmp_path / "beds.csv"
    source.write_text("zip,beds\n02115,12\n", encoding="utf-8")
    # Written from Python into a directory lake; the command line's --lake reads the same table.
    [result] = liberacion.fetch(source, as_table="cms.beds", lake=shared)
    assert result.status == "fetched", result.error
    source.write_text("zip,beds\n02115,12\n10001,300\n", encoding="utf-8")
    [result] = liberacion.fetch(source, as_table="cms.beds", lake=str(shared))
    assert result.status == "fetched", result.error
    listed = cli("--lake", str(shared), "tables", "--format", "json")
    assert listed.exit_code == 0 and '"table": "beds"' in listed.stdout, listed.stderr
    assert liberacion.tables() == [] and cli("tables", "--format", "json").stdout.strip() == "[]"  # the home's own
    assert [t.name for t in liberacion.tables(lake=shared)] == ["cms.beds"]
    assert liberacion.sql("select count(*) from cms.beds", lake=shared).fetchall() == [(2,)]
    assert liberacion.info("cms.beds", lake=shared).storage["format"] == "iceberg"
    assert [entry.snapshot.rows for entry in liberacion.history("cms.beds", lake=shared)] == [1, 2]
    assert liberacion.diff("cms.beds", lake=shared).added == 1
    assert len(liberacion.prune(lake=shared, keep=1, dry_run=True).removed) == 1
    assert [e.event for e in liberacion.refresh(lake=shared, check=True).events] == ["unchanged"]
    assert liberacion.show("cms/hospital-general-information", lake=shared).lake["present"] is False
    # lake= wins over LIBERACION_LAKE, as --lake does; a Home's lake_uri gives way to it too.
    from liberacion.home import Home

    monkeypatch.setenv("LIBERACION_LAKE", str(tmp_path / "other"))
    assert [t.name for t in liberacion.tables(lake=shared)] == ["cms.beds"]
    assert [t.name for t in liberacion.tables(home=Home(home, lake_uri=str(tmp_path / "other")), lake=shared)]


@pytest.mark.parametrize("function", sorted(LAKE_FUNCTIONS))
def test_a_bad_lake_is_said_as_a_bad_lake_option_is(cli, beds: Path, tmp_path: Path, function: str) -> None:
    pytest.importorskip("pyiceberg")
    call = LAKE_FUNCTIONS[function]
    for bad in ("ftp://example.org/lake", "s3://"):  # no lake liberacion can use: a usage error
        result = cli("--lake", bad, *COMMANDS[function])
        err = _api_error(lambda bad=bad: call(bad))
        assert isinstance(err, liberacion.UsageError) and result.exit_code == err.exit_code == 2
        assert result.stderr.strip() == f"error: {err}" and "cannot use the lake" in str(err)
    if function != "show":  # a typo of a directory: no lake there, not an empty one
        missing = tmp_path / "no-such-lake"
        result = cli("--lake", str(missing), *COMMANDS[function])
        err = _api_error(lambda: call(missing))
        assert result.exit_code == err.exit_code == 3
        assert result.stderr.strip() == f"error: {_as_option(err)}" and "(check lake or LIBERACION_LAKE)" in str(err)
    with pytest.raises(liberacion.UsageError, match="lake must be a directory or a URI"):
        call(3)


def test_history_names_the_pruned_snapshots_from_python_and_once_on_the_command_line(
    cli, beds: Path, home: Path
) -> None:
    beds.write_text("zip,beds\n02115,12\n", encoding="utf-8")
    [result] = liberacion.fetch(beds, as_table="cms.beds")
    assert result.status == "fetched"
    [(_, gone)] = liberacion.prune(keep=1).removed
    with pytest.warns(liberacion.Note) as said:
        entries = liberacion.history("cms.beds")
    assert len(entries) == 1
    [note] = [str(w.message) for w in said]
    assert note.startswith(f"1 older snapshot(s) of cms.beds were pruned, the newest of them {gone.id}")
    assert note.endswith(f"is in {home / 'lake' / 'cms' / 'beds' / 'pruned.jsonl'}")
    result = cli("history", "cms.beds", "--format", "csv")
    assert result.exit_code == 0 and result.stderr.strip() == f"note: {note}"


def test_tables_carry_the_last_refresh_of_a_zips_member_tables(cli, tmp_path: Path) -> None:
    import json
    import zipfile

    # tables --format json gave each member table its set's last refresh; tables() gave none at all.
    archive = tmp_path / "beds.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("beds.csv", "zip,beds\n02115,12\n")
        zipped.writestr("staff.csv", "zip,staff\n02115,40\n")
    results = liberacion.fetch(archive, as_table="cms.beds")
    assert [r.status for r in results] == ["fetched"], results
    assert [(t.checked_at, t.last_refresh) for t in liberacion.tables()] == [(None, None)] * 2  # never refreshed
    report = liberacion.refresh()
    assert report.exit_code == 0 and [e.event for e in report.events] == ["unchanged"]
    found = liberacion.tables()
    assert len(found) == 2 and all(t.last_refresh == "unchanged" and t.checked_at for t in found)
    listed = json.loads(cli("tables", "--format", "json").stdout)
    assert [(r["checked_at"], r["last_refresh"]) for r in listed] == [(t.checked_at, t.last_refresh) for t in found]
