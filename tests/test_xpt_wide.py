"""Wide statistical files that do not declare their row count (SAS transport; an SPSS file with no
case count): pyreadstat sets aside 100,000 rows for each variable it reads, so they are read a
group of variables at a time, with the same table as one read and memory bounded whatever the width.

``PREALLOCATED_BYTES`` is lowered so a dozen variables make several groups, and ``CHUNK_CELLS``
so a few thousand rows make several chunks; one test converts a real wide file in a subprocess.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from pathlib import Path
from typing import Any

import pytest

import liberacion.convert.statistical as statistical
from liberacion.query import run
from tests.test_convert import fetch_file, load
from tests.test_scale_limits import _peak_rss_mb, posix_only

pd = pytest.importorskip("pandas")
pyreadstat = pytest.importorskip("pyreadstat")

CHUNK = 1_000  # rows per chunk once CHUNK_CELLS is 1
SLOT = statistical._UNCOUNTED_ROWS * 8  # what pyreadstat sets aside per variable read
ONE_READ = 1 << 62  # a budget no file reaches: every chunk in one read, as before grouping


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statistical, "CHUNK_CELLS", 1)


def survey(rows: int) -> Any:
    """Every kind a variable can be: whole numbers, decimals, missing values, dates, text with
    blanks, a variable with no value at all, a coded one (value labels in SPSS)."""
    columns: dict[str, list[Any]] = {"SEQN": [float(i) for i in range(rows)]}
    for k in range(3):
        columns[f"NUM{k}"] = [math.nan if (i + k) % 7 == 0 else i / 4 + k for i in range(rows)]
        columns[f"DAY{k}"] = [dt.date(2001, 1, 1) + dt.timedelta(days=(i * (k + 1)) % 9000) for i in range(rows)]
        columns[f"TXT{k}"] = [("", "alpha", "beta gamma", "  lead", "z")[(i + k) % 5] for i in range(rows)]
    columns["EMPTY"] = [math.nan] * rows
    columns["CODE"] = [float(1 + i % 2) for i in range(rows)]
    return pd.DataFrame(columns)


def write_xpt(path: Path, frame: Any, version: int = 5, **options: Any) -> Path:
    pyreadstat.write_xport(frame, str(path), table_name="SURVEY", file_format_version=version, **options)
    return path


def write_sav_without_count(path: Path, frame: Any) -> Path:
    """An SPSS file whose header says -1 cases (unknown), as some writers leave it."""
    pyreadstat.write_sav(
        frame,
        str(path),
        column_labels=[f"label of {c}" for c in frame.columns],
        variable_value_labels={"CODE": {1.0: "Male", 2.0: "Female"}},
    )
    data = bytearray(path.read_bytes())
    struct.pack_into("<i", data, 80, -1)  # the case count, after the 80 bytes of product name
    path.write_bytes(bytes(data))
    return path


def counting_reads(monkeypatch: pytest.MonkeyPatch, reader: str) -> list[list[str] | None]:
    """The ``usecols`` of every data read pyreadstat is asked for (None: every variable)."""
    seen: list[list[str] | None] = []
    original = getattr(pyreadstat, reader)

    def counting(source: Any, **options: Any) -> Any:
        if not options.get("metadataonly"):
            seen.append(options.get("usecols"))
        return original(source, **options)

    monkeypatch.setattr(pyreadstat, reader, counting)
    return seen


def converted(home: Path, path: Path) -> tuple[Any, Any, Any]:
    """(the table's data, its columns' provenance, the conversion notes) as published."""
    lake = load(home, path)
    provenance = lake.current("t.data").provenance
    return run(lake, "select * from t.data").read_all(), provenance.columns, provenance.extra["conversion"]


def both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: Path, group: int) -> tuple[Any, Any]:
    monkeypatch.setattr(statistical, "PREALLOCATED_BYTES", ONE_READ)
    whole = converted(tmp_path / "one", path)
    monkeypatch.setattr(statistical, "PREALLOCATED_BYTES", group * SLOT)
    return whole, converted(tmp_path / "grouped", path)


@pytest.mark.parametrize("group", [1, 4])
def test_groups_of_variables_give_the_table_of_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: int
) -> None:
    path = write_xpt(tmp_path / "survey.xpt", survey(3 * CHUNK + 7))
    seen = counting_reads(monkeypatch, "read_xport")
    whole, grouped = both_ways(tmp_path, monkeypatch, path, group)
    width = len(survey(1).columns)
    assert seen[:4] == [None] * 4  # one read a chunk: 4 chunks
    reads = seen[4:]
    assert len(reads) == 4 * math.ceil(width / group) and all(len(r or []) <= group for r in reads)
    assert [n for r in reads[: math.ceil(width / group)] for n in r or []] == list(survey(1).columns)
    assert grouped[0].num_rows == 3 * CHUNK + 7
    assert grouped[0].equals(whole[0]) and grouped[0].schema.equals(whole[0].schema)
    assert grouped[1:] == whole[1:]


def test_version_8_long_names_and_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = survey(2 * CHUNK + 1).rename(columns={"SEQN": "RESPONDENT_SEQUENCE", "TXT1": "A_LONGER_NAME"})
    labels = [f"label {i}" * (1 + 8 * (i % 2)) for i in range(len(frame.columns))]
    path = write_xpt(tmp_path / "v8.xpt", frame, version=8, column_labels=labels)
    assert b"LABELV8" in path.read_bytes()
    whole, grouped = both_ways(tmp_path, monkeypatch, path, 3)
    assert grouped[0].equals(whole[0]) and grouped[1:] == whole[1:]
    assert grouped[1]["respondent_sequence"]["description"] == "label 0"


def test_blank_rows_at_chunk_ends_are_kept_in_every_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row of blank text is all spaces: ReadStat keeps it only before a row that is not blank,
    the same for every group read of the chunk."""
    count = 2 * CHUNK + 10
    blank = set(range(CHUNK - 5, CHUNK + 5)) | {count - 2}
    frame = pd.DataFrame({f"T{k}": ["" if i in blank else f"r{i}.{k}" for i in range(count)] for k in range(5)})
    path = write_xpt(tmp_path / "blanks.xpt", frame)
    whole, grouped = both_ways(tmp_path, monkeypatch, path, 2)
    assert grouped[0].num_rows == count and grouped[0].equals(whole[0])


