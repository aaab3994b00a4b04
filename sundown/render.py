"""Human renderings of a decommissioning certificate: a PDF for auditors, Markdown for Prefect.

The signed JSON (``certificate.dsse.json``) is the certificate; these renderings are views of
it. Both show the envelope digest, so a printed copy can be matched to the signed file
(``sha256sum certificate.dsse.json``), and the PDF carries it as a QR code too. Each rendering
says whether the signature was verified when it was made, and against which key.

Layout is reportlab's (platypus); the QR matrix is ``qrcode``'s, drawn as vector squares.
Fonts: Bitstream Vera (shipped with reportlab) embedded as subsets, so the PDF renders the same
everywhere; characters outside Latin-1 may show as missing glyphs.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

import qrcode
import qrcode.constants
from reportlab.graphics.shapes import Drawing, Rect
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from sundown.certificate import (
    Certificate,
    Counts,
    LocationRecord,
    Protection,
    Sanitization,
    SanitizationCategory,
    Status,
    ValidationResult,
    VerificationResult,
    VerifiedCertificate,
)

__all__ = [
    "Rendering",
    "certificate_markdown",
    "certificate_pdf",
    "rendering_of",
    "status_in_words",
]


@dataclass(frozen=True)
class Rendering:
    """What a rendering shows besides the certificate itself."""

    certificate: Certificate
    envelope_digest: str
    verified_with: str | None  # e.g. "public key sha256:<64 hex> (supplied)"; None: not verified
    ledger_head: str | None = None  # "SEQ:sha256:HASH" once the certificate is in the ledger


def rendering_of(
    verified: VerifiedCertificate, trust: str = "supplied", *, ledger_head: str | None = None
) -> Rendering:
    """The rendering input for a certificate that passed :func:`verify_certificate`."""
    return Rendering(
        verified.certificate,
        verified.envelope_digest,
        f"public key {verified.key_fingerprint} ({trust})",
        ledger_head,
    )


_STATUS_WORDS = {
    Status.COMPLETE: (
        "COMPLETE",
        "Every copy in scope was purged or archived as planned, verification passed, the keys "
        "were destroyed and the credentials revoked. There are no exceptions.",
    ),
    Status.COMPLETE_WITH_EXCEPTIONS: (
        "COMPLETE WITH EXCEPTIONS",
        "The work finished, but not everything in scope is gone yet or could be removed: "
        "each exception is listed below with its reason and, where known, its end date.",
    ),
    Status.FAILED: (
        "FAILED",
        "The decommissioning did not complete. Data or keys in scope may still be "
        "recoverable; the exceptions below say what remains.",
    ),
}

_STATUS_COLOURS = {
    Status.COMPLETE: colors.HexColor("#1b7f3b"),
    Status.COMPLETE_WITH_EXCEPTIONS: colors.HexColor("#b36b00"),
    Status.FAILED: colors.HexColor("#b3261e"),
}


def status_in_words(status: Status) -> tuple[str, str]:
    """(headline, sentence) for a status, in plain words."""
    return _STATUS_WORDS[status]


def _md_section(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown section: its heading, then a table of ``rows`` (or "None.")."""
    out = ["", f"## {title}", ""]
    if not rows:
        return [*out, "None."]
    return [
        *out,
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _table_section(
    title: str,
    headers: list[str],
    rows: list[list[Any]],
    fractions: list[float],
    empty: str,
    s: _Styles,
    w: float,
) -> list[Any]:
    """A section: its heading, then its table (column widths as fractions of ``w``), or the
    sentence ``empty`` when there is nothing to list."""
    if not rows:
        return [_p(title, s.h2), _p(empty, s.body)]
    return [_p(title, s.h2), _grid_table(headers, rows, s, [f * w for f in fractions])]


def _proof_cells(at: datetime, method: str, checks: Mapping[str, str], verified: bool) -> list[str]:
    """The last four cells of a key destroyed or a credential revoked: when, how, each check
    and what it observed, and whether the checks proved it."""
    return [
        _when(at),
        method,
        "\n".join(f"{n}: {v}" for n, v in checks.items()) or "none",
        "yes" if verified else "NO",
    ]


def _when(value: datetime | None) -> str:
    if value is None:
        return "n/a"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(n: int) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    value = float(n)
    for unit in units:
        if value < 1024 or unit == units[-1]:
            return f"{n:,} B" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _counts(c: Counts) -> str:
    return f"{c.objects:,} obj / {c.versions:,} ver / {_size(c.bytes)}"


def _found(c: Counts) -> str:
    """A location's found counts; "nothing found" when inventory found no copy at all."""
    return "nothing found" if c.versions == 0 and c.objects == 0 else _counts(c)


def _totals(cert: Certificate, attr: str) -> Counts:
    items = [getattr(loc, attr) for loc in cert.locations]
    return Counts(
        objects=sum(c.objects for c in items),
        versions=sum(c.versions for c in items),
        bytes=sum(c.bytes for c in items),
    )


# --- PDF -----------------------------------------------------------------------------------

_FONTS_READY = False


def _fonts() -> tuple[str, str]:
    global _FONTS_READY
    if not _FONTS_READY:
        pdfmetrics.registerFont(TTFont("Vera", "Vera.ttf"))
        pdfmetrics.registerFont(TTFont("Vera-Bold", "VeraBd.ttf"))
        pdfmetrics.registerFont(TTFont("Vera-Oblique", "VeraIt.ttf"))
        pdfmetrics.registerFont(TTFont("Vera-BoldOblique", "VeraBI.ttf"))
        pdfmetrics.registerFontFamily(
            "Vera", normal="Vera", bold="Vera-Bold", italic="Vera-Oblique",
            boldItalic="Vera-BoldOblique",
        )  # fmt: skip
        _FONTS_READY = True
    return "Vera", "Vera-Bold"


def _qr(data: str, size: float) -> Drawing:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    cell = size / len(matrix)
    drawing = Drawing(size, size)
    drawing.add(Rect(0, 0, size, size, fillColor=colors.white, strokeColor=None))
    for row, line in enumerate(matrix):
        for col, dark in enumerate(line):
            if dark:
                y = size - (row + 1) * cell
                drawing.add(
                    Rect(col * cell, y, cell, cell, fillColor=colors.black, strokeColor=None)
                )
    return drawing


class _Styles:
    def __init__(self) -> None:
        regular, bold = _fonts()
        base = getSampleStyleSheet()
        self.title = ParagraphStyle(
            "t", parent=base["Title"], fontName=bold, fontSize=17, leading=21, spaceAfter=2
        )
        self.subtitle = ParagraphStyle(
            "st", parent=base["Normal"], fontName=regular, fontSize=9, leading=12,
            alignment=TA_CENTER, textColor=colors.HexColor("#444444"),
        )  # fmt: skip
        self.h2 = ParagraphStyle(
            "h2", parent=base["Heading2"], fontName=bold, fontSize=11.5, leading=14,
            spaceBefore=9, spaceAfter=4, textColor=colors.HexColor("#1f2a44"), keepWithNext=1,
        )  # fmt: skip
        self.h3 = ParagraphStyle(
            "h3", parent=base["Heading3"], fontName=bold, fontSize=9.5, leading=12,
            spaceBefore=6, spaceAfter=3,
        )  # fmt: skip
        self.body = ParagraphStyle(
            "b", parent=base["Normal"], fontName=regular, fontSize=8.5, leading=11
        )
        self.cell = ParagraphStyle(
            "c", parent=base["Normal"], fontName=regular, fontSize=7.5, leading=9.4
        )
        self.cell_bold = ParagraphStyle("cb", parent=self.cell, fontName=bold)
        self.caption = ParagraphStyle(
            "cap", parent=self.cell, fontSize=6.5, alignment=TA_CENTER, textColor=colors.grey
        )
        self.mono = ParagraphStyle("m", parent=self.cell, fontName="Courier", fontSize=7.2)
        self.status_head = ParagraphStyle(
            "sh", parent=self.body, fontName=bold, fontSize=13, leading=16,
            textColor=colors.white,
        )  # fmt: skip
        self.status_body = ParagraphStyle("sb", parent=self.body, textColor=colors.white)


_GRID = colors.HexColor("#b8bfcc")
_HEAD_BG = colors.HexColor("#e6e9f0")
_LABEL_BG = colors.HexColor("#f3f4f7")


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text)).replace("\n", "<br/>"), style)


