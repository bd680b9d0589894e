"""SAS transport files read chunk by chunk: the same rows as one whole read, every byte read about
once (not again for each later chunk), blank rows and the last record's padding handled as ReadStat
handles them, broken files still refused.

Files are generated here; ``CHUNK_CELLS`` is lowered so a few thousand rows make several chunks.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest

import liberacion.convert.statistical as statistical
from tests.test_convert import load, refused, rows

pd = pytest.importorskip("pandas")
pyreadstat = pytest.importorskip("pyreadstat")

CHUNK = 1_000  # rows per chunk once CHUNK_CELLS is 1 (the least a chunk holds)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statistical, "CHUNK_CELLS", 1)


def survey(rows: int) -> Any:
    """Whole numbers, numbers with missing values, dates and text with blanks."""
    return pd.DataFrame(
        {
            "SEQN": [float(i) for i in range(rows)],
            "VALUE": [math.nan if i % 7 == 0 else i / 4 + 0.1 for i in range(rows)],
            "DAY": [dt.date(2001, 1, 1) + dt.timedelta(days=i % 9000) for i in range(rows)],
            "NAME": [("", "alpha", "beta gamma", "  lead")[i % 4] for i in range(rows)],
        }
    )


def write_xpt(path: Path, frame: Any, version: int = 5, **options: Any) -> Path:
    pyreadstat.write_xport(frame, str(path), table_name="SURVEY", file_format_version=version, **options)
    return path


def whole_read(path: Path) -> list[tuple[Any, ...]]:
    """The file read by pyreadstat at once, as the table shows it: whole numbers as integers,
    missing numbers and blank text as NULL."""
    data, _ = pyreadstat.read_xport(str(path), output_format="dict")
    columns = [[_as_shown(v) for v in values] for values in data.values()]
    return list(zip(*columns))


def _as_shown(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else int(value) if value.is_integer() else value
    if isinstance(value, str) and not value.strip():
        return None
    return value


def test_many_chunks_give_the_rows_of_one_whole_read(home: Path, tmp_path: Path) -> None:
    path = write_xpt(tmp_path / "survey.xpt", survey(5 * CHUNK + 3))
    lake = load(home, path)
    assert rows(lake, "select seqn, value, day, name from t.data order by seqn") == whole_read(path)


def test_version_8_with_long_names_and_labels(home: Path, tmp_path: Path) -> None:
    frame = survey(2 * CHUNK + 1).rename(columns={"SEQN": "RESPONDENT_SEQUENCE", "NAME": "A_LONGER_NAME"})
    frame["WIDE"] = ["w" * 300 if i % 3 else "" for i in range(len(frame))]
    path = write_xpt(tmp_path / "v8.xpt", frame, version=8, column_labels=["L" * 60, "v", "d", "n", "w"])
    assert b"LABELV8" in path.read_bytes()  # labels longer than a namestr holds come after the namestrs
    lake = load(home, path)
    shown = rows(lake, "select * from t.data order by respondent_sequence")
    assert shown == whole_read(path) and len(shown) == 2 * CHUNK + 1


@pytest.mark.parametrize("row_bytes", [8, 13, 80, 81])
def test_the_last_records_padding_is_not_a_row(home: Path, tmp_path: Path, row_bytes: int) -> None:
    count = 2 * CHUNK + 7
    frame = pd.DataFrame({"X": [float(i) for i in range(count)]})
    if row_bytes > 8:
        frame["T"] = ["t" * (row_bytes - 8)] * count
    path = write_xpt(tmp_path / "padded.xpt", frame)
    data = path.read_bytes()
    assert len(data) % 80 == 0 and data.endswith(b" ") == bool((count * row_bytes) % 80)
    lake = load(home, path)
    assert rows(lake, "select count(*), max(x) from t.data") == [(count, count - 1)]


def test_blank_rows_at_chunk_ends_are_kept(home: Path, tmp_path: Path) -> None:
    """A row of one blank text variable is all spaces, like padding: ReadStat keeps such rows
    when a row that is not blank follows, so they must not be lost where a chunk ends."""
    count = 3 * CHUNK + 10
    blank = set(range(CHUNK - 5, CHUNK + 5)) | set(range(2 * CHUNK - 3, 2 * CHUNK)) | {count - 2}
    frame = pd.DataFrame({"T": ["" if i in blank else f"r{i}" for i in range(count)]})
    path = write_xpt(tmp_path / "blanks.xpt", frame)
    lake = load(home, path)
    shown = rows(lake, "select t from t.data")
    assert len(shown) == count and [i for i, (t,) in enumerate(shown) if t is None] == sorted(blank)
    assert shown == whole_read(path)


def test_each_byte_is_read_about_once(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quadratic way re-read the file from its start for every chunk (row_offset)."""
    path = write_xpt(tmp_path / "survey.xpt", survey(6 * CHUNK))
    given: list[tuple[int, int]] = []  # (row_offset, bytes handed to the reader) per data read
    read_xport = pyreadstat.read_xport

    def counting(source: Any, **options: Any) -> Any:
        if not options.get("metadataonly"):
            size = Path(source).stat().st_size if isinstance(source, str | Path) else len(source.getbuffer())
            given.append((options.get("row_offset", 0), size))
        return read_xport(source, **options)

    monkeypatch.setattr(pyreadstat, "read_xport", counting)
    load(home, path)
    header = path.read_bytes().index(b"HEADER RECORD*******OBS") + 80
    assert len(given) >= 6 and all(offset == 0 for offset, _ in given)
    assert sum(size for _, size in given) <= path.stat().st_size + len(given) * (header + 2 * 80)


def test_a_truncated_file_is_still_refused(home: Path, tmp_path: Path) -> None:
    data = write_xpt(tmp_path / "whole.xpt", survey(3 * CHUNK)).read_bytes()
    start = data.index(b"HEADER RECORD*******OBS") + 80
    row = 8 + 8 + 8 + 10  # SEQN, VALUE, DAY, NAME
    inside_a_row = tmp_path / "cut.xpt"
    inside_a_row.write_bytes(data[: start + 80 * 500])  # 40,000 bytes: 1,176 rows and 16 bytes
    refused(home, inside_a_row, "its data ends inside a row after 1,176 rows")
    not_records = tmp_path / "short.xpt"
    not_records.write_bytes(data[: start + 2001 * row])  # whole rows, but not whole records
    refused(home, not_records, "truncated or damaged")


def test_a_second_member_is_still_refused(home: Path, tmp_path: Path) -> None:
    """ReadStat reads past the first member as if it were more rows; that is refused, not read."""
    first = write_xpt(tmp_path / "a.xpt", pd.DataFrame({"X": [float(i) for i in range(2 * CHUNK)]}))
    second = write_xpt(tmp_path / "b.xpt", pd.DataFrame({"X": [1.0, 2.0]}))
    path = tmp_path / "two.xpt"
    path.write_bytes(first.read_bytes() + second.read_bytes()[3 * 80 :])  # the second without a library header
    refused(home, path, r"cannot read two\.xpt as SAS transport: read [\d,]+ of the 2,000 rows it holds")
