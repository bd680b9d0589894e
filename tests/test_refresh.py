"""`liberacion refresh`: cheap when nothing changed, safe when runs overlap, readable afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liberacion.home import Home, file_lock
from liberacion.lake import Lake
from tests.conftest import ROOT, Cli
from tests.manifests import dkan_pointer, write_catalog
from tests.server import LocalServer

CSV_V1 = "facility_id,beds\n010001,12\n010005,40\n"
CSV_V2 = "facility_id,beds\n010001,12\n010005,41\n010012,7\n"


def fetched(cli: Cli, server: LocalServer, body: str = CSV_V1, table: str = "cms.beds", path: str = "/beds.csv") -> str:
    url = server.add(path, body, content_type="text/csv")
    result = cli("fetch", url, "--as", table, "--json")
    assert result.exit_code == 0, result.stderr
    return url


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_unchanged_costs_one_request_and_no_snapshot(cli: Cli, http_server: LocalServer, home: Path) -> None:
    fetched(cli, http_server)
    before = len(http_server.hits("/beds.csv"))
    result = cli("refresh", "--json")
    assert result.exit_code == 0, result.stderr
    table_event, summary = events(result.stdout)
    assert table_event["table"] == "cms.beds" and table_event["event"] == "unchanged"
    assert summary["event"] == "summary" and summary["unchanged"] == 1 and summary["exit_code"] == 0
    requests = http_server.hits("/beds.csv")[before:]
    assert len(requests) == 1 and requests[0].headers.get("If-None-Match")
    assert len(Lake(home).snapshots("cms.beds")) == 1


def test_unchanged_writes_no_url_state(cli: Cli, http_server: LocalServer, home: Path) -> None:
    """A "not modified" leaves the URL's validators as they were: nothing written, no fsync."""
    fetched(cli, http_server)
    states = sorted((home / "state" / "urls").glob("*.json"))
    assert states
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in states]
    time.sleep(0.01)
    result = cli("refresh", "--json")
    assert result.exit_code == 0 and events(result.stdout)[0]["event"] == "unchanged", result.stdout
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in states] == before
    assert sorted((home / "state" / "urls").glob("*.json")) == states


def test_a_changed_file_makes_a_new_snapshot(cli: Cli, http_server: LocalServer, home: Path) -> None:
    fetched(cli, http_server)
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")
    result = cli("refresh", "cms.beds", "--json")
    assert result.exit_code == 0, result.stderr
    assert events(result.stdout)[0]["event"] == "fetched"
    lake = Lake(home)
    assert lake.current("cms.beds").rows == 3 and len(lake.snapshots("cms.beds")) == 2
    assert cli("sql", "select facility_id from cms.beds order by 1 limit 1").stdout == "facility_id\n010001\n"


def test_schema_change_evolves_by_default_and_fails_on_request(cli: Cli, http_server: LocalServer, home: Path) -> None:
    fetched(cli, http_server)
    http_server.add("/beds.csv", "facility_id,beds,icu_beds\n010001,12,2\n", content_type="text/csv")
    failed = cli("refresh", "--on-schema-change", "fail", "--json")
    assert failed.exit_code == 1
    assert events(failed.stdout)[0]["event"] == "failed" and "columns changed" in events(failed.stdout)[0]["error"]
    # The same record evolve reports, for cron tooling to read rather than parse the error text.
    change = events(failed.stdout)[0]["schema_change"]
    assert change is not None and change["added"] == [{"name": "icu_beds", "type": "BIGINT"}]
    assert change["removed"] == [] and change["retyped"] == []
    assert Lake(home).current("cms.beds").rows == 2  # the old snapshot stays
    evolved = cli("refresh", "--json")
    assert evolved.exit_code == 0
    event = events(evolved.stdout)[0]
    assert event["event"] == "schema-changed"
    assert event["schema_change"]["added"] == [{"name": "icu_beds", "type": "BIGINT"}]
    assert [c.name for c in Lake(home).current("cms.beds").schema] == ["facility_id", "beds", "icu_beds"]


