"""Statements of the README pinned by cheap checks: each test fails when its sentence becomes false.

The README's command reference is checked by tests/test_readme.py and its Python section by
tests/test_python_api.py; these cover the prose around them.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
HOSPITALS = "facility_id,state,beds\n010001,AL,120\n010005,AL,85\n020001,AK,40\n"


def section(title: str) -> str:
    """The text of one ``## title`` section."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of the Markdown table that starts with ``header``."""
    lines = text.split(header, 1)[1].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_the_quick_start_query_runs_on_the_offline_alternative_it_names(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first code block's SQL, over the table the "without a network" sentence fetches."""
    first = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first
    query = re.search(r'liberacion sql "([^"]+)"', first.group(1))
    assert query, "the quick start no longer queries with liberacion sql"
    offline = re.search(r"Without a network, fetch a file you have instead:\s*`\.venv/bin/liberacion ([^`]+)`", README)
    assert offline, "the quick start no longer says how to get a first table without a network"
    args = offline.group(1).split()
    assert args[0] == "fetch" and args[1] == "./Hospital_General_Information.csv"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Hospital_General_Information.csv").write_text(
        "Facility ID,Facility Name,State\n010001,A,AL\n010005,B,AL\n020001,C,AK\n", encoding="utf-8"
    )
    fetched = cli(*args)
    assert fetched.exit_code == 0, fetched.stderr
    answer = cli("sql", query.group(1))
    assert answer.exit_code == 0, answer.stderr
    assert answer.stdout.splitlines() == ["state,hospitals", "AL,2", "AK,1"]


def test_catalogs_lists_the_columns_the_readme_names(cli: Any) -> None:
    """`liberacion catalogs  # name, title, kinds, datasets indexed, last discover, status`."""
    comment = re.search(r"liberacion catalogs +# (.*)", README)
    assert comment
    named = [part.strip() for part in comment.group(1).split(",")]
    result = cli("catalogs", "--format", "json")
    assert result.exit_code == 0, result.stderr
    keys = list(json.loads(result.stdout)[0])
    assert keys == ["name", "title", "kinds", "datasets", "last_discovered", "status"]
    assert len(named) == len(keys)  # one phrase of the comment per column
    assert named[-1] == "status" and named[:3] == ["name", "title", "kinds"]


def test_the_fetch_json_keys_are_those_the_readme_lists(cli: Any, tmp_path: Path) -> None:
    """Fetching's Output bullet: `{"ref", "table", "status": ..., "stages"}`."""
    listed = re.search(r'`\{"ref", "table", "status": "fetched\|unchanged\|failed", (.*?)\}`', README, re.S)
    assert listed
    keys = ["ref", "table", "status", *re.findall(r'"(\w+)"', listed.group(1))]
    (tmp_path / "hospitals.csv").write_text(HOSPITALS, encoding="utf-8")
    result = cli("fetch", str(tmp_path / "hospitals.csv"), "--json")
    assert result.exit_code == 0, result.stderr
    assert list(json.loads(result.stdout.splitlines()[0])) == keys


def test_every_environment_variable_the_code_reads_is_in_the_table_and_back() -> None:
    used = set()
    for path in (ROOT / "liberacion").rglob("*.py"):
        used |= set(re.findall(r'"(LIBERACION_[A-Z_]+)"', path.read_text(encoding="utf-8")))
    documented = set()
    for row in table_rows(section("Environment variables"), "| variable | meaning |"):
        documented |= set(re.findall(r"`(LIBERACION_[A-Z_]+)`", row[0]))
    assert used - documented == set(), "read by the code, missing from the README's table"
    assert documented - used == set(), "in the README's table, read by no code"


def test_the_exit_code_table_is_the_exit_codes() -> None:
    from liberacion.errors import ExitCode

    documented = {int(row[0]) for row in table_rows(section("Exit codes"), "| code | meaning |")}
    assert documented == {int(code) for code in ExitCode}


def test_the_refresh_help_exit_codes_are_the_readmes() -> None:
    """`refresh --help` and the README's refresh bullet name the same exit codes."""
    from liberacion.cli.fetch_commands import refresh

    help_text = " ".join((refresh.__doc__ or "").split())
    in_help = set(re.findall(r"\b(\d+) (?:all|some|a catalog|--check|another)", help_text))
    bullet = section("Running from cron: refresh").split("**Exit codes.**", 1)[1].split("\n- ", 1)[0]
    in_readme = set(re.findall(r"\b(\d+) (?:all|some|a catalog|`--check`|another)", " ".join(bullet.split())))
    assert in_help == in_readme == {"0", "1", "5", "10", "75"}


