"""The format of a file, sniffed from its bytes: magic numbers first, then text heuristics.

A listing's label or a server's media type is only a hint (``mismatch`` says when the bytes
disagree with it); a file whose bytes match no reader is refused by ``unreadable``, never read as
an empty table.
"""

from __future__ import annotations

import codecs
import json
import zipfile
from pathlib import Path
from typing import Any

from liberacion.convert.json_document import holds_records
from liberacion.errors import ConversionError
from liberacion.formats import is_json_error

BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
SAS7BDAT_MAGIC = b"\x00" * 12 + b"\xc2\xea\x81\x60\xb3\x14\x11\xcf\xbd\x92\x08\x00\x09\xc7\x31\x8c\x18\x1f\x10\x11"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy Office (.xls, also .doc/.msg)
XPT_HEADERS = (
    b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!",  # XPORT v5 (NHANES)
    b"HEADER RECORD*******LIBV8   HEADER RECORD!!!!!!!",  # XPORT v8
)
ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"
JSON_FORMATS = frozenset({"json", "jsonl", "json-object", "openfda", "socrata-json", "geojson"})
STATISTICAL_FORMATS = frozenset({"xpt", "sas7bdat", "dta", "sav"})
WORKBOOK_FORMATS = frozenset({"xlsx", "xls", "ods"})
# What each sniffed format is called in messages.
NAMES = {
    "text": "delimited text", "json": "JSON", "jsonl": "JSON Lines", "json-object": "JSON", "openfda": "JSON",
    "socrata-json": "JSON", "xlsx": "Excel .xlsx", "xls": "Excel .xls", "ods": "OpenDocument .ods", "zip": "zip",
    "gz": "gzip", "xpt": "SAS transport", "sas7bdat": "SAS .sas7bdat", "dta": "Stata .dta", "sav": "SPSS .sav",
    "parquet": "Parquet", "html": "HTML",
}  # fmt: skip
READABLE = "CSV/TSV, JSON, JSON Lines, Excel (.xlsx, .xls), OpenDocument (.ods), SAS (.xpt, .sas7bdat), Stata, SPSS, Parquet, zip or gzip"  # noqa: E501


HEAD_BYTES = 64 * 1024  # what ``sniff`` reads of a file


def sniff(path: Path) -> str:
    """The format of a file from its bytes: ``unknown`` when no reader takes them."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(path)
    return sniff_head(head)


def sniff_head(head: bytes) -> str:
    """The format of a file that is not a zip from its first ``HEAD_BYTES`` (or all its bytes, when
    fewer): what ``sniff`` says of it."""
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(XPT_HEADERS):
        return "xpt"
    if head.startswith(SAS7BDAT_MAGIC):
        return "sas7bdat"
    if head.startswith(OLE2_MAGIC):
        return "xls"
    if head.startswith((b"$FL2", b"$FL3")):
        return "sav"
    if head.startswith(b"<stata_dta>") or _old_stata(head):
        return "dta"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(UTF16_BOMS) and not head.startswith(codecs.BOM_UTF32_LE):
        # Excel's "Unicode Text": UTF-16, which the BOM makes unambiguous; the readers transcode it.
        decoded = head[: len(head) // 2 * 2].decode("utf-16", "replace").encode("utf-8")
        return _sniff_text(decoded, whole=len(head) < HEAD_BYTES)
    return _sniff_text(head, whole=len(head) < HEAD_BYTES)


def _sniff_text(head: bytes, *, whole: bool) -> str:
    """The format of text (``whole``: ``head`` is the whole file)."""
    text = head
    while text.startswith(BOM):
        text = text[len(BOM) :]
    text = text.lstrip(b" \t\r\n")
    lower = text[:200].lower()
    if lower.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        lower.startswith(b"<") and b"<html" in lower
    ):
        return "html"
    if not _looks_like_text(head) or text.startswith((b"%PDF-", b"<")):
        return "unknown"  # binary, a PDF, or markup (XML, a docx's parts): no reader takes it
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "json-error" if is_json_error(head) else _sniff_json_object(text)
    if whole and _json_scalar(text) is not None:
        return "json-scalar"
    return "text"


def _json_scalar(text: bytes) -> str | None:
    """The file's text when all of it is one JSON number, string, true, false or null (what an
    API's count endpoint or an error returns): no records, and never a CSV header."""
    stripped = text.strip()
    if not stripped or stripped[:1] not in b'-0123456789"tfn':
        return None
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, (dict, list)):
        return None
    return stripped.decode("utf-8", "replace")