def test_an_spss_file_without_a_case_count_is_read_in_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_sav_without_count(tmp_path / "survey.sav", survey(2 * CHUNK + 3))
    seen = counting_reads(monkeypatch, "read_sav")
    whole, grouped = both_ways(tmp_path, monkeypatch, path, 5)
    assert any(r is not None for r in seen)
    assert grouped[0].equals(whole[0]) and grouped[1:] == whole[1:]
    assert grouped[2]["value_labels"] == {"code": {"1": "Male", "2": "Female"}}
    assert grouped[1]["num0"]["description"] == "label of NUM0"


def test_files_that_declare_their_rows_are_read_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyreadstat sets aside only the rows asked for when the file says how many it holds."""
    monkeypatch.setattr(statistical, "PREALLOCATED_BYTES", SLOT)
    path = tmp_path / "survey.sav"
    pyreadstat.write_sav(survey(CHUNK + 1), str(path))
    seen = counting_reads(monkeypatch, "read_sav")
    load(tmp_path / "home", path)
    assert seen and all(r is None for r in seen)


def test_a_damaged_file_fails_alike_read_in_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_xpt(tmp_path / "whole.xpt", survey(3 * CHUNK)).read_bytes()
    start = data.index(b"HEADER RECORD*******OBS") + 80
    cut = tmp_path / "cut.xpt"
    cut.write_bytes(data[: start + 80 * 500])  # inside a row
    results = []
    for budget in (ONE_READ, 2 * SLOT):
        monkeypatch.setattr(statistical, "PREALLOCATED_BYTES", budget)
        result = fetch_file(tmp_path / f"home{budget}", cut)
        results.append((result.status, result.error, result.error_code))
    assert results[0] == results[1] and results[0][0] == "failed"


def test_names_usecols_cannot_pick_are_read_at_once() -> None:
    def read(*args: Any, **kwargs: Any) -> None: ...

    assert statistical._grouped(read, ["A", "B"]) is read  # narrow
    wide = [f"V{i}" for i in range(1000)]
    assert statistical._grouped(read, wide) is not read
    assert statistical._grouped(read, [*wide, "V1"]) is read  # repeated
    assert statistical._grouped(read, [*wide, "V1_duplicated1"]) is read  # pyreadstat's renaming


def test_groups_that_do_not_line_up_fall_back_to_one_read() -> None:
    calls: list[list[str] | None] = []

    def read(source: Any, usecols: list[str] | None = None, **options: Any) -> tuple[dict[str, Any], None]:
        calls.append(usecols)
        names = ["A", "B", "C"] if usecols is None else usecols
        return {n.lower() if usecols else n: [1.0] for n in names}, None  # a spelling usecols misses

    grouped = statistical._read_groups(read, [["A", "B"], ["C"]], "file")
    assert grouped == ({"A": [1.0], "B": [1.0], "C": [1.0]}, None) and calls == [["A", "B"], None]


@posix_only
def test_a_wide_transport_file_keeps_memory_bounded(tmp_path: Path) -> None:
    """2,000 variables of 50 rows (800 KB) took 1.7 GB: 100,000 rows set aside for each variable."""
    np = pytest.importorskip("numpy")
    path = tmp_path / "wide.xpt"
    pyreadstat.write_xport(pd.DataFrame({f"V{i}": np.arange(50, dtype=float) for i in range(2000)}), str(path))
    env = {"LIBERACION_HOME": str(tmp_path / "home")}
    peak, done = _peak_rss_mb(["fetch", str(path), "--as", "w.xpt"], env)
    assert done.returncode == 0, done.stderr
    assert peak < 600, f"peak RSS {peak} MB for a {path.stat().st_size // 1024} KB file"
