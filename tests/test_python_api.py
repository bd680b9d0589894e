"""The README's Python section runs as written (its code blocks, in order), on a local file."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT

FIRST = "facility_id,state,beds\n010001,AL,120\n010005,AL,85\n020001,AK,40\n"
CHANGED = "facility_id,state,beds\n010001,AL,125\n010005,AL,85\n020001,AK,40\n030001,AZ,60\n"


def readme_python_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_python_section_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    blocks = readme_python_blocks()
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hospitals.csv").write_text(FIRST, encoding="utf-8")
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], "README.md (Python API, block 1)", "exec"), namespace)
    first = capsys.readouterr().out
    assert "cms.hospitals fetched 3" in first
    assert "[('AL', 2), ('AK', 1)]" in first
    (tmp_path / "hospitals.csv").write_text(CHANGED, encoding="utf-8")  # the upstream file changed
    exec(compile(blocks[1], "README.md (Python API, block 2)", "exec"), namespace)
    second = capsys.readouterr().out
    assert "[('cms.hospitals', 'fetched')] 0" in second
    assert "1 0 1" in second  # one facility added, one changed
    assert "[(3,)]" in second  # as of the first snapshot
    assert "cms/hospital-general-information" in second


def test_the_package_exports_the_commands_as_functions() -> None:
    import liberacion

    for name in ("fetch", "refresh", "discover", "search", "show", "sql", "tables", "history", "diff"):
        assert callable(getattr(liberacion, name)), name
    assert liberacion.fetch.__module__ == "liberacion.api"


def test_the_api_takes_what_a_python_user_passes_and_refuses_the_rest(home: Path, tmp_path: Path) -> None:
    from datetime import date, datetime

    import liberacion
    from liberacion.errors import UsageError

    source = tmp_path / "beds.csv"
    source.write_text("zip,beds\n02115,12\n10001,300\n", encoding="utf-8")
    liberacion.fetch([str(source)], as_table="cms.beds")
    liberacion.fetch([str(source)], as_table="cms.beds", force=True)
    query = "select count(*) from cms.beds"
    assert liberacion.sql(query, as_of=date(2999, 1, 1)).fetchall() == [(2,)]
    assert liberacion.sql(query, as_of=datetime(2999, 1, 1, 6, 30)).fetchall() == [(2,)]
    assert liberacion.prune("cms.beds", keep=1).removed  # one name, not its letters
    liberacion.fetch([str(source)], as_table="cms.beds", force=True)
    assert liberacion.diff("cms.beds", keys="zip").keys == ["zip"]
    for refused in (
        lambda: liberacion.sql(query, home=""),  # never the default home
        lambda: liberacion.sql(5),  # type: ignore[arg-type]
        lambda: liberacion.sql(query, as_of=5),  # type: ignore[arg-type]
        lambda: liberacion.fetch([str(source)], as_table="cms.beds__rejects"),
    ):
        with pytest.raises(UsageError):
            refused()


def test_the_api_says_a_table_did_not_exist_yet_as_the_cli_does(cli, home: Path, tmp_path: Path) -> None:
    import liberacion
    from liberacion.errors import NoTable

    source = tmp_path / "hospitals.csv"
    source.write_text(FIRST, encoding="utf-8")
    liberacion.fetch([str(source)], as_table="cms.hospitals")
    query = "select count(*) from cms.hospitals"
    with pytest.raises(NoTable) as raised:
        liberacion.sql(query, as_of="2020-01-05")
    said = cli("sql", "--as-of", "2020-01-05", query)
    assert said.exit_code == 3 and said.stderr == f"error: {raised.value}\n"
    assert str(raised.value).startswith("cms.hospitals has no kept snapshot as of 2020-01-05T23:59:59.999999Z")


def test_a_relation_not_yet_read_keeps_its_snapshot_through_retention(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relation is read after sql() returns: the snapshot it names outlives a publish with
    LIBERACION_KEEP=1 until the relation is gone (then the next publish prunes it)."""
    import gc

    import liberacion
    from liberacion.errors import Note
    from liberacion.lake import Lake

    source = tmp_path / "hospitals.csv"
    source.write_text(FIRST, encoding="utf-8")
    liberacion.fetch([str(source)], as_table="cms.hospitals")
    old = Lake(home).current("cms.hospitals")
    relation = liberacion.sql("select sum(beds) as beds from cms.hospitals")
    monkeypatch.setenv("LIBERACION_KEEP", "1")
    source.write_text(CHANGED, encoding="utf-8")
    with pytest.warns(Note, match="a query is reading the lake"):
        liberacion.fetch([str(source)], as_table="cms.hospitals")
    assert old.path.is_dir() and relation.fetchall() == [(245,)]  # the old snapshot's rows, read now
    del relation
    gc.collect()
    liberacion.fetch([str(source)], as_table="cms.hospitals", force=True)
    assert not old.path.exists() and len(Lake(home).snapshots("cms.hospitals")) == 1


