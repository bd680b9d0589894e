"""`liberacion fetch` end to end: refs, publishing, unchanged checks, failures, locks, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from liberacion.download import PARTIAL, url_key
from liberacion.download.state import load_url_state
from liberacion.fetching import FetchOptions, fetch
from liberacion.home import Home
from liberacion.lake import Lake
from tests.conftest import ROOT, Cli
from tests.server import LocalServer

CSV = "Facility ID,State,Score\n010001,AL,3\n01014F,AL,Not Available\n220071,MA,5\n"
CSV2 = CSV + "330101,NY,4\n"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBERACION_BACKOFF", "0.01")
    monkeypatch.setenv("LIBERACION_TIMEOUT", "5")


def manifest(tmp_path: Path, datasets: list[dict[str, Any]], name: str = "cms") -> Path:
    """A catalog manifest in TOML, passed to the CLI with --catalogs."""
    lines = [f'name = "{name}"', f'title = "{name.upper()} test catalog"']
    for entry in datasets:
        lines.append("[[dataset]]")
        for key, value in entry.items():
            if key != "columns":
                lines.append(f"{key} = {json.dumps(value)}")
        if "columns" in entry:
            lines.append("[dataset.columns]")
            lines.extend(f'{k} = "{v}"' for k, v in entry["columns"].items())
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_catalog_ref_lands_in_its_table(cli: Cli, http_server: LocalServer, tmp_path: Path, home: Path) -> None:
    url = http_server.add("/hgi.csv", CSV, content_type="text/csv")
    catalogs = manifest(tmp_path, [{"id": "hospital-general-information", "title": "Hospitals", "url": url}])
    result = cli("--catalogs", str(catalogs), "fetch", "cms/hospital-general-information", "--json")
    assert result.exit_code == 0, result.stderr
    [record] = json_lines(result.stdout)
    assert record["table"] == "cms.hospital_general_information" and record["status"] == "fetched"
    assert record["rows"] == 3 and record["bytes"] == len(CSV) and record["error"] is None
    assert set(record) == {
        *("ref", "table", "status", "rows", "rejects", "bytes", "snapshot", "seconds", "error"),
        *("stage", "error_type", "stages"),
    }
    assert record["rejects"] == 0
    assert record["stage"] is None and set(record["stages"]) == {"resolve", "download", "convert", "publish"}
    query = cli("sql", "select facility_id from cms.hospital_general_information order by 1", "-f", "csv")
    assert query.stdout.split() == ["facility_id", "010001", "01014F", "220071"]
    snap = Lake(home).current("cms.hospital_general_information")
    assert snap.id == record["snapshot"]
    prov = snap.provenance
    assert prov.ref == "cms/hospital-general-information" and prov.dataset_id == "hospital-general-information"
    assert prov.source_url == url and prov.etag and prov.last_modified and prov.raw_bytes == len(CSV)
    assert prov.downloads[0].url == url and prov.downloads[0].sha256 == prov.sha256
    # the raw download is not kept once published; the URL's validators are
    assert not any((Home(home).downloads / url_key(url)).glob("*"))
    state = load_url_state(Home(home), url)
    assert state and state["etag"] == prov.etag and state["sha256"] == prov.sha256


def test_refetch_sends_validators_and_304_publishes_nothing(cli: Cli, http_server: LocalServer, home: Path) -> None:
    url = http_server.add("/data.csv", CSV)
    first = json_lines(cli("fetch", url, "--json").stdout)[0]
    assert first["table"] == "local.data"
    second = cli("fetch", url, "--json")
    assert second.exit_code == 0
    record = json_lines(second.stdout)[0]
    assert record["status"] == "unchanged" and record["snapshot"] == first["snapshot"] and record["bytes"] == 0
    assert record["rows"] == 3
    request = http_server.hits("/data.csv")[-1]
    assert request.headers["If-None-Match"].startswith('"') and "If-Modified-Since" in request.headers
    assert len(Lake(home).snapshots("local.data")) == 1
    forced = json_lines(cli("fetch", url, "--json", "--force").stdout)[0]
    assert "If-None-Match" not in http_server.hits("/data.csv")[-1].headers
    # --force downloads and converts again, even the same bytes: a new snapshot
    assert forced["status"] == "fetched" and forced["bytes"] == len(CSV) and forced["snapshot"] != first["snapshot"]
    assert len(Lake(home).snapshots("local.data")) == 2


def test_same_bytes_under_a_new_etag_are_unchanged(cli: Cli, http_server: LocalServer, home: Path) -> None:
    url = http_server.add("/gen.csv", CSV, etag='"v1"')
    cli("fetch", url, "--as", "cdc.gen")
    http_server.add("/gen.csv", CSV, etag='"v2"')  # a generated export: new ETag, same content
    record = json_lines(cli("fetch", url, "--as", "cdc.gen", "--json").stdout)[0]
    assert record["status"] == "unchanged" and len(Lake(home).snapshots("cdc.gen")) == 1
    assert load_url_state(Home(home), url)["etag"] == '"v2"'  # type: ignore[index]
    http_server.add("/gen.csv", CSV, etag='"v2"')
    cli("fetch", url, "--as", "cdc.gen")
    assert http_server.hits("/gen.csv")[-1].headers["If-None-Match"] == '"v2"'


def test_changed_file_publishes_a_new_snapshot(cli: Cli, http_server: LocalServer, home: Path) -> None:
    url = http_server.add("/d.csv", CSV)
    cli("fetch", url, "--as", "cms.d")
    http_server.add("/d.csv", CSV2)
    record = json_lines(cli("fetch", url, "--as", "cms.d", "--json").stdout)[0]
    assert record["status"] == "fetched" and record["rows"] == 4
    assert len(Lake(home).snapshots("cms.d")) == 2


def test_new_conversion_options_convert_again(cli: Cli, http_server: LocalServer, home: Path) -> None:
    url = http_server.add("/d.csv", CSV)
    cli("fetch", url, "--as", "cms.d")
    record = json_lines(cli("fetch", url, "--as", "cms.d", "--type", "score=VARCHAR", "--json").stdout)[0]
    assert record["status"] == "fetched"
    assert "If-None-Match" not in http_server.hits("/d.csv")[-1].headers
    provenance = Lake(home).current("cms.d").provenance
    assert provenance.recipe is not None and provenance.recipe.types == {"score": "VARCHAR"}
    assert provenance.settings["columns"] == {"score": "VARCHAR"}


def test_one_failure_does_not_stop_the_others(cli: Cli, http_server: LocalServer, home: Path) -> None:
    good = http_server.add("/good.csv", CSV)
    bad = http_server.add("/bad.csv", CSV, fail_times=100, fail_status=500)
    cli("fetch", bad, "--as", "cms.bad")  # fails: nothing published
    result = cli("fetch", good, bad, "--json")
    assert result.exit_code == 1
    records = {r["ref"]: r for r in json_lines(result.stdout)}
    assert records[good]["status"] == "fetched"
    assert records[bad]["status"] == "failed" and "HTTP 500" in records[bad]["error"]
    assert records[bad]["snapshot"] is None
    assert f"error: {bad} failed after" in result.stderr
    assert Lake(home).names() == ["local.good"]


def test_failed_refetch_keeps_the_previous_snapshot(cli: Cli, http_server: LocalServer, home: Path) -> None:
    url = http_server.add("/d.csv", CSV)
    cli("fetch", url, "--as", "cms.d")
    before = Lake(home).current("cms.d").id
    http_server.add("/d.csv", "<html><title>Maintenance</title></html>", content_type="text/html")
    result = cli("fetch", url, "--as", "cms.d", "--force")
    assert result.exit_code == 1 and "HTML page instead of data" in result.stderr and "Maintenance" in result.stderr
    assert Lake(home).current("cms.d").id == before
    assert cli("sql", "select count(*) as n from cms.d", "-f", "csv").stdout.split() == ["n", "3"]


def test_a_dataset_of_several_files_is_one_table(cli: Cli, http_server: LocalServer, tmp_path: Path) -> None:
    urls = [http_server.add(f"/part-{i}.csv", CSV if i == 0 else CSV2) for i in range(3)]
    catalogs = manifest(tmp_path, [{"id": "drug-event", "title": "Drug events", "urls": urls}], name="openfda")
    result = cli("--catalogs", str(catalogs), "fetch", "openfda/drug-event", "--json")
    record = json_lines(result.stdout)[0]
    assert record["status"] == "fetched" and record["rows"] == 3 + 4 + 4, result.stderr
    assert all(len(http_server.hits(f"/part-{i}.csv")) == 1 for i in range(3))
    count = cli("sql", "select count(*) as n from openfda.drug_event", "-f", "csv")
    assert count.stdout.split() == ["n", "11"]
    again = json_lines(cli("--catalogs", str(catalogs), "fetch", "openfda/drug-event", "--json").stdout)[0]
    assert again["status"] == "unchanged"


def test_a_file_with_several_tables_publishes_each(
    cli: Cli, http_server: LocalServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liberacion.convert as convert

    @dataclass
    class FakePart:
        suffix: str | None
        path: Path
        pending: Any = None  # unpacked already (see Part.pending)

    def inspect(path: Path, options: Any, **_: Any) -> list[FakePart]:
        return [FakePart("Product Sheet", path), FakePart("package", path)]

    real = convert.convert_part

    def convert_part(part: FakePart, out_dir: Path, **kwargs: Any) -> Any:
        return real(convert.Part(None, part.path), out_dir, **kwargs)  # type: ignore[call-arg]

    monkeypatch.setattr(convert, "inspect", inspect)
    monkeypatch.setattr(convert, "convert_part", convert_part)
    url = http_server.add("/unfinished.zip", CSV)
    result = cli("fetch", url, "--as", "fda.unfinished", "--json")
    record = json_lines(result.stdout)[0]
    assert record["status"] == "fetched", result.stderr
    assert record["tables"] == ["fda.unfinished__product_sheet", "fda.unfinished__package"]
    assert Lake(home).names() == ["fda.unfinished__package", "fda.unfinished__product_sheet"]
    assert json_lines(cli("fetch", url, "--as", "fda.unfinished", "--json").stdout)[0]["status"] == "unchanged"


def test_local_file_ref(cli: Cli, tmp_path: Path, home: Path) -> None:
    path = tmp_path / "Provider Relief.csv"
    path.write_text(CSV, encoding="utf-8")
    record = json_lines(cli("fetch", str(path), "--json").stdout)[0]
    assert record["table"] == "local.provider_relief" and record["status"] == "fetched" and record["bytes"] == 0
    assert json_lines(cli("fetch", str(path), "--json").stdout)[0]["status"] == "unchanged"
    assert Lake(home).current("local.provider_relief").provenance.source_url == str(path)
    # --force converts the same bytes again: a new snapshot (to re-type, or to time a conversion)
    forced = json_lines(cli("fetch", str(path), "--json", "--force").stdout)[0]
    assert forced["status"] == "fetched" and forced["snapshot"] != record["snapshot"]
    assert len(Lake(home).snapshots("local.provider_relief")) == 2


def test_a_local_files_hash_is_exact_wherever_it_is_written(cli: Cli, tmp_path: Path, home: Path) -> None:
    """The hash of a local file that cannot be the current one's runs beside its conversion; it
    must still reach the provenance and every Parquet file's metadata (data and rejects)."""
    import hashlib
    import zipfile

    import pyarrow.parquet as pq

    from liberacion.snapshots import PROVENANCE_KEY

    def check(table: str, source: Path) -> str:
        sha = hashlib.sha256(source.read_bytes()).hexdigest()
        current = Lake(home).current(table)
        assert current.provenance.sha256 == sha
        files = sorted(Path(current.path).glob("*.parquet"))
        assert files
        for parquet in files:
            kv = pq.read_metadata(parquet).metadata
            assert json.loads(kv[PROVENANCE_KEY.encode()])["sha256"] == sha, parquet.name
        return current.id

    path = tmp_path / "scores.csv"
    path.write_text(CSV + '"broken,AL,3\n', encoding="utf-8")  # a bad row: rejects.parquet too
    assert json_lines(cli("fetch", str(path), "--json").stdout)[0]["status"] == "fetched"
    first = check("local.scores", path)
    assert (Path(Lake(home).current("local.scores").path) / "rejects.parquet").exists()
    assert json_lines(cli("fetch", str(path), "--json").stdout)[0]["status"] == "unchanged"
    path.write_text(CSV.replace("AL", "AK") + '"broken,AL,3\n', encoding="utf-8")  # the same size
    assert json_lines(cli("fetch", str(path), "--json").stdout)[0]["status"] == "fetched"
    second = check("local.scores", path)
    path.write_text(CSV2, encoding="utf-8")  # another size
    assert json_lines(cli("fetch", str(path), "--json").stdout)[0]["status"] == "fetched"
    third = check("local.scores", path)
    assert json_lines(cli("fetch", str(path), "--json", "--force").stdout)[0]["status"] == "fetched"
    assert len({first, second, third, check("local.scores", path)}) == 4
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.csv", CSV)
        zf.writestr("b.csv", CSV2)
    assert json_lines(cli("fetch", str(archive), "--json").stdout)[0]["status"] == "fetched"
    for table in ("local.two__a", "local.two__b"):
        check(table, archive)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a.csv", "b.csv", "--as", "cms.t"], "--as names one table"),
        (["x.csv", "--as", "cms.bad-name"], "invalid table name"),
        (["x.csv", "--type", "nonsense"], "invalid --type"),
        (["file:///etc/passwd"], "give an http(s):// URL"),
        (["ftp://example.org/x.csv"], "give an http(s):// URL"),
        (["x.csv", "--jobs", "0"], "--jobs must be at least 1"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: list[str], message: str) -> None:
    result = cli("fetch", *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_unknown_ref_fails(cli: Cli) -> None:
    result = cli("fetch", "no-such-thing.csv")
    assert result.exit_code == 1 and "no such file" in result.stderr
    result = cli("fetch", "cms/not-in-any-catalog")
    assert result.exit_code == 1 and "no dataset 'cms/not-in-any-catalog'" in result.stderr
    result = cli("fetch", "")  # an unset shell variable
    assert result.exit_code == 1 and "error: an empty ref: give a CATALOG/DATASET ref" in result.stderr
    result = cli("fetch", ".")
    assert result.exit_code == 1 and "error: . is a directory, not a file" in result.stderr


def test_a_listing_may_not_point_at_local_files(cli: Cli, tmp_path: Path) -> None:
    catalogs = manifest(tmp_path, [{"id": "evil", "title": "Evil", "url": "file:///etc/passwd"}])
    result = cli("--catalogs", str(catalogs), "fetch", "cms/evil")
    assert result.exit_code == 5 and "`url` must be an http(s) URL" in result.stderr  # a manifest error


def test_a_busy_table_waits_then_reports_busy(cli: Cli, http_server: LocalServer, home: Path) -> None:
    url = http_server.add("/d.csv", CSV)
    with Lake(home).lock("cms.d"):
        start = time.monotonic()
        result = cli("fetch", url, "--as", "cms.d", "--wait", "0.5")
        assert time.monotonic() - start >= 0.5
    assert result.exit_code == 75 and "being written by another liberacion process" in result.stderr
    assert http_server.hits("/d.csv") == []  # nothing downloaded while waiting


def test_summary_and_quiet_output(cli: Cli, http_server: LocalServer) -> None:
    url = http_server.add("/d.csv", CSV)
    result = cli("fetch", url)
    assert result.exit_code == 0 and result.stdout.startswith("local.d\tfetched\t3 rows\t")
    assert cli("fetch", url, "--quiet").stdout == ""
    progress = cli("fetch", url, "--force", "--progress")
    assert "local.d: downloading" in progress.stderr and "local.d: downloaded" in progress.stderr


def test_dropped_download_resumes_on_the_next_run(
    cli: Cli, http_server: LocalServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (CSV + "".join(f"{i:06d},TX,{i % 5}\n" for i in range(40_000))).encode()
    url = http_server.add("/big.csv", body, drop_after=200_000, drop_times=1)
    monkeypatch.setenv("LIBERACION_RETRIES", "0")
    http_server.routes["/big.csv"].fail_times = 0
    # first run: the connection drops, and the retry meets a 503: the run fails, keeping 200 kB
    original = http_server.routes["/big.csv"]

    def drop_then_down(handler: Any) -> None:
        if len(http_server.hits("/big.csv")) == 1:
            handler._serve_static(original, head=False)
        else:
            handler.send_error_body(503, b"busy", "text/plain")

    http_server.add("/big.csv", handler=drop_then_down)
    first = cli("fetch", url, "--as", "cms.big")
    assert first.exit_code == 1 and "next run resumes it" in first.stderr
    assert (Home(home).downloads / url_key(url) / PARTIAL).stat().st_size == 200_000
    http_server.add("/big.csv", body)
    second = json_lines(cli("fetch", url, "--as", "cms.big", "--json").stdout)[0]
    assert second["status"] == "fetched" and second["rows"] == 40_003
    assert second["bytes"] == len(body) - 200_000
    assert http_server.hits("/big.csv")[-1].headers["Range"] == "bytes=200000-"


def test_fetch_api_reports_progress(http_server: LocalServer, home: Path) -> None:
    url = http_server.add("/d.csv", CSV)
    events: list[Any] = []
    [result] = fetch([url], Home(home), FetchOptions(table="cms.d"), progress=events.append)
    assert result.status == "fetched" and result.table == "cms.d" and result.rows == 3
    kinds = {e.kind for e in events}
    assert {"start", "advance", "done", "phase"} <= kinds


def test_kill_9_mid_download_leaves_the_lake_and_the_next_run_resumes(http_server: LocalServer, home: Path) -> None:
    small = http_server.add("/v.csv", CSV)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home)}
    command = [sys.executable, "-m", "liberacion", "fetch", small, "--as", "cms.v", "--json"]
    assert subprocess.run(command, env=env, capture_output=True, timeout=60).returncode == 0
    before = Lake(home).current("cms.v")
    body = (CSV2 + "".join(f"{i:06d},TX,{i % 5}\n" for i in range(100_000))).encode()  # about 1.3 MB
    http_server.add("/v.csv", body, rate=300_000)  # slow: about 4 s for the whole file
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = Home(home).downloads / url_key(small) / PARTIAL
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size < 200_000):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    kept = partial.stat().st_size
    assert 200_000 <= kept < len(body)
    lake = Lake(home)
    assert lake.current("cms.v").id == before.id and len(lake.snapshots("cms.v")) == 1
    assert not list(lake.table_dir("cms.v").glob("snapshots/*/data-*.parquet"))[1:]
    http_server.routes["/v.csv"].rate = None
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    record = json.loads(rerun.stdout)
    assert record["status"] == "fetched" and record["rows"] == 100_004 and record["bytes"] == len(body) - kept
    assert http_server.hits("/v.csv")[-1].headers["Range"] == f"bytes={kept}-"
    assert lake.current("cms.v").provenance.raw_bytes == len(body)


def test_manifest_keys_are_diffs_default_keys(cli: Cli, http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("/k.csv", "facility_id,beds\n010001,5\n010002,6\n", content_type="text/csv")
    catalogs = manifest(tmp_path, [{"id": "beds", "title": "Beds", "url": url, "keys": ["facility_id"]}])
    assert cli("--catalogs", str(catalogs), "fetch", "cms/beds").exit_code == 0
    http_server.add("/k.csv", "facility_id,beds\n010001,5\n010002,7\n010003,1\n", content_type="text/csv")
    assert cli("--catalogs", str(catalogs), "fetch", "cms/beds").exit_code == 0
    records = json.loads(cli("diff", "cms.beds", "-f", "json").stdout)
    counts = {r["change"]: r["count"] for r in records if r["change"].startswith("rows_")}
    assert counts == {"rows_added": 1, "rows_removed": 0, "rows_changed": 1}