def _uri(text: str, style: ParagraphStyle, width: float) -> Paragraph:
    """A URI in a monospaced cell ``width`` points wide, broken after "/" where it must wrap
    (reportlab would otherwise split it anywhere)."""
    per_line = max(8, int((width - 12) / (0.6 * style.fontSize)))  # Courier: 0.6 em a glyph
    lines: list[str] = []
    current = ""
    for part in text.replace("/", "/\0").split("\0"):
        while len(part) > per_line:
            if current:
                lines.append(current)
                current = ""
            lines.append(part[:per_line])
            part = part[per_line:]
        if len(current) + len(part) > per_line:
            lines.append(current)
            current = ""
        current += part
    if current:
        lines.append(current)
    return Paragraph("<br/>".join(escape(line) for line in lines), style)


def _kv_table(
    rows: list[tuple[str, Any]], s: _Styles, width: float, mono: set[str], label: float = 0.27
) -> Table:
    data = [[_p(k, s.cell_bold), _p(v, s.mono if k in mono else s.cell)] for k, v in rows]
    table = Table(data, colWidths=[width * label, width * (1 - label)])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, _GRID),
                ("BACKGROUND", (0, 0), (0, -1), _LABEL_BG),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
            ]
        )
    )
    return table


def _grid_table(header: list[str], rows: list[list[Any]], s: _Styles, widths: list[float]) -> Table:
    data = [[_p(h, s.cell_bold) for h in header]]
    data += [[c if isinstance(c, Paragraph) else _p(c, s.cell) for c in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, _GRID),
                ("BACKGROUND", (0, 0), (-1, 0), _HEAD_BG),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
            ]
        )
    )
    return table


