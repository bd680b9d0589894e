"""An Iceberg lake (``--lake``) read by other engines after its columns changed type, and its tables
damaged one at a time: every older snapshot still reads its own values, and a damaged table is
named alone while the other tables keep working, as in the home's lake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyiceberg")


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.stderr
    return result


def _pyiceberg_table(home: Path, lake: Path, name: str) -> Any:
    from liberacion.iceberg import open_catalog
    from liberacion.storage import parse_lake

    return open_catalog(home, parse_lake(str(lake))).load_table(name)


def test_every_snapshot_reads_its_own_values_after_a_column_is_retyped_twice(
    cli: Any, home: Path, tmp_path: Path
) -> None:
    lake, source = tmp_path / "lake", tmp_path / "t.csv"
    releases = {  # a column of text, in the next release numbers, in the one after text again
        "id,rate\n1,none\n2,some\n": ["none", "some"],
        "id,rate\n1,1.5\n2,2.5\n": [1.5, 2.5],
        "id,rate\n1,low\n2,high\n": ["low", "high"],
    }
    for text in releases:
        source.write_text(text, encoding="utf-8")
        _ok(cli("--lake", str(lake), "fetch", str(source), "--as", "loc.t", "--force"))
    table = _pyiceberg_table(home, lake, "loc.t")
    published = sorted(table.snapshots(), key=lambda s: s.sequence_number)
    assert len(published) == 3
    for snap, wanted in zip(published, releases.values(), strict=True):
        read = table.scan(snapshot_id=snap.snapshot_id).to_arrow().sort_by("id")
        assert read.column("rate").to_pylist() == wanted  # never NULL for an older snapshot's type


def _damage(lake: Path, table: str, how: str) -> None:
    """Remove (``missing``) or cut in half (``truncated``) every metadata file of the table."""
    for path in (lake / table.replace(".", "/") / "metadata").glob("*.metadata.json"):
        if how == "missing":
            path.unlink()
        else:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("how", ["missing", "truncated"])
def test_a_damaged_iceberg_table_is_named_alone_and_fetch_force_replaces_it(cli: Any, tmp_path: Path, how: str) -> None:
    import json

    lake = str(tmp_path / "lake")
    for table in ("a", "b"):
        (tmp_path / f"{table}.csv").write_text("id,val\n1,10\n2,20\n", encoding="utf-8")
        _ok(cli("--lake", lake, "fetch", str(tmp_path / f"{table}.csv"), "--as", f"loc.{table}"))
    _damage(tmp_path / "lake", "loc.a", how)

    listed = cli("--lake", lake, "tables", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    rows = {row["table"]: row for row in json.loads(listed.stdout)}
    assert sorted(rows) == ["a", "b"] and rows["b"]["error"] is None
    assert "table loc.a is damaged" in rows["a"]["error"] and "--as loc.a --force" in rows["a"]["error"]
    assert "note: table loc.a is damaged" in listed.stderr

    queried = cli("--lake", lake, "sql", "--format", "csv", "select sum(val) as s from loc.b")
    assert queried.exit_code == 0, queried.stderr
    assert queried.stdout.splitlines()[-1] == "30"

    shown = cli("--lake", lake, "history", "loc.a")
    assert shown.exit_code != 0 and "internal error" not in shown.stderr
    assert next(line for line in shown.stderr.splitlines() if line.startswith("error:")).startswith(
        "error: table loc.a is damaged"
    )

    _ok(cli("--lake", lake, "fetch", str(tmp_path / "a.csv"), "--as", "loc.a", "--force"))
    again = cli("--lake", lake, "sql", "--format", "csv", "select sum(val) as s from loc.a")
    assert again.exit_code == 0 and again.stdout.splitlines()[-1] == "30", again.stderr
    assert "damaged" not in cli("--lake", lake, "tables").stderr
