"""The typing rules: which text cells are missing values, which columns are identifiers, and how
a column of text becomes BIGINT, DOUBLE, DECIMAL, DATE, TIMESTAMP(TZ) or BOOLEAN without loss.

Typing runs at DuckDB's speed in one scan: SQL here converts the canonical spelling of each kind
(the fast path), turns the usual marker spellings into NULL while counting them in SQL, and hands
every other value to ``SlowPath``, exact Python that turns markers into NULL (counting them) and
refuses a value the column's type cannot hold. Extend the tables below; the rules are tested
through conversions in tests/test_convert.py and tests/test_typing.py.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from liberacion.naming import is_identifier_name, quote_ident

# Cells that mean "no value" in HHS files (compared trimmed and lower-cased). In a column that
# becomes typed they turn into NULL and are counted; in a text column they are kept as published.
MISSING_MARKERS: tuple[str, ...] = (
    "not available", "not applicable", "n/a", "na", "n.a.", "nan", "null", "none", "missing", "unknown",
    "*", "**", "***", "-", "--", "---", ".", "~", "suppressed", "too few to report", "not reported",
    "no data", "data not available", "(s)", "(na)", "(x)", "(d)", "(z)", "(nr)", "nr", "nd", "x",
    "unreliable",  # CDC WONDER
    "#n/a", "#div/0!", "#value!", "#ref!", "#name?", "#num!", "#null!",  # Excel's error cells
)  # fmt: skip

# Marker spellings counted in SQL in every typed column of a file larger than its sample (besides
# the spellings the sample showed): the ones HHS files use most, as published. Any other spelling
# is still a marker, counted by the exact Python path (``SlowPath``).
COMMON_SPELLINGS: tuple[str, ...] = ("Not Available", "N/A", "NA", "*", "Suppressed", "-", ".", "Not Applicable")
MAX_SPELLINGS = 12  # per column: each is one comparison for every cell the fast path refuses

# A number followed by a flag (CDC WONDER's "12.3 (Unreliable)"): the number, with the flag counted
# like a marker. Matched case-insensitively after the number.
FLAGS: tuple[str, ...] = ("(unreliable)",)

# A column of yyyymmdd numbers is dates when its name says so: openFDA's receivedate, an SPL's
# effective_time. Matched against the snake_case name. (Which names are codes': ``naming``.)
DATE_NAMES = re.compile(r"date|(^|_)(dt|time|day)(_|$)")
# Classes no identifier is written in: thousands separators, currency, a percent sign. A column
# named like an identifier whose values are these ("Number": "35,798,453") is a quantity. A
# decimal point is not among them: exports print numeric ids as floats (``1234567890.0``).
QUANTITY_CLASSES = frozenset({"is", "ds", "c", "p"})

# The kinds a column of text can be, in order of preference. Each has a SQL test that is true when a
# (trimmed, non-missing) value converts without loss, and the SQL that converts it.
INT, INT_SEP, DOUBLE, DOUBLE_SEP, CURRENCY, PERCENT = "int", "int_sep", "double", "double_sep", "currency", "percent"
DATE_US, DATE_DMY, DATE_ISO, TIMESTAMP, BOOL, TEXT = "date_us", "date_dmy", "date_iso", "timestamp", "bool", "text"
TIMESTAMP_US = "timestamp_us"  # 01/05/2024 01:45:00 PM, as Socrata's CSV exports write times
# 2024-01-02T03:04:05-05:00: an instant, kept as one (TIMESTAMPTZ, shown in UTC), as a JSON reader
# types it. A column of times ending in Z only stays TIMESTAMP, the time as it says.
TIMESTAMP_TZ = "timestamp_tz"
DATE_COMPACT = "date_compact"  # 20201231, as openFDA writes dates (receivedate), in a column named so
# Nothing but missing-value markers (and empty cells): text of NULLs, its markers counted like any
# typed column's. Literal "NA"s would leave ``WHERE x IS NULL`` finding nothing while ``info`` says
# the column holds no values; a real value after the sample is a surprise, and the column is
# classified again from all its values.
MISSING = "missing"

_NUM = r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?"
_NUM_SEP = r"[-+]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?"
_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
_CLASSES: tuple[tuple[str, str], ...] = (
    # class code, regular expression (a full match) — the classification of one value
    ("z", r"[-+]?0[0-9]+"),  # a leading zero: an identifier, never a number
    # Eight digits that may be a date, yyyymmdd: a whole number too (``ACCEPTS``), a date only in a
    # column whose name says so (``DATE_NAMES``).
    ("dc", r"(1[89]|2[0-9])[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])"),
    ("i", r"[-+]?[0-9]+"),
    ("is", r"[-+]?[0-9]{1,3}(,[0-9]{3})+"),
    ("d", _NUM),
    ("ds", _NUM_SEP),
    # currency; in parentheses, a negative amount as accountants write it: ($1,234.00)
    ("c", r"-?\$ *-?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?|\(\$ *([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?\)"),
    ("p", r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+) *%"),
    ("du", r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}"),
    ("di", r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    ("dy", r"[0-9]{4}/[0-9]{2}/[0-9]{2}"),  # year first with slashes: an ISO date by another hand
    ("ts", _TIME),
    ("tsz", _TIME + "Z"),  # UTC
    ("tz", _TIME + "[-+][0-9]{2}(:?[0-9]{2})?"),  # a time with its offset from UTC
    ("tu", r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4} [0-9]{1,2}:[0-9]{2}(:[0-9]{2})? ?(?i:am|pm)"),
    ("b", r"(?i:yes|no|y|n|true|false)"),  # a scoped flag: the same in Python and in RE2
    ("f", _NUM + r" *\((?i:unreliable)\)"),  # a number with a flag (FLAGS)
)
BOOL_TRUE = ("yes", "y", "true")
BOOL_FALSE = ("no", "n", "false")
# Answers of a yes/no question besides yes and no (CDC's case surveillance: Yes, No, Unknown,
# Missing): a column holding them keeps its text, for NULL would merge them with empty cells.
BOOL_ANSWERS = frozenset({"unknown", "missing"})
_MARKER_SET = frozenset(MISSING_MARKERS)
_ANY_CLASS = "|".join(f"(?:{pattern})" for _, pattern in _CLASSES)
_PY_CLASSES = tuple((code, re.compile(pattern)) for code, pattern in _CLASSES)
TYPE_NAMES = {
    "string": TEXT, "text": TEXT, "varchar": TEXT, "str": TEXT,
    "integer": INT_SEP, "int": INT_SEP, "bigint": INT_SEP, "long": INT_SEP,
    "double": DOUBLE_SEP, "float": DOUBLE_SEP, "number": DOUBLE_SEP, "real": DOUBLE_SEP, "numeric": DOUBLE_SEP,
    "decimal": CURRENCY, "money": CURRENCY,
    "date": DATE_US, "date_dmy": DATE_DMY, "date_iso": DATE_ISO,
    "timestamp": TIMESTAMP, "datetime": TIMESTAMP, "timestamp_us": TIMESTAMP_US,
    "timestamptz": TIMESTAMP_TZ, "timestamp_tz": TIMESTAMP_TZ,
    "boolean": BOOL, "bool": BOOL, "percent": PERCENT, "date_compact": DATE_COMPACT, "yyyymmdd": DATE_COMPACT,
}  # fmt: skip


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _sql_quote(text: str) -> str:
    return text.replace("'", "''")


def _literal(text: str) -> str:
    return f"'{_sql_quote(text)}'"


def trimmed(column: str) -> str:
    """SQL: the column's value trimmed as ``str.strip`` trims it, as the sample's profile and the
    slow path trim it: the scan of every value must decide as they do."""
    return _trim_sql(quote_ident(column))


def _trim_sql(v: str) -> str:
    # Trimming Unicode's white space costs DuckDB six times trimming spaces: it is done only where
    # either end is not printable ASCII.
    return (
        f"CASE WHEN {v} >= '!' AND {v} < '{chr(0x7F)}' AND right({v}, 1) BETWEEN '!' AND '~' THEN {v}"
        f" ELSE trim({v}, {_literal(WHITESPACE)}) END"
    )


def _marker_sql(t: str) -> str:
    """SQL: ``t``, a trimmed value, is empty or a missing-value marker."""
    return (
        f"{t} = '' OR (length({t}) <= {max(map(len, MISSING_MARKERS))}"
        f" AND list_contains({_sql_list(MISSING_MARKERS)}, lower({t})))"
    )


def missing_test(column: str) -> str:
    """SQL: true when the cell is empty or a missing-value marker."""
    v = trimmed(column)
    return f"({v} IS NULL OR {_marker_sql(v)})"


_CLASS_CODES = (*(code for code, _ in _CLASSES), "t")


def class_mask(column: str) -> str:
    """SQL aggregate: which classes of values (see ``_CLASSES``; "t" is any other text) the column
    holds, one bit each. A bit mask, not counts: its state is 8 bytes, so hundreds of columns can
    be classified in one scan within the memory limit."""
    v = trimmed(column)
    whens = " ".join(
        f"WHEN regexp_full_match({v}, '{pattern}') THEN {1 << i}" for i, (_, pattern) in enumerate(_CLASSES)
    )
    return f"bit_or(CASE WHEN {missing_test(column)} THEN 0 {whens} ELSE {1 << len(_CLASSES)} END)"


def classes_of_mask(mask: int | None) -> dict[str, int]:
    return {code: 1 for i, code in enumerate(_CLASS_CODES) if (mask or 0) >> i & 1}


def marker_evidence(column: str) -> str:
    """SQL aggregate: the column's missing-value markers as published, with their counts (a MAP).
    Asked only of a column the sample found to hold nothing but markers, when another value
    surprised it: whether one of all its markers may be a flag decides what it becomes."""
    markers, t = _sql_list(MISSING_MARKERS), trimmed(column)
    # The length first, as in ``_marker_sql``: ``lower`` would copy every long text the column holds.
    longest = max(map(len, MISSING_MARKERS))
    return (
        f"histogram({quote_ident(column)})"
        f" FILTER (WHERE length({t}) <= {longest} AND list_contains({markers}, lower({t})))"
    )


def markers_of_evidence(counts: dict[str, int] | None) -> tuple[str, ...]:
    """``marker_evidence``'s markers, most frequent first (as ``marker_spellings`` orders a sample's);
    all of them, not ``MAX_SPELLINGS``: a flag among the rarest must still keep the column's text."""
    found = sorted(((n, spelling) for spelling, n in (counts or {}).items()), key=lambda x: (-x[0], x[1]))
    return tuple(spelling for _n, spelling in found)


