"""Catalog manifests: shipped and user ones, precedence, bad files, references and the file choice."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from liberacion.catalogs.manifests import load_catalogs
from liberacion.catalogs.model import Dataset, Distribution
from liberacion.errors import ConfigError, NotFound
from liberacion.home import Home
from liberacion.lake import Lake
from liberacion.resolve import choose_distributions, resolve_ref
from tests.conftest import ROOT
from tests.manifests import write_catalog
from tests.server import LocalServer

SHIPPED = {"cdc", "cms", "datagov", "healthdata", "nhanes", "openfda"}


def _catalogs_json(cli: Any, *args: str) -> list[dict[str, Any]]:
    result = cli(*args, "catalogs", "--format", "json")
    return json.loads(result.stdout)


def test_shipped_catalogs_load_with_curated_datasets() -> None:
    problems: list[ConfigError] = []
    catalogs = {c.name: c for c in load_catalogs(problems=problems)}
    assert problems == []
    assert set(catalogs) == SHIPPED
    hospital = catalogs["cms"].curated("hospital-general-information")
    assert hospital is not None and hospital.extra["source_id"] == "xubh-q36u"
    assert hospital.table == "cms.hospital_general_information"
    assert catalogs["cdc"].curated("leading-causes-of-death").extra["source_id"] == "bi63-dtpu"
    assert catalogs["cdc"].curated("places-county") is not None
    assert catalogs["healthdata"].curated("hospital-capacity-by-state-timeseries") is not None
    demo = catalogs["nhanes"].curated("demo_j")
    assert demo.distributions[0].url.endswith("/Public/2017/DataFiles/DEMO_J.xpt")
    assert demo.distributions[0].format == "xpt"
    urls = [s.url for c in catalogs.values() for s in c.sources] + [
        d.url for c in catalogs.values() for ds in c.datasets for d in ds.distributions
    ]
    assert urls and all(u.startswith("https://") for u in urls)


def test_catalogs_command_lists_name_title_kinds_and_counts(cli: Any) -> None:
    rows = {r["name"]: r for r in _catalogs_json(cli)}
    assert set(rows) == SHIPPED
    assert rows["cms"]["kinds"] == "dcat-us,dkan"
    assert rows["cms"]["status"] == "not discovered" and rows["cms"]["last_discovered"] is None
    assert rows["nhanes"]["status"] == "curated" and rows["nhanes"]["datasets"] == 11


def test_reading_the_catalogs_creates_no_home(cli: Any, home: Path) -> None:
    assert cli("catalogs", "--format", "csv").exit_code == 0
    cli("search", "hospital")
    assert not home.exists()  # the first write creates it, not a read


def test_user_manifest_replaces_the_shipped_one(cli: Any, manifests: Path) -> None:
    write_catalog(manifests, "cms", [("dcat-us", "http://127.0.0.1:9/data.json")], title="My CMS mirror")
    rows = {r["name"]: r for r in _catalogs_json(cli)}
    assert rows["cms"]["title"] == "My CMS mirror" and rows["cms"]["kinds"] == "dcat-us"
    result = cli("show", "cms/hospital-general-information")  # the shipped curated dataset is gone with it
    assert result.exit_code == 3
    assert "liberacion discover cms" in result.stderr


def test_catalogs_option_wins_over_the_environment(cli: Any, manifests: Path, tmp_path: Path) -> None:
    write_catalog(manifests, "mine", title="from the environment")
    other = tmp_path / "other"
    other.mkdir()
    option_file = write_catalog(other, "mine", title="from --catalogs")
    rows = {r["name"]: r for r in _catalogs_json(cli, "--catalogs", str(option_file))}
    assert rows["mine"]["title"] == "from --catalogs"
    assert {r["name"] for r in _catalogs_json(cli)} == SHIPPED | {"mine"}


def test_environment_takes_several_paths(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    one = write_catalog(first, "one")
    write_catalog(second, "two")
    monkeypatch.setenv("LIBERACION_CATALOGS", os.pathsep.join([str(one), str(second)]))
    assert {"one", "two"} <= {r["name"] for r in _catalogs_json(cli)}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('name = "broken"\ntitle = "unterminated\n', "invalid TOML"),
        ('title = "no name"\n', "missing `name`"),
        ('name = "x"\n[[source]]\nkind = "sparql"\nurl = "https://example.gov/q"\n', "unknown kind 'sparql'"),
        ('name = "x"\n[[dataset]]\ntitle = "no id"\nurl = "https://example.gov/a.csv"\n', "missing `id`"),
        ('name = "x"\n[[dataset]]\nid = "a"\nurl = "file:///etc/passwd"\n', "must be an http(s) URL"),
        ('name = "main"\n', "reserved"),
    ],
)
def test_a_bad_manifest_is_one_line_naming_the_file_and_exit_5(
    cli: Any, manifests: Path, text: str, problem: str
) -> None:
    bad = manifests / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    write_catalog(manifests, "good")
    result = cli("catalogs", "--format", "csv")
    assert result.exit_code == 5
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert str(bad) in errors[0] and problem in errors[0]
    listed = {line.split(",")[0] for line in result.stdout.splitlines()[1:]}
    assert {"good", "cms", "nhanes"} <= listed  # the other catalogs still load


def test_a_missing_manifest_path_is_reported(cli: Any, tmp_path: Path) -> None:
    result = cli("--catalogs", str(tmp_path / "nope.toml"), "catalogs")
    assert result.exit_code == 5
    assert "nope.toml: no such catalog manifest" in result.stderr


def test_names_and_ids_from_manifests_cannot_escape_the_home(manifests: Path, home: Path) -> None:
    write_catalog(
        manifests,
        "../../Evil Name; DROP SCHEMA",
        filename="evil.toml",
        body='[[dataset]]\nid = "../../x/../Y Z"\nurl = "https://example.gov/a.csv"\n',
    )
    (evil,) = [c for c in load_catalogs() if c.name not in SHIPPED]
    assert evil.name == "evil_name_drop_schema"
    (dataset,) = evil.datasets
    assert dataset.id == "x-..-y-z" and "/" not in dataset.id
    table_dir = Lake(Home(home)).table_dir(dataset.table)  # raises on anything unsafe
    assert table_dir.resolve().is_relative_to(home.resolve())


# -- references --------------------------------------------------------------------------------


def test_resolve_a_curated_direct_url(home: Path) -> None:
    dataset = resolve_ref("nhanes/p_demo", Home(home))
    assert dataset.ref == "nhanes/p_demo" and dataset.table == "nhanes.p_demo"
    files, reason = choose_distributions(dataset)
    assert files[0].url.endswith("/Public/2017/DataFiles/P_DEMO.xpt") and "xpt" in reason


def test_unknown_catalog_and_dataset_say_what_to_do(cli: Any) -> None:
    result = cli("show", "nosuch/thing")
    assert result.exit_code == 3 and "see: liberacion catalogs" in result.stderr
    result = cli("show", "cdc/not-a-dataset")
    assert result.exit_code == 3 and "run: liberacion discover cdc" in result.stderr
    result = cli("show", "no-slash")
    assert result.exit_code == 2


def test_a_dkan_pointer_resolves_to_the_current_file(
    manifests: Path, http_server: LocalServer, home: Path, realdata: Path
) -> None:
    items = json.loads((realdata / "catalogs/providertwo/provider.json").read_bytes())
    item = next(i for i in items if i["identifier"] == "xubh-q36u")
    http_server.add("/pdc/items/xubh-q36u", json.dumps(item), content_type="application/json")
    write_catalog(
        manifests,
        "cms",
        [("dcat-us", http_server.url("/cms/data.json")), ("dkan", http_server.url("/pdc/items"))],
        body='[[dataset]]\nid = "hospital-general-information"\nsource = "dkan"\nsource_id = "xubh-q36u"\n'
        'format = "csv"\n[dataset.columns]\nfacility_id = "string"\n',
    )
    dataset = resolve_ref("cms/hospital-general-information", Home(home))
    assert dataset.ref == "cms/hospital-general-information"
    assert dataset.title == "Hospital General Information"
    assert dataset.columns == {"facility_id": "string"}  # the manifest's overrides survive
    assert dataset.change_token == "893c372430d9d71a1c52737d01239d47_1753409109"
    assert choose_distributions(dataset)[0][0].url.endswith("_1753409109/Hospital_General_Information.csv")
    assert http_server.hits("/cms/data.json") == []  # `source = "dkan"` asked only the DKAN source


def test_a_socrata_pointer_reads_the_view_metadata(
    manifests: Path, http_server: LocalServer, home: Path, realdata: Path
) -> None:
    view = json.loads((realdata / "socrata/is477-fa24-PHS/cdc.json").read_bytes())["meta"]["view"]
    http_server.add("/api/views/pwn4-m3yp.json", json.dumps(view), content_type="application/json")
    write_catalog(
        manifests,
        "cdc",
        [("socrata", http_server.url("/data.json"))],
        body='[[dataset]]\nid = "covid-cases-by-state"\nsource_id = "pwn4-m3yp"\n',
    )
    dataset = resolve_ref("cdc/covid-cases-by-state", Home(home))
    assert dataset.change_token == "1685653111"
    assert dataset.source_kind == "socrata"
    files, _ = choose_distributions(dataset)
    assert files[0].url == http_server.url("/api/views/pwn4-m3yp/rows.csv?accessType=DOWNLOAD")


def test_a_pointer_falls_back_to_the_index_when_the_source_is_down(
    cli: Any, manifests: Path, http_server: LocalServer, home: Path
) -> None:
    items = [{"identifier": "abcd-1234", "title": "Dialysis", "distribution": [{"downloadURL": "https://x.gov/d.csv"}]}]
    listing = http_server.add("/pdc/items", json.dumps(items), content_type="application/json")
    write_catalog(manifests, "pdc", [("dkan", listing)], body='[[dataset]]\nid = "dialysis"\nsource_id = "abcd-1234"\n')
    assert cli("discover", "pdc").exit_code == 0
    # /pdc/items/abcd-1234 is not served: the item request fails, the discovered record answers.
    dataset = resolve_ref("pdc/dialysis", Home(home))
    assert dataset.extra["resolved_from"] == "index"
    assert dataset.distributions[0].url == "https://x.gov/d.csv"


def test_an_unknown_source_id_is_not_found(manifests: Path, http_server: LocalServer, home: Path) -> None:
    http_server.add("/data.json", json.dumps({"dataset": [{"identifier": "a", "title": "A"}]}))
    write_catalog(
        manifests, "t", [("dcat-us", http_server.url("/data.json"))], body='[[dataset]]\nid = "b"\nsource_id = "zz"\n'
    )
    with pytest.raises(NotFound, match="source id 'zz' not found"):
        resolve_ref("t/b", Home(home))


# -- which file fetch takes --------------------------------------------------------------------


def _dataset(*dists: Distribution, **kwargs: Any) -> Dataset:
    return Dataset(catalog="t", id="d", title="D", distributions=list(dists), **kwargs)


def test_csv_over_other_formats_and_never_a_page_or_pdf() -> None:
    chosen, reason = choose_distributions(
        _dataset(
            Distribution("https://x.gov/landing", "text/html", "html", kind="access"),
            Distribution("https://x.gov/dict.pdf", "application/pdf", "pdf"),
            Distribution("https://x.gov/data.zip", "application/zip", "zip"),
            Distribution("https://x.gov/data.csv", "application/vnd.ms-excel", "csv"),
        )
    )
    assert [d.url for d in chosen] == ["https://x.gov/data.csv"] and reason == "the CSV file"
    chosen, reason = choose_distributions(_dataset(Distribution("https://x.gov/data.zip", format="zip")))
    assert chosen[0].format == "zip" and "no CSV" in reason


def test_a_paged_api_only_when_no_file_is_listed() -> None:
    api = Distribution(
        "https://data.example.gov/data-api/v1/dataset/9767cb68-8ea9-4f0b-8179-9431abc89f11/data",
        None,
        "api",
        kind="access",
    )
    chosen, reason = choose_distributions(_dataset(api))
    assert chosen == [api] and "paged API" in reason
    with pytest.raises(NotFound, match="it lists: html"):
        choose_distributions(_dataset(Distribution("https://x.gov/page", None, "html", kind="access")))


def test_yearly_files_without_dates_take_the_latest_year() -> None:
    chosen, reason = choose_distributions(
        _dataset(
            Distribution("https://x.gov/facility_2009.zip", format="zip", title="Dialysis 2009"),
            Distribution("https://x.gov/facility_2021.zip", format="zip", title="Dialysis 2021"),
            Distribution("https://x.gov/facility_2015.zip", format="zip", title="Dialysis 2015"),
        )
    )
    assert [d.url for d in chosen] == ["https://x.gov/facility_2021.zip"] and "2021" in reason


# -- packaging ---------------------------------------------------------------------------------


def test_the_build_ships_the_catalogs(tmp_path: Path) -> None:
    """An installed liberacion finds its manifests: setuptools' build_py (what a wheel is made of)
    copies them into the package, and the built package reads them."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "catalogs", source / "catalogs")
    shutil.copytree(
        ROOT / "liberacion", source / "liberacion", symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    build = tmp_path / "build"
    result = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "--build-lib", str(build)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    packaged = build / "liberacion" / "catalogs" / "shipped"
    assert not packaged.is_symlink()  # real files, not a link back into a checkout
    assert {p.name for p in packaged.glob("*.toml")} == {p.name for p in (ROOT / "catalogs").glob("*.toml")}
    probe = "from liberacion.catalogs.manifests import load_catalogs; print(sorted(c.name for c in load_catalogs()))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIBERACION_")}
    listed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(build)},
        capture_output=True,
        text=True,
    )
    assert listed.stdout.strip() == repr(sorted(SHIPPED)), listed.stderr
