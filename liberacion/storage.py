"""Where the lake lives: a local directory or an object store (``s3://bucket/prefix``, and ``gs://``
or ``abfs://`` where pyarrow has the filesystem), reached through pyarrow's filesystems.

pyarrow.fs was chosen over fsspec and obstore: it is already a dependency, its S3 client is the AWS
C++ SDK (multipart uploads on several threads, the standard credential chain, ``AWS_ENDPOINT_URL``
and ``AWS_REGION`` honoured as every AWS tool does), and pyiceberg's default FileIO is the same
library, so liberacion and its Iceberg catalog share one view of the store. DuckDB, which cannot
download its ``httpfs`` extension everywhere, reads the same filesystem through a small fsspec
wrapper registered on its connection.

State that belongs to one machine (downloads in progress, locks, URL validators) never goes here:
it stays in the home.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from liberacion.errors import (
    ConfigError,
    LiberacionError,
    NoBucket,
    StorageError,
    Unreachable,
    UsageError,
    one_line,
)

if TYPE_CHECKING:
    from pyarrow import fs as pafs

LAKE_ENV = "LIBERACION_LAKE"
REMOTE_SCHEMES = ("s3", "gs", "abfs")


@dataclass(frozen=True)
class LakeLocation:
    """The root of a lake: ``uri`` as the user gave it (normalised), ``scheme`` ``file`` for a local
    directory, and ``root``, the path inside the filesystem (``bucket/prefix`` for a store)."""

    uri: str
    scheme: str
    root: str

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def uri_of(self, *parts: str) -> str:
        """The URI of a path under the lake's root (what Iceberg metadata and DuckDB are given)."""
        tail = "/".join(p.strip("/") for p in parts if p)
        if self.is_local:
            return str(Path(self.root, tail)) if tail else self.root
        base = f"{self.scheme}://{self.root.rstrip('/')}"
        return f"{base}/{tail}" if tail else base

    def path_of(self, *parts: str) -> str:
        """The path of ``parts`` inside the filesystem (what pyarrow.fs calls take)."""
        tail = "/".join(p.strip("/") for p in parts if p)
        return f"{self.root.rstrip('/')}/{tail}" if tail else self.root

    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem of this location (a new client: cheap, and safe across forks)."""
        from pyarrow import fs

        if self.is_local:
            return fs.LocalFileSystem()
        try:
            if self.scheme == "s3":
                return _s3_filesystem()
            filesystem, _path = fs.FileSystem.from_uri(self.uri)
        except (ValueError, OSError) as err:
            raise ConfigError(f"cannot use the lake {self.uri}: {one_line(err, lines=1)}") from None
        return filesystem


# Throttling (503 SlowDown) and dropped connections are retried with backoff by the AWS SDK;
# more attempts than its default 3, because a cron job has time and a failed publish costs a rerun.
S3_ATTEMPTS = 10
CHECKSUM_ENV = "AWS_REQUEST_CHECKSUM_CALCULATION"  # the standard AWS setting; the user's value wins


def _s3_settings() -> tuple[str | None, str | None]:
    """The endpoint and region the standard AWS settings name (None: the SDK's default)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    return endpoint, region


def _s3_filesystem() -> pafs.FileSystem:
    """pyarrow's S3 client with the standard AWS settings (the credential chain is the SDK's own)."""
    from pyarrow import fs

    endpoint, region = _s3_settings()
    _check_reachable(endpoint, region)
    options: dict[str, Any] = {"retry_strategy": fs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS)}
    if endpoint:
        options["endpoint_override"] = endpoint
    if region:
        options["region"] = region
    if not (endpoint or "").lower().startswith("http://") or os.environ.get(CHECKSUM_ENV):
        return fs.S3FileSystem(**options)
    # Over plain http the SDK signs each part's SHA-256, which covers every byte; the optional
    # trailing checksum would only repeat it, as an aws-chunked body that S3-compatible servers
    # decode slowly (a 1 GB publish to moto took 2.1x boto3's time with it, 1.24x without). The
    # SDK reads the setting when the client is made, so the environment is changed only for that.
    os.environ[CHECKSUM_ENV] = "when_required"
    try:
        return fs.S3FileSystem(**options)
    finally:
        os.environ.pop(CHECKSUM_ENV, None)


