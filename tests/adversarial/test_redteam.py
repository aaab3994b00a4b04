"""Adversarial review of the trust and claims work (issues #11, #12): attacks the per-part
suites did not try. Each test runs as the attacker would (real file stores, the local keyring,
the real flow on the Prefect test server) and is kept as a regression test where the attack
found a hole (docs/threat-model.md, "Found in review")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.decommission import decommission_system
from sundown import registry
from sundown.certificate import CERTIFICATE_NAME, sample_certificate, sign_certificate
from sundown.errors import IntegrityError
from tests.adversarial.test_resume import APPROVER, World, interrupted

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
