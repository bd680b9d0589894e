"""A data scientist's first hour with the Python API: what a notebook passes, and what it gets back.

Each test is a defect found by using ``liberacion`` as a library: a wrong-typed argument that
ended as a ``TypeError`` deep inside, an option given the way Python users give it (a ``Path``, one
path as text) read letter by letter, a README line that did not work as written.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.manifests import write_catalog

SMALL = "facility_id,name,beds\n010001,SOUTHEAST HEALTH,120\n010005,MARSHALL MEDICAL,85\n"


def small_table(tmp_path: Path) -> str:
    """A two-row table ``cms.small`` in the test's home; its source file's path."""
    import liberacion

    source = tmp_path / "small.csv"
    source.write_text(SMALL, encoding="utf-8")
    [result] = liberacion.fetch([str(source)], as_table="cms.small")
    assert result.status == "fetched", result.error
    return str(source)


def test_the_api_modules_example_calls_functions_the_package_has() -> None:
    """The docstring of ``liberacion.api`` showed ``liberacion.fetching([...])``: a module, not callable."""
    import liberacion
    import liberacion.api

    called = re.findall(r"liberacion\.(\w+)\(", liberacion.api.__doc__ or "")
    assert called
    for name in called:
        assert name in liberacion.__all__ and callable(getattr(liberacion, name)), name


def test_a_fresh_import_reaches_the_submodules_the_readme_names_and_lists_the_commands() -> None:
    """README: "``catalogs`` is ``liberacion.api.catalogs()``" after ``import liberacion``: that was an
    AttributeError in a fresh interpreter, and ``dir(liberacion)`` (tab completion) had no ``fetch``."""
    code = (
        "import liberacion\n"
        "assert {'fetch', 'sql', 'tables'} <= set(dir(liberacion)), dir(liberacion)\n"
        "assert liberacion.api.catalogs()\n"
        "assert liberacion.lake.Lake.__name__ == 'Lake'\n"
        "try:\n"
        "    liberacion.no_such_thing\n"
        "except AttributeError:\n"
        "    print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


def test_fetch_takes_a_local_file_as_a_pathlib_path(realdata: Path) -> None:
    import liberacion

    source = realdata / "cdc" / "nchs-dqs" / "DeathRatesForSuicide.json"
    [first] = liberacion.fetch(source, as_table="cdc.suicide")  # one Path alone
    [again] = liberacion.fetch([source], as_table="cdc.suicide")
    assert (first.status, first.rows, again.status) == ("fetched", 5658, "unchanged")


def wrong_calls(source: str) -> list[tuple[str, Callable[[], object]]]:
    import liberacion

    api = liberacion.api
    return [
        ("fetch jobs as text", lambda: liberacion.fetch([source], jobs="4")),  # type: ignore[arg-type]
        ("fetch wait None", lambda: liberacion.fetch([source], wait=None)),  # type: ignore[arg-type]
        ("fetch max_bad_rows as text", lambda: liberacion.fetch([source], max_bad_rows="5")),  # type: ignore[arg-type]
        ("fetch as_table not text", lambda: liberacion.fetch([source], as_table=5)),  # type: ignore[arg-type]
        ("fetch types as a list", lambda: liberacion.fetch([source], types=["beds=BIGINT"])),  # type: ignore[arg-type]
        ("fetch a type not text", lambda: liberacion.fetch([source], types={"beds": int})),  # type: ignore[dict-item]
        ("fetch progress not callable", lambda: liberacion.fetch([source], progress=5)),  # type: ignore[arg-type]
        ("refresh jobs as text", lambda: liberacion.refresh(jobs="2")),  # type: ignore[arg-type]
        ("refresh on_event not callable", lambda: liberacion.refresh(on_event="print")),  # type: ignore[arg-type]
        ("info None", lambda: liberacion.info(None)),  # type: ignore[arg-type]
        ("history a list", lambda: liberacion.history(["cms.small"])),  # type: ignore[arg-type]
        ("diff from a number", lambda: liberacion.diff("cms.small", from_snapshot=1)),  # type: ignore[arg-type]
        ("diff show None", lambda: liberacion.diff("cms.small", show=None)),  # type: ignore[arg-type]
        ("show None", lambda: liberacion.show(None)),  # type: ignore[arg-type]
        ("search None", lambda: liberacion.search(None)),  # type: ignore[arg-type]
        ("search limit as text", lambda: liberacion.search("hospital", limit="3")),  # type: ignore[arg-type]
        ("discover None", lambda: liberacion.discover(None)),  # type: ignore[arg-type]
        ("prune keep as text", lambda: liberacion.prune(keep="1")),  # type: ignore[arg-type]
        ("catalogs a number", lambda: api.catalogs(catalog_paths=5)),  # type: ignore[arg-type]
    ]


def test_a_wrong_typed_argument_is_a_usage_error_not_a_type_error_from_deep_inside(tmp_path: Path) -> None:
    from liberacion.errors import UsageError

    source = small_table(tmp_path)
    for label, call in wrong_calls(source):
        with pytest.raises(UsageError):
            call()
        assert label  # named in the failure's traceback


def test_discover_with_one_name_discovers_that_catalog_not_its_letters() -> None:
    import liberacion
    from liberacion.errors import NotFound

    with pytest.raises(NotFound, match="no catalog named 'nosuch'"):  # was: no catalog named 'n'
        liberacion.discover("nosuch")


def test_search_refuses_a_negative_limit_rather_than_dropping_the_last_hit() -> None:
    import liberacion
    from liberacion.errors import UsageError

    everything = liberacion.search("hospital", limit=0)
    assert len(everything) > 1 and len(liberacion.search("hospital", limit=1)) == 1
    with pytest.raises(UsageError, match="limit"):
        liberacion.search("hospital", limit=-1)  # was every hit but the last


def test_catalog_paths_is_checked_as_the_cli_checks_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One directory given as text is one path (it was read letter by letter: ``/``, ``t``, ...),
    and a path that does not exist is a ``ConfigError`` (it was silently left out)."""
    import liberacion
    from liberacion.errors import ConfigError

    mine = tmp_path / "manifests"
    mine.mkdir()
    write_catalog(mine, "mine", title="My catalog")
    problems: list[ConfigError] = []
    names = [status.name for status in liberacion.api.catalogs(catalog_paths=str(mine), problems=problems)]
    assert "mine" in names and problems == []
    with pytest.raises(ConfigError, match="no such catalog manifest"):
        liberacion.search("hospital", catalog_paths=[tmp_path / "nosuch"])
    monkeypatch.setenv("LIBERACION_CATALOGS", str(tmp_path / "nosuch"))
    with pytest.raises(ConfigError, match="LIBERACION_CATALOGS"):
        liberacion.api.catalogs()


