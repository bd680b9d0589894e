"""Real HHS files (../shared/realdata) served locally, fetched end to end, then counted with SQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from liberacion.lake import Lake
from tests.conftest import ROOT, Cli
from tests.server import LocalServer
from tests.test_fetch import json_lines, manifest

# (catalog, dataset id, file under realdata, rows according to PROVENANCE.md)
CMS_DIR = "cms/hospital-cms-dashboard"
CSV_FILES = [
    ("cms", "hospital-general-information", f"{CMS_DIR}/Hospital_General_Information.csv", 5381),
    ("cms", "hospital-readmissions", f"{CMS_DIR}/Hospital_Readmissions_Reduction_Program_Hospital.csv", 18510),
    ("cdc", "leading-causes-of-death", "cdc/ds4biomed/NCHS_-_Leading_Causes_of_Death__United_States.csv", 10868),
    (
        "cdc",
        "places-county",
        "cdc/HealthAnalyticsInterviewCase/PLACES__County_Data__GIS_Friendly_Format___2022_release.csv",
        3143,
    ),
]
XPT_FILES = [
    ("nhanes", "demo-i", "nhanes/2018-sp-stats131/DEMO_I.XPT", 9971),
    ("nhanes", "bmx-i", "nhanes/2018-sp-stats131/BMX_I.XPT", 9544),
]


def serve(files: list[tuple[str, str, str, int]], realdata: Path, server: LocalServer, tmp_path: Path) -> Path:
    """Serve each file and write one manifest per catalog pointing at it; returns the manifest dir."""
    directory = tmp_path / "catalogs"
    directory.mkdir()
    by_catalog: dict[str, list[dict[str, str]]] = {}
    for catalog, dataset, relative, _rows in files:
        url = server.add("/" + relative, realdata / relative)
        by_catalog.setdefault(catalog, []).append({"id": dataset, "title": dataset, "url": url})
    for catalog, datasets in by_catalog.items():
        manifest(directory, datasets, name=catalog)
    return directory


def count(cli: Cli, table: str) -> int:
    result = cli("sql", f"select count(*) as n from {table}", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return int(json.loads(result.stdout)[0]["n"])


def test_real_cms_and_cdc_csv_files_end_to_end(
    cli: Cli, realdata: Path, http_server: LocalServer, tmp_path: Path, home: Path
) -> None:
    catalogs = serve(CSV_FILES, realdata, http_server, tmp_path)
    refs = [f"{c}/{d}" for c, d, _, _ in CSV_FILES]
    result = cli("--catalogs", str(catalogs), "fetch", *refs, "--jobs", "4", "--json")
    assert result.exit_code == 0, result.stderr
    records = {r["ref"]: r for r in json_lines(result.stdout)}
    lake = Lake(home)
    for catalog, dataset, relative, rows in CSV_FILES:
        record = records[f"{catalog}/{dataset}"]
        table = record["table"]
        assert record["status"] == "fetched" and record["rows"] == rows, record
        assert count(cli, table) == rows
        expected_sha = hashlib.sha256((realdata / relative).read_bytes()).hexdigest()
        assert lake.current(table).provenance.sha256 == expected_sha
    again = cli("--catalogs", str(catalogs), "fetch", *refs, "--json")
    assert {r["status"] for r in json_lines(again.stdout)} == {"unchanged"}


def test_real_nhanes_xpt_end_to_end(
    cli: Cli, realdata: Path, http_server: LocalServer, tmp_path: Path, home: Path
) -> None:
    catalogs = serve(XPT_FILES, realdata, http_server, tmp_path)
    refs = [f"{c}/{d}" for c, d, _, _ in XPT_FILES]
    result = cli("--catalogs", str(catalogs), "fetch", *refs, "--json")
    assert result.exit_code == 0, result.stderr
    for record, (_c, _d, _r, rows) in zip(json_lines(result.stdout), XPT_FILES):
        assert record["status"] == "fetched" and record["rows"] == rows
        assert count(cli, record["table"]) == rows


# Shipped curated datasets whose current file (or one of the same layout) is in realdata.
SHIPPED_ON_REALDATA = {
    ("cms", "hospital-general-information"): f"{CMS_DIR}/Hospital_General_Information.csv",
    (
        "cms",
        "hospital-readmissions-reduction-program",
    ): f"{CMS_DIR}/Hospital_Readmissions_Reduction_Program_Hospital.csv",
    ("cdc", "leading-causes-of-death"): "cdc/ds4biomed/NCHS_-_Leading_Causes_of_Death__United_States.csv",
    ("cdc", "places-county-gis"): (
        "cdc/HealthAnalyticsInterviewCase/PLACES__County_Data__GIS_Friendly_Format___2022_release.csv"
    ),
    (
        "cdc",
        "drug-poisoning-mortality-by-state",
    ): "cdc/CSV-Datasets_4/NCHS_-_Drug_Poisoning_Mortality_by_State__United_States.csv",
    ("cdc", "excess-deaths-covid-19"): "cdc/CSV-Datasets_4/Excess_Deaths_Associated_with_COVID-19.csv",
    ("nhanes", "demo_j"): "nhanes/2018-sp-stats131/DEMO_I.XPT",  # DEMO_I: the previous cycle, same layout
    ("nhanes", "bmx_j"): "nhanes/2018-sp-stats131/BMX_I.XPT",
}


def test_shipped_manifest_keys_and_columns_exist_in_the_real_files(
    cli: Cli, realdata: Path, http_server: LocalServer, tmp_path: Path, home: Path
) -> None:
    """Every curated dataset of the shipped manifests whose file is here: fetched as the manifest
    says (its keys, column types, format), with only the URL pointed at the local copy. A key or
    a column type naming a column the file does not have fails the fetch."""
    import tomllib

    directory = tmp_path / "catalogs"
    directory.mkdir()
    by_catalog: dict[str, list[dict[str, object]]] = {}
    for (catalog, dataset_id), relative in SHIPPED_ON_REALDATA.items():
        shipped = tomllib.loads((ROOT / "catalogs" / f"{catalog}.toml").read_text(encoding="utf-8"))
        [entry] = [d for d in shipped["dataset"] if d["id"] == dataset_id]
        local = {k: v for k, v in entry.items() if k not in ("url", "urls", "source_id", "source")}
        local["url"] = http_server.add(f"/{catalog}/{dataset_id}/{Path(relative).name}", realdata / relative)
        by_catalog.setdefault(catalog, []).append(local)
    for catalog, datasets in by_catalog.items():
        manifest(directory, datasets, name=catalog)
    refs = [f"{c}/{d}" for c, d in SHIPPED_ON_REALDATA]
    result = cli("--catalogs", str(directory), "fetch", *refs, "--json")
    records = {r["ref"]: r for r in json_lines(result.stdout)}
    assert result.exit_code == 0, [r["error"] for r in records.values() if r["error"]]
    lake = Lake(home)
    for (catalog, dataset_id), _relative in SHIPPED_ON_REALDATA.items():
        snap = lake.current(records[f"{catalog}/{dataset_id}"]["table"])
        names = {c.name for c in snap.schema}
        keys = snap.provenance.extra.get("keys") or []
        assert set(keys) <= names, (dataset_id, keys)
        assert keys or catalog != "nhanes"  # every NHANES file is keyed by seqn
        known = names | {str(c.original).lower() for c in snap.schema if c.original}
        shipped = tomllib.loads((ROOT / "catalogs" / f"{catalog}.toml").read_text(encoding="utf-8"))
        [entry] = [d for d in shipped["dataset"] if d["id"] == dataset_id]
        missing = [c for c in entry.get("columns", {}) if c not in known and c.lower() not in known]
        assert not missing, (dataset_id, missing)


def test_a_manifest_key_the_file_lacks_is_an_error_with_near_matches(
    cli: Cli, realdata: Path, http_server: LocalServer, tmp_path: Path, home: Path
) -> None:
    relative = SHIPPED_ON_REALDATA[("cdc", "places-county-gis")]
    url = http_server.add("/places.csv", realdata / relative)
    catalogs = manifest(tmp_path, [{"id": "places", "url": url, "keys": ["countyfip"]}], name="cdc")
    result = cli("--catalogs", str(catalogs), "fetch", "cdc/places", "--json")
    assert result.exit_code == 1
    [record] = json_lines(result.stdout)
    assert record["status"] == "failed" and record["error_type"] == "ConfigError"
    assert "'countyfip'" in record["error"] and "county_fips" in record["error"]
    assert not Lake(home).exists("cdc.places")  # nothing published