def test_check_reports_without_downloading(cli: Cli, http_server: LocalServer, home: Path) -> None:
    fetched(cli, http_server)
    assert cli("refresh", "--check").exit_code == 0
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")
    result = cli("refresh", "--check", "--json")
    assert result.exit_code == 10
    assert events(result.stdout)[0]["event"] == "changed"
    assert Lake(home).current("cms.beds").rows == 2 and len(Lake(home).snapshots("cms.beds")) == 1


def test_a_file_answering_404_is_gone_and_checked_again(cli: Cli, http_server: LocalServer, home: Path) -> None:
    fetched(cli, http_server)
    del http_server.routes["/beds.csv"]
    result = cli("refresh", "--json")
    assert result.exit_code == 1  # a file that vanished while its dataset is still listed needs a look
    event, summary = events(result.stdout)
    assert event["event"] == "gone" and event["stage"] == "download" and event["error_type"] == "Gone"
    assert "HTTP 404" in event["error"] and set(event["stages"]) == {"resolve", "download"}
    assert summary["gone"] == 1 and summary["exit_code"] == 1
    assert Lake(home).current("cms.beds").rows == 2  # its data stays
    hits = len(http_server.hits("/beds.csv"))
    again = cli("refresh", "--json")
    assert events(again.stdout)[0]["event"] == "gone" and len(http_server.hits("/beds.csv")) == hits + 1


def test_a_dataset_dropped_from_its_listing_is_retired_and_not_rechecked(
    cli: Cli, http_server: LocalServer, home: Path, manifests: Path
) -> None:
    url = http_server.add("/beds.csv", CSV_V1, content_type="text/csv")
    dataset = f'\n[[dataset]]\nid = "beds"\nurl = "{url}"\n'
    write_catalog(manifests, "hhs", body=dataset)
    assert cli("fetch", "hhs/beds", "--json").exit_code == 0
    write_catalog(manifests, "hhs", body='\n[[dataset]]\nid = "other"\nurl = "https://example.org/o.csv"\n')
    result = cli("refresh", "--json")
    assert result.exit_code == 0  # retired is the catalog's decision, not a failure
    event = events(result.stdout)[0]
    assert event["event"] == "retired" and event["stage"] == "resolve" and event["error_type"] == "NoDataset"
    assert set(event["stages"]) == {"resolve"}
    assert Lake(home).current("hhs.beds").rows == 2  # its data stays
    hits = len(http_server.hits("/beds.csv"))
    again = cli("refresh", "--json")
    skipped = events(again.stdout)[0]
    assert skipped == {**skipped, "event": "skipped", "error": None, "reason": "retired"}
    assert len(http_server.hits("/beds.csv")) == hits


def test_a_manifest_column_type_fixed_later_reaches_the_next_refresh(
    cli: Cli, http_server: LocalServer, home: Path, manifests: Path
) -> None:
    """The manifest's types are the catalog's, not the user's: refresh must not freeze them."""
    url = http_server.add("/beds.csv", CSV_V1, content_type="text/csv")

    def manifest(beds_type: str) -> None:
        body = f'\n[[dataset]]\nid = "beds"\nurl = "{url}"\n\n[dataset.columns]\nbeds = "{beds_type}"\n'
        write_catalog(manifests, "hhs", body=body)

    manifest("VARCHAR")
    assert cli("fetch", "hhs/beds", "--type", "facility_id=VARCHAR").exit_code == 0
    types = {c.name: c.type for c in Lake(home).current("hhs.beds").schema}
    assert types == {"facility_id": "VARCHAR", "beds": "VARCHAR"}
    manifest("BIGINT")  # the publisher's data dictionary says beds is a count
    result = cli("refresh", "--json")
    assert result.exit_code == 0, result.stderr
    assert events(result.stdout)[0]["event"] == "schema-changed"  # same bytes, converted anew
    current = Lake(home).current("hhs.beds")
    assert {c.name: c.type for c in current.schema} == {"facility_id": "VARCHAR", "beds": "BIGINT"}
    assert current.provenance.recipe is not None and current.provenance.recipe.types == {"facility_id": "VARCHAR"}
    history = json.loads(cli("history", "hhs.beds", "-f", "json").stdout)
    assert all("download" in entry["stages"] and "convert" in entry["stages"] for entry in history)


