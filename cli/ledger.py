"""``sundown ledger ...``: list and verify the evidence ledger (``$SUNDOWN_HOME/ledger``).

``verify`` needs a trust anchor like ``sundown certificate verify`` does (``--public-key``,
``--fingerprint``, ``--trust``, or ``$SUNDOWN_HOME/trust.json``): the genesis record's pin is
self-signed, so a whole ledger made by someone else verifies as a chain; only an anchor says whose
chain it is. ``--expect-head SEQ:sha256:HASH`` (printed by every command that appends) shows a
ledger cut short or rewritten up to that record.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.certificate import (
    FINGERPRINT_OPTION,
    PUBLIC_KEY_OPTION,
    TRUST_OPTION,
    anchors_of,
)
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
    public_key: list[Path] | None = PUBLIC_KEY_OPTION,
    fingerprint: list[str] | None = FINGERPRINT_OPTION,
    trust: list[Path] | None = TRUST_OPTION,
    expect_head: str | None = typer.Option(
        None,
        "--expect-head",
        metavar="SEQ:sha256:HASH",
        help="A head printed when a record was appended: records 0..SEQ must be exactly those.",
    ),
) -> None:
    """Check the chain and every signature, and that the genesis pins a key you trust; exit 3
    naming the first broken record, a ledger cut short before --expect-head, or an untrusted
    pin."""
    anchors = anchors_of(public_key, fingerprint, trust)
    report = Ledger.open(ledger or default_ledger_url()).verify(expect_head=expect_head)
    pinned = report.pinned_key_fingerprint
    anchor = anchors.find(pinned)
    if anchor is None:
        raise anchors.untrusted(
            pinned,
            f"ledger {report.url}: chain valid ({report.records} record(s), head {report.head}), "
            f"its genesis pins {pinned}",
        )
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.kinds.items()))
    expected = (
        f"; contains the expected head {report.expected_head}" if report.expected_head else ""
    )
    typer.echo(
        f"OK ledger {report.url} valid: {report.records} record(s), head {report.head}; "
        f"signed by {report.pinned_key_id} ({pinned}, trusted: {anchor.source}){expected}; "
        f"{kinds}"
    )


@ledger_app.command("list")
def list_records(ledger: str | None = _LEDGER) -> None:
    """Show the records in order (not verified: use `sundown ledger verify`)."""
    book = Ledger.open(ledger or default_ledger_url())
    count = 0
    for stored in book.records():
        rec = stored.record
        when = rec.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        evidence = f"{rec.evidence.digest} {rec.evidence.location}" if rec.evidence else "-"
        typer.echo(f"{rec.sequence:>6}  {when}  {rec.kind.value:<12}  {rec.subject}  {evidence}")
        count += 1
    typer.echo(f"{count} record(s) in {book.url} (listed, not verified)")


def register(app: typer.Typer) -> None:
    """Add ``sundown ledger`` to the app."""
    app.add_typer(ledger_app, name="ledger")
