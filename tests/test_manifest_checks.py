"""Catalog manifests are checked whole when they load: every key, every value's type, the names two
of your own manifests declare; and a broken manifest never lets another one stand in for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberacion.lake import Lake
from tests.manifests import write_catalog
from tests.server import LocalServer

CSV_A = "facility_id,beds\n010001,12\n010005,40\n"
CSV_B = "provider,score,state\nx,1,AL\ny,2,AK\nz,3,AZ\n"


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def dataset(body: str, *, id: str = "hgi", url: str = "https://example.org/h.csv") -> str:
    return f'\n[[dataset]]\nid = "{id}"\nurl = "{url}"\n{body}'


SOCRATA = '\n[[source]]\nkind = "socrata"\nurl = "https://example.org/data.json"\n'
CKAN = '\n[[source]]\nkind = "ckan"\nurl = "https://example.org/api/3/action/package_search"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "t"\ntitel = "T"\n', "unknown key 'titel' (did you mean 'title'?)"),
        ('name = "t"\nhomepgae = "https://x.gov"\n', "unknown key 'homepgae' (did you mean 'homepage'?)"),
        (
            'name = "t"\n[[sources]]\nkind = "socrata"\nurl = "https://x.gov/data.json"\n',
            "unknown key 'sources' (did you mean [[source]]?)",
        ),
        ('name = "t"\n[[source]]\nknd = "socrata"\nurl = "https://x.gov/d.json"\n', "[[source]] #1: unknown key 'knd'"),
        (
            'name = "t"' + SOCRATA + 'socrata_domian = "data.cdc.gov"\n',
            "[[source]] #1: unknown key 'socrata_domian' (did you mean 'socrata_domain'?)",
        ),
        ('name = "t"' + dataset('colums = { zip = "string" }\n'), "[[dataset]] #1 (hgi): unknown key 'colums'"),
        ('name = "t"' + dataset('key = ["a"]\n'), "[[dataset]] #1 (hgi): unknown key 'key' (did you mean 'keys'?)"),
        ('name = "t"' + dataset('fromat = "csv"\n'), "unknown key 'fromat' (did you mean 'format'?)"),
        ('name = "t"' + dataset("member = 5\n"), "unknown key 'member' (a manifest cannot choose a zip member"),
        ('name = "t"' + dataset('keys = "provider_id"\n'), '`keys` must be an array of strings, e.g. keys = ["pro'),
        ('name = "t"' + SOCRATA + "socrata_domain = 42\n", '`socrata_domain` must be a host name such as "data.c'),
        ('name = "t"' + SOCRATA + "socrata_domain = true\n", "`socrata_domain` must be a host name"),
        ('name = "t"' + SOCRATA + 'socrata_domain = "x.gov/api"\n', "`socrata_domain` must be a host name"),
        ('name = "t"' + CKAN + "max_pages = true\n", "[[source]] #1 (ckan): `max_pages` must be a positive integer"),
        ('name = "t"' + SOCRATA + "rows = 10\n", "[[source]] #1 (socrata): `rows` applies to kind ckan only"),
        ("name = 7\n", "`name` must be a non-empty string"),
        ('name = "t"' + dataset("title = 5\n"), "[[dataset]] #1 (hgi): `title` must be a string, not 5"),
        (
            'name = "t"' + dataset('[dataset.columns]\nzip_code = "strnig"\n'),
            "[dataset.columns] `zip_code`: unknown type 'strnig' (did you mean 'string'?)",
        ),
        ('name = "t"' + dataset('format = "cvs"\n'), "`format`: unknown format 'cvs' (did you mean 'csv'?)"),
        (
            'name = "t"' + SOCRATA + '[[dataset]]\nid = "x"\nsource_id = "bi63-dtpu"\nsource = "dkan"\n',
            "[[dataset]] #1 (x): `source = 'dkan'` matches no [[source]]",
        ),
        ('name = "t"' + dataset('landing_page = "not a url"\n'), "`landing_page` must be an http(s) URL"),
        (
            'name = "t"' + dataset("", id="a-b") + dataset("", id="a_b"),
            "[[dataset]] #2: ids 'a-b' and 'a_b' both make the table t.a_b",
        ),
    ],
)
def test_unknown_keys_and_wrong_types_are_one_line_naming_file_place_and_key(
    cli: Any, manifests: Path, text: str, message: str
) -> None:
    path = manifests / "m.toml"
    path.write_text(text, encoding="utf-8")
    for command in (["catalogs"], ["discover", "t"]):  # discover of this catalog alone: no network
        result = cli(*command)
        assert result.exit_code == 5, (command, result.stderr)
        [line] = errors(result.stderr)
        assert line.startswith(f"error: {path}: ") and message in line, line
        assert "Traceback" not in result.stderr


def test_every_shipped_manifest_loads(cli: Any) -> None:
    result = cli("catalogs", "--format", "json")
    assert result.exit_code == 0 and errors(result.stderr) == []
    names = {c["name"] for c in json.loads(result.stdout)}
    assert names == {"cdc", "cms", "datagov", "healthdata", "nhanes", "openfda"}


def test_the_column_types_a_manifest_takes_are_the_converters() -> None:
    from liberacion.catalogs.manifests import COLUMN_TYPES
    from liberacion.convert.typing_rules import TYPE_NAMES

    assert sorted(COLUMN_TYPES) == sorted(TYPE_NAMES)


def test_a_socrata_domain_given_with_a_scheme_is_taken_as_its_host(
    manifests: Path, http_server: LocalServer, home: Path, realdata: Path
) -> None:
    from liberacion.home import Home
    from liberacion.resolve import resolve_ref

    view = json.loads((realdata / "socrata/is477-fa24-PHS/cdc.json").read_bytes())["meta"]["view"]
    http_server.add("/api/views/pwn4-m3yp.json", json.dumps(view), content_type="application/json")
    write_catalog(
        manifests,
        "cdc",
        [("socrata", "http://listing.example.org/data.json")],  # never asked: the domain says where views are
        body=f'socrata_domain = "{http_server.base}/"\n[[dataset]]\nid = "covid"\nsource_id = "pwn4-m3yp"\n',
    )
    dataset = resolve_ref("cdc/covid", Home(home))
    assert dataset.change_token == "1685653111"
    assert len(http_server.hits("/api/views/pwn4-m3yp.json")) == 1


# -- a broken manifest never lets another stand in for it -----------------------------------------


def _two_layers(server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The team's manifest (LIBERACION_CATALOGS) and mine over it (--catalogs), the same catalog name."""
    team, mine = tmp_path / "team", tmp_path / "mine"
    team.mkdir()
    mine.mkdir()
    write_catalog(team, "team", body=dataset("", id="hospitals", url=server.add("/a.csv", CSV_A)))
    write_catalog(mine, "team", body=dataset("", id="hospitals", url=server.add("/b.csv", CSV_B)))
    monkeypatch.setenv("LIBERACION_CATALOGS", str(team))
    return team, mine


