"""Publishing a table to an S3 lake vs boto3's ``upload_file`` of the same Parquet files.

The target (issue 14): publishing a 1 GB table to the S3 server takes at most 1.2x the time boto3's
``upload_file`` needs for the same files, measured in the same run.

- ``liberacion``: the lake API as ``fetch`` drives it. The files are hard-linked into a ``Staging``
  from ``IcebergLake.stage(...)`` as ``data-0000.parquet`` ...; the time is ``staging.commit(...)``
  from call to return: describing the files, uploading the snapshot folder (boto3's
  ``upload_file``, one file after the other: ``storage.put_s3_files``) and the Iceberg commit
  (embedded SQLite catalog; pyiceberg writes the table metadata to S3 through pyarrow). Its phases
  are timed too: ``upload`` (``_put``), ``iceberg`` (``_commit``), ``other`` (the rest: describing
  the files, the snapshot record).
- ``boto3``: ``upload_file`` of each file, one file after the other, with the default
  ``TransferConfig`` (multipart above 8 MB, 8 MB parts, 10 threads per file).

``boto3 plain``: the same ``upload_file`` with the optional request checksum off
(``request_checksum_calculation="when_required"``, the setting ``AWS_REQUEST_CHECKSUM_CALCULATION``
also gives), which is how pyarrow's S3 client uploads over plain HTTP (it cannot declare a
checksum). boto3 by default sends each part with a CRC32 header and declares CRC32 when the upload
starts. An upload that declares no checksum makes moto copy the whole object once more when it is
completed, to compute a full-object checksum: ``boto3 plain`` shows what an upload through pyarrow
(liberacion before it used boto3 for the data files) pays there.

Besides wall time each run reports the CPU time of this process (the client) and of the moto
server: on a shared machine CPU time moves less than wall time.

Each round gives both methods a fresh bucket (emptied and removed after its run, so the server's
memory stays bounded) and alternates which goes first; medians over the rounds, and their ratio.

The S3 server is moto in server mode (``ThreadedMotoServer``) in a process of its own on loopback,
so its request handling does not share a GIL with either client; ``--endpoint URL`` uses another
server instead (MinIO, say), with the credentials of the environment.

Usage: nice -n 10 python benchmarks/upload.py [--size-mb 1024] [--files 4] [--rounds 5]
                                              [--endpoint URL] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = Path(tempfile.gettempdir()) / "liberacion-upload-bench"
ROWS_PER_GROUP = 1 << 20
BLOB_BYTES = 48  # random bytes per row: zstd cannot shrink them, so the size on disk is real

# Runs moto's S3 server in its own process and prints the port it got.
MOTO = """
import logging, sys, time
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


# -- the data -----------------------------------------------------------------------------------------


def make_files(directory: Path, size_mb: int, count: int) -> list[Path]:
    """``count`` Parquet files of about ``size_mb / count`` MB each (zstd, as liberacion writes),
    made once and reused while the sizes asked for are the same."""
    directory = directory / f"{size_mb}mb-{count}"
    paths = [directory / f"part-{i:04d}.parquet" for i in range(count)]
    if all(p.exists() for p in paths) and (directory / "done").exists():
        return paths
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    target = size_mb * 1024 * 1024 // count
    for i, path in enumerate(paths):
        _write_file(path, target, seed=i)
        print(f"  made {path.name}: {path.stat().st_size / 2**20:.0f} MB", file=sys.stderr)
    (directory / "done").write_text("")
    return paths


def _write_file(path: Path, target_bytes: int, *, seed: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    per_row = 58  # bytes a row takes in the file: the ids shrink, the rest hardly
    rows_left = max(1, target_bytes // per_row)
    start = 0
    schema = pa.schema([("id", pa.int64()), ("x", pa.float64()), ("blob", pa.binary(BLOB_BYTES))])
    with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=["id"]) as writer:
        while rows_left > 0:
            n = min(ROWS_PER_GROUP, rows_left)
            blob = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(BLOB_BYTES), n, [None, pa.py_buffer(rng.bytes(BLOB_BYTES * n))]
            )
            ids = pa.array(np.arange(start, start + n, dtype=np.int64))
            writer.write_table(pa.table([ids, pa.array(rng.random(n)), blob], schema=schema))
            start += n
            rows_left -= n


# -- the server ---------------------------------------------------------------------------------------


@contextmanager
def s3_server(endpoint: str | None) -> Iterator[tuple[str, int | None]]:
    """The endpoint to use and the server's process id: the one given (no process), or a moto
    server in a child process for this run."""
    if endpoint:
        yield endpoint, None
        return
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    # Its log (tracebacks of requests it does not know, which clients then retry otherwise) is dropped.
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL}
    child = subprocess.Popen([sys.executable, "-c", MOTO], text=True, **pipes)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}", child.pid
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system, all threads) a process has used so far; 0 when not known."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def s3_client(checksums: str = "when_supported") -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(request_checksum_calculation=checksums))


@contextmanager
def fresh_bucket(name: str) -> Iterator[str]:
    """A new bucket for one run, emptied and removed afterwards (moto keeps objects in memory)."""
    client = s3_client()
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        client.delete_bucket(Bucket=name)


# -- the methods ----------------------------------------------------------------------------------