def classify_value(text: str) -> str | None:
    """The class of one published value (None for empty or a missing-value marker)."""
    value = text.strip()
    if not value or value.lower() in _MARKER_SET:
        return None
    for code, pattern in _PY_CLASSES:
        if pattern.fullmatch(value):
            return code
    return "t"


# What Python's ``str.strip()`` and Arrow's ``utf8_trim_whitespace`` take off both ends: Unicode's
# white space (DuckDB's ``trim`` alone takes only spaces).
WHITESPACE = "".join(
    map(chr, (*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B)))
) + "".join(map(chr, (0x2028, 0x2029, 0x202F, 0x205F, 0x3000)))


@dataclass
class Profile:
    """What a sample shows of one column: its values' classes (``classify_value``), the date
    evidence of its a/b/yyyy dates (see ``_date_decision``), the most digits after a decimal point,
    its missing-value markers as published (most frequent first), and its one value when that is a
    single character: a column whose only value is ``N`` is a flag such as NNDSS's (not notifiable),
    not a yes/no column."""

    classes: dict[str, int]
    dates: list[int | None]
    scale: int
    markers: tuple[str, ...]
    lone: str | None


def sample_profiles(con: Any, table: str, columns: Sequence[str]) -> list[Profile]:
    """The ``Profile`` of each of the ``columns`` of the sample ``table``, in SQL over
    each column's distinct values: a conversion needs no Arrow and no Python pass over the sample.

    A column with any text or leading-zero value is text whatever else it holds: its profile counts
    that class only. Otherwise each value counts in the first class of ``_CLASSES`` that takes it.
    """
    values = f"liberacion_profile_{next(_profile_names)}"
    profiles = {c: Profile({}, [None, None, 0, 0], 0, (), None) for c in columns}
    con.execute(f"CREATE TEMP TABLE {values} (col VARCHAR, v VARCHAR, n BIGINT, t VARCHAR, m BOOLEAN)")
    try:
        for distinct in _distinct_values(table, columns):
            con.execute(
                f"INSERT INTO {values} SELECT col, v, n, t, {_MARKER_SQL}"
                f" FROM (SELECT col, v, n, {_TRIMMED_SQL} AS t FROM ({distinct}))"
            )
        _add_classes(con, values, profiles)
        _add_markers(con, values, profiles)
    finally:
        con.execute(f"DROP TABLE {values}")
    return list(profiles.values())


