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


def test_a_tables_bad_rows_asked_for_as_a_table_say_what_they_are(cli: Cli, tmp_path: Path, home: Path) -> None:
    # `sql` reads t.x__rejects, but info, history, diff and prune said "no table t.x__rejects in the lake".
    source = tmp_path / "x.csv"
    source.write_text("a,b\n1,2\n3\n4,5\n", encoding="utf-8")
    assert cli("fetch", str(source), "--as", "t.x").exit_code == 0
    for command in ("info", "history", "diff", "prune"):
        result = cli(command, "t.x__rejects")
        assert result.exit_code == 3, (command, result.stderr)
        assert "t.x__rejects is t.x's bad rows (a view for sql), not a table of its own" in result.stderr, command
        assert "liberacion info t.x" in result.stderr
    assert "no table t.y__rejects" in cli("info", "t.y__rejects").stderr
    # A name that is no table makes no lock file in the home (a typo's stayed for ever).
    assert cli("prune", "t.nope", "t.x").exit_code == 3
    assert sorted(p.name for p in (home / "locks").iterdir() if p.name.startswith("t.")) == ["t.x.lock"]
