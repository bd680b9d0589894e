"""The environment for the liberacion processes a benchmark starts: without PYTHONDONTWRITEBYTECODE
(this machine sets it), so modules load from their cached bytecode, as an installed package's do,
instead of being compiled again on every run."""

from __future__ import annotations

import os


def compiled_env() -> dict[str, str]:
    """``os.environ`` without PYTHONDONTWRITEBYTECODE."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