def test_a_broken_override_fails_fetch_show_and_refresh_instead_of_switching_sources(
    cli: Any, http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    _team, mine = _two_layers(http_server, tmp_path, monkeypatch)
    assert cli("--catalogs", str(mine), "fetch", "team/hospitals").exit_code == 0
    assert Lake(home).current("team.hospitals").rows == 3  # mine: b.csv
    override = mine / "team.toml"
    override.write_text(override.read_text().replace("[[dataset]]", "[[dataset]"))  # one typo in my override
    for args in (("fetch", "team/hospitals", "--json"), ("show", "team/hospitals"), ("refresh", "--json")):
        result = cli("--catalogs", str(mine), *args)
        assert result.exit_code == 5, (args, result.stderr)
        assert f"error: {override}: invalid TOML" in errors(result.stderr)[-1]
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["exit_code"] == 5 and summary["error"].startswith(f"{override}: invalid TOML")
    assert http_server.hits("/a.csv") == []  # the team's file was never fetched in its place
    assert Lake(home).current("team.hospitals").rows == 3


def test_files_and_urls_are_still_fetched_beside_a_broken_manifest(
    cli: Any, http_server: LocalServer, manifests: Path, home: Path
) -> None:
    bad = manifests / "bad.toml"
    bad.write_text('name = "bad"\n[[source]]\nkind = "arcgis"\nurl = "https://x.gov/d.json"\n')
    url = http_server.add("/p.csv", CSV_A)
    result = cli("fetch", url, "--as", "web.p", "--json")
    assert result.exit_code == 5
    assert errors(result.stderr) == [f"error: {bad}: [[source]] #1: unknown kind 'arcgis' (use one of: dcat-us, "
                                     "socrata, dkan, openfda, ckan)"]  # fmt: skip
    assert json.loads(result.stdout)["status"] == "fetched" and Lake(home).current("web.p").rows == 2
    result = cli("fetch", "cdc/leading-causes-of-death")  # a catalog ref: refused
    assert result.exit_code == 5 and http_server.requests[-1].path == "/p.csv"


# -- which manifests -------------------------------------------------------------------------------


def test_two_of_your_manifests_with_one_name_are_an_error(cli: Any, manifests: Path) -> None:
    write_catalog(manifests, "dup", title="first", filename="a.toml")
    write_catalog(manifests, "dup", title="second", filename="b.toml")
    result = cli("catalogs")
    assert result.exit_code == 5
    [line] = errors(result.stderr)
    assert line.startswith(f"error: {manifests / 'b.toml'}: catalog 'dup' is also declared by {manifests / 'a.toml'}")
    write_catalog(manifests, "my-cat", filename="b.toml")  # names that sanitise alike collide too
    write_catalog(manifests, "my_cat", filename="c.toml")
    assert cli("catalogs").exit_code == 5


def test_replacing_across_levels_stays_allowed(
    cli: Any, http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _team, mine = _two_layers(http_server, tmp_path, monkeypatch)
    write_catalog(mine, "cdc", title="my cdc mirror")  # over a shipped catalog
    result = cli("--catalogs", str(mine), "catalogs", "--format", "json")
    assert result.exit_code == 0 and errors(result.stderr) == []
    assert {c["name"]: c["title"] for c in json.loads(result.stdout)}["cdc"] == "my cdc mirror"


@pytest.mark.parametrize(("files", "found"), [([], "it is empty"), (["m.yaml", "m.TOML"], "found: m.TOML, m.yaml")])
def test_a_catalogs_directory_without_manifests_is_an_error(
    cli: Any, tmp_path: Path, files: list[str], found: str
) -> None:
    directory = tmp_path / "mine"
    directory.mkdir()
    for name in files:
        (directory / name).write_text('name = "x"\n')
    result = cli("--catalogs", str(directory), "catalogs")
    assert result.exit_code == 5
    [line] = errors(result.stderr)
    assert line.startswith(f"error: {directory}: no catalog manifests (*.toml) in this directory ({found})")


# -- discover --------------------------------------------------------------------------------------


def test_discover_reads_a_listing_again_when_its_stored_part_is_gone(
    cli: Any, http_server: LocalServer, manifests: Path, home: Path
) -> None:
    items = [
        {"identifier": f"id-{i}", "title": f"Set {i}", "distribution": [{"downloadURL": f"https://x.gov/{i}.csv"}]}
        for i in range(3)
    ]
    http_server.add("/items", json.dumps(items), content_type="application/json")
    write_catalog(manifests, "pdc", [("dkan", http_server.url("/items"))])
    assert cli("discover", "pdc").exit_code == 0
    for lost in (home / "index" / "parts").iterdir():
        lost.unlink()
    (home / "index" / "datasets.parquet").unlink()
    result = cli("discover", "pdc")
    assert result.exit_code == 0 and "pdc: 3 datasets" in result.stderr
    counted = cli("sql", "select count(*) as n from liberacion.datasets where catalog = 'pdc'", "--format", "json")
    assert json.loads(counted.stdout) == [{"n": 3}]
