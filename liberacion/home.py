"""Where liberacion keeps everything it writes, and the file locks that guard it.

Resolving the home never creates it: directories appear only when something is written.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from liberacion.errors import CWD_GONE, Busy, ConfigError, StorageError, one_line, option, system_refusal
from liberacion.files import atomic_write

HOME_ENV = "LIBERACION_HOME"


def default_home() -> Path:
    """The platform's per-user data directory for liberacion."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "liberacion"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "liberacion"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "liberacion"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--home`` wins, then ``LIBERACION_HOME``, then the platform default."""
    # A blank LIBERACION_HOME (``export LIBERACION_HOME=" "``) is unset, as an empty one is: not a
    # directory named by spaces in whatever the current directory is. Trimmed, as LIBERACION_LAKE
    # is: " /srv/liberacion " (a space pasted into a crontab) was a relative path, a home made in
    # the current directory under a folder named " ".
    from_env = os.environ.get(HOME_ENV, "").strip()
    chosen = explicit or from_env or default_home()
    try:
        return Path(chosen).expanduser().absolute()
    except FileNotFoundError:  # a relative home, and the current directory was removed
        raise StorageError(f"cannot use the home {chosen}: {CWD_GONE}") from None


def check_home(root: Path) -> None:
    """Raise ``StorageError`` when ``root`` can never be a home: it, or a directory above it, is a file;
    ``ConfigError`` when its name is not UTF-8 text.

    A home that does not exist yet is fine (the first write creates it); so is a read-only one
    for commands that only read.
    """
    from liberacion.naming import utf8_text

    try:  # LIBERACION_HOME or HOME in another encoding: DuckDB refuses the name later, mid-command
        utf8_text(str(root), path=True)
    except ValueError as err:
        raise ConfigError(f"cannot use the home {err}, or choose another home with {option('home')}") from None
    for path in (root, *root.parents):
        if path.exists():
            if path.is_dir():
                return
            msg = f"cannot use the home {root}: {path} is a file, not a directory; choose another with {option('home')}"
            raise StorageError(msg)


@dataclass(frozen=True)
class Home:
    """The layout of one liberacion home directory (see README, "Lake layout")."""

    root: Path
    # The lake named by --lake (None: LIBERACION_LAKE, else ``lake`` below); see iceberg_lake.open_lake.
    lake_uri: str | None = None

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def views_db(self) -> Path:
        """A DuckDB file of views over the current snapshots, for use outside liberacion."""
        return self.root / "lake.duckdb"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def downloads(self) -> Path:
        """Partial and finished raw downloads, kept for resume."""
        return self.root / "downloads"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def work(self) -> Path:
        """Scratch space of running conversions: unpacked archives, gunzipped files, sheets as CSV."""
        return self.root / "work"

    def check_writable(self) -> None:
        """``StorageError`` unless the home can be written (created if it is missing): said before
        a run downloads anything, not as a traceback once a table is half published."""
        import tempfile

        from liberacion.errors import storage_error

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as err:
            raise storage_error(OSError(err.errno, err.strerror, str(self.root))) from None

    @contextmanager
    def work_area(self) -> Iterator[Path]:
        """A fresh directory under ``work`` for one dataset's scratch files, removed when the block
        ends (published or failed). Directories of processes that died (kill -9) go too."""
        import shutil
        import tempfile

        self.work.mkdir(parents=True, exist_ok=True)
        host = host_tag()
        for entry in self.work.iterdir():
            pid, _, rest = entry.name.partition("-")
            # Only this machine's processes can be checked (a home may be shared over the network).
            if pid.isdigit() and rest.startswith(f"{host}-") and not process_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
        path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{host}-", dir=self.work))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    @property
    def index(self) -> Path:
        """The discovered dataset index (``datasets.parquet``), queryable as ``liberacion.datasets``."""
        return self.root / "index"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def last_error(self) -> Path:
        """The traceback of the last unexpected error, for a bug report."""
        return self.logs / "last-error.txt"

    def report_internal(self, err: BaseException, what: str = "") -> str:
        """An unexpected exception as one line; its traceback is saved in ``last_error`` to report.

        Raises OSError when the home cannot be written (the caller then shows the traceback). A
        refusal of the system's (no thread, no memory) is no bug: its line says what to do."""
        import traceback

        refused = system_refusal(err)
        if refused:
            return refused

        text = "".join(traceback.format_exception(err))
        atomic_write(self.last_error, f"{what}\n\n{text}" if what else text)
        summary = one_line(err, lines=1, limit=300)
        return f"internal error ({type(err).__name__}: {summary}); the traceback is in {self.last_error}"

    @property
    def index_file(self) -> Path:
        """Every catalog's datasets, queryable as ``liberacion.datasets``."""
        return self.index / "datasets.parquet"


@contextmanager
def file_lock(path: Path, *, wait: float = 0.0, what: str = "this resource") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the duration of the block.

    The OS releases the lock when the holder dies (even by SIGKILL), so a stale lock file never
    blocks the next run. Waits up to ``wait`` seconds, then raises ``Busy``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                holder = _read_holder(fd)
                msg = f"{what} is in use by another liberacion process{holder}; try again later"
                if wait:
                    msg += f" (waited {wait:g} s)"
                raise Busy(msg, holder=holder)
            time.sleep(0.1)
        # The pid only names the holder in another process's Busy message. On a full disk its
        # block cannot be written, and `prune`, the command that frees space, must still run.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def host_tag() -> str:
    """A short stable tag of this machine's name, for scratch directories."""
    import hashlib
    import socket

    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a process of another user counts as running)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # pragma: no cover - no signal 0 there: keep what may be in use
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised only on Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