def test_a_home_that_is_a_file_is_said_not_read_as_an_empty_lake(tmp_path: Path) -> None:
    import liberacion
    from liberacion.errors import StorageError

    file = tmp_path / "notes.txt"
    file.write_text("not a home\n", encoding="utf-8")
    for call in (lambda: liberacion.tables(home=file), lambda: liberacion.sql("select 1", home=str(file))):
        with pytest.raises(StorageError, match="is a file, not a directory"):  # tables() was []
            call()


def test_an_aware_as_of_that_leaves_the_calendar_in_utc_is_a_usage_error(tmp_path: Path) -> None:
    import liberacion
    from liberacion.errors import UsageError

    small_table(tmp_path)
    earliest = datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))  # before year 1 in UTC
    with pytest.raises(UsageError, match="as_of"):  # was OverflowError: date value out of range
        liberacion.sql("select count(*) from cms.small", as_of=earliest)


def test_sql_arrow_says_an_error_met_while_reading_rows_as_an_sql_error(tmp_path: Path) -> None:
    import liberacion
    from liberacion.errors import SQLError

    small_table(tmp_path)
    with pytest.raises(SQLError, match="Could not convert") as raised:  # was duckdb.ConversionException
        liberacion.sql("select cast(name as int) from cms.small", arrow=True)
    assert raised.value.exit_code == 4
    assert liberacion.prune(keep=1).busy == []  # the readers' lock was let go


@pytest.mark.skipif(os.name != "posix", reason="SIGINT sent to the process")
def test_ctrl_c_in_sql_arrow_is_a_keyboard_interrupt() -> None:
    """DuckDB turned Ctrl-C into ``RuntimeError: Query interrupted``; ``except KeyboardInterrupt``
    in a script (or a notebook's interrupt button) must see what it asked for."""
    import liberacion

    endless = "select count(*) from range(1000000000000) t(i) where hash(i) % 7 = 3"
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        timer.start()
        liberacion.sql(endless, arrow=True)
    timer.join()


