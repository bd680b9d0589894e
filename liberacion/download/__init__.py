"""All HTTP of liberacion: one session, retries, conditional GETs and resumable, verified downloads.

Everything that talks to a server goes through ``HttpClient`` (``fetch_document`` for listings
and small documents, ``HttpClient.download`` for data files), so timeouts, retries, redirects,
tokens and politeness are decided in one place.

- ``session``: the HTTP policy (configuration, credentials, redirects, retries, error messages)
  and ``HttpSession``, the client without file downloads; ``fetch_document``.
- ``files``: ``HttpClient`` (``HttpSession`` + ``download``): resumable, verified file downloads
  into ``<downloads>/<key>/``, and their outcome, ``Transfer``.
- ``state``: what liberacion last learned about each URL (validators, sha256), in the home.

Importing this package does not import ``requests``: the CLI starts fast.
"""

from __future__ import annotations

from liberacion.download.files import (
    PARTIAL,
    HttpClient,
    Transfer,
    file_name_from_url,
    url_key,
)
from liberacion.download.session import (
    Credentials,
    Document,
    HttpConfig,
    HttpSession,
    Probe,
    ProgressCallback,
    ProgressEvent,
    Validators,
    check_url,
    default_client,
    fetch_document,
    looks_like_html,
    redact,
)

__all__ = [
    "PARTIAL",
    "Credentials",
    "Document",
    "HttpClient",
    "HttpConfig",
    "HttpSession",
    "Probe",
    "ProgressCallback",
    "ProgressEvent",
    "Transfer",
    "Validators",
    "check_url",
    "default_client",
    "fetch_document",
    "file_name_from_url",
    "looks_like_html",
    "redact",
    "url_key",
]
