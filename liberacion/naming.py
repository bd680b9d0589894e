"""Names liberacion makes and checks: dataset ids, SQL identifiers, table names, quoting.

Everything that comes from a listing or a file (a title, a remote id, a header) passes through
here before it becomes part of a ref, a path or a SQL statement.
"""

from __future__ import annotations

import hashlib
import re
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
        raise ValueError(f"the catalog name {name!r} is reserved")
    return name


def quote_ident(name: str) -> str:
    """A SQL identifier, quoted: any text is safe inside."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
