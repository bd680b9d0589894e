"""Two homes sharing one lake (``--lake DIR``), and queries whose snapshot goes away under them.

A refresh publishes into the table it refreshes, whichever home runs it: a URL named from the
server's file name is not named again from a new file name. A home that has not read a catalog's
listing fails its tables and says to run ``discover``; it never calls them retired. A query whose
snapshot was removed while it ran (prune, a publish's retention) is told to run again, not that the
table is damaged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.manifests import write_catalog
from tests.server import LocalServer

pytest.importorskip("pyiceberg")

CSV = "Facility ID,State\n010001,AL\n220071,MA\n"


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def _records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _shared_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A directory lake and the catalog a team shares with it (SQL on one database file here)."""
    monkeypatch.setenv("LIBERACION_ICEBERG_CATALOG", "team")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__TYPE", "sql")
    monkeypatch.setenv("PYICEBERG_CATALOG__TEAM__URI", f"sqlite:///{tmp_path / 'team.db'}")
    return str(tmp_path / "lake")


def _tables(cli: Cli, lake: str) -> dict[str, int]:
    """Each table of the lake and its rows."""
    listed: Any = cli("--lake", lake, "tables", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    return {f"{row['catalog']}.{row['table']}": row["rows"] for row in json.loads(listed.stdout)}


def test_a_second_home_refreshes_a_server_named_table_into_that_table(
    cli: Cli, http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _shared_lake(tmp_path, monkeypatch)
    url = http_server.add("/export", CSV, content_type="text/csv", headers=_attachment("Beds_2026-12-05.csv"))
    fetched: Any = cli("--lake", lake, "fetch", url, "--json")
    assert _records(fetched.stdout)[0]["table"] == "local.beds_2026_12_05", fetched.stderr
    # The server names its next file by its new date.
    http_server.add("/export", CSV + "330101,NY\n", content_type="text/csv", headers=_attachment("Beds_2026-12-06.csv"))

    monkeypatch.setenv("LIBERACION_HOME", str(tmp_path / "home-b"))  # a teammate's home
    result: Any = cli("--lake", lake, "refresh", "--json")
    assert result.exit_code == 0, result.stderr
    events = [(e["table"], e["event"]) for e in _records(result.stdout) if e["event"] != "summary"]
    assert events == [("local.beds_2026_12_05", "fetched")]
    assert _tables(cli, lake) == {"local.beds_2026_12_05": 3}  # its new rows, and no table beside it


def test_a_home_that_has_not_discovered_the_catalog_fails_its_tables_and_retires_none(
    cli: Cli, manifests: Path, http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _shared_lake(tmp_path, monkeypatch)
    data = http_server.add("/beds.csv", CSV, content_type="text/csv")
    listing = {
        "dataset": [
            {
                "identifier": "hosp-beds-2021",
                "title": "Hospital beds 2021",
                "accessLevel": "public",
                "modified": "2021-03-12",
                "distribution": [{"downloadURL": data, "mediaType": "text/csv"}],
            }
        ]
    }
    http_server.add("/evo.json", json.dumps(listing))
    write_catalog(manifests, "evo", [("dcat-us", http_server.url("/evo.json"))])
    assert cli("discover", "evo").exit_code == 0
    fetched: Any = cli("--lake", lake, "fetch", "evo/hosp-beds-2021", "--as", "evo.beds")
    assert fetched.exit_code == 0, fetched.stderr

    home_b = tmp_path / "home-b"
    monkeypatch.setenv("LIBERACION_HOME", str(home_b))  # a teammate's home: no discover run there
    result: Any = cli("--lake", lake, "refresh", "--json")
    assert result.exit_code == 1, result.stderr
    [event] = [e for e in _records(result.stdout) if e["event"] != "summary"]
    assert event["table"] == "evo.beds" and event["event"] == "failed"
    # With the --lake typed, as on stderr: run as printed, it discovers for that lake's home.
    assert f"run: liberacion --lake {lake} discover evo, then this command again" in event["error"]
    state = json.loads((home_b / "state" / "refresh.json").read_text())
    assert "retired" not in state["evo.beds"]

    assert cli("discover", "evo").exit_code == 0
    again: Any = cli("--lake", lake, "refresh", "--json")
    assert again.exit_code == 0, again.stdout
    assert [e["event"] for e in _records(again.stdout) if e["event"] != "summary"] == ["unchanged"]


def _snapshot_folder(home: Path, table: str, snapshot_id: str) -> Path:
    return home / "lake" / table.replace(".", "/") / "snapshots" / snapshot_id


def test_a_query_whose_snapshot_was_removed_while_it_ran_is_told_to_run_again(
    cli: Cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from liberacion.lake import Lake

    source = tmp_path / "t.csv"
    source.write_text(CSV)
    assert cli("fetch", str(source), "--as", "x.t").exit_code == 0
    source.write_text(CSV + "330101,NY\n")
    assert cli("fetch", str(source), "--as", "x.t").exit_code == 0
    old, _new = Lake(home).snapshots("x.t")

    resolve = Lake.view_statements

    def resolve_then_prune(self: Lake, *args: Any, **kwargs: Any) -> Any:
        statements = resolve(self, *args, **kwargs)
        shutil.rmtree(_snapshot_folder(home, "x.t", old.id))  # prune, between resolving and reading
        return statements

    monkeypatch.setattr(Lake, "view_statements", resolve_then_prune)
    result: Any = cli("sql", "--as-of", old.published_at, "select count(*) from x.t")
    assert result.exit_code == 4
    assert result.stderr.strip() == (
        "error: the snapshot of x.t this query read was removed while it ran"
        " (prune or a publish's retention); run the query again"
    )

    monkeypatch.undo()
    monkeypatch.setenv("LIBERACION_HOME", str(home))
    shutil.rmtree(_snapshot_folder(home, "x.t", Lake(home).current("x.t").id))  # the current one: damage
    damaged: Any = cli("sql", "select count(*) from x.t")
    assert damaged.exit_code != 4 and "is damaged" in damaged.stderr
