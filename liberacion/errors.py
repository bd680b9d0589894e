"""The exception family of liberacion and the exit code each one maps to.

The core raises these and never prints or exits; ``cli.py`` turns them into a one-line
``error: ...`` on stderr and the exit code below, in one place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterable, Iterator
from enum import IntEnum
from typing import Any


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


# Which interface the messages speak to: the command line names its options (``--max-bad-rows``),
# the Python API its parameters (``max_bad_rows``). Only the CLI changes it, while a command runs.
_COMMAND_LINE = [False]


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Within it, messages name settings as the command line spells them (see ``option``)."""
    before, _COMMAND_LINE[0] = _COMMAND_LINE[0], True
    try:
        yield
    finally:
        _COMMAND_LINE[0] = before


def option(parameter: str, flag: str = "") -> str:
    """A setting as the caller spelled it: ``--max-bad-rows`` (or ``flag``) on the command line,
    ``max_bad_rows`` from Python, where ``fetch(jobs=0)`` must not be told about ``--jobs``."""
    if _COMMAND_LINE[0]:
        return flag or "--" + parameter.replace("_", "-")
    return parameter


class NotFound(LiberacionError):
    exit_code = ExitCode.NOT_FOUND


class NoTable(NotFound):
    """The named table is not in the lake."""

    table: str | None = None  # the name, when a query named it


class NoSnapshot(NotFound):
    """A table has no kept snapshot of the id a query named (``liberacion.snapshot(t, id)``)."""

    table: str = ""
    snapshot: str = ""


class NoDataset(NotFound):
    """The catalog does not list the dataset (any more): for a fetched table, it was retired."""


class SQLError(LiberacionError):
    exit_code = ExitCode.SQL

    def __init__(self, message: str, *, query_error: str | None = None) -> None:
        super().__init__(message)
        # The query's error alone, without what the message says of the output written so far:
        # a writer that wrote nothing (a file written whole or not at all) says that instead.
        self.query_error = query_error or message


class ConfigError(LiberacionError):
    exit_code = ExitCode.CONFIG


class NoLake(NotFound):
    """The location ``--lake`` names holds no lake: a path or bucket that does not exist (most often
    a typo) or that no fetch has written a lake into. Reads say so rather than list an empty lake."""


class NoBucket(NoLake, ConfigError):
    """The bucket of a lake on an object store does not exist. Not found (exit 3) like any missing
    lake, and still a ``ConfigError`` to callers catching those: the setting naming it cannot be honoured."""


