"""A local HTTP server the test suite owns: static routes with validators and ranges, plus faults.

Tests never touch the internet: every URL points at 127.0.0.1 on a port chosen by the OS.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Handler = Callable[["RequestHandler"], None]


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/octet-stream"
    etag: str | None = None  # None: derived from the body; "" for no ETag
    last_modified: str | None = None  # None: a fixed date; "" for none
    ranges: bool = True
    conditional: bool = True
    handler: Handler | None = None  # full control: called instead of the static behaviour
    # Faults, applied to the next N requests of this route, then cleared.
    fail_times: int = 0
    fail_status: int = 503
    fail_headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # close the connection after this many body bytes
    drop_times: int = 0
    delay: float = 0.0  # seconds to sleep before answering (slow server)
    chunked: bool = False  # send without Content-Length
    rate: int | None = None  # bytes per second for the body (a slow download), in 64 KiB pieces


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


class RequestHandler(BaseHTTPRequestHandler):
    server: LocalServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        path = self.path
        self.server.requests.append(Request(self.command, path, dict(self.headers.items())))
        route = self.server.routes.get(path) or self.server.routes.get(path.split("?", 1)[0])
        if route is None:
            self.send_error_body(404, b"<html><body>Not Found</body></html>", "text/html")
            return
        if route.delay:
            time.sleep(route.delay)
        if route.handler is not None:
            route.handler(self)
            return
        if route.fail_times > 0:
            route.fail_times -= 1
            self.send_error_body(
                route.fail_status, b"<html>Service Unavailable</html>", "text/html", route.fail_headers
            )
            return
        self._serve_static(route, head=head)

    def send_error_body(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve_static(self, route: Route, *, head: bool) -> None:
        body = route.body
        etag = route.etag if route.etag is not None else '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        last_modified = (
            route.last_modified if route.last_modified is not None else formatdate(1_700_000_000, usegmt=True)
        )
        if route.conditional and route.status == 200:
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            if (inm and etag and inm == etag) or (not inm and ims and last_modified and ims == last_modified):
                self.send_response(304)
                if etag:
                    self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        status, start = route.status, 0
        range_header = self.headers.get("Range")
        if route.ranges and range_header and range_header.startswith("bytes=") and route.status == 200:
            if_range = self.headers.get("If-Range")
            if if_range is None or if_range in (etag, last_modified):
                start = int(range_header[6:].split("-", 1)[0] or 0)
                if start >= len(body):
                    self.send_error_body(416, b"", "text/plain", {"Content-Range": f"bytes */{len(body)}"})
                    return
                status = 206
        payload = body[start:]
        self.send_response(status)
        self.send_header("Content-Type", route.content_type)
        if not route.chunked:
            self.send_header("Content-Length", str(len(payload)))
        else:
            self.send_header("Connection", "close")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        if route.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if etag:
            self.send_header("ETag", etag)
        if last_modified:
            self.send_header("Last-Modified", last_modified)
        for key, value in route.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return
        if route.drop_after is not None and route.drop_times > 0:
            route.drop_times -= 1
            self.wfile.write(payload[: route.drop_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if route.rate:
            self._write_slowly(payload, route)
        else:
            self.wfile.write(payload)
        if route.chunked:
            self.close_connection = True

    def _write_slowly(self, payload: bytes, route: Route) -> None:
        piece = 64 * 1024
        for start in range(0, len(payload), piece):
            if not route.rate:  # the test sped the route up: send the rest at once
                self.wfile.write(payload[start:])
                return
            self.wfile.write(payload[start : start + piece])
            self.wfile.flush()
            time.sleep(piece / route.rate)


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RequestHandler)
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str | Path = b"", **options: Any) -> str:
        """Serve ``body`` (bytes, text, or a file's contents) at ``path``; returns the full URL."""
        if isinstance(body, Path):
            body = body.read_bytes()
        elif isinstance(body, str):
            body = body.encode("utf-8")
        self.routes[path] = Route(body=body, **options)
        return self.url(path)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path or r.path.split("?", 1)[0] == path]
