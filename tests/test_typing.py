"""Typing in one scan: what the sample decides is proved over every value as the Parquet is written.

Most tests shrink the sample to a row or two, so that nearly every value is met by the fast SQL
path, the exact slow path or a surprise, never by the sample.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from unittest import mock

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liberacion.convert import model, typed_copy
from liberacion.convert import typing_rules as rules
from tests.test_convert import column_types, fresh, load, refused, rows, write

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def tiny_sample(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(typed_copy, "SAMPLE_ROWS", 1)
    yield


def csv_text(header: list[str], table: list[list[str]]) -> str:
    def cell(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if value else ""

    return ",".join(header) + "\n" + "".join(",".join(cell(v) for v in row) + "\n" for row in table)


def columns_of(*columns: list[str]) -> list[list[str]]:
    return [list(row) for row in zip(*columns)]


def test_values_beyond_the_sample_are_proved_not_guessed(home: Path, tmp_path: Path, tiny_sample: None) -> None:
    data = {
        "a": ["1", "+5", " 7 ", "NA", "-0"],  # the slow path: signs, spaces, a marker
        "b": ["1", "2", "2.5", "3", "4"],  # a decimal after the sample: DOUBLE, not a rounded BIGINT
        "c": ["1", "2", "02115", "3", "4"],  # a leading zero: text, exactly as published
        "d": ["1", "2", "99999999999999999999", "3", "4"],  # beyond BIGINT: text, never NULL
        "e": ["$5.00", "$1,234.50", "-$3.25", "", "$0.10"],  # a negative amount on the slow path
        "f": ["2024-01-02T03:04:05", "2024-01-02", "2024-01-02 03:04:05.5", "Not Available", ""],
        "g": ["01/02/2023", "1/2/2023", "12/31/2023", "*", "01/02/23"],  # a two-digit year: text
    }
    lake = load(home, write(tmp_path, "f.csv", csv_text(list(data), columns_of(*data.values()))))
    types = column_types(lake)
    assert types == {
        "a": "BIGINT",
        "b": "DOUBLE",
        "c": "VARCHAR",
        "d": "VARCHAR",
        "e": "DECIMAL(18,2)",
        "f": "TIMESTAMP",
        "g": "VARCHAR",
    }
    got = rows(lake, "select a, b, c, d, e, f, g from t.data")
    assert [r[0] for r in got] == [1, 5, 7, None, 0]
    assert [r[1] for r in got] == [1.0, 2.0, 2.5, 3.0, 4.0]
    assert [r[2] for r in got] == data["c"] and [r[3] for r in got] == data["d"] and [r[6] for r in got] == data["g"]
    assert [r[4] for r in got] == [Decimal("5.00"), Decimal("1234.50"), Decimal("-3.25"), None, Decimal("0.10")]
    assert [r[5] for r in got] == [
        datetime(2024, 1, 2, 3, 4, 5),
        datetime(2024, 1, 2),
        datetime(2024, 1, 2, 3, 4, 5, 500000),
        None,
        None,
    ]
    snapshot = lake.current("t.data")
    assert snapshot.provenance.columns["a"]["markers"] == {"NA": 1}
    assert snapshot.provenance.columns["f"]["markers"] == {"Not Available": 1}
    assert set(snapshot.provenance.extra["conversion"]["reclassified"]) == {"b", "c", "d", "g"}


def test_markers_are_counted_exactly_across_the_whole_file(home: Path, tmp_path: Path) -> None:
    values = [str(i % 97) if i % 10 else ("Not Available" if i % 20 else "n/a") for i in range(150_000)]
    lake = load(home, write(tmp_path, "f.csv", "n\n" + "\n".join(values) + "\n"))
    assert column_types(lake) == {"n": "BIGINT"}
    assert lake.current("t.data").provenance.columns["n"]["markers"] == {"Not Available": 7500, "n/a": 7500}
    assert rows(lake, "select count(n), count(*) from t.data") == [(135_000, 150_000)]


@pytest.mark.parametrize("counters", [1_000, 1])
def test_markers_counted_in_sql_and_in_python_add_up_exactly(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counters: int
) -> None:
    """Spellings the sample showed and common ones are counted in SQL, odd ones in Python (from
    both DuckDB threads at once); a late decimal reruns the COPY, which must not count twice.
    With too few counters for a wide table (1 here, for 2 columns) Python counts them all."""
    monkeypatch.setattr(typed_copy, "SAMPLE_ROWS", 1_000)
    monkeypatch.setattr(typed_copy, "MAX_COUNTERS", counters)
    late = ["N/A", "NOT AVAILABLE", " * ", "Suppressed", "not available", "~"]  # none in the sample
    values = []
    for i in range(240_000):
        if i % 4:
            values.append(str(i % 1000))
        elif i < 1_000:
            values.append("Not Available")
        else:
            values.append(late[i // 4 % len(late)])
    values[-1] = "2.5"  # a surprise after the sample: the column is DOUBLE, converted again
    lake = load(home, write(tmp_path, "f.csv", "n,m\n" + "".join(f"{v},{v}\n" for v in values)))
    assert column_types(lake) == {"n": "DOUBLE", "m": "DOUBLE"}
    expected = {"not available": 9959, "~": 9959, "*": 9958, "N/A": 9958, "NOT AVAILABLE": 9958, "Suppressed": 9958}
    expected["Not Available"] = 250
    columns = lake.current("t.data").provenance.columns
    assert columns["n"]["markers"] == columns["m"]["markers"] == expected
    assert sum(expected.values()) == 60_000
    assert rows(lake, "select count(n), count(m), count(*) from t.data") == [(180_000, 180_000, 240_000)]


def test_day_first_dates_proved_late_are_read_day_first(home: Path, tmp_path: Path, tiny_sample: None) -> None:
    lake = load(home, write(tmp_path, "f.csv", "d\n01/02/2023\n03/04/2023\n25/12/2023\n"))
    assert rows(lake, "select d from t.data") == [(date(2023, 2, 1),), (date(2023, 4, 3),), (date(2023, 12, 25),)]


def test_an_override_that_does_not_fit_late_is_a_clear_error(home: Path, tmp_path: Path, tiny_sample: None) -> None:
    path = write(tmp_path, "f.csv", "n\n1\n0012\nNot Available\nabc\n")
    refused(home, path, r"column n has values that are not BIGINT \(such as 'abc'\).*raw=True", types={"n": "integer"})
    lake = load(home, write(tmp_path, "g.csv", "n\n1\n0012\nNot Available\n"), table="t.ok", types={"n": "integer"})
    assert rows(lake, "select n from t.ok") == [(1,), (12,), (None,)]


# -- properties ---------------------------------------------------------------------------------------

TOKEN_VALUES = [
        "0", "7", "-3", "+5", "012", "00501", "1e3", "1_000", "0x10", "1.5", "-0.25", ".5", "1,000", "12,34",
        "$3.50", "$1,000", "-$2", "$1.999", "41%", "5.5 %", "01/02/2023", "13/02/2023", "1/2/23", "2023-01-02",
        "2023-02-30", "2023-01-02T03:04:05", "2023-01-02 03:04", "Yes", "no", "TRUE", "y", "Not Available", "N/A",
        "*", "--", "(S)", "", " ", "abc", "nan", "inf", "9223372036854775808", "  42  ",
        # years DuckDB's %Y reads from fewer than four digits (the fast path must refuse them)
        "1/2/023", "1/2/0023", "23-01-02 03:04:05", "0999-01-02T03:04:05", "-0", "999,999,999,999,999,999",
        # US times with AM/PM (Socrata's CSV exports), year-first dates with slashes
        "01/05/2024 01:45:00 PM", "1/5/2024 1:45 am", "13/05/2024 01:45:00 PM", "01/05/24 01:45:00 PM",
        "12/31/2023 12:00:00 AM", "2024/01/05", "2024/13/05",
]  # fmt: skip
TOKENS = st.sampled_from(TOKEN_VALUES)


def faithful(value: object, text: str, type_: str) -> bool:
    """Is ``value`` (read back from Parquet) a lossless reading of the published ``text``?"""
    trimmed = text.strip()
    if value is None:
        return trimmed == "" or trimmed.lower() in rules.MISSING_MARKERS
    if type_ == "VARCHAR":
        return value == text
    kind = rules.classify_value(text)
    if type_ == "BIGINT":
        return kind in ("i", "is") and int(trimmed.replace(",", "")) == value
    if type_ == "DOUBLE":
        return kind in ("i", "is", "d", "ds", "p") and float(trimmed.replace(",", "").rstrip("% ")) == value
    if type_.startswith("DECIMAL"):
        return kind == "c" and Decimal(trimmed.replace("$", "").replace(",", "").replace(" ", "")) == value
    if type_ == "BOOLEAN":
        return trimmed.lower() in (rules.BOOL_TRUE if value else rules.BOOL_FALSE)
    if type_ == "TIMESTAMP":
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(trimmed) == value
        for form in ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p"):
            with contextlib.suppress(ValueError):
                return kind == "tu" and datetime.strptime(trimmed.upper(), form) == value
        return False
    if type_ == "DATE":
        readings = [date.fromisoformat(trimmed.replace("/", "-"))] if kind in ("di", "dy") else []
        for form in ("%m/%d/%Y", "%d/%m/%Y"):
            with contextlib.suppress(ValueError):
                readings.append(datetime.strptime(trimmed, form).date())
        return kind in ("di", "dy", "du") and value in readings
    return False


HEAD_VALUES = [
    *("7", "1.5", "1,000", "$3.50", "41%", "01/02/2023", "2023-01-02", "Yes", "2023-01-02T03:04:05"),
    *("01/05/2024 01:45:00 PM", "2024/01/05"),
]
HEADS = st.sampled_from(HEAD_VALUES)


@settings(FAST, max_examples=80)
@given(HEADS, st.lists(TOKENS, min_size=1, max_size=12), st.integers(1, 3))
def test_property_no_value_is_ever_silently_changed(tmp_path: Path, head: str, tail: list[str], sample: int) -> None:
    """A typed first row makes the sample decide a type; the values after it must then fit it exactly."""
    values = [head, *tail]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typed_copy, "SAMPLE_ROWS", sample)
        work = fresh(tmp_path)
        lake = load(work / "home", write(work, "p.csv", csv_text(["v"], [[v] for v in values])))
    type_ = column_types(lake)["v"]
    got = [r[0] for r in rows(lake, "select v from t.data")]
    # CSV cannot tell an empty cell from a missing one: both read back as empty text or NULL.
    assert len(got) == len(values)
    for value, text in zip(got, values):
        assert faithful(value if value != "" or text else None, text, type_), (text, value, type_)


@FAST
@given(
    st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=20),
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=20),
    st.lists(st.dates(date(1000, 1, 1), date(9999, 12, 31)), min_size=1, max_size=20),
)
def test_property_fast_and_slow_paths_agree(
    tmp_path: Path, ints: list[int], floats: list[float], dates: list[date]
) -> None:
    """The same numbers and dates, canonical (fast SQL) and padded with spaces (the Python slow path)."""
    size = max(len(ints), len(floats), len(dates))
    ints, floats, dates = (ints * size)[:size], (floats * size)[:size], (dates * size)[:size]
    us = [f"{d.month}/{d.day}/{d.year}" for d in dates]
    table = [[str(i), f" {i} ", repr(f), f" {f!r} ", u, f" {u} "] for i, f, u in zip(ints, floats, us)]
    work = fresh(tmp_path)
    lake = load(work / "home", write(work, "a.csv", csv_text(["i", "i2", "f", "f2", "d", "d2"], table)))
    types = column_types(lake)
    assert types["i"] == types["i2"] == "BIGINT" and types["d"] == types["d2"] == "DATE"
    assert types["f"] == types["f2"]
    got = rows(lake, "select i, i2, f, f2, d, d2 from t.data")
    assert [r[0] for r in got] == [r[1] for r in got] == ints
    assert [r[2] for r in got] == [r[3] for r in got]
    if types["f"] == "DOUBLE":
        assert [r[2] for r in got] == [float(f) for f in floats]
    assert [r[4] for r in got] == [r[5] for r in got] == dates


def test_every_token_after_every_typed_head_is_read_faithfully(home: Path, tmp_path: Path, tiny_sample: None) -> None:
    """Each column is a typed first value (all the sample sees) and one tricky value after it."""
    pairs = [(h, t) for h in HEAD_VALUES for t in TOKEN_VALUES]
    header = [f"c{i}" for i in range(len(pairs))]
    lake = load(home, write(tmp_path, "m.csv", csv_text(header, [[h for h, _ in pairs], [t for _, t in pairs]])))
    types = column_types(lake)
    got = rows(lake, "select * from t.data")
    for i, (head, token) in enumerate(pairs):
        type_ = types[f"c{i}"]
        for value, text in ((got[0][i], head), (got[1][i], token)):
            assert faithful(value if value != "" or text else None, text, type_), (head, token, value, type_)


CLASS_VALUES = [
    *TOKEN_VALUES,
    *("1,000.5", "-1,234,567.25", "1.5e-3", "$ 12", "12 %", "31/12/2023", "2023-01-02 03:04:05.25"),
    *("12.3 (Unreliable)", "4 (unreliable)", "N", "false", "1,234", "+0", ".0", "007", "$-5"),
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(CLASS_VALUES), min_size=1, max_size=30))
def test_property_the_sample_profile_counts_each_value_in_its_first_class(values: list[str]) -> None:
    """Whatever class the first value has (the profile tries it first), each value counts in the
    first class of the list that matches it, as ``classify_value`` gives one value's class."""
    expected: dict[str, int] = {}
    for value in values:
        kind = rules.classify_value(value)
        if kind is not None:
            expected[kind] = expected.get(kind, 0) + 1
    for early in ("t", "z"):  # a text or leading-zero value makes the column text: nothing else is counted
        if early in expected:
            expected = {early: expected[early]}
            break
    assert _profile(values).classes == expected


