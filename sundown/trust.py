"""Trust anchors: which certificate-signing keys a verifier trusts, and anchored verification.

A signature proves only that *some* key signed. Whose key it is comes from the verifier, never
from the thing verified: a certificate names and carries its signing key, an evidence ledger's
first record pins one, and either can be made by anyone with a key of their own. So every
verification here needs an anchor, one or more of:

* a public key the verifier holds (``--public-key PEM``): its fingerprint is trusted;
* a pinned fingerprint (``--fingerprint sha256:<64 hex>``, the full digest, never a prefix);
* a trust file of pinned fingerprints (``--trust FILE``; by default ``$SUNDOWN_HOME/trust.json``
  when no anchor option is given and the file exists), format::

      {"version": 1,
       "keys": [{"fingerprint": "sha256:<64 hex>",
                 "key_id": "vault://transit/cert-signing#v1",   (optional: the only key id
                                                                  a certificate may name)
                 "public_key": "-----BEGIN PUBLIC KEY-----...",  (optional PEM)
                 "note": "certificate-signing key, security team, 2026-03"}]}

:func:`verify_anchored` checks a certificate under a key whose fingerprint an anchor names, and,
given an evidence ledger, that the ledger verifies, that its genesis pins an anchored key and
that one of its records holds the certificate's envelope digest; a later signed record saying
the certificate no longer holds (a key deletion cancelled or reversed) fails the check, naming it.
The ledger is evidence there, never an anchor. The format of the trust file is in
``docs/formats/certificate.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from sundown import canonical
from sundown.certificate import (
    ManifestRef,
    VerifiedCertificate,
    parse_envelope,
    public_key_fingerprint,
    verify_certificate,
)
from sundown.errors import InputError, IntegrityError, NotFoundError
from sundown.ledger import KeyEvent, Ledger, LedgerReport, RecordKind, StoredRecord

TRUST_FILE_NAME = "trust.json"
TRUST_FILE_VERSION = 1
_FINGERPRINT_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

Fingerprint = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class UntrustedKeyError(IntegrityError):
    """A signature verified, but under a key no anchor of the verifier names."""


class _TrustEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    fingerprint: Fingerprint
    key_id: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    public_key: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    note: Annotated[str, StringConstraints(max_length=4096)] | None = None


class _TrustFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: int = Field(ge=TRUST_FILE_VERSION, le=TRUST_FILE_VERSION)
    keys: list[_TrustEntry] = Field(min_length=1)


@dataclass(frozen=True)
class Anchor:
    """One trusted key: its fingerprint, where the trust comes from, and optionally the only key
    id a certificate under it may carry and its public key (PEM)."""

    fingerprint: str
    source: str
    key_id: str | None = None
    public_key: bytes | None = None


@dataclass(frozen=True)
class TrustAnchors:
    anchors: tuple[Anchor, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.anchors)

    def find(self, fingerprint: str) -> Anchor | None:
        for anchor in self.anchors:
            if anchor.fingerprint == fingerprint:
                return anchor
        return None

    def fingerprints(self) -> list[str]:
        return sorted({a.fingerprint for a in self.anchors})

    def untrusted(self, fingerprint: str, lead: str | None = None) -> UntrustedKeyError:
        """The refusal for a key no anchor names (``lead`` says what the key did)."""
        if self.anchors:
            held = "; you trust " + ", ".join(self.fingerprints())
        else:
            held = (
                "; no trust anchor was given (--public-key PEM, --fingerprint sha256:<64 hex>, "
                f"--trust FILE, or {default_trust_file()}): compare {fingerprint} with the "
                "fingerprint of the certificate-signing key you obtained out of band"
            )
        lead = lead or f"signature valid under {fingerprint}"
        return UntrustedKeyError(f"{lead}, but nothing you trust vouches for {fingerprint}{held}")


def default_trust_file() -> Path:
    """``$SUNDOWN_HOME/trust.json`` (``~/.sundown/trust.json`` when SUNDOWN_HOME is unset)."""
    home = os.environ.get("SUNDOWN_HOME", "").strip()
    return (Path(home).expanduser() if home else Path.home() / ".sundown") / TRUST_FILE_NAME


def parse_fingerprint(text: str) -> str:
    """A full ``sha256:<64 hex>`` fingerprint (lower case). InputError for anything else, a
    prefix included: people compare full fingerprints."""
    value = text.strip().lower()
    if not _FINGERPRINT_RE.match(value):
        raise InputError(
            f"fingerprint {text!r}: expected the full sha256:<64 hex> of the public key's DER "
            "SubjectPublicKeyInfo (a prefix is not a fingerprint)"
        )
    return value


def load_trust_file(path: Path) -> list[Anchor]:
    """The anchors listed in a trust file. InputError naming the file and the field."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"trust file {path}: no such file") from None
    try:
        canonical.loads(data)  # refuses duplicate keys: one reading of the file, not two
        parsed = _TrustFile.model_validate_json(data, strict=True)
    except InputError as exc:
        raise InputError(f"trust file {path}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise InputError(f"trust file {path}: field {where}: {first['msg']}") from None
    out = []
    for index, entry in enumerate(parsed.keys):
        pem = entry.public_key.encode("ascii", "replace") if entry.public_key else None
        if pem is not None and public_key_fingerprint(pem) != entry.fingerprint:
            raise InputError(
                f"trust file {path}: keys[{index}]: public_key is "
                f"{public_key_fingerprint(pem)}, not the fingerprint {entry.fingerprint}"
            )
        out.append(Anchor(entry.fingerprint, f"trust file {path}", entry.key_id, pem))
    return out


def anchors_from_options(
    public_keys: Iterable[Path] = (),
    fingerprints: Iterable[str] = (),
    trust_files: Iterable[Path] = (),
    *,
    use_default_file: bool = True,
) -> TrustAnchors:
    """The anchors a command was given. With none of them, the default trust file when it
    exists (``use_default_file``); otherwise no anchor at all."""
    out: list[Anchor] = []
    for path in public_keys:
        pem = path.read_bytes()
        out.append(Anchor(public_key_fingerprint(pem), f"public key {path.name}", None, pem))
    for text in fingerprints:
        out.append(Anchor(parse_fingerprint(text), "--fingerprint"))
    for path in trust_files:
        out.extend(load_trust_file(path))
    if not out and use_default_file and default_trust_file().is_file():
        out.extend(load_trust_file(default_trust_file()))
    return TrustAnchors(tuple(out))


@dataclass(frozen=True)
class AnchoredCertificate:
    """What :func:`verify_anchored` established."""

    verified: VerifiedCertificate
    anchor: Anchor
    ledger: LedgerReport | None = None
    record: StoredRecord | None = None
    # later ledger records confirming a pending key deletion the certificate states
    confirmed: tuple[KeyEvent, ...] = ()

    def summary(self, note: str = "") -> str:
        line = f"{self.verified.summary()}{note}; key trusted: {self.anchor.source}"
        if self.ledger is not None and self.record is not None:
            line += (
                f"; recorded in ledger {self.ledger.url} record {self.record.record.sequence} "
                f"(ledger head {self.ledger.head})"
            )
        for event in self.confirmed:
            line += f"; {event.event} for {event.key_uri} (ledger record {event.sequence})"
        if self.verified.certificate.follows_failed:
            named = ", ".join(self.verified.certificate.follows_failed)
            line += f"; follows failed certificate(s) {named} (each still says failed)"
        pending = [k for k in self.verified.certificate.keys_destroyed if k.pending_until]
        if self.ledger is None and pending:
            line += (
                f"; {len(pending)} key deletion(s) pending when issued: the ledger (not checked; "
                "--ledger URL) says whether each was confirmed, or cancelled and the certificate "
                "withdrawn for the copies under it"
            )
        return line


def _claimed_key(data: bytes) -> tuple[str | None, bytes | None]:
    """(fingerprint, PEM) the certificate names for its signing key, unverified."""
    envelope = parse_envelope(data)
    try:
        obj = canonical.loads(envelope.payload)
    except InputError as exc:
        raise IntegrityError(f"payload: {exc}") from None
    try:
        signing = obj["predicate"]["signing"]
        fingerprint = signing.get("public_key_fingerprint")
        pem = signing.get("public_key")
    except (KeyError, TypeError, AttributeError):
        return None, None
    return (
        fingerprint if isinstance(fingerprint, str) else None,
        pem.encode("ascii", "replace") if isinstance(pem, str) else None,
    )


def _fingerprint_or_none(pem: bytes) -> str | None:
    try:
        return public_key_fingerprint(pem)
    except InputError:
        return None


def verify_anchored(
    data: bytes,
    anchors: TrustAnchors,
    *,
    manifest: ManifestRef | None = None,
    ledger: Ledger | None = None,
    expect_head: str | None = None,
) -> AnchoredCertificate:
    """Verify a certificate file under a key an anchor names.

    1. The signature and every field (:func:`sundown.certificate.verify_certificate`: exactly one
       signature, key id and fingerprint fields naming the key that signed) under the public key
       the certificate carries, or one the anchors or the ledger hold with the fingerprint the
       certificate names.
    2. The key that signed is one an anchor names (:class:`UntrustedKeyError` otherwise, also
       with no anchor at all); an anchor that names a key id must see that key id.
    3. With ``ledger``: the ledger verifies (up to ``expect_head`` when given), its genesis pins a
       key an anchor names, and a ``decommission`` record's evidence digest is this certificate's
       envelope digest; no later ``key deletion cancelled`` or ``reversed`` record names this
       certificate (confirmations are kept in the result).

    IntegrityError naming what failed; InputError for a malformed file or anchor."""
    claimed, carried = _claimed_key(data)
    if carried is not None and _fingerprint_or_none(carried) is None:
        raise IntegrityError(
            "certificate field signing.public_key: not an ECDSA P-256 public key (PEM)"
        )
    pinned = ledger.pinned_public_key() if ledger is not None else None
    candidates: list[bytes] = [a.public_key for a in anchors.anchors if a.public_key]
    if carried is not None:
        candidates.append(carried)
    if pinned is not None:
        candidates.append(pinned)
    pem = next((k for k in candidates if _fingerprint_or_none(k) == claimed), None)
    if pem is None:
        pem = carried or next(iter(candidates), None)
    if pem is None and claimed is None:
        raise IntegrityError("certificate field signing: names no signing key")
    if pem is None:
        raise UntrustedKeyError(
            f"signature: not checked: the certificate names signing key {claimed} but carries "
            f"no public key, and no key at hand has that fingerprint; nothing you trust vouches "
            f"for {claimed} (give --public-key PEM, or --ledger URL whose genesis pins the key)"
        )
    verified = verify_certificate(data, pem, manifest=manifest)
    anchor = anchors.find(verified.key_fingerprint)
    if anchor is None:
        raise anchors.untrusted(verified.key_fingerprint)
    if anchor.key_id is not None and anchor.key_id != verified.key_id:
        raise IntegrityError(
            f"key mismatch: the certificate names key id {verified.key_id!r}, but "
            f"{anchor.source} pins {verified.key_fingerprint} as {anchor.key_id!r}"
        )
    if ledger is None:
        return AnchoredCertificate(verified, anchor)
    report = ledger.verify(expect_head=expect_head, find_evidence=verified.envelope_digest)
    pinned_fingerprint = report.pinned_key_fingerprint
    if anchors.find(pinned_fingerprint) is None:
        raise anchors.untrusted(
            pinned_fingerprint,
            f"ledger {ledger.url}: chain valid, its genesis pins {pinned_fingerprint}",
        )
    found = report.found
    if found is not None and found.record.kind is RecordKind.DECOMMISSION:
        if (
            pinned_fingerprint == verified.key_fingerprint
            and found.record.signing_key_id != verified.key_id
        ):
            # The same key signed both, at the same time: its id cannot differ (this binds key
            # ids that name no fingerprint, such as vault://transit/k#v1).
            raise IntegrityError(
                f"key mismatch: the certificate names key id {verified.key_id!r}, but "
                f"{found.name}, signed by the same key {pinned_fingerprint}, names it "
                f"{found.record.signing_key_id!r}"
            )
        events = [
            e for e in report.key_events if e.certificate_id == verified.certificate.certificate_id
        ]
        withdrawn = [e for e in events if e.withdraws]
        if withdrawn:
            first = withdrawn[0]
            raise IntegrityError(
                f"certificate {verified.certificate.certificate_id} is signed and recorded in "
                f"ledger {ledger.url} (record {found.record.sequence}), but the later, signed "
                f"ledger record {first.sequence} ({first.event}, key {first.key_uri}) says it "
                "NO LONGER HOLDS for the copies it covers by cryptographic erase under that key: "
                "they may be readable again, or became irrecoverable only later than it states"
                + (f" ({len(withdrawn)} such records)" if len(withdrawn) > 1 else "")
            )
        return AnchoredCertificate(verified, anchor, report, found, tuple(events))
    raise IntegrityError(
        f"certificate envelope {verified.envelope_digest} is not recorded in the ledger "
        f"{ledger.url}: no decommission record's evidence digest names it"
    )
