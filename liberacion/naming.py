"""Names liberacion makes and checks: dataset ids, SQL identifiers, table names, quoting.

Everything that comes from a listing or a file (a title, a remote id, a header) passes through
here before it becomes part of a ref, a path or a SQL statement.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import unicodedata

from liberacion.errors import UsageError

MAX_ID_LENGTH = 120
# Schemas DuckDB or liberacion itself own: a catalog may never take these names.
# ``memory`` is DuckDB's in-memory database and ``lake`` the name the views database is attached as.
RESERVED_SCHEMAS = frozenset(
    {"main", "memory", "temp", "system", "lake", "liberacion", "information_schema", "pg_catalog"}
)
MAX_IDENTIFIER = 63
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_STRICT_NAME = re.compile(r"[A-Za-z0-9_]+\.[A-Za-z0-9_]+")


def utf8_text(value: str, *, path: bool = False) -> str:
    """``value`` when it is UTF-8 text. Bytes that are not (Latin-1 in a script, a file named on
    an old system) reach Python as lone surrogates, which DuckDB and every file liberacion writes
    refuse later with a traceback-shaped error: refused here instead, in one line."""
    try:
        raw = os.fsencode(value)  # the bytes as typed
    except UnicodeEncodeError:  # text from Python code that this locale cannot name a file with
        value.encode("utf-8")  # a lone surrogate raises as before; anything else is text
        return value
    try:
        typed = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        shown = raw.decode("utf-8", "backslashreplace")
        if os.path.lexists(value):
            raise ValueError(f"{shown}: its name is not UTF-8 (byte {err.start}); rename it") from None
        if path:
            raise ValueError(f"{shown}: the name is not UTF-8 (byte {err.start}); choose a UTF-8 name") from None
        raise ValueError(f"it is not UTF-8 text (byte {err.start})") from None
    if typed == value:
        return value
    # UTF-8 as typed, decoded by Python in the locale's encoding (``LC_ALL=C`` with ``PYTHONUTF8=0``,
    # a Latin-1 locale): text is taken as typed, but a file's name would reach DuckDB as other bytes.
    if not path and not os.path.lexists(value):
        return typed
    encoding = sys.getfilesystemencoding()
    raise ValueError(
        f"{typed}: Python reads file names as {encoding} here, not UTF-8: set PYTHONUTF8=1 (or a UTF-8 locale,"
        " LC_ALL=C.UTF-8)"
    )


def sanitize_identifier(text: str, *, fallback: str = "t") -> str:
    """Turn any text (a title, a remote id) into a safe lower-case SQL identifier and path part."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ident = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    if not ident:
        ident = fallback
    if ident[0].isdigit():
        ident = f"{fallback}_{ident}"
    return bounded(ident, text)


def bounded(ident: str, basis: str, limit: int = MAX_IDENTIFIER) -> str:
    """``ident`` cut to ``limit`` characters; a cut name ends with a short hash of ``basis``, so two
    names that agree in their first ``limit`` characters stay two names."""
    if len(ident) <= limit:
        return ident
    digest = hashlib.sha256(basis.encode("utf-8")).hexdigest()[:8]
    return ident[: limit - 9].rstrip("_") + "_" + digest


def parse_table_name(name: str) -> tuple[str, str]:
    """Split ``catalog.table`` (letters, digits, underscores) or raise a usage error."""
    if not _STRICT_NAME.fullmatch(name):
        msg = f"invalid table name {name!r}: use CATALOG.TABLE made of letters, digits and underscores"
        raise UsageError(msg)
    catalog, table = name.lower().split(".")
    if not IDENTIFIER.fullmatch(catalog) or not IDENTIFIER.fullmatch(table):
        msg = f"invalid table name {name!r}: each part must start with a letter or underscore"
        raise UsageError(msg)
    if catalog in RESERVED_SCHEMAS:
        raise UsageError(f"invalid table name {name!r}: the catalog name {catalog!r} is reserved")
    return catalog, table


def table_name(name: str) -> str:
    """``name`` checked and normalised to ``catalog.table``."""
    catalog, table = parse_table_name(name)
    return f"{catalog}.{table}"


