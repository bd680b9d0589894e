"""liberacion where the environment is unusual: the interactive prompt and ``python -c``,
``python -OO``, a home named in another encoding, a locale that is not UTF-8, and a current
directory removed while in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import liberacion
from tests.conftest import ROOT

# One row of four fields among rows of two: set aside as a reject, which says a note.
ONE_BAD_ROW = "a,b\n" + "".join(f"{i},x{i}\n" for i in range(300)) + "7,8,9,10\n" + "1,y\n" * 300


def _python(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
    return subprocess.run(  # type: ignore[call-overload]
        [sys.executable, *args], capture_output=True, text=True, env=full, timeout=120, **kwargs
    )


def _one_error_line(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_a_note_said_to_python_c_or_a_script_on_stdin_does_not_fail_the_fetch(
    home: Path, tmp_path: Path, how: str
) -> None:
    # Their ``__main__`` (the interactive prompt's too) is loaded by BuiltinImporter, whose
    # get_source raises ImportError: the note's source line failed every fetch that said a note.
    data = tmp_path / "one_bad.csv"
    data.write_text(ONE_BAD_ROW, encoding="utf-8")
    script = f"import liberacion\n[r] = liberacion.fetch({str(data)!r}, as_table='t.one')\nprint(r.status, r.error)\n"
    done = _python("-c", script) if how == "-c" else _python("-", input=script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fetched None", done.stdout + done.stderr
    assert "Note: t.one: 1 bad row set aside in t.one__rejects" in done.stderr, done.stderr
    assert not (home / "logs" / "last-error.txt").exists()


def test_commands_help_under_python_OO_says_what_they_do() -> None:
    # -OO strips docstrings, and Typer takes a command's help from its docstring.
    for command, says in (([], "Download datasets into the lake"), (["tables"], "List every table in the lake")):
        plain = _python("-m", "liberacion", *command, "--help")
        stripped = _python("-OO", "-m", "liberacion", *command, "--help")
        assert stripped.returncode == 0, stripped.stderr
        assert says in stripped.stdout and stripped.stdout == plain.stdout, stripped.stdout


def test_a_home_whose_name_is_not_utf8_is_one_configuration_line(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "a.csv"
    data.write_text("zip,n\n02115,1\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LIBERACION_HOME")
    latin1 = os.fsencode(tmp_path) + b"/hog\xe1r"
    for args in (["tables"], ["sql", "select 1"], ["fetch", str(data)]):
        command = [sys.executable, "-m", "liberacion", *args]
        environb = {os.fsencode(k): os.fsencode(v) for k, v in env.items()} | {b"LIBERACION_HOME": latin1}
        done = subprocess.run(command, capture_output=True, env=environb, timeout=120)  # type: ignore[call-overload]
        err = done.stderr.decode("utf-8", "backslashreplace")
        assert done.returncode == 5, err
        assert "Traceback" not in err and "internal error" not in err and len(err.strip().splitlines()) == 1, err
        assert "cannot use the home" in err and "hog\\xe1r" in err and "not UTF-8" in err, err
    assert not os.path.lexists(latin1 + b"/lake")
    with pytest.raises(liberacion.errors.ConfigError, match="not UTF-8"):
        liberacion.tables(home=os.fsdecode(latin1))


def test_a_locale_that_is_not_utf8_takes_text_as_typed_and_names_the_fix_for_file_names(
    home: Path, tmp_path: Path
) -> None:
    # LC_ALL=C with PYTHONUTF8=0: Python decodes arguments as ASCII. A UTF-8 file name would reach
    # DuckDB as other bytes; it was refused as "not UTF-8 (byte 0)", which it is.
    data = tmp_path / "población.csv"
    data.write_text("nombre,n\nJosé,1\n", encoding="utf-8")
    (tmp_path / "plain.csv").write_text("nombre,n\nJosé,1\n", encoding="utf-8")
    env = {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    done = _python("-m", "liberacion", "fetch", str(data), env=env)
    _one_error_line(done, 2, "PYTHONUTF8=1")
    assert "is not UTF-8 (byte" not in done.stderr
    assert _python("-m", "liberacion", "fetch", str(tmp_path / "plain.csv"), env=env).returncode == 0
    query = _python("-m", "liberacion", "sql", "select n from plain where nombre = 'José'", env=env)
    assert query.returncode == 0 and query.stdout.splitlines() == ["n", "1"], query.stderr


def test_a_current_directory_removed_while_in_it_is_said_as_such(home: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone"

    def in_a_removed_directory() -> None:
        os.mkdir(gone)
        os.chdir(gone)
        os.rmdir(gone)

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return _python("-m", "liberacion", *args, env=env, preexec_fn=in_a_removed_directory)

    said = "the current directory no longer exists"
    _one_error_line(run("--home", "relative", "tables"), 2, "--home", said)
    _one_error_line(run("tables", env={"LIBERACION_HOME": "relative"}), 1, said)
    _one_error_line(run("sql", "select 1", "--output", "out.csv"), 2, "--output", said)
    assert run("sql", "select 42").stdout.splitlines() == ["42", "42"]  # absolute paths still work


def test_memory_the_system_refuses_below_duckdbs_limit_says_to_lower_the_limit(home: Path) -> None:
    # Under `ulimit -v` (or a container's limit) the advice was to *raise* LIBERACION_MEMORY_LIMIT.
    import resource

    def small_address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))

    query = "select count(distinct (i, i::varchar || repeat('x', 50))) as n from range(30000000) t(i)"
    args = ("-m", "liberacion", "sql", query, "--format", "csv")
    env = {"LIBERACION_HOME": str(home), "LIBERACION_MEMORY_LIMIT": "8GB"}
    done = _python(*args, env=env, preexec_fn=small_address_space)
    _one_error_line(done, 4, "(bad allocation)", "set LIBERACION_MEMORY_LIMIT to about a quarter")
    assert "raise the memory limit" not in done.stderr
    quarter = {**env, "LIBERACION_MEMORY_LIMIT": "375MB"}  # as the advice says
    followed = _python(*args, env=quarter, preexec_fn=small_address_space)
    assert followed.returncode == 0 and followed.stdout.split() == ["n", "30000000"], followed.stderr


def test_an_address_space_too_small_is_said_up_front_not_met_at_random(home: Path, tmp_path: Path) -> None:
    # Under `ulimit -v 600000` a fetch ended as an internal error (no thread for the numpy preload),
    # as DuckDB's "'numpy' is required ... wasn't installed", or aborted in glibc (exit 127).
    import resource

    def small_address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (600_000_000, 600_000_000))

    data = tmp_path / "x.csv"
    data.write_text("a,b\n1,2\n", encoding="utf-8")
    env = {"LIBERACION_HOME": str(home)}
    every_core = (1024 + 128 * (os.cpu_count() or 1)) * 1024
    said = (
        "only 572 MB of address space (ulimit -v 585937)",
        "at least 1152 MB, and 128 MB more for each more core",
        f"ulimit -v {max(4194304, every_core)}",
    )
    fetched = _python("-m", "liberacion", "fetch", str(data), "--as", "t.x", env=env, preexec_fn=small_address_space)
    assert fetched.returncode == 1 and "t.x\tfailed" in fetched.stdout, fetched.stdout + fetched.stderr
    _one_error_line(fetched, 1, *said)
    queried = _python("-m", "liberacion", "sql", "select 42", env=env, preexec_fn=small_address_space)
    _one_error_line(queried, 5, *said)
    assert not (home / "logs" / "last-error.txt").exists()

    def room_for_one_thread() -> None:  # a many-core machine under a ulimit -v runs on fewer threads
        resource.setrlimit(resource.RLIMIT_AS, (1_250_000_000, 1_250_000_000))

    threads = "select current_setting('threads') as n"
    fewer = _python("-m", "liberacion", "sql", threads, "--format", "csv", env=env, preexec_fn=room_for_one_thread)
    assert fewer.returncode == 0 and fewer.stdout.split() == ["n", "1"], fewer.stderr
    unlimited = _python("-m", "liberacion", "sql", threads, "--format", "csv", env=env)
    import duckdb

    (plain,) = duckdb.connect().execute(threads).fetchone() or ("",)
    assert unlimited.stdout.split() == ["n", str(plain)], unlimited.stderr  # DuckDB's own choice


def test_duckdbs_allocation_failure_is_the_systems_refusal_too() -> None:
    # DuckDB says "Allocation failure" where malloc failed outside its buffer pool (seen rebuilding
    # lake.duckdb under `ulimit -v 1100000`): the advice was to raise LIBERACION_MEMORY_LIMIT.
    import duckdb

    from liberacion.errors import one_line

    said = one_line(duckdb.OutOfMemoryException("Out of Memory Error: Allocation failure"))
    assert "set LIBERACION_MEMORY_LIMIT to about a quarter" in said and "raise the memory limit" not in said
