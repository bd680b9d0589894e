"""The README's Python section runs as written (its code blocks, in order), on a local file."""

from __future__ import annotations

import re
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