def test_the_layer_table_is_in_the_order_the_architecture_test_enforces() -> None:
    """Development: "each layer importing only the layers below it", listed bottom-up."""
    from tests.test_architecture import LAYERS

    def layer_of(module: str) -> int:
        name = "liberacion." + module.rstrip("/")
        found = [i for i, layer in enumerate(LAYERS) for m in layer if m == name or m.startswith(name + ".")]
        assert found, f"README layer table names {module}, which tests/test_architecture.py does not place"
        return min(found)

    order = []
    for row in table_rows(section("Development"), "| layer | modules | job |"):
        modules = re.sub(r"\([^)]*\)", "", row[1])  # download/ (session, files, state): its parts
        order += [(name, layer_of(name)) for name in re.findall(r"`([a-z_/]+)`", modules)]
    for (lower, a), (upper, b) in itertools.pairwise(order):
        assert a <= b, f"README lists {upper} above {lower}, but it sits below it"


def test_a_fetch_and_a_query_leave_only_what_the_lake_layout_names(cli: Any, home: Path, tmp_path: Path) -> None:
    """The lake layout's tree names every file and directory a first fetch and query make."""
    tree = section("The lake layout").split("```text\n", 1)[1].split("```", 1)[0]
    (tmp_path / "hospitals.csv").write_text(HOSPITALS, encoding="utf-8")
    assert cli("fetch", str(tmp_path / "hospitals.csv"), "--as", "cms.hospitals").exit_code == 0
    assert cli("sql", "select count(*) from cms.hospitals").exit_code == 0
    assert cli("refresh").exit_code == 0
    table = home / "lake" / "cms" / "hospitals"
    snapshot = table / "snapshots" / (table / "current").read_text().strip()
    for path in ("lake/.generation", ".lake.duckdb.generation", "lake.duckdb", "state/refresh.json"):
        assert (home / path).exists(), path
    assert {p.name for p in snapshot.iterdir()} == {"data-0000.parquet", "snapshot.json"}
    for name in ("current", "snapshots/<id>/", "data-0000.parquet", "snapshot.json"):
        assert name in tree
    for entry in home.iterdir():
        shown = entry.name + ("/" if entry.is_dir() else "")
        assert re.search(rf"^  {re.escape(shown)}", tree, re.M), f"{shown} is not in the lake layout"
    for entry in (home / "state").iterdir():
        shown = entry.name + ("/" if entry.is_dir() else "")
        assert f"state/{shown}" in tree, f"state/{shown} is not in the lake layout"


def test_the_layout_names_the_spill_directory_sql_uses(home: Path) -> None:
    """`work/<pid>-sql/`: the Commands section and the layout tree say where `sql` spills."""
    import inspect

    from liberacion import query

    assert 'f"{os.getpid()}-sql"' in inspect.getsource(query)
    assert "`<home>/work/<pid>-sql/`" in README
    assert "  work/<pid>-sql/" in section("The lake layout")


def test_diff_from_takes_a_date_and_a_snapshot_prefix(cli: Any, tmp_path: Path) -> None:
    """History: `--from 2026-11-01` is the snapshot current at the end of that day, and an id
    prefix two snapshots share is refused as ambiguous (exit 2)."""
    path = tmp_path / "hospitals.csv"
    path.write_text(HOSPITALS, encoding="utf-8")
    assert cli("fetch", str(path), "--as", "cms.hospitals").exit_code == 0
    path.write_text(HOSPITALS + "030001,AZ,60\n", encoding="utf-8")
    assert cli("fetch", str(path), "--as", "cms.hospitals").exit_code == 0
    history = json.loads(cli("history", "cms.hospitals", "--format", "json").stdout)
    old, new = history[0]["snapshot"], history[1]["snapshot"]
    assert "--from 2026-11-01 --to current" in README
    by_date = cli("diff", "cms.hospitals", "--from", "1999-01-01", "-k", "facility_id")
    assert by_date.exit_code == 3  # nothing was current then
    today = old[:4] + "-" + old[4:6] + "-" + old[6:8]
    if today == new[:4] + "-" + new[4:6] + "-" + new[6:8]:  # (not across midnight)
        assert cli("diff", "cms.hospitals", "--from", today, "-k", "facility_id").exit_code == 2  # both: current
        prefix = cli("diff", "cms.hospitals", "--from", old[:8], "-k", "facility_id")
        assert prefix.exit_code == 2 and "ambiguous" in prefix.stderr
    whole = cli("diff", "cms.hospitals", "--from", old, "-k", "facility_id", "--format", "json")
    assert whole.exit_code == 0
    assert {"change": "rows_added", "count": 1}.items() <= next(
        r for r in json.loads(whole.stdout) if r["change"] == "rows_added"
    ).items()
