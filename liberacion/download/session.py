"""The HTTP policy of liberacion: one session, timeouts, retries, redirects, tokens, error messages.

Everything that talks to a server goes through an ``HttpSession`` (``HttpClient`` adds the
resumable file downloads of ``liberacion.download.files``), so timeouts, retries, redirects,
tokens and politeness are decided in one place. ``fetch_document`` gets listings and small
documents with the process-wide client.

``requests`` is imported inside the functions that use it: importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin, urlsplit

from liberacion import __version__
from liberacion.errors import ConfigError, Gone, Interrupted, SourceError, Unreachable, shorten
from liberacion.formats import JSON_ERROR_MAX, is_json_error
from liberacion.naming import redact_url, without_redacted

if TYPE_CHECKING:
    import requests

USER_AGENT = f"liberacion/{__version__}"
TIMEOUT_ENV = "LIBERACION_TIMEOUT"
MAX_TIMEOUT = 86400.0  # a day: a silent connection is stalled long before; beyond, clocks overflow
RETRIES_ENV = "LIBERACION_RETRIES"
BACKOFF_ENV = "LIBERACION_BACKOFF"
MIN_RATE_ENV = "LIBERACION_MIN_RATE"
MIN_RATE_SECONDS_ENV = "LIBERACION_MIN_RATE_SECONDS"
DEADLINE_ENV = "LIBERACION_DOWNLOAD_DEADLINE"
SEGMENTS_ENV = "LIBERACION_DOWNLOAD_SEGMENTS"
SOCRATA_TOKEN_ENV = "LIBERACION_SOCRATA_APP_TOKEN"
SOCRATA_HOSTS_ENV = "LIBERACION_SOCRATA_HOSTS"
OPENFDA_KEY_ENV = "LIBERACION_OPENFDA_API_KEY"

# Socrata portals of HHS; the app token goes to these hosts (and *.socrata.com) and no others.
SOCRATA_HOSTS = frozenset(
    {"data.cdc.gov", "healthdata.gov", "data.healthdata.gov", "chronicdata.cdc.gov", "data.medicare.gov"}
)
OPENFDA_API_HOSTS = frozenset({"api.fda.gov"})  # bulk files on download.open.fda.gov need no key

MAX_ATTEMPTS = 100  # hard stop, even for a download that keeps making progress between drops
# A host whose name does not resolve or that refuses connections is tried once more, after at most
# this many seconds; for this long afterwards, requests to it fail at once instead of trying again.
UNREACHABLE_RETRY_DELAY = 1.0
UNREACHABLE_MEMORY = 30.0
# A host that failed every attempt for one file (5xx, 429, dropped connections) is likely down for
# all of them: for this long, its other files get one attempt each instead of the whole backoff, so
# a refresh during an outage does not outlast the interval between cron runs. A success lifts it.
FAILING_MEMORY = 600.0
SNIFF_BYTES = 4096

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Headers that identify the client to a server: never forwarded to another host on a redirect.
_SAFE_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "range", "if-range", "if-none-match", "if-modified-since"}
)
# Hosts whose traffic never leaves the machine: credentials may go there over plain http.
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

T = TypeVar("T")


@dataclass(frozen=True)
class HttpConfig:
    """Timeouts, retries and politeness. ``from_env`` reads the documented environment variables."""

    timeout: float = 60.0  # seconds a connection may stall (no byte received) before it fails
    connect_timeout: float = 15.0
    retries: int = 5  # attempts after the first one that made no progress
    backoff: float = 1.0  # first delay between attempts; doubles each time, with jitter
    backoff_max: float = 60.0
    retry_after_max: float = 120.0  # a server's Retry-After is honoured up to this many seconds
    max_redirects: int = 10
    per_host: int = 2  # connections at once to one host
    socrata_hosts: frozenset[str] = SOCRATA_HOSTS
    # Like curl's --speed-limit/--speed-time: a download slower than ``min_rate`` bytes/s on average
    # over ``min_rate_seconds`` fails (a server dripping bytes defeats the stall timeout). 0: off.
    min_rate: float = 1024.0
    min_rate_seconds: float = 60.0
    deadline: float = 6 * 3600.0  # seconds one download may take in all, retries included; 0: none
    # A large file from a server that honours ranges comes in this many parallel segments (at most
    # ``per_host``). Two: onto disk they beat one stream (NOTES.md), and a link slower per
    # connection than the disk (any server over the internet) gains most; 1 turns them off.
    segments: int = 2
    segment_min: int = 256 << 20  # bytes: a smaller file always comes in one stream

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpConfig:
        env = os.environ if environ is None else environ
        timeout = _env_number(env, TIMEOUT_ENV, cls.timeout, minimum=0.01, maximum=MAX_TIMEOUT)
        extra_hosts = _host_names(env, SOCRATA_HOSTS_ENV)
        return cls(
            timeout=timeout,
            connect_timeout=min(cls.connect_timeout, timeout),
            retries=int(_env_number(env, RETRIES_ENV, cls.retries, minimum=0, whole=True)),
            backoff=_env_number(env, BACKOFF_ENV, cls.backoff, minimum=0.0),
            socrata_hosts=SOCRATA_HOSTS | extra_hosts,
            min_rate=_env_number(env, MIN_RATE_ENV, cls.min_rate, minimum=0.0),
            min_rate_seconds=_env_number(env, MIN_RATE_SECONDS_ENV, cls.min_rate_seconds, minimum=0.1),
            deadline=_env_number(env, DEADLINE_ENV, cls.deadline, minimum=0.0),
            segments=_segments(env),
        )


def _host_names(env: Mapping[str, str], name: str) -> set[str]:
    """Host names, comma-separated. A URL, a port or a wildcard (``https://data.wa.gov/``,
    ``*.wa.gov``) never equals the host of a request: the token went to none of them, unsaid."""
    import re

    hosts = {h.strip().lower() for h in env.get(name, "").split(",") if h.strip()}
    for host in sorted(hosts):
        if not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:]*:[0-9a-f:]*", host) or host.strip(".-") != host:
            said = f"{name}: {host!r} is not a host name"
            raise ConfigError(f"{said}; give host names separated by commas, e.g. data.wa.gov,data.ny.gov")
    return hosts


def _segments(env: Mapping[str, str]) -> int:
    """``LIBERACION_DOWNLOAD_SEGMENTS``: 1 or 2 (two connections to a host at most)."""
    text = env.get(SEGMENTS_ENV, "").strip()
    if text not in ("", "1", "2"):
        raise ConfigError(f"{SEGMENTS_ENV}={text!r}: use 2 (a large file over two connections) or 1 (one)")
    return int(text or HttpConfig.segments)


def _env_number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float,
    maximum: float | None = None,
    whole: bool = False,
) -> float:
    import math

    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number; unset it or give a number") from None
    if value < minimum or value != value:  # NaN
        raise ConfigError(f"{name}={text!r} must be at least {minimum:g}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={text!r} must be at most {maximum:g}; unset it or give a smaller number")
    if not math.isfinite(value):  # inf overflows the clocks and counters it feeds
        raise ConfigError(f"{name}={text!r} must be a finite number; unset it or give a number")
    if whole and not value.is_integer():  # a count: 1.5 retries was 1, the rest dropped without a word
        raise ConfigError(f"{name}={text!r} must be a whole number; unset it or give one, e.g. {default:g}")
    return value


class Credentials:
    """API tokens from the environment. Deliberately without a useful repr: tokens never print."""

    def __init__(self, socrata_token: str | None = None, openfda_key: str | None = None) -> None:
        # Trimmed: a token pasted with a space or a tab made every request fail as an invalid
        # header, retried for 20 s and said as "connection failed (InvalidHeader)"; blank is none.
        self._socrata = (socrata_token or "").strip() or None
        self._openfda = (openfda_key or "").strip() or None

    @classmethod
    def from_env(cls) -> Credentials:
        return cls(os.environ.get(SOCRATA_TOKEN_ENV), os.environ.get(OPENFDA_KEY_ENV))

    def __repr__(self) -> str:
        return "Credentials(<redacted>)"

    def headers_for(self, host: str, config: HttpConfig) -> dict[str, str]:
        if self._socrata and (host in config.socrata_hosts or host.endswith(".socrata.com")):
            return {"X-App-Token": self._socrata}
        return {}

    def auth_for(self, host: str) -> tuple[str, str] | None:
        # openFDA takes the key as the Basic-auth user name: it stays out of URLs and logs.
        return (self._openfda, "") if self._openfda and host in OPENFDA_API_HOSTS else None


@dataclass
class Document:
    status: int  # 200, or 304 when the validators matched
    content: bytes  # b"" on 304
    url: str  # final URL after redirects
    etag: str | None
    last_modified: str | None
    content_type: str | None


@dataclass
class Validators:
    """What a server said about the version of a file: sent back to ask "has it changed?"."""

    etag: str | None = None
    last_modified: str | None = None

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report. ``key`` identifies a transfer; ``done``/``total`` count bytes."""

    kind: str  # "start", "advance", "retry", "done", "failed", "unchanged", "waiting" (for another process), or "phase"
    key: str
    name: str
    done: int = 0
    total: int | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        # Progress reaches the Python API's callbacks and the terminal: never a secret in a URL.
        object.__setattr__(self, "key", redact_url(self.key))


