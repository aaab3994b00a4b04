"""The certificate builder (flows/_certify.py) on plain values: no Prefect server, no store, no
key service. What it states comes from its inputs only: the settings and placement the plan
recorded at inventory time, the journaled batches, key and credential evidence, verification.

The flow-level counterpart (a store setting changed between inventory and certification, on
moto's S3, with a crash in between) is in tests/flows/test_decommission.py."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows import _certify, evidence
from flows.models import Party
from sundown.certificate import (
    CredentialRevoked,
    KeyDestroyed,
    ManifestWriter,
    Protection,
    SanitizationCategory,
    Status,
    SystemRef,
)
from sundown.errors import IntegrityError
from sundown.plan import (
    CopyProtection,
    LocationPlan,
    PlacementFound,
    Plan,
    PlanEntry,
    StoreSettings,
)
from sundown.store import EntryKind, HoldState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEK = "local://sys-kek"
S3 = "s3://no-such-bucket-anywhere/models/sys"  # never reached: the builder asks no store
FILE = "file:///srv/nowhere/logs/sys"
WEEK = 7 * 24 * 3600
SETTINGS = StoreSettings(
    versioning="enabled",
    object_lock="none",
    soft_delete_seconds=WEEK,
    soft_delete_source="bucket policy",
    replicas=["aws eu-central-1 (replication rule r1)"],
)
UNVERSIONED = StoreSettings(versioning="not enabled", object_lock="none")
PLACED = PlacementFound(provider="aws", account="123456789012", region="eu-west-1")


def _entry(loc: int, key: str, disposition: str = "purge", **kw: Any) -> PlanEntry:
    base: dict[str, Any] = {
        "loc": loc,
        "key": key,
        "version_id": None,
        "kind": EntryKind.OBJECT,
        "size": 100,
        "modified": NOW - timedelta(days=30),
        "is_latest": True,
        "storage_class": None,
        "hold": HoldState(),
        "disposition": disposition,
        "reason": "legal hold" if disposition == "held" else None,
    }
    return PlanEntry(**{**base, **kw})


ENTRIES = {
    0: [
        _entry(0, "model.bin", protection=CopyProtection(Protection.ENVELOPE, KEK, 1)),
        _entry(0, "model.bin.sundown", protection=CopyProtection(Protection.ENVELOPE, KEK, 1)),
        _entry(0, "held.bin", "held"),
    ],
    1: [_entry(1, "a.log"), _entry(1, "b.log")],
}


def _location(index: int, url: str, **kw: Any) -> LocationPlan:
    return LocationPlan(
        index=index, url=url, asset_class="weights", classification="confidential", **kw
    )


def _plan(settings: StoreSettings | None = SETTINGS, placement: Any = PLACED) -> Plan:
    return Plan(
        kind="retirement",
        system="sys",
        owner="ml@example.com",
        spec_digest="sha256:" + "11" * 32,
        digest="sha256:" + "22" * 32,
        path="/nonexistent/plan.jsonl",  # never opened: entries come from ``entries``
        locations=[
            _location(0, S3, settings=settings, placement=placement),
            _location(1, FILE, settings=UNVERSIONED),
        ],
    )


def _outcome(loc: int, batch: int, **kw: Any) -> evidence.BatchOutcome:
    return evidence.BatchOutcome(
        location=loc, batch=batch, finished_at=NOW - timedelta(hours=1), **kw
    )


def _check(url: str, passed: bool = True, **kw: Any) -> evidence.VerifyOutcome:
    return evidence.VerifyOutcome(
        url=url,
        passed=passed,
        remaining=0 if passed else 1,
        held_remaining=1 if url == S3 else 0,
        details="only held copies remain" if passed else "1 copy remains",
        verified_at=NOW - timedelta(minutes=5),
        **kw,
    )


def _inputs(plan: Plan | None = None, **kw: Any) -> _certify.CertificateInputs:
    plan = plan or _plan()
    base: dict[str, Any] = {
        "system": SystemRef(name="sys", owner="ml@example.com", spec_digest=plan.spec_digest),
        "plan": plan,
        "entries": lambda i: iter(ENTRIES[i]),
        "approved": evidence.Approved(
            spec_digest=plan.spec_digest,
            approver=Party(name="Lee Marchetti", role="security-officer"),
            approved_at=NOW - timedelta(days=2),
            performer=Party(name="Sam Okafor"),
            started_at=NOW - timedelta(days=2),
            batch_size=2,
        ),
        "locations": [
            _certify.LocationEvidence(
                purges=[_outcome(0, 0, done=evidence.CopyCounts(objects=2, versions=2, bytes=200))]
            ),
            _certify.LocationEvidence(
                purges=[_outcome(1, 0, done=evidence.CopyCounts(objects=2, versions=2, bytes=200))]
            ),
        ],
        "keys": [
            KeyDestroyed(
                uri=KEK,
                versions_destroyed=[1],
                destroyed_at=NOW - timedelta(hours=1),
                method="local keyring: key file removed",
                verified=True,
            )
        ],
        "credentials": [
            CredentialRevoked(
                kind="vault_token",
                identifier="acc-1",
                revoked_at=NOW,
                method="revoked",
                verified=True,
            )
        ],
        "verification": evidence.Verified(
            locations=[_check(S3), _check(FILE)],
            keys={KEK: "gone"},
            credentials={"vault_token:acc-1": "dead"},
        ),
        "now": NOW,
    }
    return _certify.CertificateInputs(**{**base, **kw})


def _build(inputs: _certify.CertificateInputs) -> Any:
    purged: dict[int, evidence.CopyCounts] = {}
    writer = ManifestWriter()
    for _ in writer.chunks(_certify.manifest_entries(inputs, purged)):
        pass
    return _certify.build_certificate(inputs, purged, writer.reference(), "DC-sys-test")


def test_the_same_inputs_give_the_same_certificate() -> None:
    """Nothing but the inputs goes in (no clock, no store, no random id): two builds are equal,
    field for field."""
    first, second = _build(_inputs()), _build(_inputs())
    assert first == second
    assert first.issued_at == NOW and first.certificate_id == "DC-sys-test"
    assert first.deletion_manifest.entries == 4  # 2 purged on S3 (held one skipped), 2 logs


def test_settings_and_placement_are_the_ones_the_plan_recorded() -> None:
    """The S3 location's bucket does not exist anywhere: the certificate still states the
    settings and account/region recorded at inventory, because nothing asks the store."""
    cert = _build(_inputs())
    s3, logs = cert.locations
    assert s3.settings.versioning == "enabled"
    assert s3.settings.soft_delete == f"{WEEK} seconds (bucket policy)"
    window = next(e for e in cert.exceptions if e.kind == "soft-delete window")
    assert window.until == NOW - timedelta(hours=1) + timedelta(seconds=WEEK)
    assert any(e.kind == "replica not reached" for e in cert.exceptions)
    assert cert.execution.accounts == ["aws 123456789012", "local account unknown "
                                       "(file://: not recorded in the plan)"]  # fmt: skip
    assert cert.execution.regions[0] == "aws eu-west-1"
    assert logs.settings.versioning == "not enabled"


def test_a_setting_changed_after_inventory_changes_nothing_the_builder_sees() -> None:
    """Decision (docs/decisions.md, "Certification from what was recorded"): the certificate
    states the settings that held when the copies were listed and purged, recorded in the
    approved plan; a policy changed since is not read. The one input that could move is the
    verification's own re-listing (soft-deleted copies found with their hard-delete times),
    which extends the stated window when it found copies restorable for longer."""
    base = _build(_inputs())
    later = NOW + timedelta(days=30)
    relisted = _inputs(
        verification=evidence.Verified(
            locations=[
                _check(S3, soft_deleted=1, restorable_until=later,
                       soft_deleted_copies=["model.bin (deleted)"]),
                _check(FILE),
            ],
            keys={KEK: "gone"},
            credentials={"vault_token:acc-1": "dead"},
        )
    )  # fmt: skip
    extended = next(e for e in _build(relisted).exceptions if e.kind == "soft-delete window")
    assert extended.until == later and "model.bin (deleted)" in extended.description
    assert base.locations[0].settings == _build(relisted).locations[0].settings


def test_a_plan_without_recorded_settings_is_not_completed_on_guesses() -> None:
    """A plan made by a version that did not record settings (resumed after upgrading): the
    certificate says the settings are unknown and lists the gap as an exception, so it is never
    "complete"; it does not read the store's settings now, days after the purge."""
    cert = _build(_inputs(_plan(settings=None, placement=None)))
    s3 = cert.locations[0]
    assert s3.settings.versioning == "unknown (not recorded in the plan)"
    assert [e.subject for e in cert.exceptions if e.kind == "settings not recorded"] == [S3]
    assert cert.status is Status.COMPLETE_WITH_EXCEPTIONS
    assert cert.execution.accounts[0] == (
        "aws account unknown (s3://no-such-bucket-anywhere: not recorded in the plan)"
    )


