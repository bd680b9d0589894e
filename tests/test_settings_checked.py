"""Size limits and other settings a fetch or refresh reads later are checked before anything runs:
a bad value is a configuration error (exit 5) with one line, and no request is made."""

from __future__ import annotations

import pytest

from tests.conftest import Cli
from tests.server import LocalServer

CSV = "id,beds\n01,10\n02,20\n"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LIBERACION_MAX_LISTING_BYTES", "abc"),
        ("LIBERACION_MAX_UNZIPPED_BYTES", "0"),
        ("LIBERACION_ORPHAN_HOURS", "soon"),
        ("LIBERACION_ORPHAN_HOURS", "-1"),
    ],
)
def test_a_bad_limit_stops_fetch_before_any_request(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    url = http_server.add("/t.csv", CSV, content_type="text/csv")
    monkeypatch.setenv(name, value)
    result = cli("fetch", url, "--as", "web.t")
    assert result.exit_code == 5, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0]
    assert http_server.hits("/t.csv") == []


def test_good_limits_are_taken(cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = http_server.add("/t.csv", CSV, content_type="text/csv")
    monkeypatch.setenv("LIBERACION_MAX_LISTING_BYTES", "1_000_000")
    monkeypatch.setenv("LIBERACION_ORPHAN_HOURS", "0.5")
    assert cli("fetch", url, "--as", "web.t").exit_code == 0


@pytest.mark.parametrize(("name", "value"), [("LIBERACION_MAX_LISTING_BYTES", "abc"), ("LIBERACION_ORPHAN_HOURS", "x")])
def test_a_bad_limit_stops_refresh_before_anything_runs(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    url = http_server.add("/t.csv", CSV, content_type="text/csv")
    assert cli("fetch", url, "--as", "web.t").exit_code == 0
    monkeypatch.setenv(name, value)
    result = cli("refresh", "--json")
    assert result.exit_code == 5, result.stderr
    assert name in result.stderr
    assert len(http_server.hits("/t.csv")) == 1  # the fetch's only


def test_refresh_of_a_home_never_written_does_not_make_it(cli: Cli, tmp_path) -> None:
    home = tmp_path / "never"
    for args in (("refresh",), ("refresh", "--check")):
        result = cli("--home", str(home), *args)
        assert result.exit_code == 0, result.stderr
        assert not home.exists()
    assert cli("--home", str(home), "refresh", "nosuch.table").exit_code == 3
    assert not home.exists()


@pytest.mark.parametrize("value", ["²", "٣", "0", "-1", "2.5"])
def test_a_keep_that_is_not_a_plain_whole_number_is_a_configuration_error(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    url = http_server.add("/t.csv", CSV, content_type="text/csv")
    monkeypatch.setenv("LIBERACION_KEEP", value)
    result = cli("fetch", url, "--as", "web.t")
    assert result.exit_code == 5, result.stderr
    assert "LIBERACION_KEEP" in result.stderr and "internal error" not in result.stderr
    assert http_server.hits("/t.csv") == []


@pytest.mark.parametrize(("name", "value"), [("LIBERACION_ORPHAN_HOURS", "abc"), ("LIBERACION_KEEP", "0")])
def test_a_bad_setting_stops_prune_before_anything_is_deleted(
    cli: Cli, http_server: LocalServer, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    # A shared lake's prune deleted every table's old snapshots, then said the setting was wrong.
    url = http_server.add("/t.csv", CSV, content_type="text/csv")
    for body in (CSV, CSV + "03,30\n"):
        http_server.add("/t.csv", body, content_type="text/csv")
        assert cli("fetch", url, "--as", "web.t").exit_code == 0
    monkeypatch.setenv(name, value)
    result = cli("prune", "--keep", "1")
    assert result.exit_code == 5 and name in result.stderr, result.stderr
    monkeypatch.delenv(name)
    assert cli("history", "web.t", "--format", "csv").stdout.count("\n") == 3  # a header, two snapshots