def _distinct_values(table: str, columns: Sequence[str]) -> Iterator[str]:
    """Queries giving the distinct non-NULL values (``col``, ``v``, ``n``) of the ``columns`` of
    ``table``, a batch of columns each.

    One GROUP BY per column: a third of the time of one over the UNPIVOT of them all, up to a few
    hundred columns. A few dozen at a time: each holds its own hash table (1,000 at once outgrew a
    200 MB limit). Each of those binds the whole table, so their time grows with the square of the
    columns: a sample of 3,000 columns took 6.8 s, against 0.9 s over the UNPIVOT of a few hundred
    at a time (``benchmarks/wide_parts.py``)."""
    if len(columns) > PROFILE_UNPIVOT_FROM:
        for first in range(0, len(columns), PROFILE_UNPIVOT_COLUMNS):
            listed = ", ".join(columns[first : first + PROFILE_UNPIVOT_COLUMNS])
            # UNPIVOT leaves NULLs out, and names each value's column as the GROUP BY above does.
            yield (
                f"SELECT col, v, count(*) AS n FROM (UNPIVOT (SELECT {listed} FROM {table})"
                " ON COLUMNS(*) INTO NAME col VALUE v) GROUP BY col, v"
            )
        return
    for first in range(0, len(columns), PROFILE_COLUMNS):
        yield " UNION ALL ".join(
            f"SELECT '{c}' AS col, {c} AS v, count(*) AS n FROM {table} WHERE {c} IS NOT NULL GROUP BY {c}"
            for c in columns[first : first + PROFILE_COLUMNS]
        )


_profile_names = itertools.count(1)
PROFILE_COLUMNS = 32
PROFILE_UNPIVOT_FROM = 640  # columns; below it the GROUP BY per column is quicker
PROFILE_UNPIVOT_COLUMNS = 256
EARLY_CELLS = 4_000  # of the sample's first rows, read by ``text_early``
_TRIMMED_SQL = _trim_sql("v")
_MARKER_SQL = _marker_sql("t")


def text_early(con: Any, table: str, count: int) -> set[str]:
    """The columns ``c0`` .. ``c{count - 1}`` of the sample ``table`` whose first rows already hold
    a text value (of no class, and not a marker): their ``Profile`` would have the text class
    whatever else they hold, so they need none. Names, addresses and descriptions are most of a
    sample's distinct values, and so most of the profile's time."""
    head = f"(UNPIVOT (FROM {table} LIMIT {max(1, EARLY_CELLS // count)}) ON COLUMNS(*) INTO NAME col VALUE v)"
    found = con.execute(  # UNPIVOT leaves NULLs out
        f"SELECT col FROM (SELECT col, t, {_MARKER_SQL} AS m FROM (SELECT col, {_TRIMMED_SQL} AS t FROM {head}))"
        f" GROUP BY col HAVING bool_or(NOT m AND NOT regexp_full_match(t, {_literal(_ANY_CLASS)}))"
    ).fetchall()
    return {col for (col,) in found}


def written_as_quantities(con: Any, table: str, columns: Sequence[str], count: int) -> set[str]:
    """Of the ``columns`` of the sample ``table`` (of ``count`` columns) named like identifiers,
    those whose first rows (as ``text_early`` reads) hold a value with a thousands separator, a
    currency or a percent sign: only those are profiled, for ``decide`` may find them quantities.
    The others stay text, their values unread, as identifiers' names make them."""
    if not columns:
        return set()
    tests = ", ".join(f"bool_or(regexp_matches({c}, '[,$%]'))" for c in columns)
    row = con.execute(f"SELECT {tests} FROM (FROM {table} LIMIT {max(1, EARLY_CELLS // count)})").fetchone()
    return {c for c, found in zip(columns, row, strict=True) if found}


# A character only some classes' values hold: a value that has one (and none of the characters
# before it) is of one of those classes, or text. Dates and currency are tried against a pattern
# or two, not against every class before theirs (``_add_classes``).
_CLASSES_HOLDING = (("$", ("c",)), ("%", ("p",)), ("(", ("f",)), (":", ("ts", "tsz", "tz", "tu")), ("/", ("du", "dy")))


def _class_sql() -> str:
    """SQL: the class of the trimmed value ``t`` (the first of ``_CLASSES`` that takes it), 't' for text."""

    def first_of(codes: tuple[str, ...]) -> str:
        whens = " ".join(f"WHEN regexp_full_match(t, {_literal(p)}) THEN '{c}'" for c, p in _CLASSES if c in codes)
        return f"CASE {whens} ELSE 't' END"

    held = {code for _char, codes in _CLASSES_HOLDING for code in codes}
    dispatch = " ".join(f"WHEN contains(t, '{char}') THEN {first_of(codes)}" for char, codes in _CLASSES_HOLDING)
    rest = first_of(tuple(code for code, _pattern in _CLASSES if code not in held))
    return f"CASE WHEN NOT regexp_full_match(t, {_literal(_ANY_CLASS)}) THEN 't' {dispatch} ELSE {rest} END"


_CLASS_SQL = _class_sql()


def _add_classes(con: Any, values: str, profiles: dict[str, Profile]) -> None:
    first, second = (f"TRY_CAST(split_part(t, '/', {i}) AS BIGINT)" for i in (1, 2))
    rows = con.execute(
        "SELECT col, k, sum(n)::BIGINT, max(first), max(second), (sum(n) FILTER (WHERE first > 12))::BIGINT,"
        " max(CASE WHEN k IN ('d', 'ds', 'c', 'p') THEN length(regexp_extract(t, '\\.([0-9]*)', 1)) END),"
        " min(t), max(t)"
        f" FROM (SELECT col, n, t, k, CASE WHEN k = 'du' THEN {first} END AS first,"
        f" CASE WHEN k = 'du' THEN {second} END AS second"
        f" FROM (SELECT col, n, t, {_CLASS_SQL} AS k FROM {values} WHERE NOT m)) GROUP BY col, k"
    ).fetchall()
    found: dict[str, dict[str, tuple[Any, ...]]] = {}
    for col, k, *evidence in rows:
        found.setdefault(col, {})[k] = tuple(evidence)
    for col, kinds in found.items():
        profile = profiles[col]
        if len(kinds) == 1:
            (least, most), *_ = (e[5:] for e in kinds.values())
            profile.lone = lone_value(least, most)
        early = next((code for code in ("t", "z") if code in kinds), None)
        if early:  # text: nothing else matters
            profile.classes, profile.dates = {early: kinds[early][0]}, [None, None]
            continue
        profile.classes = {code: kinds[code][0] for code, _pattern in _CLASSES if code in kinds}
        if "du" in kinds:
            cells, first, second, above, *_ = kinds["du"]
            profile.dates = [first, second, above or 0, cells]
        profile.scale = max((kinds[code][4] or 0 for code in ("d", "ds", "c", "p") if code in kinds), default=0)


