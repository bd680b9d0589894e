"""Broken networks, timed: a host behind a firewall that drops packets, a port that takes the
connection and never answers, a refused port. Each ends in seconds with one ``error:`` line that
says what to check, never in minutes of retries or for ever.

Everything stays on the loopback address: a "silent" server accepts and never sends a byte; a
"blackhole" is a listening socket whose accept queue is full, so the kernel drops new SYNs and a
connection is never answered, as behind a firewall. Bounds are generous: they tell seconds from
minutes, they are not benchmarks.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from liberacion.errors import ExitCode
from tests.conftest import ROOT

# A command may take this long against a dead endpoint (it took 2 minutes, or for ever, before).
BOUND = 12.0
# A subprocess that runs longer than this is the slow behaviour the tests guard against.
KILL_AFTER = 25.0


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    """A local port whose connections are never answered: its accept queue is full and nothing
    accepts, so Linux drops further SYNs (a firewall that drops packets, on the loopback)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except TimeoutError:
        pass  # a blackhole, as wanted
    except OSError:
        pytest.skip("this system refuses rather than drops a full accept queue's connections")
    else:
        pytest.skip("this system answers connections beyond a full accept queue")
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """``python -m liberacion ARGS`` with ``env`` added, and its wall-clock seconds."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        full.pop(proxy, None)
    started = time.monotonic()
    command = [sys.executable, "-m", "liberacion", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=full, timeout=KILL_AFTER)
    return result, time.monotonic() - started


def _store_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }


def _error_lines(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_store_that_takes_connections_and_never_answers_fails_in_seconds(silent_port: int) -> None:
    # Before: the TCP probe passed, and the AWS SDK's ten attempts took about two minutes.
    endpoint = f"http://127.0.0.1:{silent_port}"
    result, seconds = _run("--lake", "s3://bucket/lake", "tables", env=_store_env(endpoint))
    assert seconds < BOUND, (seconds, result.stderr)
    assert result.returncode == ExitCode.FAILED, result.stderr
    errors = _error_lines(result)
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"cannot reach the store {endpoint} (it takes connections but sent no answer" in errors[0], errors
    assert "AWS_ENDPOINT_URL" in errors[0], errors


def test_a_refused_store_is_said_in_plain_words() -> None:
    # Before: "([Errno 111] Connection refused): no network, ...", Python's repr of the error.
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    result, seconds = _run("--lake", "s3://bucket/lake", "history", "x.y", env=_store_env(endpoint))
    assert seconds < BOUND, (seconds, result.stderr)
    errors = _error_lines(result)
    assert len(errors) == 1, result.stderr
    assert f"cannot reach the store {endpoint} (connection refused): is the store down" in errors[0], errors
    assert "Errno" not in result.stderr, result.stderr


def test_a_rest_catalog_that_never_answers_fails_in_seconds(silent_port: int, tmp_path: Path) -> None:
    # Before: pyiceberg's REST client sets no timeout, and the command waited for ever.
    uri = f"http://127.0.0.1:{silent_port}"
    env = {"LIBERACION_ICEBERG_CATALOG": "team", "PYICEBERG_CATALOG__TEAM__URI": uri}
    result, seconds = _run("--lake", str(tmp_path / "lake"), "tables", env=env)
    assert seconds < BOUND, (seconds, result.stderr)
    assert result.returncode == ExitCode.FAILED, result.stderr
    errors = _error_lines(result)
    assert len(errors) == 1, result.stderr
    assert f"cannot reach the Iceberg catalog 'team' at {uri} (it takes connections but sent no answer" in errors[0]


def test_a_rest_catalog_behind_a_blackhole_fails_in_seconds(blackhole_port: int, tmp_path: Path) -> None:
    # Before: the kernel's own connect timeout, over two minutes.
    uri = f"http://127.0.0.1:{blackhole_port}"
    env = {"LIBERACION_ICEBERG_CATALOG": "team", "PYICEBERG_CATALOG__TEAM__URI": uri}
    result, seconds = _run("--lake", str(tmp_path / "lake"), "tables", env=env)
    assert seconds < BOUND, (seconds, result.stderr)
    errors = _error_lines(result)
    assert len(errors) == 1 and "no answer to the connection" in errors[0], result.stderr


def test_a_host_that_drops_connections_is_unreachable_not_a_stall(
    cli: Any, blackhole_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A connect timeout of 1 s (LIBERACION_TIMEOUT caps it). Before: each URL was tried six times
    # (12 s for the two) and the line said "the connection stalled (no data within the read timeout)".
    monkeypatch.setenv("LIBERACION_TIMEOUT", "1")
    monkeypatch.setenv("LIBERACION_RETRIES", "5")
    from liberacion.download import session

    unanswered: list[str] = []
    silent_host = session._silent_host

    def counted(host: str, seconds: float) -> Any:
        unanswered.append(host)
        return silent_host(host, seconds)

    monkeypatch.setattr(session, "_silent_host", counted)
    base = f"http://127.0.0.1:{blackhole_port}"
    started = time.monotonic()
    result = cli("fetch", f"{base}/a.csv", f"{base}/b.csv", "--jobs", "1")
    seconds = time.monotonic() - started
    assert result.exit_code == ExitCode.FAILED, result.stderr
    errors = _error_lines(result)
    assert len(errors) == 2, result.stderr
    for line in errors:
        assert f"cannot reach 127.0.0.1:{blackhole_port} (no answer to the connection in 1 s)" in line, errors
        assert "stalled" not in line, errors
    # Tried once (the kernel retried the connection within its timeout), then remembered: the
    # second URL of the host fails at once, without connecting.
    assert len(unanswered) == 1, unanswered
    assert seconds < 8.0, (seconds, result.stderr)


def test_a_catalog_that_cannot_be_reached_during_fetch_is_said_once(tmp_path: Path) -> None:
    # Before: the dataset's error line, and a note that the views could not be rebuilt, same cause.
    source = tmp_path / "t.csv"
    source.write_text("id,v\n1,2\n", encoding="utf-8")
    env = {
        "LIBERACION_HOME": str(tmp_path / "home"),
        "LIBERACION_ICEBERG_CATALOG": "team",
        "PYICEBERG_CATALOG__TEAM__URI": "http://127.0.0.1:1",
    }
    result, _ = _run("--lake", str(tmp_path / "lake"), "fetch", str(source), env=env)
    assert result.returncode == ExitCode.FAILED, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Iceberg catalog 'team'" in lines[0], lines