def _status_box(cert: Certificate, s: _Styles, width: float) -> Table:
    head, sentence = status_in_words(cert.status)
    box = Table(
        [[_p(f"Status: {head}", s.status_head)], [_p(sentence, s.status_body)]],
        colWidths=[width],
    )
    box.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), _STATUS_COLOURS[cert.status]),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, 0), 6),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 7),
            ]
        )
    )
    return box


def _protection_lines(loc: LocationRecord) -> str:
    if not loc.protection:
        return "nothing found"
    return "\n".join(
        f"{p.protection.value}" + (f" under {p.key}" if p.key else "")
        + f": {_copies(p.copies)}, {_size(p.bytes)}"
        + (f" ({'; '.join(p.notes)})" if p.notes and p.protection is not Protection.ENVELOPE
           else "")
        for p in loc.protection
    )  # fmt: skip


def _copies(n: int) -> str:
    return f"{n:,} copy" if n == 1 else f"{n:,} copies"


def _irrecoverable(claim: Sanitization) -> str:
    when = claim.irrecoverable_after
    head = _when(when.at) if when.at is not None else f"unknown: {when.unknown}"
    return f"{head}; basis: {when.basis}"


def _short_claims(loc: LocationRecord) -> str:
    """The overview table's claim cell: every category with its count, never one word for a
    mixed location."""
    if not loc.found.versions:
        return "nothing found"
    short = {
        SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE: "Purge (cryptographic erase)",
        SanitizationCategory.LOGICAL_DELETION: "logical deletion only",
    }
    parts = [f"{short[c.category]}: {c.copies.versions:,}" for c in loc.sanitization]
    if loc.held.versions:
        parts.append(f"held: {loc.held.versions:,}")
    if loc.remaining:
        parts.append(f"REMAINING: {loc.remaining:,}")
    return "\n".join(parts) or "no claim"