PADDING = ("", " ", "\t", "\u00a0", "\u3000", "\u2009 ")
PROFILE_VALUES = [*CLASS_VALUES, "NOT AVAILABLE", " n/a", "Suppressed ", "x", "Y", "$12.345", "12/31/2023", "3.14159%"]


# A sample's cell: none, or a value with white space (ASCII or Unicode) around it.
CELLS = st.one_of(
    st.none(),
    st.tuples(st.sampled_from(PADDING), st.sampled_from(PROFILE_VALUES), st.sampled_from(PADDING)).map("".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CELLS, min_size=1, max_size=40))
def test_property_the_sample_profile_in_sql_is_the_one_of_each_value_in_python(values: list[str | None]) -> None:
    """The profile DuckDB computes over a sample's distinct values is what Python says of each value:
    classes (text or leading zeros alone when present), the dates' evidence, the scale, the markers
    as published (most frequent first), the lone one-letter value; Unicode white space trimmed as
    ``str.strip`` trims it."""
    assert _profile(values) == _python_profile(values)


def _python_profile(values: list[str | None]) -> rules.Profile:
    counts = Counter(v for v in values if v is not None)
    classes: Counter[str] = Counter()
    markers, present, dates, scale = [], set(), [], 0
    for value, n in counts.items():
        kind = rules.classify_value(value)
        if kind is None:
            if value.strip():
                markers.append((n, value))
            continue
        present.add(value.strip())
        classes[kind] += n
        if kind == "du":
            dates.append((*(int(part) for part in value.strip().split("/")[:2]), n))
        if kind in ("d", "ds", "c", "p") and "." in value:
            scale = max(scale, len(re.match(r"[0-9]*", value.strip().split(".", 1)[1]).group()))  # type: ignore[union-attr]
    lone = next(iter(present)) if len(present) == 1 and len(next(iter(present))) == 1 else None
    spellings = tuple(v for _n, v in sorted(markers, reverse=True)[: rules.MAX_SPELLINGS])
    for early in ("t", "z"):
        if early in classes:
            return rules.Profile({early: classes[early]}, [None, None], 0, spellings, lone)
    order = [code for code, _pattern in rules._CLASSES if code in classes]
    evidence: list[int | None] = [None, None, 0, 0]
    if dates:
        evidence = [max(d[0] for d in dates), max(d[1] for d in dates), sum(d[2] for d in dates if d[0] > 12)]
        evidence.append(sum(d[2] for d in dates))
    return rules.Profile({code: classes[code] for code in order}, evidence, scale, spellings, lone)


