"""A ``206`` whose ``Content-Range`` total is ``*`` (unknown) is never taken as the whole file on
its word: the rest is asked for with ``Range``, and the file ends where the server says there is
nothing more (``416``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from liberacion.errors import SourceError
from tests.conftest import Cli
from tests.server import Handler, LocalServer, RequestHandler
from tests.test_download_answers import BODY, SHA, answer, asked_from, client, json_lines

PIECE = 100_000


def pieces(*, validators: dict[str, str], piece: int = PIECE, beyond: str | None = None) -> Handler:
    """A server that sends ``piece`` bytes at a time as ``206 bytes a-b/*``, asked or not, and a
    ``416`` (``Content-Range: beyond``, else ``bytes */<length>``) for a range past the end."""

    def serve(handler: RequestHandler) -> None:
        start = asked_from(handler) or 0
        if start >= len(BODY):
            answer(handler, 416, b"", {**validators, "Content-Range": beyond or f"bytes */{len(BODY)}"})
            return
        end = min(start + piece, len(BODY))
        answer(handler, 206, BODY[start:end], {**validators, "Content-Range": f"bytes {start}-{end - 1}/*"})

    return serve


@pytest.mark.parametrize("validators", [{"ETag": '"p"'}, {"Last-Modified": "Mon, 01 Dec 2026 06:00:00 GMT"}])
def test_the_first_piece_of_unknown_length_is_completed_with_ranges(
    http_server: LocalServer, tmp_path: Path, validators: dict[str, str]
) -> None:
    url = http_server.add("/unknown.csv", handler=pieces(validators=validators))
    result = client().download(url, tmp_path / "downloads")
    assert result.sha256 == SHA and result.size == len(BODY)
    asked = [hit.headers.get("Range") for hit in http_server.hits("/unknown.csv")]
    assert asked == [None, "bytes=100000-", "bytes=200000-", "bytes=300000-", f"bytes={len(BODY)}-"]  # then 416


def test_a_whole_file_of_unknown_length_ends_where_the_server_says_nothing_follows(
    http_server: LocalServer, tmp_path: Path
) -> None:
    url = http_server.add("/whole.csv", handler=pieces(validators={"ETag": '"w"'}, piece=len(BODY)))
    result = client().download(url, tmp_path / "downloads")
    assert result.sha256 == SHA and result.size == len(BODY)
    assert [hit.headers.get("Range") for hit in http_server.hits("/whole.csv")] == [None, f"bytes={len(BODY)}-"]


def test_a_piece_of_unknown_length_without_a_validator_fails(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("/bare.csv", handler=pieces(validators={}))
    with pytest.raises(SourceError, match=r"bytes 0-99,999 of a file of unknown length .* cannot be known whole"):
        client().download(url, tmp_path / "downloads")
    assert len(http_server.hits("/bare.csv")) == 1
    assert not list((tmp_path / "downloads").rglob("*.csv"))


def test_a_416_naming_another_length_does_not_end_the_file(http_server: LocalServer, tmp_path: Path) -> None:
    serve = pieces(validators={"ETag": '"p"'}, piece=len(BODY), beyond="bytes */5000")
    url = http_server.add("/shrunk.csv", handler=serve)
    with pytest.raises(SourceError, match=r"failed after 3 attempts: .* of a file of unknown length"):
        client(retries=1).download(url, tmp_path / "downloads")
    # The 416 said the file is shorter than what arrived: those bytes went, the next try began anew.
    assert [hit.headers.get("Range") for hit in http_server.hits("/shrunk.csv")] == [None, f"bytes={len(BODY)}-", None]


def test_fetch_of_a_file_sent_in_pieces_of_unknown_length_has_every_row(cli: Cli, http_server: LocalServer) -> None:
    url = http_server.add("/unknown.csv", handler=pieces(validators={"ETag": '"p"'}))
    result = cli("fetch", url, "--as", "local.pieces", "--json")
    assert result.exit_code == 0, result.stderr
    line = json_lines(result.stdout)[0]
    assert line["status"] == "fetched" and line["rows"] == 40_000 and line["bytes"] == len(BODY)
