"""Signing and verifying a certificate: the in-toto Statement v1 that carries it, the DSSE
envelope, the checks a verifier makes (docs/formats/certificate.md, "Verification"). No I/O:
callers pass bytes and keys."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from sundown import canonical, dsse
from sundown.errors import InputError, IntegrityError
from sundown.keys import Signer

from ._model import Certificate, ManifestRef, SigningKeyRef, _check_not_destroyed

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://sundown.dev/decommission-certificate/v2"
PAYLOAD_TYPE = dsse.INTOTO_PAYLOAD_TYPE


def public_key_fingerprint(public_key_pem: bytes) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo of an ECDSA P-256 public key."""
    key = dsse.load_public_key(public_key_pem)
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


_FINGERPRINT_IN_TEXT = re.compile(r"sha256:([0-9a-fA-F]{64})(?![0-9a-fA-F])")


def key_id_fingerprints(key_id: str) -> set[str]:
    """The public-key fingerprints a key id names in its text (``local://k#sha256:<hex>``
    names one; ``vault://transit/k#v2`` none). A key id that names a fingerprint must name the
    key that signed: anything else is a key id borrowed from another key."""
    return {"sha256:" + m.lower() for m in _FINGERPRINT_IN_TEXT.findall(key_id)}


def statement(cert: Certificate) -> dict[str, Any]:
    """The in-toto Statement v1 that carries the certificate."""
    hex_digest = cert.deletion_manifest.digest.removeprefix("sha256:")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": cert.deletion_manifest.name, "digest": {"sha256": hex_digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": cert.model_dump(mode="json"),
    }