def _location_detail(loc: LocationRecord, index: int, s: _Styles, width: float) -> list[Any]:
    backups = (
        "\n".join(
            f"{b.kind}: {b.description}" + (f" ({b.uri})" if b.uri else "") + f" -> {b.disposition}"
            for b in loc.backups
        )
        or "none declared"
    )
    rows: list[tuple[str, Any]] = [
        ("Provider / media type", f"{loc.provider} / {loc.media_type}"),
        ("Data classification", loc.classification),
        (
            "Settings found",
            f"versioning: {loc.settings.versioning}; soft delete: {loc.settings.soft_delete}; "
            f"object lock: {loc.settings.object_lock}",
        ),
        ("Found", _found(loc.found)),
        ("Protection found (per copy, when planned)", _protection_lines(loc)),
        ("Purged", _counts(loc.purged)),
        ("Archived", _counts(loc.archived)),
        ("Held (not deleted)", _counts(loc.held)),
        (
            "Copies by outcome",
            f"covered by cryptographic erase: {_counts(loc.ce_covered)}\n"
            f"logically deleted only: {_counts(loc.logically_deleted)}\n"
            f"held: {loc.held.versions:,}; remaining after verification: {loc.remaining:,}",
        ),
    ]
    if not loc.sanitization:
        rows.append(
            (
                "Sanitization",
                "nothing found: no sanitization claim"
                if not loc.found.versions
                else "no claim: no copy was deleted or erased",
            )
        )
    for claim in loc.sanitization:
        rows.append(
            (
                claim.category.value,
                f"{_counts(claim.copies)}\n{claim.method}\n"
                f"Irrecoverable after: {_irrecoverable(claim)}",
            )
        )
    rows += [
        (
            "Verification (did the step complete)",
            f"{loc.verification.result.value.upper()} at {_when(loc.verification.verified_at)}: "
            f"{loc.verification.method}; {loc.verification.details}",
        ),
        (
            "Validation (outcome accepted?)",
            f"{loc.validation.result.value.upper()}: {loc.validation.details} "
            f"({loc.validation.basis})",
        ),
        ("Backups and replicas", backups),
    ]
    return [KeepTogether([_p(f"{index}. {loc.uri}", s.h3), _kv_table(rows, s, width, set())])]


