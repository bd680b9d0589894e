"""The typing rules: which text cells are missing values, which columns are identifiers, and how
a column of text becomes BIGINT, DOUBLE, DECIMAL, DATE, TIMESTAMP or BOOLEAN without loss.

Everything here produces DuckDB SQL over a relation whose columns are VARCHAR, so that typing
runs at DuckDB's speed. Extend the tables below; every rule is tested in tests/test_typing.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Cells that mean "no value" in HHS files (compared trimmed and lower-cased). In a column that
# becomes typed they turn into NULL and are counted; in a text column they are kept as published.
MISSING_MARKERS: tuple[str, ...] = (
    "not available", "not applicable", "n/a", "na", "n.a.", "nan", "null", "none", "missing", "unknown",
    "*", "**", "***", "-", "--", "---", ".", "~", "suppressed", "too few to report", "not reported",
    "no data", "data not available", "(s)", "(na)", "(x)", "(d)", "(z)", "(nr)", "nr", "nd", "x",
)  # fmt: skip

# Columns whose names say they hold codes keep text, whatever their values look like: a ZIP or
# FIPS code is an identifier, not a number. Matched against the snake_case column name.
IDENTIFIER_NAMES = re.compile(
    r"(^|_)(zip|zipcode|zip5|zip4|zip_code|postal|postal_code|fips|fips_code|countyfips|statefips|geoid"
    r"|npi|ccn|ndc|ndc_code|product_ndc|package_ndc|labeler_code|phone|telephone|fax|tin|ein|ssn|hcpcs"
    r"|cpt|icd|icd10|drg|naics|tract|census_tract|cms_certification_number|certification_number)(_|$)"
    r"|(^|_)(facility|provider|hospital|organization|org|supplier|practice|group|nursing_home|agency|payer"
    r"|plan|contract|recipient|physician|pi|entity|labeler|device|report|record|case|patient)_?(id|number"
    r"|num|no|code|ccn|npi)(_|$)"
    r"|(^|_)(id|identifier)$"
)

# The kinds a column of text can be, in order of preference. Each has a SQL test that is true when a
# (trimmed, non-missing) value converts without loss, and the SQL that converts it.
INT, INT_SEP, DOUBLE, DOUBLE_SEP, CURRENCY, PERCENT = "int", "int_sep", "double", "double_sep", "currency", "percent"
DATE_US, DATE_DMY, DATE_ISO, TIMESTAMP, BOOL, TEXT = "date_us", "date_dmy", "date_iso", "timestamp", "bool", "text"

_NUM = r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?"
_NUM_SEP = r"[-+]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?"
_CLASSES: tuple[tuple[str, str], ...] = (
    # class code, regular expression (a full match) — the classification of one value
    ("z", r"[-+]?0[0-9]+"),  # a leading zero: an identifier, never a number
    ("i", r"[-+]?[0-9]+"),
    ("is", r"[-+]?[0-9]{1,3}(,[0-9]{3})+"),
    ("d", _NUM),
    ("ds", _NUM_SEP),
    ("c", r"-?\$ *-?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?"),
    ("p", r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+) *%"),
    ("du", r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}"),
    ("di", r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    ("ts", r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"),
    ("b", r"(?i)(yes|no|y|n|true|false)"),
)
BOOL_TRUE = ("yes", "y", "true")
BOOL_FALSE = ("no", "n", "false")
_MARKER_SET = frozenset(MISSING_MARKERS)
_PY_CLASSES = tuple((code, re.compile(pattern)) for code, pattern in _CLASSES)
FINAL_CLASSES = frozenset({"t", "z"})  # once seen, the column is text whatever else it holds
TYPE_NAMES = {
    "string": TEXT, "text": TEXT, "varchar": TEXT, "str": TEXT,
    "integer": INT_SEP, "int": INT_SEP, "bigint": INT_SEP, "long": INT_SEP,
    "double": DOUBLE_SEP, "float": DOUBLE_SEP, "number": DOUBLE_SEP, "real": DOUBLE_SEP, "numeric": DOUBLE_SEP,
    "decimal": CURRENCY, "money": CURRENCY,
    "date": DATE_US, "date_dmy": DATE_DMY, "date_iso": DATE_ISO,
    "timestamp": TIMESTAMP, "datetime": TIMESTAMP,
    "boolean": BOOL, "bool": BOOL, "percent": PERCENT,
}  # fmt: skip


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def trimmed(column: str) -> str:
    return f"trim({quote_ident(column)})"


def missing_test(column: str) -> str:
    """SQL: true when the cell is empty or a missing-value marker."""
    v = trimmed(column)
    return f"({v} IS NULL OR {v} = '' OR list_contains({_sql_list(MISSING_MARKERS)}, lower({v})))"


def class_histogram(column: str) -> str:
    """SQL aggregate: how many values of each class (see ``_CLASSES``; "t" is any other text)."""
    v = trimmed(column)
    whens = " ".join(f"WHEN regexp_full_match({v}, '{pattern}') THEN '{code}'" for code, pattern in _CLASSES)
    return f"histogram(CASE WHEN {missing_test(column)} THEN NULL {whens} ELSE 't' END)"


def classify_value(text: str) -> str | None:
    """The class of one published value (None for empty or a missing-value marker)."""
    value = text.strip()
    if not value or value.lower() in _MARKER_SET:
        return None
    for code, pattern in _PY_CLASSES:
        if pattern.fullmatch(value):
            return code
    return "t"


@dataclass
class Profile:
    """What the values of one column look like: counts per class and the evidence for dates/scale."""

    classes: dict[str, int] = field(default_factory=dict)
    dates: list[int | None] = field(default_factory=lambda: [None, None])
    scale: int = 0

    def add(self, text: str, count: int) -> bool:
        """Count a distinct value; returns False once the column can only be text."""
        code = classify_value(text)
        if code is None:
            return True
        self.classes[code] = self.classes.get(code, 0) + count
        value = text.strip()
        if code == "du":
            first, second = (int(p) for p in value.split("/")[:2])
            self.dates = [max(self.dates[0] or 0, first), max(self.dates[1] or 0, second)]
        elif code in ("d", "ds", "c", "p") and "." in value:
            self.scale = max(self.scale, len(value.split(".", 1)[1].rstrip("% ")))
        return code not in FINAL_CLASSES


def date_evidence(column: str) -> str:
    """SQL aggregate: the largest first and second parts of a/b/yyyy dates (which one is the day)."""
    v = trimmed(column)
    first = f"TRY_CAST(split_part({v}, '/', 1) AS INTEGER)"
    second = f"TRY_CAST(split_part({v}, '/', 2) AS INTEGER)"
    return f"[max({first}), max({second})]"


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

    @property
    def sql_type(self) -> str:
        return {
            INT: "BIGINT", INT_SEP: "BIGINT", DOUBLE: "DOUBLE", DOUBLE_SEP: "DOUBLE", PERCENT: "DOUBLE",
            CURRENCY: f"DECIMAL(18,{self.scale})", DATE_US: "DATE", DATE_DMY: "DATE", DATE_ISO: "DATE",
            TIMESTAMP: "TIMESTAMP", BOOL: "BOOLEAN", TEXT: "VARCHAR",
        }[self.kind]  # fmt: skip


def is_identifier_name(name: str) -> bool:
    return bool(IDENTIFIER_NAMES.search(name))


def decide(
    name: str, classes: dict[str, int], dates: list[int | None] | None = None, scale: int | None = None
) -> Decision:
    """The type of a column from the classes of *all* its values (or a sample's, to be validated)."""
    kinds = {k for k, n in classes.items() if n}
    if is_identifier_name(name):
        return Decision(TEXT, reason="identifier column name")
    if not kinds:
        return Decision(TEXT, reason="no values")
    if "z" in kinds:
        return Decision(TEXT, reason="values with leading zeros are identifiers")
    if "t" in kinds:
        return Decision(TEXT, reason="text values")
    for candidate, allowed in (
        (INT, {"i"}),
        (INT_SEP, {"i", "is"}),
        (DOUBLE, {"i", "d"}),
        (DOUBLE_SEP, {"i", "is", "d", "ds"}),
        (PERCENT, {"p"}),
        (BOOL, {"b"}),
        (DATE_ISO, {"di"}),
        (TIMESTAMP, {"ts", "di"}),
    ):
        if kinds <= allowed:
            notes = {"percent": True} if candidate == PERCENT else {}
            return Decision(candidate, reason="every value converts", notes=notes)
    if kinds == {"c"}:
        return Decision(CURRENCY, scale=max(2, scale or 0), reason="currency", notes={"currency": True})
    if kinds == {"du"}:
        return _date_decision(dates)
    return Decision(TEXT, reason="mixed kinds of values: " + ", ".join(sorted(kinds)))


def _date_decision(dates: list[int | None] | None) -> Decision:
    first, second = (dates or [None, None])[:2]
    if first is not None and first > 12 and (second is None or second <= 12):
        return Decision(DATE_DMY, reason="day-first dates (a first part above 12)")
    if (first or 0) <= 12:
        return Decision(DATE_US, reason="US dates (MM/DD/YYYY)")
    return Decision(TEXT, reason="neither MM/DD/YYYY nor DD/MM/YYYY")


def conforms(column: str, decision: Decision) -> str:
    """SQL: true when a non-missing value converts to the decided type without loss."""
    v = trimmed(column)
    kind = decision.kind
    if decision.reason == "override":  # the user asked for this type: any value that converts will do
        return f"{convert_sql(column, decision)} IS NOT NULL"
    if kind == INT:
        return f"TRY_CAST({v} AS BIGINT)::VARCHAR = ltrim({v}, '+')"
    if kind == INT_SEP:
        x = f"TRY_CAST(replace({v}, ',', '') AS BIGINT)"
        return f"({x}::VARCHAR = ltrim({v}, '+') OR format('{{:,}}', {x}) = ltrim({v}, '+'))"
    if kind == DOUBLE:
        return f"regexp_full_match({v}, '{_NUM}')"
    if kind == DOUBLE_SEP:
        return f"(regexp_full_match({v}, '{_NUM}') OR regexp_full_match({v}, '{_NUM_SEP}'))"
    if kind == CURRENCY:
        return (
            f"regexp_full_match({v}, '-?\\$ *-?([0-9]{{1,3}}(,[0-9]{{3}})+|[0-9]+)(\\.[0-9]{{0,{decision.scale}}})?')"
        )
    if kind == PERCENT:
        return f"regexp_full_match({v}, '[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+) *%')"
    if kind == DATE_US:
        return f"TRY_STRPTIME({v}, '%m/%d/%Y') IS NOT NULL"
    if kind == DATE_DMY:
        return f"TRY_STRPTIME({v}, '%d/%m/%Y') IS NOT NULL"
    if kind == DATE_ISO:
        return f"(length({v}) = 10 AND TRY_CAST({v} AS DATE) IS NOT NULL)"
    if kind == TIMESTAMP:
        return f"TRY_CAST({v} AS TIMESTAMP) IS NOT NULL"
    if kind == BOOL:
        return f"list_contains(['yes', 'no', 'y', 'n', 'true', 'false'], lower({v}))"
    return "true"


def convert_sql(column: str, decision: Decision) -> str:
    """SQL producing the typed value; text stays exactly as published.

    Only used once every non-missing value is known to convert (``confirm_sql``), so a value that
    does not convert here is a missing-value marker and becomes NULL. Keeping the expressions free
    of marker tests keeps them cheap on files with hundreds of columns.
    """
    if decision.kind == TEXT:
        return quote_ident(column)
    v = trimmed(column)
    kind = decision.kind
    if kind == BOOL:
        cases = (
            " ".join(f"WHEN '{t}' THEN true" for t in BOOL_TRUE)
            + " "
            + " ".join(f"WHEN '{f}' THEN false" for f in BOOL_FALSE)
        )
        return f"CASE lower({v}) {cases} END"
    return {
        INT: f"TRY_CAST({v} AS BIGINT)",
        INT_SEP: f"TRY_CAST(replace({v}, ',', '') AS BIGINT)",
        # 'nan' is a missing-value marker: NaN cannot come from a confirmed number
        DOUBLE: f"nullif(TRY_CAST({v} AS DOUBLE), 'nan'::DOUBLE)",
        DOUBLE_SEP: f"nullif(TRY_CAST(replace({v}, ',', '') AS DOUBLE), 'nan'::DOUBLE)",
        CURRENCY: f"TRY_CAST(replace(replace(replace({v}, '$', ''), ',', ''), ' ', '') AS {decision.sql_type})",
        PERCENT: f"nullif(TRY_CAST(rtrim(rtrim({v}, '%')) AS DOUBLE), 'nan'::DOUBLE)",
        DATE_US: f"CAST(TRY_STRPTIME({v}, '%m/%d/%Y') AS DATE)",
        DATE_DMY: f"CAST(TRY_STRPTIME({v}, '%d/%m/%Y') AS DATE)",
        DATE_ISO: f"TRY_CAST({v} AS DATE)",
        TIMESTAMP: f"TRY_CAST({v} AS TIMESTAMP)",
    }[kind]


def _bad_and_marker(column: str, decision: Decision) -> tuple[str, str]:
    v = trimmed(column)
    bad = f"{quote_ident(column)} IS NOT NULL AND NOT coalesce({conforms(column, decision)}, false)"
    markers = ", ".join("'" + m.replace("'", "''") + "'" for m in MISSING_MARKERS)
    return bad, f"({v} = '' OR lower({v}) IN ({markers}))"


def confirm_sql(column: str, decision: Decision) -> str:
    """SQL aggregate over every value: how many are missing-value markers and how many other values
    do not convert to the decided type (which must be none for the type to stand).

    Both counts come packed in one BIGINT (markers + 2**32 * others; split them with
    ``unpack_counts``): one aggregate per column instead of two halves the cost on wide files, and
    the marker test runs only on values that failed the cheap conversion test.
    """
    bad, is_marker = _bad_and_marker(column, decision)
    return f"sum(CASE WHEN {bad} THEN CASE WHEN {is_marker} THEN 1 ELSE {2**32} END ELSE 0 END)"


def unpack_counts(packed: int | None) -> tuple[int, int]:
    """(markers, values that do not convert) from ``confirm_sql``'s packed sum."""
    value = int(packed or 0)
    return value & 0xFFFF_FFFF, value >> 32


def marker_histogram_sql(column: str, decision: Decision) -> str:
    """SQL aggregate: each missing-value marker (as published, trimmed) and how often it occurs."""
    bad, is_marker = _bad_and_marker(column, decision)
    v = trimmed(column)
    return f"histogram(CASE WHEN {bad} THEN CASE WHEN {v} <> '' AND {is_marker} THEN {v} END END)"


def override(type_name: str) -> Decision:
    """A user's ``--type COLUMN=TYPE`` (or manifest ``[dataset.columns]``) as a decision."""
    kind = TYPE_NAMES.get(type_name.strip().lower())
    if kind is None:
        from liberacion.errors import UsageError

        known = ", ".join(sorted(TYPE_NAMES))
        raise UsageError(f"unknown column type {type_name!r}; use one of: {known}")
    return Decision(kind, scale=2 if kind == CURRENCY else 0, reason="override")


def snake_case(name: str, position: int, taken: set[str]) -> str:
    """A column name as a unique, non-empty, ASCII snake_case identifier."""
    import unicodedata

    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text) if not text.isupper() else text
    ident = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or f"column_{position}"
    if ident[0].isdigit():
        ident = f"_{ident}"
    unique, n = ident, 2
    while unique in taken:
        unique, n = f"{ident}_{n}", n + 1
    taken.add(unique)
    return unique
