"""Shell completion through the real command, as bash, zsh and fish ask for it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from liberacion.lake import Lake
from tests.conftest import ROOT, run_process
from tests.manifests import write_catalog
from tests.server import LocalServer


def complete(shell: str, line: str, *, env: dict[str, str] | None = None) -> list[str]:
    """What ``liberacion`` offers for the last word of ``line`` in ``shell``."""
    words = line.split(" ")
    protocol = {"_LIBERACION_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        protocol |= {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    elif shell == "zsh":
        protocol |= {"_TYPER_COMPLETE_ARGS": line}
    else:
        protocol |= {"_TYPER_COMPLETE_ARGS": line, "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    result = run_process(env={**protocol, **(env or {})})
    assert result.returncode == 0, result.stderr
    if shell == "zsh":  # _arguments '*: :(("a":"help"\n"b"))': the values, one a line, without their help
        return [m.group(1) for m in re.finditer(r'^(?:.*\(\()?"([^"]*)"', result.stdout, re.M)]
    return [line.split("\t")[0] for line in result.stdout.splitlines() if line]


@pytest.fixture
def lake(home: Path) -> Lake:
    lake = Lake(home)
    for name in ("cms.hospitals", "cms.hospice", "cdc.places"):
        lake.publish(name, pa.table({"a": [1]}))
    return lake


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_commands_options_and_tables(shell: str, lake: Lake) -> None:
    assert {"search", "show", "sql"} <= set(complete(shell, "liberacion s"))
    assert "--format" in complete(shell, "liberacion sql --fo")
    assert complete(shell, "liberacion info cms.hosp") == ["cms.hospice", "cms.hospitals"]
    assert complete(shell, "liberacion history cdc.") == ["cdc.places"]
    assert set(complete(shell, "liberacion diff c")) == {"cms.hospice", "cms.hospitals", "cdc.places"}


def test_table_names_of_every_command_that_takes_one(lake: Lake) -> None:
    for command in ("info", "history", "diff", "prune", "refresh"):
        assert complete("bash", f"liberacion {command} cms.hospi") == ["cms.hospice", "cms.hospitals"], command
    assert complete("bash", "liberacion sql cdc.pl") == ["cdc.places"]
    assert complete("bash", "liberacion info nothing.") == []


def test_tables_of_the_home_named_on_the_line(lake: Lake, tmp_path: Path) -> None:
    other = tmp_path / "other"
    Lake(other).publish("nhanes.demo_i", pa.table({"a": [1]}))
    assert complete("bash", f"liberacion --home {other} info n") == ["nhanes.demo_i"]
    assert complete("bash", "liberacion info n") == []


@pytest.fixture
def indexed(cli: Any, manifests: Path, http_server: LocalServer) -> Any:
    items = [
        {"identifier": ident, "title": ident, "distribution": [{"downloadURL": f"https://x.gov/{ident}.csv"}]}
        for ident in ("hospital-general-information", "hospice-compare", "dialysis")
    ]
    http_server.add("/cms.json", json.dumps({"dataset": items}))
    write_catalog(manifests, "cms", [("dcat-us", http_server.url("/cms.json"))])
    assert cli("discover", "cms").exit_code == 0
    return cli


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_refs_from_the_index(shell: str, indexed: Any, home: Path) -> None:
    expected = ["cms/hospice-compare", "cms/hospital-general-information"]
    assert complete(shell, "liberacion show cms/hosp") == expected
    assert complete(shell, "liberacion fetch cms/hosp") == expected
    assert complete(shell, "liberacion fetch cms/dialysis cms/d") == ["cms/dialysis"]


def test_refs_come_from_a_names_file_kept_beside_the_index(indexed: Any, home: Path) -> None:
    names = home / "index" / "refs.txt"
    assert complete("bash", "liberacion show cms/d") == ["cms/dialysis"]
    assert "cms/dialysis" in names.read_text(encoding="utf-8").split()
    # The file answers while it is newer than the index ...
    names.write_text("cms/dialysis\ncms/drawn-from-the-file\n", encoding="utf-8")
    assert complete("bash", "liberacion show cms/dr") == ["cms/drawn-from-the-file"]
    # ... and is made again from the index when the index changes.
    index = home / "index" / "datasets.parquet"
    later = names.stat().st_mtime_ns + 10**9
    os.utime(index, ns=(later, later))
    assert complete("bash", "liberacion show cms/dr") == []
    assert complete("bash", "liberacion show cms/di") == ["cms/dialysis"]


def test_no_index_and_no_lake_complete_nothing() -> None:
    assert complete("bash", "liberacion show cms/") == []
    assert complete("bash", "liberacion info cms.") == []


@pytest.mark.parametrize(
    ("shell", "installed", "marker"),
    [
        ("bash", ".bash_completions/liberacion.sh", "_LIBERACION_COMPLETE=complete_bash"),
        ("zsh", ".zfunc/_liberacion", "_LIBERACION_COMPLETE=complete_zsh"),
        ("fish", ".config/fish/completions/liberacion.fish", "_LIBERACION_COMPLETE=complete_fish"),
    ],
)
def test_show_and_install_completion(shell: str, installed: str, marker: str, tmp_path: Path) -> None:
    # Typer names the shell it was run from; the variable lets a test name it instead.
    env = {"HOME": str(tmp_path), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    shown = run_process("--show-completion", shell, env=env)
    assert shown.returncode == 0, shown.stderr
    assert marker in shown.stdout
    result = run_process("--install-completion", shell, env=env)
    assert result.returncode == 0, result.stderr
    assert marker in (tmp_path / installed).read_text(encoding="utf-8")


def test_completing_a_table_loads_neither_duckdb_nor_pyarrow(lake: Lake) -> None:
    # Each TAB is a new process: table names come from directory names alone.
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted(m for m in ('duckdb', 'pyarrow', 'pydantic') if m in sys.modules), "
        "file=sys.stderr))\n"
        "from liberacion.cli import main\n"
        "main()\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "_LIBERACION_COMPLETE": "complete_bash",
        "COMP_WORDS": "liberacion info cms.hosp",
        "COMP_CWORD": "2",
    }
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout.split() == ["cms.hospice", "cms.hospitals"]
    assert proc.stderr.strip() == "[]", proc.stderr
