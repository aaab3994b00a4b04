"""``purge_by: lifecycle`` on moto's S3 through a real Prefect server: Sundown adds one rule
scoped to the location's prefix, merged with the bucket's own rules; the retirement waits (no key
destroyed, nothing certified) while the prefix holds copies; once it is empty a re-run removes
only Sundown's rule, destroys the keys and certifies.

Emulator gap (docs/known-gaps.md): moto stores lifecycle configurations but never executes
them, so these tests simulate the provider's expiry by deleting the prefix's versions and delete
markers themselves, with a second client."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from flows.decommission import decommission_system
from flows.models import DecommissionParameters, Party
from sundown import registry
from sundown.certificate import verify_certificate
from sundown.errors import KeyDestroyedError, SundownError
from tests.spec_builder import Flow, one_location_spec

APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")


def lc_spec(bucket_url: str, evidence: Path, purge_by: str = "lifecycle") -> str:
    """System lc-sys: its weights at ``BUCKET_URL/models/a``, purged by ``purge_by``."""
    return one_location_spec(
        "lc-sys",
        Flow(url=f"{bucket_url}/models/a", purge_by=purge_by),
        evidence,
        classification="confidential",
    )


FOREIGN = [
    {
        "ID": "team-logs",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}],
    },
    {
        "ID": "team-models",
        "Filter": {"Prefix": "models/"},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
    },
]
CANARIES = ["models/ab/canary", "models/a.bin", "models/abc"]


def _rules(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return list(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])


def _foreign_intact(rules: list[dict[str, Any]], foreign: list[dict[str, Any]]) -> bool:
    by_id = {r["ID"]: r for r in rules}
    return all(
        r["ID"] in by_id and all(by_id[r["ID"]].get(k) == v for k, v in r.items()) for r in foreign
    )


def _expire(s3: Any, bucket: str, prefix: str) -> None:
    """What S3 would do under the rule and moto does not (the emulator gap): every version and
    delete marker under the prefix, deleted by a second client."""
    listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    for v in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])


def retired(s3: Any, bucket: str, certificate_url: str | None) -> Any:
    """The KEK destroyed, the canaries intact; the certificate, verified."""
    with pytest.raises(KeyDestroyedError):
        registry.open_key_service("local://lc-sys-kek")
    for key in CANARIES:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"canary"
    pub = registry.open_signer("local://lc-sys-certificates").public_key_pem()
    cert_path = Path(str(certificate_url).removeprefix("file://"))
    return verify_certificate(cert_path.read_bytes(), pub).certificate


def _journal(evidence: Path, name: str) -> dict[str, Any]:
    (path,) = evidence.rglob(f"journal/{name}.json")
    envelope = json.loads(path.read_text())
    import base64

    return dict(json.loads(base64.b64decode(envelope["payload"]))["data"])


def test_lifecycle_retirement_waits_then_removes_only_its_rule_and_certifies(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    bucket = f"lc-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": FOREIGN})
    prefix = "models/a/"
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"{prefix}model.bin", Body=f"v{i}".encode() * 100)
    s3.put_object(Bucket=bucket, Key=f"{prefix}gone.bin", Body=b"x")
    s3.delete_object(Bucket=bucket, Key=f"{prefix}gone.bin")  # a delete marker
    for key in CANARIES:
        s3.put_object(Bucket=bucket, Key=key, Body=b"canary")
    registry.create_key("local://lc-sys-kek")
    registry.create_key("local://lc-sys-certificates", signing=True)
    evidence = tmp_path / "evidence"
    spec = lc_spec(f"s3://{bucket}", evidence)
    batch_spec = lc_spec(f"s3://{bucket}", evidence, "batch")

    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    # The purge method is part of the plan, so the approved digest covers it.
    batch_plan = decommission_system(DecommissionParameters(spec_yaml=batch_spec, dry_run=True))
    assert plan.plan_digest != batch_plan.plan_digest
    (loc,) = plan.locations
    assert loc.found == 3 + 2 and loc.purged == 5

    approve = DecommissionParameters(
        spec_yaml=spec, approve_digest=plan.plan_digest, approver=APPROVER
    )
    first = decommission_system(approve)
    assert first.status == "waiting for lifecycle expiry", first
    assert first.certificate_id is None and first.waiting
    assert f"s3://{bucket}/models/a" in first.waiting[0]
    rules = _rules(s3, bucket)
    assert _foreign_intact(rules, FOREIGN)
    (mine,) = [r for r in rules if r["ID"] not in ("team-logs", "team-models")]
    assert mine["ID"].startswith("sundown-retire-lc-sys-")
    assert plan.plan_digest.removeprefix("sha256:")[:32] in mine["ID"]
    assert mine["Filter"] == {"Prefix": "models/a/"}  # the path boundary: never models/ab
    assert mine["Expiration"] == {"Days": 1}
    assert mine["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    assert mine["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    # Nothing deleted by Sundown, nothing certified, the KEK alive.
    listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    assert len(listed["Versions"]) == 4 and len(listed["DeleteMarkers"]) == 1
    registry.open_key_service("local://lc-sys-kek").info()
    assert not list(evidence.rglob("certificate.dsse.json"))
    added = _journal(evidence, "lifecycle-000-added")
    assert [r["ID"] for r in added["before"]] == ["team-logs", "team-models"]
    assert [r["ID"] for r in added["after"]] == ["team-logs", "team-models", mine["ID"]]

    # A re-run before expiry re-verifies and waits again; the rule is not added twice.
    again = decommission_system(DecommissionParameters(spec_yaml=spec))
    assert again.status == "waiting for lifecycle expiry" and again.resumed
    assert _rules(s3, bucket) == rules
    registry.open_key_service("local://lc-sys-kek").info()

    # Someone else adds a rule after Sundown's: Sundown's removal must keep it.
    late = {
        "ID": "late-rule",
        "Filter": {"Prefix": "tmp/"},
        "Status": "Enabled",
        "Expiration": {"Days": 7},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [*_rules(s3, bucket), late]}
    )
    _expire(s3, bucket, prefix)  # the emulator gap: moto never runs the rule

    done = decommission_system(DecommissionParameters(spec_yaml=spec))
    assert done.status == "complete", done
    after = _rules(s3, bucket)
    assert [r["ID"] for r in after] == ["team-logs", "team-models", "late-rule"]
    assert _foreign_intact(after, [*FOREIGN, late])
    removed = _journal(evidence, "lifecycle-000-removed")
    assert removed["rule_id"] == mine["ID"]
    assert [r["ID"] for r in removed["after"]] == ["team-logs", "team-models", "late-rule"]
    cert = retired(s3, bucket, done.certificate_url)
    (record,) = cert.locations
    assert record.verification.result.value == "passed" and record.remaining == 0
    (claim,) = record.sanitization
    assert claim.category.value.startswith("logical deletion")
    assert claim.method.startswith("lifecycle expiry") and mine["ID"] in claim.method
    # A further run returns the same certificate and leaves the rules alone.
    final = decommission_system(DecommissionParameters(spec_yaml=spec))
    assert final.certificate_id == done.certificate_id
    assert _rules(s3, bucket) == after


def test_lifecycle_on_a_file_location_is_refused_by_the_spec(
    tmp_path: Path, prefect_api: str
) -> None:
    spec = lc_spec(f"file://{tmp_path}", tmp_path / "evidence")
    with pytest.raises(SundownError, match="purge_by: lifecycle needs an object store"):
        decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    assert not (tmp_path / "evidence").exists()


def _approved(tmp_path: Path, *, lock: bool) -> tuple[Any, str, str]:
    """A bucket with copies under models/a/ and the canaries; its retirement approved and
    waiting. Returns (client, bucket, spec)."""
    bucket = f"lc-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    if lock:
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    else:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": FOREIGN})
    for i in range(2):
        s3.put_object(Bucket=bucket, Key="models/a/model.bin", Body=f"v{i}".encode())
    for key in CANARIES:
        s3.put_object(Bucket=bucket, Key=key, Body=b"canary")
    registry.create_key("local://lc-sys-kek")
    registry.create_key("local://lc-sys-certificates", signing=True)
    spec = lc_spec(f"s3://{bucket}", tmp_path / "evidence")
    return s3, bucket, spec


def test_held_copies_win_over_the_rule_and_are_reported_held(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    """A legally held version under the prefix: lifecycle cannot expire it. Once everything
    else is gone the retirement goes on, reports it held (as with batch purging) and removes
    only its own rule; the held version stays."""
    s3, bucket, spec = _approved(tmp_path, lock=True)
    held = s3.put_object(Bucket=bucket, Key="models/a/evidence.bin", Body=b"keep")
    s3.put_object_legal_hold(
        Bucket=bucket,
        Key="models/a/evidence.bin",
        VersionId=held["VersionId"],
        LegalHold={"Status": "ON"},
    )
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    approve = DecommissionParameters(
        spec_yaml=spec, approve_digest=plan.plan_digest, approver=APPROVER
    )
    assert decommission_system(approve).status == "waiting for lifecycle expiry"
    listed = s3.list_object_versions(Bucket=bucket, Prefix="models/a/")
    for v in listed.get("Versions", []):  # the emulator gap: expire what S3 could expire
        if v["VersionId"] != held["VersionId"]:
            s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    done = decommission_system(DecommissionParameters(spec_yaml=spec))
    assert done.status == "complete with exceptions", done
    assert any("legal hold" in e for e in done.exceptions), done.exceptions
    assert [r["ID"] for r in _rules(s3, bucket)] == ["team-logs", "team-models"]
    left = s3.list_object_versions(Bucket=bucket, Prefix="models/a/")
    assert [v["VersionId"] for v in left["Versions"]] == [held["VersionId"]]
    for key in CANARIES:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"canary"
    s3.put_object_legal_hold(
        Bucket=bucket,
        Key="models/a/evidence.bin",
        VersionId=held["VersionId"],
        LegalHold={"Status": "OFF"},
    )


def test_a_widened_sundown_rule_stops_the_retirement_before_any_key_is_destroyed(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    """A writer to the bucket's configuration widens Sundown's rule (models/a/ -> models/,
    which would expire the canaries' neighbours): the re-run re-verifies the rule against the
    journal and stops, removing nothing, destroying no key, certifying nothing."""
    s3, bucket, spec = _approved(tmp_path, lock=False)
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    approve = DecommissionParameters(
        spec_yaml=spec, approve_digest=plan.plan_digest, approver=APPROVER
    )
    assert decommission_system(approve).status == "waiting for lifecycle expiry"
    rules = _rules(s3, bucket)
    for r in rules:
        if r["ID"].startswith("sundown-"):
            r["Filter"] = {"Prefix": "models/"}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    _expire(s3, bucket, "models/a/")
    with pytest.raises(SundownError, match="was changed since it was added"):
        decommission_system(DecommissionParameters(spec_yaml=spec))
    assert _rules(s3, bucket) == rules  # nothing removed
    registry.open_key_service("local://lc-sys-kek").info()
    assert not list((tmp_path / "evidence").rglob("certificate.dsse.json"))


def test_lifecycle_on_a_store_without_the_capability_is_refused_at_planning(
    tmp_path: Path, prefect_api: str, azure_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """az:// without the management-plane configuration (no subscription and resource group:
    the lifecycle policy cannot be reached) does not declare lifecycle rules: the plan is
    refused, naming the field, before anything is written or approved; the blobs stay."""
    from connectors import azure_blob
    from tests.test_azure_specific import _container

    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    container = _container()
    client = azure_blob.new_service_client().get_container_client(container)
    client.upload_blob("models/a/model.bin", b"w")
    registry.create_key("local://lc-sys-kek")
    registry.create_key("local://lc-sys-certificates", signing=True)
    spec = lc_spec(f"az://{container}", tmp_path / "evidence")
    with pytest.raises(SundownError, match=r"assets\.weights\.locations\[0\].*does not support"):
        decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    assert not (tmp_path / "evidence").exists()
    assert client.get_blob_client("models/a/model.bin").exists()
    registry.open_key_service("local://lc-sys-kek").info()


def test_two_lifecycle_locations_in_one_bucket_each_add_and_remove_their_own_rule(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    """s3://B/models/a and s3://B/models/c, both purge_by: lifecycle: one rule each (one ID per
    plan made the second add a ConflictError after the first rule was already expiring data,
    and the retirement could never finish). Both wait, then complete once both prefixes are
    empty; only Sundown's two rules are removed, the foreign ones kept."""
    from tests.spec_builder import spec_yaml

    bucket = f"lc-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": FOREIGN})
    for prefix in ("models/a/", "models/c/"):
        s3.put_object(Bucket=bucket, Key=f"{prefix}model.bin", Body=b"weights")
    for key in CANARIES:
        s3.put_object(Bucket=bucket, Key=key, Body=b"canary")
    registry.create_key("local://lc-sys-kek")
    registry.create_key("local://lc-sys-certificates", signing=True)
    evidence = tmp_path / "evidence"
    locations = [Flow(url=f"s3://{bucket}/models/{p}", purge_by="lifecycle") for p in ("a", "c")]
    spec = spec_yaml(
        "lc-sys",
        assets={"weights": {"locations": locations}},
        evidence=f"file://{evidence}",
        classification="confidential",
    )
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    approve = DecommissionParameters(
        spec_yaml=spec, approve_digest=plan.plan_digest, approver=APPROVER
    )
    first = decommission_system(approve)
    assert first.status == "waiting for lifecycle expiry", first
    assert len(first.waiting) == 2
    rules = _rules(s3, bucket)
    assert _foreign_intact(rules, FOREIGN)
    mine = [r for r in rules if r["ID"] not in ("team-logs", "team-models")]
    assert sorted(r["Filter"]["Prefix"] for r in mine) == ["models/a/", "models/c/"]
    ids = {r["ID"] for r in mine}
    assert len(ids) == 2
    assert all(i.startswith("sundown-retire-lc-sys-") for i in ids)
    registry.open_key_service("local://lc-sys-kek").info()

    _expire(s3, bucket, "models/a/")  # the emulator gap: moto never runs the rules
    half = decommission_system(DecommissionParameters(spec_yaml=spec))
    assert half.status == "waiting for lifecycle expiry", half
    assert len(half.waiting) == 1 and "models/c" in half.waiting[0]
    left = [r for r in _rules(s3, bucket) if r["ID"] in ids]
    assert [r["Filter"]["Prefix"] for r in left] == ["models/c/"]  # a's rule only, removed
    registry.open_key_service("local://lc-sys-kek").info()

    _expire(s3, bucket, "models/c/")
    done = decommission_system(DecommissionParameters(spec_yaml=spec))
    assert done.status == "complete", done
    after = _rules(s3, bucket)
    assert [r["ID"] for r in after] == ["team-logs", "team-models"]
    assert _foreign_intact(after, FOREIGN)
    cert = retired(s3, bucket, done.certificate_url)
    assert len(cert.locations) == 2