def _add_markers(con: Any, values: str, profiles: dict[str, Profile]) -> None:
    """Each column's markers as published, most frequent first (ties: the later spelling first)."""
    found: dict[str, list[tuple[int, str]]] = {}
    for col, v, n in con.execute(f"SELECT col, v, n FROM {values} WHERE m AND t <> ''").fetchall():
        found.setdefault(col, []).append((n, v))
    for col, markers in found.items():
        profiles[col].markers = tuple(spelling for _n, spelling in sorted(markers, reverse=True)[:MAX_SPELLINGS])


def lone_evidence(column: str) -> str:
    """SQL aggregate: the least and greatest of the column's values (trimmed, markers aside), for
    ``lone_value``."""
    v = trimmed(column)
    values = f"FILTER (WHERE NOT {missing_test(column)})"
    return f"[min({v}) {values}, max({v}) {values}]"


def lone_value(least: str | None, most: str | None) -> str | None:
    """A column's one value, when all its values (markers aside) are one single character: a flag
    such as NNDSS's ``N``, which keeps the column text (see ``decide``)."""
    return least if least is not None and least == most and len(least) == 1 else None


def date_evidence(column: str) -> str:
    """SQL aggregate: the largest first and second parts of a/b/yyyy dates (which one is the day)."""
    v = trimmed(column)
    first = f"TRY_CAST(split_part({v}, '/', 1) AS INTEGER)"
    second = f"TRY_CAST(split_part({v}, '/', 2) AS INTEGER)"
    return f"[max({first}), max({second}), count(*) FILTER (WHERE {first} > 12), count({first})]"


def scale_evidence(column: str) -> str:
    """SQL aggregate: the most digits after a decimal point."""
    v = trimmed(column)
    return f"max(CASE WHEN contains({v}, '.') THEN length(regexp_extract({v}, '\\.([0-9]*)', 1)) ELSE 0 END)"


@dataclass
class Decision:
    """What a column becomes, and why."""

    kind: str
    scale: int = 0  # digits after the point, for currency (DECIMAL)
    reason: str = ""
    notes: dict[str, Any] = field(default_factory=dict)
    # Marker spellings to count in SQL (as published); None when no sample showed the column's own.
    spellings: tuple[str, ...] | None = None

    @property
    def sql_spellings(self) -> tuple[str, ...]:
        return COMMON_SPELLINGS if self.spellings is None else self.spellings

    @property
    def sql_type(self) -> str:
        return {
            INT: "BIGINT", INT_SEP: "BIGINT", DOUBLE: "DOUBLE", DOUBLE_SEP: "DOUBLE", PERCENT: "DOUBLE",
            CURRENCY: f"DECIMAL(18,{self.scale})", DATE_US: "DATE", DATE_DMY: "DATE", DATE_ISO: "DATE",
            TIMESTAMP: "TIMESTAMP", TIMESTAMP_US: "TIMESTAMP", BOOL: "BOOLEAN", TEXT: "VARCHAR", MISSING: "VARCHAR",
            DATE_COMPACT: "DATE", TIMESTAMP_TZ: "TIMESTAMPTZ",
        }[self.kind]  # fmt: skip


# Which value classes each kind accepts (a column's kind is the first whose set holds all its classes).
ACCEPTS: dict[str, frozenset[str]] = {
    INT: frozenset({"i", "dc"}),
    INT_SEP: frozenset({"i", "dc", "is"}),
    DOUBLE: frozenset({"i", "dc", "d", "f"}),
    DOUBLE_SEP: frozenset({"i", "dc", "is", "d", "ds", "f"}),
    PERCENT: frozenset({"p"}),
    BOOL: frozenset({"b"}),
    DATE_ISO: frozenset({"di", "dy"}),
    TIMESTAMP: frozenset({"ts", "tsz", "di"}),
    TIMESTAMP_TZ: frozenset({"tz", "tsz"}),
    TIMESTAMP_US: frozenset({"tu"}),
    CURRENCY: frozenset({"c"}),
    DATE_US: frozenset({"du"}),
    DATE_COMPACT: frozenset({"dc"}),
    DATE_DMY: frozenset({"du"}),
    MISSING: frozenset(),  # any value at all is a surprise
}


def decide(
    name: str,
    classes: dict[str, int],
    dates: list[int | None] | None = None,
    scale: int | None = None,
    *,
    markers: tuple[str, ...] = (),
    lone: str | None = None,
) -> Decision:
    """The type of a column from the classes of *all* its values (or a sample's, to be validated);
    ``markers``: the missing-value markers among the values, as published (``classes`` leaves them out);
    ``lone``: the column's one value, when it has one and it is a single character."""
    decision = _decide_kinds(name, classes, dates, scale, markers)
    if decision.kind == BOOL and lone:
        return Decision(TEXT, reason=f"one flag ({lone}) only: not a yes/no column")
    answers = [m.strip() for m in markers if m.strip().lower() in BOOL_ANSWERS]
    if decision.kind == BOOL and answers:
        return Decision(TEXT, reason=f"yes/no with {answers[0]!r} answers: kept as text")
    return decision


