"""`diff` as an analyst comparing releases uses it: bounded memory, whole-row counts as multisets,
and what it says when the snapshot asked for was pruned."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from liberacion.compare import diff
from liberacion.lake import Lake


def _two(home: Path, old: pa.Table, new: pa.Table, name: str = "cms.t") -> Lake:
    lake = Lake(home)
    lake.publish(name, old)
    lake.publish(name, new)
    return lake


def test_diff_runs_under_liberacion_memory_limit(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without it DuckDB takes 80% of the machine: two 5-million-row snapshots held 1.9 GB.
    lake = _two(home, pa.table({"id": [1, 2]}), pa.table({"id": [2, 3]}))
    monkeypatch.setenv("LIBERACION_MEMORY_LIMIT", "123MB")
    seen: list[Any] = []

    def look(con: Any) -> None:
        seen.append(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])

    old, new = lake.snapshots("cms.t")
    diff(old, new, keys=["id"], prepare=look)
    assert seen == ["117.3 MiB"]  # DuckDB's spelling of 123MB


def test_diff_refuses_a_memory_limit_it_cannot_honour(cli, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _two(home, pa.table({"id": [1, 2]}), pa.table({"id": [2, 3]}))
    monkeypatch.setenv("LIBERACION_MEMORY_LIMIT", "lots")
    result = cli("diff", "cms.t", "--key", "id", "-f", "csv")
    assert result.exit_code == 5
    assert "LIBERACION_MEMORY_LIMIT='lots'" in result.stderr
    assert "Traceback" not in result.stderr


def _counts(cli, *args: str) -> dict[str, Any]:
    result = cli("diff", "cms.t", *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return {r["change"]: r["count"] for r in json.loads(result.stdout) if r["change"].startswith("rows_")}


def test_unkeyed_diff_counts_rows_as_multisets(cli, home: Path) -> None:
    old = pa.table(
        {
            "id": [1, 1, 1, 2, None, 4],
            "n": pa.array([10, 10, 10, 20, None, 40], pa.int64()),
            "s": ["a", "a", "a", "b", None, "d"],
        }
    )
    # Reordered; one of three (1,10,a) left; NULL row unchanged; n retyped with equal values (20.0);
    # (4,40,d) changed to (4,41,d); a new (5,...) twice.
    new = pa.table(
        {
            "id": [5, 4, None, 2, 1, 5],
            "n": pa.array([50.0, 41.0, None, 20.0, 10.0, 50.0], pa.float64()),
            "s": ["e", "d", None, "b", "a", "e"],
        }
    )
    _two(home, old, new)
    assert _counts(cli, "--key", "") == {"rows_added": 3, "rows_removed": 3}
    records = json.loads(cli("diff", "cms.t", "--key", "", "-f", "json").stdout)
    assert [r["old"] for r in records if r["change"] == "row_removed"] == [
        '{"id": 1, "n": 10.0, "s": "a"}',  # compared, and shown, as DOUBLE: 10 and 10.0 are one number
        '{"id": 4, "n": 40.0, "s": "d"}',
    ]
    assert [r["new"] for r in records if r["change"] == "row_added"] == [
        '{"id": 4, "n": 41.0, "s": "d"}',
        '{"id": 5, "n": 50.0, "s": "e"}',
    ]


def test_unkeyed_diff_of_rows_only_reordered_is_no_change(cli, home: Path) -> None:
    rows = {"id": [3, 1, 2, 4], "v": ["c", "a", None, None]}
    _two(home, pa.table(rows), pa.table({k: list(reversed(v)) for k, v in rows.items()}))
    assert _counts(cli, "--key", "") == {"rows_added": 0, "rows_removed": 0}
    assert _counts(cli, "--key", "id") == {"rows_added": 0, "rows_removed": 0, "rows_changed": 0}


def test_unkeyed_diff_against_an_empty_snapshot(cli, home: Path) -> None:
    _two(home, pa.table({"id": [1, 2, 2]}), pa.table({"id": pa.array([], pa.int64())}))
    assert _counts(cli, "--key", "") == {"rows_added": 0, "rows_removed": 3}


def test_diff_from_a_time_before_the_oldest_kept_says_it_may_be_pruned(cli, home: Path) -> None:
    _two(home, pa.table({"id": [1]}), pa.table({"id": [2]}))
    assert cli("prune", "cms.t", "--keep", "1").exit_code == 0
    result = cli("diff", "cms.t", "--from", "2026-01-01", "--to", "current")
    assert result.exit_code == 3
    assert "the oldest kept one was published" in result.stderr
    assert "older snapshots were pruned" in result.stderr