def test_every_command_is_a_function_of_the_same_name() -> None:
    import liberacion
    import liberacion.api
    from liberacion.cli import app

    commands = {command.name or command.callback.__name__ for command in app.registered_commands}
    assert len(commands) == 12
    for name in commands - {"catalogs"}:  # liberacion.catalogs is the subpackage of manifests
        assert callable(getattr(liberacion, name)), name
        assert name in liberacion.__all__
    assert [c.name for c in liberacion.api.catalogs()][:1]  # the shipped catalogs, without a home


def test_what_the_functions_return_can_be_named_from_the_package() -> None:
    # Annotating `-> list[liberacion.FetchResult]` meant finding the class in a submodule.
    import typing

    import liberacion
    import liberacion.api

    returned = set()
    for name in ("fetch", "refresh", "discover", "search", "show", "tables", "info", "history", "diff", "prune"):
        function = getattr(liberacion.api, name)
        annotation = function.__annotations__["return"]
        returned |= set(re.findall(r"[A-Z]\w+", annotation)) - {"Sequence", "Callable"}
    assert returned == {"FetchResult", "RefreshReport", "DiscoverReport", "SearchHit", "Description", "TableInfo"} | {
        "TableDetails",
        "HistoryEntry",
        "TableDiff",
        "PruneReport",
    }
    for name in returned | {"ProgressEvent", "RefreshEvent"}:
        assert isinstance(getattr(liberacion, name), type) and name in liberacion.__all__, name
    assert typing.get_type_hints(liberacion.info)["return"] is liberacion.TableDetails


def test_type_hints_resolve_for_every_public_function_and_class() -> None:
    # Typer's `typer.run(liberacion.fetch)` and pydantic's `validate_call` call get_type_hints: it
    # raised NameError on names imported for the type checker only.
    import typing

    import liberacion
    import liberacion.api

    resolved = {}
    for name in liberacion.__all__:
        thing = getattr(liberacion, name)
        if (callable(thing) and not isinstance(thing, type)) or name in ("TableDetails", "PruneReport"):
            resolved[name] = typing.get_type_hints(thing)
    public_api = [n for n in dir(liberacion.api) if not n.startswith("_") and callable(getattr(liberacion.api, n))]
    for name in public_api:
        if getattr(getattr(liberacion.api, name), "__module__", "") == "liberacion.api":
            resolved[f"api.{name}"] = typing.get_type_hints(getattr(liberacion.api, name))
    assert resolved["fetch"]["return"] == list[liberacion.FetchResult]
    assert resolved["refresh"]["on_event"] == (Callable[[liberacion.RefreshEvent], None] | None)
    assert resolved["api.catalogs"]["return"] == list[liberacion.CatalogStatus]
    assert resolved["TableDetails"]["snapshots"] == list[liberacion.Snapshot]
    import duckdb
    import pyarrow as pa

    assert resolved["sql"]["return"] == duckdb.DuckDBPyRelation | pa.Table


def test_importing_the_api_imports_neither_duckdb_nor_pyarrow() -> None:
    heavy = "('duckdb', 'pyarrow', 'liberacion.fetching')"
    code = f"import sys, liberacion.api; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