def _profile(values: list[str | None]) -> rules.Profile:
    """The sample profile of one column holding ``values``."""
    con = duckdb.connect()
    con.execute("CREATE TABLE s (c0 VARCHAR)")
    con.executemany("INSERT INTO s VALUES (?)", [[v] for v in values])
    (profile,) = rules.sample_profiles(con, "s", ["c0"])
    return profile


def _sample_table(columns: list[list[str | None]]) -> tuple[duckdb.DuckDBPyConnection, list[model._Column]]:
    """A table ``s`` of text columns ``v0``, ``v1``, ... holding ``columns`` (the shorter ones padded with NULL)."""
    height = max(map(len, columns))
    con = duckdb.connect()
    con.execute(f"CREATE TABLE s ({', '.join(f'v{i} VARCHAR' for i in range(len(columns)))})")
    rows = [[column[r] if r < len(column) else None for column in columns] for r in range(height)]
    con.executemany(f"INSERT INTO s VALUES ({', '.join('?' * len(columns))})", rows)
    return con, [model._Column(f"v{i}", f"value_{i}", f"Value {i}") for i in range(len(columns))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns=st.lists(st.lists(CELLS, min_size=1, max_size=12), min_size=1, max_size=5))
def test_property_a_wide_sample_is_profiled_as_a_narrow_one(columns: list[list[str | None]]) -> None:
    """A sample of many columns has its distinct values counted over the UNPIVOT of a batch of
    columns, not by one GROUP BY per column: every column's profile is the same either way."""
    con, _columns = _sample_table(columns)
    names = [f"v{i}" for i in range(len(columns))]
    narrow = rules.sample_profiles(con, "s", names)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rules, "PROFILE_UNPIVOT_FROM", 0)
        patch.setattr(rules, "PROFILE_UNPIVOT_COLUMNS", 2)  # batches too
        wide = rules.sample_profiles(con, "s", names)
    assert wide == narrow


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns=st.lists(st.lists(CELLS, min_size=1, max_size=12), min_size=1, max_size=4))
def test_property_columns_found_text_in_the_first_rows_are_decided_as_the_whole_profile_decides(
    columns: list[list[str | None]],
) -> None:
    """Columns whose first rows hold text skip the sample's profile: every decision (type, reason,
    markers in SQL) is the one the profile of every column gives."""
    con, named = _sample_table(columns)

    def decided() -> list[tuple[object, ...]]:
        found = typed_copy._classify_sample(con, "s", named)
        return [(d.kind, d.reason, d.scale, d.spellings) for d in (found[c.source] for c in named)]

    early = decided()
    with mock.patch.object(rules, "text_early", lambda *_: set()):
        assert early == decided()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns=st.lists(st.lists(CELLS, min_size=1, max_size=12), min_size=1, max_size=3))
