"""`liberacion discover`: listings from the local server into the index, conditional GET, failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.manifests import write_catalog
from tests.server import LocalServer


def _listing(*titles: str) -> str:
    datasets = [
        {
            "identifier": f"https://data.example.gov/api/views/{i:04d}-abcd",
            "title": title,
            "description": f"About {title.lower()}.",
            "keyword": ["health"],
            "publisher": {"name": "Example Agency"},
            "modified": "2025-01-15",
            "distribution": [
                {
                    "downloadURL": f"https://data.example.gov/api/views/{i:04d}-abcd/rows.csv?accessType=DOWNLOAD",
                    "mediaType": "text/csv",
                }
            ],
        }
        for i, title in enumerate(titles)
    ]
    return json.dumps({"conformsTo": "https://project-open-data.cio.gov/v1.1/schema", "dataset": datasets})


def _sql(cli: Any, query: str) -> list[dict[str, Any]]:
    result = cli("sql", query, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_discover_real_listings_builds_a_queryable_index(
    cli: Any, manifests: Path, http_server: LocalServer, realdata: Path
) -> None:
    hhs = http_server.add(
        "/hhs/data.json",
        realdata / "catalogs/data-cdc-gov-json-quality/2021-12-12/hhs.gov.data.json",
        content_type="application/json",
    )
    cms = http_server.add("/cms/data.json", realdata / "catalogs/gov-datajson-diff/cms.json")
    pdc = http_server.add("/pdc/items", realdata / "catalogs/providertwo/provider.json")
    write_catalog(manifests, "hhs", [("socrata", hhs)])
    write_catalog(manifests, "cms", [("dcat-us", cms), ("dkan", pdc)])
    result = cli("discover", "hhs", "cms")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # messages go to stderr
    assert "hhs: 1,786 datasets indexed" in result.stderr
    assert "cms: 367 datasets indexed" in result.stderr  # 139 + 228
    counts = _sql(cli, "select catalog, count(*) as n from liberacion.datasets group by 1 order by 1")
    assert {"hhs": 1786, "cms": 367}.items() <= {r["catalog"]: r["n"] for r in counts}.items()
    (row,) = _sql(
        cli,
        "select ref, title, publisher, keywords, modified, formats, landing_page, description "
        "from liberacion.datasets where ref = 'cms/xubh-q36u'",
    )
    assert row["title"] == "Hospital General Information" and row["formats"] == ["csv"]
    assert row["landing_page"] == "https://data.cms.gov/provider-data/dataset/xubh-q36u"
    csv_refs = _sql(cli, "select count(*) as n from liberacion.datasets where list_contains(formats, 'csv')")
    assert csv_refs[0]["n"] > 1000
    rows = {r["name"]: r for r in json.loads(cli("catalogs", "--format", "json").stdout)}
    assert rows["hhs"]["status"] == "ok" and rows["hhs"]["datasets"] == 1786 and rows["hhs"]["last_discovered"]


def test_an_unchanged_listing_costs_one_304_and_is_not_parsed_again(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/data.json", _listing("Flu Vaccinations"), etag='"v1"', content_type="application/json")
    write_catalog(manifests, "t", [("dcat-us", url)])
    assert cli("discover", "t").exit_code == 0
    index = home / "index" / "datasets.parquet"
    # Same validators, different bytes: a parser would fail on this body, a 304 never reads it.
    http_server.add("/data.json", "not json at all", etag='"v1"')
    result = cli("discover", "t")
    assert result.exit_code == 0, result.stderr
    assert "unchanged" in result.stderr
    first, second = http_server.hits("/data.json")
    assert "If-None-Match" not in first.headers
    assert second.headers["If-None-Match"] == '"v1"'
    assert index.is_file()
    assert [r["title"] for r in _sql(cli, "select title from liberacion.datasets where catalog = 't'")] == [
        "Flu Vaccinations"
    ]
    # New validators and a new body: parsed again.
    http_server.add("/data.json", _listing("Flu Vaccinations", "Measles Cases"), etag='"v2"')
    assert cli("discover", "t").exit_code == 0
    assert len(_sql(cli, "select title from liberacion.datasets where catalog = 't'")) == 2


def _hang_up(request: Any) -> None:
    """A network failure: the server closes the connection without answering."""
    import socket

    request.close_connection = True
    request.connection.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize(
    ("body", "options", "reason"),
    [
        ("<html><body>Access Denied</body></html>", {"content_type": "text/html"}, "HTML page"),
        ('{"error": true, "message": "Rate limit exceeded"}', {}, "Rate limit exceeded"),
        ('{"dataset": [{"title": ', {}, "invalid JSON"),
        ('{"conformsTo": "x", "dataset": []}', {}, "no public datasets"),
        ("gone", {"status": 500}, "HTTP 500"),
        (None, {}, "the connection closed"),
    ],
)
def test_a_failed_listing_keeps_the_previous_index_and_others_still_update(
    cli: Any, manifests: Path, http_server: LocalServer, body: str | None, options: dict[str, Any], reason: str
) -> None:
    good = http_server.add("/good.json", _listing("Hospital Beds"))
    flaky = http_server.add("/flaky.json", _listing("Opioid Overdoses"))
    write_catalog(manifests, "good", [("dcat-us", good)])
    write_catalog(manifests, "flaky", [("dcat-us", flaky)])
    assert cli("discover", "good", "flaky").exit_code == 0

    http_server.add("/good.json", _listing("Hospital Beds", "Nursing Homes"))
    if body is None:
        http_server.add("/flaky.json", handler=_hang_up)
    else:
        http_server.add("/flaky.json", body, etag="", last_modified="", **options)
    result = cli("discover", "good", "flaky")
    assert result.exit_code == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: flaky:") and reason in error and "keeping the previous index" in error
    titles = {r["title"] for r in _sql(cli, "select title from liberacion.datasets")}
    assert {"Opioid Overdoses", "Hospital Beds", "Nursing Homes"} <= titles
    rows = {r["name"]: r for r in json.loads(cli("catalogs", "--format", "json").stdout)}
    assert rows["flaky"]["status"].startswith("failed:") and rows["good"]["status"] == "ok"


def test_discover_an_unknown_catalog_is_not_found(cli: Any) -> None:
    result = cli("discover", "nosuch")
    assert result.exit_code == 3 and "no catalog named 'nosuch'" in result.stderr


def test_a_bad_manifest_fails_discover_with_5_but_the_rest_is_indexed(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    write_catalog(manifests, "good", [("dcat-us", http_server.add("/good.json", _listing("Births")))])
    (manifests / "bad.toml").write_text('name = "bad"\n[[source]]\nkind = "rss"\nurl = "https://x.gov"\n')
    result = cli("discover", "good")
    assert result.exit_code == 5 and "bad.toml: [[source]] #1: unknown kind 'rss'" in result.stderr
    assert [r["title"] for r in _sql(cli, "select title from liberacion.datasets where catalog = 'good'")] == ["Births"]


def test_discover_openfda_and_ckan_through_the_cli(cli: Any, manifests: Path, http_server: LocalServer) -> None:
    from tests.test_adapters import OPENFDA, _ckan_server

    write_catalog(manifests, "fda", [("openfda", http_server.add("/download.json", json.dumps(OPENFDA)))])
    ckan = _ckan_server(http_server, total=7)
    (manifests / "dg.toml").write_text(
        f'name = "dg"\n[[source]]\nkind = "ckan"\nurl = "{ckan}"\nrows = 2\nmax_pages = 3\n', encoding="utf-8"
    )
    result = cli("discover", "fda", "dg")
    assert result.exit_code == 0, result.stderr
    assert "page cap (3 pages, 6 of 7 packages)" in result.stderr
    refs = {r["ref"] for r in _sql(cli, "select ref from liberacion.datasets where catalog in ('fda', 'dg')")}
    assert refs == {"fda/drug-enforcement", "fda/drug-event"} | {f"dg/package-{i}" for i in range(6)}


def test_curated_datasets_are_in_the_index_enriched_by_their_listing(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    url = http_server.add("/data.json", _listing("Leading Causes of Death", "Other"))
    write_catalog(
        manifests,
        "t",
        [("socrata", url)],
        body='[[dataset]]\nid = "deaths"\ntitle = "Deaths (curated)"\nsource_id = "0000-abcd"\n',
    )
    assert cli("discover", "t").exit_code == 0
    rows = _sql(cli, "select ref, curated, formats, modified from liberacion.datasets where catalog = 't' order by ref")
    assert rows == [
        {"ref": "t/0000-abcd", "curated": False, "formats": ["csv"], "modified": "2025-01-15"},
        {"ref": "t/0001-abcd", "curated": False, "formats": ["csv"], "modified": "2025-01-15"},
        {"ref": "t/deaths", "curated": True, "formats": ["csv"], "modified": "2025-01-15"},
    ]


# -- coverage, parallel catalogs, unchanged listings (issue 11) ---------------------------------


def _index(home: Path, query: str) -> list[dict[str, Any]]:
    """Rows of ``query`` over the index file, ``liberacion.datasets`` being the index."""
    import duckdb

    path = home / "index" / "datasets.parquet"
    with duckdb.connect() as con:
        con.execute("create schema liberacion")
        con.execute(f"create view liberacion.datasets as select * from read_parquet('{path}')")
        result = con.execute(query)
        names = [c[0] for c in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]


def _dcat_dataset(i: int, *distributions: dict[str, Any]) -> dict[str, Any]:
    return {"identifier": f"https://data.example.gov/id/d{i}", "title": f"D{i}", "distribution": list(distributions)}


def test_the_index_says_what_fetch_can_take_and_why_not(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    listing = {
        "dataset": [
            _dcat_dataset(
                0,
                {"downloadURL": "https://x.gov/d0_2019.csv", "temporal": "2019-01-01/2019-12-31"},
                {"downloadURL": "https://x.gov/d0_2022.csv", "temporal": "2022-01-01/2022-12-31"},
            ),
            _dcat_dataset(1, {"downloadURL": "https://x.gov/guide.pdf"}, {"downloadURL": "https://x.gov/slides.pptx"}),
            _dcat_dataset(2, {"downloadURL": "https://x.gov/search.cfm"}, {"accessURL": "https://x.gov"}),
            _dcat_dataset(3, {"accessURL": "https://x.gov/api/registration", "format": "API"}),
            _dcat_dataset(4, {"downloadURL": "https://x.gov/recalls.xml", "mediaType": "application/xml"}),
            _dcat_dataset(5),
            _dcat_dataset(6, {"accessURL": "https://x.gov/files/beds.xlsx"}),
        ]
    }
    write_catalog(manifests, "t", [("dcat-us", http_server.add("/data.json", json.dumps(listing)))])
    result = cli("discover", "t")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "t: 7 datasets, 2 fetchable (not: 1 no distribution, 1 only a landing page, 1 only documents,"
        " 1 API only, 1 unsupported format)"
    )
    rows = _index(
        home,
        "select id, fetchable, fetch_url, fetch_format, why_not from liberacion.datasets"
        " where catalog = 't' order by id",
    )
    assert rows == [
        {
            "id": "d0",
            "fetchable": True,
            "fetch_url": "https://x.gov/d0_2022.csv",
            "fetch_format": "csv",
            "why_not": None,
        },
        {"id": "d1", "fetchable": False, "fetch_url": None, "fetch_format": None, "why_not": "only documents"},
        {"id": "d2", "fetchable": False, "fetch_url": None, "fetch_format": None, "why_not": "only a landing page"},
        {"id": "d3", "fetchable": False, "fetch_url": None, "fetch_format": None, "why_not": "API only"},
        {"id": "d4", "fetchable": False, "fetch_url": None, "fetch_format": None, "why_not": "unsupported format"},
        {"id": "d5", "fetchable": False, "fetch_url": None, "fetch_format": None, "why_not": "no distribution"},
        {
            "id": "d6",
            "fetchable": True,
            "fetch_url": "https://x.gov/files/beds.xlsx",
            "fetch_format": "xlsx",
            "why_not": None,
        },
    ]
    counts = _index(
        home,
        "select why_not, count(*) as n from liberacion.datasets where catalog = 't' group by 1 order by 1 nulls first",
    )
    assert counts[0] == {"why_not": None, "n": 2}


def test_the_index_coverage_of_the_real_healthdata_gov_listing(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path, realdata: Path
) -> None:
    hhs = http_server.add(
        "/hhs/data.json", realdata / "catalogs/data-cdc-gov-json-quality/2021-12-12/hhs.gov.data.json"
    )
    write_catalog(manifests, "hhs", [("socrata", hhs)])
    result = cli("discover", "hhs")
    assert result.exit_code == 0, result.stderr
    assert "hhs: 1,786 datasets, 1,135 fetchable" in result.stderr.splitlines()[-1]
    (aco,) = _index(home, "select fetch_url from liberacion.datasets where id = '9767cb68-8ea9-4f0b-8179-9431abc89f11'")
    assert aco["fetch_url"].endswith("/SSP_ACO_Participants_2021_01_01.csv")
    (slides,) = _index(home, "select fetchable, why_not from liberacion.datasets where id = '6wg8-s245'")
    assert slides == {"fetchable": False, "why_not": "only documents"}


def test_unchanged_listings_keep_the_index_but_a_changed_manifest_rebuilds_it(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/data.json", _listing("Flu Vaccinations"), etag='"v1"', content_type="application/json")
    manifest = write_catalog(manifests, "t", [("dcat-us", url)])
    assert cli("discover", "t").exit_code == 0
    index = home / "index" / "datasets.parquet"
    before = index.stat().st_mtime_ns
    result = cli("discover", "t")
    assert result.exit_code == 0, result.stderr
    assert "the index was kept as it was" in result.stderr
    assert result.stderr.splitlines()[-1] == "t: 1 dataset, 1 fetchable"  # still reported, from the index
    assert index.stat().st_mtime_ns == before
    # A curated dataset added to the manifest: the listing is unchanged, the index is not.
    manifest.write_text(
        manifest.read_text() + '\n[[dataset]]\nid = "births"\ntitle = "Births"\nurl = "https://x.gov/births.csv"\n'
    )
    result = cli("discover", "t")
    assert result.exit_code == 0 and "kept as it was" not in result.stderr
    assert [r["id"] for r in _index(home, "select id from liberacion.datasets where catalog = 't' order by id")] == [
        "0000-abcd",
        "births",
    ]
    # ... and removed again.
    manifest.write_text(manifest.read_text().split("\n[[dataset]]")[0])
    assert cli("discover", "t").exit_code == 0
    assert [r["id"] for r in _index(home, "select id from liberacion.datasets where catalog = 't'")] == ["0000-abcd"]


def test_catalogs_are_discovered_at_the_same_time_and_reported_in_order(
    manifests: Path, http_server: LocalServer, home: Path
) -> None:
    import time

    from liberacion.catalogs.index import discover
    from liberacion.home import Home

    slow_a = http_server.add("/a.json", _listing("A"), delay=1.0)
    slow_b = http_server.add("/b.json", _listing("B"), delay=1.0)
    write_catalog(manifests, "zeta", [("dcat-us", slow_a)])
    write_catalog(manifests, "alpha", [("dcat-us", slow_b)])
    started = time.monotonic()
    report = discover(Home(home), ["zeta", "alpha"])
    elapsed = time.monotonic() - started
    assert [c.name for c in report.catalogs] == ["zeta", "alpha"]  # the order asked for
    assert [c.fetchable for c in report.catalogs] == [1, 1]
    assert elapsed < 1.8, f"the two slow listings were read one after the other ({elapsed:.1f} s)"


def test_an_unchanged_ckan_search_costs_one_small_request_and_keeps_the_index(
    cli: Any, manifests: Path, http_server: LocalServer
) -> None:
    """CKAN answers no conditional requests: the count and newest metadata_modified stand in for an ETag."""
    from urllib.parse import parse_qs, urlsplit

    modified = {i: f"2026-11-0{i + 1}T00:00:00" for i in range(5)}

    def search(request: Any) -> None:
        query = parse_qs(urlsplit(request.path).query)
        order = (
            sorted(modified, key=modified.get, reverse=True)
            if "metadata_modified" in query["sort"][0]
            else list(modified)
        )
        start, rows = int(query["start"][0]), int(query["rows"][0])
        packages = [
            {"id": f"uuid-{i}", "name": f"package-{i}", "title": f"Package {i}", "metadata_modified": modified[i],
             "resources": [{"url": f"https://files.example.gov/{i}.csv", "format": "CSV"}]}
            for i in order[start : start + rows]
        ]  # fmt: skip
        body = json.dumps({"success": True, "result": {"count": len(modified), "results": packages}}).encode()
        request.send_error_body(200, body, "application/json")

    url = http_server.add("/api/3/action/package_search", handler=search) + "?fq=organization%3Ahhs-gov"
    (manifests / "dg.toml").write_text(f'name = "dg"\n[[source]]\nkind = "ckan"\nurl = "{url}"\nrows = 2\n')
    assert cli("discover", "dg").exit_code == 0
    before = len(http_server.requests)
    again = cli("discover", "dg")
    assert again.exit_code == 0, again.stderr
    assert "the index was kept as it was" in again.stderr
    assert len(http_server.requests) == before + 1  # one search of one package, not every page
    modified[3] = "2026-12-01T00:00:00"  # an edited package
    before = len(http_server.requests)
    changed = cli("discover", "dg")
    assert changed.exit_code == 0 and "the index was kept" not in changed.stderr
    assert len(http_server.requests) == before + 1 + 3  # the token moved: every page is read again


def test_an_unchanged_discover_does_not_load_requests(manifests: Path, http_server: LocalServer, home: Path) -> None:
    """Unchanged listings answer 304 over http.client; importing requests would cost more than the run."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    url = http_server.add("/data.json", _listing("Flu Vaccinations"), etag='"v1"', content_type="application/json")
    write_catalog(manifests, "t", [("dcat-us", url)])
    code = (
        "import sys\n"
        "from liberacion.cli import main\n"
        "try:\n    main()\nexcept SystemExit as done:\n    code = done.code\n"
        "print('requests' in sys.modules, code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), "LIBERACION_CATALOGS": str(manifests)}
    command = [sys.executable, "-c", code, "discover", "t"]
    runs = [subprocess.run(command, env=env, capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert [r.stdout.split() for r in runs] == [["False", "0"], ["False", "0"]], runs[1].stderr
    assert "the index was kept as it was" in runs[1].stderr
    assert [r.headers.get("If-None-Match") for r in http_server.hits("/data.json")] == [None, '"v1"']


def test_listings_go_through_a_proxy_named_by_the_environment(
    cli: Any, manifests: Path, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_server.add("/data.json", _listing("Flu Vaccinations"), etag='"v1"', content_type="application/json")
    proxy = LocalServer().start()
    try:
        # A proxy is asked for the absolute URL: the route's path is the listing's whole URL.
        proxy.add(url, _listing("Flu Vaccinations", "Via The Proxy"), etag='"p1"', content_type="application/json")
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.base)
        write_catalog(manifests, "t", [("dcat-us", url)])
        first = cli("discover", "t")
        again = cli("discover", "t")
    finally:
        proxy.stop()
    assert first.exit_code == 0 and "t: 2 datasets indexed" in first.stderr, first.stderr
    assert again.exit_code == 0 and "the index was kept as it was" in again.stderr
    assert [r.headers.get("If-None-Match") for r in proxy.hits(url)] == [None, '"p1"']
    assert http_server.hits("/data.json") == []


def test_a_redirected_listing_keeps_its_token_on_its_origin_and_is_asked_conditionally(
    cli: Any, manifests: Path, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    monkeypatch.setenv("LIBERACION_SOCRATA_APP_TOKEN", "sekrit")
    monkeypatch.setenv("LIBERACION_SOCRATA_HOSTS", "127.0.0.1")
    monkeypatch.setattr("liberacion.download.session._default", None)  # a client that reads them
    target = http_server.add(
        "/v2/data.json",
        gzip.compress(_listing("Flu Vaccinations").encode()),
        etag='"v1"',
        headers={"Content-Encoding": "gzip"},
        content_type="application/json",
    )
    other = LocalServer().start()  # the same host on another port: another origin, no token
    try:
        elsewhere = other.add("/data.json", _listing("Elsewhere"), etag='"e1"', content_type="application/json")

        def moved(handler: Any) -> None:
            handler.send_error_body(301, b"", "text/plain", {"Location": target})

        def away(handler: Any) -> None:
            handler.send_error_body(302, b"", "text/plain", {"Location": elsewhere})

        write_catalog(manifests, "t", [("socrata", http_server.add("/data.json", handler=moved))])
        write_catalog(manifests, "u", [("socrata", http_server.add("/away.json", handler=away))])
        first = cli("discover", "t", "u")
        again = cli("discover", "t", "u")
        assert first.exit_code == 0 and "t: 1 dataset indexed" in first.stderr, first.stderr
        assert again.exit_code == 0 and "the index was kept as it was" in again.stderr, again.stderr
        hits = http_server.hits("/v2/data.json")
        assert [h.headers.get("If-None-Match") for h in hits] == [None, '"v1"']
        assert all(h.headers.get("X-App-Token") == "sekrit" for h in [*hits, *http_server.hits("/data.json")])
        assert [h.headers.get("If-None-Match") for h in other.hits("/data.json")] == [None, '"e1"']
        assert all("X-App-Token" not in h.headers for h in other.hits("/data.json"))
    finally:
        other.stop()


def test_an_edited_manifest_is_read_again_whatever_its_mtime_and_the_parse_cache_say(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    import os

    url = http_server.add("/data.json", _listing("Flu Vaccinations"), etag='"v1"', content_type="application/json")
    manifest = write_catalog(manifests, "t", [("dcat-us", url)], title="Alpha")
    assert cli("discover", "t").exit_code == 0

    def title() -> str:
        result = cli("catalogs", "--format", "json")
        assert result.exit_code == 0, result.stderr
        return next(c["title"] for c in json.loads(result.stdout) if c["name"] == "t")

    assert title() == "Alpha"
    stat = manifest.stat()
    manifest.write_text(manifest.read_text().replace("Alpha", "Omega"))
    os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    assert title() == "Omega"
    (home / "state" / "manifests.json").write_text("{damaged")
    assert title() == "Omega"
    again = cli("discover", "t")
    assert again.exit_code == 0 and "the index was kept as it was" in again.stderr, again.stderr
    assert json.loads((home / "state" / "manifests.json").read_text())["version"] == 1  # rewritten


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself, and its key."""
    import datetime
    import ipaddress

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_an_https_listing_is_verified_against_the_ca_bundle_requests_would_use(
    manifests: Path, home: Path, tmp_path: Path
) -> None:
    """REQUESTS_CA_BUNDLE names the server's certificate: verified, and still without loading requests;
    without it (certifi's bundle) the same server is refused."""
    import os
    import ssl
    import subprocess
    import sys

    from tests.conftest import ROOT

    cert, key = _self_signed(tmp_path)
    server = LocalServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.start()
    try:
        url = server.add("/data.json", _listing("Flu Vaccinations"), etag='"v1"', content_type="application/json")
        write_catalog(manifests, "t", [("dcat-us", url.replace("http://", "https://"))])
        code = (
            "import sys\n"
            "from liberacion.cli import main\n"
            "try:\n    main()\nexcept SystemExit as done:\n    code = done.code\n"
            "print('requests' in sys.modules, code)\n"
        )
        base = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
        env = {**base, "PYTHONPATH": str(ROOT), "LIBERACION_HOME": str(home), "LIBERACION_CATALOGS": str(manifests)}
        command = [sys.executable, "-c", code, "discover", "t"]

        def run(**extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(command, env={**env, **extra}, capture_output=True, text=True, timeout=120)

        refused = run()
        trusted = [run(REQUESTS_CA_BUNDLE=str(cert)) for _ in range(2)]
    finally:
        server.stop()
    assert refused.stdout.split() == ["False", "1"] and "TLS check failed" in refused.stderr, refused.stderr
    assert [r.stdout.split() for r in trusted] == [["False", "0"], ["False", "0"]], trusted[1].stderr
    assert "the index was kept as it was" in trusted[1].stderr
    assert [r.headers.get("If-None-Match") for r in server.hits("/data.json")] == [None, '"v1"']


def test_a_discover_that_fails_writing_the_index_leaves_the_old_index_whole(
    cli: Any, manifests: Path, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import pyarrow.parquet as pq

    url = http_server.add("/listing.json", _listing("Hospital Beds"))
    write_catalog(manifests, "agency", [("dcat-us", url)])
    assert cli("discover", "agency").exit_code == 0
    http_server.add("/listing.json", _listing("Hospital Beds", "Nursing Homes"))

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(pq, "write_table", full_disk)
        assert cli("discover", "agency").exit_code != 0
    # search and liberacion.datasets still agree: both the old index, neither half of the new one
    found = json.loads(cli("search", "nursing", "--catalog", "agency", "--format", "json").stdout)
    assert found == []
    titles = {r["title"] for r in _sql(cli, "select title from liberacion.datasets where catalog = 'agency'")}
    assert titles == {"Hospital Beds"}
    assert cli("discover", "agency").exit_code == 0  # and the next discover takes the change
    hits = json.loads(cli("search", "nursing", "--catalog", "agency", "--format", "json").stdout)
    assert [h["title"] for h in hits] == ["Nursing Homes"]
