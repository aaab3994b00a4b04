"""Commands of this area are added by the module's owner."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sundown`` app."""