def test_property_the_scan_of_every_value_decides_as_the_sample_decides(columns: list[list[str | None]]) -> None:
    """After a surprise every value of a column is classified again, in SQL over the whole file: the
    same values must give the decision the sample gives (white space trimmed as ``str.strip`` trims
    it), whether or not some other value surprised the conversion."""
    con, named = _sample_table(columns)
    sampled = typed_copy._classify_sample(con, "s", named)
    scanned = typed_copy._classify_all(con, "s", named, sampled)
    assert [(d.kind, d.scale) for d in scanned.values()] == [(d.kind, d.scale) for d in sampled.values()]


def test_a_surprise_changes_no_other_decision(home: Path, tmp_path: Path, tiny_sample: None) -> None:
    """A column classified again over every value after a surprise gets the type the sample gives it
    when the sample holds every row: values padded with tabs or no-break spaces are still numbers,
    and a lone one-letter flag is still text."""
    data = {
        "a": ["1", "2\u00a0", "\t3", "2.5"],  # 2.5 surprises the sample's BIGINT
        "b": ["Not Available", "N", "N", "N"],  # N surprises the sample's markers-only column
    }
    surprised = load(home, write(tmp_path, "s.csv", csv_text(list(data), columns_of(*data.values()))))
    with mock.patch.object(typed_copy, "SAMPLE_ROWS", 50):
        whole = load(tmp_path / "home2", write(tmp_path, "w.csv", csv_text(list(data), columns_of(*data.values()))))
    assert column_types(surprised) == column_types(whole) == {"a": "DOUBLE", "b": "VARCHAR"}
    assert rows(surprised, "select a from t.data") == [(1.0,), (2.0,), (3.0,), (2.5,)]
