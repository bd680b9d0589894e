"""``tables`` reads each table's current record only: the other snapshots are counted by their
folders and sized by their files, and come out as ``info`` (which reads every record) says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from liberacion.lake import Lake
from tests.conftest import Cli


def test_tables_counts_and_sizes_snapshots_without_reading_their_records(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "beds.csv"
    for release in range(4):
        bad = '1,"unterminated\n' if release == 2 else ""  # one release with a bad row set aside
        source.write_text("facility_id,beds\n" + "".join(f"0{i},{i + release}\n" for i in range(5)) + bad)
        assert cli("fetch", str(source), "--as", "cms.beds").exit_code == 0
    other = tmp_path / "deaths.csv"
    other.write_text("county,deaths\n01001,4\n")
    assert cli("fetch", str(other), "--as", "cdc.deaths").exit_code == 0
    lake = Lake(home)
    expected = {name: (info.snapshot_count, info.size_on_disk) for name in lake.names() for info in [lake.info(name)]}
    assert expected["cms.beds"][0] == 3  # LIBERACION_KEEP's default

    from liberacion.snapshots import Snapshot

    loads: list[Any] = []
    real = Snapshot.load.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, path: Path) -> Snapshot:
        loads.append(path)
        return real(cls, path)

    monkeypatch.setattr(Snapshot, "load", classmethod(counted))
    listed = {info.name: (info.snapshot_count, info.size_on_disk) for info in lake.tables()}
    assert listed == expected
    assert len(loads) == 2  # the current record of each table, no other
    shown = json.loads(cli("tables", "--format", "json").stdout)
    assert {f"{r['catalog']}.{r['table']}": (r["snapshots"], r["bytes"]) for r in shown} == expected
