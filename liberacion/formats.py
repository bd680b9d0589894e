"""File format names: one table of extensions, media types and listing labels.

Listings say what a file is in three unreliable ways (an extension, a media type, a free-text
label); ``normalize_format`` turns them into one lower-case name. The converter reads bytes, not
names: ``reader_format`` maps a name to the reader that takes it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "txt",
    ".zip": "zip",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".geojson": "geojson",
    ".xlsx": "xlsx",
    ".xls": "xls",
    ".xpt": "xpt",
    ".xml": "xml",
    ".rdf": "rdf",
    ".pdf": "pdf",
    ".parquet": "parquet",
    ".sas7bdat": "sas7bdat",
    ".ods": "ods",
    ".dta": "dta",
    ".sav": "sav",
    ".gz": "gz",
    # Not data: web pages and scripts that answer with one, documents, feeds, pictures.
    ".htm": "html",
    ".html": "html",
    ".shtml": "html",
    ".xhtml": "html",
    ".asp": "html",
    ".aspx": "html",
    ".cfm": "html",
    ".php": "html",
    ".jsp": "html",
    ".cgi": "html",
    ".doc": "doc",
    ".docx": "docx",
    ".rtf": "rtf",
    ".ppt": "ppt",
    ".pptx": "pptx",
    ".rss": "rss",
    ".atom": "atom",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".gif": "image",
    ".svg": "image",
    ".tif": "image",
    ".tiff": "image",
    ".kml": "kml",
    ".kmz": "kmz",
}
_MEDIA_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "text/tab-separated-values": "tsv",
    "text/plain": "txt",
    "application/zip": "zip",
    "application/x-zip-compressed": "zip",
    "application/json": "json",
    "application/geo+json": "geojson",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-excel": "xls",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/rdf+xml": "rdf",
    "application/pdf": "pdf",
    "text/html": "html",
    "application/html": "html",
    "application/xhtml+xml": "html",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/rtf": "rtf",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/rss+xml": "rss",
    "application/atom+xml": "atom",
    "image/png": "image",
    "image/jpeg": "image",
    "image/gif": "image",
    "image/svg+xml": "image",
    "image/tiff": "image",
    "application/vnd.google-earth.kml+xml": "kml",
    "application/vnd.google-earth.kmz": "kmz",
    "application/vnd.pmi.widget": "widget",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/x-stata": "dta",
    "application/x-stata-dta": "dta",
    "application/x-spss-sav": "sav",
    "application/x-sas-data": "sas7bdat",
    "application/vnd.apache.parquet": "parquet",
    "application/x-sas-xport": "xpt",
    "application/gzip": "gz",
}
_LABELS = {
    "api": "api",
    "csv": "csv",
    "zipped csv": "zip",
    "zip": "zip",
    "zipped txt": "zip",
    "json": "json",
    "xml": "xml",
    "rdf": "rdf",
    "excel": "xlsx",
    "xlsx": "xlsx",
    "xls": "xls",
    "pdf": "pdf",
    "html": "html",
    "xpt": "xpt",
    "sas xport": "xpt",
    "tsv": "tsv",
    "txt": "txt",
    "jsonl": "jsonl",
    "parquet": "parquet",
    "ods": "ods",
    "dta": "dta",
    "sav": "sav",
    "sas7bdat": "sas7bdat",
    "word": "docx",
    "docx": "docx",
    "doc": "doc",
    "powerpoint": "pptx",
    "pptx": "pptx",
    "rss": "rss",
    "rss+xml": "rss",
    "atom": "atom",
    "interactive on-screen": "html",
    "interactive on-line": "html",
    "on-screen text": "html",
    "widget": "widget",
}
# A media type may say more than a generic extension: an RSS feed is served as ``rss.xml``.
_REFINES = {("xml", "rss"), ("xml", "atom")}


def normalize_format(url: str | None, media_type: str | None = None, label: str | None = None) -> str | None:
    """The file format, lower-case. The URL's extension wins because publishers' ``mediaType`` is
    often wrong (CMS labels .csv files application/vnd.ms-excel); then the label, then the type.
    A feed's media type refines a generic ``.xml``."""
    by_extension = extension_format(url)
    if by_extension is not None:
        typed = _by_type(media_type) or _by_type(label)
        return typed if (by_extension, typed) in _REFINES else by_extension
    if label:
        key = label.strip().lower()
        if key in _LABELS:
            return _LABELS[key]
        if key in _MEDIA_TYPES:  # CKAN puts media types in "format"
            return _MEDIA_TYPES[key]
    return _by_type(media_type)


def extension_format(url: str | None) -> str | None:
    """The format the URL's own file name says (``.csv``, ``.htm``...), None without a known one."""
    if not url:
        return None
    path = urlsplit(url).path.lower()
    if path.endswith((".json.zip", ".csv.zip")):
        return "zip"
    name = path.rsplit("/", 1)[-1]
    if "." not in name:
        return None
    return _EXTENSIONS.get(name[name.rfind(".") :])


def _by_type(media_type: str | None) -> str | None:
    if not media_type:
        return None
    return _MEDIA_TYPES.get(media_type.split(";", 1)[0].strip().lower())


# Names as the converter's readers know them (delimited text is one reader whatever the delimiter).
_READERS = {
    "csv": "text", "tsv": "text", "txt": "text", "ndjson": "jsonl", "json-lines": "jsonl", "gzip": "gz", "sas": "xpt",
}  # fmt: skip


def reader_format(name: str | None) -> str | None:
    """The converter's name for a format from a listing, a manifest or a user (None: sniff the bytes)."""
    if not name:
        return None
    key = name.lower().strip().lstrip(".")
    key = _LABELS.get(key, key)
    return _READERS.get(key, key)


JSON_ERROR_MAX = 64 * 1024  # a JSON body bigger than this is data, not an error message


def is_json_error(data: bytes) -> bool:
    """A small JSON object such as ``{"error": ...}``: an API's answer where data was expected."""
    if len(data) > JSON_ERROR_MAX or not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return False
    try:
        document: Any = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    if not isinstance(document, dict) or {"results", "data", "meta", "rows"} & document.keys():
        return False
    if "error" in document or "errors" in document:
        return True
    return "message" in document and bool(document.keys() & {"code", "status"})
