"""Decommissioning certificates: the model, the deletion manifest, signing and verification.

A certificate records one retirement the way NIST SP 800-88 (Rev. 1 section 4.8 and Appendix G;
Rev. 2) asks for a certificate of sanitization, adapted to cloud object storage: what was found at
each location, what was purged, archived or held, how (Clear / Purge, logical deletion of every
version, cryptographic erase), how it was verified, which keys were destroyed and which
credentials revoked, who did it and who approved it, and whether it is complete.

Encoding (specified in ``docs/formats/certificate.md``)::

    DSSE envelope (payloadType application/vnd.in-toto+json), canonical JSON (RFC 8785)
      payload = canonical JSON of an in-toto Statement v1
        subject       = [the deletion manifest: name and sha256]
        predicateType = https://sundown.dev/decommission-certificate/v1
        predicate     = Certificate.model_dump(mode="json")

The signing key is a certificate-signing key reached through :class:`sundown.keys.Signer`; it is
never a key the certificate says was destroyed. Its key id and public-key fingerprint are inside the
signed predicate; trust comes only from a public key the verifier supplies or has pinned (the
evidence ledger's first record), never from the certificate alone.

The deletion manifest (one JSON line per purged copy) is evidence kept beside the certificate and
bound by its SHA-256. :class:`ManifestWriter` streams it: memory does not grow with its length.

This module does no I/O: callers pass bytes, streams and iterators.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, BinaryIO, Self

from cryptography.hazmat.primitives import serialization
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from sundown import __version__, canonical, dsse
from sundown.errors import InputError, IntegrityError
from sundown.keys import KeyDestruction, Signer
from sundown.store import Entry

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://sundown.dev/decommission-certificate/v1"
PAYLOAD_TYPE = dsse.INTOTO_PAYLOAD_TYPE
MEDIA_TYPE_CLOUD = "cloud object storage"
MANIFEST_NAME = "deletion-manifest.jsonl"
CERTIFICATE_NAME = "certificate.dsse.json"

Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
FileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")]


class _Model(BaseModel):
    """Frozen, no unknown fields. Built in Python, values are coerced as usual (a time may be
    given as an RFC 3339 string); signing and verification re-validate the JSON strictly."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Status(enum.StrEnum):
    COMPLETE = "complete"
    COMPLETE_WITH_EXCEPTIONS = "complete with exceptions"
    FAILED = "failed"


class SanitizationCategory(enum.StrEnum):
    """NIST SP 800-88 categories that apply to cloud storage (Destroy needs the physical media)."""

    CLEAR = "Clear"
    PURGE = "Purge"


