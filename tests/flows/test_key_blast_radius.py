"""Destroying a system's KMS key makes unreadable whatever else is encrypted under it. These tests
try to make a retirement destroy a key that is also the default encryption of a bucket outside
the system (another team's bucket, named by alias, ARN or key id; the evidence or archive
location; another prefix of the system's own bucket), at planning and after approval, and check
that what could not be checked (ListBuckets denied) is said in the plan and the certificate.
Real servers: moto (S3 and KMS), the Prefect test server; a loopback proxy answers ListBuckets
with S3's AccessDenied where a test needs it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from connectors import gcs
from flows import decommission
from flows._key_use import CHECK
from flows.decommission import decommission_system
from flows.models import DecommissionParameters
from sundown import registry
from sundown.certificate import verify_certificate
from sundown.errors import ScopeError
from sundown.plan import read_plan
from tests.fixtures.gcs import GCS_PROJECT
from tests.flows.kms_systems import APPROVER, KmsSystem, build
from tests.reliability.faultproxy import Answer, FaultProxy, Request
from tests.spec_builder import spec_yaml

DENIED = Answer(
    403,
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>fault</RequestId></Error>",
    {"Content-Type": "application/xml"},
)


@pytest.fixture
def aws(tmp_path: Path, moto_env: str, prefect_api: str) -> Path:
    return tmp_path


def _storage_key(name: str) -> dict[str, str]:
    kms = boto3.client("kms")
    meta = kms.create_key()["KeyMetadata"]
    alias = f"alias/{name}-storage"
    kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    region, account = meta["Arn"].split(":")[3:5]
    return {
        "arn": meta["Arn"],
        "key-id": meta["KeyId"],
        "alias": alias,
        "alias-arn": f"arn:aws:kms:{region}:{account}:{alias}",
    }


def _bucket(default_key: str | None = None, name: str | None = None) -> str:
    s3 = boto3.client("s3")
    name = name or f"kbr-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    if default_key is not None:
        _set_default(name, default_key)
    return name


def _set_default(bucket: str, key: str) -> None:
    rule = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    boto3.client("s3").put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]},
    )


def _state(arn: str) -> str:
    return str(boto3.client("kms").describe_key(KeyId=arn)["KeyMetadata"]["KeyState"])


def _system(root: Path, under_kek: bool = False) -> tuple[KmsSystem, dict[str, str]]:
    """A deployed system with a storage key and an AWS KMS KEK (the spec names both by ARN, as
    it must); the names of the storage key, or with ``under_kek`` those of the KEK."""
    name = f"kbr{uuid.uuid4().hex[:6]}"
    key = _storage_key(name)
    keys = {"storage_cmk": f"aws-kms://{key['arn']}"}
    if not under_kek:
        return build(root, keys=keys), key
    kek = _storage_key(name + "k")
    return build(root, kek=f"aws-kms://{kek['arn']}", keys=keys), kek


def _arn(uri: str) -> str:
    return str(
        boto3.client("kms").describe_key(KeyId=uri.removeprefix("aws-kms://"))["KeyMetadata"]["Arn"]
    )


def _weights_left(system: KmsSystem) -> int:
    listed = boto3.client("s3").list_objects_v2(Bucket=system.bucket)
    return int(listed["KeyCount"])


@pytest.mark.parametrize(
    ("under_kek", "default_form"),
    [(False, "alias"), (False, "key-id"), (False, "alias-arn"), (False, "arn"), (True, "alias")],
)
def test_a_foreign_bucket_defaulting_to_a_destroyed_key_stops_planning(
    aws: Path, under_kek: bool, default_form: str
) -> None:
    """Another team's bucket defaults to the storage key (or to the KEK), named in a form other
    than the spec's ARN: the reference is resolved through KMS, so the key is recognised and
    planning refuses."""
    system, key = _system(aws, under_kek)
    foreign = _bucket(key[default_form])
    boto3.client("s3").put_object(Bucket=foreign, Key="their/data.parquet", Body=b"PAR1 theirs")
    before = _weights_left(system)

    with pytest.raises(ScopeError, match=f"s3://{foreign} defaults to aws-kms://") as caught:
        decommission_system(system.params(dry_run=True))
    assert "holds no location of this system" in str(caught.value)
    assert "Nothing was deleted or destroyed" in str(caught.value)
    assert _state(key["arn"]) == "Enabled"
    assert _state(_arn(system.kek)) == "Enabled"
    assert _weights_left(system) == before

    # the same bucket under another key (a lookalike alias of another key) is no reason to stop
    other = boto3.client("kms").create_key()["KeyMetadata"]
    boto3.client("kms").create_alias(AliasName=f"{key['alias']}-x", TargetKeyId=other["KeyId"])
    _set_default(foreign, f"{key['alias']}-x")
    plan = decommission_system(system.params(dry_run=True))
    md = read_plan(plan.plan_path, plan.plan_digest).to_markdown()
    assert "no bucket defaults to the key" in md
    assert "every bucket of the account (ListBuckets)" in md


@pytest.mark.parametrize("role", ["evidence", "archive"])
def test_the_evidence_or_archive_location_under_a_destroyed_key_stops_planning(
    aws: Path, role: str
) -> None:
    """The evidence bucket defaults to the KEK, or the archive bucket to the storage key: what
    must outlive the retirement would die with the key."""
    name = f"kbr{uuid.uuid4().hex[:6]}"
    kek = registry.create_key(f"aws-kms://alias/{name}-kek").uri
    storage = _storage_key(name)
    for k in ("certificates", "archive"):
        registry.create_key(f"local://{name}-{k}", signing=k == "certificates")
    data = _bucket()
    boto3.client("s3").put_object(Bucket=data, Key=f"logs/{name}/a.log", Body=b"line")
    held = _bucket(kek.removeprefix("aws-kms://") if role == "evidence" else storage["alias"])
    spec = spec_yaml(
        name,
        assets={"logs": {"locations": [f"s3://{data}/logs/{name}"], "on_retirement": "archive"}},
        archive={
            "target": f"s3://{held if role == 'archive' else data}/archive/{name}",
            "key": f"local://{name}-archive",
        },
        keys={
            "kek": kek,
            "storage_cmk": f"aws-kms://{storage['arn']}",
            "certificate": f"local://{name}-certificates",
        },
        evidence=f"s3://{held}/evidence" if role == "evidence" else (aws / "ev").as_uri(),
    )
    spec_path = aws / f"{name}.yaml"
    spec_path.write_text(spec)
    params = DecommissionParameters(spec_path=str(spec_path), dry_run=True)
    with pytest.raises(ScopeError, match=f"s3://{held} defaults to .*holds the {role} location"):
        decommission_system(params)
    assert _state(kek.removeprefix("aws-kms://")) == "Enabled"
    assert _state(storage["arn"]) == "Enabled"


def test_the_systems_own_bucket_with_other_data_under_the_key_stops_planning(aws: Path) -> None:
    """The system's bucket defaults to the storage key, and holds another prefix too: copies
    there were written under the key, outside the spec."""
    system, key = _system(aws)
    _set_default(system.bucket, key["arn"])
    boto3.client("s3").put_object(Bucket=system.bucket, Key="models/other-team/w.bin", Body=b"x")
    with pytest.raises(ScopeError, match=f"also s3://{system.bucket}/models/other-team/w.bin"):
        decommission_system(system.params(dry_run=True))
    boto3.client("s3").delete_object(Bucket=system.bucket, Key="models/other-team/w.bin")
    # a version of it remains (the bucket is not versioned here: none), and a path-boundary
    # neighbour (models/<name>x) is outside the spec's location too
    boto3.client("s3").put_object(Bucket=system.bucket, Key=f"models/{system.name}x/w", Body=b"y")
    with pytest.raises(ScopeError, match=f"models/{system.name}x/w outside"):
        decommission_system(system.params(dry_run=True))
    boto3.client("s3").delete_object(Bucket=system.bucket, Key=f"models/{system.name}x/w")
    plan = decommission_system(system.params(dry_run=True))
    md = read_plan(plan.plan_path, plan.plan_digest).to_markdown()
    assert f"the key is the default of s3://{system.bucket} (this system's locations" in md


def test_a_default_changed_after_approval_stops_before_any_key_is_destroyed(
    aws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planned and approved clean; while the purge runs, someone points a foreign bucket's
    default at the storage key. The re-check before the destroy step stops the run with both
    keys intact and no certificate; once the default is changed back, a re-run resumes and
    records the check in the key's evidence."""
    system, key = _system(aws)
    foreign = _bucket()
    plan = decommission_system(system.params(dry_run=True))
    original = decommission._purge

    def purge_then_change(*args: Any) -> Any:
        journal = original(*args)
        _set_default(foreign, key["key-id"])
        return journal

    monkeypatch.setattr(decommission, "_purge", purge_then_change)
    approved = system.params(approve_digest=plan.plan_digest, approver=APPROVER)
    with pytest.raises(ScopeError, match=f"s3://{foreign} defaults to aws-kms://{key['arn']}"):
        decommission_system(approved)
    assert _state(key["arn"]) == "Enabled"
    assert _state(_arn(system.kek)) == "Enabled"
    assert not list((system.root / "evidence").rglob("certificate.dsse.json"))

    monkeypatch.setattr(decommission, "_purge", original)
    boto3.client("s3").delete_bucket_encryption(Bucket=foreign)
    result = decommission_system(approved)
    assert result.resumed and result.certificate_url is not None
    assert _state(key["arn"]) == "PendingDeletion"
    pem = registry.open_signer(f"local://{system.name}-certificates").public_key_pem()
    data = Path(result.certificate_url.removeprefix("file://")).read_bytes()
    cert = verify_certificate(data, pem).certificate
    checks = {k.uri: k.checks for k in cert.keys_destroyed}
    storage = f"aws-kms://{key['arn']}"
    assert "no bucket defaults to the key" in checks[storage][CHECK]
    assert "NOT CHECKED" not in checks[storage][CHECK]
    assert not [e for e in cert.exceptions if e.kind == "key use not fully checked"]


