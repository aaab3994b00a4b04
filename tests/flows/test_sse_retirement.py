"""A system whose stores encrypt server-side under its storage key (``keys.storage_cmk``, an AWS
KMS key) retires on moto: the certificate claims cryptographic erase for the copies S3 reports
under exactly that key (bucket default encryption, and the weights ``deploy_model`` wrote under
it as well as the envelope), and logical deletion for the copies under anything else. A copy
written after planning changes the plan digest, so the approval of the earlier plan no longer
holds. Real servers: moto (S3 and KMS), the Prefect test server.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from flows.decommission import decommission_system
from flows.deploy import deploy_model
from flows.models import DecommissionParameters, DeployParameters, Party
from sundown import registry
from sundown.certificate import Protection, SanitizationCategory, verify_certificate
from sundown.errors import InputError
from sundown.plan import read_plan
from tests.spec_builder import spec_yaml

CE = SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE
LOGICAL = SanitizationCategory.LOGICAL_DELETION
APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")


def _bucket(s3: Any, default_key: str | None = None) -> str:
    name = f"sse-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if default_key:
        rule = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": default_key}
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": rule}]
            },
        )
    return name


@pytest.mark.parametrize("kek_service", ["local", "aws-kms"])
def test_a_system_under_its_storage_key_retires_with_erase_claimed_for_those_copies(
    tmp_path: Path, prefect_api: str, moto_env: str, kek_service: str
) -> None:
    """With ``aws-kms`` this is issue #13's done-when: weights envelope-encrypted under an AWS
    KMS KEK, a logs bucket under SSE-KMS with the system's storage key; both keys scheduled for
    deletion, erase claimed for both, each with the pending date KMS gave."""
    name = f"s-{uuid.uuid4().hex[:8]}"
    for key in ("signing", "certificates"):
        registry.create_key(f"local://{name}-{key}", signing=True)
    kms = boto3.client("kms")
    if kek_service == "aws-kms":
        kek = f"aws-kms://{kms.create_key()['KeyMetadata']['Arn']}"
    else:
        kek = f"local://{name}-kek"
        registry.create_key(kek, signing=False)
    storage = kms.create_key()["KeyMetadata"]
    alias = f"alias/{name}-storage"
    kms.create_alias(AliasName=alias, TargetKeyId=storage["KeyId"])
    arn = storage["Arn"]
    s3 = boto3.client("s3")
    models, logs = _bucket(s3), _bucket(s3, default_key=arn)
    spec = spec_yaml(
        name,
        assets={
            "weights": {"locations": [f"s3://{models}/models/{name}"]},
            "logs": {"locations": [f"s3://{logs}/logs/{name}"]},
        },
        keys={
            "kek": kek,
            "storage_cmk": f"aws-kms://{arn}",
            "model_signing": f"local://{name}-signing",
            "certificate": f"local://{name}-certificates",
        },
        evidence=(tmp_path / "evidence").as_uri(),
    )
    spec_path = tmp_path / f"{name}.yaml"
    spec_path.write_text(spec)

    # deploy: envelope under the KEK *and* SSE-KMS under the storage key
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(5000))
    deploy_model(DeployParameters(spec_path=str(spec_path), model_dir=str(model), version="v1"))
    deployed = s3.list_objects_v2(Bucket=models, Prefix=f"models/{name}/")["Contents"]
    assert len(deployed) == 3  # ciphertext, sidecar, model.sig
    for obj in deployed:
        head = s3.head_object(Bucket=models, Key=obj["Key"])
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", arn)

    # logs: two versions under the bucket default (the storage key), and copies that only
    # look covered: the key's alias, SSE-S3
    prefix = f"logs/{name}"
    s3.put_object(Bucket=logs, Key=f"{prefix}/app.log", Body=b"user=alice v1")
    s3.put_object(Bucket=logs, Key=f"{prefix}/app.log", Body=b"user=alice v2")
    s3.put_object(
        Bucket=logs, Key=f"{prefix}/alias.log", Body=b"x",
        ServerSideEncryption="aws:kms", SSEKMSKeyId=alias,
    )  # fmt: skip
    s3.put_object(Bucket=logs, Key=f"{prefix}/s3.log", Body=b"y", ServerSideEncryption="AES256")

    params: dict[str, Any] = {"spec_path": str(spec_path)}
    plan = decommission_system(DecommissionParameters(**params, dry_run=True))
    planned = read_plan(plan.plan_path, plan.plan_digest)
    md = planned.to_markdown()
    assert f"| `s3://{logs}/{prefix}` | 2 of 4 copies crypto-shreddable, 2 only logically" in md
    assert f"| `s3://{models}/models/{name}` | 3 of 3 copies crypto-shreddable, 0 only" in md
    assert [(k.uri, k.role) for k in planned.keys][1] == (f"aws-kms://{arn}", "storage_cmk")

    # a copy written after planning, under the very key: the approved digest no longer matches
    s3.put_object(Bucket=logs, Key=f"{prefix}/late.log", Body=b"late")
    with pytest.raises(InputError, match="plan changed since it was reviewed"):
        decommission_system(
            DecommissionParameters(**params, approve_digest=plan.plan_digest, approver=APPROVER)
        )
    assert s3.head_object(Bucket=logs, Key=f"{prefix}/app.log")  # nothing was deleted
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Enabled"

    plan = decommission_system(DecommissionParameters(**params, dry_run=True))
    result = decommission_system(
        DecommissionParameters(**params, approve_digest=plan.plan_digest, approver=APPROVER)
    )
    # The storage key is scheduled for deletion, not gone: the only exceptions say so, with the
    # date KMS gave (docs/formats/certificate.md "key deletion pending").
    assert result.status == "complete with exceptions", result.exceptions
    pub = registry.open_signer(f"local://{name}-certificates").public_key_pem()
    cert_path = Path(str(result.certificate_url).removeprefix("file://"))
    cert = verify_certificate(cert_path.read_bytes(), pub).certificate
    assert {e.kind for e in cert.exceptions} == {"key deletion pending"}

    destroyed = {k.uri: k for k in cert.keys_destroyed}
    storage_key = destroyed[f"aws-kms://{arn}"]
    assert storage_key.verified and "pending until" in storage_key.method
    described = kms.describe_key(KeyId=arn)["KeyMetadata"]
    assert described["KeyState"] == "PendingDeletion"
    assert storage_key.pending_until == described["DeletionDate"]
    kek_key = destroyed[kek]
    assert kek_key.verified
    if kek_service == "aws-kms":
        kek_arn = kek.removeprefix("aws-kms://")
        kek_state = kms.describe_key(KeyId=kek_arn)["KeyMetadata"]
        assert kek_state["KeyState"] == "PendingDeletion"
        assert kek_key.pending_until == kek_state["DeletionDate"]
        pending = {e.subject for e in cert.exceptions}
        assert {kek, f"aws-kms://{arn}"} <= pending
    by = {loc.uri: loc for loc in cert.locations}

    w = by[f"s3://{models}/models/{name}"]
    assert [c.category for c in w.sanitization] == [CE]
    assert w.ce_covered.versions == 3 and w.logically_deleted.versions == 0
    # the ciphertext and sidecar by their envelope, the signature bundle by the storage key
    assert {(p.protection, p.copies) for p in w.protection} == {
        (Protection.ENVELOPE, 2),
        (Protection.SSE_KMS, 1),
    }

    lg = by[f"s3://{logs}/{prefix}"]
    assert [c.category for c in lg.sanitization] == [CE, LOGICAL]
    assert lg.ce_covered.versions == 3  # app.log's two versions and late.log
    assert lg.sanitization[0].keys == [f"aws-kms://{arn}"]
    assert "storage key's ARN" in lg.sanitization[0].method
    # erase for SSE copies is irrecoverable only once KMS ends the pending window
    assert lg.sanitization[0].irrecoverable_after.at == described["DeletionDate"]
    assert lg.logically_deleted.versions == 2  # the alias and the SSE-S3 copies
    assert {(p.protection, p.copies) for p in lg.protection} == {
        (Protection.SSE_KMS, 3),
        (Protection.SSE_TENANT_KEY, 1),
        (Protection.PROVIDER_MANAGED, 1),
    }
    assert not s3.list_object_versions(Bucket=logs, Prefix=prefix + "/").get("Versions")
