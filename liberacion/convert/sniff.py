"""The format of a file, sniffed from its bytes: never trusted from a name or a server's media type."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from liberacion.errors import ConversionError


def sniff(path: Path) -> str:
    """The format of a file from its first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        return "xlsx" if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names) else "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gz"
    if head.startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD"):
        return "xpt"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    lower = text[:200].lower()
    if lower.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        lower.startswith(b"<") and b"<html" in lower
    ):
        return "html"
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return _sniff_json_object(text)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    return "text"


def _sniff_json_object(text: bytes) -> str:
    first_line = text.split(b"\n", 1)[0].strip()
    try:
        first = json.loads(first_line)
        if isinstance(first, dict) and any(isinstance(first.get(k), list) for k in ("results", "data")):
            return "json-object"  # a whole {meta, results} document on one line
        rest = text.split(b"\n", 1)[1].lstrip() if b"\n" in text else b""
        if rest.startswith(b"{") or not rest:
            return "jsonl"
    except ValueError:
        pass
    head = text[:4096]
    if b'"view"' in head and b'"meta"' in head:
        return "socrata-json"
    return "json-object"


def _html_error(path: Path) -> ConversionError:
    with open(path, "rb") as fh:
        start = " ".join(fh.read(300).decode("utf-8", "replace").split())[:120]
    return ConversionError(f"{path.name} is an HTML page, not data (it starts with {start!r})")
