"""The exception family of liberacion and the exit code each one maps to.

The core raises these and never prints or exits; ``cli.py`` turns them into a one-line
``error: ...`` on stderr and the exit code below, in one place.
"""

from __future__ import annotations

import errno
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
    TERMINATED = 143  # SIGTERM (128 + 15, as a shell reports it)


class LiberacionError(Exception):
    """Base class: a failure the user can act on. ``str(err)`` is the one-line message."""

    exit_code: ExitCode = ExitCode.FAILED


class UsageError(LiberacionError):
    exit_code = ExitCode.USAGE


class NotFound(LiberacionError):
    exit_code = ExitCode.NOT_FOUND


class NoTable(NotFound):
    """The named table is not in the lake."""

    table: str | None = None  # the name, when a query named it


class NoDataset(NotFound):
    """The catalog does not list the dataset (any more): for a fetched table, it was retired."""


class SQLError(LiberacionError):
    exit_code = ExitCode.SQL


class ConfigError(LiberacionError):
    exit_code = ExitCode.CONFIG


class Busy(LiberacionError):
    """A lock is held by another live process."""

    exit_code = ExitCode.BUSY


class QueryReading(Busy):
    """Old snapshots cannot be deleted now: a query is reading the lake."""


class SourceError(LiberacionError):
    """A remote server or local source gave something unusable (HTTP error, HTML page, ...)."""


class Unreachable(SourceError):
    """The server cannot be reached at all: its name does not resolve or it refuses connections."""


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


class StorageError(LiberacionError):
    """The home (or an output file) cannot be written: no such directory, no permission, disk full."""


class DamagedSnapshot(StorageError):
    """A snapshot's record in the home cannot be read (edited by hand, a disk fault, removed)."""

    problem: str = ""  # what is wrong, without the advice (callers that know the table add theirs)


# What to try next, by the errno of a failed write.
_STORAGE_HINTS = {
    errno.ENOSPC: "free some disk space or choose another home with --home",
    errno.EDQUOT: "free some disk space or choose another home with --home",
    errno.EACCES: "check its permissions or choose another home with --home",
    errno.EPERM: "check its permissions or choose another home with --home",
    errno.EROFS: "the file system is read-only: choose another home with --home",
    errno.ENOTDIR: "part of the path is a file, not a directory: choose another home with --home",
    errno.EEXIST: "part of the path is a file, not a directory: choose another home with --home",
}
STORAGE_ERRNOS = frozenset(_STORAGE_HINTS) | {errno.EISDIR, errno.ENOENT, errno.EIO}


def storage_error(err: OSError) -> StorageError:
    """A failed file operation as one actionable line: the path, what went wrong, what to try."""
    where = f" {err.filename}" if err.filename else ""
    what = err.strerror or type(err).__name__
    hint = _STORAGE_HINTS.get(err.errno or 0, "check the path, or choose another home with --home")
    verb = "write" if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else "use"
    return StorageError(f"cannot {verb}{where}: {what}; {hint}")


class Note(UserWarning):
    """Something people should know that is not an error (a damaged file was rebuilt, ...).

    The core issues it with ``warnings.warn(message, Note)``; the CLI prints it on stderr as
    ``note: ...``.
    """


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
    """The first lines of an exception's message (DuckDB's run over several) as one line.

    A message longer than ``limit`` characters is shortened at a word boundary, never mid-word.
    """
    parts = [line.strip() for line in str(err).splitlines() if line.strip()]
    if parts and parts[0].startswith(_DUCKDB_OUT_OF_MEMORY):
        # DuckDB's own advice (SET threads, SET memory_limit) cannot be followed from the command
        # line; liberacion's memory limit is set by the environment.
        return shorten(f"{parts[0]}; {OUT_OF_MEMORY_HINT}", limit)
    return shorten(" ".join(parts[:lines]), limit) if parts else type(err).__name__


_DUCKDB_OUT_OF_MEMORY = "Out of Memory Error"
OUT_OF_MEMORY_HINT = (
    "raise the memory limit with LIBERACION_MEMORY_LIMIT (default 700MB), e.g. LIBERACION_MEMORY_LIMIT=4GB"
)


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its leading whole words and an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:(") + "…"
