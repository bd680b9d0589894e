"""Options, overrides and settings that cannot be honoured are one clear error, never ignored without
a word: each case here was once accepted and had no effect (or another one than asked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import liberacion
from tests.test_errors import assert_one_error

TABLE = "local.t"


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "t.csv"
    path.write_text("a,beds\n1,10\n2,20\n", encoding="utf-8")
    return path


# -- refresh --check asks only -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--force"], ["--check and --force", "downloads nothing"]),  # was: checked, --force ignored
        (["--on-schema-change", "fail"], ["--check and --on-schema-change fail", "publishes nothing"]),
        (["--wait", "60"], ["--check and --wait", "never waits"]),
    ],
)
def test_refresh_check_refuses_options_it_cannot_honour(
    cli: Any, csv_file: Path, args: list[str], words: list[str]
) -> None:
    assert cli("fetch", str(csv_file), "--as", TABLE).exit_code == 0
    assert_one_error(cli("refresh", "--check", *args), 2, *words)
    assert cli("refresh", "--check", "--on-schema-change", "evolve", "--wait", "0").exit_code == 0


def test_refresh_check_from_python_names_the_parameters() -> None:
    with pytest.raises(liberacion.UsageError, match=r"^check and force cannot be combined"):
        liberacion.refresh(check=True, force=True)
    with pytest.raises(liberacion.UsageError, match=r"^check and on_schema_change='fail' cannot be combined"):
        liberacion.refresh(check=True, on_schema_change="fail")
