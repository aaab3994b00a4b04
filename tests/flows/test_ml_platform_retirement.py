"""Issue #15: linked locations at the spec's boundary. The retirement of the whole "support-bot"
system with its MLflow model, SageMaker endpoint and log group (and a second system's canaries)
is the combined done-when test, ``test_support_bot_and_its_ml_platform_retire_under_one_
certificate_canaries_intact`` in tests/flows/test_records_retirement.py."""

from __future__ import annotations

import os
import uuid

import boto3

from sundown import registry
from tests.conformance_records.backend_aws import make_endpoint, make_model
from tests.spec_builder import spec_yaml


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
