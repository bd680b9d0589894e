"""Months of cron, compressed: `discover` then `refresh --json` day after day while the server
changes things (new rows, nothing, new columns, 500s, an HTML page, a cut body, a 404, a listing
that drops a dataset). What a user who comes back must find: every day's exit code and lines as
the README says, the last good snapshot whole after each bad day, the data the server holds now,
and a home that does not grow with the number of days."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from liberacion.lake import Lake
from tests.conftest import Cli
from tests.manifests import write_catalog
from tests.server import LocalServer

DAYS = 20


@pytest.fixture(autouse=True)
def _cron_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBERACION_RETRIES", "1")  # a day of 500s costs two tries per file, not six
    monkeypatch.setenv("LIBERACION_KEEP", "2")  # retention fills in a few days, so growth shows early


def listing(server: LocalServer, ids: list[str]) -> str:
    datasets = [
        {
            "identifier": f"https://example.gov/dataset/{i}",
            "title": f"Dataset {i}",
            "description": "d",
            "distribution": [{"downloadURL": server.url(f"/d/{i}.csv"), "mediaType": "text/csv"}],
        }
        for i in ids
    ]
    return json.dumps({"dataset": datasets})


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def by_table(records: list[dict]) -> dict[str, dict]:
    return {r["table"]: r for r in records if r["event"] != "summary"}


def discovered(cli: Cli, server: LocalServer, manifests: Path, ids: list[str]) -> None:
    server.add("/data.json", listing(server, ids), content_type="application/json")
    write_catalog(manifests, "sim", [("dcat-us", server.url("/data.json"))])
    result = cli("discover", "sim")
    assert result.exit_code == 0, result.stderr


# -- a dataset its listing dropped for a while ---------------------------------------------------


def test_a_dataset_listed_again_after_it_was_retired_is_refreshed_again(
    cli: Cli, http_server: LocalServer, manifests: Path, home: Path
) -> None:
    http_server.add("/d/a.csv", "k,v\n1,2\n", content_type="text/csv")
    http_server.add("/d/e.csv", "e_id,amount\n1,10\n", content_type="text/csv")
    discovered(cli, http_server, manifests, ["a", "e"])
    assert cli("fetch", "sim/a", "sim/e", "--json").exit_code == 0
    discovered(cli, http_server, manifests, ["a"])  # a listing that drops e for a day
    result = cli("refresh", "--json")
    assert result.exit_code == 0 and by_table(lines(result.stdout))["sim.e"]["event"] == "retired"
    result = cli("refresh", "--json")
    assert by_table(lines(result.stdout))["sim.e"]["event"] == "skipped"  # while it is not listed
    # The publisher lists it again, with a new release: cron must pick it up without anyone naming it.
    http_server.add("/d/e.csv", "e_id,amount\n1,10\n2,20\n", content_type="text/csv")
    discovered(cli, http_server, manifests, ["a", "e"])
    result = cli("refresh", "--json")
    assert result.exit_code == 0, result.stdout
    assert by_table(lines(result.stdout))["sim.e"]["event"] == "fetched"
    assert Lake(home).current("sim.e").rows == 2
    again = cli("refresh", "--json")  # and it stays refreshed: no retired mark left behind
    assert by_table(lines(again.stdout))["sim.e"]["event"] == "unchanged"


def test_a_curated_dataset_put_back_in_its_manifest_is_refreshed_again(
    cli: Cli, http_server: LocalServer, manifests: Path, home: Path
) -> None:
    url = http_server.add("/beds.csv", "k,v\n1,2\n", content_type="text/csv")
    write_catalog(manifests, "hhs", body=f'\n[[dataset]]\nid = "beds"\nurl = "{url}"\n')
    assert cli("fetch", "hhs/beds").exit_code == 0
    write_catalog(manifests, "hhs", body='\n[[dataset]]\nid = "other"\nurl = "https://example.org/o.csv"\n')
    assert by_table(lines(cli("refresh", "--json").stdout))["hhs.beds"]["event"] == "retired"
    write_catalog(manifests, "hhs", body=f'\n[[dataset]]\nid = "beds"\nurl = "{url}"\n')  # put back
    http_server.add("/beds.csv", "k,v\n1,2\n3,4\n", content_type="text/csv")
    result = cli("refresh", "--json")
    assert result.exit_code == 0 and by_table(lines(result.stdout))["hhs.beds"]["event"] == "fetched"
    assert Lake(home).current("hhs.beds").rows == 2


def test_a_retired_dataset_still_unlisted_stays_skipped_without_a_request(
    cli: Cli, http_server: LocalServer, manifests: Path
) -> None:
    http_server.add("/d/a.csv", "k,v\n1,2\n", content_type="text/csv")
    http_server.add("/d/e.csv", "e_id,amount\n1,10\n", content_type="text/csv")
    discovered(cli, http_server, manifests, ["a", "e"])
    assert cli("fetch", "sim/a", "sim/e").exit_code == 0
    discovered(cli, http_server, manifests, ["a"])
    assert by_table(lines(cli("refresh", "--json").stdout))["sim.e"]["event"] == "retired"
    hits = len(http_server.hits("/d/e.csv"))
    for _ in range(3):
        assert by_table(lines(cli("refresh", "--json").stdout))["sim.e"]["event"] == "skipped"
    assert len(http_server.hits("/d/e.csv")) == hits


# -- twenty days ---------------------------------------------------------------------------------


def data_a(day: int) -> str:
    """Changes every other day: a new row and new values."""
    version = day // 2
    return "id,value\n" + "".join(f"{i:04d},{(i * 7 + version) % 100}\n" for i in range(40 + version))


def data_d(day: int) -> str:
    """A column added on day 5, one removed on day 10, retyped on day 15."""
    if day < 5:
        return "k,x\n1,2\n2,4\n"
    if day < 10:
        return "k,x,y\n1,2,0.5\n2,4,1.5\n"
    if day < 15:
        return "k,y\n1,0.5\n2,1.5\n"
    return "k,y\n1,a\n2,b\n"


# day -> (fault, the tables that fail that day, and how the refresh names each failure)
FAULTS: dict[int, tuple[str, dict[str, str]]] = {
    3: ("500", {"sim.a": "failed", "sim.b": "failed", "sim.d": "failed", "local.f": "failed"}),
    6: ("html", {"sim.a": "failed"}),
    8: ("cut", {"sim.a": "failed"}),
    11: ("404", {"sim.a": "gone", "local.f": "gone"}),
    13: ("empty", {"sim.a": "failed"}),
}


def serve(server: LocalServer, day: int) -> None:
    server.routes.clear()
    server.add("/data.json", listing(server, ["a", "b", "d"]), content_type="application/json")
    server.add("/d/a.csv", data_a(day), content_type="text/csv")
    server.add("/d/b.csv", "code,label\n001,x\n002,y\n", content_type="text/csv")
    server.add("/d/d.csv", data_d(day), content_type="text/csv")
    server.add("/plain/f.csv", f"f,g\n1,{day // 7}\n", content_type="text/csv")
    fault = FAULTS.get(day, ("", {}))[0]
    if fault == "500":
        for route in server.routes.values():
            route.fail_times, route.fail_status = 1000, 500
    elif fault == "html":
        server.add("/d/a.csv", "<!DOCTYPE html><html><body>Maintenance</body></html>", content_type="text/html")
    elif fault == "cut":  # no length to check it by, cut inside a row's first field
        body = data_a(day)
        cut = body.rfind("\n", 0, len(body) // 2) + 3
        server.add("/d/a.csv", body[:cut], content_type="text/csv", chunked=True, etag="")
    elif fault == "404":
        del server.routes["/d/a.csv"], server.routes["/plain/f.csv"]
    elif fault == "empty":
        server.add("/d/a.csv", "id,value\n", content_type="text/csv")


def home_files(home: Path) -> list[Path]:
    return [Path(d) / f for d, _dirs, files in os.walk(home) for f in files]


def test_twenty_days_of_cron_keep_the_data_right_and_the_home_bounded(
    cli: Cli, http_server: LocalServer, manifests: Path, home: Path, tmp_path: Path
) -> None:
    serve(http_server, 0)
    discovered(cli, http_server, manifests, ["a", "b", "d"])
    assert cli("fetch", "sim/a", "sim/b", "sim/d").exit_code == 0
    assert cli("fetch", http_server.url("/plain/f.csv"), "--as", "local.f").exit_code == 0
    lake, log = Lake(home), tmp_path / "refresh.jsonl"
    sizes: dict[int, tuple[int, int]] = {}
    for day in range(1, DAYS + 1):
        before = {name: lake.current(name) for name in lake.names()}
        serve(http_server, day)
        if day in FAULTS:  # as the README's crontab: `discover; refresh`, its failure must not cost the refresh
            cli("discover", "sim")
        result = cli("refresh", "--quiet", "--json", "--log", str(log))
        records = lines(result.stdout)
        events, summary = by_table(records), records[-1]
        failing = FAULTS.get(day, ("", {}))[1]
        # Exit codes and lines as README promises: 1 when any table failed or is gone, else 0.
        assert result.exit_code == (1 if failing else 0), (day, result.stdout, result.stderr)
        assert summary["event"] == "summary" and summary["exit_code"] == result.exit_code
        assert summary["tables"] == len(events) == 4
        assert sum(summary[e] for e in ("unchanged", "fetched", "schema-changed", "failed", "gone")) == 4
        assert {t: e["event"] for t, e in events.items() if t in failing} == failing, day
        for table, event in events.items():
            if table in failing:  # a bad day never touches the last good snapshot
                assert event["error"] and event["stage"] and event["error_type"]
                assert lake.current(table).id == before[table].id
            else:
                assert event["event"] in ("unchanged", "fetched", "schema-changed") and event["error"] is None
        # Every good day, each table holds what the server holds now.
        if not failing:
            assert lake.current("sim.a").rows == len(data_a(day).splitlines()) - 1
        assert lake.current("sim.d").rows == 2 and lake.current("sim.b").rows == 2
        files = home_files(home)
        sizes[day] = (len(files), sum(f.stat().st_size for f in files))
    # Nothing accumulates: no staging or temporary leftovers, no WAL, no scratch, no partial file.
    leftovers = [
        f
        for f in home_files(home)
        if ".staging-" in str(f) or f.suffix in (".tmp", ".wal", ".part") or "/work/" in str(f)
    ]
    assert leftovers == []
    downloads = [f for f in home_files(home / "downloads") if ".locks" not in f.parts]
    assert downloads == []
    for name in lake.names():
        assert len(lake.snapshots(name)) <= 2  # LIBERACION_KEEP
    # Once retention is full, the home's file count and size stay where they were.
    files_then, bytes_then = sizes[7]
    assert max(count for day, (count, _) in sizes.items() if day >= 7) <= files_then + 2
    assert sizes[DAYS][1] < bytes_then * 1.5
    # The log has one summary per day; every line is JSON.
    summaries = [r for r in lines(log.read_text()) if r["event"] == "summary"]
    assert len(summaries) == DAYS
    # history, diff, tables and sql still read well after the days.
    history = json.loads(cli("history", "sim.d", "--format", "json").stdout)
    assert len(history) == 2 and "retyped" in history[-1]["schema_changes"]
    diff = cli("diff", "sim.a", "--key", "id", "--format", "json")
    assert diff.exit_code == 0 and any(r["change"] == "rows" for r in json.loads(diff.stdout))
    tables = {t["table"]: t for t in json.loads(cli("tables", "--format", "json").stdout)}
    assert tables["a"]["rows"] == len(data_a(DAYS).splitlines()) - 1 and tables["a"]["snapshots"] <= 2
    query = cli("sql", "--format", "csv", "select count(*) as n, max(value) as top from sim.a")
    values = [int(v) for v in data_a(DAYS).splitlines()[1:] for v in [v.split(",")[1]]]
    assert query.stdout.split() == ["n,top", f"{len(values)},{max(values)}"]


# -- a file the publisher moved, bytes unchanged ---------------------------------------------------


def test_check_after_the_catalog_moved_an_unchanged_file_says_unchanged_until_it_changes(
    cli: Cli, http_server: LocalServer, manifests: Path
) -> None:
    body = "id,v\n1,2\n3,4\n"

    def listed_at(path: str) -> None:
        entry = {
            "identifier": "https://example.gov/dataset/a",
            "title": "A",
            "description": "d",
            "distribution": [{"downloadURL": http_server.url(path), "mediaType": "text/csv"}],
        }
        http_server.add("/data.json", json.dumps({"dataset": [entry]}), content_type="application/json")
        assert cli("discover", "sim").exit_code == 0

    write_catalog(manifests, "sim", [("dcat-us", http_server.url("/data.json"))])
    http_server.add("/2026-01/a.csv", body, content_type="text/csv")
    listed_at("/2026-01/a.csv")
    assert cli("fetch", "sim/a").exit_code == 0
    http_server.add("/2026-02/a.csv", body, content_type="text/csv")  # a new release folder, the same bytes
    listed_at("/2026-02/a.csv")
    check = cli("refresh", "--check", "--json")
    assert check.exit_code == 10  # a file this home never read: only a download can tell
    result = cli("refresh", "--json")
    assert result.exit_code == 0 and by_table(lines(result.stdout))["sim.a"]["event"] == "unchanged"
    for _ in range(2):  # every night after: the refresh found the same bytes, so must the check
        check = cli("refresh", "--check", "--json")
        assert check.exit_code == 0, check.stdout
        assert by_table(lines(check.stdout))["sim.a"]["event"] == "unchanged"
    http_server.add("/2026-02/a.csv", body + "5,6\n", content_type="text/csv")  # replaced in place
    check = cli("refresh", "--check", "--json")
    assert check.exit_code == 10 and by_table(lines(check.stdout))["sim.a"]["event"] == "changed"


# -- a long-lived process ----------------------------------------------------------------------


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="no /proc here")
def test_a_long_lived_process_refreshing_keeps_its_open_files_and_threads_flat(http_server: LocalServer) -> None:
    import threading

    import liberacion

    http_server.add("/x.csv", data_a(0), content_type="text/csv")
    http_server.add("/y.csv", "a,b\n1,2\n", content_type="text/csv")
    liberacion.fetch(http_server.url("/x.csv"), as_table="t.x")
    liberacion.fetch(http_server.url("/y.csv"), as_table="t.y")
    liberacion.refresh()  # the first run opens what every run shares (the engine, the client's pool)
    files, threads = open_files(), threading.active_count()
    for day in range(1, DAYS + 1):
        http_server.add("/x.csv", data_a(day), content_type="text/csv")
        http_server.routes["/y.csv"].fail_times = 100 if day % 7 == 0 else 0  # now and then a day of 503s
        report = liberacion.refresh()
        assert report.exit_code == (1 if day % 7 == 0 else 0)
        assert liberacion.sql("select count(*) from t.x").fetchall() == [(len(data_a(day).splitlines()) - 1,)]
    assert open_files() <= files and threading.active_count() <= threads
