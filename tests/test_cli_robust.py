"""The command line under rough handling: signals mid-write, bytes that are not UTF-8, narrow terminals."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_process

ENDLESS = "select * from range(1000000000)"


def _stop_while_writing(home: Path, output: Path, sig: int) -> tuple[int, str]:
    """Run ``sql ENDLESS -o OUTPUT``, send ``sig`` once its temporary file is being written."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    command = [sys.executable, "-m", "liberacion", "sql", ENDLESS, "--output", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not any(p.stat().st_size > 0 for p in output.parent.glob(f".{output.name}.*.tmp")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(sig)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


@pytest.mark.parametrize(
    ("sig", "code", "said"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "SIGTERM")]
)
@pytest.mark.parametrize("name", ["big.csv", "big.parquet"])
def test_a_signal_during_sql_output_leaves_no_temporary_file(
    home: Path, tmp_path: Path, sig: int, code: int, said: str, name: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    returncode, err = _stop_while_writing(home, out / name, sig)
    assert returncode == code, err
    assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert list(out.iterdir()) == []  # neither the output nor its temporary file


# -- bytes that are not UTF-8 ------------------------------------------------------------------


def _run_bytes(home: Path, *args: bytes, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """``python -m liberacion ARGS`` with arguments given as raw bytes, in a UTF-8 locale."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), "LC_ALL": "C.UTF-8"}
    command = [os.fsencode(sys.executable), b"-m", b"liberacion", *args]
    return subprocess.run(command, input=stdin, capture_output=True, env=env, timeout=120)


def _one_usage_error(done: subprocess.CompletedProcess[bytes], *words: str) -> str:
    err = done.stderr.decode("utf-8", "backslashreplace")
    assert done.returncode == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


def test_sql_that_is_not_utf8_is_one_usage_line(home: Path) -> None:
    latin1 = "select 'café' as x".encode("latin-1")
    _one_usage_error(_run_bytes(home, b"sql", latin1), "QUERY", "not UTF-8", "byte 11")
    _one_usage_error(_run_bytes(home, b"sql", b"-", stdin=latin1), "stdin", "not UTF-8", "byte 11")
    _one_usage_error(_run_bytes(home, b"info", "café.t".encode("latin-1")), "TABLE", "not UTF-8")


def test_a_file_whose_name_is_not_utf8_is_one_line_saying_to_rename_it(home: Path, tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/caf\xe9.csv"
    with open(name, "wb") as fh:
        fh.write(b"a,b\n1,2\n")
    err = _one_usage_error(_run_bytes(home, b"fetch", name), "caf\\xe9.csv", "not UTF-8", "rename it")
    assert "local.caf" not in err
    out = os.fsencode(tmp_path) + b"/out\xe9.csv"
    _one_usage_error(_run_bytes(home, b"sql", b"select 1", b"--output", out), "--output", "not UTF-8")
    assert not os.path.lexists(out)


def test_the_python_api_refuses_a_file_whose_name_is_not_utf8_as_the_cli_does(home: Path, tmp_path: Path) -> None:
    import liberacion
    from liberacion.errors import UsageError

    name = os.fsencode(tmp_path) + b"/caf\xe9.csv"
    with open(name, "wb") as fh:
        fh.write(b"a,b\n1,2\n")
    with pytest.raises(UsageError, match=r"caf\\xe9\.csv: its name is not UTF-8 \(byte \d+\); rename it"):
        liberacion.fetch(os.fsdecode(name), home=home)
    assert not (home / "lake").exists() or not any((home / "lake").rglob("*.parquet"))


def test_an_internal_error_with_non_utf8_arguments_is_still_one_line(
    cli: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(_root: Path) -> None:
        raise RuntimeError("nobody expected caf\udce9")  # an error quoting the bytes as Python keeps them

    monkeypatch.setattr(importlib.import_module("liberacion.cli.app"), "check_home", bug)
    monkeypatch.setattr(sys, "argv", ["liberacion", "sql", "select 'caf\udce9'"])
    result = cli("tables")
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "internal error (RuntimeError" in result.stderr
    saved = (home / "logs" / "last-error.txt").read_text(encoding="utf-8")
    assert "select 'caf\\xe9'" in saved and "Traceback" in saved


# -- help on an 80-column terminal ---------------------------------------------------------------


def _commands() -> list[str]:
    from typer.main import get_command

    from liberacion.cli import app

    return sorted(get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["", *_commands()])
def test_every_help_screen_fits_80_columns(command: str) -> None:
    from typer.testing import CliRunner

    from liberacion.cli import app

    args = [command, "--help"] if command else ["--help"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "80"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    wide = [line for line in result.output.splitlines() if len(line) > 80]
    assert wide == [], "\n".join(wide)
    usage = result.output.splitlines()[0]
    assert "{" not in usage and "}" not in usage, usage  # TABLE, not {TABLE}
    assert "x>=" not in result.output  # a count's range says nothing


def test_a_mistyped_command_is_one_line_with_a_suggestion(cli: Any) -> None:
    result = cli("tabels")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: No such command 'tabels' (did you mean 'tables'?); see: liberacion --help"


# -- the fetch progress display and Ctrl-C ------------------------------------------------------


@pytest.mark.parametrize("width", [60, 80, 120])
def test_progress_bars_leave_room_for_the_echoed_ctrl_c(width: int) -> None:
    # A bar up to the last column leaves the cursor waiting to wrap: the "^C" the terminal echoes
    # wraps onto a new line, and the display's clean-up then erases one line too few.
    import io

    from rich.console import Console

    from liberacion.console import progress_bars

    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    bars = progress_bars(console)
    bars.update(bars.add_task("Hospital_General_Information.csv", total=113_000_000), completed=30_800_000)
    bars.add_task("all downloads", total=None)
    console.print(bars.get_renderable())
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(len(line) <= width - len("^C") for line in lines), lines
    assert "30.8/113.0 MB" in lines[0]


# -- small kindnesses ---------------------------------------------------------------------------


def test_a_bare_table_name_the_lake_has_under_a_catalog_is_named(cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "nppes.csv"
    source.write_text("npi,name\n1,a\n", encoding="utf-8")
    assert cli("fetch", str(source), "--as", "local.nppes").exit_code == 0
    for command in ("info", "history", "diff"):
        result = cli(command, "nppes")
        assert result.exit_code == 3, result.stderr
        assert "did you mean local.nppes?" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert cli("info", "nothere").exit_code == 2  # nothing like it: what a table name is


def test_sql_from_stdin_on_a_terminal_says_it_is_reading(home: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    child = pexpect.spawn(sys.executable, ["-m", "liberacion", "sql", "-", "-f", "csv"], env=env, encoding="utf-8")
    child.expect("reading SQL from stdin; end it with Ctrl-D", timeout=60)
    child.sendline("select 42 as answer")
    child.sendeof()
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    assert child.exitstatus == 0 and "42" in child.before


def test_json_listings_to_a_latin1_pipe_are_utf8(tmp_path: Path) -> None:
    source = tmp_path / "dash.csv"
    source.write_text("Name — long,n\nLiberación — Núñez,1\n", encoding="utf-8")
    env = {"PYTHONIOENCODING": "latin-1"}
    home = str(tmp_path / "h")
    assert run_process("--home", home, "fetch", str(source), "--as", "x.dash", env=env).returncode == 0
    shown = subprocess.run(
        [sys.executable, "-m", "liberacion", "--home", home, "info", "x.dash", "--format", "json"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Name — long" in json.dumps(json.loads(shown.stdout.decode("utf-8")), ensure_ascii=False)


@pytest.mark.parametrize(("before", "after"), [(None, "1"), ("4", "4")])
def test_the_command_runs_numpy_with_one_blas_thread_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, before: str | None, after: str
) -> None:
    """numpy comes only with DuckDB's Python functions: its BLAS threads would only spin beside the COPY."""
    from liberacion.cli import main

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", before or "")
    if before is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setattr(sys, "argv", ["liberacion", "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == after