def _build_story(r: Rendering, s: _Styles, width: float) -> list[Any]:
    cert = r.certificate
    story: list[Any] = [
        _p("Certificate of Sanitization", s.title),
        _p(
            f"Decommissioning of the AI system \u201c{cert.system.name}\u201d \u2014 "
            "NIST SP 800-88 record adapted to cloud object storage",
            s.subtitle,
        ),
        Spacer(1, 5 * mm),
        _status_box(cert, s, width),
        Spacer(1, 2 * mm),
        _p("Summary", s.h2),
    ]
    approver = cert.approver
    performer = cert.performer
    story.append(
        _kv_table(
            [
                ("Certificate id", cert.certificate_id),
                ("Issued", _when(cert.issued_at)),
                ("AI system / owner", f"{cert.system.name} / {cert.system.owner}"),
                ("System spec digest", cert.system.spec_digest),
                ("Approved plan digest", cert.plan_digest),
                *(
                    [("Follows failed certificate(s)", ", ".join(cert.follows_failed))]
                    if cert.follows_failed
                    else []
                ),
                (
                    "Performed by",
                    f"{performer.name}, {performer.role}, {performer.organisation} "
                    f"({performer.contact})",
                ),
                (
                    "Approved by",
                    f"{approver.name}, {approver.role}, {approver.organisation} "
                    f"({approver.contact}) at {_when(cert.approved_at)}",
                ),
                (
                    "When",
                    f"{_when(cert.execution.started_at)} to {_when(cert.execution.completed_at)}",
                ),
                (
                    "Where",
                    "; ".join(cert.execution.accounts + cert.execution.regions) or "not recorded",
                ),
                ("Tool", f"{cert.tool.name} {cert.tool.version}"),
            ],
            s,
            width,
            {"System spec digest", "Approved plan digest"},
        )
    )

    story.append(_p("Locations", s.h2))
    rows: list[list[Any]] = []
    for i, loc in enumerate(cert.locations, 1):
        passed = loc.verification.result is VerificationResult.PASSED
        accepted = loc.validation.result is ValidationResult.ACCEPTED
        rows.append(
            [
                str(i),
                _uri(loc.uri, s.mono, 0.23 * width),
                _found(loc.found),
                _counts(loc.purged),
                _counts(loc.archived),
                _short_claims(loc),
                ("passed" if passed else "FAILED")
                + " / "
                + ("accepted" if accepted else "REJECTED"),
            ]
        )
    totals = ["", "Total"] + [_counts(_totals(cert, a)) for a in ("found", "purged", "archived")]
    rows.append([*totals, "", ""])
    w = width
    story.append(
        _grid_table(
            [
                "#",
                "Location",
                "Found",
                "Purged",
                "Archived",
                "Copies by claim",
                "Verified / validated",
            ],
            rows,
            s,
            [0.035 * w, 0.23 * w, 0.13 * w, 0.13 * w, 0.13 * w, 0.215 * w, 0.13 * w],
        )
    )
    story.append(Spacer(1, 1.5 * mm))
    story.append(
        _p(
            "obj = objects (keys), ver = every copy: versions, delete markers, snapshots. "
            "NIST SP 800-88 Rev. 2: \u201cPurge (cryptographic erase)\u201d is claimed only for "
            "copies proven encrypted under a key this retirement destroyed and verified gone; "
            "deleting through a provider\u2019s API or unlinking a file is logical deletion, "
            "not an SP 800-88 sanitization method.",
            s.cell,
        )
    )
    for i, loc in enumerate(cert.locations, 1):
        story += _location_detail(loc, i, s, width)

    story += _table_section(
        "Keys destroyed (cryptographic erase)",
        ["Key", "Versions", "Destroyed", "Method", "Checks", "Verified"],
        [
            [
                _uri(k.uri, s.mono, 0.21 * w),
                ", ".join(str(v) for v in k.versions_destroyed),
                *_proof_cells(k.destroyed_at, k.method, k.checks, k.verified),
            ]
            for k in cert.keys_destroyed
        ],
        [0.21, 0.1, 0.14, 0.19, 0.26, 0.1],
        "No keys were destroyed by this retirement.",
        s,
        w,
    )
    story += _table_section(
        "Credentials revoked",
        ["Kind", "Identifier", "Revoked", "Method", "Checks", "Verified"],
        [
            [
                c.kind,
                _uri(c.identifier, s.mono, 0.2 * w),
                *_proof_cells(c.revoked_at, c.method, c.checks, c.verified),
            ]
            for c in cert.credentials_revoked
        ],
        [0.12, 0.2, 0.14, 0.17, 0.27, 0.1],
        "No credentials were revoked by this retirement.",
        s,
        w,
    )
    story += _table_section(
        "Exceptions",
        ["Subject", "Kind", "What remains and why", "Amount", "Until"],
        [
            [
                _uri(e.subject, s.mono, 0.24 * w),
                e.kind,
                e.description,
                f"{e.objects:,} obj / {_size(e.bytes)}",
                _when(e.until),
            ]
            for e in cert.exceptions
        ],
        [0.24, 0.12, 0.34, 0.15, 0.15],
        "None.",
        s,
        w,
    )

    story.append(_p("Evidence", s.h2))
    m = cert.deletion_manifest
    story.append(
        _kv_table(
            [
                (
                    "Deletion manifest",
                    f"{m.name}: {m.entries:,} purged copies, {_size(m.purged_bytes)}",
                ),
                ("Manifest SHA-256", m.digest),
            ],
            s,
            width,
            {"Manifest SHA-256"},
        )
    )
    story.append(_signatures(r, s, width))
    return story


def _signatures(r: Rendering, s: _Styles, width: float) -> KeepTogether:
    cert = r.certificate
    signing = cert.signing
    verified = (
        f"Signature verified when this page was made, with {r.verified_with}."
        if r.verified_with
        else "The signature was NOT verified when this page was made: run "
        "\u201csundown certificate verify\u201d on the signed file."
    )
    rows: list[tuple[str, Any]] = [
        ("Signed file", "certificate.dsse.json: DSSE envelope, in-toto Statement v1"),
        ("Envelope SHA-256", r.envelope_digest),
        ("Signing key id", signing.key_id if signing else "unsigned"),
        ("Public key SHA-256", signing.public_key_fingerprint if signing else "unsigned"),
        ("Algorithm", "ECDSA P-256 with SHA-256 over the DSSE v1 pre-authentication encoding"),
        ("Verification", verified),
    ]
    if r.ledger_head:
        rows.append(("Ledger head", r.ledger_head))
    qr_size = 30 * mm
    info = _kv_table(
        rows,
        s,
        width - qr_size - 4 * mm,
        {"Envelope SHA-256", "Public key SHA-256", "Ledger head"},
        0.2,
    )
    qr = Table(
        [[_qr(r.envelope_digest, qr_size)], [_p("envelope SHA-256", s.caption)]],
        colWidths=[qr_size],
    )
    qr.setStyle(
        TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    top = Table([[info, qr]], colWidths=[width - qr_size - 4 * mm, qr_size + 4 * mm])
    top.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    line = "_" * 34
    sign_rows = [
        [_p("Performed by", s.cell_bold), _p("Approved by", s.cell_bold)],
        [
            _p(f"{cert.performer.name}, {cert.performer.role}", s.cell),
            _p(f"{cert.approver.name}, {cert.approver.role}", s.cell),
        ],
        [_p(f"Signature {line}  Date __________", s.cell)] * 2,
    ]
    sign = Table(sign_rows, colWidths=[width / 2, width / 2])
    sign.setStyle(
        TableStyle(
            [
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 2), (-1, 2), 16),
            ]
        )
    )
    return KeepTogether(
        [
            _p("Signatures", s.h2),
            top,
            Spacer(1, 3 * mm),
            _p(
                "Optional hand signatures for the paper record. The electronic signature "
                "above is what binds this certificate; this page is a rendering of it.",
                s.cell,
            ),
            Spacer(1, 1 * mm),
            sign,
        ]
    )


