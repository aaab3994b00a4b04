"""Issue #15, end to end: a "support-bot" system with weights in S3 (moto), an MLflow registered
model with two versions whose runs and logged models keep their artifacts in the spec's S3
location (``mlflow server``, session fixture), a SageMaker endpoint serving it (with data capture
into the spec's bucket) and its CloudWatch log group retires under one certificate; a second
system's canaries (``...-v2`` model, endpoint and log group, its MLflow experiment's artifacts)
stay intact. The linked locations the records name are findings of the plan and certificate."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from flows.decommission import decommission_system
from flows.models import DecommissionParameters, Party
from sundown import registry
from sundown.certificate import verify_certificate
from tests.conformance_records.backend_aws import make_endpoint, make_model, put_events
from tests.fixtures.mlflow import MlflowServer
from tests.spec_builder import spec_yaml
from tests.test_mlflow_specific import _version

APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    got = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return sorted(v["Key"] for v in got.get("Versions", []))


def _exists(call: Any, **kw: Any) -> bool:
    try:
        call(**kw)
    except ClientError:
        return False
    return True


def test_ml_system_retires_under_one_certificate_and_v2_is_intact(
    tmp_path: Path, prefect_api: str, moto_env: str, mlflow_env: MlflowServer
) -> None:
    tag = uuid.uuid4().hex[:8]
    name, other = f"support-bot-{tag}", f"support-bot-{tag}-v2"
    bucket = f"sb-{tag}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key=f"models/{name}/model.tar.gz", Body=b"weights")
    s3.put_object(Bucket=bucket, Key=f"models/{other}/model.tar.gz", Body=b"canary weights")

    client = mlflow_env.client()
    experiments = {n: client.create_experiment(n) for n in (name, other)}
    for n, exp in experiments.items():
        for _ in range(2):
            (tmp_path / n).mkdir(exist_ok=True)
            _version(mlflow_env, n, exp, tmp_path / n)
    ml_bucket = mlflow_env.bucket
    ours_prefix, theirs_prefix = (f"mlflow/{experiments[n]}/" for n in (name, other))
    assert _keys(s3, ml_bucket, ours_prefix) and _keys(s3, ml_bucket, theirs_prefix)
    theirs_before = _keys(s3, ml_bucket, theirs_prefix)

    for n in (name, other):
        make_model(n, f"model of {n}", f"s3://{bucket}/models/{n}/model.tar.gz")
        make_endpoint(n, n, [n], capture=f"s3://{bucket}/models/{n}/capture")
        boto3.client("logs").create_log_group(logGroupName=f"/aws/sagemaker/Endpoints/{n}")
        put_events(f"/aws/sagemaker/Endpoints/{n}", "AllTraffic/i-1", [f"request to {n}"])

    region = os.environ["AWS_DEFAULT_REGION"]
    registry.create_key(f"local://{tag}-kek")
    registry.create_key(f"local://{tag}-certificates", signing=True)
    spec = spec_yaml(
        "support-bot",
        classification="confidential",
        assets={
            "weights": {
                "locations": [
                    f"s3://{bucket}/models/{name}",
                    f"s3://{ml_bucket}/mlflow/{experiments[name]}",
                    f"mlflow://127.0.0.1:{mlflow_env.port}/models/{name}",
                    f"sagemaker://{region}/{name}",
                ]
            },
            "logs": {"locations": [f"aws-logs://{region}//aws/sagemaker/Endpoints/{name}"]},
        },
        keys={"kek": f"local://{tag}-kek", "certificate": f"local://{tag}-certificates"},
        evidence=f"file://{tmp_path / 'evidence'}",
        approval={"roles": ["security-officer"]},
    )
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    found = {loc.url.split("://")[0]: loc.found for loc in plan.locations if "://" in loc.url}
    assert found.get("sagemaker") == 3 and found.get("aws-logs", 0) >= 1, plan.locations
    assert _exists(boto3.client("sagemaker").describe_endpoint, EndpointName=name)  # dry run

    result = decommission_system(
        DecommissionParameters(spec_yaml=spec, approve_digest=plan.plan_digest, approver=APPROVER)
    )
    sm, logs = boto3.client("sagemaker"), boto3.client("logs")
    assert not _exists(sm.describe_endpoint, EndpointName=name)
    assert not _exists(sm.describe_endpoint_config, EndpointConfigName=name)
    assert not _exists(sm.describe_model, ModelName=name)
    assert _exists(sm.describe_endpoint, EndpointName=other)
    assert _exists(sm.describe_model, ModelName=other)
    groups = [g["logGroupName"] for g in logs.describe_log_groups(
        logGroupNamePrefix=f"/aws/sagemaker/Endpoints/{name}")["logGroups"]]  # fmt: skip
    assert groups == [f"/aws/sagemaker/Endpoints/{other}"]
    assert not client.search_registered_models(f"name = '{name}'")
    assert len(client.search_model_versions(f"name = '{other}'")) == 2
    assert _keys(s3, ml_bucket, ours_prefix) == []  # the versions' artifacts
    assert _keys(s3, ml_bucket, theirs_prefix) == theirs_before
    assert _keys(s3, bucket, f"models/{name}/") == []
    assert _keys(s3, bucket, f"models/{other}/") == [f"models/{other}/model.tar.gz"]

    pub = registry.open_signer(f"local://{tag}-certificates").public_key_pem()
    path = Path(str(result.certificate_url).removeprefix("file://"))
    cert = verify_certificate(path.read_bytes(), pub).certificate
    assert result.status == cert.status.value
    linked = [b for loc in cert.locations for b in loc.backups if b.kind == "linked location"]
    assert linked and all("inside the spec's location" in b.description for b in linked), linked
    assert not [e for e in cert.exceptions if "linked location" in e.description]


def test_a_linked_location_outside_the_spec_is_an_exception_never_a_delete(
    moto_env: str,
) -> None:
    """A SageMaker model whose ``ModelDataUrl`` (read back from the platform: untrusted) points
    outside every location of the spec, or at the second system's prefix at the boundary, is a
    finding that keeps deleted data (the certificate's exception), not something purged."""
    from flows import _linked
    from sundown.spec.loader import parse_spec

    tag = uuid.uuid4().hex[:8]
    name, bucket = f"support-bot-{tag}", f"sb-{tag}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    make_model(name, "ours", f"s3://{bucket}/models/{name}-v2/model.tar.gz")  # the sibling's
    make_endpoint(name, name, [name], capture=f"s3://{bucket}/models/{name}/capture")
    region = os.environ["AWS_DEFAULT_REGION"]
    spec = parse_spec(
        spec_yaml(
            "support-bot",
            assets={
                "weights": {
                    "locations": [f"s3://{bucket}/models/{name}", f"sagemaker://{region}/{name}"]
                }
            },
            keys={"kek": f"local://{tag}-kek", "certificate": f"local://{tag}-cert"},
            evidence="file:///tmp/evidence",
        )
    )
    store = registry.open_record_store(f"sagemaker://{region}/{name}", None)
    try:
        found = {f.value: f for f in _linked.findings(store, spec)}
    finally:
        store.close()
    outside = found[f"s3://{bucket}/models/{name}-v2/model.tar.gz"]
    assert outside.keeps_deleted_data is True
    assert "no location of the system spec covers it" in outside.statement
    assert "not deleted" in outside.statement
    inside = found[f"s3://{bucket}/models/{name}/capture"]
    assert inside.keeps_deleted_data is False
    assert f"s3://{bucket}/models/{name}" in inside.statement
