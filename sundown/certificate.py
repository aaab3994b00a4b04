"""Decommissioning certificates: the model, the deletion manifest, signing and verification.

A certificate records one retirement the way NIST SP 800-88 (Rev. 1 section 4.8 and Appendix G;
Rev. 2) asks for a certificate of sanitization, adapted to cloud object storage: what was found at
each location, what protected each copy, what was purged, archived or held, what may be claimed
for it (SP 800-88 Rev. 2: "Purge (cryptographic erase)" only for copies proven encrypted under a
key that was destroyed and verified gone; "logical deletion" for the rest, with the retention the
store reports), how each step was verified and whether the outcome was accepted (validation), which
keys were destroyed and which credentials revoked, who did it and who approved it, and whether it
is complete.

Encoding (specified in ``docs/formats/certificate.md``)::

    DSSE envelope (payloadType application/vnd.in-toto+json), canonical JSON (RFC 8785)
      payload = canonical JSON of an in-toto Statement v1
        subject       = [the deletion manifest: name and sha256]
        predicateType = https://sundown.dev/decommission-certificate/v2
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
PREDICATE_TYPE = "https://sundown.dev/decommission-certificate/v2"
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
    """What may be claimed for a set of copies (NIST SP 800-88 Rev. 2, adapted to cloud storage).

    A tenant reaches neither the medium nor every user-addressable location of a provider's
    store: deleting through the API is logical deletion, not Clear or Purge. The one sanitization
    a tenant can perform is cryptographic erase (CE) of copies encrypted under a key it controls
    and destroys. Destroy needs the physical media and is never claimed."""

    PURGE_CRYPTOGRAPHIC_ERASE = "Purge (cryptographic erase)"
    LOGICAL_DELETION = "logical deletion (not an SP 800-88 sanitization method)"


class Protection(enum.StrEnum):
    """What protected one copy when the plan was made (recorded per copy in the plan)."""

    ENVELOPE = "envelope"  # Sundown envelope under a key this retirement destroys (checked)
    ENVELOPE_OTHER_KEY = "envelope (key not in this retirement)"
    SSE_TENANT_KEY = "sse-tenant-key"  # server-side encryption under a tenant key (no CE claim)
    PROVIDER_MANAGED = "provider-managed"
    NONE = "none"  # stored as written (file store plaintext, delete markers)
    UNKNOWN = "unknown"


class VerificationResult(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"


class ValidationResult(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


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


class IrrecoverableAfter(_Model):
    """When the copies of a claim stop being recoverable: a time, or ``unknown`` with the reason
    (never a deletion time presented as sanitization). ``basis`` says where the time comes from."""

    at: AwareDatetime | None = None
    unknown: Text | None = None  # e.g. "provider retention: ..."
    basis: Text

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.at is None) == (self.unknown is None):
            raise ValueError("irrecoverable_after needs exactly one of a time or an unknown reason")
        return self


class Sanitization(_Model):
    """One claim for a set of copies of a location: its category, the copies it covers, how, and
    when they became (or become) irrecoverable. ``keys`` are the destroyed keys a cryptographic
    erase relies on (each must be in ``keys_destroyed`` and verified)."""

    category: SanitizationCategory
    copies: Counts
    method: Text
    keys: list[Text] = Field(default_factory=list)
    irrecoverable_after: IrrecoverableAfter

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.copies.versions == 0:
            raise ValueError(f"a {self.category.value!r} claim covers no copy")
        ce = self.category is SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE
        if ce and not self.keys:
            raise ValueError("a cryptographic erase claim names no destroyed key")
        if not ce and self.keys:
            raise ValueError("a logical deletion claim names keys")
        return self


class ProtectionCount(_Model):
    """Copies found with one protection (and key, for an envelope or a server-side tenant key)."""

    protection: Protection
    key: Text | None = None
    copies: NonNegativeInt
    bytes: NonNegativeInt
    notes: list[Text] = Field(default_factory=list, max_length=5)  # how it was established


class Verification(_Model):
    """SP 800-88 Rev. 2 verification: did the step complete (here: the location re-listed)."""

    method: Text  # e.g. "full re-listing of every version, delete marker and upload"
    result: VerificationResult
    details: Text
    verified_at: AwareDatetime


class Validation(_Model):
    """SP 800-88 Rev. 2 validation: the outcome accepted or rejected, and on what basis."""

    result: ValidationResult
    basis: Text
    details: Text


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
    protection: list[ProtectionCount] = Field(default_factory=list)
    purged: Counts
    archived: Counts
    held: Counts
    ce_covered: Counts  # copies (purged or held) under a key destroyed and verified gone
    logically_deleted: Counts  # copies purged and not covered by a cryptographic erase
    remaining: NonNegativeInt  # copies the verification re-listing found, not held
    sanitization: list[Sanitization] = Field(default_factory=list)
    verification: Verification
    validation: Validation
    backups: list[CopyDisposition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _counts(self) -> Self:
        for unit in ("objects", "versions", "bytes"):
            found = getattr(self.found, unit)
            if getattr(self.purged, unit) + getattr(self.held, unit) > found:
                raise ValueError(f"purged + held {unit} exceed the {unit} found")
            if getattr(self.archived, unit) > found:
                raise ValueError(f"archived {unit} exceed the {unit} found")
            if getattr(self.ce_covered, unit) + getattr(self.logically_deleted, unit) > found:
                raise ValueError(f"ce_covered + logically_deleted {unit} exceed the {unit} found")
            if getattr(self.logically_deleted, unit) > getattr(self.purged, unit):
                raise ValueError(f"logically_deleted {unit} exceed the {unit} purged")
        kinds = [(p.protection, p.key) for p in self.protection]
        if len(set(kinds)) != len(kinds):
            raise ValueError("a protection appears twice")
        if (
            sum(p.copies for p in self.protection) != self.found.versions
            or sum(p.bytes for p in self.protection) != self.found.bytes
        ):
            raise ValueError("the protection breakdown does not add up to the copies found")
        enveloped = sum(p.copies for p in self.protection if p.protection is Protection.ENVELOPE)
        if self.ce_covered.versions > enveloped:
            raise ValueError(
                f"{self.ce_covered.versions} copies covered by cryptographic erase, but only "
                f"{enveloped} were found under an envelope of a key this retirement destroys"
            )
        categories = [c.category for c in self.sanitization]
        if len(set(categories)) != len(categories):
            raise ValueError("a sanitization category appears twice")
        expected = {
            SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE: self.ce_covered,
            SanitizationCategory.LOGICAL_DELETION: self.logically_deleted,
        }
        for category, copies in expected.items():
            claim = next((c for c in self.sanitization if c.category is category), None)
            if claim is None and copies.versions:
                raise ValueError(f"{copies.versions} copies with no {category.value!r} claim")
            if claim is not None and claim.copies != copies:
                raise ValueError(f"the {category.value!r} claim covers other copies than counted")
        if self.validation.result is ValidationResult.ACCEPTED and (
            self.verification.result is not VerificationResult.PASSED or self.remaining
        ):
            raise ValueError("outcome accepted although verification failed or copies remain")
        return self

    @property
    def claims(self) -> str:
        """The claims in words: "nothing found", or each category with its count."""
        if not self.found.versions:
            return "nothing found"

        def n(count: int) -> str:
            return f"{count:,} copy" if count == 1 else f"{count:,} copies"

        parts = [f"{c.category.value}: {n(c.copies.versions)}" for c in self.sanitization]
        if self.held.versions:
            parts.append(f"held (not deleted): {n(self.held.versions)}")
        if self.remaining:
            parts.append(f"remaining: {n(self.remaining)}")
        return "; ".join(parts) or "no claim"


class KeyDestroyed(_Model):
    """A key destroyed by cryptographic erase, with the checks that prove it unusable."""

    uri: Text
    versions_destroyed: list[NonNegativeInt]
    destroyed_at: AwareDatetime
    method: Text
    checks: dict[Text, Text] = Field(default_factory=dict)
    verified: bool
    # Whether the key service may have let a copy of the material out (Vault transit
    # ``exportable`` / ``allow_plaintext_backup``, as planned or as seen before the delete);
    # None: the key service has no such switch.
    exportable: bool | None = None
    allow_plaintext_backup: bool | None = None
    # The one input for "Purge (cryptographic erase)": True only when the destruction was
    # verified from the key material (and still is at verification) and no export or plaintext
    # backup was possible. ``ce_basis`` says why, either way.
    # None: not recorded (evidence made before the field existed); ``ce_claimable(key)`` then
    # derives it from ``verified`` and the two switches.
    ce_claimable: bool | None = None
    ce_basis: Text | None = None
    # What the deletion does not reach (journaling storage, snapshots, backups).
    limits: Text | None = None

    @model_validator(mode="after")
    def _ce_needs_proof(self) -> KeyDestroyed:
        if self.ce_claimable and (
            not self.verified or self.exportable or self.allow_plaintext_backup
        ):
            raise ValueError(
                f"{self.uri}: cryptographic erase claimed for a key whose destruction is not "
                "verified, or that was exportable or allowed a plaintext backup"
            )
        return self

    @classmethod
    def from_destruction(cls, evidence: KeyDestruction) -> KeyDestroyed:
        return cls(
            uri=evidence.uri,
            versions_destroyed=list(evidence.versions_destroyed),
            destroyed_at=evidence.destroyed_at,
            method=evidence.method,
            checks=dict(evidence.checks),
            verified=evidence.verified,
            exportable=evidence.exportable,
            allow_plaintext_backup=evidence.allow_plaintext_backup,
            ce_claimable=evidence.ce_claimable,
            ce_basis=ce_basis(
                evidence.verified, evidence.exportable, evidence.allow_plaintext_backup
            ),
            limits=evidence.limits or None,
        )

    def judged(
        self,
        *,
        planned_exportable: bool | None = None,
        planned_backup: bool | None = None,
        still_answers: str | None = None,
    ) -> KeyDestroyed:
        """This evidence with the plan's facts and the post-retirement check folded in: a key
        planned exportable stays not CE-claimable though Vault no longer reports it, and a key
        that answers at verification is neither verified nor CE-claimable."""
        exportable = bool(self.exportable) or bool(planned_exportable)
        backup = bool(self.allow_plaintext_backup) or bool(planned_backup)
        checks = dict(self.checks)
        verified = self.verified
        if still_answers is not None:
            checks["post-retirement check"] = still_answers[:4000]
            verified = False
        no_export = self.exportable is None and planned_exportable is None
        no_backup = self.allow_plaintext_backup is None and planned_backup is None
        return self.model_copy(
            update={
                "checks": checks,
                "verified": verified,
                "exportable": None if no_export else exportable,
                "allow_plaintext_backup": None if no_backup else backup,
                "ce_claimable": verified and not exportable and not backup,
                "ce_basis": ce_basis(verified, exportable, backup, still_answers is not None),
            }
        )


def ce_basis(
    verified: bool, exportable: bool | None, backup: bool | None, answered: bool = False
) -> str:
    """Why cryptographic erase is (not) claimed for a key, in one sentence."""
    if answered:
        return "not claimed: the key still answered at the post-retirement check"
    if not verified:
        return "not claimed: the destruction was not verified from the key material"
    if exportable or backup:
        which = " and ".join(
            n for n, on in (("exportable", exportable), ("allow_plaintext_backup", backup)) if on
        )
        return (
            f"not claimed: the key was {which}, so a copy of it may exist outside the key "
            "service and destroying the key service's copy does not make the data unrecoverable"
        )
    return "claimed: the key material was proved gone and the key service never let it out"


def ce_claimable(key: KeyDestroyed) -> bool:
    """Whether cryptographic erase may be claimed for data under this key: its destruction was
    verified, and nothing says a copy of it may survive (``ce_claimable`` where recorded; else
    neither ``exportable`` nor ``allow_plaintext_backup`` is on)."""
    if not key.verified:
        return False
    if key.ce_claimable is not None:
        return key.ce_claimable
    return not key.exportable and not key.allow_plaintext_backup


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
            if loc.validation.result is not ValidationResult.ACCEPTED:
                found.append((loc.uri, "outcome not accepted (validation rejected)"))
            for claim in loc.sanitization:
                at = claim.irrecoverable_after.at
                if at is not None and at > self.issued_at:
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
        self._check_erase_claims()
        return self

    def _check_erase_claims(self) -> None:
        """A cryptographic erase claim names only keys this certificate destroyed, verified gone
        (and claimable: a key that was exportable or allowed a plaintext backup may live on)."""
        keys = {k.uri: k for k in self.keys_destroyed}
        for loc in self.locations:
            for claim in loc.sanitization:
                for uri in claim.keys:
                    key = keys.get(uri)
                    if key is None:
                        raise ValueError(f"{loc.uri}: cryptographic erase of {uri}, not destroyed")
                    if not ce_claimable(key):
                        raise ValueError(
                            f"{loc.uri}: cryptographic erase of {uri}, whose destruction is not "
                            "verified (or which may survive elsewhere)"
                        )

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
    kek = "vault://transit/fraud-scorer-v3"
    s3_found = Counts(objects=2, versions=5, bytes=3 * 1_342_177_280 + 1_024)
    s3_erased = Counts(objects=1, versions=3, bytes=3 * 1_342_177_280)
    s3_deleted = Counts(objects=1, versions=2, bytes=1_024)
    held = Counts(objects=1, versions=1, bytes=52_428_800) if with_exceptions else Counts()
    gcs_found = Counts(
        objects=4 + held.objects, versions=4 + held.versions, bytes=(4 * 52_428_800) + held.bytes
    )
    gcs_purged = Counts(objects=4, versions=4, bytes=4 * 52_428_800)
    logs = "s3://acme-ml-prod/systems/fraud-scorer-v3/logs"
    not_read = "server-side encryption not read (the listing does not report it)"
    accepted = "automatic: the re-listing compared with the approved plan"
    provider_retention = IrrecoverableAfter(
        unknown="provider retention: deleted through the provider's API; how long the provider "
        "keeps the bytes on its media is not reported",
        basis="logical deletion; the store reports no soft-delete or noncurrent retention",
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
            protection=[
                ProtectionCount(
                    protection=Protection.ENVELOPE,
                    key=kek,
                    copies=3,
                    bytes=3 * 1_342_177_280,
                ),
                ProtectionCount(protection=Protection.UNKNOWN, copies=1, bytes=1_024),
                ProtectionCount(protection=Protection.NONE, copies=1, bytes=0),
            ],
            purged=s3_found,
            archived=Counts(objects=2, versions=2, bytes=1_342_177_280 + 1_024),
            held=Counts(),
            ce_covered=s3_erased,
            logically_deleted=s3_deleted,
            remaining=0,
            sanitization=[
                Sanitization(
                    category=SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE,
                    copies=s3_erased,
                    method=f"cryptographic erase of {kek} versions 1..3: every copy's sidecar "
                    "unwrapped under it and its first segment authenticated when planned; "
                    "the copies were also deleted",
                    keys=[kek],
                    irrecoverable_after=IrrecoverableAfter(
                        at=done, basis=f"{kek} destroyed and verified gone"
                    ),
                ),
                Sanitization(
                    category=SanitizationCategory.LOGICAL_DELETION,
                    copies=s3_deleted,
                    method="every version and delete marker deleted through the S3 API "
                    f"(protection: 1 {not_read}; 1 delete marker, no content)",
                    irrecoverable_after=provider_retention,
                ),
            ],
            verification=Verification(
                method="full re-listing of versions, delete markers and multipart uploads",
                result=VerificationResult.PASSED,
                details="0 versions, 0 delete markers, 0 uploads remain under the prefix",
                verified_at=done,
            ),
            validation=Validation(
                result=ValidationResult.ACCEPTED,
                basis=accepted,
                details="every planned copy purged; nothing remains",
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
            protection=[
                ProtectionCount(
                    protection=Protection.UNKNOWN, copies=gcs_found.versions, bytes=gcs_found.bytes
                )
            ],
            purged=gcs_purged,
            archived=Counts(),
            held=held,
            ce_covered=Counts(),
            logically_deleted=gcs_purged,
            remaining=0,
            sanitization=[
                Sanitization(
                    category=SanitizationCategory.LOGICAL_DELETION,
                    copies=gcs_purged,
                    method=f"every generation deleted through the GCS API (protection: {not_read})",
                    irrecoverable_after=IrrecoverableAfter(
                        at=done + timedelta(days=7),
                        basis="end of the bucket's 7-day soft-delete window after the purge",
                    )
                    if with_exceptions
                    else provider_retention,
                ),
            ],
            verification=Verification(
                method="full re-listing of generations and soft-deleted objects",
                result=VerificationResult.PASSED,
                details="only the held generation remains" if with_exceptions else "none remain",
                verified_at=done,
            ),
            validation=Validation(
                result=ValidationResult.ACCEPTED,
                basis=accepted,
                details="every planned copy purged"
                + ("; 1 held copy stays, as planned" if with_exceptions else ""),
            ),
        ),
        LocationRecord(
            uri=logs,
            provider="aws s3",
            classification="internal: logs",
            settings=StorageSettings(versioning="enabled", soft_delete="none"),
            found=Counts(),
            purged=Counts(),
            archived=Counts(),
            held=Counts(),
            ce_covered=Counts(),
            logically_deleted=Counts(),
            remaining=0,
            verification=Verification(
                method="full re-listing of versions, delete markers and multipart uploads",
                result=VerificationResult.PASSED,
                details="nothing found",
                verified_at=done,
            ),
            validation=Validation(
                result=ValidationResult.ACCEPTED, basis=accepted, details="nothing found"
            ),
        ),
    ]
    exceptions = (
        [
            CertificateException(
                subject=data,
                kind="held",
                description="shard-00004.parquet is under an event-based hold (litigation "
                "LIT-2291); not deleted and not encrypted under a destroyed key: it stays readable",
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
