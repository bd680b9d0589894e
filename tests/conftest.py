"""Fixtures: a fresh home per test, the CLI, a local HTTP server and the shared real files."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.server import LocalServer

ROOT = Path(__file__).resolve().parent.parent
REALDATA = ROOT.parent / "shared" / "realdata"
ENV_PREFIX = "LIBERACION_"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty LIBERACION_HOME and no user configuration."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    path = tmp_path / "home"
    monkeypatch.setenv("LIBERACION_HOME", str(path))
    monkeypatch.setenv("LIBERACION_BACKOFF", "0.01")  # retries without real waits; tests that time them set it
    return path


@pytest.fixture(autouse=True)
def no_hard_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``liberacion.cli.run`` called in this process raises its SystemExit: its ``os._exit`` would
    end pytest itself, with status 0 and the remaining tests never run. Commands run as processes
    (``python -m liberacion``) end as users' do."""

    def leave(done: SystemExit) -> None:
        raise done

    # ``liberacion.cli.app`` the attribute is the Typer app; the module is imported by name.
    monkeypatch.setattr(importlib.import_module("liberacion.cli.app"), "leave", leave)


class Cli:
    """Runs ``liberacion`` in-process and returns the result (exit_code, stdout, stderr)."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> object:
        from liberacion.cli import app

        return self.runner.invoke(app, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def cli() -> Cli:
    return Cli()


def run_process(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m liberacion`` as a real subprocess (for pipes, signals and exit codes)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(  # type: ignore[call-overload]
        [sys.executable, "-m", "liberacion", *args], capture_output=True, text=True, env=full_env, timeout=120, **kwargs
    )


def at_terminal(home: Path, *args: str, columns: int = 120) -> tuple[int, str]:
    """Run ``liberacion ARGS`` in a pseudo-terminal of 40 rows and ``columns``: its exit status and
    what it showed, whitespace runs made single spaces (the terminal wraps long lines)."""
    import pexpect

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(PYTHONPATH=str(ROOT), LIBERACION_HOME=str(home), TERM="xterm-256color")
    child = pexpect.spawn(
        sys.executable, ["-m", "liberacion", *args], env=env, dimensions=(40, columns), encoding="utf-8", timeout=120
    )
    child.expect(pexpect.EOF)
    raw = " ".join(child.before.split())
    child.close()
    return child.exitstatus, raw


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    server = LocalServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def realdata() -> Path:
    """The real HHS files beside the project; tests using them skip cleanly when absent."""
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is not present")
    return REALDATA


@pytest.fixture
def manifests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of user catalog manifests, named by LIBERACION_CATALOGS."""
    path = tmp_path / "manifests"
    path.mkdir()
    monkeypatch.setenv("LIBERACION_CATALOGS", str(path))
    return path


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 HTTP API on loopback (moto in server mode) for the whole session."""
    import logging

    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def stoppable_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 server of this test's own (moto, on loopback) that the test can stop (``.stop()``;
    ``.endpoint`` is its URL), its bucket ``team``, the standard AWS settings naming it, and the
    process's memory of stores reached kept to this test."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("pyiceberg")
    import logging

    import boto3

    from liberacion import storage

    monkeypatch.setattr(storage, "_REACHED", {})
    monkeypatch.setattr(storage, "_GIVEN_UP", {})
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    server.endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": server.endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.client("s3").create_bucket(Bucket="team")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the loopback S3 server, and the standard AWS settings pointing at it."""
    pytest.importorskip("pyiceberg")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import hashlib

    import boto3

    # Fresh per test, parameters included: the name's readable part is cut at 40 characters.
    digest = hashlib.sha1(request.node.name.encode()).hexdigest()[:8]
    name = "lake-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + "-" + digest
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def local_spark(monkeypatch: pytest.MonkeyPatch, **config: str) -> Any:
    """A PySpark session in local mode on loopback, one core, no UI (stop it when done)."""
    from pyspark.sql import SparkSession

    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master("local[1]").appName("liberacion-test")
    for key, value in {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "1", **config}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