def test_a_check_does_not_count_as_a_refresh_for_older_than(cli: Cli, http_server: LocalServer, home: Path) -> None:
    fetched(cli, http_server)
    assert cli("refresh", "--quiet").exit_code == 0
    state = home / "state" / "refresh.json"
    records = json.loads(state.read_text())
    records["cms.beds"]["checked"] -= 2 * 3600  # the last refresh: two hours ago
    state.write_text(json.dumps(records))
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")
    assert events(cli("refresh", "--check", "--json").stdout)[0]["event"] == "changed"
    # The cron job after someone asked: the table the check found changed is fetched, not skipped
    # as "checked recently".
    result = cli("refresh", "--older-than", "1h", "--json")
    assert events(result.stdout)[0]["event"] == "fetched"


def test_older_than_skips_recent_checks_and_log_appends(cli: Cli, http_server: LocalServer, tmp_path: Path) -> None:
    fetched(cli, http_server)
    log = tmp_path / "logs" / "refresh.jsonl"
    log.parent.mkdir()  # --log makes no directories
    assert cli("refresh", "--log", str(log), "--quiet").exit_code == 0
    result = cli("refresh", "--older-than", "1h", "--json", "--log", str(log))
    assert events(result.stdout)[0]["event"] == "skipped"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["unchanged", "summary", "skipped", "summary"]
    assert cli("refresh", "--older-than", "soon").exit_code == 2


def test_a_second_refresh_exits_busy_or_waits(cli: Cli, http_server: LocalServer, home: Path) -> None:
    fetched(cli, http_server)
    log = home.parent / "refresh.jsonl"
    with file_lock(Home(home).locks / "refresh.lock"):
        busy = cli("refresh")
        logged = cli("refresh", "--json", "--log", str(log))
    assert busy.exit_code == 75 and "another refresh is running" in busy.stderr
    # A cron log shows the run that could not start: a summary with its exit code and why.
    summary = json.loads(log.read_text())
    assert logged.exit_code == 75 and json.loads(logged.stdout) == summary
    assert summary["event"] == "summary" and summary["exit_code"] == 75
    assert "another refresh is running" in summary["error"]
    assert cli("refresh", "--wait", "5").exit_code == 0


def test_a_check_runs_beside_a_refresh(cli: Cli, http_server: LocalServer, home: Path) -> None:
    # Someone asking what changed must not make the cron refresh that starts meanwhile exit 75.
    fetched(cli, http_server)
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")
    with file_lock(Home(home).locks / "refresh.lock"):  # a refresh is running
        asked = cli("refresh", "--check", "--json")
    assert asked.exit_code == 10 and events(asked.stdout)[0]["event"] == "changed"
    assert (
        not (home / "state" / "refresh.json").exists()
        or "cms.beds" not in (home / "state" / "refresh.json").read_text()
    )


def test_the_report_has_every_key_on_every_line(cli: Cli, http_server: LocalServer) -> None:
    fetched(cli, http_server)
    http_server.add("/beds.csv", b"", status=404)
    result = cli("refresh", "--json")
    *tables, summary = events(result.stdout)
    assert set(tables[0]) >= {"table", "event", "ref", "snapshot", "rows", "bytes", "error", "schema_change"}
    assert tables[0]["event"] == "gone" and tables[0]["rows"] is None
    assert summary["fetched"] == 0 and summary["unchanged"] == 0 and summary["gone"] == 1
    plain = cli("refresh")  # for people (here a pipe): the reason on stderr and in the detail column
    gone = [line for line in plain.stderr.splitlines() if line.startswith("gone: cms.beds: ")]
    assert len(gone) == 1 and "404" in gone[0] and "cms.beds: cms.beds" not in gone[0]
    assert "404" in plain.stdout.splitlines()[1]
    assert plain.stderr.splitlines()[-1].startswith("refresh: 1 gone in ")  # no "0 fetched, 0 failed..."


