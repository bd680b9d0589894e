"""What the commands' --help promises: a bad value of an option is one error line naming that
option, and TAB offers the values the help lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_completion import complete


@pytest.fixture
def deaths(tmp_path: Path) -> Path:
    """The local file of fetch's help examples (``liberacion fetch ./deaths.csv --type fips=VARCHAR``)."""
    path = tmp_path / "deaths.csv"
    path.write_text("fips,county,deaths\n01001,Autauga,12\n06037,Los Angeles,1200\n", encoding="utf-8")
    return path


def error_line(result: object) -> str:
    lines = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    return lines[0]


def test_the_help_examples_of_fetch_work_on_a_local_file(cli, deaths: Path) -> None:
    assert cli("fetch", str(deaths), "--type", "fips=VARCHAR").exit_code == 0
    result = cli("sql", "select fips from local.deaths order by fips", "-f", "csv")
    assert result.stdout.splitlines() == ["fips", "01001", "06037"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--type", "fips=NOPE"], "--type fips=NOPE: unknown column type 'NOPE'"),
        (["--as", "deaths"], "--as deaths: invalid table name 'deaths'"),
        (["--as", "1st.deaths"], "--as 1st.deaths: invalid table name '1st.deaths'"),
    ],
)
def test_a_bad_value_of_a_fetch_option_names_the_option(cli, deaths: Path, args: list[str], named: str) -> None:
    result = cli("fetch", str(deaths), *args)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"error: {named}")


@pytest.mark.parametrize("duration", ["12x", "-1h", "soon"])
def test_a_bad_older_than_names_the_option(cli, duration: str) -> None:
    result = cli("refresh", "--older-than", duration)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"error: --older-than: invalid duration {duration!r}: ")


def test_the_python_api_names_its_parameter_for_a_bad_duration(home: Path) -> None:
    import liberacion
    from liberacion.errors import UsageError

    with pytest.raises(UsageError, match=r"^older_than: invalid duration '12x'"):
        liberacion.refresh(home=home, older_than="12x")


def test_tab_after_on_schema_change_offers_the_policies_its_help_lists(cli) -> None:
    assert "evolve|fail" in cli("refresh", "--help").stdout
    assert complete("bash", "liberacion refresh --on-schema-change ") == ["evolve", "fail"]
    assert complete("bash", "liberacion refresh --on-schema-change f") == ["fail"]


@pytest.mark.parametrize("command", ["sql", "diff", "fetch"])
def test_options_help_on_a_40_column_screen_is_not_a_word_a_line(home: Path, command: str) -> None:
    from tests.test_narrow_screens import terminal

    lines, status = terminal(home, command, "--help", width=40)
    assert status == 0
    options = lines[lines.index("Options:") + 1 :]
    # Click gave the names 30 columns whatever the screen and wrapped at 50 columns at least: the
    # descriptions were cut to ten columns, then cut again by the screen.
    indents = {len(line) - len(line.lstrip()) for line in options if line.startswith(" " * 6)}
    assert max(indents) <= 20, "\n".join(options)
    assert all(len(line) <= 40 for line in options if "<table|" not in line), "\n".join(options)
    assert any(line.startswith("  -h, --help") for line in options)


def test_bad_times_snapshots_and_sql_files_name_their_option(cli, deaths: Path, tmp_path: Path) -> None:
    # `--from bogus` said "invalid time 'bogus': use a date or a UTC timestamp" (no option, and not
    # that a snapshot id, current or previous would do); `--file /nope.sql` said "cannot read".
    assert cli("fetch", str(deaths)).exit_code == 0
    for args, said in [
        (("sql", "select 1", "--as-of", "yesterday"), "error: --as-of: invalid time 'yesterday'"),
        (("diff", "local.deaths", "--from", "bogus"), "error: --from: 'bogus' is not a snapshot of local.deaths"),
        (("diff", "local.deaths", "--to", "2026-13-01"), "error: --to: '2026-13-01' is not a snapshot"),
        (("sql", "--file", str(tmp_path / "nope.sql")), f"error: --file {tmp_path / 'nope.sql'}: cannot read it"),
    ]:
        result = cli(*args)
        assert result.exit_code == 2 and error_line(result).startswith(said), (args, result.stderr)
    assert (
        "a snapshot id (or the start of one), current, previous, a date"
        in cli("diff", "local.deaths", "--from", "bogus").stderr
    )
