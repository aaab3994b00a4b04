"""``sundown ledger ...``: list and verify the evidence ledger (``$SUNDOWN_HOME/ledger``)."""

from __future__ import annotations

from pathlib import Path

import typer

from sundown.ledger import Ledger, default_ledger_url

ledger_app = typer.Typer(
    name="ledger",
    help="List and verify the evidence ledger: hash-chained, signed lifecycle records.",
    no_args_is_help=True,
)

_LEDGER = typer.Option(
    None,
    "--ledger",
    metavar="URL",
    help="Ledger location (file://, s3://, gs://, az://); default $SUNDOWN_HOME/ledger.",
)


@ledger_app.command("verify")
def verify(
    ledger: str | None = _LEDGER,
    public_key: Path | None = typer.Option(
        None,
        "--public-key",
        metavar="PEM",
        help="The signing public key the first record must pin (default: trust on first use).",
    ),
) -> None:
    """Check the chain and every signature; exit 3 naming the first broken record."""
    pem = public_key.read_bytes() if public_key is not None else None
    report = Ledger.open(ledger or default_ledger_url()).verify(pem)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.kinds.items()))
    typer.echo(f"OK {report.summary()}; {kinds}")


@ledger_app.command("list")
def list_records(ledger: str | None = _LEDGER) -> None:
    """Show the records in order (not verified: use `sundown ledger verify`)."""
    book = Ledger.open(ledger or default_ledger_url())
    count = 0
    for stored in book.records():
        rec = stored.record
        when = rec.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        evidence = f"{rec.evidence.digest[:19]}... {rec.evidence.location}" if rec.evidence else "-"
        typer.echo(f"{rec.sequence:>6}  {when}  {rec.kind.value:<12}  {rec.subject}  {evidence}")
        count += 1
    typer.echo(f"{count} record(s) in {book.url} (listed, not verified)")


def register(app: typer.Typer) -> None:
    """Add ``sundown ledger`` to the app."""
    app.add_typer(ledger_app, name="ledger")
