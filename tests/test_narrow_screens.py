"""What a person sees on a narrow screen or a terminal that is not UTF-8: commands run in a pty
(pexpect), their output drawn by a terminal emulator (pyte), as in test_terminal.py."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from liberacion.lake import Lake
from tests.conftest import ROOT

pexpect = pytest.importorskip("pexpect")
pyte = pytest.importorskip("pyte")

NAME = "SOUTHEAST HEALTH MEDICAL CENTER"
SUFFIX = " — Liberación Núñez"


def terminal(home: Path, *args: str, width: int = 80, encoding: str = "utf-8") -> tuple[list[str], int]:
    """Run liberacion in a pty of ``width`` columns whose encoding is ``encoding``: the screen's lines
    and the exit code. ``PYTHONIOENCODING`` gives the terminal's encoding as a locale would
    (``LC_ALL=es_ES.ISO-8859-1``), without needing that locale installed."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env.update(PYTHONPATH=str(ROOT), LIBERACION_HOME=str(home), TERM="xterm-256color", PYTHONIOENCODING=encoding)
    child = pexpect.spawn(
        sys.executable, ["-m", "liberacion", *args], env=env, dimensions=(100, width), encoding=encoding, timeout=120
    )
    child.expect(pexpect.EOF)
    raw = child.before
    child.close()
    screen = pyte.Screen(width, 100)
    pyte.Stream(screen).feed(raw)
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines, child.exitstatus


def _cells(line: str, side: str = "│") -> list[str]:
    return [cell.strip() for cell in line.strip(side).split(side)]


@pytest.fixture
def renamed(home: Path) -> Lake:
    """Two snapshots of a table whose one change appends text to a long name."""
    lake = Lake(home)
    ids = ["010001", "010005"]
    lake.publish("cms.hospitals", pa.table({"facility_id": ids, "facility_name": [NAME, "MARSHALL"]}))
    lake.publish("cms.hospitals", pa.table({"facility_id": ids, "facility_name": [NAME + SUFFIX, "MARSHALL"]}))
    return lake


# -- a terminal that is not UTF-8 ----------------------------------------------------------------


def test_sql_on_a_latin1_terminal_shows_stand_ins(home: Path) -> None:
    query = "select 'a' || chr(8212) || ' b ' || chr(241) as text, repeat('word ', 40) as long from range(5)"
    lines, code = terminal(home, "sql", "--max-rows", "2", query, encoding="latin-1")
    assert code == 0, lines
    row = next(line for line in lines if line.startswith("| a"))
    assert _cells(row, "|")[0] == "a- b ñ"  # the em dash as "-"; ñ is Latin-1 and stays
    assert _cells(row, "|")[1].endswith("~")  # the cut value ends in the ASCII box's ellipsis
    footer = " ".join(lines[lines.index(next(line for line in lines if line.startswith("+") and "| a" not in line)) :])
    assert "5 rows, 3 more rows not shown (--max-rows 2) - use --format csv for all" in footer


def test_diff_and_info_on_a_latin1_terminal(renamed, home: Path) -> None:
    lines, code = terminal(home, "diff", "cms.hospitals", "-k", "facility_id", width=120, encoding="latin-1")
    assert code == 0, lines
    assert re.match(r"cms\.hospitals: \w+ > \w+$", lines[0])  # the title's arrow as ">"
    assert any("Liberación Núñez" in line for line in lines)  # Latin-1 letters as they are
    lines, code = terminal(home, "info", "cms.hospitals", width=40, encoding="latin-1")
    assert code == 0, lines


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "markdown"])
def test_data_to_a_latin1_pipe_is_utf8(home: Path, fmt: str) -> None:
    from liberacion.snapshots import Provenance
    from tests.conftest import run_process

    source = "/data/Liberación — Núñez.csv"
    Lake(home).publish("local.names", pa.table({"name": [NAME + SUFFIX]}), Provenance(source_url=source))
    latin1 = {"PYTHONIOENCODING": "latin-1"}
    for args in (["sql", "select * from local.names"], ["sql", "select 1; select * from local.names"], ["tables"]):
        proc = run_process(*args, "--format", fmt, env=latin1)  # the test reads stdout as UTF-8
        assert proc.returncode == 0, proc.stderr
        assert (source if args == ["tables"] else NAME + SUFFIX) in proc.stdout.replace("\\", "")