def _reverified(*, key: str, credential: str) -> Any:
    """The certificate when both locations re-listed clean and the last checks found the KEK
    and the token as ``key`` and ``credential`` say."""
    found = evidence.Verified(
        locations=[_check(S3), _check(FILE)],
        keys={KEK: key},
        credentials={"vault_token:acc-1": credential},
    )
    return _build(_inputs(verification=found))


def test_every_recorded_check_drives_the_status() -> None:
    ok = _build(_inputs())
    assert ok.status is Status.COMPLETE_WITH_EXCEPTIONS  # held copy, soft-delete window
    categories = {s.category for s in ok.locations[0].sanitization}
    assert SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE in categories

    answers = _reverified(key="still decrypts the sentinel", credential="dead")
    assert answers.status is Status.FAILED
    assert not answers.keys_destroyed[0].verified
    assert all(
        s.category is not SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE
        for loc in answers.locations
        for s in loc.sanitization
    )

    live = _reverified(key="gone", credential="live")
    assert live.status is Status.FAILED
    assert any(e.kind == "credential still live" for e in live.exceptions)

    remaining = _build(
        _inputs(verification=evidence.Verified(locations=[_check(S3), _check(FILE, passed=False)],
                                      keys={KEK: "gone"},
                                      credentials={"vault_token:acc-1": "dead"}))
    )  # fmt: skip
    assert remaining.status is Status.FAILED
    assert remaining.locations[1].validation.result.value == "rejected"


