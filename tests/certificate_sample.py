"""A realistic certificate for a fictional retired model (unsigned), with its manifest entries:
the fixture the certificate, rendering, CLI and verification tests sign, alter and verify, and the
example docs/formats/certificate.md shows. Test data, not part of Sundown's code path."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sundown.certificate import (
    Certificate,
    CertificateException,
    CopyDisposition,
    Counts,
    CredentialRevoked,
    Execution,
    IrrecoverableAfter,
    KeyDestroyed,
    LocationRecord,
    ManifestEntry,
    ManifestWriter,
    Party,
    Protection,
    ProtectionCount,
    Sanitization,
    SanitizationCategory,
    Status,
    StorageSettings,
    SystemRef,
    Validation,
    ValidationResult,
    Verification,
    VerificationResult,
)


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