def test_a_crash_between_the_rule_write_and_its_journal_record_is_adopted_on_rerun(
    tmp_path: Path, prefect_api: str, moto_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run dies after S3 took the lifecycle PUT and before ``lifecycle-000-added`` is
    journaled (the one window where the bucket knows more than the evidence). The re-run finds
    its own rule, identical, under its own ID: it adds nothing (one Sundown rule, the foreign
    ones kept), journals the configuration as it found it (Sundown's rule already in
    ``before``: the journal says what was read, not what it wishes had been), waits, and after
    expiry removes only that rule and certifies once. The same at removal: the rule is gone,
    ``lifecycle-000-removed`` is not journaled, no key destroyed; the re-run removes nothing
    more, journals the removal and certifies once."""
    from flows.journal import Journal

    s3, bucket, spec = _approved(tmp_path, lock=False)
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    record = Journal.record
    crash_at = "lifecycle-000-added"

    def dies_before_journaling(self: Journal, step: str, data: Any) -> Any:
        if step == crash_at:
            raise RuntimeError("simulated crash after the lifecycle PUT")
        return record(self, step, data)

    monkeypatch.setattr(Journal, "record", dies_before_journaling)
    approve = DecommissionParameters(
        spec_yaml=spec, approve_digest=plan.plan_digest, approver=APPROVER
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        decommission_system(approve)
    monkeypatch.setattr(Journal, "record", record)
    rules = _rules(s3, bucket)
    (mine,) = [r for r in rules if r["ID"].startswith("sundown-retire-")]  # the PUT landed
    assert not list((tmp_path / "evidence").rglob("journal/lifecycle-000-added.json"))

    again = decommission_system(DecommissionParameters(spec_yaml=spec))
    assert again.status == "waiting for lifecycle expiry", again
    assert _rules(s3, bucket) == rules  # adopted, not added twice, foreign rules as they were
    added = _journal(tmp_path / "evidence", "lifecycle-000-added")
    assert added["rule_id"] == mine["ID"]
    assert mine["ID"] in [r["ID"] for r in added["before"]]
    assert [r["ID"] for r in added["after"]] == [r["ID"] for r in rules]
    registry.open_key_service("local://lc-sys-kek").info()

    # The same window at the other end: the rule's removal lands, its journal record does not.
    _expire(s3, bucket, "models/a/")
    crash_at = "lifecycle-000-removed"
    monkeypatch.setattr(Journal, "record", dies_before_journaling)
    with pytest.raises(RuntimeError, match="simulated crash"):
        decommission_system(DecommissionParameters(spec_yaml=spec))
    monkeypatch.setattr(Journal, "record", record)
    assert [r["ID"] for r in _rules(s3, bucket)] == ["team-logs", "team-models"]
    registry.open_key_service("local://lc-sys-kek").info()  # no key destroyed in between
    assert not list((tmp_path / "evidence").rglob("certificate.dsse.json"))

    done = decommission_system(DecommissionParameters(spec_yaml=spec))
    assert done.status == "complete", done
    assert [r["ID"] for r in _rules(s3, bucket)] == ["team-logs", "team-models"]
    assert _foreign_intact(_rules(s3, bucket), FOREIGN)
    assert _journal(tmp_path / "evidence", crash_at)["rule_id"] == mine["ID"]
    retired(s3, bucket, done.certificate_url)
    assert len(list((tmp_path / "evidence").rglob("certificate.dsse.json"))) == 1
