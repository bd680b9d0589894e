"""The command line: thin Typer commands over the public API (``liberacion.api``).

``app`` holds the global options and turns errors into one ``error:`` line and an exit code;
the commands live in one module per group and register themselves on ``app`` when imported.
"""

from liberacion.cli import catalog_commands, fetch_commands, lake_commands
from liberacion.cli.app import app, help_from_source, main, run

help_from_source(app)  # ``python -OO``: the commands' help is their docstrings

__all__ = ["app", "catalog_commands", "fetch_commands", "lake_commands", "main", "run"]
