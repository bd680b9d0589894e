"""``--param`` values a user may well give: text over several lines, a long value. An error about
one names the ``--param`` it came from, as it does for a short one."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from liberacion.lake import Lake
from tests.conftest import Cli


@pytest.fixture
def lake(home: Path) -> Lake:
    lake = Lake(home)
    lake.publish("cms.beds", pa.table({"state": ["CA", "MA"], "beds": [12, 300]}))
    return lake


@pytest.mark.parametrize("value", ["12\n13", "1 2\t3", "9" * 40 + "x" * 700], ids=["lines", "spaces", "long"])
@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_a_value_that_cannot_be_read_as_the_column_type_names_its_param(
    cli: Cli, lake: Lake, value: str, fmt: str
) -> None:
    """A value over several lines, or one long enough for the message to lose its middle, was
    said without the --param it came from (DuckDB's message holds it spelled on one line, or cut)."""
    result = cli("sql", "select state from cms.beds where beds > $m", "--param", f"m={value}", "--format", fmt)
    assert result.exit_code == 4, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "the value of --param m" in line, line
