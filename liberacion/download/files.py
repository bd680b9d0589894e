"""Resumable, verified file downloads: ``HttpClient.download``.

A data download streams into ``<downloads>/<key>/download.part`` (``key`` derives from the URL)
while hashing, with the validators of those bytes in ``download.json`` beside it. When a
connection drops, the next attempt (in this run or a later one) asks for the rest with ``Range``
+ ``If-Range``; a server that ignores the range or whose file changed answers 200 and the
download starts over. A finished file is verified (length, not an HTML page or JSON error) and
renamed to its own name in the same directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from liberacion.download.session import (
    HttpSession,
    ProgressCallback,
    ProgressEvent,
    Validators,
    _connection_reason,
    _raise_for_status,
    _refuse_html,
    _refuse_json_error,
    _Retry,
    check_url,
    looks_like_html,
    redact,
)
from liberacion.errors import SourceError
from liberacion.files import write_json
from liberacion.home import file_lock
from liberacion.snapshots import Download

CHUNK = 1 << 20

PARTIAL = "download.part"
PARTIAL_META = "download.json"


@dataclass
class Transfer:
    """The outcome of ``HttpClient.download``: a verified file, or "not modified" (304)."""

    url: str
    final_url: str
    status: int  # 200 when a file was downloaded (whole or resumed), 304 when not modified
    path: Path | None  # the finished file (None on 304)
    sha256: str | None
    size: int  # bytes of the finished file
    transferred: int  # bytes received over the network by this call
    resumed_from: int  # bytes reused from an earlier, interrupted attempt
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def record(self) -> Download:
        """What a snapshot's provenance (and the URL's state) keeps of this transfer."""
        return Download(
            url=self.url,
            sha256=self.sha256,
            bytes=self.size,
            final_url=self.final_url,
            etag=self.etag,
            last_modified=self.last_modified,
            content_type=self.content_type,
        )


@dataclass
class _Counts:
    """Bytes received over the network, and bytes reused from an earlier attempt, in one download."""

    received: int = 0
    reused: int = 0


@dataclass
class _Partial:
    """Bytes of an interrupted download on disk, and what the server said about them."""

    directory: Path
    meta: dict[str, Any] = field(default_factory=dict)
    hasher: Any = None  # sha256 of the first ``hashed`` bytes, kept across attempts in one run
    hashed: int = 0

    @property
    def data(self) -> Path:
        return self.directory / PARTIAL

    @property
    def meta_path(self) -> Path:
        return self.directory / PARTIAL_META

    def size(self) -> int:
        try:
            return self.data.stat().st_size
        except FileNotFoundError:
            return 0

    def if_range(self) -> str | None:
        """A validator usable in If-Range: a strong ETag, else Last-Modified (RFC 9110 §13.1.5)."""
        etag = self.meta.get("etag")
        if etag and not etag.startswith("W/"):
            return etag
        return self.meta.get("last_modified")

    def reset(self) -> None:
        for path in (self.data, self.meta_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.meta = {}
        self.hasher, self.hashed = None, 0

    def load(self) -> None:
        try:
            self.meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.meta = {}
        if not isinstance(self.meta, dict) or not self.meta:
            self.reset()

    def save_meta(self) -> None:
        write_json(self.meta_path, self.meta)

    def hash_to(self, size: int) -> Any:
        """``hasher`` brought to cover the first ``size`` bytes on disk (reading only what is new)."""
        if size == 0 or self.hasher is None or self.hashed > size:
            self.hasher, self.hashed = hashlib.sha256(), 0
        if self.hashed < size:
            with open(self.data, "rb") as fh:
                fh.seek(self.hashed)
                remaining = size - self.hashed
                while remaining:
                    block = fh.read(min(CHUNK, remaining))
                    if not block:
                        break
                    self.hasher.update(block)
                    remaining -= len(block)
            self.hashed = size - remaining
        return self.hasher


class HttpClient(HttpSession):
    """liberacion's HTTP client: the policy of ``HttpSession`` plus resumable, verified downloads.

    The one client object fetch and refresh use. Safe to share between threads.
    """

    def download(
        self,
        url: str,
        directory: Path,
        *,
        validators: Validators | None = None,
        progress: ProgressCallback | None = None,
        name: str | None = None,
        expect_data: bool = True,
        wait: float = 300.0,
    ) -> Transfer:
        """Download ``url`` into ``directory/<key>/`` resumably; a 304 to ``validators`` means unchanged.

        The finished file keeps the server's file name. A partial file from an earlier attempt
        (this run or another) is continued when the server allows it.
        """
        check_url(url)
        work = directory / url_key(url)
        label = name or file_name_from_url(url)
        report = progress or (lambda _event: None)
        lock = directory / ".locks" / f"{work.name}.lock"  # outside ``work``, which is removed when done
        with file_lock(lock, wait=wait, what=f"the download of {redact(url)}"):
            partial = _Partial(work)
            partial.load()
            _remove_finished(work)
            counts = _Counts(reused=partial.size())

            def on_retry(message: str, delay: float) -> None:
                report(ProgressEvent("retry", url, label, partial.size(), partial.meta.get("total"), message))

            def attempt() -> Transfer:
                with self._host_slot(url):
                    return self._download_attempt(url, partial, validators, report, label, expect_data, counts)

            try:
                result = self._retrying(url, attempt, progress=partial.size, on_retry=on_retry)
            except BaseException as err:
                report(ProgressEvent("failed", url, label, partial.size(), partial.meta.get("total"), str(err)))
                raise
            result.transferred = counts.received
            result.resumed_from = counts.reused if result.path else 0
            kind = "unchanged" if result.not_modified else "done"
            report(ProgressEvent(kind, url, label, result.size, result.size))
            return result

    def _download_attempt(
        self,
        url: str,
        partial: _Partial,
        validators: Validators | None,
        report: ProgressCallback,
        label: str,
        expect_data: bool,
        counts: _Counts,
    ) -> Transfer:
        offset = partial.size()
        if offset and not partial.if_range():
            partial.reset()  # without a validator the bytes on disk cannot be matched to the file
            offset = 0
        headers = {"Accept-Encoding": "gzip" if not offset else "identity"}
        if offset:
            # Ranges count encoded bytes: ask for the identity encoding so offsets mean file bytes.
            headers.update({"Range": f"bytes={offset}-", "If-Range": str(partial.if_range())})
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        response = self._open(url, headers, stream=True)
        with response:
            status = response.status_code
            if status == 304 and validators:
                partial.reset()
                return Transfer(url, response.url, 304, None, None, 0, 0, 0, validators.etag, validators.last_modified)
            if status == 416 and offset:
                partial.reset()  # the partial file is longer than the file now is: start over
                raise _Retry("the server's file is shorter than the partial download (HTTP 416)", retry_after=0)
            _raise_for_status(response, url)
            if status not in (200, 206):
                raise SourceError(f"{redact(url)} answered HTTP {status}, which is not a file; check the URL")
            if status == 206:
                offset, total = _check_content_range(response, offset, url)
            else:
                offset, total = 0, _content_length(response)
                counts.reused = 0  # a full answer: whatever was on disk is not part of the file
            encoding = response.headers.get("Content-Encoding", "").strip().lower()
            encoded = encoding not in ("", "identity")
            partial.meta = {
                "url": url,
                "final_url": response.url,
                "etag": response.headers.get("ETag"),
                "last_modified": response.headers.get("Last-Modified"),
                "content_type": response.headers.get("Content-Type"),
                "content_disposition": response.headers.get("Content-Disposition"),
                # With a content encoding, Content-Length counts compressed bytes, not file bytes.
                "total": None if encoded else total,
                "encoded_length": total if encoded else None,
                "encoding": encoding if encoded else None,
            }
            partial.directory.mkdir(parents=True, exist_ok=True)
            partial.save_meta()
            hasher = partial.hash_to(offset)
            report(ProgressEvent("start", url, label, offset, partial.meta["total"]))
            size = self._stream_body(response, partial, offset, hasher, report, label, expect_data, counts)
            if encoded and total is not None and response.raw.tell() != total:
                raise _Retry(f"the body ended after {response.raw.tell():,} of {total:,} compressed bytes")
            expected = partial.meta["total"]
            if expected is not None and size != expected:
                raise _Retry(f"the body ended after {size:,} of {expected:,} bytes (connection closed early)")
        return self._finish(url, partial, hasher, size, expect_data)

    def _stream_body(
        self,
        response: Any,
        partial: _Partial,
        offset: int,
        hasher: Any,
        report: ProgressCallback,
        label: str,
        expect_data: bool,
        counts: _Counts,
    ) -> int:
        """Append the body to the partial file while hashing; returns the file's size."""
        import requests
        import urllib3

        size = offset
        total = partial.meta["total"]
        url = partial.meta["url"]
        mode = "r+b" if offset else "wb"
        if offset:
            # Keep exactly the bytes the server continues from, even if the file grew meanwhile.
            os.truncate(partial.data, offset)
        with open(partial.data, mode, buffering=0) as out:
            out.seek(offset)
            chunks = _body_chunks(response.raw)
            while True:
                self.check_cancel()
                try:
                    chunk = next(chunks, None)
                except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
                    raise _Retry(_connection_reason(err)) from None
                if chunk is None:
                    return size
                if size == 0 and expect_data and looks_like_html(chunk):
                    partial.reset()
                    _refuse_html(chunk, response, url)
                hasher.update(chunk)
                _write_all(out, chunk, partial.data)
                size += len(chunk)
                partial.hashed = size  # the hasher and the file agree after every chunk
                counts.received += len(chunk)
                report(ProgressEvent("advance", url, label, size, total))

    def _finish(self, url: str, partial: _Partial, hasher: Any, size: int, expect_data: bool) -> Transfer:
        if expect_data:
            _refuse_json_error(partial.data, size, url)
        meta = partial.meta
        name = _file_name(meta.get("content_disposition"), meta.get("final_url") or url)
        final = partial.directory / name
        os.replace(partial.data, final)
        partial.meta_path.unlink(missing_ok=True)
        return Transfer(
            url=url,
            final_url=meta.get("final_url") or url,
            status=200,
            path=final,
            sha256=hasher.hexdigest(),
            size=size,
            transferred=0,
            resumed_from=0,
            etag=meta.get("etag"),
            last_modified=meta.get("last_modified"),
            content_type=meta.get("content_type"),
        )


