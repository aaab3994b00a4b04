"""``sundown certificate ...``: verify and render decommissioning certificates, offline.

Trust comes from a public key the verifier holds: ``--public-key PEM``, or else the
certificate-signing key pinned by the evidence ledger's first record (``--ledger URL``, default
``$SUNDOWN_HOME/ledger``). A key carried inside a certificate is never trusted on its own.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from sundown.certificate import (
    VerifiedCertificate,
    read_manifest_reference,
    unverified_certificate,
    verify_certificate,
)
from sundown.errors import InputError, IntegrityError, NotFoundError
from sundown.ledger import Ledger, default_ledger_url

certificate_app = typer.Typer(
    name="certificate",
    help="Verify and render signed decommissioning certificates (offline).",
    no_args_is_help=True,
)

_CERT = typer.Argument(..., metavar="CERT", help="The certificate file (DSSE envelope JSON).")
_PUBLIC_KEY = typer.Option(
    None,
    "--public-key",
    metavar="PEM",
    help="The certificate-signing public key to trust (default: the key pinned by the ledger).",
)
_LEDGER = typer.Option(
    None, "--ledger", metavar="URL", help="Evidence ledger whose pinned key to trust."
)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            yield chunk


def trusted_key(public_key: Path | None, ledger_url: str | None) -> tuple[bytes, str]:
    """(PEM, where the trust comes from)."""
    if public_key is not None:
        return public_key.read_bytes(), f"supplied {public_key.name}"
    url = ledger_url or default_ledger_url()
    try:
        return Ledger.open(url).pinned_public_key(), f"pinned by the ledger {url}"
    except NotFoundError:
        raise InputError(
            f"no trusted public key: pass --public-key PEM, or pin the certificate-signing key "
            f"in an evidence ledger (none at {url})"
        ) from None


def verify_file(
    cert: Path, public_key: Path | None, ledger: str | None
) -> tuple[VerifiedCertificate, str, Path]:
    """Verify signature and fields, then the deletion manifest when it lies beside ``cert``."""
    data = cert.read_bytes()
    pem, trust = trusted_key(public_key, ledger)
    try:
        verified = verify_certificate(data, pem)
    except IntegrityError as exc:
        raise IntegrityError(f"{exc} (in {cert})") from None
    name = verified.certificate.deletion_manifest.name  # a bare file name (validated)
    manifest_path = cert.parent / name
    if manifest_path.is_file():
        manifest = read_manifest_reference(_chunks(manifest_path), name)
        verified = verify_certificate(data, pem, manifest=manifest)
    return verified, trust, manifest_path


@certificate_app.command("verify")
def verify(
    cert: Path = _CERT,
    public_key: Path | None = _PUBLIC_KEY,
    ledger: str | None = _LEDGER,
) -> None:
    """Verify signature, fields and (when it lies beside the certificate) the deletion manifest.

    Exit 0 and a one-line summary when valid; exit 3 naming what failed otherwise."""
    verified, trust, manifest_path = verify_file(cert, public_key, ledger)
    line = verified.summary()
    if not verified.manifest_checked:
        line += f" ({manifest_path.name} not found beside the certificate)"
    typer.echo(f"OK {line}; trusted key {trust}")


@certificate_app.command("render")
def render(
    cert: Path = _CERT,
    out: Path = typer.Option(
        ..., "--out", metavar="FILE", help="Output file: .pdf for auditors, .md for Markdown."
    ),
    public_key: Path | None = _PUBLIC_KEY,
    ledger: str | None = _LEDGER,
    unverified: bool = typer.Option(
        False,
        "--unverified",
        help="Render without a trusted key; the rendering then says it was not verified.",
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
        verified, trust, _manifest = verify_file(cert, public_key, ledger)
        rendering = rendering_of(verified, trust)
    if suffix == ".pdf":
        out.write_bytes(certificate_pdf(rendering))
    else:
        out.write_text(certificate_markdown(rendering), encoding="utf-8")
    typer.echo(f"wrote {out} ({rendering.certificate.certificate_id}, {rendering.envelope_digest})")


def register(app: typer.Typer) -> None:
    """Add ``sundown certificate`` to the app."""
    app.add_typer(certificate_app, name="certificate")
