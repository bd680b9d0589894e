"""What liberacion last learned about each URL: validators, sha256, size, when it was downloaded
(``checked_at``).

One JSON file per URL under ``<home>/state/urls/``, named by ``url_key``; ``fetch`` writes it after
every download (a "not modified" leaves it as it is), and sends its validators back on the next
conditional GET.
The URL is kept redacted (``api_key=***``): a secret in a URL is never written to the home.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liberacion.download.files import url_key
from liberacion.files import write_json
from liberacion.naming import redact_url

if TYPE_CHECKING:
    from liberacion.home import Home


def url_state_path(home: Home, url: str) -> Path:
    return home.state / "urls" / f"{url_key(url)}.json"


def load_url_state(home: Home, url: str) -> dict[str, Any] | None:
    """What liberacion last learned about ``url``: validators, sha256, size, when downloaded."""
    try:
        data = json.loads(url_state_path(home, url).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("url") == redact_url(url) else None


def save_url_state(home: Home, url: str, record: dict[str, Any]) -> None:
    write_json(url_state_path(home, url), {**record, "url": redact_url(url)}, indent=2)
