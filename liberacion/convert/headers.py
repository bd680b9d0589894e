"""Headers of binary files, checked before a reader trusts them.

A SAS transport (XPORT) file is fixed 80-byte records: a library, member and descriptor header,
one "namestr" per variable, then the rows. The reader (ReadStat, through pyreadstat) believes
whatever those records say, so a damaged file can read as garbage, as a short table, or not stop.
``check_xport`` reads the layout first and refuses, with the reason, a header that is not one,
counts that are not digits, a variable of impossible type or length, and data that ends inside a
row (a truncated download); it returns how many rows the data holds, which the conversion then
compares with what the reader produced.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from liberacion.errors import ConversionError

RECORD = 80
_HEADER = re.compile(rb"HEADER RECORD\*{7}([A-Z0-9 ]{8})HEADER RECORD!{7}(.{30}).{2}", re.DOTALL)
_MAX_TEXT = {5: 200, 8: 32767}  # bytes of a character variable, by XPORT version
_MAX_VARIABLES = 32767


@dataclass
class XportLayout:
    version: int  # 5 or 8
    variables: int
    row_length: int  # bytes of one row
    rows: int  # rows the data section holds (trailing blank padding left out, as the reader does)


def check_xport(path: Path) -> XportLayout:
    """The layout of a SAS transport file's first member, or ``ConversionError`` saying what is wrong."""
    reader = _Records(path)
    name = reader.header()
    if name not in ("LIBRARY", "LIBV8"):
        raise reader.refuse(f"its first record is a {name or 'damaged'} header, not a library header")
    version = 5 if name == "LIBRARY" else 8
    reader.skip(2)  # the library's real header and its modification date
    reader.expect(version, "MEMBER", "MEMBV8")
    namestr_size = int(reader.last_digits[26:30])
    if namestr_size not in (136, 140):
        raise reader.refuse(f"its member header gives variable descriptors of {namestr_size} bytes (not 136 or 140)")
    reader.expect(version, "DSCRPTR", "DSCPTV8")
    reader.skip(2)  # the data set's name, label and dates
    reader.expect(version, "NAMESTR", "NAMSTV8")
    variables = int(reader.last_digits[5:10])
    if not 1 <= variables <= _MAX_VARIABLES:
        raise reader.refuse(f"its header declares {variables:,} variables")
    row_length = 0
    for index in range(variables):
        row_length += _variable_length(reader, reader.read(namestr_size), index, version)
    reader.align()
    reader.expect_obs(version)
    return XportLayout(version, variables, row_length, reader.rows(row_length))


def _variable_length(reader: _Records, namestr: bytes, index: int, version: int) -> int:
    kind, _, length = struct.unpack(">hhh", namestr[:6])
    label = namestr[8:16].decode("latin-1").strip() or f"#{index + 1}"
    if kind == 1:
        if not 2 <= length <= 8:
            raise reader.refuse(f"numeric variable {label} has a length of {length} bytes (2 to 8 are possible)")
    elif kind == 2:
        if not 1 <= length <= _MAX_TEXT[version]:
            raise reader.refuse(
                f"character variable {label} has a length of {length} bytes (1 to {_MAX_TEXT[version]} are possible)"
            )
    else:
        raise reader.refuse(f"variable {label} has an unknown type {kind}")
    return length


class _Records:
    """The file read one 80-byte record at a time, with the reason for refusing it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.position = 0
        self.last_digits = ""
        if self.size % RECORD:
            raise self.refuse(
                f"it is truncated or damaged ({self.size:,} bytes is not a whole number of {RECORD}-byte records)"
            )

    def refuse(self, why: str) -> ConversionError:
        return ConversionError(f"cannot read {self.path.name} as SAS transport: {why}")

    def read(self, size: int) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(self.position)
            data = fh.read(size)
        if len(data) < size:
            raise self.refuse("it ends inside its header (truncated?)")
        self.position += size
        return data

    def skip(self, records: int) -> None:
        self.read(records * RECORD)

    def align(self) -> None:
        if self.position % RECORD:
            self.read(RECORD - self.position % RECORD)

    def header(self) -> str:
        """The name of the header record that comes next ("" when it is not a header record)."""
        match = _HEADER.fullmatch(self.read(RECORD))
        if not match:
            return ""
        digits = match.group(2).decode("latin-1")
        name = match.group(1).decode("latin-1").strip()
        if not digits.strip(" ").isdigit() or not digits[:10].isdigit():
            raise self.refuse(f"its {name} header record has {digits.strip()!r} where counts belong")
        self.last_digits = digits
        return name

    def expect(self, version: int, v5: str, v8: str) -> None:
        wanted = v5 if version == 5 else v8
        found = self.header()
        if found != wanted:
            raise self.refuse(f"a {wanted} header record was expected, found {found or 'something else'}")

    def expect_obs(self, version: int) -> None:
        """The header before the rows; version 8 may put variable label records before it."""
        if version == 5:
            self.expect(5, "OBS", "OBSV8")
            return
        while True:
            match = _HEADER.fullmatch(self.read(RECORD))
            if match and match.group(1).strip() == b"OBSV8":
                return

    def rows(self, row_length: int) -> int:
        """Rows between here and the next member (or the end); data cut inside a row is refused."""
        start = self.position
        end = self._next_member(start)
        full, rest = divmod(end - start, row_length)
        blank = self._blank_tail(start, end)
        if rest > blank:
            raise self.refuse(
                f"its data ends inside a row after {full:,} rows (truncated?): {rest} bytes of a {row_length}-byte row"
            )
        blank_from = end - blank
        first_blank_row = -(-(blank_from - start) // row_length)  # rows wholly in the blank tail are padding
        return min(full, max(0, first_blank_row))

    def _next_member(self, start: int) -> int:
        import mmap

        if self.size == start:
            return start
        with open(self.path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            at = start
            while (at := data.find(b"HEADER RECORD*******MEMB", at)) != -1:
                if at % RECORD == 0:
                    return at
                at += 1
        return self.size

    def _blank_tail(self, start: int, end: int) -> int:
        """How many bytes before ``end`` are spaces (XPORT pads the last record with them)."""
        blank = 0
        with open(self.path, "rb") as fh:
            while end - blank > start:
                size = min(1 << 20, end - blank - start)
                fh.seek(end - blank - size)
                block = fh.read(size)
                kept = len(block.rstrip(b" "))
                blank += size - kept
                if kept:
                    break
        return blank
