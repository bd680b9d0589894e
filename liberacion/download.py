"""HTTP for liberacion: one session, timeouts, conditional GET.

This is a small stand-in with the final signature of ``fetch_document``: the full version (retries,
resume, atomic files, progress) replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from liberacion import __version__
from liberacion.errors import SourceError

if TYPE_CHECKING:
    import requests

CONNECT_TIMEOUT = 10.0
USER_AGENT = f"liberacion/{__version__}"

_session: requests.Session | None = None


@dataclass
class Document:
    status: int  # 200, or 304 when the validators matched
    content: bytes  # b"" on 304
    url: str  # final URL after redirects
    etag: str | None
    last_modified: str | None
    content_type: str | None


def _get_session() -> requests.Session:
    global _session
    if _session is None:
        import requests

        _session = requests.Session()
        _session.headers["User-Agent"] = USER_AGENT
    return _session


def fetch_document(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Document:
    """GET a (small) document into memory; ``etag``/``last_modified`` make it conditional."""
    import requests

    request_headers = dict(headers or {})
    if etag:
        request_headers["If-None-Match"] = etag
    if last_modified:
        request_headers["If-Modified-Since"] = last_modified
    try:
        response = _get_session().get(url, headers=request_headers, timeout=(CONNECT_TIMEOUT, timeout))
    except requests.RequestException as err:
        raise SourceError(f"cannot download {url}: {type(err).__name__}") from None
    if response.status_code >= 400:
        raise SourceError(f"cannot download {url}: HTTP {response.status_code} {response.reason}")
    return Document(
        status=response.status_code,
        content=b"" if response.status_code == 304 else response.content,
        url=response.url,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        content_type=response.headers.get("Content-Type"),
    )
