"""Ctrl-C during a conversion: it stops at once, exits 130, and publishes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT


def big_csv(path: Path, rows: int = 12_000_000) -> Path:
    """Big enough that its conversion (about 5 s here) is still running when Ctrl-C comes, even on a
    machine fast enough to convert 4 M rows before the test has read the progress line."""
    import duckdb

    duckdb.sql(
        f"COPY (SELECT lpad(i::VARCHAR, 6, '0') AS zip, i AS n, 'Not Available' AS score, i * 1.5 AS rate "
        f"FROM range({rows}) t(i)) TO '{path}' (HEADER)"
    )
    return path


def test_ctrl_c_during_conversion_exits_130_at_once_and_publishes_nothing(tmp_path: Path, home: Path) -> None:
    source = big_csv(tmp_path / "big.csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "liberacion", "fetch", str(source), "--as", "t.big", "--progress"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait until the conversion has started
        if "converting" in line:
            break
    time.sleep(0.5)
    assert process.poll() is None, "the conversion finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    process.wait(timeout=30)
    elapsed = time.monotonic() - sent
    rest = process.stderr.read()
    assert process.returncode == 130, rest
    assert "Traceback" not in rest and "interrupted" in rest
    listed = subprocess.run(
        [sys.executable, "-m", "liberacion", "tables", "--format", "json"], capture_output=True, text=True, env=env
    )
    assert listed.returncode == 0 and listed.stdout.strip() in ("", "[]"), listed.stdout  # nothing published
    assert elapsed < 2, f"took {elapsed:.1f} s to stop"  # a behaviour bound, generous for a loaded CI machine

    # The worker left behind while it stopped staged nothing visible; the next run removes it all.
    small = tmp_path / "small.csv"
    small.write_text("zip,n\n02134,1\n", encoding="utf-8")
    again = subprocess.run(
        [sys.executable, "-m", "liberacion", "fetch", str(small), "--as", "t.small"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert again.returncode == 0, again.stderr
    leftovers = [p for p in home.rglob("*") if p.name.startswith(".staging-") or p.parent.name == "work"]
    assert leftovers == []


LONG_QUERY = "select count(*), sum(a.range * b.range % 7) from range(3000000) a, range(3000) b"


def _interrupt_sql(home: Path, *args: str, terminal: bool) -> tuple[int, str, float]:
    """Start ``liberacion sql LONG_QUERY ARGS`` (in a pseudo-terminal or a pipe), Ctrl-C it after
    the query has begun: (exit code, what it printed, seconds it took to stop)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), "COLUMNS": "80"}
    command = [sys.executable, "-m", "liberacion", "sql", LONG_QUERY, *args]
    if terminal:
        import pexpect

        child = pexpect.spawn(command[0], command[1:], env=env, encoding="utf-8", timeout=60)
        time.sleep(2)
        assert child.isalive(), "the query ended before it could be interrupted"
        child.sendintr()  # Ctrl-C, as the terminal sends it
        sent = time.monotonic()
        child.expect(pexpect.EOF)
        child.close()
        return child.exitstatus if child.exitstatus is not None else -1, child.before, time.monotonic() - sent
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(2)
    assert process.poll() is None, "the query ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = process.communicate(timeout=60)
    return process.returncode, out + err, time.monotonic() - sent


def test_ctrl_c_stops_a_long_query_at_once_on_a_terminal_and_in_a_pipe(home: Path, tmp_path: Path) -> None:
    # DuckDB would see Ctrl-C only when the query ends (about 30 s here): the query runs on a worker.
    for args, terminal in (((), True), (("--format", "json"), False), (("--output", str(tmp_path / "q.csv")), False)):
        code, printed, elapsed = _interrupt_sql(home, *args, terminal=terminal)
        assert code == 130, (args, printed)
        assert "interrupted" in printed and "internal error" not in printed and "Traceback" not in printed
        assert elapsed < 5, f"{args}: took {elapsed:.1f} s to stop"
    assert not (tmp_path / "q.csv").exists()


def test_ctrl_c_during_refresh_stops_at_once_publishes_nothing_and_leaves_a_log_line(
    tmp_path: Path, home: Path
) -> None:
    source = big_csv(tmp_path / "big.csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    first = subprocess.run(
        [sys.executable, "-m", "liberacion", "fetch", str(source), "--as", "t.big"], capture_output=True, env=env
    )
    assert first.returncode == 0, first.stderr
    log = tmp_path / "refresh.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "liberacion", "refresh", "--force", "--json", "--log", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    # Ctrl-C once the conversion has begun writing into its staging folder (it takes seconds; each
    # part is written in a folder of its own there).
    table_dir = home / "lake" / "t" / "big"
    deadline = time.monotonic() + 60
    while not any(p.is_file() for p in table_dir.glob(".staging-*/**/*")) and time.monotonic() < deadline:
        assert process.poll() is None, "the refresh ended before its conversion began"
        time.sleep(0.05)
    time.sleep(0.3)
    assert process.poll() is None, "the refresh finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = process.communicate(timeout=60)
    elapsed = time.monotonic() - sent
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert elapsed < 2, f"took {elapsed:.1f} s to stop"  # it waited for the table to finish before
    history = subprocess.run(
        [sys.executable, "-m", "liberacion", "history", "t.big", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert len(json.loads(history.stdout)) == 1  # nothing published after Ctrl-C
    summary = json.loads(log.read_text().splitlines()[-1])
    assert summary["event"] == "summary" and summary["exit_code"] == 130
    assert json.loads(out.splitlines()[-1]) == summary
