"""A realistic certificate for a fictional retired model (unsigned), with its manifest entries:
the fixture the certificate, rendering, CLI and verification tests sign, alter and verify, and the
example docs/formats/certificate.md shows. Test data, not part of Sundown's code path."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sundown import certificate as c


@dataclass(frozen=True)
class Sample:
    certificate: c.Certificate
    manifest_entries: list[c.ManifestEntry]


S3_RELISTING = "full re-listing of versions, delete markers and multipart uploads"


def sample_certificate(*, now: datetime | None = None, with_exceptions: bool = False) -> Sample:
    """A realistic certificate for a fictional retired model (unsigned), with its manifest
    entries, for the demo, the docs and tests. ``with_exceptions`` adds a GCS location whose
    soft-delete window is still open and one object under legal hold."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    started = now - timedelta(minutes=42)
    done = now - timedelta(minutes=2)

    def relisted(details: str, method: str = S3_RELISTING) -> c.Verification:
        return c.Verification(
            method=method, result=c.VerificationResult.PASSED, details=details, verified_at=done
        )

    weights = "s3://acme-ml-prod/systems/fraud-scorer-v3/weights"
    data = "gs://acme-ml-data/systems/fraud-scorer-v3/training"
    entries = [
        c.ManifestEntry(f"{weights}/model.safetensors", f"v{i}", 1_342_177_280, started)
        for i in range(1, 4)
    ] + [
        c.ManifestEntry(f"{weights}/config.json", "v1", 1_024, started),
        c.ManifestEntry(f"{weights}/model.safetensors", "dm1", 0, started, "delete_marker"),
    ]
    data_entries = [
        c.ManifestEntry(
            f"{data}/shard-{i:05d}.parquet", str(1_700_000_000_000 + i), 52_428_800, done
        )
        for i in range(4)
    ]
    writer = c.ManifestWriter()
    for _ in writer.chunks(entries + data_entries):
        pass
    kek = "vault://transit/fraud-scorer-v3"
    s3_found = c.Counts(objects=2, versions=5, bytes=3 * 1_342_177_280 + 1_024)
    s3_erased = c.Counts(objects=1, versions=3, bytes=3 * 1_342_177_280)
    s3_deleted = c.Counts(objects=1, versions=2, bytes=1_024)
    held = c.Counts(objects=1, versions=1, bytes=52_428_800) if with_exceptions else c.Counts()
    gcs_found = c.Counts(
        objects=4 + held.objects, versions=4 + held.versions, bytes=(4 * 52_428_800) + held.bytes
    )
    gcs_purged = c.Counts(objects=4, versions=4, bytes=4 * 52_428_800)
    logs = "s3://acme-ml-prod/systems/fraud-scorer-v3/logs"
    not_read = "server-side encryption not read (the listing does not report it)"
    accepted = "automatic: the re-listing compared with the approved plan"
    provider_retention = c.IrrecoverableAfter(
        unknown="provider retention: deleted through the provider's API; how long the provider "
        "keeps the bytes on its media is not reported",
        basis="logical deletion; the store reports no soft-delete or noncurrent retention",
    )
    locations = [
        c.LocationRecord(
            uri=weights,
            provider="aws s3",
            classification="confidential: model weights (envelope-encrypted)",
            settings=c.StorageSettings(
                versioning="enabled", soft_delete="none", object_lock="disabled"
            ),
            found=s3_found,
            protection=[
                c.ProtectionCount(
                    protection=c.Protection.ENVELOPE,
                    key=kek,
                    copies=3,
                    bytes=3 * 1_342_177_280,
                ),
                c.ProtectionCount(protection=c.Protection.UNKNOWN, copies=1, bytes=1_024),
                c.ProtectionCount(protection=c.Protection.NONE, copies=1, bytes=0),
            ],
            purged=s3_found,
            archived=c.Counts(objects=2, versions=2, bytes=1_342_177_280 + 1_024),
            held=c.Counts(),
            ce_covered=s3_erased,
            logically_deleted=s3_deleted,
            remaining=0,
            sanitization=[
                c.Sanitization(
                    category=c.SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE,
                    copies=s3_erased,
                    method=f"cryptographic erase of {kek} versions 1..3: every copy's sidecar "
                    "unwrapped under it and its first segment authenticated when planned; "
                    "the copies were also deleted",
                    keys=[kek],
                    irrecoverable_after=c.IrrecoverableAfter(
                        at=done, basis=f"{kek} destroyed and verified gone"
                    ),
                ),
                c.Sanitization(
                    category=c.SanitizationCategory.LOGICAL_DELETION,
                    copies=s3_deleted,
                    method="every version and delete marker deleted through the S3 API "
                    f"(protection: 1 {not_read}; 1 delete marker, no content)",
                    irrecoverable_after=provider_retention,
                ),
            ],
            verification=relisted(
                "0 versions, 0 delete markers, 0 uploads remain under the prefix"
            ),
            validation=c.Validation(
                result=c.ValidationResult.ACCEPTED,
                basis=accepted,
                details="every planned copy purged; nothing remains",
            ),
            backups=[
                c.CopyDisposition(
                    kind="replica",
                    description="cross-region replica (eu-west-1), same transit key",
                    uri="s3://acme-ml-dr/systems/fraud-scorer-v3/weights",
                    disposition="cryptographically erased (key destroyed); purged",
                ),
                c.CopyDisposition(
                    kind="archive",
                    description="archive copy re-wrapped under the archive key",
                    uri="s3://acme-ml-archive/fraud-scorer-v3",
                    disposition="retained 7 years under vault://transit/archive-2025",
                ),
            ],
        ),
        c.LocationRecord(
            uri=data,
            provider="google cloud storage",
            classification="restricted: personal data (transactions)",
            settings=c.StorageSettings(
                versioning="enabled",
                soft_delete="7 days (bucket soft_delete_policy)" if with_exceptions else "none",
                object_lock="bucket retention none; 1 object with event-based hold"
                if with_exceptions
                else "none",
            ),
            found=gcs_found,
            protection=[
                c.ProtectionCount(
                    protection=c.Protection.UNKNOWN,
                    copies=gcs_found.versions,
                    bytes=gcs_found.bytes,
                )
            ],
            purged=gcs_purged,
            archived=c.Counts(),
            held=held,
            ce_covered=c.Counts(),
            logically_deleted=gcs_purged,
            remaining=0,
            sanitization=[
                c.Sanitization(
                    category=c.SanitizationCategory.LOGICAL_DELETION,
                    copies=gcs_purged,
                    method=f"every generation deleted through the GCS API (protection: {not_read})",
                    irrecoverable_after=c.IrrecoverableAfter(
                        at=done + timedelta(days=7),
                        basis="end of the bucket's 7-day soft-delete window after the purge",
                    )
                    if with_exceptions
                    else provider_retention,
                ),
            ],
            verification=relisted(
                "only the held generation remains" if with_exceptions else "none remain",
                "full re-listing of generations and soft-deleted objects",
            ),
            validation=c.Validation(
                result=c.ValidationResult.ACCEPTED,
                basis=accepted,
                details="every planned copy purged"
                + ("; 1 held copy stays, as planned" if with_exceptions else ""),
            ),
        ),
        c.LocationRecord(
            uri=logs,
            provider="aws s3",
            classification="internal: logs",
            settings=c.StorageSettings(versioning="enabled", soft_delete="none"),
            found=c.Counts(),
            purged=c.Counts(),
            archived=c.Counts(),
            held=c.Counts(),
            ce_covered=c.Counts(),
            logically_deleted=c.Counts(),
            remaining=0,
            verification=relisted("nothing found"),
            validation=c.Validation(
                result=c.ValidationResult.ACCEPTED, basis=accepted, details="nothing found"
            ),
        ),
    ]
    exceptions = (
        [
            c.CertificateException(
                subject=data,
                kind="held",
                description="shard-00004.parquet is under an event-based hold (litigation "
                "LIT-2291); not deleted and not encrypted under a destroyed key: it stays readable",
                objects=1,
                bytes=52_428_800,
            ),
            c.CertificateException(
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
    cert = c.Certificate(
        certificate_id=f"DC-fraud-scorer-v3-{now:%Y%m%d}-0001",
        issued_at=now,
        system=c.SystemRef(
            name="fraud-scorer-v3",
            owner="risk-ml@acme.example",
            spec_digest="sha256:" + hashlib.sha256(b"sample system spec").hexdigest(),
        ),
        plan_digest="sha256:" + hashlib.sha256(b"sample plan").hexdigest(),
        performer=c.Party(
            name="Dana Okafor",
            role="ML platform engineer",
            organisation="Acme Payments Ltd",
            contact="dana.okafor@acme.example",
        ),
        approver=c.Party(
            name="Lee Marchetti",
            role="Head of Security",
            organisation="Acme Payments Ltd",
            contact="lee.marchetti@acme.example",
        ),
        approved_at=started - timedelta(minutes=5),
        execution=c.Execution(
            started_at=started,
            completed_at=done,
            accounts=["aws 123456789012", "gcp project acme-ml-data"],
            regions=["eu-west-1", "europe-west4"],
        ),
        locations=locations,
        keys_destroyed=[
            c.KeyDestroyed(
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
            c.CredentialRevoked(
                kind="vault token",
                identifier="accessor hmac-sha256:5e3c0a1f",
                revoked_at=done,
                method="auth/token/revoke-accessor",
                checks={"lookup-accessor": "invalid accessor"},
                verified=True,
            ),
            c.CredentialRevoked(
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
        status=c.Status.COMPLETE_WITH_EXCEPTIONS if with_exceptions else c.Status.COMPLETE,
    )
    return Sample(cert, entries + data_entries)
