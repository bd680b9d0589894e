"""The exception family of liberacion and the exit code each one maps to.

The core raises these and never prints or exits; ``cli.py`` turns them into a one-line
``error: ...`` on stderr and the exit code below, in one place.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes users' scripts rely on (documented in the README)."""

    OK = 0
    FAILED = 1  # something failed (for batch commands: at least one item failed)
    USAGE = 2  # bad command line or option value
    NOT_FOUND = 3  # no such table, dataset, catalog or snapshot
    SQL = 4  # the SQL query failed
    CONFIG = 5  # a catalog manifest or other configuration is invalid
    UPDATES = 10  # refresh --check: something would change
    BUSY = 75  # another process holds the lock (EX_TEMPFAIL: try again later)
    INTERRUPTED = 130  # Ctrl-C


class LiberacionError(Exception):
    """Base class: a failure the user can act on. ``str(err)`` is the one-line message."""

    exit_code: ExitCode = ExitCode.FAILED


class UsageError(LiberacionError):
    exit_code = ExitCode.USAGE


class NotFound(LiberacionError):
    exit_code = ExitCode.NOT_FOUND


class NoTable(NotFound):
    """The named table is not in the lake."""


class SQLError(LiberacionError):
    exit_code = ExitCode.SQL


class ConfigError(LiberacionError):
    exit_code = ExitCode.CONFIG


class Busy(LiberacionError):
    """A lock is held by another live process."""

    exit_code = ExitCode.BUSY


class SourceError(LiberacionError):
    """A remote server or local source gave something unusable (HTTP error, HTML page, ...)."""


class ConversionError(LiberacionError):
    """A downloaded file could not be turned into a table."""


def one_line(err: BaseException, *, lines: int = 2, limit: int = 500) -> str:
    """The first lines of an exception's message (DuckDB's run over several) as one line."""
    parts = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(parts[:lines])[:limit] if parts else type(err).__name__