# -- diff: where old and new differ -------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 120])
def test_diff_shows_where_a_long_value_changed(renamed, home: Path, width: int) -> None:
    lines, code = terminal(home, "diff", "cms.hospitals", "-k", "facility_id", width=width)
    assert code == 0 and all(len(line) <= width for line in lines)
    header = _cells(next(line for line in lines if "change" in line and "│" in line))
    changes = [_cells(line)[0] for line in lines if line.startswith("│")][1:]
    assert "rows_removed" in changes and "row_changed" in changes  # the kind of change, never cut
    row = _cells(next(line for line in lines if "row_changed" in line))
    old, new = row[header.index("old")], row[header.index("new")]
    assert old != new, row
    assert old.startswith("…") and NAME.endswith(old[1:])  # the old value's end: where the new one goes on
    assert new.startswith("…") and " — " in new and (NAME + SUFFIX).find(new[1:].rstrip("…")) > 0
    footer = " ".join(lines[lines.index(next(line for line in lines if line.startswith("└"))) + 1 :])
    assert "--format csv" in footer


def test_cut_around_keeps_the_first_difference() -> None:
    from liberacion.render import cut_around

    assert cut_around("abcdefghij", 8, 2) == "abcdefg…"  # near the start: an ordinary cut
    assert cut_around("abcdefghij", 6, 10) == "…fghij"  # a longer value goes on after this one
    assert cut_around("abcdefghijklmnopqrstuvwxyz0123456789", 8, 12) == "…klmnop…"
    assert cut_around("short", 8, 2) == "short"


def test_the_footer_of_show_names_a_format_show_has(home: Path, manifests: Path) -> None:
    # "use --format csv for all", which show refuses (it writes a table or JSON).
    from tests.manifests import write_catalog

    body = (
        '\n[[dataset]]\nid = "beds"\ntitle = "Beds"\nformat = "csv"\n'
        'url = "https://data.example.gov/files/2024/hospital-beds-by-state-and-ownership.csv"\n'
    )
    write_catalog(manifests, "own", body=body)
    lines, code = terminal(home, "show", "own/beds", width=60)
    assert code == 0, lines
    footer = " ".join(line for line in lines if "shown" in line or "for all" in line)
    assert "use --format json for all" in footer and "--format csv" not in footer, lines


def test_a_query_that_fails_past_the_rows_a_table_shows_fails(home: Path) -> None:
    # The table's count of the rest ran count(*), which DuckDB answers without computing x: the
    # division by zero at row 20,000,000 went unsaid, and the run exited 0.
    lines, code = terminal(home, "sql", "select i, 10 // (i - 20000000) as x from range(30000000) t(i)")
    assert code == 4, lines
    assert any("Division by zero" in line for line in lines), lines


def test_info_shows_the_types_of_a_table_with_a_long_nested_type(home: Path) -> None:
    # A STRUCT's type, hundreds of characters, left the whole type column out: "column │ …".
    nested = pa.array([{f"field_{i}": i for i in range(30)}])
    Lake(home).publish("fda.event", pa.table({"safetyreportid": ["1"], "patient": nested}))
    lines, code = terminal(home, "info", "fda.event", width=200)
    assert code == 0, lines
    screen = "\n".join(lines)
    assert "VARCHAR" in screen and "STRUCT(field_0 BIGINT" in screen, screen


def test_sql_on_an_ascii_terminal_shows_letters_without_their_accents(home: Path) -> None:
    # A locale that is not UTF-8 (LC_ALL=C with PYTHONUTF8=0): "José Núñez" read "Jos? N??ez".
    name = "'Jos' || chr(233) || ' N' || chr(250) || chr(241) || 'ez'"  # José Núñez, typed in ASCII
    other = "chr(198) || 'r' || chr(248) || ' ' || chr(64257) || ' ' || chr(28450)"  # Ærø ﬁ 漢
    query = f"select {name} as name, {other} as other"
    lines, code = terminal(home, "sql", query, encoding="ascii")
    assert code == 0, lines
    row = next(line for line in lines if line.startswith("| Jose"))
    assert _cells(row, "|")[:2] == ["Jose Nunez", "?ro ? ??"]  # no base letter, or not as wide: "?"
