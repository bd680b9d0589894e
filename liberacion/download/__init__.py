"""All HTTP of liberacion: one session, retries, conditional GETs and resumable, verified downloads.

Everything that talks to a server goes through ``HttpClient`` (``fetch_document`` for listings
and small documents, ``HttpClient.download`` for data files), so timeouts, retries, redirects,
tokens and politeness are decided in one place.

- ``session``: the HTTP policy (configuration, credentials, redirects, retries, error messages)
  and ``HttpSession``, the client without file downloads; ``fetch_document``.
- ``files``: ``HttpClient`` (``HttpSession`` + ``download``): resumable, verified file downloads
  into ``<downloads>/<key>/``, and their outcome, ``Transfer``.
- ``state``: what liberacion last learned about each URL (validators, sha256), in the home.

Importing this package imports neither ``requests`` nor its submodules: each name below is loaded
from its submodule on first use, so a listing's conditional GET does not load the file downloads.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    **dict.fromkeys(
        ("PARTIAL", "HttpClient", "Transfer", "file_name_from_url", "url_key"), "liberacion.download.files"
    ),
    **dict.fromkeys(
        (
            "Credentials",
            "Document",
            "HttpConfig",
            "HttpSession",
            "Probe",
            "ProgressCallback",
            "ProgressEvent",
            "Validators",
            "check_url",
            "default_client",
            "fetch_document",
            "looks_like_html",
            "redact",
        ),
        "liberacion.download.session",
    ),
}

__all__ = [*_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'liberacion.download' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