def claim_s3_folder(location: LakeLocation, folder: str, name: str, body: bytes) -> bool:
    """Write the small object ``name`` into ``folder`` (``bucket/prefix``) unless one of that name is
    there already: False when it is (another writer holds the folder). S3's conditional write
    (``If-None-Match: *``) makes this atomic; a store that does not know it is checked first
    instead, which leaves a narrow race."""
    from botocore.exceptions import ClientError

    bucket, _, prefix = folder.partition("/")
    key = f"{prefix}/{name}"
    with _s3_client(location, "writing to") as client:
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):  # the second: a write in flight
                return False
            if code not in ("NotImplemented", "InvalidArgument"):
                raise
            if client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount", 0):
                return False
            client.put_object(Bucket=bucket, Key=key, Body=body)
    return True


def put_s3_files(location: LakeLocation, folder: str, files: Sequence[Path]) -> None:
    """Upload ``files`` into ``folder`` (``bucket/prefix`` of an S3 lake) with boto3, one file
    after the other (each in parts on boto3's threads).

    Why boto3 and not pyarrow's client here: boto3 declares a CRC32 checksum for every part and for
    the whole upload, so the store verifies each part as it lands and assembles the object from the
    parts' checksums. pyarrow's S3 client cannot declare one (it passes only a few headers), and a
    store then has to re-read the whole object when the upload completes to give it a checksum of its
    own: publishing 1 GB to moto took 1.3-1.6x boto3's time that way (``benchmarks/upload.py``, see
    NOTES). Everything else (reads, listings, deletes, pyiceberg's metadata) stays on pyarrow."""
    bucket, _, prefix = folder.partition("/")
    with _s3_client(location, "writing to") as client:
        for path in files:
            client.upload_file(str(path), bucket, f"{prefix}/{path.name}")


def abort_s3_uploads(location: LakeLocation, folders: Sequence[str]) -> None:
    """Abort the unfinished multipart uploads under ``folders`` (``bucket/prefix`` paths). A run
    killed mid-upload leaves them: invisible as objects, but the store keeps (and bills) their
    parts."""
    with _s3_client(location, "deleting from") as client:
        for folder in folders:
            bucket, _, prefix = folder.partition("/")
            pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=f"{prefix}/")
            for upload in (upload for page in pages for upload in page.get("Uploads", [])):
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


@contextmanager
def _s3_client(location: LakeLocation, doing: str) -> Iterator[Any]:
    """boto3's S3 client with the settings pyarrow's is given; its failures as liberacion's errors."""
    import boto3
    from boto3.exceptions import Boto3Error
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    endpoint, region = _s3_settings()
    _check_reachable(endpoint, region)
    try:
        config = Config(retries={"max_attempts": S3_ATTEMPTS, "mode": "standard"})
        yield boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)
    except (BotoCoreError, ClientError, Boto3Error) as err:
        bucket = location.root.split("/", 1)[0]
        known = _store_failure(str(err), location.uri, bucket, doing)
        if known is not None:
            raise known from None
        raise StorageError(f"the store failed while {doing} {location.uri}: {one_line(err, lines=1)}") from None


# Store endpoints (host, port) this process has reached, and when a probe last found each one up.
_REACHED: dict[tuple[str, int], float] = {}
PROBE_SECONDS = 5.0
# A store reached before is probed again before a request once its last probe is this old: one
# that died mid-run would otherwise cost the SDK's retries, a minute and a half without a word.
REPROBE_SECONDS = 1.0
# Probes of a store that stopped answering, paced as the download retries are (LIBERACION_BACKOFF,
# doubling): with the default pace, about a minute and a half, as the SDK's own retries.
STORE_TRIES = 8
STORE_DELAY_MAX = 30.0
BACKOFF_ENV = "LIBERACION_BACKOFF"
GIVEN_UP_SECONDS = 30.0  # a store given up on fails at once for this long: its retries are not repeated
# Told of each retry (the store, the attempt coming, of how many, the delay before it, why): fetch
# shows them as it shows a download's retries.
StoreRetry = Callable[[str, int, int, float, str], None]
_RETRY_LISTENERS: list[StoreRetry] = []
_GIVEN_UP: dict[tuple[str, int], float] = {}
_WAITING = threading.Lock()  # one worker retries a store; the others wait for its answer