@dataclass(frozen=True)
class SignedCertificate:
    certificate: Certificate
    envelope: dsse.Envelope
    data: bytes  # the certificate file: canonical JSON of the DSSE envelope

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the certificate file (the envelope digest)."""
        return canonical.sha256_digest(self.data)


def sign_certificate(cert: Certificate, signer: Signer) -> SignedCertificate:
    """Sign with a certificate-signing key. InputError if the signer is a key the certificate
    destroys (the proof must outlive the shredded key) or the certificate is inconsistent."""
    key_id = signer.key_id
    try:
        _check_not_destroyed(key_id, cert.keys_destroyed)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    pem = signer.public_key_pem()
    fingerprint = public_key_fingerprint(pem)
    named = key_id_fingerprints(key_id)
    if named - {fingerprint}:
        raise InputError(
            f"signer key id {key_id!r} names {', '.join(sorted(named))}, but its public key is "
            f"{fingerprint}"
        )
    signed = cert.model_copy(
        update={
            "signing": SigningKeyRef(
                key_id=key_id, public_key_fingerprint=fingerprint, public_key=pem.decode("ascii")
            )
        }
    )
    signed = _validate(signed.model_dump(mode="json"), InputError)  # re-run every validator
    payload = canonical.dumps(statement(signed))
    envelope = dsse.sign(PAYLOAD_TYPE, payload, signer)
    return SignedCertificate(signed, envelope, canonical.dumps(envelope.to_json()))


@dataclass(frozen=True)
class VerifiedCertificate:
    """What an offline verification established."""

    certificate: Certificate
    key_id: str
    key_fingerprint: str
    envelope_digest: str
    manifest_checked: bool

    def summary(self) -> str:
        manifest = "manifest digest checked" if self.manifest_checked else "manifest not checked"
        return (
            f"certificate {self.certificate.certificate_id} valid: {self.certificate.summary()}; "
            f"signed by {self.key_id} ({self.key_fingerprint}); "
            f"envelope {self.envelope_digest}; {manifest}"
        )


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "certificate"


def _validate(predicate: Any, error: type[Exception]) -> Certificate:
    try:
        return Certificate.model_validate_json(canonical.dumps(predicate), strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _field_path(tuple(first["loc"]))
        raise error(
            f"certificate field {where}: {first['msg']}"
            + (f" ({exc.error_count()} problems)" if exc.error_count() > 1 else "")
        ) from exc


def parse_envelope(data: bytes) -> dsse.Envelope:
    """The DSSE envelope in a certificate file. InputError if the file is not JSON at all (the
    wrong file); IntegrityError if it is a JSON object cut short or altered (truncated), or not a
    DSSE envelope."""
    try:
        obj = canonical.loads(data)
    except InputError as exc:
        if data.lstrip().startswith(b"{"):
            raise IntegrityError(
                f"not a complete certificate (truncated or altered): {exc}"
            ) from None
        raise
    return dsse.Envelope.from_json(obj)


def unverified_certificate(data: bytes) -> Certificate:
    """The certificate inside a file WITHOUT checking its signature: for display only."""
    envelope = parse_envelope(data)
    obj = canonical.loads(envelope.payload)
    if not isinstance(obj, dict) or obj.get("predicateType") != PREDICATE_TYPE:
        raise IntegrityError(f"not a Sundown decommissioning certificate ({PREDICATE_TYPE})")
    return _validate(obj.get("predicate"), IntegrityError)


def verify_certificate(
    data: bytes, public_key_pem: bytes, *, manifest: ManifestRef | None = None
) -> VerifiedCertificate:
    """Verify a certificate file offline against a trusted public key.

    ``manifest`` is the reference read back from the manifest file (:func:`read_manifest_reference`)
    when the caller has it. Every failure raises IntegrityError naming what failed: the
    signature, the key, a field, or the manifest digest (InputError if the file is not JSON or the
    public key is not an ECDSA P-256 PEM)."""
    fingerprint = public_key_fingerprint(public_key_pem)
    envelope = parse_envelope(data)
    if envelope.payload_type != PAYLOAD_TYPE:
        raise IntegrityError(
            f"envelope payloadType is {envelope.payload_type!r}, not {PAYLOAD_TYPE}"
        )
    if not envelope.signatures:
        raise IntegrityError("signature: the envelope carries no signature")
    if len(envelope.signatures) != 1:
        raise IntegrityError(
            f"signature: the envelope carries {len(envelope.signatures)} signatures; a "
            "certificate carries exactly one"
        )
    try:
        dsse.verify(envelope, public_key_pem)
    except IntegrityError as exc:
        claimed = _claimed_fingerprint(envelope.payload)
        if claimed is not None and claimed != fingerprint:
            raise IntegrityError(
                f"key mismatch: the certificate names signing key {claimed}, the trusted public "
                f"key is {fingerprint}; the signature does not verify with the trusted key"
            ) from exc
        raise IntegrityError(
            f"signature: does not verify with the trusted public key {fingerprint}: the "
            "certificate was changed after signing or signed by another key"
        ) from exc
    if not canonical.is_canonical(envelope.payload):
        raise IntegrityError("payload: not in canonical JSON form (RFC 8785)")
    obj = canonical.loads(envelope.payload)
    if not isinstance(obj, dict) or set(obj) != {"_type", "subject", "predicateType", "predicate"}:
        raise IntegrityError("statement: not an in-toto Statement v1 with exactly its four fields")
    if obj["_type"] != STATEMENT_TYPE:
        raise IntegrityError(f"statement field _type is {obj['_type']!r}, not {STATEMENT_TYPE}")
    if obj["predicateType"] != PREDICATE_TYPE:
        raise IntegrityError(f"statement field predicateType is not {PREDICATE_TYPE}")
    cert = _validate(obj["predicate"], IntegrityError)
    if cert.model_dump(mode="json") != obj["predicate"]:
        raise IntegrityError("certificate fields do not round-trip: unexpected encoding")
    if obj != statement(cert):
        raise IntegrityError("statement field subject does not name the deletion manifest digest")
    if cert.signing is None:
        raise IntegrityError("certificate field signing: missing")
    if cert.signing.public_key_fingerprint != fingerprint:
        raise IntegrityError(
            f"key mismatch: certificate field signing.public_key_fingerprint is "
            f"{cert.signing.public_key_fingerprint}, the trusted key is {fingerprint}"
        )
    key_ids = {keyid for keyid, _sig in envelope.signatures}
    if cert.signing.key_id not in key_ids:
        raise IntegrityError(
            f"key mismatch: envelope keyid {sorted(key_ids)} differs from certificate field "
            f"signing.key_id {cert.signing.key_id!r}"
        )
    named = key_id_fingerprints(cert.signing.key_id)
    if named - {fingerprint}:
        raise IntegrityError(
            f"key mismatch: certificate field signing.key_id {cert.signing.key_id!r} names "
            f"{', '.join(sorted(named))}, but the key that signed it is {fingerprint}"
        )
    if cert.signing.public_key is not None:
        try:
            carried = public_key_fingerprint(cert.signing.public_key.encode("ascii"))
        except (InputError, UnicodeEncodeError) as exc:
            raise IntegrityError(f"certificate field signing.public_key: {exc}") from exc
        if carried != fingerprint:
            raise IntegrityError(
                f"key mismatch: certificate field signing.public_key is {carried}, the key that "
                f"signed it is {fingerprint}"
            )
    if manifest is not None:
        if manifest.digest != cert.deletion_manifest.digest:
            raise IntegrityError(
                f"deletion manifest digest mismatch: {manifest.name} has {manifest.digest}, "
                f"the certificate binds {cert.deletion_manifest.digest}"
            )
        if (manifest.entries, manifest.purged_bytes) != (
            cert.deletion_manifest.entries,
            cert.deletion_manifest.purged_bytes,
        ):
            raise IntegrityError("deletion manifest counts differ from the certificate")
    return VerifiedCertificate(
        certificate=cert,
        key_id=cert.signing.key_id,
        key_fingerprint=fingerprint,
        envelope_digest=canonical.sha256_digest(canonical.dumps(envelope.to_json())),
        manifest_checked=manifest is not None,
    )


def _claimed_fingerprint(payload: bytes) -> str | None:
    try:
        obj = canonical.loads(payload)
        value = obj["predicate"]["signing"]["public_key_fingerprint"]
    except (InputError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def envelope_digest(data: bytes) -> str:
    """``sha256:<hex>`` of the canonical encoding of the certificate's envelope (equals the
    SHA-256 of the file as Sundown writes it)."""
    return canonical.sha256_digest(canonical.dumps(parse_envelope(data).to_json()))


def new_certificate_id(system: str, when: datetime) -> str:
    """``DC-<system>-<YYYYMMDD>-<8 hex>``: readable, unique."""
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in system)[:40]
    return f"DC-{name}-{when.astimezone(UTC):%Y%m%d}-{uuid.uuid4().hex[:8]}"
