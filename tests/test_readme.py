"""The README's command reference is the CLI's own help: this test fails when they drift.

Regenerate it with: UPDATE_README=1 python -m pytest tests/test_readme.py
"""

from __future__ import annotations

import os
import re

from tests.conftest import ROOT, run_process

START = "<!-- commands:start (generated from --help; UPDATE_README=1 python -m pytest tests/test_readme.py) -->"
END = "<!-- commands:end -->"


def _commands() -> list[str]:
    from typer.main import get_command

    from liberacion.cli import app

    return sorted(get_command(app).commands)  # type: ignore[attr-defined]


def command_reference() -> str:
    env = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
    parts = []
    for args in [[], *([c] for c in _commands())]:
        text = run_process(*args, "--help", env=env).stdout.rstrip()
        title = "liberacion " + " ".join(args) if args else "liberacion"
        parts.append(f"### `{title.strip()}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def test_readme_command_reference_matches_the_cli() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + r"\n(.*?)" + re.escape(END), re.S)
    match = pattern.search(readme)
    assert match, "README.md lacks the generated command reference markers"
    expected = command_reference()
    if os.environ.get("UPDATE_README"):
        readme = pattern.sub(lambda _: f"{START}\n{expected}{END}", readme)
        (ROOT / "README.md").write_text(readme, encoding="utf-8")
        return
    assert match.group(1) == expected, (
        "README command reference is stale: UPDATE_README=1 python -m pytest tests/test_readme.py"
    )


def test_every_command_has_an_example_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split(START)[0]
    for command in _commands():
        assert f"liberacion {command}" in readme, f"no example of `liberacion {command}` in the README"
