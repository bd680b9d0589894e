"""SAS transport (XPORT v5) files, the format of NHANES.

The format is small and documented (SAS TS-140): 80-byte header records, one NAMESTR record per
variable (name, label, type, length, position), then fixed-width rows. Numbers are IBM/370
floating point, truncated to their stored length; SAS missing values ('.', '.A'-'.Z', '._') are a
marker byte followed by zeros.

``read_xpt`` reads the file; ``_convert_xpt`` writes it as Parquet (numbers that are all whole
become BIGINT, the variable labels become column descriptions).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import liberacion.convert.typing_rules as rules
from liberacion.convert.model import ROW_GROUP_ROWS, ConversionReport, Part
from liberacion.errors import ConversionError

LIBRARY_HEADER = b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!"
MEMBER_HEADER = b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!"
NAMESTR_HEADER = b"HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!"
OBS_HEADER = b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!"
_NAMESTR = struct.Struct(">hhhh8s40s8shhh2s8shhl52s")
_MISSING_FIRST = frozenset(b"._ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass
class Variable:
    name: str
    label: str
    numeric: bool
    length: int
    position: int


@dataclass
class Dataset:
    name: str
    label: str
    variables: list[Variable]
    columns: list[list[Any]]  # one list of values per variable (None for missing)


def is_xpt(head: bytes) -> bool:
    return head.startswith(LIBRARY_HEADER)


def read_xpt(path: Path) -> Dataset:
    """Read the first member of an XPORT file (NHANES files have exactly one)."""
    data = path.read_bytes()
    if not is_xpt(data[:80]):
        raise ConversionError(f"{path.name} is not a SAS transport (XPT) file: it starts with {_start(data)}")
    member = data.find(MEMBER_HEADER)
    if member < 0:
        raise ConversionError(f"{path.name}: no dataset in this SAS transport file")
    namestr_length = int(data[member + 74 : member + 78] or b"140")
    descriptor = member + 160
    name = data[descriptor + 8 : descriptor + 16].decode("latin-1").strip()
    label = data[descriptor + 80 + 32 : descriptor + 80 + 72].decode("latin-1").strip()
    header = data.find(NAMESTR_HEADER, member)
    if header < 0:
        raise ConversionError(f"{path.name}: the SAS transport file has no variable descriptions")
    count = int(data[header + 54 : header + 58])
    variables = _variables(data, header + 80, count, namestr_length)
    obs = data.find(OBS_HEADER, header)
    if obs < 0:
        raise ConversionError(f"{path.name}: the SAS transport file has no observations header")
    columns = _rows(data, obs + 80, variables)
    return Dataset(name=name, label=label, variables=variables, columns=columns)


def _start(data: bytes) -> str:
    return repr(" ".join(data[:80].decode("latin-1").split())[:60])


def _variables(data: bytes, start: int, count: int, size: int) -> list[Variable]:
    variables = []
    for i in range(count):
        raw = data[start + i * size : start + i * size + 140].ljust(140, b"\0")
        fields = _NAMESTR.unpack(raw)
        variables.append(
            Variable(
                name=fields[4].decode("latin-1").strip(),
                label=fields[5].decode("latin-1").strip(),
                numeric=fields[0] == 1,
                length=fields[2],
                position=fields[14],
            )
        )
    return variables


def _rows(data: bytes, start: int, variables: list[Variable]) -> list[list[Any]]:
    width = sum(v.length for v in variables)
    end = data.find(MEMBER_HEADER, start)  # a second member ends the first one
    body = data[start : end if end >= 0 else len(data)]
    count = len(body) // width if width else 0
    while count and body[(count - 1) * width : count * width].strip(b" ") == b"":
        count -= 1  # padding to the 80-byte record boundary, not a row
    columns: list[list[Any]] = []
    for var in variables:
        cells = (body[r * width + var.position : r * width + var.position + var.length] for r in range(count))
        columns.append([ibm_to_float(c) for c in cells] if var.numeric else [_text(c) for c in cells])
    return columns


def ibm_to_float(raw: bytes) -> float | None:
    """An IBM/370 hexadecimal float (1 to 8 bytes, big-endian) as a Python float; SAS missing → None."""
    if not raw:
        return None
    if raw[0] in _MISSING_FIRST and not any(raw[1:]):
        return None
    value = int.from_bytes(raw.ljust(8, b"\0"), "big")
    mantissa = value & 0x00FF_FFFF_FFFF_FFFF
    if mantissa == 0:
        return 0.0
    exponent = (value >> 56) & 0x7F
    number = math.ldexp(mantissa, 4 * (exponent - 64) - 56)
    return -number if value >> 63 else number


def _text(raw: bytes) -> str | None:
    text = raw.rstrip(b" \0")
    if not text:
        return None
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        return text.decode("latin-1")


def _convert_xpt(part: Part, out_dir: Path, kv: dict[str, str]) -> ConversionReport:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dataset = read_xpt(part.path)
    arrays, columns, taken = [], {}, set()
    names = []
    for variable, values in zip(dataset.variables, dataset.columns):
        name = rules.snake_case(variable.name, len(names) + 1, taken)
        names.append(name)
        if variable.numeric and all(v is None or (v.is_integer() and abs(v) < 2**53) for v in values):
            arrays.append(pa.array([None if v is None else int(v) for v in values], pa.int64()))
        elif variable.numeric:
            arrays.append(pa.array(values, pa.float64()))
        else:
            arrays.append(pa.array(values, pa.string()))
        columns[name] = {"original": variable.name, "description": variable.label or None, "type": str(arrays[-1].type)}
    table = pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(kv)
    pq.write_table(table, out_dir / "data-0000.parquet", compression="zstd", row_group_size=ROW_GROUP_ROWS)
    notes = {"format": "xpt", "dataset": dataset.name, "label": dataset.label}
    return ConversionReport(rows=table.num_rows, rejects=0, columns=columns, notes=notes)