def test_two_refresh_processes_started_together(cli: Cli, http_server: LocalServer, home: Path) -> None:
    http_server.add("/slow.csv", CSV_V1, content_type="text/csv", rate=2000)
    url = http_server.url("/slow.csv")
    assert cli("fetch", url, "--as", "cms.slow").exit_code == 0
    http_server.add("/slow.csv", CSV_V2 * 40, content_type="text/csv", rate=2000)  # changed, takes ~1.5 s
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "liberacion", "refresh", "--quiet"], env=env, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    codes = sorted(p.wait(timeout=120) for p in procs)
    assert codes == [0, 75]
    assert Lake(home).current("cms.slow").rows > 2 and len(Lake(home).snapshots("cms.slow")) == 2


def test_a_killed_refresh_leaves_a_lock_the_next_run_recovers(cli: Cli, http_server: LocalServer, home: Path) -> None:
    fetched(cli, http_server)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from liberacion.home import file_lock\n"
            "with file_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(600)",
            str(Home(home).locks / "refresh.lock"),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    assert cli("refresh").exit_code == 75
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    assert (Home(home).locks / "refresh.lock").exists()  # the file stays; the lock died with its holder
    assert cli("refresh").exit_code == 0


def test_refresh_of_a_missing_table_is_not_found(cli: Cli) -> None:
    result = cli("refresh", "cms.nothing")
    assert result.exit_code == 3 and "no table cms.nothing" in result.stderr


def test_real_nchs_releases_refresh_then_diff(cli: Cli, http_server: LocalServer, realdata: Path, home: Path) -> None:
    name = "NCHS_-_Leading_Causes_of_Death__United_States.csv"
    older, newer = realdata / "cdc" / "csv_to_sqlite3" / name, realdata / "cdc" / "ds4biomed" / name
    fetched(cli, http_server, older.read_text(encoding="utf-8"), table="cdc.leading_causes", path="/lcod.csv")
    http_server.add("/lcod.csv", newer, content_type="text/csv")
    started = time.time()
    result = cli("refresh", "--json")
    assert result.exit_code == 0 and events(result.stdout)[0]["event"] == "fetched", result.stderr
    assert time.time() - started < 60
    diff = cli("diff", "cdc.leading_causes", "--key", "year,cause_name,state", "-f", "json")
    assert diff.exit_code == 0, diff.stderr
    counts = {r["change"]: r["count"] for r in json.loads(diff.stdout) if r["change"].startswith("rows")}
    expected = _expected_counts(older, newer)
    assert counts == {"rows": 10_868 - 10_296, **expected}


def _expected_counts(older: Path, newer: Path) -> dict[str, int]:
    """Added, removed and changed rows by (year, cause, state), computed without liberacion."""
    import csv

    def load(path: Path) -> dict[tuple[str, str, str], tuple[int, str]]:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return {
                (r["Year"], r["Cause Name"], r["State"]): (
                    int(r["Deaths"].replace(",", "")),
                    f"{float(r['Age-adjusted Death Rate'].replace(',', '')):g}",
                )
                for r in csv.DictReader(fh)
            }

    old, new = load(older), load(newer)
    return {
        "rows_added": len(new.keys() - old.keys()),
        "rows_removed": len(old.keys() - new.keys()),
        "rows_changed": sum(1 for k in old.keys() & new.keys() if old[k] != new[k]),
    }


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("30s", 30), ("15m", 900), ("12h", 43200), ("2d", 172800)])
def test_durations(text: str, seconds: float) -> None:
    from liberacion.refreshing import parse_duration

    assert parse_duration(text) == seconds