def test_list_buckets_denied_is_said_in_the_plan_and_the_certificate(
    aws: Path, moto_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials without ListBuckets (nor GetBucketEncryption on the system's bucket): only
    the spec's own buckets are checked, and the plan and the certificate say what was not,
    instead of staying silent."""
    system, key = _system(aws)

    def list_buckets(request: Request) -> Answer | None:
        path = request.path.split("?", 1)[0]
        if request.method != "GET":
            return None
        if path == "/":  # ListBuckets
            return DENIED
        if path == f"/{system.bucket}" and request.query.startswith("encryption"):
            return DENIED  # GetBucketEncryption of the system's own bucket
        return None

    with FaultProxy(moto_env, "s3", rate=0.0, name="no ListBuckets") as proxy:
        proxy.rules.append(list_buckets)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        plan = decommission_system(system.params(dry_run=True))
        md = read_plan(plan.plan_path, plan.plan_digest).to_markdown()
        assert "the spec's own buckets (locations, archive, evidence) only" in md
        assert "NOT CHECKED: ListBuckets refused (AccessDenied" in md
        assert f"s3://{system.bucket}: default encryption not checked (AccessDenied" in md
        result = decommission_system(
            system.params(approve_digest=plan.plan_digest, approver=APPROVER)
        )
        assert proxy.injected["rule"] >= 3  # planning, the plan re-made, the re-check
    assert result.certificate_url is not None
    pem = registry.open_signer(f"local://{system.name}-certificates").public_key_pem()
    data = Path(result.certificate_url.removeprefix("file://")).read_bytes()
    cert = verify_certificate(data, pem).certificate
    unchecked = {e.subject: e for e in cert.exceptions if e.kind == "key use not fully checked"}
    assert set(unchecked) == {system.kek, f"aws-kms://{key['arn']}"}
    assert "ListBuckets refused" in unchecked[system.kek].description
    assert (
        f"s3://{system.bucket}: default encryption not checked" in unchecked[system.kek].description
    )
    assert cert.status.value == "complete with exceptions"


def test_a_gcs_bucket_defaulting_to_the_cloud_kms_kek_stops_planning(
    tmp_path: Path,
    gcs_emulator_env: str,
    gcp_kms_env: Any,
    prefect_api: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same on GCS (gcp-storage-emulator keeps a bucket's ``defaultKmsKeyName``): another
    bucket of the project defaults to the system's Cloud KMS KEK, named with a key version."""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", GCS_PROJECT)
    name = f"kbr{uuid.uuid4().hex[:6]}"
    kek = f"gcp-kms://projects/sundown-test/locations/global/keyRings/r-{name}/cryptoKeys/kek"
    registry.create_key(kek)
    registry.create_key(f"local://{name}-certificates", signing=True)
    client = gcs.new_client()
    data, foreign = (client.create_bucket(f"kbr-{uuid.uuid4().hex[:12]}") for _ in range(2))
    data.blob(f"logs/{name}/a.log").upload_from_string(b"line")
    foreign.default_kms_key_name = kek.removeprefix("gcp-kms://") + "/cryptoKeyVersions/1"
    foreign.patch()
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(
        spec_yaml(
            name,
            assets={"logs": {"locations": [f"gs://{data.name}/logs/{name}"]}},
            keys={"kek": kek, "certificate": f"local://{name}-certificates"},
            evidence=(tmp_path / "ev").as_uri(),
        )
    )
    params = DecommissionParameters(spec_path=str(spec), dry_run=True)
    with pytest.raises(ScopeError, match=f"gs://{foreign.name} defaults to {kek} \\(as "):
        decommission_system(params)
    assert data.blob(f"logs/{name}/a.log").exists()

    foreign.default_kms_key_name = None
    foreign.patch()
    plan = decommission_system(params)
    md = read_plan(plan.plan_path, plan.plan_digest).to_markdown()
    assert "GCS default encryption read for" in md
    assert "every bucket of the project (buckets.list)" in md
    assert "no bucket defaults to the key" in md and "NOT CHECKED" not in md