class _NumberedCanvas(Canvas):
    """Defers each page so the footer can say "page N of M"."""

    footer: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            if self.footer is not None:
                self.footer(self, total)
            super().showPage()
        super().save()


def certificate_pdf(r: Rendering) -> bytes:
    """The certificate as an A4 PDF (bytes)."""
    s = _Styles()
    buffer = io.BytesIO()
    margin = 16 * mm
    cert = r.certificate
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin + 4 * mm,
        title=f"Certificate of Sanitization {cert.certificate_id}",
        author=f"{cert.tool.name} {cert.tool.version}",
        subject=f"Decommissioning of {cert.system.name}: {cert.status.value}",
        creator=f"{cert.tool.name} {cert.tool.version}",
    )
    regular, _bold = _fonts()

    def footer(canvas: Canvas, total: int) -> None:
        canvas.saveState()
        canvas.setFont(regular, 6.8)
        canvas.setFillColor(colors.HexColor("#555555"))
        y = margin - 2 * mm
        canvas.drawString(margin, y, f"{cert.certificate_id}  \u00b7  envelope {r.envelope_digest}")
        page = f"page {canvas.getPageNumber()} of {total}"
        canvas.drawRightString(A4[0] - margin, y + 3.2 * mm, page)  # above: the digest is long
        canvas.restoreState()

    canvas_class = type("_Canvas", (_NumberedCanvas,), {"footer": staticmethod(footer)})
    doc.build(_build_story(r, s, A4[0] - 2 * margin), canvasmaker=canvas_class)
    return buffer.getvalue()


# --- Markdown ------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """Escape for a Markdown table cell."""
    return (
        str(text)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("\n", "<br>")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("&lt;br&gt;", "<br>")
    )


