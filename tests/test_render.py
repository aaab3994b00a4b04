"""PDF and Markdown renderings: checked through pdftotext, pdftoppm and a QR decoder (zbarimg)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from sundown.certificate import (
    CertificateException,
    ValidationResult,
    VerificationResult,
    sign_certificate,
    verify_certificate,
)
from sundown.render import (
    Rendering,
    certificate_markdown,
    certificate_pdf,
    rendering_of,
    status_in_words,
)
from tests.certificate_sample import sample_certificate
from tests.test_certificate import NOW, LocalSigner


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run scripts/setup-test-env (Debian package poppler-utils)")
    return path


def _rendering(with_exceptions: bool) -> Rendering:
    signer = LocalSigner()
    signed = sign_certificate(
        sample_certificate(now=NOW, with_exceptions=with_exceptions).certificate, signer
    )
    return rendering_of(verify_certificate(signed.data, signer.public_key_pem()))


def _pdf_text(pdf: Path, *, layout: bool = True) -> str:
    args = [_tool("pdftotext"), *(["-layout"] if layout else []), str(pdf), "-"]
    return subprocess.run(args, check=True, capture_output=True).stdout.decode()


@pytest.mark.parametrize("with_exceptions", [False, True])
def test_pdf_holds_what_an_auditor_needs(tmp_path: Path, with_exceptions: bool) -> None:
    r = _rendering(with_exceptions)
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(certificate_pdf(r))
    text = _pdf_text(pdf)
    flat = " ".join(text.split())
    cert = r.certificate
    headline, _sentence = status_in_words(cert.status)
    assert "Certificate of Sanitization" in flat
    assert f"Status: {headline}" in flat
    assert cert.certificate_id in flat
    assert "fraud-scorer-v3 / risk-ml@acme.example" in flat
    assert "Dana Okafor, ML platform engineer, Acme Payments Ltd" in flat
    assert "Lee Marchetti, Head of Security" in flat
    assert cert.plan_digest in flat and cert.system.spec_digest in flat
    for heading in ("Locations", "Keys destroyed", "Credentials revoked", "Exceptions"):
        assert heading in flat
    assert "s3://acme-ml-prod/systems/fraud-scorer-v3/weights" in flat
    assert "cloud object storage" in flat
    assert "vault://transit/fraud-" in flat
    assert "AKIAEXAMPLEFRAUDV3" in flat
    assert cert.deletion_manifest.digest in flat
    assert r.envelope_digest in flat  # in the signature block and every footer
    assert "Signature verified when this page was made" in flat
    assert "page 1 of" in flat
    if with_exceptions:
        assert "event-based hold (litigation LIT-2291)" in flat
        assert "soft-delete" in flat
        assert "2025-07-07" in flat  # the end of the soft-delete window
    else:
        assert "Exceptions None." in flat


def test_pdf_page_images_and_qr_code(tmp_path: Path) -> None:
    r = _rendering(True)
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(certificate_pdf(r))
    subprocess.run(
        [_tool("pdftoppm"), "-r", "150", "-png", str(pdf), str(tmp_path / "page")], check=True
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert 2 <= len(pages) <= 4
    first = Image.open(pages[0]).convert("RGB")
    assert first.size == (1241, 1754)  # A4 at 150 dpi
    # the status banner is amber for "complete with exceptions"
    colours = {c for _n, c in first.getcolors(1_000_000) or []}
    assert (0xB3, 0x6B, 0x00) in colours
    # the QR code decodes to the envelope digest
    decoded = subprocess.run(
        [_tool("zbarimg"), "--raw", "-q", *map(str, pages)], capture_output=True, check=False
    )
    assert decoded.stdout.decode().split() == [r.envelope_digest]


def test_unverified_rendering_says_so_and_text_is_escaped(tmp_path: Path) -> None:
    r = _rendering(True)
    cert = r.certificate.model_copy(
        update={
            "exceptions": [
                *r.certificate.exceptions,
                CertificateException(
                    subject="gs://acme-ml-data/systems/fraud-scorer-v3/training",
                    kind="note",
                    description="<b>not bold</b> & Zoë's | pipe",
                ),
            ]
        }
    )
    unverified = Rendering(cert, r.envelope_digest, None)
    pdf = tmp_path / "u.pdf"
    pdf.write_bytes(certificate_pdf(unverified))
    flat = " ".join(_pdf_text(pdf).split())
    assert "NOT verified when this page was made" in flat
    assert "<b>not bold</b> & Zoë's | pipe" in flat
    md = certificate_markdown(unverified)
    assert "**not verified**" in md
    assert "&lt;b&gt;not bold&lt;/b&gt; & Zoë's \\| pipe" in md


@pytest.mark.parametrize("with_exceptions", [False, True])
def test_markdown_for_the_prefect_artifact(with_exceptions: bool) -> None:
    r = _rendering(with_exceptions)
    md = certificate_markdown(r)
    headline, sentence = status_in_words(r.certificate.status)
    assert md.startswith("# Certificate of Sanitization: fraud-scorer-v3\n")
    assert f"**Status: {headline}.** {sentence}" in md
    assert "| `s3://acme-ml-prod/systems/fraud-scorer-v3/weights` |" in md
    assert f"- Envelope SHA-256: `{r.envelope_digest}`" in md
    assert "Signature verified with public key sha256:" in md
    assert ("| held |" in md) is with_exceptions
    # every table row has the same number of cells as its header
    for block in md.split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            widths = {row.replace("\\|", "").count("|") for row in rows}
            assert len(widths) == 1, block


def test_the_failed_certificates_a_retirement_follows_are_named_and_signed(
    tmp_path: Path,
) -> None:
    """A certificate that follows failed ones names them in the PDF, the Markdown and the
    signed payload; one that follows none has no such field at all (its bytes as before)."""
    signer = LocalSigner()
    plain = sample_certificate(now=NOW, with_exceptions=False).certificate
    assert b"follows_failed" not in sign_certificate(plain, signer).data
    follows = plain.model_copy(update={"follows_failed": ["DC-fraud-scorer-v3-20261201-0a1b"]})
    signed = sign_certificate(follows, signer)
    verified = verify_certificate(signed.data, signer.public_key_pem())
    assert verified.certificate.follows_failed == ["DC-fraud-scorer-v3-20261201-0a1b"]
    r = rendering_of(verified)
    assert "| Follows failed certificate(s) | DC-fraud-scorer-v3-20261201-0a1b |" in (
        certificate_markdown(r)
    )
    pdf = tmp_path / "f.pdf"
    pdf.write_bytes(certificate_pdf(r))
    flat = " ".join(_pdf_text(pdf).split())
    assert "Follows failed certificate(s) DC-fraud-scorer-v3-20261201-0a1b" in flat


def test_failed_status_reads_as_failed(tmp_path: Path) -> None:
    sample = sample_certificate(now=NOW, with_exceptions=True).certificate
    loc = sample.locations[0]
    failed_loc = loc.model_copy(
        update={
            "verification": loc.verification.model_copy(
                update={"result": VerificationResult.FAILED, "details": "3 versions remain"}
            ),
            "validation": loc.validation.model_copy(
                update={"result": ValidationResult.REJECTED, "details": "3 copies remain"}
            ),
            "remaining": 3,
        }
    )
    cert = sample.model_validate(
        {
            **sample.model_dump(),
            "locations": [failed_loc.model_dump(), *[x.model_dump() for x in sample.locations[1:]]],
            "status": "failed",
            "exceptions": [
                *[e.model_dump() for e in sample.exceptions],
                {
                    "subject": loc.uri,
                    "kind": "verification failed",
                    "description": "3 versions remain after the purge",
                },
            ],
        },
        strict=False,
    )
    r = Rendering(cert, "sha256:" + "0" * 64, None)
    pdf = tmp_path / "f.pdf"
    pdf.write_bytes(certificate_pdf(r))
    flat = " ".join(_pdf_text(pdf).split())
    assert "Status: FAILED" in flat
    assert "FAILED at" in flat  # the location's verification result
    assert "REJECTED: 3 copies remain" in flat  # and its validation, recorded apart
    assert "REMAINING: 3" in flat
    assert "**Status: FAILED.**" in certificate_markdown(r)


@pytest.mark.parametrize("with_exceptions", [False, True])
def test_per_copy_claims_are_readable_in_pdf_and_markdown(
    tmp_path: Path, with_exceptions: bool
) -> None:
    """A mixed location states both categories with their counts; a location with nothing
    found says so and makes no claim; irrecoverable-after is a time or "unknown" with a reason."""
    r = _rendering(with_exceptions)
    pdf = tmp_path / "c.pdf"
    pdf.write_bytes(certificate_pdf(r))
    flat = " ".join(_pdf_text(pdf, layout=False).split())
    # overview: the mixed weights location, both words and counts, never one word
    assert "Purge (cryptographic erase): 3 logical deletion only: 2" in flat
    assert "nothing found" in flat
    # detail: the protection found per copy and the full Rev. 2 words
    assert "envelope under vault://transit/fraud-scorer-v3: 3 copies" in flat
    assert "logical deletion (not an SP 800-88 sanitization method)" in flat
    assert "nothing found: no sanitization claim" in flat
    assert "Irrecoverable after: unknown: provider retention" in flat
    assert "Verification (did the step complete)" in flat
    assert "Validation (outcome accepted?)" in flat
    assert flat.count("ACCEPTED") == 3
    md = certificate_markdown(r)
    assert "Purge (cryptographic erase): 3<br>logical deletion only: 2" in md
    assert "- **Purge (cryptographic erase)**: 3 copies" in md
    assert "- **logical deletion (not an SP 800-88 sanitization method)**: 2 copies" in md
    assert "- Nothing found: no sanitization claim." in md
    assert "- Protection found: envelope under vault://transit/fraud-scorer-v3: 3 copies" in md
    assert md.count("- Validation: accepted") == 3
    if with_exceptions:  # the soft-delete window is the irrecoverable-after time, not the purge
        window = next(e for e in r.certificate.exceptions if e.kind == "soft-delete window")
        claim = r.certificate.locations[1].sanitization[0]
        assert claim.irrecoverable_after.at == window.until
