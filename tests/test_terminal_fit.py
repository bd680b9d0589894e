"""What fits a terminal: every column of the fetch and refresh summaries and of ``tables`` under a
long table name, search titles told apart, and REAL values as their shortest digits. Commands run
in a pty and are read off the screen a terminal emulator draws (``terminal`` of test_terminal)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.conftest import Cli, run_process
from tests.server import LocalServer
from tests.test_terminal import _cells, terminal

# A file name as long as data.cms.gov's exports get; its table name is cut to 63 characters and
# made unique by a hash, which is why it is long and cannot be guessed.
LONG_FILE = "Hospital_General_Information_and_Quality_Measures_by_State_2024_final.csv"
LONG_TABLE = "local.hospital_general_information_and_quality_measures_by_s_8f5f466e"
CSV = "facility_id,state,beds\n010001,AL,12\n010005,AL,40\n"


def _block(lines: list[str], name: str, width: int) -> list[str]:
    """The field lines of the block headed by ``name``: the name alone on its line(s), as the
    terminal wraps a line longer than the screen, and the indented lines under it."""
    height = math.ceil(len(name) / width)
    for k in range(len(lines) - height):
        below = lines[k + height] if k + height < len(lines) else ""
        if "".join(lines[k : k + height]) == name and below.startswith("  "):
            fields = []
            for line in lines[k + height :]:
                if not line.startswith("  "):
                    break
                fields.append(line.strip())
            return fields
    raise AssertionError(f"no block headed {name} in:\n" + "\n".join(lines))


def _pairs(fields: list[str]) -> str:
    """The block's ``field: value`` pairs as one line (a pair may go on over lines of its own)."""
    return " ".join(fields)


def _long_csv(tmp_path: Path) -> Path:
    path = tmp_path / LONG_FILE
    path.write_text(CSV, encoding="utf-8")
    return path


# -- fetch, refresh, tables: a long table name hides no column ------------------------------------


@pytest.mark.parametrize("width", [80, 60, 40])
def test_fetch_summary_shows_every_column_under_a_long_name(home: Path, tmp_path: Path, width: int) -> None:
    lines, _, code = terminal(home, "fetch", str(_long_csv(tmp_path)), width=width)
    assert code == 0, lines
    assert all(len(line) <= width for line in lines)
    pairs = _pairs(_block(lines, LONG_TABLE, width))
    for pair in ("status: fetched", "rows: 2", "downloaded: ", "time: "):
        assert pair in pairs, pairs


def test_fetch_summary_on_a_wide_screen_stays_a_table(home: Path, tmp_path: Path) -> None:
    lines, _, code = terminal(home, "fetch", str(_long_csv(tmp_path)), width=200)
    assert code == 0, lines
    header = _cells(next(line for line in lines if line.startswith("│ table")))
    assert header == ["table", "status", "rows", "downloaded", "time"]
    row = _cells(next(line for line in lines if line.startswith(f"│ {LONG_TABLE} ")))
    assert row[:3] == [LONG_TABLE, "fetched", "2"]


@pytest.mark.parametrize("width", [80, 60, 40])
def test_tables_show_every_column_under_a_long_name(cli: Cli, home: Path, tmp_path: Path, width: int) -> None:
    assert cli("fetch", str(_long_csv(tmp_path))).exit_code == 0
    lines, _, code = terminal(home, "tables", width=width)
    assert code == 0, lines
    assert all(len(line) <= width for line in lines)
    pairs = _pairs(_block(lines, LONG_TABLE, width))
    for pair in ("rows: 2", "size: ", "fetched: just now", "snapshots: 1", "source: Hospital_General"):
        assert pair in pairs, pairs


def test_tables_on_a_wide_screen_stay_a_table(cli: Cli, home: Path, tmp_path: Path) -> None:
    assert cli("fetch", str(_long_csv(tmp_path))).exit_code == 0
    lines, _, code = terminal(home, "tables", width=200)
    assert code == 0, lines
    header = _cells(next(line for line in lines if line.startswith("│ table")))
    assert header == ["table", "rows", "size", "fetched", "snapshots", "source"]
    assert _cells(next(line for line in lines if LONG_TABLE in line))[-1] == LONG_FILE


@pytest.mark.parametrize("width", [80, 40])
def test_refresh_summary_shows_every_column_under_a_long_name(
    cli: Cli, home: Path, http_server: LocalServer, width: int
) -> None:
    url = http_server.add(f"/{LONG_FILE}", CSV, content_type="text/csv")
    assert cli("fetch", url).exit_code == 0
    lines, _, code = terminal(home, "refresh", width=width)
    assert code == 0, lines
    assert all(len(line) <= width for line in lines)
    pairs = _pairs(_block(lines, LONG_TABLE, width))
    for pair in ("event: unchanged", "rows: ", "bytes: ", "seconds: "):
        assert pair in pairs, pairs


def test_pipes_keep_their_formats(cli: Cli, home: Path, tmp_path: Path) -> None:
    fetched = run_process("fetch", str(_long_csv(tmp_path)))
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.startswith(f"{LONG_TABLE}\tfetched\t2 rows\t")
    listed = run_process("tables")
    header, row = listed.stdout.splitlines()
    assert header == "catalog,table,rows,bytes,fetched_at,source_url,snapshots,error,checked_at,last_refresh"
    assert row.startswith(f"local,{LONG_TABLE.removeprefix('local.')},2,")


# -- search: titles told apart, refs whole --------------------------------------------------------

TITLE = "Provider Data Catalog: Hospitals — Hospital General Information {year}"
REF = "t/provider-data-hospital-general-information-{year}"


