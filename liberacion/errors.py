"""The exception family of liberacion and the exit code each one maps to.

The core raises these and never prints or exits; ``cli.py`` turns them into a one-line
``error: ...`` on stderr and the exit code below, in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
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


class NoDataset(NotFound):
    """The catalog does not list the dataset (any more): for a fetched table, it was retired."""


class SQLError(LiberacionError):
    exit_code = ExitCode.SQL


class ConfigError(LiberacionError):
    exit_code = ExitCode.CONFIG


class Busy(LiberacionError):
    """A lock is held by another live process."""

    exit_code = ExitCode.BUSY


class SourceError(LiberacionError):
    """A remote server or local source gave something unusable (HTTP error, HTML page, ...)."""


class Gone(SourceError):
    """The server says the file is not there (404) or gone for good (410)."""

    exit_code = ExitCode.NOT_FOUND


class Interrupted(LiberacionError):
    """The run was cancelled (Ctrl-C) while a transfer was in progress; partial files are kept."""

    exit_code = ExitCode.INTERRUPTED


class SchemaChanged(LiberacionError):
    """A new release changed the table's columns and the policy is ``fail``."""


class ConversionError(LiberacionError):
    """A downloaded file could not be turned into a table."""


def batch_exit_code(failures: Iterable[int], *, updates: bool = False) -> ExitCode:
    """The exit code of a command that handles many items (fetch, refresh, prune, discover).

    0 when nothing failed (10 when ``refresh --check`` found updates); 75 when every failure was
    a busy lock (trying again later will do); otherwise 1.
    """
    codes = [int(code) for code in failures]
    if not codes:
        return ExitCode.UPDATES if updates else ExitCode.OK
    if all(code == ExitCode.BUSY for code in codes):
        return ExitCode.BUSY
    return ExitCode.FAILED


def one_line(err: BaseException, *, lines: int = 2, limit: int = 500) -> str:
    """The first lines of an exception's message (DuckDB's run over several) as one line."""
    parts = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(parts[:lines])[:limit] if parts else type(err).__name__
