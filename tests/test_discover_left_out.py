"""What discovery does not index is said: files only on FTP are listed with what to do, the records
a listing holds that are not datasets are counted by reason, and openFDA partitions without a file
URL are noted (listings served from the suite's local server, ugly shapes included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.manifests import write_catalog
from tests.server import LocalServer
from tests.test_discover import _index

# -- files only on FTP -------------------------------------------------------------------------


def _ftp_listing(server: LocalServer) -> dict[str, Any]:
    return {
        "dataset": [
            {  # every file on FTP: two releases, one with a user and password in it, one upper-case
                "identifier": "gene-counts",
                "title": "Gene Counts",
                "distribution": [
                    {"downloadURL": "ftp://anon:secret@ftp.example.gov/pub/gene_counts_2023.csv", "format": "CSV"},
                    {"downloadURL": " FTP://ftp.example.gov/pub/gene_counts_2022.csv "},
                ],
            },
            {  # a folder on FTP, a landing page and a PDF beside it
                "identifier": "clinvar",
                "title": "ClinVar",
                "distribution": [
                    {"accessURL": "ftp://ftp.example.gov/pub/clinvar/"},
                    {"accessURL": "https://www.example.gov/clinvar"},
                    {"downloadURL": "https://www.example.gov/clinvar/guide.pdf"},
                ],
            },
            {  # two FTP files joined in one downloadURL, as some publishers write them
                "identifier": "questions",
                "title": "Clinical Questions",
                "distribution": [{"downloadURL": "ftp://lhc.example.gov/q/IA.xml, ftp://lhc.example.gov/q/IB.xml"}],
            },
            {  # only a document on FTP: documents, not data
                "identifier": "manual",
                "title": "Manual",
                "distribution": [{"downloadURL": "ftp://ftp.example.gov/pub/manual.pdf"}],
            },
            {  # a file on the web beside one on FTP: fetch takes the web one
                "identifier": "mixed",
                "title": "Mixed",
                "distribution": [
                    {"downloadURL": "ftp://ftp.example.gov/pub/mixed.csv"},
                    {"downloadURL": server.url("/files/mixed.csv")},
                ],
            },
        ]
    }


def test_files_only_on_ftp_are_listed_counted_and_said_with_what_to_do(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path, tmp_path: Path
) -> None:
    http_server.add("/files/mixed.csv", "a,b\n1,2\n", content_type="text/csv")
    write_catalog(manifests, "t", [("dcat-us", http_server.add("/data.json", json.dumps(_ftp_listing(http_server))))])
    result = cli("discover", "t")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "t: 5 datasets, 1 fetchable (not: 3 only on FTP, 1 only documents)"
    rows = _index(home, "select id, why_not from liberacion.datasets where catalog = 't' order by id")
    assert {r["id"]: r["why_not"] for r in rows} == {
        "clinvar": "only on FTP",
        "gene-counts": "only on FTP",
        "manual": "only documents",
        "mixed": None,
        "questions": "only on FTP",
    }
    # search says what a dataset offers, FTP or not: fetch then says where the file is
    hits = json.loads(cli("search", "--format-of-data", "csv", "--format", "json").stdout)
    assert {h["ref"] for h in hits} == {"t/gene-counts", "t/mixed"}

    shown = json.loads(cli("show", "t/gene-counts", "--format", "json").stdout)
    assert [d["url"].strip() for d in shown["distributions"]] == [
        "ftp://anon:secret@ftp.example.gov/pub/gene_counts_2023.csv",
        "FTP://ftp.example.gov/pub/gene_counts_2022.csv",
    ]
    assert shown["fetch"]["files"] == [] and "only on FTP" in shown["fetch"]["reason"]
    table = cli("show", "t/clinvar", "--format", "table")
    assert table.exit_code == 0 and "ftp://ftp.example.gov/pub/clinvar/" in table.stdout, table.stdout
    assert "only on FTP" in table.stdout

    fetched = cli("fetch", "t/gene-counts")
    assert fetched.exit_code != 0 and "failed" in fetched.stdout
    (line,) = fetched.stderr.strip().splitlines()
    assert line == (
        "error: t/gene-counts: its data is only on FTP (2 files on ftp.example.gov), which liberacion does not"
        " download: download the file you want by hand, then run: liberacion fetch FILE --as t.gene_counts;"
        " see: liberacion show t/gene-counts"
    )
    (folder,) = cli("fetch", "t/clinvar").stderr.strip().splitlines()
    assert "only on FTP (ftp://ftp.example.gov/pub/clinvar/)" in folder and "--as t.clinvar" in folder
    one = cli("show", "t/questions", "--format", "json")
    assert "2 files on lhc.example.gov" in json.loads(one.stdout)["fetch"]["reason"]
    assert "secret" not in cli("fetch", "t/gene-counts").stderr  # a password in a listed URL is never said

    # what the line says to do works: the file downloaded by hand, fetched into the dataset's table
    by_hand = tmp_path / "gene_counts_2023.csv"
    by_hand.write_text("gene,count\nBRCA1,3\n")
    assert cli("fetch", str(by_hand), "--as", "t.gene_counts").exit_code == 0
    assert cli("sql", "select count from t.gene_counts", "-f", "csv").stdout.splitlines()[-1] == "3"
    assert cli("fetch", "t/mixed").exit_code == 0  # the web file beside the FTP one


# -- records a listing holds that are not datasets --------------------------------------------


def _record(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "identifier": f"https://data.example.gov/id/r{i}",
        "title": f"R{i}",
        "modified": "2025-01-15",
        "distribution": [{"downloadURL": f"https://x.gov/r{i}.csv"}],
        **fields,
    }


def test_discover_counts_the_records_it_leaves_out_by_reason(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    import liberacion

    listing = [
        _record(1),
        _record(2),
        _record(1),  # the same record twice
        _record(2, modified="2025-02-01"),  # a second, differing copy of R2
        _record(3, accessLevel="non-public"),
        _record(4, accessLevel="restricted public"),
        {"title": "Nothing to name it by", "distribution": [{"downloadURL": "javascript:void(0)"}]},
        "not a record",
        None,
    ]
    url = http_server.add("/data.json", json.dumps({"dataset": listing}), etag='"v1"')
    write_catalog(manifests, "t", [("dcat-us", url)])
    result = cli("discover", "t")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "t: 2 datasets indexed" in result.stderr
    said = "t: 7 listed records left out (2 not a JSON object, 2 not public, 2 repeated, 1 no identifier)"
    assert said in lines, result.stderr
    assert lines[-1] == "t: 2 datasets, 2 fetchable"  # the last line is still the fetchable one
    # an unchanged listing (304) keeps what its last read left out
    again = cli("discover", "t")
    assert again.exit_code == 0 and "t unchanged" not in again.stderr
    assert said in again.stderr.splitlines(), again.stderr

    report = liberacion.discover("t", home=home)
    (catalog,) = report.catalogs
    assert catalog.datasets == 2 and catalog.sources[0].status == "unchanged"
    expected = {"not a JSON object": 2, "not public": 2, "repeated": 2, "no identifier": 1}
    assert catalog.left_out == catalog.sources[0].left_out == expected
    assert catalog.datasets + sum(catalog.left_out.values()) == len(listing)


def test_dkan_and_ckan_records_left_out_are_counted_per_catalog(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    items = [_record(1), "junk", _record(2, accessLevel="non-public"), 7]
    packages = [
        {"id": "p1", "name": "p1", "title": "P1", "resources": [{"url": "https://x.gov/p1.csv"}]},
        {"id": "p2", "name": "p2", "title": "P2", "extras": [{"key": "accessLevel", "value": "non-public"}]},
        {"title": "no name nor id"},
        {"title": "no name nor id either"},
        ["not", "a", "package"],
    ]
    ckan = {"success": True, "result": {"count": len(packages), "results": packages}}
    write_catalog(
        manifests,
        "t",
        [
            ("dkan", http_server.add("/items", json.dumps(items))),
            ("ckan", http_server.add("/api/3/action/package_search", json.dumps(ckan))),
        ],
    )
    result = cli("discover", "t")
    assert result.exit_code == 0, result.stderr
    assert "t: 2 datasets indexed [dkan updated (1); ckan updated (1)]" in result.stderr
    assert "t: 7 listed records left out (3 not a JSON object, 2 no identifier, 2 not public)" in result.stderr


@pytest.mark.parametrize("streamed", [False, True])
def test_the_real_healthdata_gov_listing_says_its_22_records_not_public(
    cli: Any, manifests: Path, http_server: LocalServer, realdata: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    from liberacion.catalogs import adapters

    if streamed:  # a listing over STREAM_BYTES is read one record at a time: the same count
        monkeypatch.setattr(adapters, "STREAM_BYTES", 1000)
    path = realdata / "catalogs/data-cdc-gov-json-quality/2021-12-12/hhs.gov.data.json"
    write_catalog(manifests, "hhs", [("socrata", http_server.add("/hhs/data.json", path))])
    result = cli("discover", "hhs")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(path.read_bytes())["dataset"]) == 1808 == 1786 + 22
    assert "hhs: 1,786 datasets indexed" in result.stderr
    assert "hhs: 22 listed records left out (22 not public)" in result.stderr.splitlines()
    assert "only on FTP" in result.stderr.splitlines()[-1]  # NLM's and NCBI's datasets


# -- openFDA partitions without a file URL -----------------------------------------------------


def _partition(name: str, file: Any = "") -> dict[str, Any]:
    part: dict[str, Any] = {"display_name": name, "size_mb": "1.5", "records": 10}
    if file != "":
        part["file"] = file
    return part


DOWNLOAD_JSON = {
    "meta": {"last_updated": "2026-08-09"},
    "results": {
        "drug": {
            "event": {
                "export_date": "2026-08-09",
                "total_records": 40,
                "partitions": [
                    _partition("2004 Q1 (part 1 of 2)", "https://d.example.gov/drug/event/2004q1/1.json.zip"),
                    _partition("2004 Q1 (part 2 of 2)", None),
                    _partition("2004 Q2 (part 1 of 1)"),  # no file key at all
                    _partition("2004 Q3 (part 1 of 1)", "https://d.example.gov/drug/event/2004q3/1.json.zip"),
                ],
            },
            "label": {
                "export_date": "2026-08-09",
                "partitions": [_partition("All", "ftp://d.example.gov/drug/label/1.json.zip")],
            },
            "ndc": "temporarily unavailable",
        },
        "device": {"udi": {"export_date": "2026-08-09", "partitions": [{"…": "…"}]}},
    },
}


def test_openfda_partitions_without_a_file_url_are_said_and_counted(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    write_catalog(manifests, "fda", [("openfda", http_server.add("/download.json", json.dumps(DOWNLOAD_JSON)))])
    result = cli("discover", "fda")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "fda: 1 dataset indexed [openfda updated (1)]" in result.stderr
    assert (
        "fda: note: openFDA drug/event: 2 of its 4 partitions have no http(s) file URL:"
        " fetch takes the other 2, so its table lacks their records"
    ) in lines, result.stderr
    assert "fda: note: openFDA drug/label: its partition has no http(s) file URL: it is left out" in lines
    assert "fda: note: openFDA device/udi: its partition has no http(s) file URL: it is left out" in lines
    assert "fda: 3 listed records left out (2 no file URL, 1 not a JSON object)" in lines
    shown = json.loads(cli("show", "fda/drug-event", "--format", "json").stdout)
    assert len(shown["fetch"]["files"]) == 2
    assert "2 more listed without a file URL, so the table lacks their records" in shown["fetch"]["reason"]
    assert shown["description"].endswith("40 records in 2 partition(s). 2 more listed without a file URL.")


@pytest.mark.parametrize("partitions", [[], None])
def test_an_openfda_endpoint_without_partitions_is_counted_not_dropped(
    cli: Any, manifests: Path, http_server: LocalServer, partitions: Any
) -> None:
    listing = {
        "results": {
            "food": {
                "enforcement": {"partitions": [_partition("All", "https://d.example.gov/food/1.json.zip")]},
                "event": {"export_date": "2026-08-09", "partitions": partitions},
            }
        }
    }
    write_catalog(manifests, "fda", [("openfda", http_server.add("/download.json", json.dumps(listing)))])
    result = cli("discover", "fda")
    assert result.exit_code == 0, result.stderr
    assert "fda: 1 listed record left out (1 no file URL)" in result.stderr.splitlines()