def test_a_blank_liberacion_home_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``LIBERACION_HOME=" "`` was a home named by spaces in the current directory."""
    from liberacion.home import default_home, resolve_home

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("LIBERACION_HOME", "   ")
    monkeypatch.chdir(tmp_path)
    assert resolve_home() == default_home() == tmp_path / "data" / "liberacion"


def test_a_negative_older_than_or_wait_is_refused(tmp_path: Path) -> None:
    import liberacion
    from liberacion.errors import UsageError

    with pytest.raises(UsageError, match="older_than must be 0 or more seconds"):
        liberacion.refresh(older_than=-1, home=tmp_path / "home")  # was: every table, as never checked
    with pytest.raises(UsageError, match="wait must be 0 or more seconds"):
        liberacion.refresh(wait=-5, home=tmp_path / "home")


API_MISTAKES: list[tuple[str, dict[str, object], str, str]] = [
    # (function, arguments, what the API's message says, what must not be in it)
    ("fetch", {"refs": ["a.csv"], "jobs": 0}, "jobs must be at least 1", "--jobs"),
    ("fetch", {"refs": ["a.csv"], "wait": -1}, "wait must be 0 or more", "--wait"),
    ("fetch", {"refs": ["a.csv"], "max_bad_rows": -1}, "max_bad_rows must be 0 or more", "--max-bad-rows"),
    ("fetch", {"refs": ["a.csv", "b.csv"], "as_table": "t.x"}, "as_table names one table", "--as"),
    ("fetch", {"refs": ["a.csv"], "raw": True, "types": {"zip": "VARCHAR"}}, "raw and types cannot", "--raw"),
    ("fetch", {"refs": ["a.csv"], "as_table": "t.x__rejects"}, "as_table t.x__rejects: that is", "--as"),
    ("refresh", {"jobs": 0}, "jobs must be at least 1", "--jobs"),
    ("refresh", {"on_schema_change": "maybe"}, "on_schema_change must be one of", "--on-schema-change"),
    ("prune", {"tables": ["t.x"], "keep": 0}, "keep must be at least 1", "--keep"),
    ("diff", {"table": "t.x", "show": -1}, "show must be 0 or more", "--show"),
]


@pytest.mark.parametrize(("function", "arguments", "said", "not_said"), API_MISTAKES)
def test_api_errors_name_the_functions_parameters_not_the_command_lines_options(
    function: str, arguments: dict[str, object], said: str, not_said: str
) -> None:
    # `fetch(jobs=0)` said "--jobs must be at least 1": an option a Python caller never wrote.
    import liberacion

    with pytest.raises(liberacion.UsageError) as caught:
        getattr(liberacion, function)(**arguments)
    assert said in str(caught.value) and not_said not in str(caught.value)


def test_the_same_mistakes_on_the_command_line_name_its_options(cli, tmp_path: Path) -> None:
    for args, said in [
        (("fetch", "a.csv", "--jobs", "0"), "--jobs"),
        (("fetch", "a.csv", "b.csv", "--as", "t.x"), "--as names one table"),
        (("fetch", "a.csv", "--raw", "--type", "zip=VARCHAR"), "--raw and --type cannot"),
        (("prune", "t.x", "--keep", "0"), "--keep"),
    ]:
        result = cli(*args)
        assert result.exit_code == 2 and said in result.stderr, (args, result.stderr)
    [failed] = _fetch_of_bad_rows(tmp_path)
    assert "raise the limit with max_bad_rows" in failed.error and "--" not in failed.error
    result = cli("fetch", str(tmp_path / "bad.csv"), "--as", "t.bad")
    assert result.exit_code == 1 and "raise the limit with --max-bad-rows" in result.stderr


def _fetch_of_bad_rows(tmp_path: Path) -> list:
    import liberacion

    source = tmp_path / "bad.csv"
    source.write_text("a,b\n" + "1,2\n" * 5 + "1,2,3,4\n" * 5, encoding="utf-8")
    return liberacion.fetch([str(source)], as_table="t.bad")
