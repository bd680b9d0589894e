"""What `fetch` and `refresh` report: the name a failed line shows when no table was known, the line
of a run stopped by Ctrl-C or SIGTERM, a shared lake's store retried after it stopped answering
mid-run, and DuckDB's httpfs errors shortened without losing what went wrong."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Cli
from tests.server import LocalServer


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def slow_csv(server: LocalServer, path: str, pieces: int = 3) -> str:
    """A CSV of ``pieces`` 64 KiB pieces sent one a second: a signal or a fault comes mid-download."""
    rows = "".join(f"{i:06d},{i % 90}\n" for i in range(pieces * 64 * 1024 // 10))
    return server.add(path, "facility_id,beds\n" + rows, content_type="text/csv", rate=64 * 1024)


def when_downloading(server: LocalServer, path: str, act: Any, before: int = 0) -> threading.Thread:
    """Run ``act`` once the server has been asked for ``path`` (more than ``before`` times), in a
    thread: the caller keeps reading the process's output meanwhile."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while len(server.hits(path)) <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        act()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def environment(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), **extra}


# -- a failed line names what was given when no table can be told ------------------------------------


def test_a_url_that_names_no_dataset_failing_before_the_server_named_it_shows_the_url(
    cli: Cli, http_server: LocalServer
) -> None:
    """Its table would be named by the file name the server gives: `local.download` was made up."""
    url = http_server.url("/download?format=csv")  # 404: the server named nothing
    plain = cli("fetch", url)
    assert plain.exit_code == 1
    assert [line.split("\t", 1)[0] for line in plain.stdout.splitlines()] == [url]
    (record,) = records(cli("fetch", url, "--json").stdout)
    assert record["ref"] == url and record["table"] is None and record["status"] == "failed"


