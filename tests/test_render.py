"""Output: formats chosen from file names, fast JSON equal to the careful one, values for people,
the fitting of columns, one unit for sizes, and progress lines."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liberacion import render
from liberacion.console import FetchProgress, report_fetch, table_of_ref
from liberacion.errors import UsageError
from liberacion.lake import Lake
from liberacion.render import Format, Rows, fit_columns, format_for_output, size_text, source_text, when_text
from liberacion.snapshots import Provenance


@pytest.fixture
def lake(home: Path) -> Lake:
    lake = Lake(home)
    lake.publish(
        "cms.hospitals",
        pa.table({"zip": ["02115", None], "beds": pa.array([1200, None], pa.int64())}),
        Provenance(source_url="http://127.0.0.1/files/h.csv"),
    )
    return lake


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("r.csv", Format.csv),
        ("r.TSV", Format.tsv),
        ("r.json", Format.json),
        ("r.jsonl", Format.jsonl),
        ("r.ndjson", Format.jsonl),
        ("r.md", Format.markdown),
        ("r.parquet", Format.parquet),
    ],
)
def test_the_output_extension_names_the_format(name: str, fmt: Format) -> None:
    assert format_for_output(Path(name)) is fmt


def test_an_unknown_extension_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"add --format"):
        format_for_output(Path("report.xlsx"))


def test_output_takes_its_format_from_the_extension(cli, lake, tmp_path: Path) -> None:
    query = "select zip, beds from cms.hospitals order by zip"
    assert cli("sql", query, "-o", str(tmp_path / "r.parquet")).exit_code == 0
    assert pq.read_table(tmp_path / "r.parquet").column("zip").to_pylist() == ["02115", None]
    assert cli("sql", query, "-o", str(tmp_path / "r.ndjson")).exit_code == 0
    lines = (tmp_path / "r.ndjson").read_text().splitlines()
    assert [json.loads(line)["beds"] for line in lines] == [1200, None]
    assert cli("tables", "-o", str(tmp_path / "t.md")).exit_code == 0
    assert (tmp_path / "t.md").read_text().startswith("| catalog | table |")
    # --format wins over the extension.
    assert cli("sql", query, "-o", str(tmp_path / "x.json"), "--format", "csv").exit_code == 0
    assert (tmp_path / "x.json").read_text().startswith("zip,beds\n")
    result = cli("sql", query, "-o", str(tmp_path / "r.xyz"))
    assert result.exit_code == 2 and "--format" in result.stderr and not (tmp_path / "r.xyz").exists()


def _mixed() -> pa.Table:
    return pa.table(
        {
            "i": pa.array([1, None, -(2**62)], pa.int64()),
            "f": pa.array([1.5, math.nan, math.inf], pa.float64()),
            "d": pa.array([Decimal("1.50"), None, Decimal("-3")], pa.decimal128(10, 2)),
            "s": ['quote " and \\ and\nnewline', "Ñandú 日本", None],
            "day": [date(2001, 2, 3), None, date(1999, 12, 31)],
            "ts": [datetime(2001, 2, 3, 4, 5, 6), datetime(2001, 2, 3, 4, 5, 6, 500), None],
            "tz": pa.array([datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC), None, None], pa.timestamp("us", tz="UTC")),
            "b": pa.array([b"\x00\xff", None, b""], pa.binary()),
            "flag": [True, False, None],
            "l": [[1, 2], [], None],
            "st": [{"x": 1}, None, {"x": None}],
        }
    )


@pytest.mark.parametrize("fmt", [Format.json, Format.jsonl])
def test_fast_json_reads_back_as_the_python_writer(fmt: Format) -> None:
    table = _mixed()
    fast, slow = io.StringIO(), io.StringIO()
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(2))
    render.render(Rows.from_arrow(reader), fmt, stdout=fast)
    rows = Rows(table.column_names, [list(zip(*(c.to_pylist() for c in table.columns)))])
    render.render(rows, fmt, stdout=slow)

    def parse(text: str) -> list[dict]:
        return json.loads(text) if fmt is Format.json else [json.loads(line) for line in text.splitlines()]

    assert parse(fast.getvalue()) == parse(slow.getvalue())
    assert parse(fast.getvalue())[1]["f"] is None and parse(fast.getvalue())[2]["f"] == "inf"
    assert parse(fast.getvalue())[0]["ts"] == "2001-02-03T04:05:06"
    assert parse(fast.getvalue())[0]["tz"] == "2001-02-03T04:05:06+00:00"


def test_fast_json_of_no_rows() -> None:
    table = _mixed().slice(0, 0)
    for fmt, expected in ((Format.json, "[]\n"), (Format.jsonl, "")):
        out = io.StringIO()
        render.render(Rows.from_arrow(pa.RecordBatchReader.from_batches(table.schema, [])), fmt, stdout=out)
        assert out.getvalue() == expected


def test_csv_timestamps_are_iso_without_empty_fractions() -> None:
    table = pa.table({"ts": [datetime(2001, 2, 3, 4, 5, 6), None]})
    out = io.StringIO()
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    render.render(Rows.from_arrow(reader), Format.csv, stdout=out)
    assert out.getvalue() == "ts\n2001-02-03T04:05:06\n\n"


def test_one_unit_for_sizes_as_the_progress_bar_counts() -> None:
    from rich.progress import DownloadColumn, Task

    assert size_text(200_200_000) == "200.2 MB"
    assert size_text(999) == "999 B" and size_text(12_345) == "12.3 kB" and size_text(3 * 10**9) == "3.0 GB"
    task = Task(0, "x", 200_200_000, 200_200_000, _get_time=lambda: 0.0)
    assert str(DownloadColumn(binary_units=False).render(task)).endswith("200.2 MB")  # the bar's own unit


def test_times_and_sources_for_people() -> None:
    now = datetime(2026, 12, 2, 19, 31, tzinfo=UTC)
    assert when_text("2026-12-02T16:30:05.123456Z", now=now) == "3 h ago"
    assert when_text("2026-12-02T19:30:30Z", now=now) == "just now"
    assert when_text("2026-11-02T16:31:05.123456Z", now=now) == "2026-11-02 16:31"
    assert when_text(now - timedelta(days=2), now=now) == "2 d ago"
    url = "https://data.cms.gov/provider-data/sites/default/files/resources/0922/Hospital_General_Information.csv?x=1"
    assert source_text(url) == "data.cms.gov/…/Hospital_General_Information.csv"
    assert source_text("https://example.org/") == "example.org"
    assert source_text("/data/in/deaths.csv") == "deaths.csv"


def test_table_of_a_ref() -> None:
    assert table_of_ref("cms/hospital-general-information") == "cms.hospital_general_information"
    assert table_of_ref("https://example.org/files/Deaths-2020.csv") == "local.deaths_2020"
    assert table_of_ref("./DEMO_I.XPT") == "local.demo_i"


def test_a_ref_where_a_table_is_expected_names_the_table(cli) -> None:
    for command in ("info", "history", "diff"):
        result = cli(command, "cms/hospital-general-information")
        assert result.exit_code == 2
        assert "cms.hospital_general_information" in result.stderr, result.stderr


def test_help_lists_only_the_formats_a_command_takes(cli) -> None:
    for command in ("info", "show"):
        text = cli(command, "--help").stdout
        assert "table|json" in text and "parquet" not in text
    assert "table|csv|tsv|json|jsonl|markdown|parquet" in cli("sql", "--help").stdout
    assert "--no-color" in cli("--help").stdout


def test_show_still_prints_json(cli) -> None:
    result = cli("show", "cms/hospital-general-information", "--format", "json")
    # 1: the source cannot be reached from the tests; what the manifest says is printed all the same.
    assert result.exit_code == 1 and json.loads(result.stdout)["ref"] == "cms/hospital-general-information"


def test_expanded_goes_with_the_table_only(cli, lake) -> None:
    result = cli("sql", "-x", "select 1 as a", "--format", "csv")
    assert result.exit_code == 2 and "--expanded" in result.stderr
    out = cli("sql", "-x", "select 1 as a, 'b' as b").stdout  # -x asks for the table even in a pipe
    assert "RECORD 1" in out and "a │ 1" in out


def test_progress_lines_in_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    view = FetchProgress(live=False)
    name = "Hospital_General_Information.csv"
    view.event(SimpleNamespace(kind="start", key="k", name=name, done=0, total=200_200_000, message=None))
    view.event(SimpleNamespace(kind="advance", key="k", name=name, done=100_100_000, total=200_200_000, message=None))
    view.event(SimpleNamespace(kind="done", key="k", name=name, done=200_200_000, total=200_200_000, message=None))
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"{name}: downloading 200.2 MB",
        f"{name}: 50% (100.1 MB of 200.2 MB)",
        f"{name}: downloaded 200.2 MB",
    ]


def test_the_fetch_summary_names_the_table_of_a_failed_ref(capsys: pytest.CaptureFixture[str]) -> None:
    ok = SimpleNamespace(ref="cdc/bi63-dtpu", table="cdc.bi63_dtpu", tables=[], status="fetched", rows=1200,
                         bytes=2_000_000, seconds=1.25, error=None)  # fmt: skip
    bad = SimpleNamespace(ref="cms/hospital-general-information", table=None, tables=[], status="failed", rows=None,
                          bytes=0, seconds=0.5, error="no such dataset")  # fmt: skip
    report_fetch([ok, bad], json_lines=False, quiet=False)
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "cdc.bi63_dtpu\tfetched\t1,200 rows\t2.0 MB\t1.2 s",
        "cms.hospital_general_information\tfailed\t-\t0 B\t0.5 s",
    ]
    assert err == "error: cms/hospital-general-information: no such dataset\n"  # no colour in a pipe


@settings(max_examples=200, deadline=None)
@given(
    columns=st.lists(
        st.tuples(st.text(alphabet="abcdefghij_", min_size=1, max_size=50), st.integers(0, 80), st.booleans()),
        min_size=1,
        max_size=60,
    ),
    width=st.integers(40, 240),
)
def test_a_fitted_table_is_never_empty_nor_wider_than_the_screen(columns, width: int) -> None:
    headers = [name for name, _, _ in columns]
    shown, widths, hidden = fit_columns(headers, [n for _, n, _ in columns], [k for _, _, k in columns], width)
    assert shown and shown[0] == 0 and all(w >= 1 for w in widths)
    assert 1 + sum(w + 3 for w in widths) + (4 if hidden else 0) <= width
    assert hidden == (len(shown) < len(headers))
    assert shown == sorted(shown)
    for index, w in zip(shown, widths):  # a header is whole unless it alone is wider than the screen
        assert w >= len(headers[index]) or len(shown) == 1


def test_expanded_view_wraps_long_names_and_values_instead_of_cutting(
    cli, lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    name = "principal_investigator_1_business_street_address_line_1"
    value = "Multicentre, Double-blind, Randomized, Placebo-controlled"
    out = cli("sql", "-x", f"select '{value}' as {name}, 42 as n").stdout
    lines = [line for line in out.splitlines() if "│" in line]
    assert all(len(line) <= 40 for line in out.splitlines())
    names = [line.split("│")[0].strip() for line in lines]
    values = [line.split("│")[1].strip() for line in lines]
    assert "".join(names[:-1]) == name and names[-1] == "n"  # the name whole, over several lines
    assert "".join(values[:-1]).replace(" ", "") == value.replace(" ", "") and values[-1] == "42"


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_progress_bars_keep_to_one_line_at_any_width(width: int) -> None:
    import io

    from rich.console import Console

    from liberacion.console import progress_bars

    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    bars = progress_bars(console)
    task = bars.add_task("Hospital_General_Information.csv", total=113_000_000)
    bars.update(task, completed=30_800_000)
    console.print(bars.get_renderable())
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and len(lines[0]) <= width  # it wrapped its cells onto a second line at 40
    assert "30.8/113.0 MB" in lines[0] and lines[0].startswith("Hospital_Gen")


def test_a_wide_screen_shows_long_values_whole(cli, lake, monkeypatch: pytest.MonkeyPatch) -> None:
    value = "resolve 0.00s download 12.31s convert 4.56s publish 0.07s (a long cell)"
    query = f"select '{value}' as stages, 1 as n"
    monkeypatch.setenv("COLUMNS", "200")
    assert value in cli("sql", query, "-f", "table").stdout  # it was cut at 40 with room to spare
    monkeypatch.setenv("COLUMNS", "60")
    narrow = cli("sql", query, "-f", "table").stdout
    assert value not in narrow and all(len(line) <= 60 for line in narrow.splitlines())
