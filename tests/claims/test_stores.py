"""Claims suite, stores part (issue #12): make a claim false in the world, then check that the
certificate no longer makes it. Real servers (moto, the Prefect test server), real retirements.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3

from flows.decommission import decommission_system
from flows.models import DecommissionParameters, Party
from sundown import registry
from sundown.certificate import verify_certificate

APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")

S3_SPEC = """\
spec_version: 1
name: {name}
owner: ml-platform@example.com
classification: confidential
assets:
  weights:
    locations:
      - s3://{bucket}/models/a
keys:
  kek: local://{name}-kek
  certificate: local://{name}-certificates
evidence: file://{evidence}
"""


def _retire(spec: str) -> tuple[Any, Any]:
    """Plan, approve and run a retirement; (result, verified certificate)."""
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    result = decommission_system(
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
    spec = S3_SPEC.format(name=name, bucket=bucket, evidence=tmp_path / "evidence")
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
