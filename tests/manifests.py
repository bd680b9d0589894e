"""Write catalog manifests for tests: every URL in them points at the local test server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_catalog(
    directory: Path,
    name: str,
    sources: Sequence[tuple[str, str]] = (),
    *,
    title: str | None = None,
    body: str = "",
    filename: str | None = None,
) -> Path:
    """A manifest named ``name`` with ``sources`` as (kind, url) pairs and ``body`` appended verbatim."""
    lines = [f'name = "{name}"', f'title = "{title or name + " catalog"}"']
    for kind, url in sources:
        lines += ["", "[[source]]", f'kind = "{kind}"', f'url = "{url}"']
    path = directory / (filename or f"{name}.toml")
    path.write_text("\n".join(lines) + "\n" + body, encoding="utf-8")
    return path


def small_listing(*titles: str) -> str:
    """A DCAT-US listing of one CSV dataset per title, with the fewest fields discover needs."""
    datasets = [
        {
            "identifier": f"https://example.gov/dataset/{title.lower()}",
            "title": title,
            "description": "d",
            "distribution": [{"downloadURL": f"https://x.gov/{title.lower()}.csv", "mediaType": "text/csv"}],
        }
        for title in titles
    ]
    return json.dumps({"dataset": datasets})


def dkan_pointer(server: Any, manifests: Path, identifier: str, file_url: str, modified: str = "2026-11-01") -> dict:
    """Catalog ``pdc`` whose dataset ``beds`` points (``source_id``) at DKAN item ``identifier``,
    served with its one file at ``file_url``, as data.cms.gov's curated datasets do; the item."""
    item = {
        "identifier": identifier,
        "title": "Beds",
        "modified": modified,
        "distribution": [{"downloadURL": file_url}],
    }
    server.add(f"/pdc/items/{identifier}", json.dumps(item), content_type="application/json")
    body = f'\n[[dataset]]\nid = "beds"\nsource = "dkan"\nsource_id = "{identifier}"\n'
    write_catalog(manifests, "pdc", [("dkan", server.url("/pdc/items"))], body=body)
    return item