class VerificationResult(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"


class Party(_Model):
    """A person who performed or approved the sanitization (NIST: name, title, organisation)."""

    name: Text
    role: Text
    organisation: Text
    contact: Text


class SystemRef(_Model):
    """The AI system retired, and the digest of the system spec that scoped the work."""

    name: Text
    owner: Text
    spec_digest: Digest


class Execution(_Model):
    """When and where the work ran (NIST: time and location), as cloud accounts and regions."""

    started_at: AwareDatetime
    completed_at: AwareDatetime
    accounts: list[Text] = Field(default_factory=list)
    regions: list[Text] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.completed_at < self.started_at:
            raise ValueError("completed_at is before started_at")
        return self


class Counts(_Model):
    """Objects (distinct keys), versions (every copy: versions, delete markers, snapshots,
    soft-deleted copies, incomplete uploads) and their bytes."""

    objects: NonNegativeInt = 0
    versions: NonNegativeInt = 0
    bytes: NonNegativeInt = 0


class StorageSettings(_Model):
    """The settings found on the location that decide whether deleted data lingers."""

    versioning: Text  # e.g. "enabled", "suspended", "disabled", "not supported"
    soft_delete: Text  # e.g. "none", "7 days (bucket soft_delete_policy)"
    object_lock: Text = "none"  # e.g. "none", "enabled, default GOVERNANCE 30 days"


class Sanitization(_Model):
    category: SanitizationCategory
    method: Text  # e.g. "logical deletion of all versions; cryptographic erase of key X v1..3"


class Verification(_Model):
    method: Text  # e.g. "full re-listing of every version, delete marker and upload"
    result: VerificationResult
    details: Text
    verified_at: AwareDatetime


class CopyDisposition(_Model):
    """A backup, replica, snapshot or archive copy outside the location, and what became of it."""

    kind: Text  # "replica", "backup", "snapshot", "archive"
    description: Text
    uri: Text | None = None
    disposition: Text  # e.g. "purged", "cryptographically erased (key destroyed)", "archived"


class LocationRecord(_Model):
    """One storage location in scope (NIST: media; here a bucket/container prefix)."""

    uri: Text
    provider: Text  # "aws s3", "google cloud storage", "azure blob storage", "local file system"
    media_type: Text = MEDIA_TYPE_CLOUD
    classification: Text  # data classification, e.g. "confidential: model weights"
    settings: StorageSettings
    found: Counts
    purged: Counts
    archived: Counts
    held: Counts
    sanitization: Sanitization
    verification: Verification
    backups: list[CopyDisposition] = Field(default_factory=list)
    irrecoverable_after: AwareDatetime

    @model_validator(mode="after")
    def _counts(self) -> Self:
        for unit in ("objects", "versions", "bytes"):
            found = getattr(self.found, unit)
            if getattr(self.purged, unit) + getattr(self.held, unit) > found:
                raise ValueError(f"purged + held {unit} exceed the {unit} found")
            if getattr(self.archived, unit) > found:
                raise ValueError(f"archived {unit} exceed the {unit} found")
        return self


class KeyDestroyed(_Model):
    """A key destroyed by cryptographic erase, with the checks that prove it unusable."""

    uri: Text
    versions_destroyed: list[NonNegativeInt]
    destroyed_at: AwareDatetime
    method: Text
    checks: dict[Text, Text] = Field(default_factory=dict)
    verified: bool

    @classmethod
    def from_destruction(cls, evidence: KeyDestruction) -> KeyDestroyed:
        return cls(
            uri=evidence.uri,
            versions_destroyed=list(evidence.versions_destroyed),
            destroyed_at=evidence.destroyed_at,
            method=evidence.method,
            checks=dict(evidence.checks),
            verified=evidence.verified,
        )


class CredentialRevoked(_Model):
    """A credential revoked. ``identifier`` is a public handle (token accessor, access key id,
    role name), never the secret itself."""

    kind: Text  # e.g. "vault token", "approle secret-id", "aws access key", "azure sas policy"
    identifier: Text
    revoked_at: AwareDatetime
    method: Text
    checks: dict[Text, Text] = Field(default_factory=dict)
    verified: bool


class Tool(_Model):
    name: Text = "sundown"
    version: Text = __version__


class ManifestRef(_Model):
    """The deletion manifest kept beside the certificate: file name, digest, line count, bytes."""

    name: FileName = MANIFEST_NAME
    digest: Digest
    entries: NonNegativeInt
    purged_bytes: NonNegativeInt


class CertificateException(_Model):
    """Something that kept the work from being complete. ``subject`` names the location URI, key
    URI or credential identifier concerned."""

    subject: Text
    kind: Text  # "held", "soft-delete window", "verification failed", "purge failed", ...
    description: Text
    objects: NonNegativeInt = 0
    bytes: NonNegativeInt = 0
    until: AwareDatetime | None = None


class SigningKeyRef(_Model):
    """The certificate-signing key: its id, the SHA-256 of its SubjectPublicKeyInfo (DER) and
    the public key itself (PEM). The key travels with the certificate so that a verifier who
    pinned only its fingerprint can check the signature offline; it is never trusted for what
    it is, only when its fingerprint is one the verifier trusts (``sundown.trust``). Absent
    (not ``null``) in certificates signed before it was carried."""

    key_id: Text
    public_key_fingerprint: Digest
    public_key: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = Field(
        default=None, exclude_if=lambda v: v is None
    )


class Certificate(_Model):
    """A decommissioning certificate. ``signing`` is filled in by :func:`sign_certificate`."""

    certificate_id: Text
    issued_at: AwareDatetime
    system: SystemRef
    plan_digest: Digest
    performer: Party
    approver: Party
    approved_at: AwareDatetime
    execution: Execution
    locations: list[LocationRecord] = Field(min_length=1)
    keys_destroyed: list[KeyDestroyed] = Field(default_factory=list)
    credentials_revoked: list[CredentialRevoked] = Field(default_factory=list)
    tool: Tool = Field(default_factory=Tool)
    deletion_manifest: ManifestRef
    exceptions: list[CertificateException] = Field(default_factory=list)
    status: Status
    signing: SigningKeyRef | None = None

    def problems(self) -> list[tuple[str, str]]:
        """(subject, reason) for everything that keeps this retirement from being complete."""
        found: list[tuple[str, str]] = []
        for loc in self.locations:
            if loc.verification.result is not VerificationResult.PASSED:
                found.append((loc.uri, "verification did not pass"))
            if loc.held.versions or loc.held.objects or loc.held.bytes:
                found.append((loc.uri, "copies are held"))
            if loc.irrecoverable_after > self.issued_at:
                found.append((loc.uri, "deleted data is recoverable until irrecoverable_after"))
        for key in self.keys_destroyed:
            if not key.verified:
                found.append((key.uri, "key destruction not verified"))
        for cred in self.credentials_revoked:
            if not cred.verified:
                found.append((cred.identifier, "credential revocation not verified"))
        return found

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        uris = [loc.uri for loc in self.locations]
        if len(set(uris)) != len(uris):
            raise ValueError("a location URI appears twice")
        if self.approved_at > self.execution.started_at:
            raise ValueError("approved_at is after execution.started_at: approval comes first")
        if self.issued_at < self.execution.completed_at:
            raise ValueError("issued_at is before execution.completed_at")
        purged = sum(loc.purged.versions for loc in self.locations)
        purged_bytes = sum(loc.purged.bytes for loc in self.locations)
        if self.deletion_manifest.entries != purged:
            raise ValueError(
                f"deletion_manifest.entries ({self.deletion_manifest.entries}) differs from the "
                f"versions purged across locations ({purged})"
            )
        if self.deletion_manifest.purged_bytes != purged_bytes:
            raise ValueError(
                f"deletion_manifest.purged_bytes ({self.deletion_manifest.purged_bytes}) differs "
                f"from the bytes purged across locations ({purged_bytes})"
            )
        problems = self.problems()
        if self.status is Status.COMPLETE:
            if self.exceptions:
                raise ValueError("status 'complete' with exceptions listed")
            if problems:
                subject, reason = problems[0]
                raise ValueError(f"status 'complete' but {subject}: {reason}")
        else:
            if not self.exceptions:
                raise ValueError(f"status {self.status.value!r} needs at least one exception")
            named = {exc.subject for exc in self.exceptions}
            for subject, reason in problems:
                if subject not in named:
                    raise ValueError(f"{subject}: {reason}, but no exception names it")
        if self.signing is not None:
            _check_not_destroyed(self.signing.key_id, self.keys_destroyed)
        return self

    def summary(self) -> str:
        purged = sum(loc.purged.versions for loc in self.locations)
        held = sum(loc.held.versions for loc in self.locations)
        return (
            f"system {self.system.name}, status {self.status.value}, "
            f"{len(self.locations)} location(s), {purged} version(s) purged, {held} held, "
            f"{len(self.keys_destroyed)} key(s) destroyed, "
            f"{len(self.credentials_revoked)} credential(s) revoked"
        )


def _key_matches(key_id: str, destroyed_uri: str) -> bool:
    """True when ``key_id`` names the destroyed key (itself or one of its versions)."""
    a, b = key_id.strip().rstrip("/"), destroyed_uri.strip().rstrip("/")
    if a == b:
        return True
    return any(a.startswith(b + sep) for sep in ("#", ":", "/", "@", "?"))


def _check_not_destroyed(key_id: str, keys: Iterable[KeyDestroyed]) -> None:
    for key in keys:
        if _key_matches(key_id, key.uri):
            raise ValueError(
                f"the certificate-signing key {key_id!r} is a key this certificate destroys "
                f"({key.uri}): sign with a separate certificate-signing key"
            )


# --- deletion manifest -------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestEntry:
    """One purged copy: its full URI, version id (None on unversioned stores), kind, size, time."""

    uri: str
    version_id: str | None
    size: int
    deleted_at: datetime
    kind: str = "version"

    @classmethod
    def from_store_entry(cls, root_url: str, entry: Entry, deleted_at: datetime) -> ManifestEntry:
        return cls(
            uri=root_url.rstrip("/") + "/" + entry.key,
            version_id=entry.version_id,
            size=entry.size,
            deleted_at=deleted_at,
            kind=entry.kind.value,
        )

    def to_json(self) -> dict[str, Any]:
        if self.deleted_at.tzinfo is None:
            raise InputError(f"manifest entry {self.uri}: deleted_at has no time zone")
        return {
            "uri": self.uri,
            "version_id": self.version_id,
            "kind": self.kind,
            "size": self.size,
            "deleted_at": _rfc3339(self.deleted_at),
        }


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ManifestWriter:
    """Streams a deletion manifest (JSON Lines, one canonical JSON object per line) and keeps
    its SHA-256, line count and byte total as the lines go by::

        writer = ManifestWriter()
        store.put(MANIFEST_NAME, writer.chunks(entries))   # or write_manifest(entries, file)
        ref = writer.reference()
    """

    CHUNK = 64 * 1024

    def __init__(self, name: str = MANIFEST_NAME) -> None:
        self._name = name
        self._hash = hashlib.sha256()
        self._entries = 0
        self._bytes = 0
        self._done = False

    def chunks(self, entries: Iterable[ManifestEntry]) -> Iterator[bytes]:
        """The manifest as chunks of about 64 KiB. Consume it once, to the end."""
        if self._done:
            raise InputError("ManifestWriter.chunks() may be consumed only once")
        buffer = bytearray()
        for entry in entries:
            if entry.size < 0:
                raise InputError(f"manifest entry {entry.uri}: negative size")
            # keys are ASCII and values strings or small ints: json.dumps with sorted keys
            # gives the RFC 8785 bytes here (checked against an RFC 8785 library in tests)
            text = json.dumps(
                entry.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
            )
            line = text.encode("utf-8") + b"\n"
            self._hash.update(line)
            self._entries += 1
            self._bytes += entry.size
            buffer += line
            if len(buffer) >= self.CHUNK:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)
        self._done = True

    def reference(self) -> ManifestRef:
        if not self._done:
            raise InputError("the manifest was not written to the end")
        return ManifestRef(
            name=self._name,
            digest="sha256:" + self._hash.hexdigest(),
            entries=self._entries,
            purged_bytes=self._bytes,
        )


