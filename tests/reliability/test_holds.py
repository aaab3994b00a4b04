"""Legal holds and compliance retention are never broken; governance retention is bypassed only
when the spec says ``allow_governance_bypass: true``. On moto's S3 with Object Lock.

Every request the connector sends goes through a recording proxy (the fault proxy at rate 0):
besides what is left in the bucket afterwards, the tests assert that no delete request ever
named a held version, and that the governance-bypass header was sent only where allowed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from sundown import registry
from sundown.certificate import verify_certificate
from tests.reliability.conftest import count
from tests.reliability.faultproxy import FaultProxy, Request
from tests.reliability.world import unique
from tests.spec_builder import spec_yaml


def spec_text(name: str, bucket: str, evidence: Path, *, bypass: bool) -> str:
    """Training data in one S3 prefix; ``allow_governance_bypass`` as asked."""
    return spec_yaml(
        name,
        classification="confidential",
        assets={"training_data": {"locations": [f"s3://{bucket}/data/{name}"]}},
        keys={"kek": f"local://{name}-kek", "certificate": f"local://{name}-certs"},
        evidence=f"file://{evidence}",
        extra={"allow_governance_bypass": bypass},
    )


def _system(tmp_path: Path, bypass: bool) -> tuple[str, str, str, dict[str, str], list[str]]:
    """(spec, name, bucket, {role: version id}, canary keys) on a fresh Object Lock bucket:
    a legal hold, COMPLIANCE and GOVERNANCE retention, plain versions, canaries beside."""
    name = unique("hold")
    bucket = f"{name}-b"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    until = datetime.now(UTC) + timedelta(days=1)
    p = f"data/{name}"
    v: dict[str, str] = {}
    v["legal"] = s3.put_object(Bucket=bucket, Key=f"{p}/legal.bin", Body=b"L" * 50)["VersionId"]
    s3.put_object_legal_hold(
        Bucket=bucket, Key=f"{p}/legal.bin", VersionId=v["legal"], LegalHold={"Status": "ON"}
    )
    for mode in ("COMPLIANCE", "GOVERNANCE"):
        key = f"{p}/{mode.lower()}.bin"
        v[mode.lower()] = s3.put_object(
            Bucket=bucket, Key=key, Body=mode.encode(), ObjectLockMode=mode,
            ObjectLockRetainUntilDate=until,
        )["VersionId"]  # fmt: skip
    for i in range(2):
        v[f"plain{i}"] = s3.put_object(Bucket=bucket, Key=f"{p}/plain.bin", Body=b"%d" % i)[
            "VersionId"
        ]
    canaries = [f"data/{name}x/c", f"data/{name}.bin", "other/c"]
    for key in canaries:
        s3.put_object(Bucket=bucket, Key=key, Body=b"canary")
    registry.create_key(f"local://{name}-kek")
    registry.create_key(f"local://{name}-certs", signing=True)
    spec = spec_text(name, bucket, tmp_path / "evidence", bypass=bypass)
    return spec, name, bucket, v, canaries


class Recorder:
    def __init__(self) -> None:
        self.deletes: list[Request] = []

    def __call__(self, request: Request) -> None:
        if request.method in ("POST", "DELETE") and (
            "delete" in request.query or request.method == "DELETE"
        ):
            self.deletes.append(request)
        return None

    def deleted_versions(self) -> set[str]:
        out: set[str] = set()
        for r in self.deletes:
            out |= {m.decode() for m in re.findall(rb"<VersionId>(.*?)</VersionId>", r.body)}
            found = re.search(r"versionId=([^&]+)", r.query)
            if found:
                out.add(found[1])
        return out

    def bypass_requests(self) -> list[Request]:
        return [
            r
            for r in self.deletes
            if r.headers.get("x-amz-bypass-governance-retention", "").lower() == "true"
            or r.headers.get("X-Amz-Bypass-Governance-Retention", "").lower() == "true"
        ]


def _run(spec: str) -> Any:
    from flows.decommission import decommission_system
    from flows.models import DecommissionParameters, Party

    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    return decommission_system(
        DecommissionParameters(
            spec_yaml=spec,
            approve_digest=plan.plan_digest,
            approver=Party(name="Lee", role="security-officer"),
        )
    )


@pytest.mark.parametrize("bypass", [False, True], ids=["bypass-not-allowed", "bypass-allowed"])
def test_holds_and_compliance_never_broken_governance_only_when_allowed(
    bypass: bool,
    tmp_path: Path,
    moto_env: str,
    prefect_api: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, name, bucket, versions, canaries = _system(tmp_path, bypass)
    recorder = Recorder()
    with FaultProxy(moto_env, "s3", rate=0.0, name="s3 recorder") as proxy:
        proxy.rules.append(recorder)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        result = _run(spec)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_env)
    count("hold scenarios checked")
    must_stay = {"legal", "compliance"} | (set() if bypass else {"governance"})
    held_ids = {versions[k] for k in must_stay}
    # never asked to delete a version under legal hold or compliance retention (or governance
    # retention without the spec's permission)
    assert not recorder.deleted_versions() & held_ids, recorder.deleted_versions() & held_ids
    assert recorder.deletes, "no delete was recorded: the recorder sees nothing"
    bypassing = recorder.bypass_requests()
    if bypass:
        assert bypassing, "governance bypass allowed but never asked for"
        ids = set().union(*(re.findall(rb"<VersionId>(.*?)</VersionId>", r.body)
                            for r in bypassing))  # fmt: skip
        assert {i.decode() for i in ids} == {versions["governance"]}, ids
    else:
        assert not bypassing, "governance bypass sent although the spec does not allow it"
    # what is left: exactly the held versions; canaries untouched
    s3 = boto3.client("s3")
    left = s3.list_object_versions(Bucket=bucket, Prefix=f"data/{name}/")
    assert {x["VersionId"] for x in left.get("Versions", [])} == held_ids
    assert not left.get("DeleteMarkers")
    for key in canaries:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"canary"
    # the certificate says so
    assert result.status == "complete with exceptions", result
    pub = registry.open_signer(f"local://{name}-certs").public_key_pem()
    cert_path = Path(str(result.certificate_url).removeprefix("file://"))
    cert = verify_certificate(cert_path.read_bytes(), pub).certificate
    (loc,) = cert.locations
    assert loc.held.versions == len(held_ids)
    assert loc.purged.versions == 5 - len(held_ids)
    assert [e.kind for e in cert.exceptions] == ["held"]
    # release the holds so the bucket can be cleaned by the server's end
    s3.put_object_legal_hold(
        Bucket=bucket, Key=f"data/{name}/legal.bin", VersionId=versions["legal"],
        LegalHold={"Status": "OFF"},
    )  # fmt: skip