ProgressCallback = Callable[[ProgressEvent], None]


class _Retry(Exception):
    """An attempt failed in a way worth trying again.

    ``unreachable`` names why the host could not be reached at all ("name not resolved",
    "connection refused", ...): such a failure is tried again at most once.
    """

    def __init__(self, reason: str, retry_after: float | None = None, *, unreachable: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.unreachable = unreachable


@dataclass
class Probe:
    """What a conditional request without a body says about a file."""

    status: int  # 304: not modified; 200: it (may have) changed
    etag: str | None
    last_modified: str | None
    content_length: int | None


class HttpSession:
    """One ``requests.Session`` with liberacion's HTTP policy. Safe to share between threads.

    Documents and probes; ``liberacion.download.files.HttpClient`` adds the file downloads.
    """

    def __init__(
        self,
        config: HttpConfig | None = None,
        *,
        credentials: Credentials | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.config = config or HttpConfig.from_env()
        self.credentials = credentials or Credentials.from_env()
        self.cancel = cancel or threading.Event()
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._unreachable: dict[str, tuple[float, _Retry]] = {}  # netloc -> (when, why), see _retrying
        self._failing: dict[str, float] = {}  # netloc -> when it last failed every attempt (FAILING_MEMORY)
        self._idle: dict[tuple[str, str, int | None], list[Any]] = {}  # kept-alive plain connections

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = _new_session()
            return self._session

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()

    def _spare_host_slot(self, url: str) -> Callable[[], None] | None:
        """Another connection to ``url``'s host if one is free at once (its release), else None."""
        host = urlsplit(url).hostname or ""
        with self._lock:
            slot = self._hosts.setdefault(host, threading.BoundedSemaphore(self.config.per_host))
        return slot.release if slot.acquire(blocking=False) else None

    @contextlib.contextmanager
    def _host_slot(self, url: str) -> Iterator[None]:
        host = urlsplit(url).hostname or ""
        with self._lock:
            slot = self._hosts.setdefault(host, threading.BoundedSemaphore(self.config.per_host))
        while not slot.acquire(timeout=0.2):
            self.check_cancel()
        try:
            yield
        finally:
            slot.release()

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("interrupted; partial downloads are kept and the next run resumes them")

    def pause(self, seconds: float) -> None:
        """Sleep, but raise ``Interrupted`` as soon as the run is cancelled."""
        if self.cancel.wait(seconds):
            self.check_cancel()

    def _open(
        self, url: str, headers: Mapping[str, str], *, stream: bool, timeout: float | None = None, plain: bool = False
    ) -> Any:
        """GET ``url`` following redirects ourselves, so credentials never reach another origin.

        ``plain``: a small request (a listing, a probe) may go over ``http.client`` when nothing
        that requests adds applies to the hop (see ``plain_eligible``); the answer is the same.
        """
        url = without_redacted(url)
        current = url
        read_timeout = min(timeout or self.config.timeout, self.config.timeout)
        for _ in range(self.config.max_redirects + 1):
            check_url(current)
            parts = urlsplit(current)
            host = (parts.hostname or "").lower()
            same_origin = _origin(current) == _origin(url)
            hop = {k: v for k, v in headers.items() if same_origin or k.lower() in _SAFE_HEADERS}
            trusted = sends_credentials(url, current)
            if trusted:
                hop.update(self.credentials.headers_for(host, self.config))
            auth = self.credentials.auth_for(host) if trusted else None
            timeouts = (min(self.config.connect_timeout, read_timeout), read_timeout)
            response = self._plain_hop(current, hop, auth, timeouts) if plain and plain_eligible(current) else None
            if response is None:
                response = self._requests_hop(current, hop, auth, timeouts, stream=stream)
            location = response.headers.get("Location")
            if response.status_code in _REDIRECTS and location:
                response.close()
                current = urljoin(current, location)
                continue
            return response
        raise SourceError(f"{redact(url)} redirected more than {self.config.max_redirects} times; check the URL")

    def _requests_hop(
        self, url: str, headers: dict[str, str], auth: tuple[str, str] | None, timeouts: tuple[float, float],
        *, stream: bool,
    ) -> Any:  # fmt: skip
        import requests

        try:
            return self.session.get(
                url, headers=headers, stream=stream, timeout=timeouts, allow_redirects=False, auth=auth
            )
        except requests.exceptions.SSLError as err:
            raise SourceError(f"TLS check failed for {redact(url)}: {_summary(err)}") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema) as err:
            raise SourceError(f"invalid URL {redact(url)}: {_summary(err)}") from None
        except requests.exceptions.ConnectTimeout:
            raise _silent_host(urlsplit(url).netloc, timeouts[0]) from None
        except requests.exceptions.RequestException as err:
            raise _connection_retry(err, host=urlsplit(url).netloc) from None

    def _plain_hop(
        self, url: str, headers: dict[str, str], auth: tuple[str, str] | None, timeouts: tuple[float, float]
    ) -> _PlainResponse | None:
        """One GET over ``http.client``; None when the answer needs requests (an unknown encoding)."""
        import http.client

        parts = urlsplit(url)
        key = _origin(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "keep-alive", **headers}
        if auth is not None:
            sent["Authorization"] = _basic_auth(*auth)
        for conn, reused in self._plain_connections(key, timeouts[0]):
            try:
                if conn.sock is None:
                    _connect(conn, parts.netloc, timeouts[0])
                conn.sock.settimeout(timeouts[1])
                conn.request("GET", target, headers=sent)
                answer = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as err:
                conn.close()
                if reused:  # the server had closed the idle connection: once more on a new one
                    continue
                raise _connection_retry(err, host=parts.netloc) from None
            except (OSError, http.client.HTTPException) as err:  # first: a TLS verification error is a ValueError too
                conn.close()
                if _is_tls_error(err):
                    raise SourceError(f"TLS check failed for {redact(url)}: {_summary(err)}") from None
                raise _connection_retry(err, host=parts.netloc) from None
            except ValueError:  # a header http.client refuses to send: requests says why
                conn.close()
                return None
            response = _PlainResponse(answer, url, lambda done, c=conn: self._plain_release(key, c, done))
            if response.decodable:
                return response
            response.close()
            return None
        raise AssertionError("unreachable: a new connection is always tried")  # pragma: no cover

    def _plain_connections(
        self, key: tuple[str, str, int | None], connect_timeout: float
    ) -> Iterator[tuple[Any, bool]]:
        """An idle kept-alive connection to ``key``'s origin if there is one, then a new one."""
        with self._lock:
            idle = self._idle.get(key) or []
            conn = idle.pop() if idle else None
        if conn is not None:
            yield conn, True
        yield _new_plain_connection(key, connect_timeout), False

    def _plain_release(self, key: tuple[str, str, int | None], conn: Any, reusable: bool) -> None:
        if reusable:
            with self._lock:
                idle = self._idle.setdefault(key, [])
                if len(idle) < self.config.per_host:
                    idle.append(conn)
                    return
        conn.close()

    def _retrying(self, url: str, attempt: Callable[[], T], *, progress: Callable[[], int] | None = None,
                  on_retry: Callable[[str, float], None] | None = None,
                  resumable: Callable[[], bool] | None = None) -> T:  # fmt: skip
        """Run ``attempt`` until it succeeds, retrying transient failures with backoff and jitter.

        ``progress`` reports bytes safely on disk: an attempt that moved it forward resets the
        failure count, so a long download over a connection that drops now and then completes.
        ``resumable`` says whether the next run can continue those bytes (see ``kept_note``).
        """
        failures = attempts = unreachable = 0
        best = first = progress() if progress else 0
        netloc = urlsplit(url).netloc
        began = time.monotonic()
        failing = self._failing_since(netloc)
        retries = 0 if failing is not None else self.config.retries
        while True:
            self.check_cancel()
            attempts += 1
            try:
                self._check_reachable(netloc)
                result = attempt()
            except _Retry as retry:
                reached = progress() if progress else 0
                if reached > best:
                    best, failures = reached, 0
                else:
                    failures += 1
                if retry.unreachable:
                    # A name that does not resolve or a port that refuses does not heal in seconds:
                    # one more try (a resolver's hiccup), then say so plainly. A connection left
                    # unanswered for the whole connect timeout had the kernel's own retries within
                    # it: a second timeout would only double the wait (offline stays under 20 s).
                    unreachable += 1 if retry.unreachable != NO_ANSWER else 2
                    if unreachable > 1 or self._recently_unreachable(netloc) or not self.config.retries:
                        self._mark_unreachable(netloc, retry)
                        raise _unreachable_error(retry) from None
                if failures > retries or attempts >= MAX_ATTEMPTS:
                    self._mark_failing(netloc, moved=best > first)
                    msg = f"{redact(url)} failed after {attempts} attempt{'s' if attempts > 1 else ''}: {retry.reason}"
                    if failing is not None and attempts == 1:
                        msg = (
                            f"{redact(url)} failed: {retry.reason} (not retried: {netloc} failed every attempt"
                            " for another file moments before; try again later)"
                        )
                    raise SourceError(msg + kept_note(reached, resumable)) from None
                self._refuse_long_wait(url, retry, began, kept_note(reached, resumable) if reached else "")
                delay = self._delay(failures, retry.retry_after)
                if retry.unreachable:
                    delay = min(delay, UNREACHABLE_RETRY_DELAY)
                if on_retry:
                    on_retry(retry_message(failures + 1, retries + 1, delay, retry.reason), delay)
                self.pause(delay)
            else:
                self._lift_failing(netloc)
                return result

    def _refuse_long_wait(self, url: str, retry: _Retry, began: float, note: str) -> None:
        """A server asking to come back later than liberacion waits (``retry_after_max``, or what is
        left of the download's deadline) fails at once: waiting the cap and asking again only
        repeats the answer, silently, for many minutes. ``note`` says what became of a partial file."""
        wanted = retry.retry_after
        if wanted is None:
            return
        left = self.config.deadline - (time.monotonic() - began) if self.config.deadline else None
        if wanted <= self.config.retry_after_max and (left is None or wanted <= left):
            return
        limit = (
            f"longer than liberacion waits ({_duration(self.config.retry_after_max)})"
            if wanted > self.config.retry_after_max
            else f"beyond what is left of the download's deadline ({DEADLINE_ENV})"
        )
        raise SourceError(
            f"{redact(url)} answered {retry.reason} and asks to retry after {_duration(wanted, about=True)} "
            f"(Retry-After), {limit}{note or '; try again then'}"
        )

    def _check_reachable(self, netloc: str) -> None:
        """Fail at once for a host found unreachable moments ago: it is not tried again so soon."""
        seen = self._recently_unreachable(netloc)
        if seen is not None:
            raise _Retry(seen.reason, unreachable=seen.unreachable)

    def _recently_unreachable(self, netloc: str) -> _Retry | None:
        with self._lock:
            seen = self._unreachable.get(netloc)
        if seen is None or time.monotonic() - seen[0] >= UNREACHABLE_MEMORY:
            return None
        return seen[1]

    def _failing_since(self, netloc: str) -> float | None:
        with self._lock:
            when = self._failing.get(netloc)
        return when if when is not None and time.monotonic() - when < FAILING_MEMORY else None

    def _mark_failing(self, netloc: str, *, moved: bool) -> None:
        if not moved:  # a host that sent some of the file is up, and flaky: the next file retries
            with self._lock:
                self._failing[netloc] = time.monotonic()

    def _lift_failing(self, netloc: str) -> None:
        if self._failing:
            with self._lock:
                self._failing.pop(netloc, None)

    def _mark_unreachable(self, netloc: str, why: _Retry) -> None:
        with self._lock:
            self._unreachable[netloc] = (time.monotonic(), why)

    def _delay(self, failures: int, retry_after: float | None) -> float:
        base = min(self.config.backoff * (2 ** max(failures - 1, 0)), self.config.backoff_max)
        backoff = base / 2 + random.uniform(0, base / 2)  # jitter: parallel clients spread out
        if retry_after is not None:
            # Retry-After: 0, or a date already past, is no reason to hammer a struggling server
            return min(max(retry_after, backoff), self.config.retry_after_max)
        return backoff

    # -- documents ---------------------------------------------------------------------------

    def fetch_document(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
        progress: ProgressCallback | None = None,
    ) -> Document:
        """GET a listing or small document into memory (gzip accepted), with retries.

        ``progress`` hears a ``retry`` event before each wait to try again.
        """
        request_headers = {"Accept-Encoding": "gzip, deflate", **(headers or {})}
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified

        config = self.config
        pace = _Pace(url, config.min_rate, config.min_rate_seconds, config.deadline, partial=False)

        def attempt() -> Document:
            pace.check_deadline(0)
            with self._host_slot(url):
                response = self._open(url, request_headers, stream=True, timeout=timeout, plain=True)
                with response:
                    _raise_for_status(response, url)
                    content = b"" if response.status_code == 304 else _read_all(response, pace)
                    return Document(
                        status=response.status_code,
                        content=content,
                        url=response.url,
                        etag=response.headers.get("ETag"),
                        last_modified=response.headers.get("Last-Modified"),
                        content_type=response.headers.get("Content-Type"),
                    )

        return self._retrying(url, attempt, on_retry=_retry_reporter(url, progress))

    def probe(
        self, url: str, validators: Validators | None = None, *, progress: ProgressCallback | None = None
    ) -> Probe:
        """A conditional GET whose body is never read: the cheapest reliable "did it change?"."""
        headers = {"Accept-Encoding": "identity"}
        if validators is not None and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators is not None and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified

        def attempt() -> Probe:
            with self._host_slot(url):
                response = self._open(url, headers, stream=True, plain=True)
                with response:
                    _raise_for_status(response, url)
                    length = response.headers.get("Content-Length")
                    return Probe(
                        status=response.status_code,
                        etag=response.headers.get("ETag"),
                        last_modified=response.headers.get("Last-Modified"),
                        content_length=int(length) if length and length.isdigit() else None,
                    )

        return self._retrying(url, attempt, on_retry=_retry_reporter(url, progress))


class _Pace:
    """The slowest a download may go (curl's ``--speed-limit``/``--speed-time``), and its deadline.

    The stall timeout only catches a silent connection; a server dripping a byte at a time never
    stalls, so the average rate over each window of ``seconds`` is checked too.
    """

    def __init__(self, url: str, rate: float, seconds: float, deadline: float, *, partial: bool = True) -> None:
        self.url = url
        self.partial = partial  # a file download keeps what arrived; a document does not
        self.resumable: Callable[[], bool] | None = None  # whether the next run can continue it (kept_note)
        self.rate = rate
        self.seconds = seconds
        self.deadline = deadline
        self.began = time.monotonic()
        self._window = (self.began, 0)

    def start(self, size: int) -> None:
        """A new connection: its window starts now (the time before it is the retries' business)."""
        self._window = (time.monotonic(), size)

    def check_deadline(self, size: int) -> None:
        if self.deadline and time.monotonic() - self.began > self.deadline:
            raise SourceError(
                f"{redact(self.url)} took longer than {self.deadline:g} s (LIBERACION_DOWNLOAD_DEADLINE)"
                + self._note(size)
            )

    def check(self, size: int) -> None:
        now = time.monotonic()
        self.check_deadline(size)
        since, then = self._window
        if now - since < self.seconds:
            return
        rate = (size - then) / (now - since)
        if self.rate and rate < self.rate:
            raise SourceError(
                f"{redact(self.url)} sent {rate:,.0f} bytes/s over the last {now - since:.0f} s, below the "
                f"minimum of {self.rate:,.0f} (LIBERACION_MIN_RATE, LIBERACION_MIN_RATE_SECONDS)" + self._note(size)
            )
        self._window = (now, size)

    def _note(self, size: int) -> str:
        return kept_note(size if self.partial else 0, self.resumable)


def kept_note(size: int, resumable: Callable[[], bool] | None) -> str:
    """The end of a failed download's message: what becomes of the ``size`` bytes it got.

    A partial file resumes only with a validator (ETag or Last-Modified) to send in If-Range;
    without one the next run starts from byte 0, and saying otherwise would be a false promise.
    """
    if not size:
        return "; try again later"
    if resumable is None or resumable():
        return "; the partial download is kept and the next run resumes it"
    return "; the server sent no ETag or Last-Modified to resume by, so the next run starts again"


def _duration(seconds: float, *, about: bool = False) -> str:
    """A wait, rounded, in the unit people think of it in: ``90 s``, ``5 min``, ``28 h``, ``3 days``
    (with ``about``: ``about 28 h``); beyond two years, ``years`` (a server's 40-digit Retry-After)."""
    if seconds >= 2 * 365 * 86400:
        return "years"
    return f"about {_rounded(seconds)}" if about else _rounded(seconds)


def _rounded(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _retry_reporter(url: str, progress: ProgressCallback | None) -> Callable[[str, float], None] | None:
    if progress is None:
        return None
    name = urlsplit(url).netloc

    def on_retry(message: str, delay: float) -> None:
        progress(ProgressEvent("retry", url, name, message=message))

    return on_retry


# -- module-level helpers ----------------------------------------------------------------------

_default: HttpSession | None = None
_default_lock = threading.Lock()


def default_client() -> HttpSession:
    """The process-wide client (created on first use, configured from the environment)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = HttpSession()
        return _default


def fetch_document(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    progress: ProgressCallback | None = None,
) -> Document:
    """GET a listing or small document with liberacion's HTTP policy; 304 when the validators match."""
    return default_client().fetch_document(
        url, etag=etag, last_modified=last_modified, headers=headers, timeout=timeout, progress=progress
    )


def _new_session() -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(pool_connections=16, pool_maxsize=8, max_retries=0)  # retries are ours
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# -- the plain transport ------------------------------------------------------------------------
# Listings and probes are small GETs that mostly answer 304: importing requests costs more than
# such a request (50-70 ms, more than a whole unchanged discover). They go over http.client, the
# layer requests itself sends with, when nothing requests adds applies to the hop: no proxy from
# the environment, no .netrc entry, no user info in the URL, a URL it would send as it is; TLS is
# verified against the same CA bundle. Redirects, credentials, timeouts, retries and error messages
# stay those of ``_open`` and ``_retrying`` above; a Content-Encoding other than gzip or identity
# is asked again through requests.

_URL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!#$&'()*+,/:;=?@[]%")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
_CA_BUNDLE_ENVS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def plain_eligible(url: str) -> bool:
    """Whether requests would send a GET of ``url`` exactly as ``http.client`` does."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or parts.username is not None or not host.isascii():
        return False
    try:
        parts.port  # noqa: B018 - an invalid port is requests' error to report
    except ValueError:
        return False
    bundle = _ca_bundle()
    if parts.scheme == "https" and bundle and not (os.path.isfile(bundle) or os.path.isdir(bundle)):
        return False  # requests' error to report
    return _sent_as_is(parts.path + parts.query) and not _proxy_in_env() and not _netrc_entry(host)


def _sent_as_is(text: str) -> bool:
    """No character requests would quote, and no escape of a character it would unquote."""
    if not set(text) <= _URL_CHARS:
        return False
    for i in (i for i, c in enumerate(text) if c == "%"):
        escape = text[i + 1 : i + 3]
        if len(escape) < 2 or not set(escape) <= _HEX or chr(int(escape, 16)) in _UNRESERVED:
            return False
    return True


def _proxy_in_env() -> bool:
    """Any proxy variable set (requests would weigh it against no_proxy: it decides then)."""
    return any(value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
               for name, value in os.environ.items())  # fmt: skip


def _netrc_entry(host: str) -> bool:
    """Whether requests would send .netrc credentials to ``host`` (an unreadable file counts)."""
    named = os.environ.get("NETRC")
    candidates = [named] if named else ["~/.netrc", "~/_netrc"]
    for candidate in candidates:
        path = os.path.expanduser(candidate)
        if os.path.exists(path):
            import netrc

            try:
                return netrc.netrc(path).authenticators(host) is not None
            except (OSError, netrc.NetrcParseError):
                return True
    return False


def _basic_auth(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode("latin-1")).decode("ascii")


def _new_plain_connection(origin: tuple[str, str, int | None], connect_timeout: float) -> Any:
    import http.client

    scheme, host, port = origin
    if scheme == "https":
        context = _tls_context(_ca_bundle())
        return http.client.HTTPSConnection(host, port, timeout=connect_timeout, context=context)
    return http.client.HTTPConnection(host, port, timeout=connect_timeout)


def _ca_bundle() -> str | None:
    """The CA bundle requests would verify with: REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, else certifi's."""
    return next((os.environ[name] for name in _CA_BUNDLE_ENVS if os.environ.get(name)), None)


_tls: dict[str | None, Any] = {}


def _tls_context(bundle: str | None) -> Any:
    """Verification as requests does it: the bundle (a file or a directory of certificates), else
    certifi's; host names checked."""
    with _default_lock:
        if bundle not in _tls:
            import ssl

            if bundle is None:
                import certifi

                _tls[bundle] = ssl.create_default_context(cafile=certifi.where())
            elif os.path.isdir(bundle):
                _tls[bundle] = ssl.create_default_context(capath=bundle)
            else:
                _tls[bundle] = ssl.create_default_context(cafile=bundle)
        return _tls[bundle]


def _is_tls_error(err: BaseException) -> bool:
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(err, ssl.SSLError)


class _PlainResponse:
    """An ``http.client`` answer with the parts of a requests response that liberacion reads:
    ``status_code``, ``reason``, ``headers``, ``url`` and ``raw.read1``/``raw.read`` decoding gzip."""

    def __init__(self, answer: Any, url: str, release: Callable[[bool], None]) -> None:
        import zlib

        self._answer = answer
        self._release = release
        self.status_code: int = answer.status
        self.reason: str = answer.reason
        self.headers = answer.msg  # case-insensitive get(), as requests' headers
        self.url = url
        self.raw = self
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        self.decodable = encoding in ("identity", "gzip", "x-gzip")
        self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding in ("gzip", "x-gzip") else None
        self._pending = b""
        self._ended = answer.length == 0  # 304, 204, an empty body
        self._closed = False

    def read1(self, amount: int, decode_content: bool = True) -> bytes:
        """Up to ``amount`` decoded bytes from at most one socket read; b"" at the end."""
        while True:
            data = self._pending or self._answer.read1(amount)
            self._pending = b""
            if not data:
                self._end()
                return self._decoder.flush() if self._decoder is not None else b""
            if self._decoder is None:
                return data
            # At most ``amount`` out of each step: a small gzip that expands hugely is caught early.
            out = self._decoder.decompress(data, amount)
            self._pending = self._decoder.unconsumed_tail
            if out:
                return out

    def read(self, amount: int, decode_content: bool = True) -> bytes:
        return self.read1(amount, decode_content)

    def _end(self) -> None:
        import http.client

        if self._answer.length:  # Content-Length promised more than came
            raise http.client.IncompleteRead(b"", self._answer.length)
        self._ended = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._answer.close()
        self._release(self._ended and not self._answer.will_close)

    def __enter__(self) -> _PlainResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_url(url: str) -> None:
    """Refuse anything but http(s): URLs from remote listings must never read local files."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        scheme = parts.scheme or "none"
        raise SourceError(f"refusing {redact(url)!r}: only http:// and https:// URLs are fetched (scheme {scheme})")


def redact(url: str) -> str:
    """The URL without user info or secret query parameters (``api_key=***``), for messages."""
    return redact_url(url)


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: what must stay the same for credentials to follow a redirect."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def sends_credentials(url: str, hop: str) -> bool:
    """Whether a request to ``hop``, reached from ``url`` (perhaps by redirects), may carry tokens.

    Only to the origin the user's URL named (same scheme, host and port: another port of the same
    host may be another program), and only over https, where nobody on the way can read them;
    plain http is allowed to the loopback address alone, which never leaves the machine.
    """
    origin = _origin(hop)
    if origin != _origin(url):
        return False
    return origin[0] == "https" or origin[1] in _LOOPBACK


def _raise_for_status(response: Any, url: str) -> None:
    status = response.status_code
    if status < 300 or status == 304:
        return
    reason = f"HTTP {status} {response.reason or ''}".rstrip()
    if status in (408, 429) or (status >= 500 and status not in (501, 505)):
        raise _Retry(reason, _retry_after(response.headers.get("Retry-After")))
    body = _peek(response)
    snippet = _html_title(body) if looks_like_html(body) else _snippet(body)
    msg = f"{redact(url)} answered {reason}{f': {snippet}' if snippet else ''}"
    if status in (404, 410):
        msg += "; the file may have moved or been retired: check the URL"
        raise Gone(msg)
    elif status in (401, 403):
        msg += "; the server refused access (an API token may be needed, see the README)"
    else:
        msg += "; check the URL"
    raise SourceError(msg)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # asctime's form names no zone; every HTTP-date is GMT (RFC 9110 §5.6.7)
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def _read_all(response: Any, pace: _Pace) -> bytes:
    """The whole (decompressed) body, refused beyond ``LIBERACION_MAX_LISTING_BYTES``: a listing
    that never ends, or a small gzip that expands hugely, must not take all the memory. A listing
    that drips is held to the minimum rate and the deadline of downloads."""
    from liberacion.limits import MAX_LISTING_ENV, max_listing_bytes

    limit = max_listing_bytes()
    body = bytearray()
    pace.start(0)
    try:
        # read1: whatever one socket read brings, so the rate is checked while bytes drip in.
        while chunk := response.raw.read1(1 << 20, decode_content=True):
            body += chunk
            pace.check(len(body))
            if len(body) > limit:
                raise SourceError(
                    f"{redact(response.url)}: the document is larger than {limit:,} bytes; refusing it"
                    f" (a larger listing needs {MAX_LISTING_ENV})"
                )
    except _transport_errors(response) as err:
        raise _read_failure(err, response, response.url) from None
    return bytes(body)


def _transport_errors(response: Any) -> tuple[type[BaseException], ...]:
    """What reading ``response``'s body may raise when the connection fails."""
    if isinstance(response, _PlainResponse):
        import http.client
        import zlib

        return (http.client.HTTPException, zlib.error, OSError)
    import requests
    import urllib3

    return (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError)


def _peek(response: Any) -> bytes:
    """The first bytes of an error response's body, for the message (never more)."""
    try:
        return response.raw.read(512, decode_content=True) or b""
    except Exception:  # an error body is a courtesy: failing to read it must not hide the status
        return b""


# Why a host cannot be reached at all, by the errno of the socket error, and what to try next.
_UNREACHABLE = {
    errno.ECONNREFUSED: "connection refused",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETDOWN: "network down",
    errno.EHOSTDOWN: "host down",
}
NO_ANSWER = "no answer to the connection"
_UNREACHABLE_HINTS = {
    "name not resolved": "no network, or a misspelt host name?",
    "connection refused": "is the server down, or the port wrong?",
    NO_ANSWER: "no network, or a firewall in the way?",
}


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err`` and every exception behind it: causes, contexts and urllib3's wrapped ``reason``."""
    seen: set[int] = set()
    stack: list[Any] = [err]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend([current.__context__, current.__cause__, getattr(current, "reason", None), *current.args])


def _unreachable_reason(err: BaseException) -> str | None:
    """Why the host could not be reached at all ("name not resolved", ...), or None."""
    for cause in _causes(err):
        if isinstance(cause, socket.gaierror) or type(cause).__name__ == "NameResolutionError":
            return "name not resolved"
    for cause in _causes(err):
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE:
            return _UNREACHABLE[cause.errno]
    return None


def _connection_retry(err: BaseException, *, host: str) -> _Retry:
    """A failed request as a retry: an unreachable host (tried once more at most) or a dropped connection."""
    why = _unreachable_reason(err)
    if why:
        return _Retry(f"cannot reach {host} ({why})", unreachable=why)
    return _Retry(_connection_reason(err))


def _connect(conn: Any, host: str, seconds: float) -> None:
    """Open ``conn``; a connection not even answered (the TLS handshake included) is a host that
    cannot be reached, not a stall: it is tried once more at most, as a refused one is."""
    try:
        conn.connect()
    except TimeoutError:
        conn.close()
        raise _silent_host(host, seconds) from None


def _silent_host(host: str, seconds: float) -> _Retry:
    """A host that did not answer the connection within the connect timeout: behind a firewall that
    drops packets, or no route out. Retried like a stalled download, it cost six connect timeouts
    and the backoff between them (two minutes), and said "the connection stalled"."""
    return _Retry(f"cannot reach {host} ({NO_ANSWER} in {seconds:g} s)", unreachable=NO_ANSWER)


def _unreachable_error(retry: _Retry) -> Unreachable:
    hint = _UNREACHABLE_HINTS.get(retry.unreachable or "", "no network?")
    return Unreachable(f"{retry.reason}: {hint}")


def _read_failure(err: BaseException, response: Any, url: str) -> Exception:
    """Reading a body failed: a connection problem is worth another try; a body that is not what
    its Content-Encoding says (not gzip at all, a corrupt stream) is the server's doing, and the
    same bytes come again on every try, so it fails at once."""
    import zlib

    causes = list(_causes(err))
    if not any(isinstance(c, zlib.error) or type(c).__name__ == "DecodeError" for c in causes):
        return _Retry(_connection_reason(err))
    encoding = (response.headers.get("Content-Encoding") or "").strip() or "none"
    detail = next((str(c).rsplit(": ", 1)[-1] for c in causes if isinstance(c, zlib.error)), "")
    return SourceError(
        f"{redact(url)}: the body does not decode as its Content-Encoding ({encoding}) says"
        f"{f' ({detail})' if detail else ''}; a fault of the server that retrying does not mend: "
        "try again later, or tell its publisher"
    )


def _connection_reason(err: BaseException) -> str:
    """Why a connection failed, in plain words: never the library's repr of the exception."""
    causes = list(_causes(err))
    names = " ".join(type(c).__name__.lower() for c in causes)
    if any(isinstance(c, (TimeoutError, socket.timeout)) for c in causes) or "timeout" in names:
        return "the connection stalled (no data within the read timeout)"
    if any(n in names for n in ("incompleteread", "chunkedencodingerror", "protocolerror", "remotedisconnected")):
        return "the connection closed before the whole body arrived"
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return "the connection was reset by the server"
    why = _unreachable_reason(err)
    if why:
        return why
    return f"connection failed ({_summary(err)})"


def _summary(err: BaseException) -> str:
    """An exception as a short phrase: the innermost system error's text, or its class name.

    urllib3's messages embed reprs of pools and connections: they are summarised, not quoted.
    """
    for cause in reversed(list(_causes(err))):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        verify = getattr(cause, "verify_message", None) or getattr(cause, "reason", None)
        if isinstance(verify, str) and verify:
            return verify.replace("_", " ").lower() if verify.isupper() else verify
    text = " ".join(str(err).split())
    if text and "(" not in text and len(text) <= 160:
        return text
    return type(err).__name__


def retry_message(attempt: int, attempts: int, delay: float, reason: str) -> str:
    """What the progress line says while waiting to try again: ``retry 2/6 in 4 s: HTTP 503``."""
    return f"retry {attempt}/{attempts} in {delay:.0f} s: {reason}"


def _snippet(data: bytes, limit: int = 160) -> str:
    text = data[:SNIFF_BYTES].decode("utf-8", errors="replace").lstrip("\ufeff")
    return shorten(text, limit)


def _html_title(body: bytes) -> str:
    """The <title> of an HTML error page: the useful part of it."""
    match = re.search(rb"<title[^>]*>(.*?)</title>", body, re.I | re.S)
    return _snippet(match.group(1)) if match else ""


def looks_like_html(head: bytes) -> bool:
    start = head[:SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        start.startswith(b"<!--") and b"<html" in start
    )


def _refuse_html(head: bytes, response: Any, url: str) -> None:
    ctype = response.headers.get("Content-Type") or "no Content-Type"
    raise SourceError(
        f"{redact(url)} sent an HTML page instead of data (HTTP {response.status_code}, {ctype}): "
        f"{_snippet(head)!r}; open the URL in a browser to see what the server says"
    )


def _refuse_json_error(path: Path, size: int, url: str) -> None:
    """A small JSON object such as {"error": ...} where a data file was expected is an error."""
    if size > JSON_ERROR_MAX:
        return
    data = path.read_bytes()
    if is_json_error(data):
        path.unlink(missing_ok=True)
        raise SourceError(f"{redact(url)} sent an error instead of data: {_snippet(data)!r}")
