"""Resumable, verified file downloads: ``HttpClient.download``.

A data download streams into ``<downloads>/<key>/download.part`` (``key`` derives from the URL)
while hashing, with the validators of those bytes in ``download.json`` beside it. When a
connection drops, the next attempt (in this run or a later one) asks for the rest with ``Range``
+ ``If-Range``; a server that ignores the range or whose file changed answers 200 and the
download starts over, and so does a ``206`` whose validators are not those of the partial file
(two versions are never joined) or whose ``Content-Range`` does not start at the byte asked for.
A ``206`` to a request without ``Range`` (some CDNs answer every GET so) is the file from byte 0
when its ``Content-Range`` says so; without one it fails. A ``206`` whose ``Content-Range`` total
is ``*`` (unknown) may hold the whole file or its first piece: the rest is asked for with ``Range``
+ ``If-Range``, and the file ends where the server answers ``416`` (nothing beyond). A finished
file is verified (length, not an HTML page or JSON error) and renamed to its own name in the same
directory.

Segments (``LIBERACION_DOWNLOAD_SEGMENTS``, 2 by default; 1 turns them off): a file of at least
``segment_min`` bytes, without a content encoding, from a server that says ``Accept-Ranges: bytes``
and answers a ranged request for its second half with a ``206`` of the same version, comes over two
connections (the per-host rule allows two). Both write into one ``download.part`` of the file's
full length, each at its own offset; ``download.json`` records each segment's range and the bytes
written, so each resumes on its own (``Range`` + ``If-Range``). A segment answered with another
version (a 200, or a 206 with another ETag or Last-Modified) restarts the whole download from zero.
sha256 runs over the first segment while it arrives and over the rest from the file once every
segment is written; the file is renamed into place only then. Anything else (no length, no ranges,
a small file, no free connection) is one stream, as above.

Speed: the body is read straight into reused 1 MiB buffers (one socket read at a time, so a slow
server still moves forward), written with one system call per buffer, and hashed on a second,
lower-priority thread (hashlib releases the GIL), so receiving, writing and sha256 overlap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from liberacion.download.session import (
    HttpSession,
    ProgressCallback,
    ProgressEvent,
    Validators,
    _connection_reason,
    _Pace,
    _raise_for_status,
    _read_failure,
    _refuse_html,
    _refuse_json_error,
    _Retry,
    check_url,
    looks_like_html,
    redact,
)
from liberacion.errors import Interrupted, SourceError, option
from liberacion.files import write_json
from liberacion.home import file_lock, host_tag, process_alive
from liberacion.limits import MAX_UNZIPPED_ENV, max_unzipped_bytes
from liberacion.naming import redact_url
from liberacion.snapshots import Download

CHUNK = 1 << 20  # one write and one hash update per MiB: per-call costs vanish, the block stays in cache
BUFFERS = 16  # buffers in flight between the receiving and the hashing thread (16 MiB in all)
# The hashing thread's nice value (Linux): it yields the CPU to the receiving thread and to the
# kernel's writeback, and catches up from its buffers. At equal priority, on a busy 2-core machine,
# it starved the writeback and the download ran at half of curl's speed (benchmarks/download.py).
HASH_NICE = 5
# Each buffer is written in pieces of this size: on a disk (not in tmpfs) 1 MiB writes spent twice
# the CPU of 64 KiB ones in the kernel's copy into the page cache (benchmarks/download.py).
WRITE_SIZE = 64 << 10
COMMIT_EVERY = 0.5  # seconds: a slow body is written (and reported) at least this often

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
    shared: Path | None = None  # the URL's finished file, of which ``path`` is this caller's own name

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def release(self) -> None:
        """Drop this caller's own name for the finished file, keeping the URL's (a failed conversion
        leaves the download there to look at, until the next download of the URL replaces it)."""
        if self.path is not None and self.shared is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
                self.path.parent.rmdir()

    def discard(self) -> None:
        """Remove the finished file once its data is in the lake: this caller's name for it, and
        the URL's own, unless another download has put a newer file there meanwhile."""
        if self.path is None:
            return
        with contextlib.suppress(OSError):
            inode = self.path.stat().st_ino
            self.path.unlink()
            self.path.parent.rmdir()
            if self.shared is not None and self.shared.stat().st_ino == inode:
                self.shared.unlink()
                self.shared.parent.rmdir()

    def record(self) -> Download:
        """What a snapshot's provenance (and the URL's state) keeps of this transfer."""
        return Download(
            url=redact_url(self.url),
            sha256=self.sha256,
            bytes=self.size,
            final_url=redact_url(self.final_url),
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

    def resumable(self) -> bool:
        """Whether a later run can continue these bytes: only with a validator to send in If-Range."""
        return self.if_range() is not None

    def segments(self) -> list[dict[str, int]] | None:
        """The segments of a segmented download in progress (see the module's docstring), or None."""
        plan = self.meta.get("segments")
        return plan if isinstance(plan, list) and plan else None

    def progress(self) -> int:
        """Bytes of the file safely on disk: the segments' written bytes, else the file's size."""
        plan = self.segments()
        return sum(s["done"] for s in plan) if plan else self.size()

    def _plan_is_sound(self) -> bool:
        plan = self.meta.get("segments")
        if plan is None:
            return True
        total = self.meta.get("total")
        if not isinstance(plan, list) or not plan or not isinstance(total, int) or self.size() != total:
            return False
        position = 0
        for segment in plan:
            values = [segment.get(k) for k in ("start", "end", "done")] if isinstance(segment, dict) else []
            if len(values) != 3 or not all(isinstance(v, int) for v in values):
                return False
            start, end, done = values
            if start != position or not 0 <= done <= end - start:
                return False
            position = end
        return position == total

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
        if not isinstance(self.meta, dict) or not self.meta or not self._plan_is_sound():
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


@dataclass
class _Attempt:
    """What every step of one download shares, from its first attempt to its last."""

    url: str
    partial: _Partial
    validators: Validators | None
    report: ProgressCallback
    label: str
    expect_data: bool
    counts: _Counts
    pace: _Pace


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
            counts = _Counts(reused=partial.progress())
            pace = _Pace(url, self.config.min_rate, self.config.min_rate_seconds, self.config.deadline)
            pace.resumable = partial.resumable

            def on_retry(message: str, delay: float) -> None:
                report(ProgressEvent("retry", url, label, partial.progress(), partial.meta.get("total"), message))

            job = _Attempt(url, partial, validators, report, label, expect_data, counts, pace)

            def attempt() -> Transfer:
                pace.check_deadline(partial.progress())
                with self._host_slot(url):
                    return self._download_attempt(job)

            try:
                result = self._retrying(
                    url, attempt, progress=partial.progress, on_retry=on_retry, resumable=partial.resumable
                )
            except BaseException as err:
                report(ProgressEvent("failed", url, label, partial.progress(), partial.meta.get("total"), str(err)))
                # A failed download still moved bytes: fetch reports them (``bytes`` in --json).
                err.transferred = counts.received  # type: ignore[attr-defined]
                raise
            result.transferred = counts.received
            result.resumed_from = counts.reused if result.path else 0
            if result.path is not None:
                _hold(directory, result)
            kind = "unchanged" if result.not_modified else "done"
            report(ProgressEvent(kind, url, label, result.size, result.size))
            return result

    def _download_attempt(self, job: _Attempt) -> Transfer:
        """One attempt: continue the partial file, or, when the server's answer cannot continue it
        (another version, another range), throw it away and ask once more for the whole file.

        A loop, not recursion: only the first pass may start over, so an answer that disagrees
        with the partial file again is a failure for the retry loop, which is bounded.
        """
        for _ in range(2):
            try:
                return self._attempt_once(job)
            except _OtherVersion:
                # Never joined to bytes of another version or another place: start from byte 0.
                job.partial.reset()
                job.counts.reused = 0
        raise _Retry("the server's answers do not continue the partial download: starting again from byte 0")

    def _attempt_once(self, job: _Attempt) -> Transfer:
        url, partial, validators = job.url, job.partial, job.validators
        if partial.segments():
            if partial.if_range():
                return self._segmented(job, {})
            partial.reset()
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
                final = redact_url(response.url)
                return Transfer(url, final, 304, None, None, 0, 0, 0, validators.etag, validators.last_modified)
            if status == 416 and offset:
                if partial.meta.get(ENDS_A_PIECE) and _nothing_beyond(response, offset):
                    return self._finish(job, partial.hash_to(offset), offset)
                partial.reset()  # the partial file is longer than the file now is: start over
                raise _Retry("the server's file is shorter than the partial download (HTTP 416)", retry_after=0)
            _raise_for_status(response, url)
            if status not in (200, 206):
                raise SourceError(f"{redact(url)} answered HTTP {status}, which is not a file; check the URL")
            if status == 206:
                _check_partial_answer(response, partial.meta, offset, url)
            return self._receive(job, response, offset)

    def _receive(self, job: _Attempt, response: Any, offset: int) -> Transfer:
        """The body of a 200 or 206 answer into the partial file, verified and renamed when whole."""
        url, partial, counts = job.url, job.partial, job.counts
        status = response.status_code
        last = -1
        if status == 206:
            _, last, total = _content_range(response)  # it starts at ``offset``: see _check_partial_answer
        else:
            offset, total = 0, _content_length(response)
            counts.reused = 0  # a full answer: whatever was on disk is not part of the file
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        encoded = encoding not in ("", "identity")
        partial.meta = {
            "url": redact_url(url),
            "final_url": redact_url(response.url),
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
        if status == 200 and self._segmentable(response, partial):
            second = self._second_segment(url, partial)
            if second is not None:
                counts.reused = 0
                return self._segmented(replace(job, validators=None), {0: (response, None), 1: second})
        partial.save_meta()
        hasher = partial.hash_to(offset)
        job.report(ProgressEvent("start", url, job.label, offset, partial.meta["total"]))
        limit = max_unzipped_bytes() if encoded else None
        size = self._stream_body(job, response, offset, hasher, limit)
        if encoded and total is not None and response.raw.tell() != total:
            raise _Retry(f"the body ended after {response.raw.tell():,} of {total:,} compressed bytes")
        expected = partial.meta["total"]
        if status == 206 and expected is None and not encoded:
            _after_a_piece(partial, offset, size, last, url)
        if expected is not None and size != expected:
            if status == 206 and size == last + 1:  # a server that sends a file in pieces, unasked
                raise _Retry(f"the server sent bytes {offset:,}-{last:,} of {expected:,}", retry_after=0)
            raise _Retry(f"the body ended after {size:,} of {expected:,} bytes (connection closed early)")
        return self._finish(job, hasher, size)

    def _stream_body(self, job: _Attempt, response: Any, offset: int, hasher: Any, limit: int | None) -> int:
        """Append the body to the partial file while hashing; returns the file's size.

        ``limit`` caps the decoded size of a compressed (``Content-Encoding``) body.
        """
        partial, pace, counts, report, label = job.partial, job.pace, job.counts, job.report, job.label
        expect_data = job.expect_data
        size = offset
        total = partial.meta["total"]
        url = partial.meta["url"]
        if offset:
            # Keep exactly the bytes the server continues from, even if the file grew meanwhile.
            os.truncate(partial.data, offset)
        read = _body_reader(response, url)
        pace.start(size)
        with open(partial.data, "r+b" if offset else "wb", buffering=0) as out:
            out.seek(offset)
            writer = _HashingWriter(out, hasher, partial.data)
            try:
                while True:
                    block = writer.buffer()
                    filled, ended, began = 0, False, time.monotonic()
                    try:
                        with memoryview(block) as view:
                            # Fill the buffer from several socket reads: one write and one hash per buffer.
                            while filled < len(block):
                                self.check_cancel()
                                got = read(view[filled:])
                                if not got:
                                    ended = True
                                    break
                                if size == 0 and filled == 0 and expect_data and looks_like_html(view[:got].tobytes()):
                                    partial.reset()
                                    _refuse_html(view[:got].tobytes(), response, url)
                                filled += got
                                if limit is not None and size + filled > limit:
                                    encoding = partial.meta.get("encoding")
                                    partial.reset()
                                    raise SourceError(
                                        f"refusing {redact(url)}: its body (Content-Encoding: {encoding}) expands "
                                        f"to more than {limit:,} bytes (see {MAX_UNZIPPED_ENV})"
                                    )
                                pace.check(size + filled)
                                if time.monotonic() - began >= COMMIT_EVERY:
                                    break
                    except BaseException:
                        if filled and partial.hasher is hasher:  # what arrived is kept: the next attempt resumes
                            counts.received += filled
                            writer.commit(block, filled)
                        raise
                    if filled:
                        writer.commit(block, filled)
                        size += filled
                        counts.received += filled
                        report(ProgressEvent("advance", url, label, size, total))
                    else:
                        writer.give_back(block)
                    if ended:
                        return size
            finally:
                hashed = writer.close()
                if partial.hasher is hasher:  # not reset meanwhile: the hasher and the file agree again
                    partial.hashed = offset + hashed

    # -- segments (see the module's docstring) -------------------------------------------------

    def _segmentable(self, response: Any, partial: _Partial) -> bool:
        total = partial.meta["total"]
        ranges = (response.headers.get("Accept-Ranges") or "").lower()
        return (
            min(self.config.segments, self.config.per_host) >= 2
            and isinstance(total, int)
            and total >= max(self.config.segment_min, 2)
            and "bytes" in ranges
            and partial.if_range() is not None
        )

    def _second_segment(self, url: str, partial: _Partial) -> tuple[Any, Callable[[], None]] | None:
        """The second half asked for on a second connection, or None: then the file comes in one stream.

        On success the partial file is laid out at its full length and the plan recorded.
        """
        release = self._spare_host_slot(url)
        if release is None:
            return None
        total = partial.meta["total"]
        middle = total // 2
        partial.meta["segments"] = [{"start": 0, "end": middle, "done": 0}, {"start": middle, "end": total, "done": 0}]
        try:
            response = self._open_segment(url, partial, 1)
        except (_Retry, _OtherVersion, SourceError):
            release()
            del partial.meta["segments"]
            return None
        except BaseException:
            release()
            raise
        with open(partial.data, "wb") as out:
            out.truncate(total)
        partial.save_meta()
        return response, release

    def _open_segment(self, url: str, partial: _Partial, index: int) -> Any:
        """A ``206`` for what segment ``index`` still lacks, of the version the partial file holds."""
        segment = partial.meta["segments"][index]
        start, end = segment["start"] + segment["done"], segment["end"]
        headers = {
            "Accept-Encoding": "identity",
            "Range": f"bytes={start}-{end - 1}",
            "If-Range": str(partial.if_range()),
        }
        response = self._open(url, headers, stream=True)
        try:
            _raise_for_status(response, url)
            if response.status_code == 200 or (
                response.status_code == 206 and not _same_version(partial.meta, response.headers)
            ):
                raise _OtherVersion()
            if response.status_code != 206:
                raise SourceError(f"{redact(url)} answered HTTP {response.status_code} to a range request")
            first, last, total = _content_range(response)
            # A server may send more than the segment (some ignore the range's end): only its start must match.
            if first != start or last < end - 1 or total != partial.meta["total"]:
                raise _OtherVersion()
        except BaseException:
            response.close()
            raise
        return response

    def _segmented(self, job: _Attempt, opened: dict[int, tuple[Any, Callable[[], None] | None]]) -> Transfer:
        """Receive every unfinished segment, the second on its own connection when one is free."""
        url, partial = job.url, job.partial
        plan = partial.meta["segments"]
        total = partial.meta["total"]
        run = _SegmentRun(job)
        todo = [i for i, s in enumerate(plan) if s["done"] < s["end"] - s["start"]]
        if todo:
            job.report(ProgressEvent("start", url, job.label, partial.progress(), total))

        def receive(index: int, release: Callable[[], None] | None) -> None:
            response = None
            try:
                response = opened.pop(index, (None, None))[0] or self._open_segment(url, partial, index)
                with response:
                    self._stream_segment(job, response, index, run)
            except BaseException as err:
                run.fail(err)
            finally:
                if release is not None:
                    release()

        threads = []
        for index in todo[1:]:
            release = opened[index][1] if index in opened else self._spare_host_slot(url)
            if release is not None:
                thread = threading.Thread(target=receive, args=(index, release), name=f"segment-{index}", daemon=True)
                thread.start()
                threads.append((index, thread))
        for index in [i for i in todo if i not in dict(threads)]:
            if not run.stopped:
                receive(index, None)
        for _, thread in threads:
            thread.join()
        for response, release in opened.values():  # not started because another segment failed
            response.close()
            if release is not None:
                release()
        run.save()
        error = run.error()
        if isinstance(error, _OtherVersion):
            raise error  # another version than the bytes on disk: _download_attempt starts over
        if run.refused:
            partial.reset()
        if error is not None:
            raise error
        if partial.size() != total:
            partial.reset()
            raise _Retry(f"the partial file is {partial.size():,} bytes, not {total:,}: starting again")
        hasher = partial.hash_to(total)  # the first segment was hashed as it came; the rest is read back
        return self._finish(job, hasher, total)

    def _stream_segment(self, job: _Attempt, response: Any, index: int, run: _SegmentRun) -> None:
        """Write the response's body into the segment's range of the partial file, up to its end."""
        url, partial, expect_data, pace = job.url, job.partial, job.expect_data, job.pace
        segment = partial.meta["segments"][index]
        position, end = segment["start"] + segment["done"], segment["end"]
        # The first segment is hashed as it arrives, on the writer's thread; the others later.
        hasher = partial.hash_to(position) if segment["start"] == 0 else _NoHash()
        began = position
        read = _body_reader(response, url)
        own_pace = _Pace(url, self.config.min_rate, self.config.min_rate_seconds, self.config.deadline)
        own_pace.began = pace.began  # one deadline for the whole download; one minimum rate per connection
        own_pace.start(position)
        with open(partial.data, "r+b", buffering=0) as out:
            out.seek(position)
            writer = _HashingWriter(out, hasher, partial.data)
            try:
                while position < end:
                    block = writer.buffer()
                    filled, started = 0, time.monotonic()
                    try:
                        with memoryview(block) as view:
                            while filled < len(block) and position + filled < end:
                                self.check_cancel()
                                run.check()
                                got = read(view[filled : min(len(block), end - position)])
                                if not got:
                                    raise _Retry("the connection closed before the whole segment arrived")
                                if position == 0 and filled == 0 and expect_data:
                                    head = view[:got].tobytes()
                                    if looks_like_html(head):
                                        run.refused = True
                                        _refuse_html(head, response, url)
                                filled += got
                                own_pace.check(position + filled)
                                if time.monotonic() - started >= COMMIT_EVERY:
                                    break
                    except BaseException:
                        if filled and not run.refused:  # what arrived is kept: the next attempt resumes
                            writer.commit(block, filled)
                            run.advance(segment, filled)
                        raise
                    writer.commit(block, filled)
                    position += filled
                    run.advance(segment, filled)
            finally:
                hashed = writer.close()
                if partial.hasher is hasher:
                    partial.hashed = began + hashed

    def _finish(self, job: _Attempt, hasher: Any, size: int) -> Transfer:
        url, partial = job.url, job.partial
        if job.expect_data:
            _refuse_json_error(partial.data, size, url)
        meta = partial.meta
        name = _file_name(meta.get("content_disposition"), meta.get("final_url") or url)
        final = partial.directory / name
        os.replace(partial.data, final)
        partial.meta_path.unlink(missing_ok=True)
        return Transfer(
            url=url,
            final_url=meta.get("final_url") or redact_url(url),
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
    """A stable, file-system safe key for a URL (its downloads directory and state file).

    Made from the redacted URL: a URL replayed from a stored record (whose secret is ``***``)
    finds the same state as the one the user typed.
    """
    return hashlib.sha256(redact_url(url).encode("utf-8")).hexdigest()[:24]


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


HELD = ".held"  # under the downloads directory: each caller's own name for a finished file


def _hold(directory: Path, result: Transfer) -> None:
    """Give the caller its own name (a hard link) for the finished file, taken under the URL's lock.
    The shared name is not the caller's to keep: the next download of the URL clears it before it
    starts, and another table fed by the same URL in the same run discards it once published, both
    while this caller may still be converting it."""
    assert result.path is not None
    held = directory / HELD / f"{os.getpid()}-{host_tag()}-{secrets.token_hex(4)}"
    try:
        held.mkdir(parents=True)
        os.link(result.path, held / result.path.name)
    except OSError:  # a filesystem without hard links: the shared name, as before
        shutil.rmtree(held, ignore_errors=True)
        return
    result.shared, result.path = result.path, held / result.path.name


def remove_dead_holds(directory: Path) -> None:
    """Remove the held files of this machine's processes that died (kill -9) before they could."""
    holds = directory / HELD
    if not holds.is_dir():
        return
    for entry in holds.iterdir():
        pid, _, rest = entry.name.partition("-")
        if pid.isdigit() and rest.startswith(f"{host_tag()}-") and not process_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


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


def _check_partial_answer(response: Any, meta: dict[str, Any], offset: int, url: str) -> None:
    """A ``206`` continues the partial file only from the byte asked for, and only in its version.

    With nothing on disk no ``Range`` was sent, yet some CDNs answer every GET with a 206: from
    byte 0 it is the file or its first piece (its total tells; an unknown one: ``_after_a_piece``).
    Without a Content-Range, or from another byte, nobody can tell where its bytes belong.
    """
    first, _, _ = _content_range(response)
    if offset:
        if first != offset or not _same_version(meta, response.headers):
            raise _OtherVersion()  # another range or another version: never joined, start over
        return
    if first != 0:
        what = f"starting at byte {first:,}" if first > 0 else "without a Content-Range"
        raise SourceError(
            f"{redact(url)} answered a request for the whole file with 206 Partial Content {what}; "
            "the server is misconfigured: try again later, or tell its publisher"
        )


# download.json: the partial file ends where a 206 of unknown total ended (see _after_a_piece).
ENDS_A_PIECE = "ends_a_piece"


def _after_a_piece(partial: _Partial, offset: int, size: int, last: int, url: str) -> NoReturn:
    """After a ``206`` whose ``Content-Range`` total is ``*``: bytes ``offset``-``last`` arrived, of a
    file whose length nobody said, so whole file and first piece look alike. Always raises: the
    next attempt asks for the rest (``Range`` + ``If-Range``), and a ``416`` to it ends the file
    (see ``_nothing_beyond``). Without a validator the rest cannot be asked for safely: it fails."""
    if size < last + 1:
        raise _Retry(f"the body ended after {size:,} of the {last + 1:,} bytes its Content-Range announced")
    if partial.if_range() is None:
        partial.reset()
        raise SourceError(
            f"{redact(url)} answered with bytes {offset:,}-{last:,} of a file of unknown length (Content-Range "
            "total *) and no ETag or Last-Modified to ask for the rest by, so it cannot be known whole; "
            "try again later, or tell its publisher"
        )
    partial.meta[ENDS_A_PIECE] = True
    partial.save_meta()
    reason = f"the server sent bytes {offset:,}-{last:,} of a file of unknown length: asking for the rest"
    raise _Retry(reason, retry_after=0)


def _nothing_beyond(response: Any, offset: int) -> bool:
    """Whether a ``416`` to ``Range: bytes=offset-`` says the file ends at ``offset``: its
    ``Content-Range`` (``bytes */length``) names that length, or it names none. It answers the
    ``If-Range`` of the bytes on disk, so it is their version that holds nothing more."""
    length = (response.headers.get("Content-Range") or "").strip()
    return not length or length == f"bytes */{offset}"


def _same_version(meta: dict[str, Any], headers: Any) -> bool:
    """Whether a ``206`` continues the version the partial file holds (its ETag, else Last-Modified).

    A server should answer ``If-Range`` with a ``200`` when the file changed; one that sends a
    ``206`` of the new version anyway must not have it joined to the old bytes.
    """
    etag, modified = headers.get("ETag"), headers.get("Last-Modified")
    if meta.get("etag"):
        return etag == meta["etag"]
    if meta.get("last_modified"):
        return modified == meta["last_modified"]
    return False


def _content_range(response: Any) -> tuple[int, int, int | None]:
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", (response.headers.get("Content-Range") or "").strip())
    if not match:
        return -1, -1, None
    total = match.group(3)
    return int(match.group(1)), int(match.group(2)), int(total) if total != "*" else None


class _OtherVersion(Exception):
    """An answer that cannot continue the partial file (another version, or not the range asked
    for): the download starts over from byte 0."""


class _Stopped(Exception):
    """Another segment failed for good (or was interrupted): this one stops too, keeping what it wrote."""


class _NoHash:
    """The hasher of a segment hashed later, from the file."""

    def update(self, data: Any) -> None:
        pass


class _SegmentRun:
    """What the segments of one download share: progress (saved now and then), the first failure."""

    def __init__(self, job: _Attempt) -> None:
        self.job = job
        self.refused = False  # the body was an HTML page: the partial file goes
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._stop = False
        self._saved = time.monotonic()

    @property
    def stopped(self) -> bool:
        return self._stop

    def check(self) -> None:
        if self._stop:
            raise _Stopped()

    def fail(self, err: BaseException) -> None:
        """A dropped connection stops only its own segment; anything else stops them all."""
        with self._lock:
            self._errors.append(err)
            if not isinstance(err, (_Retry, _Stopped)):
                self._stop = True

    def error(self) -> BaseException | None:
        """The failure that decides what happens next: an interrupt, another version, a hard error, a retry."""
        errors = [e for e in self._errors if not isinstance(e, _Stopped)]
        for kind in (Interrupted, _OtherVersion, SourceError, _Retry):
            for err in errors:
                if isinstance(err, kind):
                    return err
        return errors[0] if errors else None

    def advance(self, segment: dict[str, int], length: int) -> None:
        """``length`` more bytes of ``segment`` are written: counted, reported, saved every so often."""
        with self._lock:
            segment["done"] += length
            self.job.counts.received += length
            done = self.job.partial.progress()
            if time.monotonic() - self._saved >= COMMIT_EVERY:
                self._save()
        job = self.job
        job.report(ProgressEvent("advance", job.url, job.label, done, job.partial.meta.get("total")))

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        partial = self.job.partial
        if partial.segments() and not self.refused and partial.data.exists():
            partial.save_meta()
        self._saved = time.monotonic()


class _HashingWriter:
    """Writes buffers to the partial file on the calling thread and hashes them on another.

    sha256 runs at about 1 GB/s on one core; beside the socket reads and the writes it costs no
    wall time. Buffers come back for reuse only once hashed, so memory stays ``BUFFERS`` × ``CHUNK``.
    The thread runs at a lower priority (``HASH_NICE``) so that it never slows the receiving.
    """

    def __init__(self, out: Any, hasher: Any, path: Path) -> None:
        self._out = out
        self._hasher = hasher
        self._path = path
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        for _ in range(BUFFERS):
            self._free.put(bytearray(CHUNK))
        self.hashed = 0
        self._thread: threading.Thread | None = threading.Thread(target=self._hash, name="sha256", daemon=True)
        self._thread.start()

    def buffer(self) -> bytearray:
        while True:
            try:
                return self._free.get(timeout=1.0)
            except queue.Empty:
                # Buffers come back from the hashing thread: if it died, none ever will.
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError("the sha256 thread of the download stopped") from None

    def give_back(self, block: bytearray) -> None:
        self._free.put(block)

    def commit(self, block: bytearray, length: int) -> None:
        """Write the first ``length`` bytes of ``block`` to the file, then queue them for hashing."""
        view = memoryview(block)[:length]
        try:
            for start in range(0, length, WRITE_SIZE):
                piece = view[start : start + WRITE_SIZE]
                while piece:
                    written = self._out.write(piece)
                    piece = piece[written:]
        except OSError as err:
            self._free.put(block)
            raise SourceError(
                f"cannot write {self._path}: {err.strerror}; free some disk space or set {option('home')}"
            ) from None
        finally:
            view.release()
        self._full.put((block, length))

    def _hash(self) -> None:
        if sys.platform.startswith("linux"):  # per thread only on Linux; elsewhere it would be the process
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)
        while (item := self._full.get()) is not None:
            block, length = item
            with memoryview(block) as view:
                self._hasher.update(view[:length])
            self.hashed += length
            self._free.put(block)

    def close(self) -> int:
        """Wait until everything written is hashed; returns how many bytes were."""
        if self._thread is not None:
            self._full.put(None)
            self._thread.join()
            self._thread = None
        return self.hashed


def _body_reader(response: Any, url: str) -> Callable[[memoryview], int]:
    """A function reading the body into a buffer, at most one socket read per call; 0 at the end.

    A plain body with a length (the usual data file) is read from the socket's buffered reader
    straight into the caller's buffer, with no copy in between; a compressed or chunked body goes
    through urllib3, which decodes it (never more than the buffer holds at once).
    """
    import http.client

    import requests
    import urllib3

    errors = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)
    raw = response.raw
    inner = getattr(raw, "_fp", None)  # urllib3's http.client.HTTPResponse
    stream = getattr(inner, "fp", None)
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    direct = (
        encoding in ("", "identity")
        and isinstance(inner, http.client.HTTPResponse)
        and not inner.chunked
        and isinstance(getattr(inner, "length", None), int)
        and hasattr(stream, "readinto1")
    )
    if direct:
        remaining: int = inner.length  # type: ignore[union-attr]

        def read_direct(view: memoryview) -> int:
            nonlocal remaining
            if remaining <= 0:
                return 0
            try:
                got = stream.readinto1(view[:remaining])  # type: ignore[union-attr]
            except errors as err:
                raise _Retry(_connection_reason(err)) from None
            if not got:
                raise _Retry("the connection closed before the whole body arrived")
            remaining -= got
            return got

        return read_direct

    def read_decoded(view: memoryview) -> int:
        try:
            data = raw.read1(len(view), decode_content=True)
        except errors as err:
            raise _read_failure(err, response, url) from None  # a body that does not decode fails at once
        view[: len(data)] = data
        return len(data)

    return read_decoded
