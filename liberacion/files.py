"""Files that are never seen half-written: every file liberacion writes goes through here.

A write lands in a temporary file in the same directory, is flushed to disk, renamed over the
target in one step, and the directory entry is flushed too, so a crash or a full disk leaves
either the old file or the new one.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write; on success it replaces ``target`` atomically.

    For writers that want a path (Parquet, DuckDB databases). On an exception the temporary
    file (and any ``.wal`` DuckDB left beside it) is removed and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    _WRITING.add(tmp)
    try:
        yield tmp
        if tmp.is_file():
            fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        remove_temporary(tmp)
        _WRITING.discard(tmp)


# Temporary files being written, so that a process leaving at once (Ctrl-C, SIGTERM) while a
# worker thread still writes one removes it: the worker's own clean-up would never run.
_WRITING: set[Path] = set()


def discard_temporaries() -> None:
    """Remove every temporary file ``atomic_path`` is still writing (the process is leaving)."""
    for tmp in list(_WRITING):
        try:
            remove_temporary(tmp)
        except OSError:  # leaving anyway: a file that cannot be removed is all that is left to say
            continue


def remove_temporary(tmp: Path) -> None:
    """Remove the temporary file ``tmp`` and the log DuckDB may have left beside it."""
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        try:
            leftover.unlink(missing_ok=True)
        except OSError:
            # A read-only file system refuses even to unlink a file that is not there (EROFS, not
            # ENOENT), and that error would take the place of the one that says what went wrong.
            if os.path.lexists(leftover):
                raise


@contextmanager
def output_path(target: Path) -> Iterator[Path]:
    """Where to write a user's ``--output``: a regular file (or a new name) atomically, through
    ``atomic_path``; a symbolic link's target, not the link; a device, a FIFO or a process
    substitution (``/dev/stdout``, ``>(gzip > x.gz)``) in place, never replaced by a file.

    Yields the path to write and sets nothing else: writing in place cannot be atomic, and the
    caller says so when a write into it fails half-way (see ``is_special``).
    """
    if is_special(target):
        yield target
        return
    real = Path(os.path.realpath(target)) if target.is_symlink() else target
    mode = stat.S_IMODE(os.stat(real).st_mode) if real.is_file() else None
    try:
        with atomic_path(real) as tmp:
            yield tmp
            if mode is not None and tmp.exists():
                os.chmod(tmp, mode)  # a private file stays private
    except OSError as err:
        # Full, read-only, not ours: said of the file the user named, with what to do about
        # it, never of the temporary file beside it nor with the home's advice.
        from liberacion.errors import output_error

        raise output_error(err, target) from None


def is_stdout(target: Path) -> bool:
    """True when ``target`` is this process's standard output (``/dev/stdout``, ``/dev/fd/1``, or
    the very file stdout is redirected to): written as stdout is, never reopened and truncated."""
    try:
        named, out = os.stat(target), os.fstat(1)
    except (OSError, ValueError):
        return False
    return (named.st_dev, named.st_ino) == (out.st_dev, out.st_ino)


def is_special(target: Path) -> bool:
    """True when ``target`` exists and is not a regular file (after following links)."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def atomic_write(target: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``target`` atomically."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with naming(target), atomic_path(target) as tmp, open(tmp, "wb") as fh:
        fh.write(payload)


@contextmanager
def naming(target: Path) -> Iterator[None]:
    """Name ``target`` in an OSError of the block that names no file: a write into an open file
    (a full disk) does not, and the line the user reads must say which file could not be written."""
    try:
        yield
    except OSError as err:
        if err.filename or err.errno is None:
            raise
        # pyarrow's text wraps the system's words ("Error writing bytes to file. Detail: [errno 28]
        # No space left on device"): the system's words alone say it.
        raise OSError(err.errno, os.strerror(err.errno), str(target)) from err


def write_json(target: Path, data: Any, *, indent: int | None = None) -> None:
    """``data`` as JSON, atomically. ``json.dumps`` (not ``dump``): only it uses the fast C encoder."""
    separators = None if indent else (",", ":")
    atomic_write(target, json.dumps(data, ensure_ascii=False, indent=indent, separators=separators, default=str))


def read_json(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or damaged (the next write replaces it)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX only: Windows has no directory handles)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