@contextmanager
def reporting_store_retries(listener: StoreRetry) -> Iterator[None]:
    """While the block runs, ``listener`` hears of each retry of a store that stopped answering."""
    _RETRY_LISTENERS.append(listener)
    try:
        yield
    finally:
        _RETRY_LISTENERS.remove(listener)


def _check_reachable(endpoint: str | None, region: str | None) -> None:
    """One small HTTP request to the store before the first request of a run: the SDK's retries
    would spend a minute and a half on a store that cannot be reached at all (a wrong endpoint, no
    network) or that takes connections and never answers (a wrong port, a firewall that holds
    them). A store reached before is probed again (a TCP connection, at most once a second) and,
    when it stopped answering, retried here, where each retry can be said. Behind a proxy the store
    is not ours to reach directly, so nothing is checked."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return
    parts = urlsplit(endpoint if endpoint and "://" in endpoint else f"https://{endpoint or ''}")
    host = parts.hostname or (f"s3.{region}.amazonaws.com" if region else "s3.amazonaws.com")
    port = parts.port or (80 if parts.scheme == "http" else 443)
    key, where = (host, port), endpoint or f"{host}:{port}"
    last = _REACHED.get(key)
    if last is not None and time.monotonic() - last < REPROBE_SECONDS:
        return
    if last is None:
        why = no_answer(host, port, tls=parts.scheme != "http", seconds=PROBE_SECONDS)
        if why is not None:
            raise Unreachable(f"cannot reach the store {where} ({why}): {_store_hint(why)}") from None
        _REACHED[key] = time.monotonic()
        return
    err = _probe(key)
    if err is None:
        _REACHED[key] = time.monotonic()
    else:
        _wait_for_store(key, where, _why(err))


# A request any S3 server answers at once (403, 405, a redirect): only that it answers counts.
_PROBE_REQUEST = "HEAD / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: liberacion\r\nConnection: close\r\n\r\n"


def no_answer(host: str, port: int, *, tls: bool, seconds: float) -> str | None:
    """Why ``host:port`` does not answer an HTTP request within about ``seconds``, in plain words;
    None when it answers anything at all. A TCP connection alone is not enough: a port that
    accepts and stays silent (a wrong port, a firewall that holds connections) cost the AWS SDK's
    ten attempts, two minutes, and pyiceberg's REST client, which sets no timeout, for ever. A TLS
    or protocol error is an answer too: the client, which knows its settings, says it better."""
    import socket
    import ssl

    try:
        sock = socket.create_connection((host, port), timeout=seconds)
    except socket.gaierror:
        return NOT_RESOLVED
    except TimeoutError:
        return f"no answer to the connection in {seconds:g} s"
    except OSError as err:
        return _why(err)
    try:
        if tls:  # nothing secret is sent: only whether the server speaks is checked
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=host)
        sock.sendall(_PROBE_REQUEST.format(host=host).encode("ascii", "replace"))
        sock.recv(1)
    except TimeoutError:
        return f"{SILENT} in {seconds:g} s"
    except OSError:  # ssl.SSLError too: reset, closed, a TLS mismatch are answers, not silence
        return None
    finally:
        sock.close()
    return None


NOT_RESOLVED = "name not resolved"
SILENT = "it takes connections but sent no answer"


def _store_hint(why: str) -> str:
    """What to check, for a store that did not answer the first probe for ``why``."""
    if why.startswith(SILENT):
        return "is AWS_ENDPOINT_URL the store's own address and port, and is the store up?"
    if why == "connection refused":
        return "is the store down, or the port in AWS_ENDPOINT_URL wrong?"
    return _NO_NETWORK_HINT


def _probe(key: tuple[str, int], seconds: float = PROBE_SECONDS) -> OSError | None:
    """Why ``key`` (host, port) takes no TCP connection, or None when it does."""
    import socket

    try:
        socket.create_connection(key, timeout=seconds).close()
    except OSError as err:
        return err
    return None


def no_connection(host: str, port: int, *, seconds: float) -> str | None:
    """Why ``host:port`` takes no TCP connection, in plain words (``connection refused``); None
    when it does. For servers that speak no HTTP (a SQL catalog's database); see ``no_answer``."""
    err = _probe((host, port), seconds)
    return None if err is None else _why(err)


def _why(err: OSError) -> str:
    """A failed probe in plain words: ``connection refused``, ``timed out``."""
    text = err.strerror or str(err) or type(err).__name__
    return text[:1].lower() + text[1:]


def _wait_for_store(key: tuple[str, int], where: str, why: str) -> None:
    """A store that answered earlier in the run and does not now (restarted, a network outage):
    probed again with backoff, each retry told to the listeners, until it answers, or
    ``Unreachable`` once ``STORE_TRIES`` probes have failed."""
    with _WAITING:
        began = time.monotonic()
        if began - _REACHED[key] < REPROBE_SECONDS:
            return  # it came back while another worker retried it
        if began - _GIVEN_UP.get(key, -GIVEN_UP_SECONDS) < GIVEN_UP_SECONDS:
            raise Unreachable(_gone_message(where, why, 0.0))
        for attempt in range(2, STORE_TRIES + 1):
            delay = min(_first_delay() * 2 ** (attempt - 2), STORE_DELAY_MAX)
            for listener in list(_RETRY_LISTENERS):
                listener(where, attempt, STORE_TRIES, delay, why)
            time.sleep(delay)
            err = _probe(key)
            if err is None:
                _REACHED[key] = time.monotonic()
                return
            why = _why(err)
        _GIVEN_UP[key] = time.monotonic()
        raise Unreachable(_gone_message(where, why, time.monotonic() - began))


def _first_delay() -> float:
    """The first delay between retries, as the download retries read it (default 1 s; the download
    client refuses a bad value before anything runs)."""
    try:
        return max(float(os.environ.get(BACKOFF_ENV, "").strip() or 1.0), 0.0)
    except ValueError:
        return 1.0


def _gone_message(where: str, why: str, seconds: float) -> str:
    tried = f", after {STORE_TRIES} tries over {seconds:.0f} s" if seconds else ""
    return f"cannot reach the store {where} any more ({why}{tried}): it answered earlier in this run; is it still up?"


def resolve_lake(option: str | None, default: Path) -> LakeLocation:
    """The lake named by ``--lake``, else ``LIBERACION_LAKE``, else ``default`` (``<home>/lake``)."""
    given = option or os.environ.get(LAKE_ENV) or ""
    if not given.strip():
        return LakeLocation(str(default), "file", str(default))
    return parse_lake(given.strip())


def parse_lake(text: str) -> LakeLocation:
    """A lake URI or path, checked: a scheme liberacion cannot write to is a usage error."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and text[1:3] in (":\\", ":/")):  # C:\ on Windows
        path = Path(parts.path if scheme == "file" else text).expanduser().absolute()
        return LakeLocation(str(path), "file", str(path))
    if scheme not in REMOTE_SCHEMES:
        msg = f"cannot use the lake {text!r}: give a directory or an s3://, gs:// or abfs:// URI"
        raise UsageError(msg)
    if not parts.netloc:
        raise UsageError(f"cannot use the lake {text!r}: name the bucket, as in {scheme}://BUCKET/PREFIX")
    root = f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
    return LakeLocation(f"{scheme}://{root}", scheme, root)


def storage_error(err: BaseException, location: LakeLocation, doing: str) -> Exception:
    """An object-store failure as one line that says what to do; other errors are returned as they are.

    The AWS SDK already retried what can be retried (throttling, 5xx) before we see an error.
    """
    bucket = location.root.split("/", 1)[0] if not location.is_local else ""
    known = _store_failure(str(err), location.uri, bucket, doing)
    if known is not None:
        return known
    if isinstance(err, OSError) and location.is_local:
        return _directory_failure(err, location, doing)
    if isinstance(err, OSError):
        return StorageError(f"the store failed while {doing} {location.uri}: {one_line(err, lines=1)}")
    return err


# What to try when a lake that is a directory cannot be written, by errno (pyarrow's local
# filesystem raises OSErrors that carry it).
_DIRECTORY_HINTS = {
    errno.ENOSPC: "free some disk space there or name another lake with --lake",
    errno.EDQUOT: "free some disk space there or name another lake with --lake",
    errno.EROFS: "the file system is read-only: name another lake with --lake",
    errno.EACCES: "check its permissions or name another lake with --lake",
    errno.EPERM: "check its permissions or name another lake with --lake",
}


def _directory_failure(err: OSError, location: LakeLocation, doing: str) -> StorageError:
    """A directory lake's file system failing, said as a directory's (not a store's) with what to do."""
    hint = _DIRECTORY_HINTS.get(err.errno or 0)
    if hint is None:
        return StorageError(f"cannot use the lake {location.uri} while {doing} it: {one_line(err, lines=1)}")
    where = f" ({err.filename})" if err.filename else ""
    return StorageError(f"cannot write to the lake {location.uri}: {err.strerror or err}{where}; {hint}")


def check_bucket(location: LakeLocation) -> None:
    """Fail unless the bucket of a lake on a store exists. A store lists a missing bucket as empty,
    which would read as a lake with no tables; the same call fails, in seconds, on a store that
    cannot be reached (``Unreachable``) or that refuses our credentials."""
    from pyarrow import fs

    if location.is_local:
        return
    bucket = location.root.split("/", 1)[0]
    try:
        found = location.filesystem().get_file_info(bucket)
    except OSError as err:
        raise storage_error(err, location, "reading") from None
    if found.type == fs.FileType.NotFound:
        raise NoBucket(_no_bucket_message(bucket, location.uri))


def read_failure(text: str) -> LiberacionError | None:
    """A store failure reported inside another library's error (DuckDB reading a table's files
    through the registered filesystem), or None when ``text`` is not one."""
    named = re.search(r"in bucket '([^']+)'", text)
    bucket = named.group(1) if named else ""
    return _store_failure(text, f"s3://{bucket}" if bucket else "the lake", bucket, "reading")


# How pyarrow (the AWS SDK's codes) and S3's own XML errors name the failures a person can fix.
_NO_BUCKET = ("NO_SUCH_BUCKET", "NoSuchBucket")
_REFUSED = (
    *("ACCESS_DENIED", "AccessDenied", "INVALID_ACCESS_KEY_ID", "InvalidAccessKeyId"),
    *("SIGNATURE_DOES_NOT_MATCH", "SignatureDoesNotMatch", "EXPIRED_TOKEN", "ExpiredToken"),
)
_NO_CREDENTIALS = ("Unable to locate credentials",)  # boto3's NoCredentialsError
_NO_NETWORK = ("NETWORK_CONNECTION", "Could not connect", "Couldn't resolve host", "Could not resolve host")


def _store_failure(text: str, where: str, bucket: str, doing: str) -> LiberacionError | None:
    if any(code in text for code in _NO_BUCKET):
        return NoBucket(_no_bucket_message(bucket, where))
    if any(code in text for code in _REFUSED):
        return ConfigError(
            f"the store refused our credentials while {doing} {where}: check AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and the bucket's policy"
        )
    if any(phrase in text for phrase in _NO_CREDENTIALS):
        return ConfigError(
            f"found no credentials for the store while {doing} {where}: set AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    if any(code in text for code in _NO_NETWORK):
        return Unreachable(f"cannot reach the store {_endpoint()} while {doing} {where}: {_NO_NETWORK_HINT}")
    return None


_NO_NETWORK_HINT = "no network, or a wrong AWS_ENDPOINT_URL?"


def _no_bucket_message(bucket: str, where: str) -> str:
    return f"the bucket {bucket} of the lake {where} does not exist: create it, or fix --lake ({LAKE_ENV})"


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "s3"


def duckdb_filesystem(location: LakeLocation) -> Any:
    """An fsspec filesystem over the lake's pyarrow filesystem, for ``con.register_filesystem``:
    DuckDB then reads ``s3://`` (or ``gs://``, ``abfs://``) paths with no extension to download."""
    from fsspec.implementations.arrow import ArrowFSWrapper

    wrapper = type(f"{location.scheme.title()}Lake", (ArrowFSWrapper,), {"protocol": location.scheme})
    return wrapper(location.filesystem())
