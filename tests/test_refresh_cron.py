"""`refresh` (and `fetch`) as cron runs them: a --log checked before anything runs, a summary line
for every run that ends early, SIGTERM handled like Ctrl-C, settings refused before they crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liberacion.lake import Lake
from tests.conftest import ROOT, Cli
from tests.manifests import write_catalog
from tests.server import LocalServer

CSV_V1 = "facility_id,beds\n010001,12\n010005,40\n"
CSV_V2 = "facility_id,beds\n010001,12\n010005,41\n010012,7\n"


def fetched(cli: Cli, server: LocalServer, body: str = CSV_V1, path: str = "/beds.csv") -> str:
    url = server.add(path, body, content_type="text/csv")
    result = cli("fetch", url, "--as", "cms.beds", "--json")
    assert result.exit_code == 0, result.stderr
    return url


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# -- --log ---------------------------------------------------------------------------------------


def test_a_log_in_a_missing_directory_is_refused_before_anything_runs(
    cli: Cli, http_server: LocalServer, tmp_path: Path, home: Path
) -> None:
    url = fetched(cli, http_server)
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")  # a refresh would publish this
    hits = len(http_server.hits("/beds.csv"))
    typo = tmp_path / "nonexistent" / "dir" / "r.log"
    result = cli("refresh", "--json", "--log", str(typo))
    message = f"--log: directory {typo.parent} does not exist; create it, or check the path"
    [summary] = lines(result.stdout)  # the run's one line, as for any bad option value
    assert result.exit_code == 2 and summary["exit_code"] == 2 and summary["error"] == message
    assert errors(result.stderr) == [f"error: {message}"]
    assert not (tmp_path / "nonexistent").exists()  # no directories made
    assert len(http_server.hits("/beds.csv")) == hits and Lake(home).current("cms.beds").rows == 2
    assert url


@pytest.mark.parametrize("where", ["directory", "proc"])
def test_a_log_that_is_not_an_appendable_file_is_a_usage_error(cli: Cli, tmp_path: Path, where: str) -> None:
    path = tmp_path if where == "directory" else Path("/proc/version")
    if where == "proc" and not path.exists():
        pytest.skip("no /proc here")
    result = cli("refresh", "--log", str(path))
    assert result.exit_code == 2
    [line] = errors(result.stderr)
    assert line.startswith(f"error: --log: {path}" if where == "directory" else "error: --log: cannot append to")


def test_a_log_that_fails_at_the_end_still_prints_the_json_lines(
    cli: Cli, http_server: LocalServer, tmp_path: Path
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    fetched(cli, http_server)
    result = cli("refresh", "--json", "--log", "/dev/full")
    records = lines(result.stdout)
    assert [r["event"] for r in records] == ["unchanged", "summary"]
    assert result.exit_code == 1
    [line] = errors(result.stderr)
    assert line.startswith("error: --log: cannot write /dev/full: No space left on device")


def test_each_table_line_reaches_the_log_and_the_summary_has_every_key(
    cli: Cli, http_server: LocalServer, tmp_path: Path
) -> None:
    fetched(cli, http_server)
    log = tmp_path / "r.log"
    result = cli("refresh", "--json", "--log", str(log))
    assert result.exit_code == 0
    assert lines(log.read_text()) == lines(result.stdout)
    assert lines(result.stdout)[-1]["error"] is None  # every key on every line, null where it does not apply


# -- runs that end early -------------------------------------------------------------------------


def test_an_unknown_table_still_writes_the_summary_line(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "r.log"
    result = cli("refresh", "nosuch.table", "--json", "--log", str(log))
    assert result.exit_code == 3
    [summary] = lines(result.stdout)
    assert summary["event"] == "summary" and summary["tables"] is None
    assert summary["exit_code"] == 3 and "nosuch.table" in summary["error"]
    assert lines(log.read_text()) == [summary]


def test_a_setting_that_cannot_be_honoured_still_writes_the_summary_line(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIBERACION_TIMEOUT", "abc")
    log = tmp_path / "r.log"
    result = cli("refresh", "--json", "--log", str(log))
    assert result.exit_code == 5
    [summary] = lines(log.read_text())
    assert summary["exit_code"] == 5 and "LIBERACION_TIMEOUT" in summary["error"]
    assert lines(result.stdout) == [summary]


@pytest.mark.parametrize("check", [False, True])
def test_a_bad_keep_is_a_configuration_error_before_anything_runs(
    cli: Cli, http_server: LocalServer, home: Path, monkeypatch: pytest.MonkeyPatch, check: bool
) -> None:
    fetched(cli, http_server)
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")  # a refresh would publish this
    monkeypatch.setenv("LIBERACION_KEEP", "0")
    result = cli("refresh", "--json", *(["--check"] if check else []))
    assert result.exit_code == 5, result.stderr
    [summary] = lines(result.stdout)
    assert summary["tables"] is None and summary["exit_code"] == 5 and "LIBERACION_KEEP" in summary["error"]
    assert errors(result.stderr) == [f"error: {summary['error']}"]
    assert not (home / "logs" / "last-error.txt").exists()  # not an internal error
    assert Lake(home).current("cms.beds").rows == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--jobs", "0"), "--jobs must be at least 1"),
        (("--wait", "-1"), "--wait must be 0 or more seconds"),
        (("--log", "{tmp}"), "--log: {tmp} is a directory; give the path of a file"),
    ],
)
def test_a_bad_option_value_still_writes_the_summary_line(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    args = tuple(arg.format(tmp=tmp_path) for arg in args)
    result = cli("refresh", "--json", *args)
    [summary] = lines(result.stdout)
    assert result.exit_code == summary["exit_code"] == 2
    assert summary["error"] == message.format(tmp=tmp_path)
    assert errors(result.stderr) == [f"error: {summary['error']}"]


@pytest.mark.parametrize("value", ["inf", "1e10", "86401"])
def test_an_endless_timeout_is_a_configuration_error_before_anything_runs(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    url = http_server.add("/t.csv", CSV_V1, content_type="text/csv")
    monkeypatch.setenv("LIBERACION_TIMEOUT", value)
    for args in (("fetch", url, "--as", "web.t", "--json"), ("refresh", "--json")):
        result = cli(*args)
        assert result.exit_code == 5, (args, result.stderr)
        assert errors(result.stderr) == [
            f"error: LIBERACION_TIMEOUT={value!r} must be at most 86400; unset it or give a smaller number"
        ]
    assert http_server.hits("/t.csv") == []
    monkeypatch.setenv("LIBERACION_TIMEOUT", "86400")  # the bound itself still works
    assert cli("fetch", url, "--as", "web.t").exit_code == 0


# -- gone ----------------------------------------------------------------------------------------


def test_a_discovered_file_that_moved_says_to_run_discover(cli: Cli, http_server: LocalServer, manifests: Path) -> None:
    file_url = http_server.add("/files/beds-2025.csv", CSV_V1, content_type="text/csv")
    items = [{"identifier": "abcd-1234", "title": "Beds", "distribution": [{"downloadURL": file_url}]}]
    http_server.add("/pdc/items", json.dumps(items), content_type="application/json")
    write_catalog(manifests, "pdc", [("dkan", http_server.url("/pdc/items"))])
    assert cli("discover", "pdc").exit_code == 0
    assert cli("fetch", "pdc/abcd-1234").exit_code == 0
    del http_server.routes["/files/beds-2025.csv"]  # the publisher moved the file
    result = cli("refresh", "--json")
    event = lines(result.stdout)[0]
    assert result.exit_code == 1 and event["event"] == "gone"
    assert "run: liberacion discover pdc, then this command again" in event["error"]
    assert "refresh the catalog" not in event["error"]


# -- SIGTERM -------------------------------------------------------------------------------------


def _slow(server: LocalServer, path: str) -> str:
    """A 1 MiB CSV sent at 64 KiB/s: about 16 s, so a signal comes mid-download."""
    body = "facility_id,beds\n" + "".join(f"{i:06d},{i % 90}\n" for i in range(80_000))
    return server.add(path, body, content_type="text/csv", rate=64 * 1024)


def _terminate_when_downloading(process: subprocess.Popen, server: LocalServer, path: str, before: int) -> float:
    deadline = time.monotonic() + 30
    while len(server.hits(path)) <= before and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it began downloading"
        time.sleep(0.05)
    time.sleep(0.5)
    assert process.poll() is None, "the run finished before it could be terminated"
    process.send_signal(signal.SIGTERM)
    return time.monotonic()


def test_sigterm_during_refresh_stops_at_once_and_leaves_a_summary_line(
    cli: Cli, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    fetched(cli, http_server)
    _slow(http_server, "/beds.csv")  # changed upstream, and slow to come
    log = tmp_path / "r.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "liberacion", "refresh", "--json", "--log", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    sent = _terminate_when_downloading(process, http_server, "/beds.csv", len(http_server.hits("/beds.csv")))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert time.monotonic() - sent < 5  # stopped at once, not when the download ended
    assert "Traceback" not in err and "terminated" in err
    summary = lines(log.read_text())[-1]
    assert summary["event"] == "summary" and summary["exit_code"] == 143 and "SIGTERM" in summary["error"]
    assert lines(out)[-1] == summary
    assert Lake(home).current("cms.beds").rows == 2  # nothing published after SIGTERM


def test_sigterm_during_fetch_exits_143_and_publishes_nothing(http_server: LocalServer, home: Path) -> None:
    url = _slow(http_server, "/big.csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "liberacion", "fetch", url, "--as", "t.big"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    sent = _terminate_when_downloading(process, http_server, "/big.csv", 0)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert time.monotonic() - sent < 5
    assert "Traceback" not in err and "terminated (SIGTERM)" in err
    assert not Lake(home).exists("t.big")


def test_a_log_fifo_is_not_opened_before_the_run(cli: Cli, http_server: LocalServer, tmp_path: Path) -> None:
    """Trying a FIFO by opening it would end its reader's input; the run would then wait forever."""
    fetched(cli, http_server)
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    done = subprocess.run(
        [sys.executable, "-m", "liberacion", "refresh", "--quiet", "--log", str(fifo)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    received = reader.communicate(timeout=60)[0].decode()
    assert done.returncode == 0, done.stderr
    assert lines(received)[-1]["event"] == "summary"


def test_refresh_json_prints_each_table_as_it_finishes(cli: Cli, http_server: LocalServer, home: Path) -> None:
    # `refresh --json >> log` stopped by `timeout` or systemd: the tables done before still have
    # their lines, as in --log.
    fetched(cli, http_server)
    quick = http_server.add("/quick.csv", CSV_V1, content_type="text/csv")
    assert cli("fetch", quick, "--as", "cms.quick").exit_code == 0
    _slow(http_server, "/beds.csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "liberacion", "refresh", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    first = json.loads(process.stdout.readline())  # before the slow table is done
    assert (first["table"], first["event"]) == ("cms.quick", "unchanged")
    assert process.poll() is None, "the run ended before its slow table was done"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert lines(out)[-1]["event"] == "summary" and all(r["table"] != "cms.quick" for r in lines(out)[:-1])


def test_quiet_prints_no_notes(cli: Cli, tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n4,5\n", encoding="utf-8")
    loud = cli("fetch", str(ragged), "--as", "s.r")
    assert "note: s.r: 1 bad row set aside" in loud.stderr
    for command in (["fetch", str(ragged), "--as", "s.r", "--force"], ["refresh", "--force"]):
        quiet = cli(*command, "--quiet")
        assert (quiet.exit_code, quiet.stdout) == (0, ""), command
        assert "note:" not in quiet.stderr, command


def test_a_renamed_column_is_shown_with_its_old_name(cli: Cli, http_server: LocalServer) -> None:
    # "renamed: hospital_name" said which column came, not which one it took the place of.
    fetched(cli, http_server, "facility_id,facility_name\n010001,General\n010005,Mercy\n")
    http_server.add("/beds.csv", "facility_id,hospital_name\n010001,General\n010005,Mercy\n", content_type="text/csv")
    result = cli("refresh")
    assert result.exit_code == 0, result.stderr
    assert "renamed: facility_name→hospital_name" in result.stdout + result.stderr


def test_a_broken_manifest_is_said_once_under_quiet(cli: Cli, http_server: LocalServer, manifests: Path) -> None:
    # One typo printed its message once per table, then again on the error line.
    datasets = "".join(
        f'\n[[dataset]]\nid = "{name}"\ntitle = "{name}"\nurl = "{http_server.add(f"/{name}.csv", CSV_V1)}"\n'
        for name in ("x", "y")
    )
    path = write_catalog(manifests, "audit", body=datasets)
    assert cli("fetch", "audit/x", "audit/y").exit_code == 0
    path.write_text(path.read_text(encoding="utf-8").replace('id = "x"', 'id = "x"\nkey = ["a"]'), encoding="utf-8")
    result = cli("refresh", "--quiet")
    assert result.exit_code == 5
    assert result.stderr.count("unknown key 'key'") == 1, result.stderr
    assert "failed: audit.x: its catalog's manifest is broken (below)" in result.stderr
    assert lines(cli("refresh", "--json").stdout)[0]["error"].endswith("unknown key 'key' (did you mean 'keys'?)")
