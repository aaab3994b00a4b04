"""The daily retention sweep completes a retirement waiting on lifecycle rules (moto's S3 and a
real Prefect server): it re-verifies the retirement as a re-run would (every journal record's
signature, the plan against the spec, Sundown's rule against the journal), waits while the
prefix holds copies, then removes only Sundown's rule, destroys the keys and certifies.

Emulator gap (docs/known-gaps.md): moto never executes lifecycle rules, so the test deletes the
prefix's versions itself with a second client, as S3 would under the rule."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from flows.decommission import decommission_system
from flows.models import DecommissionParameters, RetentionParameters
from flows.retention import retention_sweep
from sundown import registry
from sundown.errors import IntegrityError
from tests.flows.test_lifecycle_purge import (
    APPROVER,
    FOREIGN,
    _approved,
    _expire,
    _foreign_intact,
    _rules,
    retired,
)


def _waiting(tmp_path: Path) -> tuple[object, str, str, str]:
    s3, bucket, spec = _approved(tmp_path, lock=False)
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    approve = DecommissionParameters(
        spec_yaml=spec, approve_digest=plan.plan_digest, approver=APPROVER
    )
    assert decommission_system(approve).status == "waiting for lifecycle expiry"
    return s3, bucket, spec, plan.plan_digest


def test_the_daily_sweep_waits_then_completes_the_lifecycle_retirement(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    s3, bucket, spec, digest = _waiting(tmp_path)
    mine = [r for r in _rules(s3, bucket) if r["ID"].startswith("sundown-")]

    early = retention_sweep(RetentionParameters(spec_yaml=spec))
    assert early.lifecycle[0] == f"retirement of plan {digest}: waiting for lifecycle expiry"
    assert "models/a" in early.lifecycle[1] and early.certificate_url is None
    assert _rules(s3, bucket)[-1:] == mine  # the rule stays while copies remain
    registry.open_key_service("local://lc-sys-kek").info()  # the key alive

    _expire(s3, bucket, "models/a/")  # the emulator gap: S3 would expire them under the rule
    swept = retention_sweep(RetentionParameters(spec_yaml=spec))
    assert swept.lifecycle == [f"retirement of plan {digest}: complete"], swept.lifecycle
    after = _rules(s3, bucket)
    assert [r["ID"] for r in after] == ["team-logs", "team-models"]
    assert _foreign_intact(after, FOREIGN)
    assert retired(s3, bucket, swept.certificate_url).plan_digest == digest
    # The operator's re-run finds it certified: the same certificate, no second one.
    again = decommission_system(DecommissionParameters(spec_yaml=spec))
    assert again.status == "already decommissioned"
    assert again.certificate_url == swept.certificate_url
    # The next sweep has nothing left to complete.
    assert retention_sweep(RetentionParameters(spec_yaml=spec)).lifecycle == []


def test_a_tampered_journal_stops_the_sweep_before_any_rule_or_key_is_touched(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    """Someone who can write the evidence location rewrites the journaled rule ID to a foreign
    rule's, hoping the sweep removes it: the record no longer verifies under the certificate
    key, and the sweep stops with nothing removed, no key destroyed, nothing certified."""
    s3, bucket, spec, _ = _waiting(tmp_path)
    rules = _rules(s3, bucket)
    (path,) = (tmp_path / "evidence").rglob("journal/lifecycle-000-added.json")
    envelope = json.loads(path.read_text())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["data"]["rule_id"] = "team-models"
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    path.chmod(0o644)
    path.write_text(json.dumps(envelope))
    _expire(s3, bucket, "models/a/")
    with pytest.raises(IntegrityError, match="lifecycle-000-added"):
        retention_sweep(RetentionParameters(spec_yaml=spec))
    assert _rules(s3, bucket) == rules
    registry.open_key_service("local://lc-sys-kek").info()
    assert not list((tmp_path / "evidence").rglob("certificate.dsse.json"))


def test_a_sweep_leaves_an_unfinished_batch_retirement_to_its_operator(
    tmp_path: Path, prefect_api: str, moto_env: str
) -> None:
    """Only a retirement waiting on lifecycle rules is completed by the sweep; a batch one that
    stopped halfway is not resumed behind its operator's back."""
    s3, bucket, spec = _approved(tmp_path, lock=False)
    batch = spec.replace("purge_by: lifecycle", "purge_by: batch")
    plan = decommission_system(DecommissionParameters(spec_yaml=batch, dry_run=True))
    from flows import decommission as flow

    original = flow._purge

    def stop(*args: object, **kw: object) -> object:
        raise RuntimeError("simulated crash before the purge")

    approve = DecommissionParameters(
        spec_yaml=batch, approve_digest=plan.plan_digest, approver=APPROVER
    )
    with pytest.MonkeyPatch.context() as m:
        m.setattr(flow, "_purge", stop)
        with pytest.raises(RuntimeError):
            decommission_system(approve)
    assert original is flow._purge
    swept = retention_sweep(RetentionParameters(spec_yaml=batch))
    assert swept.lifecycle == [] and swept.certificate_url is None
    listed = s3.list_object_versions(Bucket=bucket, Prefix="models/a/")  # type: ignore[attr-defined]
    assert len(listed["Versions"]) == 2
    registry.open_key_service("local://lc-sys-kek").info()