def write_manifest(
    entries: Iterable[ManifestEntry], out: BinaryIO, name: str = MANIFEST_NAME
) -> ManifestRef:
    """Write the manifest to a binary stream the caller opened; its reference for the cert."""
    writer = ManifestWriter(name)
    for chunk in writer.chunks(entries):
        out.write(chunk)
    return writer.reference()


def read_manifest_reference(chunks: Iterable[bytes], name: str = MANIFEST_NAME) -> ManifestRef:
    """Digest, line count and byte total of a manifest read back as chunks (streamed).
    IntegrityError when a line is not a manifest entry."""
    digest = hashlib.sha256()
    entries = 0
    total = 0
    pending = b""
    for chunk in chunks:
        digest.update(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            entries += 1
            total += _manifest_line_size(line, entries)
    if pending:
        raise IntegrityError(f"deletion manifest line {entries + 1} is truncated (no newline)")
    return ManifestRef(
        name=name, digest="sha256:" + digest.hexdigest(), entries=entries, purged_bytes=total
    )


def _manifest_line_size(line: bytes, number: int) -> int:
    try:
        obj = canonical.loads(line)
    except InputError as exc:
        raise IntegrityError(f"deletion manifest line {number}: {exc}") from exc
    size = obj.get("size") if isinstance(obj, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise IntegrityError(f"deletion manifest line {number}: no valid size")
    return size


def check_manifest(chunks: Iterable[bytes], expected: ManifestRef) -> ManifestRef:
    """Read a manifest back and compare it with the certificate's reference."""
    actual = read_manifest_reference(chunks, expected.name)
    if actual.digest != expected.digest:
        raise IntegrityError(
            f"deletion manifest digest mismatch: {expected.name} has {actual.digest}, "
            f"the certificate binds {expected.digest}"
        )
    if (actual.entries, actual.purged_bytes) != (expected.entries, expected.purged_bytes):
        raise IntegrityError(  # unreachable unless SHA-256 collides; kept as a cheap check
            f"deletion manifest counts mismatch: {actual.entries} entries / "
            f"{actual.purged_bytes} bytes, certificate says {expected.entries} / "
            f"{expected.purged_bytes}"
        )
    return actual


# --- signing and verification ------------------------------------------------------------


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


# --- a sample, for the demo and the docs ------------------------------------------------


@dataclass(frozen=True)
class Sample:
    certificate: Certificate
    manifest_entries: list[ManifestEntry]


def sample_certificate(*, now: datetime | None = None, with_exceptions: bool = False) -> Sample:
    """A realistic certificate for a fictional retired model (unsigned), with its manifest
    entries, for the demo, the docs and tests. ``with_exceptions`` adds a GCS location whose
    soft-delete window is still open and one object under legal hold."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    started = now - timedelta(minutes=42)
    done = now - timedelta(minutes=2)
    weights = "s3://acme-ml-prod/systems/fraud-scorer-v3/weights"
    data = "gs://acme-ml-data/systems/fraud-scorer-v3/training"
    entries = [
        ManifestEntry(f"{weights}/model.safetensors", f"v{i}", 1_342_177_280, started)
        for i in range(1, 4)
    ] + [
        ManifestEntry(f"{weights}/config.json", "v1", 1_024, started),
        ManifestEntry(f"{weights}/model.safetensors", "dm1", 0, started, "delete_marker"),
    ]
    data_entries = [
        ManifestEntry(f"{data}/shard-{i:05d}.parquet", str(1_700_000_000_000 + i), 52_428_800, done)
        for i in range(4)
    ]
    writer = ManifestWriter()
    for _ in writer.chunks(entries + data_entries):
        pass
    crypto_erase = "cryptographic erase of vault://transit/fraud-scorer-v3 versions 1..3"
    s3_found = Counts(objects=2, versions=5, bytes=3 * 1_342_177_280 + 1_024)
    held = Counts(objects=1, versions=1, bytes=52_428_800) if with_exceptions else Counts()
    gcs_found = Counts(
        objects=4 + held.objects, versions=4 + held.versions, bytes=(4 * 52_428_800) + held.bytes
    )
    locations = [
        LocationRecord(
            uri=weights,
            provider="aws s3",
            classification="confidential: model weights (envelope-encrypted)",
            settings=StorageSettings(
                versioning="enabled", soft_delete="none", object_lock="disabled"
            ),
            found=s3_found,
            purged=s3_found,
            archived=Counts(objects=2, versions=2, bytes=1_342_177_280 + 1_024),
            held=Counts(),
            sanitization=Sanitization(
                category=SanitizationCategory.PURGE,
                method=f"logical deletion of all versions and delete markers; {crypto_erase}",
            ),
            verification=Verification(
                method="full re-listing of versions, delete markers and multipart uploads",
                result=VerificationResult.PASSED,
                details="0 versions, 0 delete markers, 0 uploads remain under the prefix",
                verified_at=done,
            ),
            backups=[
                CopyDisposition(
                    kind="replica",
                    description="cross-region replica (eu-west-1), same transit key",
                    uri="s3://acme-ml-dr/systems/fraud-scorer-v3/weights",
                    disposition="cryptographically erased (key destroyed); purged",
                ),
                CopyDisposition(
                    kind="archive",
                    description="archive copy re-wrapped under the archive key",
                    uri="s3://acme-ml-archive/fraud-scorer-v3",
                    disposition="retained 7 years under vault://transit/archive-2025",
                ),
            ],
            irrecoverable_after=started,
        ),
        LocationRecord(
            uri=data,
            provider="google cloud storage",
            classification="restricted: personal data (transactions)",
            settings=StorageSettings(
                versioning="enabled",
                soft_delete="7 days (bucket soft_delete_policy)" if with_exceptions else "none",
                object_lock="bucket retention none; 1 object with event-based hold"
                if with_exceptions
                else "none",
            ),
            found=gcs_found,
            purged=Counts(objects=4, versions=4, bytes=4 * 52_428_800),
            archived=Counts(),
            held=held,
            sanitization=Sanitization(
                category=SanitizationCategory.PURGE,
                method=f"logical deletion of all generations; {crypto_erase}",
            ),
            verification=Verification(
                method="full re-listing of generations and soft-deleted objects",
                result=VerificationResult.PASSED,
                details="only the held generation remains" if with_exceptions else "none remain",
                verified_at=done,
            ),
            irrecoverable_after=done + timedelta(days=7) if with_exceptions else done,
        ),
    ]
    exceptions = (
        [
            CertificateException(
                subject=data,
                kind="held",
                description="shard-00004.parquet is under an event-based hold (litigation "
                "LIT-2291); not deleted; unreadable once the key is destroyed",
                objects=1,
                bytes=52_428_800,
            ),
            CertificateException(
                subject=data,
                kind="soft-delete window",
                description="purged generations stay restorable by the bucket owner for 7 days",
                objects=4,
                bytes=4 * 52_428_800,
                until=done + timedelta(days=7),
            ),
        ]
        if with_exceptions
        else []
    )
    cert = Certificate(
        certificate_id=f"DC-fraud-scorer-v3-{now:%Y%m%d}-0001",
        issued_at=now,
        system=SystemRef(
            name="fraud-scorer-v3",
            owner="risk-ml@acme.example",
            spec_digest="sha256:" + hashlib.sha256(b"sample system spec").hexdigest(),
        ),
        plan_digest="sha256:" + hashlib.sha256(b"sample plan").hexdigest(),
        performer=Party(
            name="Dana Okafor",
            role="ML platform engineer",
            organisation="Acme Payments Ltd",
            contact="dana.okafor@acme.example",
        ),
        approver=Party(
            name="Lee Marchetti",
            role="Head of Security",
            organisation="Acme Payments Ltd",
            contact="lee.marchetti@acme.example",
        ),
        approved_at=started - timedelta(minutes=5),
        execution=Execution(
            started_at=started,
            completed_at=done,
            accounts=["aws 123456789012", "gcp project acme-ml-data"],
            regions=["eu-west-1", "europe-west4"],
        ),
        locations=locations,
        keys_destroyed=[
            KeyDestroyed(
                uri="vault://transit/fraud-scorer-v3",
                versions_destroyed=[1, 2, 3],
                destroyed_at=done,
                method="transit key deleted after deletion_allowed=true",
                checks={
                    "read key": "404 not found",
                    "decrypt sentinel": "refused: key not found",
                },
                verified=True,
            )
        ],
        credentials_revoked=[
            CredentialRevoked(
                kind="vault token",
                identifier="accessor hmac-sha256:5e3c0a1f",
                revoked_at=done,
                method="auth/token/revoke-accessor",
                checks={"lookup-accessor": "invalid accessor"},
                verified=True,
            ),
            CredentialRevoked(
                kind="aws access key",
                identifier="AKIAEXAMPLEFRAUDV3",
                revoked_at=done,
                method="iam DeleteAccessKey",
                checks={"sts get-caller-identity": "InvalidClientTokenId"},
                verified=True,
            ),
        ],
        deletion_manifest=writer.reference(),
        exceptions=exceptions,
        status=Status.COMPLETE_WITH_EXCEPTIONS if with_exceptions else Status.COMPLETE,
    )
    return Sample(cert, entries + data_entries)
