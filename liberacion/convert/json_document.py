"""Where a JSON document keeps its list of records, found without parsing the list.

openFDA's ``{meta, results}`` and Socrata's ``rows.json`` are one object whose last member is the
list. Its bytes are a JSON array that DuckDB reads by itself, several times faster than a parse in
Python (``benchmarks/json_records.py``). Only the members before the list are read here; the rest
of the file is checked by DuckDB as it reads the list, and anything unexpected sends the caller
back to its streaming parse.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liberacion.convert.model import BLOCK

RECORD_KEYS = ("results", "data", "items", "records")  # a member holding the records, by preference
HEAD_LIMIT = 64 * 1024 * 1024  # of the members before the list; a longer head is left to the parse

_WHITESPACE = re.compile(rb"[ \t\r\n]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STRUCTURE = re.compile(rb'["\[\]{}]')
_SCALAR = re.compile(rb"[^,}\]\s]+")


@dataclass(frozen=True)
class RecordList:
    """The list member ``key``: its ``[`` at byte ``start``, its ``]`` just before ``end``."""

    key: str
    start: int
    end: int
    before: dict[str, Any]  # the members before it, parsed (the first of a repeated name)


def list_key(keys: set[str]) -> str | None:
    """The member holding the records: Socrata's ``data`` beside its ``meta``, else by preference.
    ``keys``: the members that are lists, and ``meta`` when there is one."""
    if "meta" in keys and "data" in keys:
        return "data"
    return next((key for key in RECORD_KEYS if key in keys), None)


def record_path(lists: set[str], keys: set[str]) -> str | None:
    """The path (``results``, ``result.records``) of the list holding the records, from the paths of
    the lists a document holds: its own members, or in CKAN's envelope ``{help, success, result}``
    the ``result`` itself or a member of it (``datastore_search``'s ``records``)."""
    found = list_key(lists | ({"meta"} & keys))
    if found is not None or "result" not in keys:
        return found
    if "result" in lists:
        return "result"
    inner = list_key({path.removeprefix("result.") for path in lists if path.startswith("result.")})
    return None if inner is None else f"result.{inner}"


def holds_records(document: dict[str, Any]) -> bool:
    """Whether a parsed JSON object is a document holding a list of records (not itself a record)."""
    lists = {key for key, value in document.items() if isinstance(value, list)}
    result = document.get("result")
    if isinstance(result, dict):
        lists |= {f"result.{key}" for key, value in result.items() if isinstance(value, list)}
    return record_path(lists, set(document)) is not None


def find_record_list(path: Path) -> RecordList | None:
    """The document's list of records when it is the object's last member, else None."""
    end = _list_end(path)
    if end is None:
        return None
    size = 1024 * 1024
    with open(path, "rb") as fh:
        while True:
            fh.seek(0)
            head = fh.read(size)
            try:
                found = _scan(head)
            except _NeedMore:
                if len(head) < size or size >= HEAD_LIMIT:
                    return None
                size *= 4
                continue
            except (ValueError, RecursionError):  # not an object, a member not JSON: the parse says what
                return None
            if found is None or found[1] >= end:
                return None
            key, start, before = found
            lists = {name for name, value in before.items() if isinstance(value, list)}
            if list_key({key} | lists | ({"meta"} & set(before))) != key:
                return None
            return RecordList(key, start, end, before)


def copy_list(found: RecordList, path: Path, target: Path) -> None:
    """Write the list's bytes alone: a JSON array file (copied by the kernel where it can)."""
    with open(path, "rb") as src, open(target, "wb") as dst:
        offset, left = found.start, found.end - found.start
        try:
            while left:
                copied = os.copy_file_range(src.fileno(), dst.fileno(), min(left, 1 << 30), offset)
                if not copied:
                    raise OSError(f"{path} changed while it was read")
                offset, left = offset + copied, left - copied
        except (AttributeError, OSError) as err:  # no such call here, or not between these files
            if isinstance(err, OSError) and err.errno is None:
                raise
            src.seek(offset)
            while left:
                chunk = src.read(min(BLOCK, left))
                if not chunk:
                    raise OSError(f"{path} changed while it was read") from None
                dst.write(chunk)
                left -= len(chunk)


def empty_list(found: RecordList, path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(found.start + 1)
        return fh.read(64).lstrip(b" \t\r\n").startswith(b"]")


class _NeedMore(Exception):
    """The head read so far ends inside a member."""


def _list_end(path: Path) -> int | None:
    """The offset just past the ``]`` that a file ending in ``] }`` closes with."""
    base = max(0, path.stat().st_size - 4096)
    with open(path, "rb") as fh:
        fh.seek(base)
        tail = fh.read()
    tail = tail.rstrip(b" \t\r\n")
    if not tail.endswith(b"}"):
        return None
    tail = tail[:-1].rstrip(b" \t\r\n")
    if not tail.endswith(b"]"):
        return None
    return base + len(tail)


def _scan(head: bytes) -> tuple[str, int, dict[str, Any]] | None:
    """(key, offset of its ``[``, the members before) for the first member that may hold the
    records; None when the object ends first. Raises _NeedMore at the head's end."""
    i = _skip(head, 3 if head.startswith(codecs.BOM_UTF8) else 0)
    if _at(head, i) != b"{":
        raise ValueError("not an object")
    before: dict[str, Any] = {}
    i += 1
    while True:
        i = _skip(head, i)
        if _at(head, i) == b"}":
            return None
        key, i = _string(head, i)
        i = _skip(head, i)
        if _at(head, i) != b":":
            raise ValueError("no colon after a key")
        i = _skip(head, i + 1)
        if key in RECORD_KEYS and _at(head, i) == b"[":
            return key, i, before
        end = _value_end(head, i)
        # Only the brackets were matched: a member that is not JSON (``tru``, ``01``, ``NaN``) makes
        # the document broken, as the parse says, however well DuckDB reads the list after it.
        value = json.loads(head[i:end], parse_constant=_not_json)
        before.setdefault(key, value)
        i = _skip(head, end)
        mark = _at(head, i)
        if mark == b"}":
            return None
        if mark != b",":
            raise ValueError("no comma between members")
        i += 1


def _not_json(word: str) -> None:
    raise ValueError(f"{word} is not JSON")


def _at(head: bytes, i: int) -> bytes:
    if i >= len(head):
        raise _NeedMore
    return head[i : i + 1]


def _skip(head: bytes, i: int) -> int:
    match = _WHITESPACE.match(head, i)
    return match.end() if match else i


def _string(head: bytes, i: int) -> tuple[str, int]:
    if _at(head, i) != b'"':
        raise ValueError("a key that is not a string")
    match = _STRING.match(head, i)
    if match is None:
        raise _NeedMore
    return json.loads(match.group()), match.end()


def _value_end(head: bytes, i: int) -> int:
    """Where the JSON value at ``i`` ends (its brackets matched, strings skipped)."""
    mark = _at(head, i)
    if mark == b'"':
        return _string(head, i)[1]
    if mark not in (b"{", b"["):
        match = _SCALAR.match(head, i)
        if match is None or match.end() >= len(head):
            raise _NeedMore
        return match.end()
    depth = 0
    while True:
        found = _STRUCTURE.search(head, i)
        if found is None:
            raise _NeedMore
        mark, i = found.group(), found.start()
        if mark == b'"':
            i = _string(head, i)[1]
            continue
        depth += 1 if mark in (b"{", b"[") else -1
        i += 1
        if depth == 0:
            return i
