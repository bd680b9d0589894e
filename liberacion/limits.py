"""How much a hostile or broken input may make liberacion hold or write before it is refused.

Each limit with an environment variable is read when it is used, never at import, so a cron job
(or a test) can set it for one run; a value that is not a whole number of bytes is a
configuration error, never silently replaced by the default.
"""

from __future__ import annotations

import os

from liberacion.errors import ConfigError

MAX_UNZIPPED_ENV = "LIBERACION_MAX_UNZIPPED_BYTES"
MAX_LISTING_ENV = "LIBERACION_MAX_LISTING_BYTES"
DEFAULT_MAX_UNZIPPED = 64 * 1024**3
DEFAULT_MAX_LISTING = 512 * 1024**2
MAX_ARCHIVE_DEPTH = 3  # a zip in a zip in a zip is the deepest real data has; more is a bomb
MAX_RATIO = 1000  # an archive member expanding more than this (beyond 16 MiB) is a bomb, not data
# Real sheets' XML compresses far less than this (the CMS workbooks in realdata about 6-fold), and
# an .xls sheet or a grouped .ods sheet is still read whole: a part expanding more is refused unread.
WORKBOOK_RATIO = 100
RATIO_FLOOR = 16 * 1024**2  # small members may expand any amount: a column of zeros does
MAX_JSON_DEPTH = 128  # JSON records nested deeper are refused (DuckDB's JSON reader stops there too)


def max_unzipped_bytes() -> int:
    """Bytes one downloaded file may expand to: zip members, gzip, nested archives, workbook parts."""
    return _env_bytes(MAX_UNZIPPED_ENV, DEFAULT_MAX_UNZIPPED)


def max_listing_bytes() -> int:
    """Bytes of one catalog listing (or other JSON document) held in memory, after decompression."""
    return _env_bytes(MAX_LISTING_ENV, DEFAULT_MAX_LISTING)


def check_limits() -> None:
    """Read every size limit a fetch or refresh may need, so that a bad value is a configuration
    error (exit 5) before anything runs, not one dataset's failure later on."""
    max_unzipped_bytes()
    max_listing_bytes()


def _env_bytes(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name} must be a whole number of bytes above 0, not {raw!r}")
    return value
