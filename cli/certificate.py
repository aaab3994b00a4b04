"""``sundown certificate ...``: verify and render decommissioning certificates, offline.

Trust needs an anchor the verifier holds (``sundown.trust``): ``--public-key PEM``,
``--fingerprint sha256:<64 hex>``, or a trust file of pinned fingerprints (``--trust FILE``; by
default ``$SUNDOWN_HOME/trust.json`` when no anchor option is given). Without one, a valid
signature is reported and refused: "signature valid under sha256:X, but nothing you trust vouches
for sha256:X". A key carried inside a certificate, or pinned by a ledger, is never trusted on its
own: ``--ledger URL`` is evidence, checked in addition (the ledger verifies, its genesis pins an
anchored key, and it records this certificate's envelope digest).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from sundown.certificate import read_manifest_reference, unverified_certificate
from sundown.errors import InputError, IntegrityError
from sundown.ledger import Ledger
from sundown.trust import AnchoredCertificate, TrustAnchors, anchors_from_options, verify_anchored

certificate_app = typer.Typer(
    name="certificate",
    help="Verify and render signed decommissioning certificates (offline, against a trust anchor).",
    no_args_is_help=True,
)

_CERT = typer.Argument(..., metavar="CERT", help="The certificate file (DSSE envelope JSON).")
PUBLIC_KEY_OPTION = typer.Option(
    None,
    "--public-key",
    metavar="PEM",
    help="Trust anchor: a certificate-signing public key you hold (repeatable).",
)
FINGERPRINT_OPTION = typer.Option(
    None,
    "--fingerprint",
    metavar="sha256:HEX",
    help="Trust anchor: the full sha256 fingerprint of a signing key you trust (repeatable).",
)
TRUST_OPTION = typer.Option(
    None,
    "--trust",
    metavar="FILE",
    help="Trust anchor: a trust file of pinned fingerprints (repeatable; default "
    "$SUNDOWN_HOME/trust.json when no anchor option is given).",
)
_LEDGER = typer.Option(
    None,
    "--ledger",
    metavar="URL",
    help="Also check this evidence ledger: it verifies, its genesis pins a trusted key, and it "
    "records the certificate (evidence, never an anchor).",
)
_EXPECT_HEAD = typer.Option(
    None,
    "--expect-head",
    metavar="SEQ:sha256:HASH",
    help="With --ledger: a ledger head you kept; records up to it must be unchanged.",
)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            yield chunk


def anchors_of(
    public_key: list[Path] | None, fingerprint: list[str] | None, trust: list[Path] | None
) -> TrustAnchors:
    """The trust anchors given on the command line (else the default trust file, if any)."""
    return anchors_from_options(public_key or (), fingerprint or (), trust or ())


def verify_file(
    cert: Path,
    anchors: TrustAnchors,
    ledger: str | None = None,
    expect_head: str | None = None,
) -> tuple[AnchoredCertificate, Path]:
    """Verify signature, fields and trust, then the deletion manifest when it lies beside
    ``cert``, then the ledger when given."""
    if expect_head is not None and ledger is None:
        raise InputError("--expect-head needs --ledger URL (the ledger whose head it is)")
    data = cert.read_bytes()
    book = Ledger.open(ledger) if ledger is not None else None
    try:
        anchored = verify_anchored(data, anchors)
        name = anchored.verified.certificate.deletion_manifest.name  # a bare file name
        manifest_path = cert.parent / name
        manifest = (
            read_manifest_reference(_chunks(manifest_path), name)
            if manifest_path.is_file()
            else None
        )
        if manifest is not None or book is not None:
            anchored = verify_anchored(
                data, anchors, manifest=manifest, ledger=book, expect_head=expect_head
            )
    except IntegrityError as exc:
        raise type(exc)(f"{exc} (in {cert})") from None
    return anchored, manifest_path


@certificate_app.command("verify")
def verify(
    cert: Path = _CERT,
    public_key: list[Path] | None = PUBLIC_KEY_OPTION,
    fingerprint: list[str] | None = FINGERPRINT_OPTION,
    trust: list[Path] | None = TRUST_OPTION,
    ledger: str | None = _LEDGER,
    expect_head: str | None = _EXPECT_HEAD,
) -> None:
    """Verify signature, fields and the signing key against your trust anchor; the deletion
    manifest when it lies beside the certificate; with --ledger, that the ledger records it.

    Exit 0 and a one-line summary when valid; exit 3 naming what failed otherwise (also when
    nothing you trust vouches for the signing key)."""
    anchored, manifest_path = verify_file(
        cert, anchors_of(public_key, fingerprint, trust), ledger, expect_head
    )
    note = (
        ""
        if anchored.verified.manifest_checked
        else f" ({manifest_path.name} not found beside the certificate)"
    )
    typer.echo(f"OK {anchored.summary(note)}")


@certificate_app.command("render")
def render(
    cert: Path = _CERT,
    out: Path = typer.Option(
        ..., "--out", metavar="FILE", help="Output file: .pdf for auditors, .md for Markdown."
    ),
    public_key: list[Path] | None = PUBLIC_KEY_OPTION,
    fingerprint: list[str] | None = FINGERPRINT_OPTION,
    trust: list[Path] | None = TRUST_OPTION,
    ledger: str | None = _LEDGER,
    expect_head: str | None = _EXPECT_HEAD,
    unverified: bool = typer.Option(
        False,
        "--unverified",
        help="Render without verifying; the rendering then says it was not verified.",
    ),
) -> None:
    """Render a certificate as a PDF (or Markdown), after verifying it."""
    from sundown.certificate import envelope_digest
    from sundown.render import Rendering, certificate_markdown, certificate_pdf, rendering_of

    suffix = out.suffix.lower()
    if suffix not in (".pdf", ".md"):
        raise InputError(f"--out {out}: the file name must end in .pdf or .md")
    if unverified:
        data = cert.read_bytes()
        rendering = Rendering(unverified_certificate(data), envelope_digest(data), None)
        print("sundown: warning: rendering WITHOUT verifying the signature", file=sys.stderr)
    else:
        anchored, _manifest = verify_file(
            cert, anchors_of(public_key, fingerprint, trust), ledger, expect_head
        )
        rendering = rendering_of(
            anchored.verified,
            anchored.anchor.source,
            ledger_head=anchored.ledger.head if anchored.ledger is not None else None,
        )
    if suffix == ".pdf":
        out.write_bytes(certificate_pdf(rendering))
    else:
        out.write_text(certificate_markdown(rendering), encoding="utf-8")
    typer.echo(f"wrote {out} ({rendering.certificate.certificate_id}, {rendering.envelope_digest})")


def register(app: typer.Typer) -> None:
    """Add ``sundown certificate`` to the app."""
    app.add_typer(certificate_app, name="certificate")