class Busy(LiberacionError):
    """A lock is held by another live process (``holder``: " (pid N)" when known, else "")."""

    exit_code = ExitCode.BUSY

    def __init__(self, message: str, *, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder


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
    table: str | None = None  # the table, when a query found a file of it missing


def _write_hints(remedy: str, there: str = "") -> dict[int, str]:
    """What to try next, by the errno of a failed write; ``remedy``: how to write somewhere else."""
    return {
        errno.ENOSPC: f"free some disk space{there} or {remedy}",
        errno.EDQUOT: f"free some disk space{there} or {remedy}",
        errno.EACCES: f"check its permissions or {remedy}",
        errno.EPERM: f"check its permissions or {remedy}",
        errno.EROFS: f"the file system is read-only: {remedy}",
    }


_HOME_ELSEWHERE = "choose another home with {home}"  # ``option("home")``, when the error is made
_STORAGE_HINTS = _write_hints(_HOME_ELSEWHERE) | {
    errno.ENOTDIR: f"part of the path is a file, not a directory: {_HOME_ELSEWHERE}",
    errno.EEXIST: f"part of the path is a file, not a directory: {_HOME_ELSEWHERE}",
}
STORAGE_ERRNOS = frozenset(_STORAGE_HINTS) | {errno.EISDIR, errno.ENOENT, errno.EIO}


def home_elsewhere() -> str:
    """What to do when the home cannot be written, in the caller's words."""
    return _HOME_ELSEWHERE.format(home=option("home"))


# A relative path in a process whose current directory was removed (``cd x; rmdir ../x``) fails
# with ENOENT and no file name: said as such, not as a home to choose again.
CWD_GONE = "the current directory no longer exists: cd into one that does, or give absolute paths"


def cwd_gone() -> bool:
    """Was the current directory removed while this process was in it?"""
    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    return False


def storage_error(err: OSError) -> StorageError:
    """A failed file operation as one actionable line: the path, what went wrong, what to try."""
    named = isinstance(err.filename, (str, bytes)) and os.path.isabs(err.filename)
    if err.errno == errno.ENOENT and not named and cwd_gone():
        return StorageError(CWD_GONE)
    where = f" {err.filename}" if err.filename else ""
    what = err.strerror or type(err).__name__
    hint = _STORAGE_HINTS.get(err.errno or 0, "check the path, or " + _HOME_ELSEWHERE).format(home=option("home"))
    verb = "write" if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else "use"
    return StorageError(f"cannot {verb}{where}: {what}; {hint}")


# What to try next when a file the user named (``--output``, or where stdout goes) cannot be
# written: the home has nothing to do with it.
_OUTPUT_HINTS = _write_hints("write the output elsewhere", " there") | {
    errno.EFBIG: "the file grew past the largest size allowed there: write the output elsewhere",
}


def output_error(err: OSError, target: object) -> StorageError:
    """A write into the user's output ``target`` that failed, naming ``target`` (not the temporary
    file beside it that was being written) and what to do."""
    what = err.strerror or one_line(err)
    hint = _OUTPUT_HINTS.get(err.errno or 0, "check the path, or write the output elsewhere")
    return StorageError(f"cannot write {target}: {what}; {hint}")


# A write refused for want of room, as an OSError's errno or in the text of DuckDB's IO error
# (which carries it inside a JSON document naming a staging file): ENOSPC, EDQUOT, and EFBIG, a
# file past the file system's or ``ulimit -f``'s largest size.
_NO_ROOM = {
    errno.ENOSPC: "No space left on device",
    errno.EDQUOT: "Disk quota exceeded",
    errno.EFBIG: "File too large",
}


# DuckDB's words when the disk it spills to is full: it stops spilling at 90% of the free space
# (``max_temp_directory_size``) and reports it as running out of memory.
_SPILL_FULL = "failed to offload data block"


def no_room(err: BaseException, home: object, *, elsewhere: str = "") -> str | None:
    """One line for a write that failed because the disk (or a quota, or a file size limit) is
    full, naming where (``home``: the home, or a ``--lake`` directory, with ``elsewhere`` saying
    how to choose another) and what to do; None for any other error."""
    code = err.errno if isinstance(err, OSError) and err.errno in _NO_ROOM else None
    if code is None:
        text = str(err)
        code = next((c for c, words in _NO_ROOM.items() if words in text), None)
    if code is None:
        return None
    what = "a file grew past the largest size allowed" if code == errno.EFBIG else "the disk is full"
    return (
        f"{what} ({_NO_ROOM[code]}) writing under {home}; the table is as it was: free some disk"
        f" space or {elsewhere or home_elsewhere()}, then run it again"
    )


class Note(UserWarning):
    """Something people should know that is not an error (a damaged file was rebuilt, ...).

    The core says it with ``note(message)``; the CLI prints it on stderr as ``note: ...``.
    """


def note(message: str) -> None:
    """Say a ``Note``, attributed to the line that called liberacion (a notebook's cell, a
    script's), not to liberacion's own, and every time it happens: Python shows a repeated warning
    once per place, and a note is about this call's data (a cell run again, with the same file,
    said nothing the second time). A filter the caller sets (``ignore``, ``once``, ``error``) still
    decides. A worker thread of a fetch has no caller on its stack: its note names liberacion's line."""
    import functools
    import sys
    import threading
    import warnings

    caller = _CALLERS.get(threading.get_ident())
    if caller is None and len(_CALLERS) == 1:  # a fetch's worker thread, one API call running
        caller = next(iter(_CALLERS.values()))
    if caller is None:
        here = sys._getframe(1)
        frame: Any = here
        while frame is not None and frame.f_code.co_filename.startswith(_OURS):
            frame = frame.f_back
        if frame is None or frame.f_code.co_filename.startswith(os.path.dirname(os.__file__)):
            frame = here  # only the standard library's frames above ours: a thread's
        caller = (frame.f_code.co_filename, frame.f_lineno, frame.f_globals)
    filename, line, module_globals = caller
    say = functools.partial(
        warnings.warn_explicit,
        message,
        Note,
        filename,
        line,
        module=module_globals.get("__name__"),
        registry=None,  # a new one each time: shown each time, unless the caller's filters say otherwise
    )
    try:
        say(module_globals=module_globals)  # lets Python show the caller's line from its loader
    except ImportError:
        # The interactive prompt's, ``python -c``'s and ``python -``'s ``__main__`` is loaded by
        # BuiltinImporter, whose get_source raises: said without the source line, not as the
        # ImportError that failed the fetch as an internal error.
        say(module_globals=None)


_OURS = os.path.dirname(os.path.abspath(__file__)) + os.sep  # liberacion's package directory
# The line that called an API function, by the thread it runs in (``called_from``): the notes of
# its work, some said by its worker threads, name that line.
_CALLERS: dict[int, tuple[str, int, dict[str, Any]]] = {}


@contextlib.contextmanager
def called_from(frame: Any) -> Iterator[None]:
    """Within it, the notes of this thread's API call (and of its worker threads, while it is the
    only call running) name ``frame``'s line. An API function another calls keeps the outer caller."""
    import threading

    ident = threading.get_ident()
    if ident in _CALLERS:
        yield
        return
    _CALLERS[ident] = (frame.f_code.co_filename, frame.f_lineno, frame.f_globals)
    try:
        yield
    finally:
        _CALLERS.pop(ident, None)


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

    A message longer than ``limit`` characters gives up the middle of its longest words (URLs,
    paths) first, then its end at a word boundary: what went wrong, said after a URL, is kept.
    """
    parts = [line.strip() for line in str(err).splitlines() if line.strip()]
    if parts and parts[0].startswith(_DUCKDB_OUT_OF_MEMORY):
        # DuckDB's own advice (SET threads, SET memory_limit) cannot be followed from the command
        # line; liberacion's memory limit is set by the environment.
        hint = SPILL_FULL_HINT if _SPILL_FULL in parts[0] else OUT_OF_MEMORY_HINT
        if _SYSTEM_REFUSED in parts[0] or parts[0].endswith(_ALLOCATION_FAILED):  # raising it would not help
            hint = address_space_hint() or SYSTEM_REFUSED_HINT
        return shorten(f"{parts[0]}; {hint}", limit)
    if not parts:
        return type(err).__name__
    text = " ".join(parts[:lines] + _download_cause(parts[:lines], parts[lines:]))
    return shorten(_cut_long_words(text, limit), limit)


_DUCKDB_OUT_OF_MEMORY = "Out of Memory Error"
OUT_OF_MEMORY_HINT = (
    "raise the memory limit with LIBERACION_MEMORY_LIMIT (default 700MB), e.g. LIBERACION_MEMORY_LIMIT=4GB"
)
# DuckDB's words when the system, not its memory limit, refused an allocation (``ulimit -v``, a
# container's limit): its own limit, LIBERACION_MEMORY_LIMIT, is above what the process may use.
_SYSTEM_REFUSED = "(bad allocation)"
_ALLOCATION_FAILED = ": Allocation failure"  # the same, said where DuckDB was not allocating a block
SYSTEM_REFUSED_HINT = (
    "the system gave less memory than LIBERACION_MEMORY_LIMIT allows (a ulimit -v or a container's"
    " limit?): set LIBERACION_MEMORY_LIMIT to about a quarter of what the process may use, so that"
    " DuckDB spills to disk, or raise the system's limit"
)


# What the process needs of address space (``ulimit -v``): threads, DuckDB and numpy's libraries take
# about a gigabyte whatever the memory limit, and each DuckDB thread reserves a malloc arena and a
# stack. Below it glibc ends the process at random, when a thread finds no room for its data.
# Measured on 2 cores with 2 threads: 1.1 GB aborted one run in two, 1.3 GB none.
ADDRESS_SPACE_BASE = 1 << 30
ADDRESS_SPACE_PER_THREAD = 128 << 20


def least_address_space() -> int:
    """The address space below which liberacion fails at random, with one DuckDB thread."""
    return ADDRESS_SPACE_BASE + ADDRESS_SPACE_PER_THREAD


def address_space_limit() -> int | None:
    """The bytes of address space the process may use (``ulimit -v``), None when unlimited."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return None
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def address_space_threads() -> int | None:
    """The DuckDB threads the address space has room for (at most one per core), None when it is
    unlimited: a many-core machine under a ``ulimit -v`` runs on fewer threads, not at random."""
    soft = address_space_limit()
    if soft is None:
        return None
    return max(1, min(os.cpu_count() or 1, (soft - ADDRESS_SPACE_BASE) // ADDRESS_SPACE_PER_THREAD))


def address_space_hint() -> str | None:
    """What to do when the process's address space (``ulimit -v``) is too small for liberacion."""
    soft, least = address_space_limit(), least_address_space()
    if soft is None or soft >= least:
        return None
    every_core = ADDRESS_SPACE_BASE + ADDRESS_SPACE_PER_THREAD * (os.cpu_count() or 1)
    return (
        f"the process may use only {soft >> 20} MB of address space (ulimit -v {soft >> 10}):"
        f" liberacion needs at least {least >> 20} MB, and {ADDRESS_SPACE_PER_THREAD >> 20} MB more for each"
        f" more core it may use; raise it (e.g. ulimit -v {max(4 << 20, every_core >> 10)})"
    )


def system_refusal(err: BaseException) -> str | None:
    """An unexpected error that is the system's refusal, not a bug, as one line saying what to do."""
    if isinstance(err, RuntimeError) and "can't start new thread" in str(err):
        return "the system refused a new thread; " + (address_space_hint() or THREAD_REFUSED_HINT)
    if isinstance(err, MemoryError):
        hint = address_space_hint() or SYSTEM_REFUSED_HINT
        return f"the system refused memory ({one_line(err) if str(err) else 'MemoryError'}); {hint}"
    return None


THREAD_REFUSED_HINT = (
    "raise the limit on processes or on address space (ulimit -u, ulimit -v, or the container's limits)"
)


SPILL_FULL_HINT = (
    "the disk it spills to beyond LIBERACION_MEMORY_LIMIT (in the home) is full: free some"
    " disk space there, or raise the memory limit, e.g. LIBERACION_MEMORY_LIMIT=4GB"
)


# DuckDB ends a failed download of an extension (httpfs, to read a URL) with why, on its last line:
# ``For more info, visit https://... (ERROR Could not establish connection)``.
_DOWNLOAD_FAILED = "Failed to download extension"
_DOWNLOAD_CAUSE = re.compile(r"\((ERROR [^()]+)\)$")
LONG_WORD = 60  # characters: a longer word (a URL, a path) loses its middle before a message loses its end


def _download_cause(kept: list[str], dropped: list[str]) -> list[str]:
    """The cause DuckDB puts on the last line of a failed extension download, when that line is
    not kept: without it the line says a download failed and not why."""
    if not dropped or not any(_DOWNLOAD_FAILED in line for line in kept):
        return []
    found = _DOWNLOAD_CAUSE.search(dropped[-1])
    return [f"({found.group(1)})"] if found else []


def _cut_long_words(text: str, limit: int) -> str:
    """``text`` with its longest words (URLs, paths) cut in the middle, as far as it takes to fit in
    ``limit``: DuckDB's httpfs errors say what went wrong after the URL (``HTTP GET error on '<url>'
    (HTTP 403 Forbidden)``), and a cut at the end would lose that, or the whole URL with it."""
    words = text.split()
    excess = len(" ".join(words)) - limit
    while excess > 0:
        at = max(range(len(words)), key=lambda i: len(words[i]))
        word = words[at]
        if len(word) <= LONG_WORD:
            break
        keep = max(LONG_WORD, len(word) - excess)
        head = (keep - 1) // 2  # the start names the host, the end the file (and DuckDB's closing quote)
        words[at] = f"{word[:head]}…{word[len(word) - (keep - 1 - head) :]}"
        excess -= len(word) - keep
    return " ".join(words)


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its leading whole words and an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:(") + "…"