@pytest.fixture
def yearly(manifests: Path) -> None:
    """Two curated datasets whose long titles differ only in the year at their end."""
    datasets = "".join(
        f'\n[[dataset]]\nid = "provider-data-hospital-general-information-{year}"\n'
        f'title = "{TITLE.format(year=year)}"\nurl = "https://example.org/hgi-{year}.csv"\n'
        for year in (2023, 2024)
    )
    (manifests / "t.toml").write_text(f'name = "t"\ntitle = "Test"\n{datasets}', encoding="utf-8")


def _search_rows(lines: list[str]) -> dict[str, str]:
    """Each row of a search table: its ref and its title, the title's lines joined."""
    header = _cells(next(line for line in lines if line.startswith("│ ref")))
    rows: dict[str, str] = {}
    ref = ""
    for line in lines[lines.index(next(line for line in lines if line.startswith("├"))) + 1 :]:
        if not line.startswith("│"):
            break
        cells = _cells(line)
        ref = cells[0] or ref  # a title's next lines leave the ref's cell empty
        rows[ref] = f"{rows.get(ref, '')} {cells[header.index('title')]}".strip()
    return rows


@pytest.mark.parametrize("width", [80, 100])
def test_search_titles_that_differ_at_their_end_look_different(yearly: None, home: Path, width: int) -> None:
    lines, _, code = terminal(home, "search", "hospital", "general", "information", "--catalog", "t", width=width)
    assert code == 0, lines
    assert all(len(line) <= width for line in lines)
    rows = _search_rows(lines)
    assert set(rows) == {REF.format(year=2023), REF.format(year=2024)}  # refs whole
    for year in (2023, 2024):
        title = rows[REF.format(year=year)]
        assert title.startswith("Provider Data") and title.endswith(str(year)), title
    assert len([line for line in lines if line.startswith("│")]) <= 1 + 2 * 3  # a title takes at most 3 lines


def test_search_refs_stay_whole_on_a_narrow_screen(yearly: None, home: Path) -> None:
    lines, _, code = terminal(home, "search", "hospital", "general", "information", "--catalog", "t", width=40)
    assert code == 0, lines
    for year in (2023, 2024):
        pairs = _pairs(_block(lines, REF.format(year=year), 40))
        assert f"title: {TITLE.format(year=year)} " in pairs, pairs  # wrapped at its spaces, all of it


def test_wrap_ends_keeps_a_titles_start_and_end() -> None:
    from liberacion.render import wrap_ends

    assert wrap_ends("Hospital General Information 2023", 20, 3) == ["Hospital General", "Information 2023"]
    assert wrap_ends("Hospital General Information 2023", 13, 3) == ["Hospital", "General", "…rmation 2023"]
    assert wrap_ends("COVID-19 Reported Patient Impact and Hospital Capacity by Facility", 13, 3)[-1] == "…by Facility"
    assert wrap_ends("short", 13, 3) == ["short"]


# -- REAL values: the shortest digits of their float32 --------------------------------------------

REALS = "select 0.1::REAL as r, [0.1::REAL, 2.5::REAL] as l, {'a': 123456.7::REAL} as s"


def test_real_values_show_their_shortest_digits_on_a_terminal(home: Path) -> None:
    lines, _, code = terminal(home, "sql", REALS)
    assert code == 0, lines
    row = _cells(next(line for line in lines if "0.1" in line and line.startswith("│")))
    assert row == ["0.1", "[0.1, 2.5]", '{"a": 123456.7}']
    lines, _, code = terminal(home, "sql", "-x", REALS)
    assert code == 0 and "r │ 0.1" in lines, lines


def test_a_plain_real_column_shows_its_shortest_digits_on_a_terminal(home: Path) -> None:
    lines, _, code = terminal(home, "sql", "select 0.1::REAL as r")
    assert code == 0 and "│   r │" in lines and "│ 0.1 │" in lines, lines


def test_real_values_in_machine_formats(cli: Cli) -> None:
    # Markdown goes through Arrow and render: the shortest digits too.
    markdown = cli("sql", REALS, "--format", "markdown")
    assert markdown.stdout.splitlines()[-1] == '| 0.1 | [0.1, 2.5] | {"a": 123456.7} |'
    # CSV and JSON of one query, or of a script's last, are DuckDB's own COPY: already the shortest digits.
    for sql in (REALS, f"select 1; {REALS}"):
        assert cli("sql", sql, "--format", "csv").stdout.splitlines()[-1] == '0.1,"[0.1,2.5]","{""a"":123456.7}"'
        assert cli("sql", sql, "--format", "jsonl").stdout == '{"r":0.1,"l":[0.1,2.5],"s":{"a":123456.7}}\n'


# -- history: what changed is never the column left out ------------------------------------------


@pytest.mark.parametrize("width", [80, 60])
def test_history_on_a_narrow_screen_shows_each_snapshots_schema_changes(
    cli: Cli, home: Path, tmp_path: Path, width: int
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,v\n1,10\n2,20\n", encoding="utf-8")
    assert cli("fetch", str(path), "--as", "a.t").exit_code == 0
    path.write_text("id,v,w\n1,10.5,x\n2,20,y\n3,4,z\n", encoding="utf-8")
    assert cli("fetch", str(path), "--as", "a.t").exit_code == 0
    lines, _, code = terminal(home, "history", "a.t", width=width)
    assert code == 0, lines
    assert all(len(line) <= width for line in lines)
    screen = " ".join(line.strip() for line in lines)
    assert "schema_changes: added: w VARCHAR; retyped: v BIGINT→DOUBLE" in screen, lines
    assert "rows: 3" in screen and "rows_change: 1" in screen and "current: true" in screen