def url_key(url: str) -> str:
    """A stable, file-system safe key for a URL (its downloads directory and state file)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]


def file_name_from_url(url: str) -> str:
    return _safe_name(urlsplit(url).path.rsplit("/", 1)[-1]) or "download"


def _file_name(disposition: str | None, url: str) -> str:
    if disposition:
        match = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)", disposition, re.I)
        if match:
            name = _safe_name(match.group(1).rsplit("/", 1)[-1])
            if name:
                return name
    return file_name_from_url(url)


def _safe_name(name: str) -> str:
    from urllib.parse import unquote

    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", unquote(name)).strip("._")[:120]
    return "" if cleaned in ("", PARTIAL, PARTIAL_META) else cleaned


def _remove_finished(work: Path) -> None:
    """Files finished by an earlier run (kept when conversion failed) are replaced, not reused."""
    if not work.is_dir():
        return
    for path in work.iterdir():
        if path.name not in (PARTIAL, PARTIAL_META) and path.is_file():
            path.unlink(missing_ok=True)


def _content_length(response: Any) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.strip().isdigit() else None


def _check_content_range(response: Any, offset: int, url: str) -> tuple[int, int | None]:
    """The start and total of a 206 answer; a range other than the one asked for is an error."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", (response.headers.get("Content-Range") or "").strip())
    if not match or int(match.group(1)) != offset:
        raise SourceError(f"{redact(url)} answered a range other than the one asked for; run with --force to restart")
    total = match.group(3)
    return offset, int(total) if total != "*" else None


def _body_chunks(raw: Any) -> Iterator[bytes]:
    """The body as it arrives, decoded when the server compressed it, in chunks up to ``CHUNK``.

    ``read1`` returns whatever one read of the socket gives: a slow server still moves the
    partial file (and the progress bar) forward, and Ctrl-C is noticed between chunks. Over a
    fast link the chunks are full-sized and this keeps up with curl.
    """
    while chunk := raw.read1(CHUNK, decode_content=True):
        yield chunk


def _write_all(out: Any, chunk: bytes, path: Path) -> None:
    try:
        view = memoryview(chunk)
        while view:
            written = out.write(view)
            view = view[written:]
    except OSError as err:
        raise SourceError(f"cannot write {path}: {err.strerror}; free some disk space or set --home") from None