def test_a_mistyped_path_whose_extension_is_no_format_shows_the_ref(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`loc/f.dat` is neither a file nor a catalog's dataset: not the made-up `loc.f_dat`."""
    monkeypatch.chdir(tmp_path)
    plain = cli("fetch", "loc/f.dat")
    assert plain.exit_code != 0
    assert [line.split("\t", 1)[0] for line in plain.stdout.splitlines()] == ["loc/f.dat"]
    assert errors(plain.stderr)[0].startswith("error: loc/f.dat: no such file")
    (record,) = records(cli("fetch", "loc/f.dat", "--json").stdout)
    assert record["ref"] == "loc/f.dat" and record["table"] is None


# -- a run stopped by Ctrl-C or SIGTERM says so on an error line ---------------------------------------


NOT_PUBLISHED = "tables not yet published keep their previous snapshot"


@pytest.mark.parametrize(
    ("sig", "code", "said"), [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")]
)
@pytest.mark.parametrize("command", ["fetch", "refresh"])
def test_a_stopped_run_ends_with_one_error_line(
    cli: Cli, http_server: LocalServer, home: Path, command: str, sig: int, code: int, said: str
) -> None:
    url = http_server.add("/beds.csv", "facility_id,beds\n010001,12\n", content_type="text/csv")
    args = ["fetch", url, "--as", "cms.beds"]
    if command == "refresh":
        assert cli(*args).exit_code == 0
        args = ["refresh"]
    slow_csv(http_server, "/beds.csv")  # changed upstream, and slow to come
    before = len(http_server.hits("/beds.csv"))
    command_line = [sys.executable, "-m", "liberacion", *args]
    process = subprocess.Popen(
        command_line, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(home)
    )
    when_downloading(http_server, "/beds.csv", lambda: process.send_signal(sig), before)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert "Traceback" not in err
    # Like every other error line: a script or a log reader looking for "error:" finds it.
    assert errors(err) == [
        f"error: {said}: {NOT_PUBLISHED}" + ("; run the same command to resume" if command == "fetch" else "")
    ]


# -- a shared lake's store that stops answering mid-fetch ---------------------------------------------


def test_a_store_that_stops_answering_mid_fetch_is_retried_aloud_on_a_terminal(
    stoppable_store: Any, http_server: LocalServer, home: Path
) -> None:
    """The store answers when the fetch begins and is gone when the download is done: each retry
    is said (as a download's are) instead of the AWS SDK's minute and a half without a word."""
    pexpect = pytest.importorskip("pexpect")
    url = slow_csv(http_server, "/beds.csv")
    env = {k: v for k, v in environment(home).items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    args = ["-m", "liberacion", "--lake", "s3://team/lake", "fetch", url, "--as", "cms.beds"]
    child = pexpect.spawn(sys.executable, args, env=env, dimensions=(40, 200), encoding="utf-8", timeout=60)
    when_downloading(http_server, "/beds.csv", stoppable_store.stop)
    child.expect(pexpect.EOF)  # reads the terminal as it goes: the progress bars never block the run
    shown = child.before
    child.close()
    assert child.exitstatus == 1, shown
    where = stoppable_store.endpoint
    assert f"S3 store at {where}: retry 2/8 in 0 s: connection refused" in shown, shown
    assert f"S3 store at {where}: retry 8/8 in " in shown, shown
    assert f"cannot reach the store {where} any more (connection refused, after 8 tries" in shown, shown


def test_cron_is_not_told_of_store_retries(stoppable_store: Any, http_server: LocalServer, home: Path) -> None:
    """Not a terminal and no --progress: quiet as it is about a download's retries; the failure
    is one error line and the --json line."""
    url = slow_csv(http_server, "/beds.csv")
    command = [sys.executable, "-m", "liberacion", "--lake", "s3://team/lake", "fetch", url, "--as", "cms.beds"]
    process = subprocess.Popen(
        [*command, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(home)
    )
    when_downloading(http_server, "/beds.csv", stoppable_store.stop)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "S3 store at" not in err + out
    (line,) = errors(err)
    assert f"cannot reach the store {stoppable_store.endpoint} any more" in line, err
    (record,) = records(out)
    assert record["status"] == "failed" and record["error_type"] == "Unreachable"


# -- DuckDB's httpfs errors keep what went wrong ------------------------------------------------------


def test_an_httpfs_error_keeps_its_status_and_url_when_shortened() -> None:
    """DuckDB says the status after the URL; a long URL (a signed one) pushed it past the cut, and
    the cut at a word boundary dropped the URL too: `error: HTTP Error: HTTP GET error on…`."""
    import duckdb

    from liberacion.errors import one_line
    from liberacion.query import sql_error

    url = (
        "https://hhs-exports.s3.amazonaws.com/cms/2026/" + "provider-data/" * 30 + "hospital_general_information.csv"
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=" + "0f" * 64
    )
    err = duckdb.HTTPException(f"HTTP Error: HTTP GET error on '{url}' (HTTP 403 Forbidden)")
    for line, limit in ((str(sql_error(err)), 500), (one_line(err, lines=1, limit=300), 300)):
        assert len(line) <= limit, line
        assert line.startswith("HTTP Error: HTTP GET error on 'https://hhs-exports.s3.amazonaws.com/cms/"), line
        assert line.endswith("' (HTTP 403 Forbidden)"), line  # the reason, whole
        assert "…" in line
    ranged = duckdb.HTTPException(
        f"HTTP Error: HTTP GET error on '{url}' (HTTP 416 Range Not Satisfiable) This could mean the file was"
        " changed. Try disabling the duckdb http metadata cache if enabled, and confirm the server supports"
        " range requests."
    )
    assert "(HTTP 416 Range Not Satisfiable) This could mean the file was changed." in one_line(ranged)


def test_a_failed_httpfs_download_keeps_why_it_failed() -> None:
    """DuckDB's message when it cannot download httpfs (to read a URL) says why on its last line."""
    import duckdb

    from liberacion.query import sql_error

    message = (
        "An error occurred while trying to automatically install the required extension 'httpfs:\n"
        'Failed to download extension "httpfs" at URL '
        '"http://extensions.duckdb.org/v2.0.1/linux_amd64/httpfs.duckdb_extension.gz"\n'
        'Extension "httpfs" is an existing extension.\n\n'
        "For more info, visit https://duckdb.org/docs/current/extensions/troubleshooting?version=v2.0.1"
        "&platform=linux_amd64&extension=httpfs (ERROR Could not establish connection)"
    )
    line = str(sql_error(duckdb.IOException(message)))
    assert 'Failed to download extension "httpfs"' in line
    assert line.endswith("(ERROR Could not establish connection)"), line
