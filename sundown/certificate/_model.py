"""The certificate model: every field a decommissioning certificate states (NIST SP 800-88
Rev. 2, adapted to cloud object storage; docs/formats/certificate.md), with the rules that keep
it honest (what may be claimed for which copies, counts that add up, a signing key that is never
one the certificate destroys). No I/O, no signing: see :mod:`sundown.certificate._signing`."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Annotated, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StringConstraints,
    model_validator,
)

from sundown import __version__
from sundown.keys import KeyDestruction

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
    # server-side encryption under the system's storage key, which this retirement destroys
    # (the store's report of the key compared exactly with the key's ARN when planned)
    SSE_KMS = "sse-kms"
    SSE_TENANT_KEY = "sse-tenant-key"  # server-side encryption under a tenant key (no CE claim)
    PROVIDER_MANAGED = "provider-managed"
    NONE = "none"  # stored as written (file store plaintext, delete markers)
    UNKNOWN = "unknown"


#: The protections a cryptographic erase claim may rest on (keys this retirement destroys).
ERASABLE = frozenset({Protection.ENVELOPE, Protection.SSE_KMS})


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
        enveloped = sum(p.copies for p in self.protection if p.protection in ERASABLE)
        if self.ce_covered.versions > enveloped:
            raise ValueError(
                f"{self.ce_covered.versions} copies covered by cryptographic erase, but only "
                f"{enveloped} were found under an envelope or the server-side storage key of a "
                "key this retirement destroys"
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
    # A key the key service deletes at the end of a window (cloud KMS): the date the service
    # reported, until which the key can be restored (AWS CancelKeyDeletion, Cloud KMS Restore,
    # Key Vault Recover). Absent (not ``null``) when there is no window, so certificates made
    # before the field existed verify unchanged.
    pending_until: AwareDatetime | None = Field(default=None, exclude_if=lambda v: v is None)

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
            pending_until=evidence.pending_until,
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
    follows_failed: list[Text] = Field(
        default_factory=list,
        exclude_if=lambda v: not v,
        description="Certificate ids of earlier retirements of this system under the same spec "
        "whose certificates said failed: this retirement took what they left (its plan names "
        "them). Absent (not []) when there are none.",
    )
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
            if key.pending_until is not None and key.pending_until > self.issued_at:
                found.append((key.uri, "key deletion pending (the key can still be restored)"))
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
                    at = claim.irrecoverable_after.at
                    if key.pending_until is not None and (at is None or at < key.pending_until):
                        raise ValueError(
                            f"{loc.uri}: cryptographic erase of {uri}, whose deletion is pending "
                            f"until {key.pending_until.isoformat()}, but irrecoverable_after is "
                            "earlier: the copies stay recoverable until the key is deleted"
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
