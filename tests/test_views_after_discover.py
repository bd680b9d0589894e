"""``discover`` rebuilds the dataset index; the views database written before it is then stale,
and every ``sql`` built every view in memory until a table changed (a nightly `discover; refresh`
that publishes nothing left it so all day). discover now rebuilds it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli
from tests.manifests import small_listing, write_catalog
from tests.server import LocalServer


def test_sql_uses_the_views_database_after_a_discover(
    cli: Cli, tmp_path: Path, manifests: Path, http_server: LocalServer
) -> None:
    url = http_server.add("/list.json", small_listing("Births", "Deaths"), content_type="application/json")
    write_catalog(manifests, "quick", [("dcat-us", url)])
    source = tmp_path / "beds.csv"
    source.write_text("facility_id,beds\n010001,12\n")
    assert cli("fetch", str(source), "--as", "cms.beds").exit_code == 0
    assert cli("discover", "quick").exit_code == 0
    # A name without its catalog resolves only through the views database (see query.py).
    result = cli("sql", "select beds from beds", "-f", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["beds", "12"]
    found = cli("sql", "select count(*) as n from liberacion.datasets where catalog = 'quick'", "-f", "csv")
    assert found.stdout.split() == ["n", "2"], found.stderr
