"""Retirements whose KEK is a cloud KMS key: AWS KMS on moto_server (weights on moto's S3,
deployed with ``deploy_model``), Cloud KMS on the fake REST server for the follow-up's "gone"
path (moto never ends a pending window: docs/known-gaps.md). Each test tries to make Sundown
claim more than the KMS proved, or use a key it should refuse."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli import main
from connectors import gcp_kms
from connectors.aws_kms import KmsKeyDestruction
from flows import _steps
from flows._common import ledger_append
from flows._pending import follow_up_verdict
from flows.decommission import decommission_system
from flows.deploy import deploy_model
from flows.key_deletion import FollowUpParameters, follow_up, key_deletion_follow_up
from flows.models import DeployParameters, Incomplete, RetentionParameters
from flows.retention import retention_sweep
from sundown import registry
from sundown.certificate import (
    Certificate,
    SanitizationCategory,
    sign_certificate,
    verify_certificate,
)
from sundown.errors import (
    InputError,
    IntegrityError,
    KeyDestroyedError,
    NotFoundError,
    SundownError,
)
from sundown.ledger import Ledger, RecordKind
from sundown.spec.loader import load_spec
from tests.fixtures.fake_kms import FakeServer, gcp_key
from tests.flows.kms_systems import APPROVER, KmsSystem, build, download
from tests.retirement import retirement

CE = SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE


def retire(system: KmsSystem) -> Certificate:
    """The certificate issued; one that says failed is signed and ledgered, then the run fails."""
    plan = decommission_system(system.params(dry_run=True))
    result = retirement(system.params(approve_digest=plan.plan_digest, approver=APPROVER))
    assert result.certificate_url is not None
    data = Path(result.certificate_url.removeprefix("file://")).read_bytes()
    pem = registry.open_signer(f"local://{system.name}-certificates").public_key_pem()
    return verify_certificate(data, pem).certificate


def redeploy(system: KmsSystem) -> None:
    params = DeployParameters(
        spec_path=str(system.spec_path), model_dir=str(system.root / "model"), version="v2"
    )
    deploy_model(params)


def key_id(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def ledger_of(system: KmsSystem) -> Ledger:
    return Ledger.open((system.root / "evidence").as_uri())


def count(ledger: Ledger) -> int:
    return sum(1 for _ in ledger.records())


def appended_receipt(system: KmsSystem, before: int) -> tuple[str, dict[str, Any]]:
    """The one ledger record appended since ``before`` records: its subject and its receipt
    (whose digest the record must state)."""
    records = list(ledger_of(system).records())
    assert len(records) == before + 1
    evidence = records[-1].record.evidence
    assert evidence is not None
    body = Path(evidence.location.removeprefix("file://")).read_bytes()
    assert evidence.digest == "sha256:" + hashlib.sha256(body).hexdigest()
    return records[-1].record.subject, json.loads(body)


def verify_against_ledger(
    system: KmsSystem, capsys: pytest.CaptureFixture[str], cert: Certificate, ledger: bool = True
) -> tuple[int, str]:
    """``sundown certificate verify CERT --public-key PEM --ledger EVIDENCE``, as an auditor
    runs it (without ``--ledger`` when ``ledger`` is false): (exit code, what it printed)."""
    (path,) = (system.root / "evidence").rglob("certificate.dsse.json")
    pem = system.root / "certificates.pub.pem"
    pem.write_bytes(registry.open_signer(f"local://{system.name}-certificates").public_key_pem())
    capsys.readouterr()
    book = ["--ledger", (system.root / "evidence").as_uri()] if ledger else []
    code = main(["certificate", "verify", str(path), "--public-key", str(pem), *book])
    printed = capsys.readouterr()
    return code, printed.out + printed.err


def after_destroy(monkeypatch: pytest.MonkeyPatch, act: Callable[[str], None]) -> None:
    """Run ``act(uri)`` right after the retirement's destroy step (someone with KMS rights
    acting between destruction and verification)."""
    original = _steps.destroy_key

    def destroy_then_act(uri: str, *args: Any) -> Any:
        evidence = original(uri, *args)
        act(uri)
        return evidence

    monkeypatch.setattr(_steps, "destroy_key", destroy_then_act)


@pytest.fixture
def aws(tmp_path: Path, moto_env: str, prefect_api: str) -> Path:
    return tmp_path


def test_retirement_under_aws_kms_kek_claims_ce_with_the_kms_pending_date(
    aws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kms = boto3.client("kms")
    probe = build(aws / "probe")  # makes the key, so that a grant can be created on it
    grant = kms.create_grant(
        KeyId=key_id(probe.kek),
        GranteePrincipal="arn:aws:iam::123456789012:role/inference",
        Operations=["Decrypt"],
    )["GrantId"]
    system = build(
        aws / "sys", kek=probe.kek, keys={"pending_days": 10, "grants": [{"id": json.dumps(grant)}]}
    )
    kept = download(system, "model.safetensors", aws / "kept" / "model.safetensors")
    download(
        system, "model.safetensors.sidecar.json", aws / "kept" / "model.safetensors.sidecar.json"
    )

    cert = retire(system)

    described = kms.describe_key(KeyId=key_id(system.kek))["KeyMetadata"]
    assert described["KeyState"] == "PendingDeletion"
    deletion = described["DeletionDate"].astimezone(UTC)
    assert 9 <= (deletion - datetime.now(UTC)).days <= 10  # the spec's window, not the default
    (key,) = cert.keys_destroyed
    assert key.uri == system.kek and key.verified and key.pending_until == deletion
    assert key.checks[f"grant {grant}"] == "RevokeGrant; ListGrants no longer lists it"
    assert kms.list_grants(KeyId=key_id(system.kek))["Grants"] == []
    (loc,) = cert.locations
    (claim,) = [c for c in loc.sanitization if c.category is CE]
    assert claim.keys == [system.kek]
    # the two ciphertexts and their two sidecars (a sidecar's data key is unwrapped under the
    # key with its binding, as for every key service); the signature bundle is not under it
    enveloped = [p for p in loc.protection if p.protection.value == "envelope"]
    assert [(p.key, p.copies) for p in enveloped] == [(system.kek, 4)]
    assert claim.copies.versions == 4
    assert claim.irrecoverable_after.at == deletion
    assert cert.status.value == "complete with exceptions"
    pending = [e for e in cert.exceptions if e.kind == "key deletion pending"]
    assert {e.subject for e in pending} == {system.kek, system.weights}
    assert all(e.until == deletion for e in pending)
    assert all(e.description.startswith("complete; key deletion pending until") for e in pending)
    assert not [e for e in cert.exceptions if e.kind != "key deletion pending"]

    # The kept copy no longer decrypts through Sundown, although moto itself still decrypts
    # with a key pending deletion (docs/known-gaps.md).
    code = main(["decrypt", str(kept), str(aws / "plain.bin"), "--system", system.name,
                 "--artifact-path", "model.safetensors", "--artifact-version", "v1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "pending deletion until" in err and "Traceback" not in err
    assert not (aws / "plain.bin").exists()
    # ... and deploying under the key is refused by the flow, not only the connector.
    with pytest.raises(KeyDestroyedError, match="pending deletion"):
        redeploy(system)

    # Follow-up on moto: still pending -> nothing appended, checked again on the next run.
    before = count(ledger_of(system))
    spec = load_spec(system.spec_path)
    for _ in range(2):
        (f,) = follow_up(spec)
        assert f.outcome == "pending" and deletion.date().isoformat() in f.detail
    assert count(ledger_of(system)) == before
    # A planted "key deleted" receipt in the evidence location changes nothing.
    planted = system.root / "evidence" / "key-deletions" / system.name / "x" / "planted.json"
    planted.parent.mkdir(parents=True)
    planted.write_text(json.dumps({"event": "key deletion confirmed", "key_uri": system.kek}))
    assert [f.outcome for f in follow_up(spec)] == ["pending"]
    assert count(ledger_of(system)) == before

    code, said = verify_against_ledger(system, capsys, cert)
    assert code == 0 and said.startswith("OK ") and "NO LONGER HOLDS" not in said, said
    assert "pending when issued" not in said  # the ledger was checked
    code, said = verify_against_ledger(system, capsys, cert, ledger=False)
    assert code == 0 and "1 key deletion(s) pending when issued: the ledger (not checked" in said

    # Cancelling within the window: one ledgered command; the certificate no longer holds.
    code = main(["keys", "cancel-deletion", system.kek, "--spec", str(system.spec_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert kms.describe_key(KeyId=key_id(system.kek))["KeyMetadata"]["KeyState"] == "Enabled"
    records = list(ledger_of(system).records())
    assert len(records) == before + 1
    subject = records[-1].record.subject
    assert subject.startswith(f"key deletion cancelled: certificate {cert.certificate_id}")
    assert "NO LONGER HOLDS" in subject
    assert [f.outcome for f in follow_up(spec)] == ["cancelled"]
    assert count(ledger_of(system)) == before + 1
    # The auditor who verifies the certificate against the ledger learns it: no OK line.
    code, said = verify_against_ledger(system, capsys, cert)
    assert code == 3 and "OK " not in said, said
    assert f"ledger record {before} (key deletion cancelled, key {system.kek})" in said
    assert f"certificate {cert.certificate_id} is signed and recorded" in said
    assert "NO LONGER HOLDS" in said


def test_a_key_restored_outside_sundown_is_ledgered_once_as_no_longer_holding(
    aws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone with KMS rights cancels the deletion after the certificate (not through
    ``sundown keys cancel-deletion``): the follow-up must not stay silent. One signed record
    says the certificate no longer holds; later runs append nothing more."""
    system = build(aws)
    cert = retire(system)
    spec = load_spec(system.spec_path)
    before = count(ledger_of(system))
    boto3.client("kms").cancel_key_deletion(KeyId=key_id(system.kek))  # leaves it Disabled
    (f,) = follow_up(spec)
    assert f.outcome == "restored" and "NO LONGER HOLDS" in f.detail
    subject, receipt = appended_receipt(system, before)
    assert subject.startswith(
        f"key deletion reversed: certificate {cert.certificate_id}, key {system.kek}: "
    )
    assert receipt["certificate_holds"] is False and receipt["key_state"] == "Disabled"
    # Enabled as well, then the next run (the sweep's): recorded already, nothing appended.
    boto3.client("kms").enable_key(KeyId=key_id(system.kek))
    assert [f.outcome for f in follow_up(spec)] == ["restored"]
    assert count(ledger_of(system)) == before + 1
    code, said = verify_against_ledger(system, capsys, cert)
    assert code == 3 and f"record {before} (key deletion reversed" in said, said


