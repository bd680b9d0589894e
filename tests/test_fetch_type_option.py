"""`fetch --type COLUMN=TYPE`: COLUMN as published (HHS headers have spaces) or in snake_case, and
never silently ignored (with `--raw` it is refused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import liberacion
from liberacion.errors import UsageError
from liberacion.lake import Lake
from tests.conftest import Cli
from tests.manifests import write_catalog

CSV = "Zip Code,Star Rating,score\n02115,4,1\n10001,5,2\n"


@pytest.fixture
def published(tmp_path: Path) -> Path:
    path = tmp_path / "facilities.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def types_of(home: Path, table: str) -> dict[str, str]:
    return {c.name: c.type for c in Lake(home).current(table).schema}


@pytest.mark.parametrize("spec", ["Star Rating=double", " Star Rating = DOUBLE ", "star_rating=double"])
def test_a_published_name_with_spaces_or_its_snake_case_name(cli: Cli, home: Path, published: Path, spec: str) -> None:
    result = cli("fetch", str(published), "--as", "s.t", "--type", spec, "--type", "Zip Code=varchar")
    assert result.exit_code == 0, result.stderr
    assert types_of(home, "s.t") == {"zip_code": "VARCHAR", "star_rating": "DOUBLE", "score": "BIGINT"}
    assert cli("sql", "select zip_code, star_rating from s.t order by 1").stdout == (
        "zip_code,star_rating\n02115,4.0\n10001,5.0\n"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("zip", "invalid --type 'zip': use COLUMN=TYPE"),
        ("=varchar", "invalid --type '=varchar': no column name before ="),
        ("  =varchar", "no column name before ="),
        ("Zip Code=", "invalid --type 'Zip Code=': no type after ="),
        ("Zip Code=  ", "no type after ="),
    ],
)
def test_a_type_without_a_name_or_a_type_is_a_usage_error(
    cli: Cli, home: Path, published: Path, spec: str, message: str
) -> None:
    result = cli("fetch", str(published), "--as", "s.t", "--type", spec)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert not Lake(home).exists("s.t")


def test_raw_and_type_together_are_refused_not_ignored(cli: Cli, home: Path, published: Path) -> None:
    result = cli("fetch", str(published), "--as", "s.t", "--raw", "--type", "score=double")
    assert result.exit_code == 2, result.stderr
    assert "--raw and --type cannot be combined" in result.stderr
    assert not Lake(home).exists("s.t")
    assert cli("fetch", str(published), "--as", "s.t", "--raw").exit_code == 0  # each alone is fine
    assert set(types_of(home, "s.t").values()) == {"VARCHAR"}


def test_raw_and_types_together_are_refused_by_the_python_api(home: Path, published: Path) -> None:
    with pytest.raises(UsageError, match="raw and types cannot be combined"):
        liberacion.fetch(published, as_table="s.t", raw=True, types={"score": "double"})
    assert not Lake(home).exists("s.t")


def test_a_manifest_cannot_ask_for_raw(cli: Cli, home: Path, published: Path, manifests: Path) -> None:
    """Manifests declare types (``[dataset.columns]``); loading as text is the user's choice alone."""
    dataset = '\n[[dataset]]\nid = "f"\nurl = "https://example.org/f.csv"\nraw = true\n'
    body = dataset + '\n[dataset.columns]\nscore = "double"\n'
    write_catalog(manifests, "hhs", body=body)
    result = cli("fetch", "hhs/f", "--json")
    assert result.exit_code == 5 and "unknown key 'raw'" in result.stderr, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["status"] == "failed"
