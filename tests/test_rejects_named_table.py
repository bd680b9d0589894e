"""A zip's member tables: one named ``rejects.csv`` ends like a table's bad rows and must not
switch off the views database for every query; the refresh of their set shows on each."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from tests.conftest import Cli
from tests.server import LocalServer


def test_a_table_named_like_bad_rows_keeps_the_views_database_in_use(cli: Cli, tmp_path: Path) -> None:
    archive = tmp_path / "pair.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data.csv", "id,n\nA1,1\nA2,2\n")
        zf.writestr("rejects.csv", "id,why\nB1,late\n")
    assert cli("fetch", str(archive), "--as", "local.pair").exit_code == 0
    # A name without its catalog resolves only through the views database (see query.py).
    result = cli("sql", "select count(*) as n from pair__data", "-f", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["n", "2"]
    again = cli("sql", "select why from pair__rejects", "-f", "csv")
    assert again.stdout.split() == ["why", "late"], again.stderr


def test_tables_shows_the_last_refresh_of_a_zips_member_tables(
    cli: Cli, tmp_path: Path, http_server: LocalServer
) -> None:
    """A zip's member tables are refreshed as their set, under the table the ref fetches into."""
    archive = tmp_path / "pair.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.csv", "id,n\nA1,1\n")
        zf.writestr("b.csv", "id,n\nB1,2\n")
    url = http_server.add("/pair.zip", archive.read_bytes(), content_type="application/zip")
    assert cli("fetch", url, "--as", "cms.pair").exit_code == 0
    assert cli("refresh").exit_code == 0
    records = json.loads(cli("tables", "--format", "json").stdout)
    assert sorted(r["table"] for r in records) == ["pair__a", "pair__b"]
    assert all(r["checked_at"] and r["last_refresh"] == "unchanged" for r in records), records
