"""``sundown connectors``: every URL scheme and credential kind, its kind, capabilities, the
package that provides it, whether it is installed here, and the install hint otherwise. The
listing itself is :func:`sundown.catalog.list_connectors`."""

from __future__ import annotations

import json

import typer

from sundown.catalog import Kind, list_connectors


def connectors(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per connector)."),
    kind: Kind | None = typer.Option(None, "--kind", help="Only connectors of this kind."),
) -> None:
    """List every connector: scheme or credential kind, what it is, what it can do, and what to
    install when its package is missing."""
    found = [c for c in list_connectors() if kind is None or c.kind == kind]
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in found], indent=2))
        return
    rows = [("NAME", "KIND", "INSTALLED", "PACKAGE", "CAPABILITIES")]
    for c in found:
        installed = "yes" if c.installed else f"no: {c.install_hint}"
        rows.append((c.name, str(c.kind), installed, c.package, ", ".join(c.capabilities)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        typer.echo("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])


def register(app: typer.Typer) -> None:
    app.command("connectors")(connectors)