def _decide_kinds(
    name: str, classes: dict[str, int], dates: list[int | None] | None, scale: int | None, markers: tuple[str, ...]
) -> Decision:
    kinds = {k for k, n in classes.items() if n}
    if is_identifier_name(name):
        if not (kinds & QUANTITY_CLASSES and kinds <= QUANTITY_CLASSES | {"i", "dc"}):
            return Decision(TEXT, reason="identifier column name")
        named = _decide_kinds("", classes, dates, scale, markers)
        named.reason = f"{named.reason}; named like an identifier, but written as a quantity"
        return named
    if not kinds:
        return _markers_only(markers)
    if "z" in kinds:
        return Decision(TEXT, reason="values with leading zeros are identifiers")
    if "t" in kinds:
        return Decision(TEXT, reason="text values")
    if kinds == {"dc"} and DATE_NAMES.search(name):
        return Decision(DATE_COMPACT, reason="yyyymmdd dates in a column named for a date")
    for candidate in (INT, INT_SEP, DOUBLE, DOUBLE_SEP, PERCENT, BOOL, DATE_ISO, TIMESTAMP, TIMESTAMP_US, TIMESTAMP_TZ):
        if kinds <= ACCEPTS[candidate]:
            notes = {"percent": True} if candidate == PERCENT else {}
            return Decision(candidate, reason="every value converts", notes=notes)
    if kinds == {"c"}:
        return Decision(CURRENCY, scale=max(2, scale or 0), reason="currency", notes={"currency": True})
    if kinds == {"du"}:
        return _date_decision(dates)
    return Decision(TEXT, reason="mixed kinds of values: " + ", ".join(sorted(kinds)))


def _markers_only(markers: tuple[str, ...]) -> Decision:
    """A column without a value of any kind: NULL throughout when its cells are missing-value
    markers, unless a marker may be a flag (see ``flag_like``), which is kept as published."""
    if not markers:
        return Decision(TEXT, reason="no values")
    flags = [m.strip() for m in markers if flag_like(m)]
    if flags:
        return Decision(TEXT, reason=f"only markers, {flags[0]!r} maybe a flag: kept as text")
    return Decision(MISSING, reason="only missing-value markers: all NULL")


def flag_like(marker: str) -> bool:
    """A marker of one character or of symbols only (``x``, ``*``, ``-``): in a column of nothing
    else it may mark rows (a check mark beside empty cells, a footnote), which NULL would erase."""
    text = marker.strip()
    return len(text) <= 1 or not any(c.isalnum() for c in text)


# A day-first column shows a first part above 12 in about 60% of its dates; a US column with a
# few typos, in a handful. Below this share the column is kept as text rather than guessed.
DAY_FIRST_SHARE = 0.05


def _date_decision(dates: list[int | None] | None) -> Decision:
    first, second, above, total = [*(dates or []), None, None, None, None][:4]
    if first is not None and first > 12 and (second is None or second <= 12):
        if above is not None and total and above < DAY_FIRST_SHARE * total:
            return Decision(
                TEXT,
                reason=f"US dates but {above:,} of {total:,} with a first part above 12: kept as text"
                " (--type COLUMN=date or date_dmy to choose)",
            )
        return Decision(DATE_DMY, reason="day-first dates (a first part above 12)")
    if (first or 0) <= 12:
        return Decision(DATE_US, reason="US dates (MM/DD/YYYY)")
    return Decision(TEXT, reason="neither MM/DD/YYYY nor DD/MM/YYYY")


# The fast path: SQL that recognises the common, canonical spelling of a value of each kind and
# converts it. It may refuse a good value (`+5`, ` 12 `, `1e3`, `0.50` with a leading space): those
# go to the exact slow path (``SlowPath``), which is Python and sees only what SQL refused.
_FAST_DOUBLE = r"-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?"
_FAST_DOUBLE_SEP = r"-?(0|[1-9][0-9]{0,14}|[1-9][0-9]{0,2}(,[0-9]{3}){1,4})(\.[0-9]{1,15})?"
_FAST_INT_SEP = r"-?(0|[1-9][0-9]{0,17}|[1-9][0-9]{0,2}(,[0-9]{3}){1,5})"
_TIMESTAMP_FORMATS = (
    *("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f"),
    *("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"),  # UTC, as APIs write it: the time as it is
)
_FAST_BOOL = {  # the usual spellings (yes, Yes, YES, ...); any other goes to the slow path
    spelling: truth
    for words, truth in ((BOOL_TRUE, True), (BOOL_FALSE, False))
    for word in words
    for spelling in (word, word.capitalize(), word.upper())
}
# With an offset (``%z``: -05:00, -0500, -05), DuckDB's answer is a TIMESTAMPTZ; with Z, UTC, a
# TIMESTAMP read in the connection's zone, UTC. Not in one list: a Z format after a ``%z`` one
# took the offset of the row before (DuckDB 1.x: ``...05+01:00`` then ``...05Z`` gave 02:05 UTC).
_ZONED_FORMATS = {
    zone: tuple(f"%Y-%m-%d{sep}{time}{zone}" for time in ("%H:%M:%S", "%H:%M:%S.%f", "%H:%M") for sep in "T ")
    for zone in ("%z", "Z")
}
_DATE_FORMATS = {DATE_US: "%m/%d/%Y", DATE_DMY: "%d/%m/%Y"}
_ISO_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d")
_BEYOND_MICROSECONDS = re.compile(r"\.[0-9]{6}[0-9]*[1-9]")  # .1234567: a TIMESTAMP keeps 6 digits
_US_TIMESTAMP_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S%p", "%m/%d/%Y %I:%M%p")


