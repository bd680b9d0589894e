"""Turn a downloaded file into correctly typed Parquet: CSV/TSV/pipe (CDC WONDER exports too), zip,
gzip, JSON, JSON Lines, openFDA, Socrata rows.json, Excel (.xlsx, .xls), OpenDocument (.ods), SAS
(.xpt, .sas7bdat), Stata (.dta), SPSS (.sav) and Parquet.

``inspect`` lists the tables inside a file (one per zip member or sheet when there are several),
and ``convert_part`` writes one of them as Parquet, with a ``ConversionReport`` of its rows,
rejected rows, columns and notes. Formats are sniffed from the bytes (``sniff``), never trusted
from a name or a server's media type; column types are decided by ``typing_rules`` and proved over
every value. Publishing the tables is the caller's job (``liberacion.fetch``).

Modules: ``sniff`` (format from bytes), ``containers`` (zip, gzip, ``inspect``), ``spreadsheets``
(xlsx, xls, ods), ``text`` (delimited text), ``json_records`` (JSON), ``statistical`` (SAS,
Stata, SPSS), ``headers`` (binary headers checked before a reader trusts them), ``parquet``,
``typed_copy`` (typing and writing shared by every reader), ``typing_rules``, ``model`` (the
shared dataclasses and the unpacking budget) and ``parts`` (``convert_part``). DuckDB, pyarrow,
python-calamine, pyreadstat and ijson are imported only when a conversion runs.
"""

from __future__ import annotations

from liberacion.convert.containers import inspect
from liberacion.convert.model import ConversionReport, ConvertOptions, Part
from liberacion.convert.parts import convert_part
from liberacion.convert.sniff import sniff

__all__ = ["ConversionReport", "ConvertOptions", "Part", "convert_part", "inspect", "sniff"]