def _sniff_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            mimetype = zf.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return "zip"  # a zip's own header, but damaged or cut short: unpacking says how
    if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
        return "xlsx"
    if mimetype.strip() == ODS_MIME:
        return "ods"
    return "zip"


def _old_stata(head: bytes) -> bool:
    """Stata 102-115 (.dta before Stata 13): version, byte order, file type 1, a zero byte."""
    return len(head) >= 4 and 102 <= head[0] <= 115 and head[1] in (1, 2) and head[2] == 1 and head[3] == 0


def _looks_like_text(head: bytes) -> bool:
    """Almost no control character: text in some 8-bit or UTF-8 encoding. A few stray NUL bytes,
    each alone (real exports have them), are text; binary has runs of them, or many."""
    if not head.strip():
        return True  # empty: the text reader says so
    nuls = head.count(b"\x00")
    if nuls and (b"\x00\x00" in head or nuls > max(2, len(head) // 1000)):
        return False
    controls = sum(head.count(bytes([c])) for c in range(1, 32) if c not in (9, 10, 12, 13, 26))
    return controls <= max(2, len(head) // 200)  # a short file may hold one escape in a value


def _sniff_json_object(text: bytes) -> str:
    first = _json_object(text.split(b"\n", 1)[0])
    rest = text.split(b"\n", 1)[1].lstrip() if b"\n" in text else b""
    if first is not None and not rest.startswith(b"{") and holds_records(first):
        return "json-object"  # a whole {meta, results} document on one line (as APIs answer)
    if (first is not None and (rest.startswith(b"{") or not rest)) or _json_lines(text):
        return "jsonl"
    head = text[:4096]
    if b'"view"' in head and b'"meta"' in head:
        return "socrata-json"
    return "json-object"


SNIFF_LINES = 20  # of a file starting with "{", read to tell JSON Lines from one document


def _json_lines(text: bytes) -> bool:
    """JSON Lines with a bad line among its first (``{"a": 0}``, ``not json here``, then records):
    most of the first lines are each a JSON object. An indented document's lines are not (``{``,
    ``"a": 1,``), nor are those of one object a line inside a list (``{"type": "Feature"...},``)."""
    lines = [line for line in text.split(b"\n")[:-1] if line.strip()][:SNIFF_LINES]  # the last may be cut
    return len(lines) >= 3 and 2 * sum(_json_object(line) is not None for line in lines) > len(lines)


def _json_object(line: bytes) -> dict[str, Any] | None:
    """The line as a JSON object, or None when it is not one."""
    try:
        value = json.loads(line.strip())
    except (ValueError, RecursionError):  # RecursionError: nested too deep to decode here
        return None
    return value if isinstance(value, dict) else None


def mismatch(label: str | None, hint: str | None, content: str) -> str | None:
    """``"labelled xlsx, content csv"`` when a listing's label disagrees with the bytes, else None."""
    if not label or not hint or hint == content:
        return None
    if hint in JSON_FORMATS and content in JSON_FORMATS:
        return None
    if label.strip().lower() in ("excel", "spreadsheet") and content in WORKBOOK_FORMATS:
        return None
    shown = {"text": "csv"}.get(content, content)
    return f"labelled {label.strip().lower()}, content {shown}"


def start_of(path: Path, size: int = 24) -> str:
    """The first bytes of a file, shown printable (for error messages)."""
    with open(path, "rb") as fh:
        head = fh.read(size)
    return repr(head)[2:-1] if head else "nothing: it is empty"


def unreadable(path: Path) -> ConversionError:
    return ConversionError(f"cannot read {path.name}: it is not {READABLE} (it starts with {start_of(path)})")


def refuse_unreadable(path: Path, fmt: str) -> None:
    """``ConversionError`` for a file ``sniff`` found no reader for: an HTML page, an API's error
    message, anything else; nothing for a format a reader takes."""
    if fmt == "html":
        raise ConversionError(f"{path.name} is an HTML page, not data (it starts with {_start_text(path, 120)!r})")
    if fmt == "json-error":
        raise ConversionError(f"{path.name} holds an error message, not data: {_start_text(path, 160)!r}")
    if fmt == "json-scalar":
        raise ConversionError(
            f"{path.name} holds no records: it is a single JSON value ({_start_text(path, 60)}), not a list of objects"
        )
    if fmt == "unknown":
        raise unreadable(path)


def _start_text(path: Path, limit: int) -> str:
    with open(path, "rb") as fh:
        return " ".join(fh.read(300).decode("utf-8", "replace").split())[:limit]
