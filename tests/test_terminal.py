"""What a person sees: commands run in a pseudo-terminal, their output drawn by a terminal emulator.

Each test starts ``python -m liberacion`` under a pty of a given width (pexpect) and reads the
screen pyte draws from its output, so it asserts what is on the screen, not what was written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from liberacion.lake import Lake
from liberacion.snapshots import Provenance
from tests.conftest import ROOT

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

ANSI = "\x1b["
WIDTHS = [40, 80, 100, 200]

# The 38 columns of CMS's Hospital General Information, as liberacion names them.
HOSPITAL_COLUMNS = [
    "facility_id", "facility_name", "address", "city_town", "state", "zip_code", "county_parish",
    "telephone_number", "hospital_type", "hospital_ownership", "emergency_services",
    "meets_criteria_for_birthing_friendly_designation", "hospital_overall_rating",
    "hospital_overall_rating_footnote", "mort_group_measure_count", "count_of_facility_mort_measures",
    "count_of_mort_measures_better", "count_of_mort_measures_no_different", "count_of_mort_measures_worse",
    "mort_group_footnote", "safety_group_measure_count", "count_of_facility_safety_measures",
    "count_of_safety_measures_better", "count_of_safety_measures_no_different",
    "count_of_safety_measures_worse", "safety_group_footnote", "readm_group_measure_count",
    "count_of_facility_readm_measures", "count_of_readm_measures_better",
    "count_of_readm_measures_no_different", "count_of_readm_measures_worse", "readm_group_footnote",
    "pt_exp_group_measure_count", "count_of_facility_pt_exp_measures", "pt_exp_group_footnote",
    "te_group_measure_count", "count_of_facility_te_measures", "te_group_footnote",
]  # fmt: skip
FIRST_ROW = {
    "facility_id": "010001",
    "facility_name": "SOUTHEAST HEALTH MEDICAL CENTER",
    "address": "1108 ROSS CLARK CIRCLE",
    "city_town": "DOTHAN",
    "te_group_measure_count": 12,
    "count_of_facility_te_measures": 11,
    "te_group_footnote": None,
}


def _hospitals() -> pa.Table:
    names = ["SOUTHEAST HEALTH MEDICAL CENTER", "MARSHALL MEDICAL CENTERS", "NORTH ALABAMA MEDICAL CENTER"]
    columns: dict[str, pa.Array] = {}
    for index, name in enumerate(HOSPITAL_COLUMNS):
        if name in FIRST_ROW:
            first = FIRST_ROW[name]
            values = [first, *([first] * 2 if not isinstance(first, str) else [f"{first}-{i}" for i in (2, 3)])]
        elif name.startswith("count") or name.endswith("count"):
            values = [index * 1000 + 7, None, 3]
        else:
            values = [f"{name} value", None, "x"]
        columns[name] = pa.array(values, pa.int64() if isinstance(values[0], int) else pa.string())
    columns["facility_id"] = pa.array(["010001", "010005", "010006"])
    columns["facility_name"] = pa.array(names)
    return pa.table(columns)


@pytest.fixture
def hospitals(home: Path) -> Lake:
    lake = Lake(home)
    source = "https://data.cms.gov/provider-data/sites/default/files/resources/0922/Hospital_General_Information.csv"
    lake.publish("cms.hospital_general_information", _hospitals(), Provenance(source_url=source))
    return lake


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    return {**env, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), "TERM": "xterm-256color", **extra}


def terminal(home: Path, *args: str, width: int = 100, height: int = 120, **env: str) -> tuple[list[str], str, int]:
    """Run liberacion in a pty of ``width`` columns: the screen's lines, the raw output and the exit code."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "liberacion", *args],
        env=_env(home, **env),
        dimensions=(height, width),
        encoding="utf-8",
        timeout=120,
    )
    child.expect(pexpect.EOF)
    raw = child.before
    child.close()
    screen = pyte.Screen(width, height)
    pyte.Stream(screen).feed(raw)
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines, raw, child.exitstatus


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("│").split("│")]


