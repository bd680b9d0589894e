"""A data engineer writes their own catalog manifests from README alone: a Socrata portal, a CKAN
site, a DKAN site, a DCAT-US data.json, an openFDA-like download.json and a hand-curated list of
files, served from a local HTTP server. Every key does what README says; every mistake is one line
naming the file, the place and the fix."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from liberacion.lake import Lake
from tests.conftest import ROOT
from tests.manifests import write_catalog
from tests.server import LocalServer

CSV_A = "facility_id,state,beds\n010001,AL,12\n010005,AL,40\n"
CSV_B = "county_fips,measure,value\n01001,obesity,33.1\n01003,obesity,29.0\n01005,obesity,30.2\n"


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def only_error(result: Any, path: Path) -> str:
    """The one `error:` line of a run that exited 5, naming ``path``."""
    assert result.exit_code == 5, result.stderr
    [line] = errors(result.stderr)
    assert line.startswith(f"error: {path}: "), line
    assert "Traceback" not in result.stderr
    return line


def dataset(body: str, *, id: str = "a", url: str = "https://data.example.gov/a.csv") -> str:
    return f'\n[[dataset]]\nid = "{id}"\nurl = "{url}"\n{body}'


def json_out(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# -- every kind of listing, end to end -----------------------------------------------------------


def _dkan_item(identifier: str, title: str, url: str) -> dict[str, Any]:
    return {
        "@type": "dcat:Dataset",
        "accessLevel": "public",
        "identifier": identifier,
        "title": title,
        "description": "d",
        "modified": "2025-06-17",
        "publisher": {"@type": "org:Organization", "name": "State Department of Health"},
        "distribution": [{"@type": "dcat:Distribution", "downloadURL": url, "mediaType": "text/csv"}],
    }


def _serve_every_kind(server: LocalServer) -> None:
    """Listings in the shapes the publishers use (hhs-sources.md), every file on the local server."""
    base = server.base
    server.add("/api/views/abcd-1234.json", json.dumps({"id": "abcd-1234", "name": "Hospitals", "viewType": "tabular"}))
    server.add("/api/views/abcd-1234/rows.csv", CSV_A, content_type="text/csv")
    socrata = {
        "dataset": [
            {
                "identifier": f"{base}/api/views/abcd-1234",
                "title": "Hospitals",
                "description": "d",
                "accessLevel": "public",
                "distribution": [
                    {"downloadURL": f"{base}/api/views/abcd-1234/rows.csv?accessType=DOWNLOAD", "mediaType": "text/csv"}
                ],
            }
        ]
    }
    server.add("/socrata/data.json", json.dumps(socrata), content_type="application/json")
    item = _dkan_item("23ew-n7w9", "Dialysis facilities", server.add("/dkan/dfc.csv", CSV_A))
    server.add("/dkan/items", json.dumps([item]), content_type="application/json")
    server.add("/dkan/items/23ew-n7w9", json.dumps(item), content_type="application/json")
    package = {
        "id": "u-1",
        "name": "county-obesity",
        "title": "County obesity",
        "metadata_modified": "2025-01-01T00:00:00",
        "organization": {"title": "State Department of Health"},
        "resources": [{"url": server.add("/ckan/obesity.csv", CSV_B), "format": "CSV", "mimetype": "text/csv"}],
    }
    search = {"success": True, "result": {"count": 1, "results": [package]}}
    server.add("/ckan/api/3/action/package_search", json.dumps(search), content_type="application/json")
    dcat = {"dataset": [_dkan_item("ds-1", "Clinics", server.add("/dcat/clinics.csv", CSV_A))]}
    server.add("/dcat/data.json", json.dumps(dcat), content_type="application/json")
    fda = {
        "results": {
            "animal": {
                "event": {
                    "export_date": "2021-11-28",
                    "partitions": [{"file": server.add("/fda/part-1.jsonl", '{"a": 1}\n{"a": 2}\n'), "size_mb": "0.1"}],
                }
            }
        }
    }
    server.add("/fda/download.json", json.dumps(fda), content_type="application/json")
    server.add("/files/y2022.csv", "year,n\n2022,1\n", content_type="text/csv")
    server.add("/files/y2023.csv", "year,n\n2023,2\n", content_type="text/csv")


def _write_every_kind(directory: Path, base: str) -> None:
    write_catalog(
        directory,
        "statesoc",
        [("socrata", f"{base}/socrata/data.json")],
        body='\n[[dataset]]\nid = "hosp"\nsource_id = "abcd-1234"\nsource = "socrata"\nkeys = ["facility_id"]\n'
        '[dataset.columns]\nfacility_id = "string"\n',
    )
    write_catalog(
        directory,
        "stateckan",
        [("ckan", f"{base}/ckan/api/3/action/package_search")],
        body="rows = 100\nmax_pages = 2\n",
    )
    write_catalog(
        directory,
        "statedkan",
        [("dkan", f"{base}/dkan/items")],
        body='\n[[dataset]]\nid = "dialysis"\nsource_id = "23ew-n7w9"\n[dataset.columns]\nfacility_id = "string"\n',
    )
    write_catalog(directory, "statedcat", [("dcat-us", f"{base}/dcat/data.json")])
    write_catalog(directory, "statefda", [("openfda", f"{base}/fda/download.json")])
    write_catalog(
        directory,
        "curated",
        body=f'publisher = "Me"\n[[dataset]]\nid = "years"\ntitle = "Yearly counts"\n'
        f'urls = ["{base}/files/y2022.csv", "{base}/files/y2023.csv"]\nformat = "csv"\nkeywords = ["yearly"]\n',
    )


def test_every_kind_of_manifest_discovers_searches_fetches_and_refreshes(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    _serve_every_kind(http_server)
    _write_every_kind(manifests, http_server.base)
    names = ["statesoc", "stateckan", "statedkan", "statedcat", "statefda", "curated"]
    listed = {c["name"]: c["status"] for c in json_out(cli("catalogs", "--format", "json"))}
    assert {name: listed[name] for name in names} == {
        **dict.fromkeys(names[:5], "not discovered"),
        "curated": "curated",
    }
    result = cli("discover", *names)
    assert result.exit_code == 0 and errors(result.stderr) == [], result.stderr
    hits = json_out(cli("search", "county", "obesity", "--format", "json"))
    assert [h["ref"] for h in hits] == ["stateckan/county-obesity"]
    assert [h["ref"] for h in json_out(cli("search", "yearly", "--format", "json"))] == ["curated/years"]
    refs = ["statesoc/hosp", "stateckan/county-obesity", "statedkan/dialysis", "statedcat/ds-1"]
    refs += ["statefda/animal-event", "curated/years"]
    fetched = cli("fetch", *refs, "--json")
    assert fetched.exit_code == 0, fetched.stderr
    rows = {line["table"]: line["rows"] for line in map(json.loads, fetched.stdout.splitlines())}
    assert rows == {
        "statesoc.hosp": 2,
        "stateckan.county_obesity": 3,
        "statedkan.dialysis": 2,
        "statedcat.ds_1": 2,
        "statefda.animal_event": 2,
        "curated.years": 2,
    }
    lake = Lake(home)
    assert {c.name: c.type for c in lake.current("statesoc.hosp").schema}["facility_id"] == "VARCHAR"
    refreshed = cli("refresh", "--json")
    assert refreshed.exit_code == 0, refreshed.stderr
    assert json.loads(refreshed.stdout.splitlines()[-1])["unchanged"] == 6


# -- README's example, as written ----------------------------------------------------------------


def _readme_manifest() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```toml\n(.*?)```", readme, re.S)
    return block


def test_readmes_manifest_example_loads_as_written_and_with_its_pointer(cli: Any, manifests: Path) -> None:
    text = _readme_manifest()
    path = manifests / "cms.toml"
    path.write_text(text, encoding="utf-8")
    shown = {c["name"]: c for c in json_out(cli("catalogs", "--format", "json"))}
    assert shown["cms"]["title"] == "Centers for Medicare & Medicaid Services"
    assert shown["cms"]["datasets"] == 1  # README's cms replaces the shipped one whole
    pointer = text.replace('url = "https://..."', "").replace('# source_id = "', 'source_id = "')
    path.write_text(pointer.replace('# source = "dkan"', 'source = "dcat-us"'), encoding="utf-8")
    assert cli("catalogs").exit_code == 0


# -- values the manifest cannot hold -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # One file twice in one table loaded its rows twice.
        (
            '\n[[dataset]]\nid = "a"\nurls = ["https://x.gov/a.csv", "https://x.gov/b.csv", " https://x.gov/a.csv"]\n',
            "[[dataset]] #1 (a): `urls` names 'https://x.gov/a.csv' twice; list each once",
        ),
        (dataset('keys = ["id", "id"]\n'), "[[dataset]] #1 (a): `keys` names 'id' twice; list each once"),
        (
            dataset('[dataset.columns]\n"" = "string"\n'),
            "[[dataset]] #1 (a): [dataset.columns] has an empty column name",
        ),
        # A manifest expands nothing: the host `${STATE_HOST}` was accepted and failed at fetch.
        (
            dataset("", url="https://${STATE_HOST}/files/a.csv"),
            '`url` = "https://${STATE_HOST}/files/a.csv": a manifest expands no environment variables',
        ),
        (
            '\n[[source]]\nkind = "dkan"\nurl = "https://$PORTAL/api/1/metastore/schemas/dataset/items"\n',
            '[[source]] #1: `url` = "https://$PORTAL/api/1/metastore/schemas/dataset/items": a manifest expands no',
        ),
        (
            dataset("", url="~/data/a.csv"),
            '`url` must be an http(s) URL such as "https://data.example.gov/...", not "~/data/a.csv" (a manifest'
            " expands no ~, $VARIABLE or relative path; a file you have: liberacion fetch PATH --as CATALOG.TABLE)",
        ),
        (
            '\n[[dataset]]\nid = "Hospital List"\nurl = "https://x.gov/a.csv"\n'
            + dataset("", id="hospital-list", url="https://x.gov/b.csv"),
            "[[dataset]] #2: duplicate id 'hospital-list': [[dataset]] #1 makes it too (id = 'Hospital List');"
            " give each its own `id`",
        ),
        ('\n[[source]]\nkind = "dkan"\n', "[[source]] #1: missing `url` (the dkan listing's http(s) URL)"),
        # TOML gives a key to the [table] line above it: a key in the wrong place said as such.
        (
            '\n[[source]]\nkind = "dkan"\nurl = "https://x.gov/items"\npublisher = "State DOH"\n',
            "[[source]] #1: unknown key 'publisher' (a key of the catalog (the top) or [[dataset]]: TOML gives a"
            " key to the [table] line above it, so move it there)",
        ),
        (
            dataset('[dataset.columns]\nzip = "string"\nkeys = ["zip"]\n'),
            "[[dataset]] #1 (a): [dataset.columns] `keys` is a [[dataset]] key read as a column (TOML gives a key"
            " to the [table] line above it): move `keys` above [dataset.columns]",
        ),
        (
            dataset('kind = "dkan"\n'),
            "[[dataset]] #1 (a): unknown key 'kind' (a key of [[source]]: TOML gives a key to the [table] line",
        ),
        (
            '\n[[source]]\nkind = "Socrata"\nurl = "https://x.gov/data.json"\n',
            "[[source]] #1: unknown kind 'Socrata' (did you mean 'socrata'?)",
        ),
    ],
)
def test_values_a_manifest_cannot_hold_are_one_line_naming_the_key_and_the_fix(
    cli: Any, manifests: Path, body: str, message: str
) -> None:
    path = manifests / "m.toml"
    path.write_text('name = "m"\n' + body, encoding="utf-8")
    for command in (["catalogs"], ["search", "anything"], ["discover", "m"]):
        line = only_error(cli(*command), path)
        assert message in line, line


def test_a_dollar_that_is_no_variable_stays_in_a_url(cli: Any, manifests: Path) -> None:
    write_catalog(manifests, "m", body=dataset("", url="https://data.example.gov/resource/x.csv?$limit=50000"))
    assert cli("catalogs").exit_code == 0


def test_urls_listing_one_file_twice_never_doubles_its_rows(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    url = http_server.add("/a.csv", CSV_A)
    path = write_catalog(manifests, "m", body=f'\n[[dataset]]\nid = "a"\nurls = ["{url}", "{url}"]\n')
    result = cli("fetch", "m/a")
    assert result.exit_code == 5 and errors(result.stderr)  # said twice by fetch (NOTES: left for later)
    assert all(f"{path}: [[dataset]] #1 (a): `urls` names '{url}' twice" in line for line in errors(result.stderr))
    assert http_server.hits("/a.csv") == [] and not Lake(home).exists("m.a")


# -- the file's text -----------------------------------------------------------------------------


def test_a_byte_order_mark_is_no_part_of_the_manifest(cli: Any, manifests: Path) -> None:
    (manifests / "m.toml").write_bytes(b'\xef\xbb\xbfname = "m"\ntitle = "Mine"\n')  # Windows Notepad's UTF-8
    result = cli("catalogs", "--format", "json")
    assert {c["name"]: c["title"] for c in json_out(result)}["m"] == "Mine"


def test_a_manifest_that_is_not_utf8_names_its_line(cli: Any, manifests: Path) -> None:
    path = manifests / "m.toml"
    path.write_bytes(b'name = "m"\n\ntitle = "Sant\xe9 publique"\n')  # Latin-1
    line = only_error(cli("catalogs"), path)
    said = "line 3: the manifest is not UTF-8 text (byte 0xe9); save it as UTF-8 (TOML files are UTF-8)"
    assert line == f"error: {path}: {said}"


def test_a_toml_syntax_error_names_the_file_and_line(cli: Any, manifests: Path) -> None:
    path = manifests / "m.toml"
    path.write_text('name = "m"\n\n[[dataset]\nid = "a"\n', encoding="utf-8")
    line = only_error(cli("catalogs"), path)
    assert "invalid TOML" in line and "line 3" in line


def test_an_editors_lock_file_beside_the_manifests_is_not_one(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    """Emacs keeps ``.#m.toml``, a link to nowhere, while ``m.toml`` is being edited: it was read as a
    manifest whose name cannot be told, so every catalog ref was refused (exit 5) meanwhile, even
    from cron."""
    write_catalog(manifests, "m", body=dataset("", url=http_server.add("/a.csv", CSV_A)))
    (manifests / ".#m.toml").symlink_to("someone@host.12345:1700000000")
    (manifests / "._m.toml").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")  # macOS' AppleDouble
    result = cli("fetch", "m/a")
    assert result.exit_code == 0 and errors(result.stderr) == [], result.stderr
    assert Lake(home).current("m.a").rows == 2


# -- what a curated pointer takes from the manifest ------------------------------------------------


def test_a_datasets_own_publisher_wins_over_the_listings(cli: Any, manifests: Path, http_server: LocalServer) -> None:
    item = _dkan_item("23ew-n7w9", "Dialysis facilities", http_server.add("/dfc.csv", CSV_A))
    other = _dkan_item("2fpu-cgbb", "Nursing homes", http_server.add("/nh.csv", CSV_A))
    http_server.add("/items", json.dumps([item, other]), content_type="application/json")
    http_server.add("/items/23ew-n7w9", json.dumps(item), content_type="application/json")
    (manifests / "st.toml").write_text(
        f'name = "st"\npublisher = "Catalog default"\n[[source]]\nkind = "dkan"\nurl = "{http_server.url("/items")}"\n'
        '[[dataset]]\nid = "dialysis"\nsource_id = "23ew-n7w9"\npublisher = "Kidney Program"\n'
        '[[dataset]]\nid = "nursing"\nsource_id = "2fpu-cgbb"\n',
        encoding="utf-8",
    )
    assert cli("discover", "st").exit_code == 0
    found = {h["ref"]: h["publisher"] for h in json_out(cli("search", "--catalog", "st", "--format", "json"))}
    assert found["st/dialysis"] == "Kidney Program"  # its own, as its description and keywords would be
    assert found["st/nursing"] == "State Department of Health"  # the catalog's default yields to the listing
    assert json_out(cli("show", "st/dialysis", "--format", "json"))["publisher"] == "Kidney Program"


def test_a_format_the_source_does_not_offer_is_an_error_not_another_format(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    item = _dkan_item("23ew-n7w9", "Dialysis facilities", http_server.add("/dfc.csv", CSV_A))
    http_server.add("/items", json.dumps([item]), content_type="application/json")
    http_server.add("/items/23ew-n7w9", json.dumps(item), content_type="application/json")
    body = '\n[[dataset]]\nid = "dialysis"\nsource_id = "23ew-n7w9"\nformat = "xlsx"\n'
    write_catalog(manifests, "st", [("dkan", http_server.url("/items"))], body=body)
    result = cli("fetch", "st/dialysis")
    assert result.exit_code != 0
    assert errors(result.stderr) == [
        "error: st/dialysis: the manifest asks for format xlsx and the source offers csv: change or remove `format`;"
        " see: liberacion show st/dialysis"
    ]
    assert http_server.hits("/dfc.csv") == [] and not Lake(home).exists("st.dialysis")
    assert cli("discover", "st").exit_code == 0
    sql = "select fetchable, why_not from liberacion.datasets where ref = 'st/dialysis'"
    assert json_out(cli("sql", sql, "--format", "json")) == [
        {"fetchable": False, "why_not": "not in the manifest's format"}
    ]


@pytest.mark.parametrize("kind", ["dkan", "socrata"])
def test_a_source_id_the_source_does_not_know_says_to_check_the_manifest(
    cli: Any, manifests: Path, http_server: LocalServer, kind: str
) -> None:
    listing = "/items" if kind == "dkan" else "/data.json"
    http_server.add(listing, json.dumps([] if kind == "dkan" else {"dataset": []}), content_type="application/json")
    body = '\n[[dataset]]\nid = "x"\nsource_id = "nope-nope"\n'
    path = write_catalog(manifests, "st", [(kind, http_server.url(listing))], body=body)
    result = cli("fetch", "st/x")
    assert result.exit_code == 1
    [line] = errors(result.stderr)
    assert f"the {kind} source has no dataset 'nope-nope' (" in line and "answered HTTP 404 Not Found" in line
    assert line.endswith(f"); check `source_id`{' and `socrata_domain`' if kind == 'socrata' else ''} in {path}")
    assert "check the URL" not in line