def test_check_of_a_local_file_compares_its_sha256(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "beds.csv"
    source.write_text(CSV_V1)
    assert cli("fetch", str(source), "--as", "local.beds").exit_code == 0
    assert cli("refresh", "--check").exit_code == 0
    source.write_text(CSV_V2)
    assert cli("refresh", "--check").exit_code == 10
    assert events(cli("refresh", "--json").stdout)[0]["event"] == "fetched"


def test_check_of_a_local_file_that_is_gone_says_what_refresh_says(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "gone.csv"
    source.write_text(CSV_V1)
    assert cli("fetch", str(source), "--as", "local.gone").exit_code == 0
    source.unlink()
    checked, refreshed = cli("refresh", "--check", "--json"), cli("refresh", "--json")
    assert checked.exit_code == refreshed.exit_code == 1
    [check_event, _], [refresh_event, _] = events(checked.stdout), events(refreshed.stdout)
    assert check_event["error"] == refresh_event["error"] and "no such file" in check_event["error"]
    assert check_event["event"] == refresh_event["event"] == "failed"


def test_check_asks_the_file_of_a_source_id_dataset_not_only_its_metadata(
    cli: Cli, http_server: LocalServer, home: Path, manifests: Path
) -> None:
    """The DKAN item (metadata) says nothing changed, but the file at the same URL was replaced."""
    file_url = http_server.add("/files/beds.csv", CSV_V1, content_type="text/csv")
    item = dkan_pointer(http_server, manifests, "abcd-1234", file_url)
    assert cli("fetch", "pdc/beds").exit_code == 0
    assert cli("refresh", "--check").exit_code == 0
    http_server.add("/files/beds.csv", CSV_V2, content_type="text/csv")  # replaced in place
    result = cli("refresh", "--check", "--json")
    assert result.exit_code == 10 and events(result.stdout)[0]["event"] == "changed"
    moved = {**item, "distribution": [{"downloadURL": http_server.add("/files/beds-v2.csv", CSV_V2)}]}
    http_server.add("/pdc/items/abcd-1234", json.dumps(moved), content_type="application/json")
    assert cli("refresh", "--check").exit_code == 10  # the catalog now points at another file


def test_a_failed_refresh_does_not_count_as_a_check_for_older_than(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    # An hourly `refresh --older-than 1d` must try a table whose refresh failed again next hour,
    # not a day later: only a check that got an answer counts.
    fetched(cli, http_server)
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv", status=500)
    assert events(cli("refresh", "--json").stdout)[0]["event"] == "failed"
    record = json.loads((home / "state" / "refresh.json").read_text())["cms.beds"]
    assert record["last_event"] == "failed" and "failed_at" in record
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")
    assert events(cli("refresh", "--older-than", "1d", "--json").stdout)[0]["event"] == "fetched"
    assert events(cli("refresh", "--older-than", "1d", "--json").stdout)[0]["event"] == "skipped"
    assert "failed_at" not in json.loads((home / "state" / "refresh.json").read_text())["cms.beds"]


def test_older_than_tries_a_table_again_whose_refresh_failed_since_its_last_check(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    # Checked a minute ago, then a run (by hand, or another cron line) failed: the next
    # `refresh --older-than 1h` tries it again, as it does a table that failed before any check.
    fetched(cli, http_server)
    assert events(cli("refresh", "--json").stdout)[0]["event"] == "unchanged"
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv", status=500)
    assert events(cli("refresh", "--json").stdout)[0]["event"] == "failed"
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")
    assert events(cli("refresh", "--older-than", "1h", "--json").stdout)[0]["event"] == "fetched"
    assert events(cli("refresh", "--older-than", "1h", "--json").stdout)[0]["event"] == "skipped"
    del http_server.routes["/beds.csv"]  # gone is a failure too
    assert events(cli("refresh", "--json").stdout)[0]["event"] == "gone"
    assert events(cli("refresh", "--older-than", "1h", "--json").stdout)[0]["event"] == "gone"


def test_tables_shows_whether_the_last_refresh_of_a_table_failed(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    # A table that cron can no longer refresh looked as healthy as any: `tables` showed only when
    # its data last changed.
    fetched(cli, http_server)
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv", status=500)
    assert cli("refresh").exit_code == 1
    (record,) = json.loads(cli("tables", "--format", "json").stdout)
    assert record["last_refresh"] == "failed" and record["checked_at"] is None
    shown = cli("tables", "--format", "table")
    assert "the last refresh of cms.beds failed" in shown.stderr
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv")
    assert cli("refresh").exit_code == 0
    (record,) = json.loads(cli("tables", "--format", "json").stdout)
    assert record["last_refresh"] == "fetched" and record["checked_at"]
    assert "last refresh" not in cli("tables", "--format", "table").stderr


def test_tables_reads_the_refresh_records_without_the_catalogs_code(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    """`tables` shows what the last refresh found without importing the refresh's and the catalogs'
    modules (``benchmarks/startup.py``: `tables` on an empty home)."""
    fetched(cli, http_server)
    http_server.add("/beds.csv", CSV_V2, content_type="text/csv", status=500)
    assert cli("refresh").exit_code == 1
    probe = (
        "import atexit, sys\n"
        "loaded = ('liberacion.refreshing', 'liberacion.catalogs.index')\n"
        "atexit.register(lambda: print(sorted(m for m in loaded if m in sys.modules), file=sys.stderr))\n"
        "sys.argv = ['liberacion', 'tables', '--format', 'json']\n"
        "from liberacion.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["last_refresh"] == "failed"
    assert proc.stderr.splitlines()[-1] == "[]", proc.stderr


def test_too_many_bad_rows_in_a_refresh_say_the_fetch_that_raises_the_limit(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    """A refresh failed with "raise the limit with --max-bad-rows", and ``refresh --max-bad-rows``
    is "No such option"; the limit is the recipe's, so the advice is its fetch, options and all
    (a fetch without the --type would retype the column), then refreshes replay the new limit."""
    url = http_server.add("/beds.csv", CSV_V1, content_type="text/csv")
    assert cli("fetch", url, "--as", "cms.beds", "--type", "beds=VARCHAR").exit_code == 0
    bad = "facility_id,beds\n010001,12\nx,1,2\ny,3,4\n010012,7\n"
    http_server.add("/beds.csv", bad, content_type="text/csv")
    result = cli("refresh", "--json")
    assert result.exit_code == 1
    error = events(result.stdout)[0]["error"]
    advice = f"raise the limit with: liberacion fetch {url} --as cms.beds --type beds=VARCHAR --max-bad-rows N"
    assert advice in error, error
    shown = cli("--home", str(home), "refresh")  # the line a person reads names the home typed too
    assert f"raise the limit with: liberacion --home {home} fetch {url} --as cms.beds" in shown.stderr
    followed = cli(*advice.split(": ", 1)[1].replace(" N", " 5").split()[1:])
    assert followed.exit_code == 0, followed.stderr
    http_server.add("/beds.csv", bad + "z,5,6\n", content_type="text/csv")
    assert cli("refresh").exit_code == 0
    assert (
        cli("sql", "-f", "csv", "select typeof(beds) t, count(*) n from cms.beds group by 1").stdout
        == "t,n\nVARCHAR,2\n"
    )
    import liberacion

    http_server.add("/beds.csv", bad + "z,5,6\n" * 9, content_type="text/csv")
    [event] = liberacion.refresh().events
    said = f"liberacion.fetch({url!r}, as_table='cms.beds', types={{'beds': 'VARCHAR'}}, max_bad_rows=N)"
    assert event.error is not None and said in event.error, event.error
