"""Claims suite, stores part (issue #12): make a claim false in the world, then check that the
certificate no longer makes it. Real servers (moto, the Prefect test server), real retirements.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from flows.decommission import decommission_system
from flows.models import DecommissionParameters, Party
from sundown import registry
from sundown.certificate import verify_certificate
from tests.retirement import retirement
from tests.spec_builder import one_location_spec

APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")


def _retire(spec: str) -> tuple[Any, Any]:
    """Plan, approve and run a retirement; (result, verified certificate)."""
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    result = retirement(
        DecommissionParameters(spec_yaml=spec, approve_digest=plan.plan_digest, approver=APPROVER)
    )
    return plan, result


def _certificate(result: Any, name: str) -> Any:
    pub = registry.open_signer(f"local://{name}-certificates").public_key_pem()
    cert_path = Path(str(result.certificate_url).removeprefix("file://"))
    return verify_certificate(cert_path.read_bytes(), pub).certificate


def _s3_system(tmp_path: Path) -> tuple[str, str, str, Any]:
    name = f"c-{uuid.uuid4().hex[:8]}"
    bucket = f"claims-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    registry.create_key(f"local://{name}-kek")
    registry.create_key(f"local://{name}-certificates", signing=True)
    spec = one_location_spec(
        name, f"s3://{bucket}/models/a", tmp_path / "evidence", classification="confidential"
    )
    return name, bucket, spec, s3


def test_s3_folder_markers_are_purged_and_nothing_outside_is_touched(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    """Claim: "every copy in scope purged; nothing outside the location touched". The world:
    the AWS console's "Create folder" wrote ``models/a/`` and ``models/a/sub/``, someone wrote
    ``models/a//x``; the canary folder ``models/ab/`` sits beside. Before: the inventory failed
    with ScopeError "invalid object key ''" (a stall anyone with write access could cause)."""
    name, bucket, spec, s3 = _s3_system(tmp_path)
    inside = ["models/a/", "models/a/sub/", "models/a//x", "models/a/w.bin"]
    canaries = ["models/ab/", "models/ab/c.bin", "models/", "models/a.bak", "x"]
    for key in inside + canaries:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())

    plan, result = _retire(spec)
    (loc,) = plan.locations
    assert (loc.found, loc.purged, loc.held) == (4, 4, 0)
    assert result.status == "complete", result.exceptions
    left = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert sorted(o["Key"] for o in left) == sorted(canaries)
    for key in canaries:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    cert = _certificate(result, name)
    (record,) = cert.locations
    assert record.purged.versions == 4
    assert record.verification.result.value == "passed"


def test_s3_dot_segment_key_is_held_never_deleted_by_name(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    """Claim: "0 copies remain". The world: ``models/a/y/../b`` (a name an HTTP stack may
    resolve to ``models/b``, outside the location) and the canary ``models/b``. The retirement
    completes with an exception naming the key; the canary and the odd key both survive."""
    name, bucket, spec, s3 = _s3_system(tmp_path)
    s3.put_object(Bucket=bucket, Key="models/a/y/../b", Body=b"odd")
    s3.put_object(Bucket=bucket, Key="models/a/w.bin", Body=b"w")
    s3.put_object(Bucket=bucket, Key="models/b", Body=b"canary")

    plan, result = _retire(spec)
    (loc,) = plan.locations
    assert (loc.found, loc.purged, loc.held) == (2, 1, 1)
    assert result.status == "complete with exceptions"
    assert any("y/../b" in e and "'..' segment" in e for e in result.exceptions), result.exceptions
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    assert keys == ["models/a/y/../b", "models/b"]
    assert s3.get_object(Bucket=bucket, Key="models/b")["Body"].read() == b"canary"
    cert = _certificate(result, name)
    assert cert.status.value == "complete with exceptions"
    assert [e.kind for e in cert.exceptions] == ["held"]


# -- soft delete (gcp-storage-emulator keeps soft-deleted generations with hardDeleteTime) ------


def _gs_system(tmp_path: Path) -> tuple[str, Any, str]:
    from connectors.gcs import new_client

    name = f"c-{uuid.uuid4().hex[:8]}"
    bucket = new_client().create_bucket(f"claims-{uuid.uuid4().hex[:12]}")
    registry.create_key(f"local://{name}-kek")
    registry.create_key(f"local://{name}-certificates", signing=True)
    spec = one_location_spec(
        name, f"gs://{bucket.name}/models/a", tmp_path / "evidence", classification="confidential"
    )
    return name, bucket, spec


def _set_soft_delete(bucket: Any, seconds: int) -> None:
    bucket.soft_delete_policy.retention_duration_seconds = seconds
    bucket.patch()


def test_gcs_soft_deleted_copy_past_the_stated_window_fails_verification(
    tmp_path: Path, prefect_api: str, gcs_emulator_env: str
) -> None:
    """Claim: "purged copies stay restorable for <window>, irrecoverable after <time>". The
    world: a copy soft-deleted under a 90-day policy, the policy then shortened to 7 days (the
    window the plan records). That copy stays restorable for ~90 days, past what the certificate
    states: verification fails and the certificate says so, naming the copy. Before: soft-deleted
    copies were skipped unconditionally ("complete with exceptions")."""
    name, bucket, spec = _gs_system(tmp_path)
    _set_soft_delete(bucket, 90 * 86400)
    bucket.blob("models/a/old.bin").upload_from_string(b"old weights")
    bucket.blob("models/a/old.bin").delete()
    _set_soft_delete(bucket, 7 * 86400)
    bucket.blob("models/a/w.bin").upload_from_string(b"w" * 100)
    bucket.blob("models/ab/canary.bin").upload_from_string(b"canary")

    _, result = _retire(spec)
    assert result.status == "failed", result.exceptions
    cert = _certificate(result, name)
    (record,) = cert.locations
    assert record.verification.result.value == "failed"
    assert "old.bin" in record.verification.details
    assert "restorable past the window stated" in record.verification.details
    failed = [e for e in cert.exceptions if e.kind == "verification failed"]
    assert failed and "old.bin" in failed[0].description
    assert bucket.blob("models/ab/canary.bin").download_as_bytes() == b"canary"


def test_gcs_soft_delete_policy_switched_off_after_the_purge_keeps_the_window(
    tmp_path: Path, prefect_api: str, gcs_emulator_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claim: "irrecoverable after <time>". The world: the 7-day policy is switched off right
    after the purge, before the certificate is made. The purged copies stay restorable for 7
    days (they keep their hardDeleteTime); the certificate must still state the 7-day window
    read with the inventory and an irrecoverable-after time 7 days after the purge. Before: the
    window was read at certification ("none"), irrecoverable_after = the purge time."""
    from datetime import timedelta

    from flows import _execute

    name, bucket, spec = _gs_system(tmp_path)
    assert bucket.soft_delete_policy.retention_duration_seconds == 7 * 86400
    for i in range(2):
        bucket.blob(f"models/a/part-{i}.bin").upload_from_string(b"w" * 100)
    original = _execute.purge_range

    def purge_then_switch_off(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        _set_soft_delete(bucket, 0)
        return out

    monkeypatch.setattr(_execute, "purge_range", purge_then_switch_off)
    _, result = _retire(spec)
    bucket.reload()
    assert bucket.soft_delete_policy.retention_duration_seconds in (0, None)  # it was switched
    cert = _certificate(result, name)
    (record,) = cert.locations
    assert record.verification.result.value == "passed"
    assert record.settings.soft_delete.startswith("604800 seconds")
    (window,) = [e for e in cert.exceptions if e.kind == "soft-delete window"]
    assert window.until is not None
    assert window.until >= cert.execution.started_at + timedelta(days=7)
    (logical,) = [c for c in record.sanitization if c.irrecoverable_after.at is not None]
    assert logical.irrecoverable_after.at >= cert.execution.started_at + timedelta(days=7)
    assert "604800 seconds" in logical.irrecoverable_after.basis
    assert "part-0.bin" in window.description and "hard delete" in window.description
    assert result.status == "complete with exceptions"


def test_gcs_soft_delete_policy_switched_between_review_and_approval_is_refused(
    tmp_path: Path, prefect_api: str, gcs_emulator_env: str
) -> None:
    """The window is part of the plan and its digest: an approval of the plan reviewed under a
    7-day window does not approve one under no window. Nothing is deleted."""
    from sundown.errors import InputError

    _, bucket, spec = _gs_system(tmp_path)
    bucket.blob("models/a/w.bin").upload_from_string(b"w")
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    _set_soft_delete(bucket, 0)
    with pytest.raises(InputError, match="approval names plan digest"):
        decommission_system(
            DecommissionParameters(
                spec_yaml=spec, approve_digest=plan.plan_digest, approver=APPROVER
            )
        )
    assert bucket.blob("models/a/w.bin").download_as_bytes() == b"w"


# -- S3 replication --------------------------------------------------------------------------


def _replicate(s3: Any, bucket: str, to: str, prefix: str = "models/") -> None:
    for b in (bucket, to):
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(
        Bucket=bucket,
        ReplicationConfiguration={
            "Role": "arn:aws:iam::123456789012:role/replication",
            "Rules": [
                {
                    "ID": "to-dr",
                    "Priority": 1,
                    "Status": "Enabled",
                    "Filter": {"Prefix": prefix},
                    "DeleteMarkerReplication": {"Status": "Disabled"},
                    "Destination": {"Bucket": f"arn:aws:s3:::{to}"},
                }
            ],
        },
    )


def test_s3_replication_to_a_bucket_outside_the_spec_is_an_exception_naming_it(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    """Claim: "every copy purged". The world: a replication rule copies models/ to a disaster-
    recovery bucket the spec does not name (version deletes are never replicated). The
    certificate names the rule and the bucket as a replica not reached."""
    name, bucket, spec, s3 = _s3_system(tmp_path)
    dr = f"dr-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=dr)
    _replicate(s3, bucket, dr)
    s3.put_object(Bucket=bucket, Key="models/a/w.bin", Body=b"w")

    _plan, result = _retire(spec)
    assert result.status == "complete with exceptions", result.exceptions
    cert = _certificate(result, name)
    (replica,) = [e for e in cert.exceptions if e.kind == "replica not reached"]
    assert f"arn:aws:s3:::{dr}" in replica.description and "to-dr" in replica.description


def test_s3_replication_to_a_location_of_the_spec_is_no_exception(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    """The same rule, its destination (same prefix) declared in the spec: retired with it."""
    name, bucket, spec, s3 = _s3_system(tmp_path)
    dr = f"dr-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=dr)
    _replicate(s3, bucket, dr)
    s3.put_object(Bucket=bucket, Key="models/a/w.bin", Body=b"w")
    s3.put_object(Bucket=dr, Key="models/a/w.bin", Body=b"w")  # what replication wrote
    spec = spec.replace(
        f"      - s3://{bucket}/models/a\n",
        f"      - s3://{bucket}/models/a\n      - s3://{dr}/models/a\n",
    )
    _, result = _retire(spec)
    cert = _certificate(result, name)
    assert not [e for e in cert.exceptions if e.kind == "replica not reached"], cert.exceptions
    assert result.status == "complete", result.exceptions


# -- archive (the file-store system of tests/flows/systems.py: encrypted weights archived) -----


def _file_params(system: Any, **kw: Any) -> DecommissionParameters:
    return DecommissionParameters(spec_path=str(system.spec_path), variables=system.variables, **kw)


def _file_retire(system: Any) -> Any:
    plan = decommission_system(_file_params(system, dry_run=True))
    return decommission_system(
        _file_params(system, approve_digest=plan.plan_digest, approver=APPROVER)
    )


def test_archived_copies_are_listed_each_with_digest_encryption_and_key(
    tmp_path: Path, prefect_api: str
) -> None:
    """Claim: "archived, re-encrypted under the archive key". Each archive copy is listed:
    its URI, bytes, digest, encryption and key, and how it was verified; an earlier retention
    sweep's plaintext archive copies (training data, archived before deletion) are listed too,
    as plaintext, not covered by any key destruction. Before: one summary line, and the sweep's
    copies were missing."""
    from datetime import UTC, datetime, timedelta

    from flows.models import RetentionParameters
    from flows.retention import retention_sweep
    from tests.flows.systems import WEIGHTS, make_system

    system = make_system(tmp_path / "sys")
    as_of = datetime.now(UTC) + timedelta(days=400)
    sweep = retention_sweep(
        RetentionParameters(
            spec_path=str(system.spec_path), variables=system.variables, as_of=as_of
        )
    )
    assert sweep.archived == 2
    # the sweep emptied logs and data; put data back so the retirement has something there
    (system.store("data/sys-a") / "late.parquet").write_bytes(b"late")
    result = _file_retire(system)
    cert = _certificate(result, "sys-a")
    records = {r.uri.rsplit("/", 2)[-2]: r for r in cert.locations}
    weights = records["models"].backups
    assert len(weights) == len(WEIGHTS)  # one per ciphertext (sidecars replaced by new ones)
    for b in weights:
        assert b.kind == "archive" and b.uri and "weights/file/" in b.uri
        assert "encryption envelope" in b.description and "local://sys-a-archive" in b.description
        assert "sha256 " in b.description and "decrypted with the archive key" in b.description
        assert b.disposition == "retained, encrypted under local://sys-a-archive"
    data = records["data"].backups
    swept = [b for b in data if "retention sweep" in b.description]
    assert sorted(str(b.uri).rsplit("/", 1)[-1] for b in swept) == [
        "part-0.parquet",
        "part-1.parquet",
    ]
    for b in swept:
        assert "encryption none (plaintext)" in b.description
        assert b.disposition.startswith("retained in plaintext")


def test_ciphertext_whose_sidecar_is_lost_stops_before_any_delete(
    tmp_path: Path, prefect_api: str
) -> None:
    """Claim: "re-encrypted under the archive key". The world: the sidecar of an encrypted
    weights file is lost. Before: the ciphertext was copied verbatim (it dies with the KEK) and
    described as re-encrypted. Now the archive step stops the retirement before any delete: every
    file is still there, the KEK is intact, no certificate."""
    from sundown.errors import IntegrityError
    from tests.flows.systems import make_system

    system = make_system(tmp_path / "sys")
    (system.store("models/sys-a") / "model.safetensors.sidecar.json").unlink()
    before = {p: system.files(p) for p in ("models/sys-a", "logs/sys-a", "data/sys-a")}
    with pytest.raises(IntegrityError, match=r"sidecar .* is missing"):
        _file_retire(system)
    assert {p: system.files(p) for p in before} == before
    assert registry.open_key_service("local://sys-a-kek").info().versions
    assert list((system.root / "evidence").rglob("certificate.dsse.json")) == []
    assert system.canaries_intact()


def test_storage_class_on_the_file_store_is_refused_before_any_delete(
    tmp_path: Path, prefect_api: str
) -> None:
    """Claim: "archived to <storage class>". The world: the archive target is a folder, which has
    no storage classes. Before: the class was dropped silently. Now: UnsupportedError before the
    first archive copy, nothing deleted, the KEK intact."""
    from sundown.errors import UnsupportedError
    from tests.flows.systems import make_system

    system = make_system(tmp_path / "sys")
    spec = system.spec_path.read_text().replace(
        "  key: local://sys-a-archive\n", "  key: local://sys-a-archive\n  storage_class: GLACIER\n"
    )
    system.spec_path.write_text(spec)
    before = system.files("models/sys-a")
    with pytest.raises(UnsupportedError, match="has no storage classes"):
        _file_retire(system)
    assert system.files("models/sys-a") == before
    assert system.files("archive/sys-a") == []
    registry.open_key_service("local://sys-a-kek").info()


def test_settings_are_part_of_the_plan_digest_and_shown_to_the_approver(tmp_path: Path) -> None:
    """The soft-delete window and the replicas out of reach are recorded in the plan file (read
    back by read_plan), shown in its Markdown, and covered by its digest: an approval of one
    window is not an approval of another."""
    from datetime import UTC, datetime

    from sundown.plan import StoreSettings, build_plan, read_plan
    from sundown.spec.loader import parse_spec
    from sundown.store import Entry, EntryKind

    spec = parse_spec(
        "name: sys-s\nowner: o@example.com\nclassification: internal\n"
        "assets:\n  weights:\n    locations: [s3://b-models/sys-s]\n"
        "keys:\n  kek: local://k-kek\n  certificate: local://k-certs\n"
    )
    url = "s3://b-models/sys-s"
    entries = {url: [Entry("w", "v1", EntryKind.OBJECT, 1, datetime(2026, 1, 1, tzinfo=UTC))]}
    week = StoreSettings(
        versioning="enabled",
        object_lock="none",
        soft_delete_seconds=604800,
        soft_delete_source="policy",
        replicas=["S3 replication rule to-dr of s3://b-models to arn:aws:s3:::dr"],
    )
    off = week.model_copy(update={"soft_delete_seconds": None})
    now = datetime(2026, 2, 1, tzinfo=UTC)
    a = build_plan(spec, entries, tmp_path / "a.jsonl", now=now, settings={url: week})
    b = build_plan(spec, entries, tmp_path / "b.jsonl", now=now, settings={url: off})
    assert a.digest != b.digest
    assert read_plan(a.path, a.digest).locations[0].settings == week
    md = a.to_markdown()
    assert "604800 seconds (policy)" in md and "arn:aws:s3:::dr" in md
