"""The environment for the liberacion processes a benchmark starts: without PYTHONDONTWRITEBYTECODE
(this machine sets it), so modules load from their cached bytecode, as an installed package's do,
instead of being compiled again on every run; and, for ``--baseline DIR``, one that imports
another version's package, checked.

Such processes run in ``NEUTRAL``: ``python -m liberacion`` puts its working directory first on
``sys.path``, so started from the project's root every version would be this tree's, whatever
PYTHONPATH says.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

NEUTRAL = "/"


def compiled_env() -> dict[str, str]:
    """``os.environ`` without PYTHONDONTWRITEBYTECODE."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@functools.cache
def package_env(package: Path) -> dict[str, str]:
    """``compiled_env()`` importing liberacion from ``package`` (a directory holding ``liberacion/``)
    in ``NEUTRAL``; exits if another copy would be imported. Checked once per package."""
    package = package.resolve()
    if not (package / "liberacion" / "__init__.py").exists():
        raise SystemExit(f"{package}: no liberacion/ package in it")
    env = {**compiled_env(), "PYTHONPATH": str(package)}
    found = subprocess.run(
        [sys.executable, "-c", "import liberacion; print(liberacion.__file__)"],
        env=env,
        cwd=NEUTRAL,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(package):
        raise SystemExit(f"{package}: liberacion is imported from {found} instead")
    return env