# boto3's two settings of the optional request checksum, by method name
BOTO3_CHECKSUMS = {"boto3": "when_supported", "boto3 plain": "when_required"}


def run_boto3(files: list[Path], bucket: str, checksums: str = "when_supported") -> dict[str, float]:
    client = s3_client(checksums)
    started = time.perf_counter()
    for path in files:
        client.upload_file(str(path), bucket, f"boto3/{path.name}")
    return {"total": time.perf_counter() - started}


def run_liberacion(files: list[Path], bucket: str, home: Path) -> dict[str, float]:
    from liberacion.home import Home
    from liberacion.iceberg_lake import open_lake
    from liberacion.snapshots import Provenance

    lake = open_lake(Home(home, lake_uri=f"s3://{bucket}/lake"))
    phases = {"upload": 0.0, "iceberg": 0.0}
    _time_method(lake, "_put", phases, "upload")
    _time_method(lake, "_commit", phases, "iceberg")
    with lake.stage("bench.upload") as staging:
        for i, path in enumerate(files):
            os.link(path, staging.data_file(i))  # the same bytes, no copy
        started = time.perf_counter()
        staging.commit(Provenance(source_url="file:///bench", format="parquet"))
        total = time.perf_counter() - started
    return {"total": total, **phases, "other": total - phases["upload"] - phases["iceberg"]}


def _time_method(obj: Any, name: str, into: dict[str, float], key: str) -> None:
    """Wrap one method of ``obj`` (this instance only) to add its wall time to ``into[key]``."""
    method: Callable[..., Any] = getattr(obj, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            into[key] += time.perf_counter() - started

    setattr(obj, name, timed)


def warm_up() -> None:
    """Import what each method needs before any timing: both are measured in a steady state."""
    import boto3  # noqa: F401
    import pyiceberg.catalog.sql
    import pyiceberg.io.pyarrow  # noqa: F401

    import liberacion.iceberg  # noqa: F401


# -- the run ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="total size of the table (default 1024)")
    parser.add_argument("--files", type=int, default=4, help="number of Parquet files (default 4)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--endpoint", help="an S3 endpoint to use instead of a moto server started here")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"where the files are made (default {DEFAULT_DATA})"
    )
    args = parser.parse_args()

    os.environ.setdefault("AWS_REGION", "us-east-1")
    os.environ.pop("LIBERACION_LAKE", None)
    print(f"making {args.files} files, {args.size_mb} MB in all, under {args.data}", file=sys.stderr)
    files = make_files(args.data, args.size_mb, args.files)
    warm_up()
    size = sum(p.stat().st_size for p in files)
    methods = ["liberacion", *BOTO3_CHECKSUMS]
    results: dict[str, list[dict[str, float]]] = {method: [] for method in methods}
    with s3_server(args.endpoint) as (endpoint, server_pid):
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        for n in range(args.rounds):
            order = methods[n % len(methods) :] + methods[: n % len(methods)]  # each goes first in turn
            for method in order:
                bucket = f"bench-{os.getpid()}-{n}-{method.replace(' ', '-')}"
                with fresh_bucket(bucket), tempfile.TemporaryDirectory(dir=args.data) as home:
                    client_cpu, server_cpu = time.process_time(), cpu_seconds(server_pid)
                    if method != "liberacion":
                        result = run_boto3(files, bucket, BOTO3_CHECKSUMS[method])
                    else:
                        result = run_liberacion(files, bucket, Path(home))
                    result["client cpu"] = time.process_time() - client_cpu
                    result["server cpu"] = cpu_seconds(server_pid) - server_cpu
                results[method].append(result)
                detail = " ".join(f"{k} {v:.2f}s" for k, v in result.items())
                print(f"round {n + 1} {method:10s} {detail}", file=sys.stderr, flush=True)
    report(results, size, args)


def report(results: dict[str, list[dict[str, float]]], size: int, args: argparse.Namespace) -> None:
    def median(method: str, key: str) -> float:
        return statistics.median(r[key] for r in results[method])

    mb = size / 2**20
    server = args.endpoint or "moto"
    print(f"\n{args.files} files, {mb:.0f} MB, {args.rounds} rounds, medians", end=" ")
    print(f"(server: {server})")
    print(f"{'method':12s} {'seconds':>8s} {'MB/s':>8s} {'client cpu':>11s} {'server cpu':>11s}")
    for method in (*BOTO3_CHECKSUMS, "liberacion"):
        seconds = median(method, "total")
        cpu = f"{median(method, 'client cpu'):10.2f}s {median(method, 'server cpu'):10.2f}s"
        print(f"{method:12s} {seconds:8.2f} {mb / seconds:8.1f} {cpu}")
    phases = ", ".join(f"{key} {median('liberacion', key):.2f}s" for key in ("upload", "iceberg", "other"))
    print(f"liberacion's phases: {phases}")
    for method in BOTO3_CHECKSUMS:
        ratio = median("liberacion", "total") / median(method, "total")
        print(f"ratio liberacion / {method}: {ratio:.2f} (target <= 1.20)")
    command = ["python", "benchmarks/upload.py", f"--size-mb {args.size_mb}", f"--files {args.files}"]
    command.append(f"--rounds {args.rounds}")
    if args.endpoint:
        command.append(f"--endpoint {args.endpoint}")
    print("command: nice -n 10 " + " ".join(command))


if __name__ == "__main__":
    main()
