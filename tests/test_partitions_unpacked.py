"""A dataset of many zips (openFDA's partitions) is converted one zip at a time: each zip's
members are removed once converted, so the disk holds one of them unpacked, not all."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from liberacion.home import Home
from tests.conftest import Cli
from tests.server import LocalServer
from tests.test_fetch import manifest


def zipped(name: str, rows: range) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, "id,value\n" + "".join(f"{i},{i * 2}\n" for i in rows))
    return buffer.getvalue()


def test_each_partition_is_unpacked_only_while_it_is_converted(
    cli: Cli, http_server: LocalServer, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liberacion.convert as convert

    urls = [
        http_server.add(f"/event-{i}.zip", zipped(f"event-{i}.csv", range(i * 100, i * 100 + 100))) for i in range(3)
    ]
    catalogs = manifest(tmp_path, [{"id": "drug-event", "title": "Drug events", "urls": urls}], name="openfda")
    unpacked_at_each: list[list[str]] = []
    real = convert.convert_part
    work = Home(home).work

    def unpacked() -> list[str]:
        return sorted(p.name for p in work.rglob("*") if p.is_file())

    def watched(part: Any, out_dir: Path, **kwargs: Any) -> Any:
        unpacked_at_each.append(unpacked())
        return real(part, out_dir, **kwargs)

    monkeypatch.setattr(convert, "convert_part", watched)
    result = cli("--catalogs", str(catalogs), "fetch", "openfda/drug-event", "--json")
    record = json.loads(result.stdout.splitlines()[0])
    assert record["status"] == "fetched" and record["rows"] == 300, result.stderr
    assert len(unpacked_at_each) == 3
    for i, seen in enumerate(unpacked_at_each):
        assert [f"event_{i}" in name for name in seen] == [True], seen
    assert not unpacked()  # and none is left behind
    ids = cli("sql", "select min(id::INT) a, max(id::INT) b, count(*) n from openfda.drug_event", "-f", "csv")
    assert ids.stdout.split() == ["a,b,n", "0,299,300"]


def test_the_large_members_of_one_zip_are_unpacked_one_at_a_time(
    cli: Cli, http_server: LocalServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liberacion.convert as convert
    from liberacion.convert import containers

    monkeypatch.setattr(containers, "DEFER_BYTES", 1_000, raising=False)  # every member here is "large"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"part{i}.csv", "id,value\n" + "".join(f"{j},{j * 2}\n" for j in range(i * 200, i * 200 + 200)))
        zf.writestr("notes.html", "<!DOCTYPE html><html>" + " " * 2_000 + "</html>")  # not data: skipped
    url = http_server.add("/parts.zip", buffer.getvalue(), content_type="application/zip")
    work = Home(home).work
    seen: list[list[str]] = []
    real = convert.convert_part

    def watched(part: Any, out_dir: Path, **kwargs: Any) -> Any:
        before = sorted(p.name for p in work.rglob("*") if p.is_file())
        report = real(part, out_dir, **kwargs)
        seen.append([*before, "|", *sorted(p.name for p in work.rglob("*") if p.is_file())])
        return report

    monkeypatch.setattr(convert, "convert_part", watched)
    result = cli("fetch", url, "--as", "cms.parts", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["status"] for r in records] == ["fetched"], result.stdout + result.stderr
    assert sorted(records[0]["tables"]) == ["cms.parts__part0", "cms.parts__part1", "cms.parts__part2"]
    # Nothing unpacked before a member's conversion; only that member during it.
    assert seen == [["|", f"00{i}-part{i}_csv"] for i in range(3)], seen
    total = cli("sql", "select count(*) n from cms.parts__part2", "-f", "csv")
    assert total.stdout.split() == ["n", "200"]