def _fast_sql(c: str, decision: Decision) -> tuple[str, str]:
    """(test, value) in SQL for the quoted column ``c``: when the test holds, the value is exact.

    DuckDB computes a repeated sub-expression once, so test and value may share a TRY_CAST.
    """
    kind = decision.kind
    if kind == MISSING:  # no value converts: markers go to their counters, anything else to the slow path
        return "false", "CAST(NULL AS VARCHAR)"
    if kind == INT:
        x = f"TRY_CAST({_digit_led(c, signed=True)} AS BIGINT)"
        return f"{x}::VARCHAR = {c}", x  # the canonical spelling: no leading zero, sign or decimals
    if kind == INT_SEP:  # at most 18 digits: the CAST cannot overflow
        return f"regexp_full_match({c}, '{_FAST_INT_SEP}')", f"CAST(replace({c}, ',', '') AS BIGINT)"
    # The DOUBLE must give the number back (``double_keeps``): see ``_keeps_sql``.
    if kind == DOUBLE:
        return f"(regexp_full_match({c}, '{_FAST_DOUBLE}') AND {_keeps_sql(c)})", f"CAST({c} AS DOUBLE)"
    if kind == DOUBLE_SEP:
        x = f"replace({c}, ',', '')"
        return f"(regexp_full_match({c}, '{_FAST_DOUBLE_SEP}') AND {_keeps_sql(x)})", f"CAST({x} AS DOUBLE)"
    if kind == PERCENT:
        x = f"left({c}, -1)"
        return f"(regexp_full_match({c}, '{_FAST_DOUBLE}%') AND {_keeps_sql(x)})", f"CAST({x} AS DOUBLE)"
    if kind == CURRENCY:
        whole = 17 - decision.scale  # DECIMAL(18, scale) holds 18 - scale digits before the point
        pattern = rf"\$(0|[1-9][0-9]{{0,{whole}}}|[1-9][0-9]{{0,2}}(,[0-9]{{3}}){{1,{max(1, whole // 3)}}})"
        pattern += rf"(\.[0-9]{{1,{decision.scale}}})?" if decision.scale else ""
        return (
            f"regexp_full_match({c}, '{pattern}')",
            f"CAST(replace(substr({c}, 2), ',', '') AS {decision.sql_type})",  # negative amounts: slow path
        )
    if kind in (DATE_US, DATE_DMY):
        x = f"TRY_STRPTIME({_digit_led(c)}, '{_DATE_FORMATS[kind]}')"
        # %Y takes 1 to 4 digits, and 1/2/23 is not the year 23: a year below 1000 is left to the
        # slow path, which wants four digits (so 1/2/0023 still converts). A test on the text
        # (its fifth last character a slash) cost three times the parse itself.
        return f"{x} >= TIMESTAMP '1000-01-01'", f"CAST({x} AS DATE)"
    if kind == DATE_ISO:
        x = f"TRY_STRPTIME({_digit_led(c)}, {_sql_list(_ISO_DATE_FORMATS)})"
        return f"({x} IS NOT NULL AND length({c}) = 10)", f"CAST({x} AS DATE)"
    if kind == DATE_COMPACT:  # 2020123 parses, as 2020-12-03: eight digits only
        x = f"TRY_STRPTIME({_digit_led(c)}, '%Y%m%d')"
        return f"({x} IS NOT NULL AND length({c}) = 8)", f"CAST({x} AS DATE)"
    if kind == TIMESTAMP_US:
        x = f"TRY_STRPTIME({_digit_led(c)}, {_sql_list(_US_TIMESTAMP_FORMATS)})"
        return f"{x} >= TIMESTAMP '1000-01-01'", x  # a two-digit year: the slow path, as for dates
    if kind == TIMESTAMP:
        x = f"TRY_STRPTIME({_digit_led(c)}, {_sql_list(_TIMESTAMP_FORMATS)})"
        return f"{x} >= TIMESTAMP '1000-01-01'", x  # 23-01-02 12:00:00 is not the year 23: see the dates
    if kind == TIMESTAMP_TZ:
        offset, utc = (f"TRY_STRPTIME({_digit_led(c)}, {_sql_list(_ZONED_FORMATS[z])})" for z in ("%z", "Z"))
        x = f"coalesce({offset}, CAST({utc} AS TIMESTAMPTZ))"
        return f"{x} >= TIMESTAMPTZ '1000-01-01 00:00:00+00'", x  # a year below 1000: see the dates
    if kind == BOOL:
        cases = " ".join(f"WHEN '{k}' THEN {str(v).lower()}" for k, v in _FAST_BOOL.items())
        x = f"CASE {c} {cases} END"
        return f"{x} IS NOT NULL", x
    raise ValueError(f"no fast path for {kind}")


def _keeps_sql(text: str) -> str:
    """SQL: the DOUBLE of ``text``, a plain decimal, gives its number back (as ``double_keeps``
    decides). Up to 15 significant digits (16 characters with a sign or a point) always do; a longer
    one when it is the double's shortest spelling or its 16 or 17 digits, as a double printed in
    full is (``17.899999999999999``). Any other goes to the exact slow path."""
    d = f"TRY_CAST({text} AS DOUBLE)"
    printed = " OR ".join(f"printf('%.{n}g', {d}) = {text}" for n in (16, 17))
    return f"(length({text}) <= 16 OR CAST({d} AS VARCHAR) = {text} OR {printed})"


def _digit_led(c: str, *, signed: bool = False) -> str:
    """SQL: the text when it starts with a digit (or, ``signed``, a minus sign), else NULL.

    A date's parse that fails costs DuckDB ten times one that succeeds, an integer's cast four
    times (it writes the error it will not raise): a marker such as ``Not Available``, ``*``,
    ``--`` or ``(NA)`` is not even tried. Whatever is not tried goes on to the markers and the
    exact slow path (``benchmarks/typed_sql.py`` measures both).
    """
    # Sorting between '-' (or '0') and ':' is starting with one of those characters; least() and
    # nullif() would copy every long text.
    return f"CASE WHEN {c} < ':' AND {c} >= '{'-' if signed else '0'}' THEN {c} END"


def typed_sql(column: str, decision: Decision, slow_sql: str, counters: dict[str, str] | None = None) -> str:
    """SQL producing the column's typed value: the fast path; else NULL for a marker spelled as a
    key of ``counters`` ({spelling: sequence name}), counted by its sequence (a volatile
    ``nextval``: exact under parallel scans); else ``slow_sql``, the column's slow path (a call of
    a Python function) which turns markers into NULL and refuses any surprise. With ``counters``
    None (a probe that counts nothing) the spellings of ``decision.sql_spellings`` become NULL."""
    c = quote_ident(column)
    if decision.kind == TEXT:
        return c
    test, value = _fast_sql(c, decision)
    markers = ""
    if counters:
        markers = " ".join(
            f"WHEN {c} = '{_sql_quote(spelling)}' THEN"
            f" CAST(CASE WHEN nextval('{sequence}') < 0 THEN NULL END AS {decision.sql_type})"
            for spelling, sequence in counters.items()
        )
    elif counters is None and decision.sql_spellings:
        markers = f"WHEN {c} IN ({', '.join(_literal(v) for v in decision.sql_spellings)}) THEN NULL"
    # The fast test comes first: it is false or NULL for a NULL cell, and a CASE whose first branch
    # takes nearly every row costs DuckDB less (a 300 MB file: 1.15x the VARCHAR COPY's CPU, not 1.24x).
    return f"CASE WHEN {test} THEN {value} WHEN {c} IS NULL THEN NULL {markers} ELSE {slow_sql} END"


MAX_DOUBLE_DIGITS = 17  # significant digits that name one DOUBLE: any double prints back in 17