def test_a_planted_ledger_record_stops_the_follow_up(aws: Path) -> None:
    system = build(aws)
    retire(system)
    ledger = ledger_of(system)
    last = max(ledger.records(), key=lambda s: s.record.sequence)
    forged = json.loads((system.root / "evidence" / last.key).read_text())
    forged_key = f"records/{last.record.sequence + 1:012d}.json"
    (system.root / "evidence" / forged_key).write_text(json.dumps(forged))
    with pytest.raises(IntegrityError):
        follow_up(load_spec(system.spec_path))
    assert count(ledger) == last.record.sequence + 2  # nothing appended after the planted one


def test_key_reenabled_between_destroy_and_verify_is_not_certified_as_erased(
    aws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = build(aws)
    kms = boto3.client("kms")

    def behind_sundowns_back(uri: str) -> None:
        kms.cancel_key_deletion(KeyId=key_id(uri))
        kms.enable_key(KeyId=key_id(uri))

    after_destroy(monkeypatch, behind_sundowns_back)
    cert = retire(system)
    (key,) = cert.keys_destroyed
    assert not key.verified and not key.ce_claimable
    assert "post-retirement check" in key.checks
    assert cert.status.value == "failed"
    assert all(c.category is not CE for loc in cert.locations for c in loc.sanitization)


def test_deletion_rescheduled_behind_sundowns_back_is_not_certified(
    aws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled and scheduled again (30 days): pending at verification, but with another date
    than the destroy step saw, so the key was usable in between."""
    system = build(aws)
    kms = boto3.client("kms")

    def reschedule(uri: str) -> None:
        kms.cancel_key_deletion(KeyId=key_id(uri))
        kms.schedule_key_deletion(KeyId=key_id(uri), PendingWindowInDays=30)

    after_destroy(monkeypatch, reschedule)
    cert = retire(system)
    (key,) = cert.keys_destroyed
    assert not key.verified
    assert "changed from" in key.checks["post-retirement check"]
    assert cert.status.value == "failed"
    assert all(c.category is not CE for loc in cert.locations for c in loc.sanitization)


@pytest.mark.parametrize("where", ["account", "region"])
def test_key_of_another_account_or_region_stops_planning(aws: Path, where: str) -> None:
    system = build(aws)
    arn = system.kek.removeprefix("aws-kms://").split(":")
    if where == "account":
        arn[4] = "111122223333"
    else:
        arn[3] = "eu-west-3"
    other = "aws-kms://" + ":".join(arn)
    system.spec_path.write_text(system.spec_path.read_text().replace(system.kek, other))
    with pytest.raises((InputError, NotFoundError), match=r"another account or region|does not"):
        decommission_system(system.params(dry_run=True))
    state = boto3.client("kms").describe_key(KeyId=key_id(system.kek))["KeyMetadata"]
    assert state["KeyState"] == "Enabled"


def test_a_named_grant_that_does_not_exist_stops_planning(aws: Path) -> None:
    system = build(aws)
    text = system.spec_path.read_text().replace(
        "  certificate:", "  grants: [{id: 0000deadbeef}]\n  certificate:"
    )
    system.spec_path.write_text(text)
    with pytest.raises(InputError, match=r"grant.*0000deadbeef.*do not exist"):
        decommission_system(system.params(dry_run=True))


def test_a_rotated_kek_covers_copies_wrapped_after_the_rotation(aws: Path) -> None:
    """KMS deletes every backing key: copies wrapped under Sundown's version 2 (after a
    rotation) are covered by the cryptographic erase too."""
    system = build(aws)
    assert registry.open_key_service(system.kek).rotate() == 2
    deploy_model(
        DeployParameters(
            spec_path=str(system.spec_path), model_dir=str(system.root / "model"),
            version="v2", overwrite=True,
        )
    )  # fmt: skip
    cert = retire(system)
    (key,) = cert.keys_destroyed
    assert key.versions_destroyed == [1, 2] and key.verified
    (claim,) = [c for c in cert.locations[0].sanitization if c.category is CE]
    assert claim.copies.versions == 4  # v2's ciphertexts and sidecars, wrapped under version 2


def test_deploy_refuses_a_disabled_kek(aws: Path) -> None:
    system = build(aws)
    boto3.client("kms").disable_key(KeyId=key_id(system.kek))
    with pytest.raises(KeyDestroyedError, match="disabled"):
        redeploy(system)


def test_archive_rewrap_under_a_pending_archive_key_is_refused_before_any_purge(
    aws: Path,
) -> None:
    """moto would still encrypt under a key pending deletion; the retirement's archive step
    refuses it, and nothing is purged or destroyed."""
    archive_key = registry.create_key(f"aws-kms://alias/archive-{uuid.uuid4().hex[:8]}").uri
    system = build(aws, archive_key=archive_key)
    boto3.client("kms").schedule_key_deletion(KeyId=key_id(archive_key), PendingWindowInDays=7)
    plan = decommission_system(system.params(dry_run=True))
    with pytest.raises(KeyDestroyedError, match="pending deletion until"):
        decommission_system(system.params(approve_digest=plan.plan_digest, approver=APPROVER))
    listed = boto3.client("s3").list_objects_v2(Bucket=system.bucket, Prefix="models/")
    assert listed["KeyCount"] == 5  # nothing purged
    kek = boto3.client("kms").describe_key(KeyId=key_id(system.kek))["KeyMetadata"]
    assert kek["KeyState"] == "Enabled"  # nor the KEK destroyed


@pytest.mark.parametrize("service", ["gcp-kms", "azure-kv"])
def test_follow_up_records_a_key_once_its_kms_reports_it_gone(
    tmp_path: Path,
    moto_env: str,
    prefect_api: str,
    service: str,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tag = uuid.uuid4().hex[:6]
    if service == "gcp-kms":
        server: FakeServer = request.getfixturevalue("gcp_kms_env")
        uri = f"gcp-kms://projects/sundown-test/locations/global/keyRings/ring-{tag}/cryptoKeys/kek"
        gone_state = "DESTROYED"
    else:
        server = request.getfixturevalue("azure_kv_env")
        uri = f"azure-kv://sundown-test.vault.azure.net/keys/kek-{tag}"
        gone_state = "purged"
    registry.create_key(uri)
    system = build(tmp_path, kek=uri)
    cert = retire(system)
    (key,) = cert.keys_destroyed
    assert key.verified and key.pending_until is not None
    (claim,) = [c for c in cert.locations[0].sanitization if c.category is CE]
    assert claim.irrecoverable_after.at == key.pending_until
    spec = load_spec(system.spec_path)
    before = count(ledger_of(system))
    assert [f.outcome for f in follow_up(spec)] == ["pending"]
    assert count(ledger_of(system)) == before
    # The window ends: Cloud KMS destroys every version, Key Vault purges the deleted key (the
    # fakes are told to, as they cannot wait 30 or 90 days).
    if service == "gcp-kms":
        for version in gcp_key(server, uri).versions.values():
            version.state = "DESTROYED"
    else:
        del server.state.keys[uri.rsplit("/", 1)[1]]
    # The daily retention sweep runs the follow-up (nothing of its own to archive or purge).
    swept = retention_sweep(RetentionParameters(spec_path=str(system.spec_path)))
    assert swept.purged == 0 and swept.archived == 0
    subject, receipt = appended_receipt(system, before)
    assert subject.startswith(
        f"key deletion confirmed: certificate {cert.certificate_id}, key {uri}: "
    )
    assert receipt["key_state"] == gone_state and receipt["certificate_holds"] is True
    assert receipt["certificate_id"] == cert.certificate_id
    assert [f.outcome for f in follow_up(spec)] == ["recorded"]  # idempotent
    retention_sweep(RetentionParameters(spec_path=str(system.spec_path)))
    assert count(ledger_of(system)) == before + 1
    # verified against the ledger: OK, and the confirmation named with its record
    code, said = verify_against_ledger(system, capsys, cert)
    assert code == 0 and f"key deletion confirmed for {uri} (ledger record {before})" in said


def test_deletion_rescheduled_after_the_certificate_is_ledgered_once_as_no_longer_holding(
    aws: Path,
) -> None:
    """Between two follow-ups someone cancels the deletion, uses the key, and schedules it again
    (30 days): the key looks pending, but until another date than the certificate states. The
    follow-up must neither say "pending" nor later "confirmed": one signed record says the
    certificate no longer holds; later runs append nothing."""
    system = build(aws)
    cert = retire(system)
    (key,) = cert.keys_destroyed
    assert key.pending_until is not None
    spec = load_spec(system.spec_path)
    before = count(ledger_of(system))
    kms = boto3.client("kms")
    kms.cancel_key_deletion(KeyId=key_id(system.kek))
    kms.enable_key(KeyId=key_id(system.kek))
    registry.open_key_service(system.kek).bound_to(b"meanwhile").new_data_key()  # used
    kms.schedule_key_deletion(KeyId=key_id(system.kek), PendingWindowInDays=30)
    (f,) = follow_up(spec)
    assert f.outcome == "restored" and "NO LONGER HOLDS" in f.detail, f
    assert "scheduled again" in f.detail and key.pending_until.isoformat() in f.detail
    subject, receipt = appended_receipt(system, before)
    assert subject.startswith(
        f"key deletion reversed: certificate {cert.certificate_id}, key {system.kek}: "
    )
    assert receipt["certificate_holds"] is False and receipt["key_state"] == "PendingDeletion"
    assert [f.outcome for f in follow_up(spec)] == ["restored"]
    assert count(ledger_of(system)) == before + 1


def test_a_cloud_kms_key_restored_and_destroyed_again_is_ledgered_as_no_longer_holding(
    tmp_path: Path, moto_env: str, prefect_api: str, gcp_kms_env: FakeServer
) -> None:
    """Cloud KMS: every version restored and enabled (usable), then destroyed again. The new
    destroyTime is later than the certificate's; the fake is told the second destroy came a day
    after the first (it cannot wait a day, and a destroy within the same second would give the
    same date)."""
    uri = (
        "gcp-kms://projects/sundown-test/locations/global/keyRings/"
        f"ring-{uuid.uuid4().hex[:6]}/cryptoKeys/kek"
    )
    registry.create_key(uri)
    system = build(tmp_path, kek=uri)
    cert = retire(system)
    spec = load_spec(system.spec_path)
    assert [f.outcome for f in follow_up(spec)] == ["pending"]
    before = count(ledger_of(system))
    gcp_kms.key_for_destruction(uri).cancel_deletion()  # RestoreCryptoKeyVersion, then ENABLED
    gcp_key(gcp_kms_env, uri).destroy_seconds += 86400
    assert gcp_kms.key_for_destruction(uri).destroy().verified
    (f,) = follow_up(spec)
    assert f.outcome == "restored" and "scheduled again" in f.detail, f
    records = list(ledger_of(system).records())
    assert len(records) == before + 1
    assert records[-1].record.subject.startswith(
        f"key deletion reversed: certificate {cert.certificate_id}, key {uri}: "
    )
    assert [f.outcome for f in follow_up(spec)] == ["restored"]
    assert count(ledger_of(system)) == before + 1


def ledger_a_certificate_naming(system: KmsSystem, cert: Certificate, gone: str) -> str:
    """A second certificate of the system naming two keys, ``gone`` first: a retirement whose
    key AWS has since deleted (moto never ends a window, so ``gone`` is an ARN moto never had).
    Signed with the system's certificate key and ledgered as the retirement flow does; returns
    its id."""
    data = cert.model_dump(mode="json")
    (real,) = data["keys_destroyed"]
    data["certificate_id"] = str(uuid.uuid4())
    data["keys_destroyed"] = [dict(real, uri=gone), real]
    data["exceptions"] += [
        dict(e, subject=gone) for e in data["exceptions"] if e["subject"] == system.kek
    ]
    signer = registry.open_signer(f"local://{system.name}-certificates")
    signed = sign_certificate(Certificate.model_validate(data), signer)
    path = system.root / "evidence" / "second-retirement" / "certificate.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(signed.data)
    ledger_append(
        load_spec(system.spec_path),
        RecordKind.DECOMMISSION,
        f"decommissioned {system.name}: {cert.status.value} (certificate "
        f"{data['certificate_id']}, plan {cert.plan_digest})",
        signed.digest,
        path.as_uri(),
    )
    return str(data["certificate_id"])


def followed_with(
    system: KmsSystem, cert: Certificate, other: str, outcome: str
) -> tuple[str, int]:
    """Ledger a second certificate naming ``other`` then the KEK, and run the follow-up: the
    first certificate's KEK and the second's are pending, ``other`` has ``outcome``. Returns
    (the second certificate's id, the ledger's record count before the follow-up)."""
    second = ledger_a_certificate_naming(system, cert, other)
    before = count(ledger_of(system))
    outcomes = [
        (f.certificate_id, f.key_uri, f.outcome) for f in follow_up(load_spec(system.spec_path))
    ]
    assert outcomes == [
        (cert.certificate_id, system.kek, "pending"),
        (second, other, outcome),
        (second, system.kek, "pending"),
    ]
    return second, before


def test_a_key_aws_deleted_is_confirmed_and_the_other_keys_still_followed(aws: Path) -> None:
    """AWS deletes a key at the end of its window; DescribeKey then answers NotFound. The
    follow-up confirms that key and goes on with the others (it used to stop every follow-up
    of the system, and so the daily retention sweep); a retirement re-run's destroy step
    proves it gone."""
    system = build(aws)
    cert = retire(system)
    account = boto3.client("sts").get_caller_identity()["Account"]
    gone = f"aws-kms://arn:aws:kms:us-east-1:{account}:key/{uuid.uuid4()}"
    second, before = followed_with(system, cert, gone, "deleted")
    records = list(ledger_of(system).records())
    assert len(records) == before + 1
    assert records[-1].record.subject.startswith(
        f"key deletion confirmed: certificate {second}, key {gone}: "
    )
    swept = retention_sweep(RetentionParameters(spec_path=str(system.spec_path)))
    assert swept.purged == 0 and count(ledger_of(system)) == before + 1
    destroyed = _steps.destroy_key.fn(gone, [1], 7, ["0000deadbeef"])
    assert destroyed.verified and destroyed.pending_until is None
    assert destroyed.method.startswith("not found by this run")


def test_a_key_the_kms_will_not_describe_is_unchecked_and_the_other_keys_still_followed(
    aws: Path,
) -> None:
    """KMS refuses DescribeKey on one key (its key policy denies it: moto enforces a Deny on
    kms:DescribeKey). The follow-up reports that key unchecked and records nothing for it, asks
    the other keys as usual (it used to stop at the refusal, and with it the whole daily
    retention sweep); the sweep goes on and names the key in its result; the follow-up flow
    fails after doing the rest, so its schedule shows it."""
    system = build(aws)
    cert = retire(system)
    kms = boto3.client("kms")
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "kms:DescribeKey", "Resource": "*"}
        ],
    }
    denied = "aws-kms://" + kms.create_key(Policy=json.dumps(deny))["KeyMetadata"]["Arn"]
    second, before = followed_with(system, cert, denied, "unchecked")
    assert count(ledger_of(system)) == before  # nothing recorded for a key not answered for
    with pytest.raises(Incomplete, match="1 key\\(s\\) could not be checked") as swept:
        retention_sweep(RetentionParameters(spec_path=str(system.spec_path)))
    (line,) = swept.value.result.keys_unchecked  # the sweep went on: its result is whole
    assert line.startswith(f"{denied} ({second}): unchecked: ") and "denied" in line.lower()
    assert line in str(swept.value) and system.kek not in str(swept.value)
    with pytest.raises(SundownError, match="1 key\\(s\\) could not be checked") as failed:
        key_deletion_follow_up(FollowUpParameters(spec_path=str(system.spec_path)))
    assert denied in str(failed.value) and system.kek not in str(failed.value)
    assert count(ledger_of(system)) == before


def test_a_multi_region_kek_stops_planning(aws: Path) -> None:
    """A multi-region key's replicas hold its material: destroying it would erase nothing.
    Planning stops naming the replica; no key is disabled."""
    system = build(aws)
    client = boto3.client("kms")
    meta = client.create_key(MultiRegion=True)["KeyMetadata"]
    replica = client.replicate_key(KeyId=meta["KeyId"], ReplicaRegion="eu-west-1")
    mrk = "aws-kms://" + meta["Arn"]
    system.spec_path.write_text(system.spec_path.read_text().replace(system.kek, mrk))
    with pytest.raises(InputError, match="multi-region") as stopped:
        decommission_system(system.params(dry_run=True))
    assert replica["ReplicaKeyMetadata"]["Arn"] in str(stopped.value)
    assert client.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


CERTIFIED = datetime(2026, 3, 8, 12, tzinfo=UTC)


def pending_answer(
    until: datetime | None, *, verified: bool = True, overdue: bool = False, state: str = ""
) -> KmsKeyDestruction:
    evidence = KmsKeyDestruction.now(
        "aws-kms://arn:aws:kms:us-east-1:123456789012:key/k",
        versions=(1,),
        method="AWS KMS DisableKey, then ScheduleKeyDeletion",
        pending=until,
        pending_what="deletion",
        checks={},
        verified=verified,
        limits="",
        key_state=state or ("PendingDeletion" if until else "gone"),
    )
    return dataclasses.replace(evidence, overdue=overdue)


@pytest.mark.parametrize(
    ("answer", "verdict", "says"),
    [
        (pending_answer(CERTIFIED), "pending", "pending until"),
        (pending_answer(CERTIFIED + timedelta(seconds=1)), "pending", "pending until"),
        (pending_answer(None), "gone", "gone"),
        (pending_answer(CERTIFIED + timedelta(days=23)), "reversed", "scheduled again"),
        (pending_answer(CERTIFIED - timedelta(days=1)), "reversed", "scheduled again"),
        (pending_answer(None, verified=False, state="Enabled"), "reversed", "Enabled"),
        # The certificate's date passed; KMS still lists the key pending (it deletes after the
        # date): nothing reversed, nothing confirmed.
        (pending_answer(CERTIFIED, verified=False, overdue=True), "pending", "has passed"),
        (
            pending_answer(CERTIFIED + timedelta(days=9), verified=False, overdue=True),
            "reversed",
            "scheduled again",
        ),
    ],
)
def test_the_follow_up_verdict_compares_the_date_with_the_certificates(
    answer: KmsKeyDestruction, verdict: str, says: str
) -> None:
    got, why = follow_up_verdict(CERTIFIED, answer)
    assert got == verdict and says in why