@pytest.mark.parametrize("width", WIDTHS)
def test_a_wide_table_fits_the_screen_with_headers_values_and_a_footer(hospitals, home: Path, width: int) -> None:
    lines, _, code = terminal(home, "sql", "select * from cms.hospital_general_information", width=width)
    assert code == 0
    assert all(len(line) <= width for line in lines)
    header = next(line for line in lines if "facility_id" in line)
    shown = [cell for cell in _cells(header) if cell != "…"]
    assert shown[0] == "facility_id" and "…" in _cells(header)
    assert all(name in HOSPITAL_COLUMNS for name in shown), shown  # whole names, never cut or wrapped
    assert shown[-1] == "te_group_footnote"  # the last column too
    first = next(line for line in lines if "010001" in line)
    for name, cell in zip([c for c in _cells(header)], _cells(first)):
        if name in FIRST_ROW:
            expected = FIRST_ROW[name]
            text = "NULL" if expected is None else f"{expected:,}" if isinstance(expected, int) else expected
            assert cell == text or (cell.endswith("…") and text.startswith(cell[:-1])), (name, cell)
    assert any(len(cell) > 1 for cell in _cells(first))  # never a grid of empty boxes
    footer = " ".join(lines[lines.index(next(line for line in lines if line.startswith("└"))) + 1 :])
    # One line, or on a narrow screen one line per part.
    assert re.search(r"3 rows( ·)? 38 columns \(\d+ shown\)( —)? use --format csv or -x for all", footer), footer
    assert f"({len(shown)} shown)" in footer


@pytest.mark.parametrize("width", WIDTHS)
def test_the_footer_and_rows_never_wrap(hospitals, home: Path, width: int) -> None:
    lines, _, _ = terminal(home, "sql", "select * from cms.hospital_general_information", width=width)
    grid = [line for line in lines if line[:1] in "┌│├└"]
    assert len(grid) == 3 + 1 + 2 + 1  # top, header, rule, 3 rows, bottom: one line each
    assert len({len(line) for line in grid}) == 1  # every line of the grid is as wide as the others


def test_more_columns_at_a_wider_screen(hospitals, home: Path) -> None:
    counts = []
    for width in WIDTHS:
        lines, _, _ = terminal(home, "sql", "select * from cms.hospital_general_information", width=width)
        counts.append(int(re.search(r"\((\d+) shown\)", "\n".join(lines)).group(1)))  # type: ignore[union-attr]
    assert counts == sorted(counts) and counts[0] >= 2 and counts[-1] > counts[1]


def test_expanded_view_shows_every_column(hospitals, home: Path) -> None:
    lines, _, code = terminal(home, "sql", "-x", "select * from cms.hospital_general_information limit 2", width=80)
    assert code == 0 and all(len(line) <= 80 for line in lines)
    assert sum("RECORD" in line for line in lines) == 2
    first = lines[: next(i for i, line in enumerate(lines) if "RECORD 2" in line)]
    pieces = [line.split("│")[0].strip() for line in first if "│" in line]
    assert "".join(pieces) == "".join(HOSPITAL_COLUMNS)  # every name whole, in order, long ones wrapped
    assert any(line.split("│")[-1].strip() == "SOUTHEAST HEALTH MEDICAL CENTER" for line in lines if "│" in line)


def test_numbers_right_aligned_with_separators_and_null_shown(home: Path) -> None:
    lines, raw, _ = terminal(home, "sql", "select 1234567 as big, 5 as small, null as nothing, 'a' as t", width=80)
    header = next(line for line in lines if "big" in line)
    row = next(line for line in lines if "1,234,567" in line)
    cells = row.split("│")
    assert cells[2].endswith("5 ") and not cells[2].startswith(" 5")  # right-aligned
    assert "NULL" in row
    assert "\x1b[2mNULL" in raw  # dim
    assert header.index("big") < header.index("small")