def safe_id(text: str) -> str:
    """A dataset id that is safe in refs and paths: ``[a-z0-9._-]``, no leading/trailing dots."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    ident = re.sub(r"[^a-z0-9._-]+", "-", ascii_text)
    ident = re.sub(r"-{2,}", "-", ident).strip("-._")
    if len(ident) > MAX_ID_LENGTH:  # keep it unique when cut: a short hash of the whole text
        digest = hashlib.sha256(str(text).encode()).hexdigest()[:8]
        ident = ident[: MAX_ID_LENGTH - 9].rstrip("-._") + "-" + digest
    return ident or "d-" + hashlib.sha256(str(text).encode()).hexdigest()[:12]


def safe_catalog_name(text: str) -> str:
    """A catalog name usable as a SQL schema and a directory name."""
    name = sanitize_identifier(text, fallback="c")
    if name in RESERVED_SCHEMAS:
        raise ValueError(
            f"the catalog name {name!r} is reserved (DuckDB or liberacion uses that schema): choose another `name`"
        )
    return name


def quote_ident(name: str) -> str:
    """A SQL identifier, quoted: any text is safe inside."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# Query parameters that carry a secret (Socrata's ``$$app_token``, openFDA's ``api_key``, signed
# URLs): never stored or shown. A parameter is secret when its lower-cased name is one of these or
# ends with one of the suffixes.
_SECRET_PARAMS = frozenset({"key", "sig", "secret", "password", "passwd", "x-amz-credential"})
_SECRET_SUFFIXES = ("token", "api_key", "apikey", "secret", "password", "signature")
REDACTED = "***"


def is_secret_param(name: str) -> bool:
    from urllib.parse import unquote_plus

    lowered = unquote_plus(name).strip().lower()
    return lowered in _SECRET_PARAMS or lowered.endswith(_SECRET_SUFFIXES)


def redact_url(url: str) -> str:
    """``url`` as it may be stored or shown: no user info, secret query values replaced by ``***``.

    A URL with nothing secret comes back unchanged, character for character (it keys state files).
    The one redaction every stored record, message and output of liberacion goes through.
    """
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1] if "@" in parts.netloc else parts.netloc
    query = parts.query
    if query:
        pieces = query.split("&")
        for i, piece in enumerate(pieces):
            name, sep, _value = piece.partition("=")
            if sep and is_secret_param(name):
                pieces[i] = f"{name}={REDACTED}"
        query = "&".join(pieces)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def without_redacted(url: str) -> str:
    """``url`` without the secret parameters a redaction replaced by ``***``.

    A URL replayed from a stored record (``refresh``) lost its secret when it was stored; sending
    ``***`` would fail, so the parameter is left out and the token from the environment applies.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.query or REDACTED not in parts.query:
        return url
    kept = [p for p in parts.query.split("&") if not (p.endswith("=" + REDACTED) and is_secret_param(p.split("=")[0]))]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), parts.fragment))


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
    r"|^(number|safetyreportid|reportid|setid|spl_id)$"  # NPPES's NPI, FAERS's and SPL's ids (openFDA)
)
# ... unless the name says the column counts or measures something: "Number of ZIP codes", "Phone
# visits", "ICD-10 deaths", "Tract count" are quantities, named after what they count.
QUANTITY_NAMES = re.compile(
    r"(^|_)(number|num|count|total)_of(_|$)"
    r"|(^|_)(count|counts|total|totals|visits|deaths|cases|claims|calls|rate|rates|pct|percent|percentage"
    r"|share|amount|amt|population|sum|average|avg|mean|median|discharges|admissions|stays|encounters"
    r"|prescriptions|beneficiaries|enrollees|users|services)(_|$)"
)


def is_identifier_name(name: str) -> bool:
    """A snake_case column name that says the column holds codes (``zip_code``, ``npi``,
    ``provider_number``), not what it counts (``number_of_zip_codes``). Typing keeps such a
    column text; a terminal table shows its numbers without thousands separators."""
    return bool(IDENTIFIER_NAMES.search(name)) and not QUANTITY_NAMES.search(name)