def test_a_location_without_a_recorded_relisting_is_refused() -> None:
    inputs = _inputs(
        verification=evidence.Verified(locations=[_check(S3)], keys={KEK: "gone"}, credentials={})
    )
    with pytest.raises(IntegrityError, match="no re-listing of file:///srv/nowhere/logs/sys"):
        _build(inputs)


def test_lifecycle_expiry_is_stated_from_the_journaled_rule() -> None:
    locations = list(_inputs().locations)
    locations[1] = _certify.LocationEvidence(
        purges=locations[1].purges,
        lifecycle=evidence.LifecycleChange(rule_id="sundown-retire-sys-ab", scope="logs/sys/"),
    )
    cert = _build(_inputs(locations=locations))
    methods = " ".join(s.method for s in cert.locations[1].sanitization)
    assert "sundown-retire-sys-ab" in methods and "'logs/sys/'" in methods


def test_the_builder_module_does_no_io() -> None:
    """Structural: flows/_certify.py imports no connector, registry, store opener, Prefect
    runtime, journal or step module, and never calls the clock."""
    source = (Path(_certify.__file__)).read_text()
    tree = ast.parse(source)
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
            imported |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    forbidden = ("connectors", "sundown.registry", "prefect", ".journal", "._steps",
                 "._execute", "._common", "boto3", "hvac")  # fmt: skip
    assert not [m for m in imported if any(f in m for f in forbidden)], imported
    assert "datetime.now" not in source and "uuid" not in source and "open(" not in source