@pytest.mark.parametrize("width", [40, 80, 200])
def test_numbers_and_times_are_never_cut_and_years_have_no_separators(home: Path, width: int) -> None:
    query = (
        "select 2017 as year, 75302551000000 as big_total, 1234567.10::decimal(12,2) as amount, "
        "date '2024-02-29' as day, timestamp '2024-01-02 03:04:05.123456' as at, repeat('word ', 30) as note"
    )
    lines, _, code = terminal(home, "sql", query, width=width)
    assert code == 0
    row = next(line for line in lines if "2017" in line)
    assert "2,017" not in row
    for whole in ("75,302,551,000,000", "1,234,567.10", "2024-02-29", "2024-01-02 03:04:05.123456"):
        header = {"75,302,551,000,000": "big_total", "1,234,567.10": "amount", "2024-02-29": "day"}.get(whole, "at")
        assert (whole in row) == (header in next(line for line in lines if "year" in line)), (whole, row)
    assert "word…" in row or "…" in row  # text is what gets cut
    assert max(len(line) for line in lines) <= max(width, 40)


@pytest.mark.parametrize("width", [40, 80])
def test_long_text_is_cut_never_wrapped(home: Path, width: int) -> None:
    query = "select repeat('word ', 60) as long_text, 'tail' as other"
    lines, _, _ = terminal(home, "sql", query, width=width)
    row = next(line for line in lines if "word" in line)
    assert "…" in row and len(row) <= width
    assert sum("word" in line for line in lines) == 1


@pytest.mark.parametrize("width", [40, 80, 100])
def test_tables_for_people(hospitals, home: Path, width: int) -> None:
    lines, _, code = terminal(home, "tables", width=width)
    assert code == 0 and all(len(line) <= width for line in lines)
    text = "\n".join(lines)
    assert "cms.hospital_general_information" in text  # the name SQL takes, whole
    if not any(line.startswith("│") for line in lines):  # no room beside the name: a block, every column in it
        assert lines[0] == "cms.hospital_general_information"
        pairs = " ".join(line.strip() for line in lines[1:])
        assert re.search(r"size: \d+(\.\d)? (B|kB|MB) ", pairs) and re.search(r"fetched: (just now|1 min ago) ", pairs)
        assert "source: data.cms.gov/…/Hosp" in pairs and "T" not in pairs.split("fetched: ")[1][:10]
        return
    header = _cells(next(line for line in lines if "table" in line and "│" in line))
    assert header[0] == "table" and all(len(h) > 2 for h in header if h != "…")  # no header split in pieces
    row = _cells(next(line for line in lines if "cms.hospital_general_information" in line))
    assert re.fullmatch(r"\d+(\.\d)? (B|kB|MB)", row[header.index("size")]) if "size" in header else True
    if "fetched" in header:
        assert row[header.index("fetched")] in ("just now", "1 min ago")
    if "source" in header:
        assert row[header.index("source")].startswith("data.cms.gov/…/Hosp")
    assert "T" not in "".join(row[1:3])  # no raw timestamps


def test_search_refs_are_never_broken(home: Path) -> None:
    for width in (40, 80):
        lines, _, code = terminal(home, "search", "hospital general information", width=width)
        assert code == 0
        assert any("cms/hospital-general-information" in line for line in lines), lines


def test_history_and_info_fit(hospitals, home: Path) -> None:
    for args in (["history", "cms.hospital_general_information"], ["info", "cms.hospital_general_information"]):
        lines, _, code = terminal(home, *args, width=60)
        assert code == 0 and all(len(line) <= 60 for line in lines)
        assert any("cms.hospital_general_information" in line for line in lines)


def test_what_matters_most_is_shown_first(hospitals, home: Path) -> None:
    Lake(home).publish("cms.hashed", _hospitals(), Provenance(source_url="https://x.org/h.csv", sha256="ab" * 32))
    lines, _, _ = terminal(home, "history", "cms.hashed", width=80)
    # Never cut nor left out: a grid where it fits whole, else a block per snapshot.
    grid = [_cells(line) for line in lines if "snapshot" in line and "│" in line]
    if grid:
        header = grid[0]
        assert "schema_changes" in header and (
            "stages" not in header or header.index("stages") > header.index("schema_changes")
        )
    else:
        assert "schema_changes: oldest kept snapshot" in " ".join(lines), lines
    lines, _, _ = terminal(home, "info", "cms.hospital_general_information", width=40)
    footer = [line for line in lines if "shown" in line or "for all" in line]
    assert footer and "--format json" in " ".join(footer) and "--format csv" not in " ".join(footer)


