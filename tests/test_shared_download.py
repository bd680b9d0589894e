"""Two tables fed by one URL in one run (a file a curated entry and a listing both name): each
converts its own copy of the download, so neither loses the file while the other replaces it
(the second download clears the URL's finished file) or discards it once published."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from liberacion.home import Home
from tests.conftest import Cli
from tests.server import LocalServer
from tests.test_fetch import manifest

CSV = "facility_id,beds\n010001,12\n010005,40\n"


def test_two_tables_of_one_url_each_convert_their_own_copy(
    cli: Cli, http_server: LocalServer, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import liberacion.convert as convert
    import liberacion.fetching as fetching

    url = http_server.add("/beds.csv", CSV, content_type="text/csv")
    catalogs = manifest(tmp_path, [{"id": "a", "title": "A", "url": url}, {"id": "b", "title": "B", "url": url}])
    from liberacion.download import HttpClient

    both_downloaded, first_discarded = threading.Event(), threading.Event()
    finished: list[Path] = []
    conversions: list[str] = []
    real_download, real_convert, real_discard = HttpClient.download, convert.convert_part, fetching._Job._discard

    def download(self: Any, *args: Any, **kwargs: Any) -> Any:
        transfer = real_download(self, *args, **kwargs)
        finished.append(transfer.path)
        if len(finished) == 2:
            both_downloaded.set()
        return transfer

    def discard(self: Any, files: Any) -> None:
        both_downloaded.wait(10)  # the other table has its download before this one is thrown away
        real_discard(self, files)
        first_discarded.set()

    def convert_part(part: Any, out_dir: Path, **kwargs: Any) -> Any:
        conversions.append(part.path.name)
        if len(conversions) == 2:
            first_discarded.wait(10)
        return real_convert(part, out_dir, **kwargs)

    monkeypatch.setattr(HttpClient, "download", download)
    monkeypatch.setattr(convert, "convert_part", convert_part)
    monkeypatch.setattr(fetching._Job, "_discard", discard)
    result = cli("--catalogs", str(catalogs), "fetch", "cms/a", "cms/b", "--jobs", "2", "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert both_downloaded.is_set() and first_discarded.is_set()
    assert [r["status"] for r in records] == ["fetched", "fetched"], result.stdout + result.stderr
    assert result.exit_code == 0
    downloads = Home(home).downloads
    assert not [p for p in downloads.rglob("*") if p.is_file() and p.name == "beds.csv"]  # none left behind


def test_the_held_files_of_a_dead_run_go_with_the_next_one(cli: Cli, http_server: LocalServer, home: Path) -> None:
    from liberacion.home import host_tag, process_alive

    dead = next(pid for pid in range(4_000_000, 4_100_000) if not process_alive(pid))
    held = Home(home).downloads / ".held" / f"{dead}-{host_tag()}-0a1b2c3d"
    held.mkdir(parents=True)
    (held / "beds.csv").write_text(CSV)
    alive = Home(home).downloads / ".held" / f"1-{host_tag()}-0a1b2c3d"  # pid 1 never dies
    alive.mkdir()
    url = http_server.add("/beds.csv", CSV, content_type="text/csv")
    assert cli("fetch", url, "--as", "cms.beds").exit_code == 0
    assert not held.exists() and alive.exists()


def test_a_failed_conversion_keeps_the_download_under_the_urls_name_only(
    cli: Cli, http_server: LocalServer, home: Path
) -> None:
    import io
    import re
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("guide.pdf", b"%PDF-1.4 not a table")
    url = http_server.add("/docs.zip", buffer.getvalue(), content_type="application/zip")
    result = cli("fetch", url, "--as", "cms.docs")
    assert result.exit_code == 1
    kept = re.search(r"the downloaded file is kept at (\S+)\)", result.stderr)
    assert kept, result.stderr
    assert Path(kept.group(1)).is_file() and ".held" not in kept.group(1)
    assert not [p for p in (Home(home).downloads / ".held").rglob("*") if p.is_file()]