def certificate_markdown(r: Rendering) -> str:
    """The certificate as Markdown (for a Prefect artifact)."""
    cert = r.certificate
    head, sentence = status_in_words(cert.status)
    where = _md("; ".join(cert.execution.accounts + cert.execution.regions) or "not recorded")
    out = [
        f"# Certificate of Sanitization: {_md(cert.system.name)}",
        "",
        f"**Status: {head}.** {sentence}",
        "",
        "| | |",
        "|---|---|",
        f"| Certificate id | `{_md(cert.certificate_id)}` |",
        f"| Issued | {_when(cert.issued_at)} |",
        f"| System / owner | {_md(cert.system.name)} / {_md(cert.system.owner)} |",
        f"| System spec digest | `{cert.system.spec_digest}` |",
        f"| Approved plan digest | `{cert.plan_digest}` |",
        *(
            [f"| Follows failed certificate(s) | {_md(', '.join(cert.follows_failed))} |"]
            if cert.follows_failed
            else []
        ),
        f"| Performed by | {_md(cert.performer.name)}, {_md(cert.performer.role)}, "
        f"{_md(cert.performer.organisation)} |",
        f"| Approved by | {_md(cert.approver.name)}, {_md(cert.approver.role)}, "
        f"{_md(cert.approver.organisation)} at {_when(cert.approved_at)} |",
        f"| When | {_when(cert.execution.started_at)} to {_when(cert.execution.completed_at)} |",
        f"| Where | {where} |",
        f"| Tool | {_md(cert.tool.name)} {_md(cert.tool.version)} |",
        "",
        "## Locations",
        "",
        "| Location | Found | Purged | Archived | Held | Copies by claim | Verification "
        "| Validation |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for loc in cert.locations:
        out.append(
            f"| `{_md(loc.uri)}` | {_found(loc.found)} | {_counts(loc.purged)} | "
            f"{_counts(loc.archived)} | {_counts(loc.held)} | {_md(_short_claims(loc))} | "
            f"{loc.verification.result.value}: {_md(loc.verification.details)} | "
            f"{loc.validation.result.value} |"
        )
    out += [
        "",
        '"Purge (cryptographic erase)" is claimed only for copies proven encrypted under a key '
        "this retirement destroyed and verified gone (NIST SP 800-88 Rev. 2); deleting through "
        "a provider's API or unlinking a file is logical deletion, not an SP 800-88 "
        "sanitization method.",
    ]
    for i, loc in enumerate(cert.locations, 1):
        out += ["", f"### {i}. `{_md(loc.uri)}`", ""]
        out.append(f"- Protection found: {_md(_protection_lines(loc)).replace('<br>', '; ')}")
        out.append(
            f"- Copies by outcome: covered by cryptographic erase {loc.ce_covered.versions:,}; "
            f"logically deleted only {loc.logically_deleted.versions:,}; held "
            f"{loc.held.versions:,}; remaining {loc.remaining:,}"
        )
        if not loc.found.versions:
            out.append("- Nothing found: no sanitization claim.")
        for claim in loc.sanitization:
            out.append(
                f"- **{claim.category.value}**: {_copies(claim.copies.versions)} "
                f"({_size(claim.copies.bytes)}); {_md(claim.method)}; irrecoverable after "
                f"{_md(_irrecoverable(claim))}"
            )
        out.append(
            f"- Verification: {loc.verification.result.value}: {_md(loc.verification.details)}"
        )
        out.append(
            f"- Validation: {loc.validation.result.value}: {_md(loc.validation.details)} "
            f"({_md(loc.validation.basis)})"
        )
    out += _md_section(
        "Keys destroyed",
        ["Key", "Versions", "Destroyed", "Verified"],
        [
            [
                f"`{_md(k.uri)}`",
                ", ".join(str(v) for v in k.versions_destroyed),
                _when(k.destroyed_at),
                "yes" if k.verified else "**no**",
            ]
            for k in cert.keys_destroyed
        ],
    )
    out += _md_section(
        "Credentials revoked",
        ["Kind", "Identifier", "Revoked", "Verified"],
        [
            [
                _md(c.kind),
                f"`{_md(c.identifier)}`",
                _when(c.revoked_at),
                "yes" if c.verified else "**no**",
            ]
            for c in cert.credentials_revoked
        ],
    )
    out += _md_section(
        "Exceptions",
        ["Subject", "Kind", "Description", "Until"],
        [
            [f"`{_md(e.subject)}`", _md(e.kind), _md(e.description), _when(e.until)]
            for e in cert.exceptions
        ],
    )
    signing = cert.signing
    out += [
        "",
        "## Signature",
        "",
        f"- Envelope SHA-256: `{r.envelope_digest}`",
        f"- Deletion manifest: `{_md(cert.deletion_manifest.name)}` "
        f"({cert.deletion_manifest.entries:,} entries), `{cert.deletion_manifest.digest}`",
        f"- Signing key: `{_md(signing.key_id) if signing else 'unsigned'}` "
        f"(`{signing.public_key_fingerprint if signing else '-'}`)",
        "- "
        + (
            f"Signature verified with {_md(r.verified_with)}."
            if r.verified_with
            else "Signature **not verified** when rendered: run `sundown certificate verify`."
        ),
        *(
            [
                f"- Ledger head after recording this certificate: `{r.ledger_head}` (keep it: "
                "`sundown ledger verify --expect-head` shows a ledger cut short before it)"
            ]
            if r.ledger_head
            else []
        ),
        "",
    ]
    return "\n".join(out)