def double_keeps(text: str, real: float) -> bool:
    """Does the DOUBLE ``real`` keep the number ``text`` says? It does when it is that number exactly
    (``0.5``, ``9223372036854775808``), when the text is its shortest spelling (Python's ``repr``),
    or when printing it with the text's own significant digits gives the text's number back: always
    for 15 digits or fewer, and for ``17.899999999999999``, a double printed in full. A 20-digit
    whole number, ``12345678901234567`` (…568 as a DOUBLE), ``0.1234567890123456789`` or ``1e-400``
    (0 as a DOUBLE) would come back as other numbers: such a column stays text."""
    from decimal import Decimal

    number = Decimal(text)
    if number == Decimal(real) or number == Decimal(repr(real)):
        return True
    digits = len(number.normalize().as_tuple().digits)
    return digits <= MAX_DOUBLE_DIGITS and Decimal(format(real, f".{digits}g")) == number


class Surprise(ValueError):
    """A value that is neither a missing-value marker nor of its column's decided type."""

    def __init__(self, column: str, value: str) -> None:
        super().__init__(f"column {column}: {value[:80]!r} does not convert")
        self.column, self.value = column, value


def python_value(decision: Decision, value: str) -> Any:
    """The typed value of one trimmed, non-missing text, exactly as the fast SQL path would give it.

    Raises ValueError (or ArithmeticError) when the text does not convert without loss.
    """
    from datetime import date, datetime
    from decimal import Decimal

    kind = decision.kind
    if kind in (INT, INT_SEP):
        number = int(value.replace(",", "") if kind == INT_SEP else value)
        if not -(2**63) <= number < 2**63:
            raise ValueError("out of BIGINT range")
        return number
    if kind in (DOUBLE, DOUBLE_SEP, PERCENT):
        text = value.rstrip("%").rstrip() if kind == PERCENT else value.replace(",", "")
        number, flag = split_flag(text)
        text = number if flag else text
        real = float(text)
        if real != real or real in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        if decision.reason != "override" and not double_keeps(text, real):  # the user's DOUBLE may round
            raise ValueError("more digits than a DOUBLE keeps")
        return real
    if kind == CURRENCY:
        negative = value.startswith("(") and value.endswith(")")  # ($1,234.00): accounting's minus
        amount = Decimal(value.strip("()").replace("$", "").replace(",", "").replace(" ", ""))
        amount = -amount if negative else amount
        if not amount.is_finite() or amount.as_tuple().exponent < -decision.scale:  # type: ignore[operator]
            raise ValueError("more decimals than the column keeps")
        if abs(amount) >= Decimal(10) ** (18 - decision.scale):
            raise ValueError("out of DECIMAL range")
        return amount
    if kind in (DATE_US, DATE_DMY):
        return datetime.strptime(value, _DATE_FORMATS[kind]).date()
    if kind == DATE_ISO:
        return date.fromisoformat(value.replace("/", "-"))
    if kind == DATE_COMPACT:
        if len(value) != 8 or not value.isdigit():  # strptime reads 2020123 as 2020-12-03
            raise ValueError("not yyyymmdd")
        return datetime.strptime(value, "%Y%m%d").date()  # the class allows one separator or the other
    if kind == TIMESTAMP_US:
        for spelling in _US_TIMESTAMP_FORMATS:
            try:
                stamp = datetime.strptime(value.upper(), spelling)
            except ValueError:
                continue
            if len(value.split(" ")[0].split("/")[2]) != 4:
                raise ValueError("a year of two digits")
            return stamp
        raise ValueError("not a US timestamp")
    if kind == TIMESTAMP:
        if _BEYOND_MICROSECONDS.search(value):  # fromisoformat would silently drop the digits past the 6th
            raise ValueError("finer than a microsecond")
        stamp = datetime.fromisoformat(value.removesuffix("Z"))  # Z: UTC, kept as the time it says
        if stamp.tzinfo is not None:
            raise ValueError("a time zone")
        return stamp
    if kind == TIMESTAMP_TZ:
        if _BEYOND_MICROSECONDS.search(value):
            raise ValueError("finer than a microsecond")
        stamp = datetime.fromisoformat(value)  # Z too (Python 3.11); a year of four digits only
        if stamp.tzinfo is None:
            raise ValueError("no time zone")
        return stamp
    if kind == BOOL:
        lowered = value.lower()
        if lowered in BOOL_TRUE or lowered in BOOL_FALSE:
            return lowered in BOOL_TRUE
        raise ValueError("not a boolean")
    raise ValueError(f"no conversion for {kind}")


@dataclass
class SlowPath:
    """The exact conversion of the values the fast SQL path refused, one column's worth.

    Called by DuckDB (a Python scalar function) on those values only, which on health data are
    mostly missing-value markers: each is counted as published (trimmed) and becomes NULL. A value
    of another kind raises ``Surprise`` (in ``strict`` mode, which aborts the scan) or is recorded.
    """

    column: str
    decision: Decision
    strict: bool = True
    markers: dict[str, int] = field(default_factory=dict)
    surprises: int = 0
    example: str | None = None  # the first value that surprised it, for the error message
    # DuckDB calls the function from several threads: a count (get, then set) must not interleave.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, marker: str, n: int = 1) -> None:
        with self._lock:
            self.markers[marker] = self.markers.get(marker, 0) + n

    def __call__(self, text: str | None) -> Any:
        if text is None:
            return None
        value = text.strip()
        if not value:
            return None
        # In a column of markers only, a flag-like one (``*``) the sample did not show is a surprise:
        # the column is decided again from all its values rather than the flag made NULL.
        maybe_flag = self.decision.kind == MISSING and flag_like(value)
        # In a yes/no column, an "Unknown" the sample did not show is an answer: a surprise too.
        override = self.decision.reason == "override"  # the user asked: any value that converts will do
        answer = self.decision.kind == BOOL and not override and value.lower() in BOOL_ANSWERS
        if value.lower() in _MARKER_SET and not maybe_flag and not answer:
            self.count(value)
            return None
        _number, flag = split_flag(value)
        if flag and self.decision.kind in (DOUBLE, DOUBLE_SEP):
            self.count(flag)  # counted like a marker, the number kept
        if override or classify_value(value) in ACCEPTS[self.decision.kind]:
            try:
                return python_value(self.decision, value)
            except (ValueError, ArithmeticError):
                pass
        with self._lock:
            self.surprises += 1
            self.example = self.example or value
        if self.strict:
            raise Surprise(self.column, text)
        return None