def test_an_empty_listing_is_a_sentence_and_bidi_overrides_are_neutralised(home: Path) -> None:
    lines, _, code = terminal(home, "tables", width=80)
    assert code == 0 and lines == ["no tables yet: fetch one, e.g. liberacion fetch cms/hospital-general-information"]
    _, raw, _ = terminal(home, "sql", "select 'abc' || chr(8238) || 'def' as t", width=80)
    assert "\u202e" not in raw and "abc�def" in raw


def test_a_search_without_hits_is_a_sentence_not_an_empty_box(home: Path) -> None:
    lines, _, code = terminal(home, "search", "zebraquagga", width=80)
    assert code == 0 and lines == ["no datasets match; try fewer words, or run: liberacion discover"]


def test_colour_on_a_terminal_only(hospitals, home: Path) -> None:
    query = "select facility_id, te_group_footnote from cms.hospital_general_information"
    _, raw, _ = terminal(home, "sql", query)
    assert ANSI in raw
    _, raw, _ = terminal(home, "sql", query, NO_COLOR="1")
    assert ANSI not in raw
    _, raw, _ = terminal(home, "--no-color", "sql", query)
    assert ANSI not in raw
    piped = subprocess.run(
        [sys.executable, "-m", "liberacion", "sql", query, "--format", "table"],
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=120,
    )
    assert piped.returncode == 0 and "facility_id" in piped.stdout
    assert ANSI not in piped.stdout and ANSI not in piped.stderr


def test_failed_is_red_on_a_terminal(home: Path, tmp_path: Path) -> None:
    lines, raw, code = terminal(home, "fetch", str(tmp_path / "missing.csv"), width=100)
    assert code == 1
    assert "\x1b[31m" in raw and "error:" in raw
    assert "\x1b[31merror:" in raw
    row = _cells(next(line for line in lines if "failed" in line and line.startswith("│")))
    assert row[:2] == ["local.missing", "failed"]  # a failed row names its table too


@pytest.mark.parametrize("args", [("info", "nope.t"), ("sql", "select * from nope.t"), ("sql", "--format", "xml")])
def test_error_lines_are_red_on_a_terminal_only(home: Path, args: tuple[str, ...]) -> None:
    _, raw, code = terminal(home, *args)
    assert code in (2, 3) and "\x1b[31merror:" in raw
    _, raw, _ = terminal(home, *args, NO_COLOR="1")
    assert "error:" in raw and ANSI not in raw
    piped = subprocess.run(
        [sys.executable, "-m", "liberacion", *args], capture_output=True, text=True, env=_env(home), timeout=120
    )
    assert piped.stderr.startswith("error:") and ANSI not in piped.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "table"])
def test_closed_pipe_exits_0_quietly(home: Path, fmt: str) -> None:
    script = f"set -o pipefail; {sys.executable} -m liberacion sql 'select * from range(3000000)' -f {fmt} | head -n 1"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=_env(home), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout


def test_keys_and_sort_orders_have_no_separators(home: Path) -> None:
    # Codes as typing names them too: zip5 and provider_number read 12,345 and 100,001, while
    # year_2020_deaths, a count, read 2020.
    query = (
        "select 83732 as seqn, 20200370 as reporting_area_sort, 123456 as row_key, 1234567 as deaths,"
        " 12345 as zip5, 100001 as provider_number, 2020 as year_2020_deaths"
    )
    lines, _, code = terminal(home, "sql", query, width=160)
    assert code == 0
    row = next(line for line in lines if "83732" in line)
    assert "20200370" in row and "123456" in row and "1,234,567" in row
    assert "12345" in row and "100001" in row and "2,020" in row
