"""File format names: one table of extensions, media types and listing labels.

Listings say what a file is in three unreliable ways (an extension, a media type, a free-text
label); ``normalize_format`` turns them into one lower-case name. The converter reads bytes, not
names: ``reader_format`` maps a name to the reader that takes it.
"""

from __future__ import annotations

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
    ".htm": "html",
    ".html": "html",
    ".aspx": "html",
    ".gz": "gz",
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
}


def normalize_format(url: str | None, media_type: str | None = None, label: str | None = None) -> str | None:
    """The file format, lower-case. The URL's extension wins because publishers' ``mediaType`` is
    often wrong (CMS labels .csv files application/vnd.ms-excel); then the label, then the type."""
    if url:
        path = urlsplit(url).path.lower()
        if path.endswith((".json.zip", ".csv.zip")):
            return "zip"
        for suffix in (path[path.rfind(".") :],) if "." in path.rsplit("/", 1)[-1] else ():
            if suffix in _EXTENSIONS:
                return _EXTENSIONS[suffix]
    if label:
        key = label.strip().lower()
        if key in _LABELS:
            return _LABELS[key]
        if key in _MEDIA_TYPES:  # CKAN puts media types in "format"
            return _MEDIA_TYPES[key]
    if media_type:
        key = media_type.split(";", 1)[0].strip().lower()
        if key in _MEDIA_TYPES:
            return _MEDIA_TYPES[key]
    return None


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