def split_flag(value: str) -> tuple[str, str | None]:
    """``("12.3", "(Unreliable)")`` for a number followed by a flag (``FLAGS``), else ``(value, None)``."""
    lowered = value.lower()
    for flag in FLAGS:
        if lowered.endswith(flag):
            return value[: -len(flag)].rstrip(), value[-len(flag) :]
    return value, None


def nested_text_sql(expr: str, type_: Any, depth: int = 0) -> str | None:
    """SQL giving the nested value ``expr`` (of DuckDB type ``type_``: a STRUCT, a list) with two
    kinds of field made text, as a top-level column would be: one DuckDB typed JSON (a key holding
    strings here and numbers there, a ZIP as "02115" and 2115: its text, unquoted) and a whole
    number under an identifier's name (a nested ``npi``). None when no field inside is either."""
    kind = type_.id
    if kind == "struct":
        fields, changed = [], False
        for name, child in type_.children:
            field_sql = f"{expr}.{quote_ident(name)}"
            text = _field_text_sql(field_sql, name, child, depth)
            changed = changed or text is not None
            fields.append(f"{quote_ident(name)} := {text or field_sql}")
        if not changed:
            return None
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE struct_pack({', '.join(fields)}) END"
    if kind == "list":
        item = f"liberacion_item_{depth}"
        inner = nested_text_sql(item, type_.children[0][1], depth + 1)
        return None if inner is None else f"list_transform({expr}, lambda {item}: {inner})"
    return None


def _field_text_sql(expr: str, name: str, type_: Any, depth: int) -> str | None:
    if str(type_) == "JSON":  # a VARCHAR to ``id``: its name tells it
        return f"json_extract_string({expr}, '$')"
    if type_.id in ("bigint", "integer", "smallint", "tinyint", "ubigint", "uinteger", "hugeint"):
        return f"CAST({expr} AS VARCHAR)" if is_identifier_name(snake_case(name, 1, set())) else None
    return nested_text_sql(expr, type_, depth + 1)


# Types a reader may hand over (DuckDB's JSON reader, a Parquet download, a SAS time variable) that
# common Parquet readers cannot read: Spark refuses a whole file holding a UUID, a TIME, an
# INTERVAL or a TIMESTAMP_NS anywhere in it, pandas a list of UUIDs, pyiceberg a JSON or a
# nanosecond column and an unsigned 64-bit number beyond BIGINT. They are stored as their text (as
# a CSV's are), lossless and readable by all; unsigned 32-bit numbers as BIGINT, which holds them.
_UNPORTABLE = frozenset({"uuid", "time", "time with time zone", "interval", "timestamp_ns", "ubigint"})
UNPORTABLE_NAMES = re.compile(r"\b(UUID|TIME|INTERVAL|JSON|TIMESTAMP_NS|UBIGINT|UINTEGER)\b")  # in a type's text


def portable_type(type_: Any) -> str | None:
    """The SQL type to store a column of DuckDB type ``type_`` as, so every common reader reads
    it: each unportable type inside it (``_UNPORTABLE``, and DuckDB's JSON) made VARCHAR. None
    when it is portable as it is."""
    kind = type_.id
    if kind in _UNPORTABLE or str(type_) == "JSON":
        return "VARCHAR"
    if kind == "uinteger":
        return "BIGINT"
    if kind == "struct":
        fields = [(name, portable_type(child)) for name, child in type_.children]
        if all(p is None for _, p in fields):
            return None
        kids = [p or str(child) for (_, p), (_, child) in zip(fields, type_.children)]
        return f"STRUCT({', '.join(f'{quote_ident(n)} {k}' for (n, _), k in zip(fields, kids))})"
    if kind == "list":
        inner = portable_type(type_.children[0][1])
        return None if inner is None else f"{inner}[]"
    if kind == "map":
        (_, key), (_, value) = type_.children
        k, v = portable_type(key), portable_type(value)
        return None if k is None and v is None else f"MAP({k or key}, {v or value})"
    return None


def text_view(column: str, sql_type: str) -> str:
    """SQL: a typed column as the text it was published as, for ``--raw`` and ``--type`` on a
    column a reader already typed. Whole numbers stored as doubles (SAS, Stata, SPSS, JSON) read
    ``12``, not ``12.0``; nested values are JSON text."""
    c = quote_ident(column)
    base = sql_type.strip('"').split("(", 1)[0].upper()
    if base in ("DOUBLE", "FLOAT", "REAL"):
        whole = f"isfinite({c}) AND {c} = trunc({c}) AND abs({c}) < 9007199254740992"
        return f"CASE WHEN {whole} THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) ELSE CAST({c} AS VARCHAR) END"
    if base == "NULL":
        return "CAST(NULL AS VARCHAR)"
    if base == "JSON":  # a string as its text, not quoted; a number, an object or a list as JSON
        return f"json_extract_string({c}, '$')"
    if base.startswith(("STRUCT", "MAP", "UNION")) or sql_type.endswith("]"):
        return f"CAST(to_json({c}) AS VARCHAR)"
    return f"CAST({c} AS VARCHAR)"


def override(type_name: str) -> Decision:
    """A user's ``--type COLUMN=TYPE`` (or manifest ``[dataset.columns]``) as a decision."""
    kind = TYPE_NAMES.get(type_name.strip().lower())
    if kind is None:
        from liberacion.errors import UsageError

        known = ", ".join(sorted(TYPE_NAMES))
        raise UsageError(f"unknown column type {type_name!r}; use one of: {known}")
    return Decision(kind, scale=2 if kind == CURRENCY else 0, reason="override")


MAX_NAME = 60  # characters of a column name kept, unless that name is already taken (see snake_case)


def snake_case(name: str, position: int, taken: set[str]) -> str:
    """A column name as a unique, non-empty, ASCII snake_case identifier."""
    import unicodedata

    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text) if not text.isupper() else text
    whole = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    ident = whole[:MAX_NAME] or f"column_{position}"
    if ident[0].isdigit():
        ident, whole = f"_{ident}", f"_{whole}"
    if ident in taken and len(whole) > len(ident):
        # Two long names alike in their first 60 characters (NNDSS's "..., Cum 2020" and "..., Cum
        # 2020, flag"): the later one keeps its whole name, never a numbered stub (`_cum_2_2`).
        ident = whole
    unique, n = ident, 2
    while unique in taken:
        unique, n = f"{ident}_{n}", n + 1
    taken.add(unique)
    return unique
