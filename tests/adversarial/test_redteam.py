"""Adversarial review of the trust and claims work (issues #11, #12): attacks the per-part
suites did not try. Each test runs as the attacker would (real file stores, the local keyring,
the real flow on the Prefect test server) and is kept as a regression test where the attack
found a hole (docs/threat-model.md, "Found in review")."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.decommission import decommission_system
from flows.models import RetentionParameters
from sundown import registry
from sundown.certificate import CERTIFICATE_NAME, sign_certificate
from sundown.errors import IntegrityError
from tests.adversarial.test_resume import APPROVER, World, interrupted
from tests.certificate_sample import sample_certificate
from tests.flows.systems import System, make_system

__all__ = ["World"]


@pytest.fixture
def world(tmp_path: Path, prefect_api: str) -> World:
    return World(tmp_path)


def _ledger_decommission_records(world: World) -> list[str]:
    return [
        p.read_text()
        for p in world.evidence.rglob("*.json")
        if "records" in p.parts and '"decommission"' in p.read_text()
    ]


def test_a_genuine_certificate_of_another_plan_planted_before_certify_is_not_adopted(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """X1. The writer to the evidence location copies a genuine certificate signed by the
    system's certificate key, issued for another plan (an earlier retirement, "complete"),
    into the folder of an unfinished retirement as ``certificate.dsse.json``. The certify step
    kept a certificate already there (a crashed attempt's) once its signature verified, so the
    resumed run ledgered the other plan's certificate as this one and reported its status.
    Now the certificate found there must be for this system and plan: IntegrityError naming it,
    no ledger decommission record. (The earlier certificate is made here by signing the sample
    certificate with the spec's certificate key: the stand-in for a genuine earlier one.)"""
    digest, folder = interrupted(world, monkeypatch)
    signer = registry.open_signer("local://sys-a-certificates")
    other = sample_certificate().certificate
    assert other.plan_digest != digest
    (folder / CERTIFICATE_NAME).write_bytes(sign_certificate(other, signer).data)

    with pytest.raises(IntegrityError) as info:
        decommission_system(world.params(approve_digest=digest, approver=APPROVER))
    text = str(info.value)
    assert CERTIFICATE_NAME in text and other.plan_digest in text, text
    assert not _ledger_decommission_records(world)
    assert not (folder / "journal" / "certified.json").exists()
    assert json.loads((folder / CERTIFICATE_NAME).read_bytes())  # kept for a person to inspect


def _sweep_of(tmp_path: Path) -> tuple[System, Callable[..., RetentionParameters]]:
    """A system under tmp_path and the parameters of its retention sweep 400 days from now."""
    system = make_system(tmp_path / "sys")
    as_of = datetime.now(UTC) + timedelta(days=400)

    def params(**kw: Any) -> RetentionParameters:
        return RetentionParameters(
            spec_path=str(system.spec_path), variables=system.variables, as_of=as_of, **kw
        )

    return system, params


def test_a_retention_receipt_planted_before_the_sweep_is_not_ledgered(
    tmp_path: Path, prefect_api: str
) -> None:
    """X2. A retention sweep's plan digest is predictable (same inventory, same ``as_of``: a
    dry run, or a schedule, gives it). The writer to the evidence location creates
    ``retention/<system>/<plan>/receipt.json`` first, saying nothing was purged. The sweep's
    create-only write kept the planted receipt and the signed ledger recorded the planted
    receipt's digest as this sweep's evidence. Now the stored receipt must be the sweep's own
    (byte for byte; a re-run writes the same bytes): IntegrityError naming it, no ledger
    retention record vouches for it."""
    from flows.retention import retention_sweep

    system, params = _sweep_of(tmp_path)
    planned = retention_sweep(params(dry_run=True))
    assert planned.purged or planned.archived
    evidence = system.root / "evidence"
    folder = evidence / "retention" / "sys-a" / planned.plan_digest.removeprefix("sha256:")
    folder.mkdir(parents=True)
    fake = b'{"locations": [], "note": "nothing was purged"}\n'
    (folder / "receipt.json").write_bytes(fake)

    with pytest.raises(IntegrityError) as info:
        retention_sweep(params())
    assert "receipt.json" in str(info.value), info.value
    ledgered = [
        p.read_text()
        for p in evidence.rglob("*.json")
        if "records" in p.parts and '"retention"' in p.read_text()
    ]
    fake_digest = hashlib.sha256(fake).hexdigest()
    assert not any(fake_digest in text for text in ledgered)


def test_a_retention_plan_file_planted_before_the_sweep_stops_it_before_any_change(
    tmp_path: Path, prefect_api: str
) -> None:
    """X3. The same predictable folder: the attacker plants ``plan.jsonl`` (a plan that is not
    the sweep's). It was kept as the sweep's evidence, so the receipt named a plan digest whose
    stored file was someone else's. Now the sweep checks the stored plan's digest before any
    step: IntegrityError, nothing archived or purged."""
    from flows.retention import retention_sweep

    system, params = _sweep_of(tmp_path)
    planned = retention_sweep(params(dry_run=True))
    stores = system.root / "stores"
    before = {str(p): p.read_bytes() for p in sorted(stores.rglob("*")) if p.is_file()}
    folder = system.root / "evidence" / "retention" / "sys-a" / planned.plan_digest[7:]
    folder.mkdir(parents=True)
    (folder / "plan.jsonl").write_bytes(b'{"kind": "retention", "locations": []}\n')

    with pytest.raises(IntegrityError, match=r"plan\.jsonl"):
        retention_sweep(params())
    after = {str(p): p.read_bytes() for p in sorted(stores.rglob("*")) if p.is_file()}
    assert after == before


def test_a_deletion_manifest_planted_before_certify_is_not_certified(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """X4. The attacker creates ``deletion-manifest.jsonl`` in an unfinished retirement's folder
    (a manifest listing nothing). The certify step keeps a manifest already there only as a
    crashed attempt's, so it re-derives this retirement's manifest and compares: the planted one
    is refused (IntegrityError), no certificate is signed and nothing is ledgered."""
    from sundown.certificate import MANIFEST_NAME

    digest, folder = interrupted(world, monkeypatch)
    (folder / MANIFEST_NAME).write_bytes(b'{"note": "nothing was deleted"}\n')

    with pytest.raises(IntegrityError):
        decommission_system(world.params(approve_digest=digest, approver=APPROVER))
    assert not (folder / CERTIFICATE_NAME).exists()
    assert not _ledger_decommission_records(world)
    assert not (folder / "journal" / "certified.json").exists()
