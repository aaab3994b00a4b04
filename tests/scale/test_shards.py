"""Sharded purge and verification in-process (no work pool): several shards per location as
child flow runs of decommission_system, results gathered from the journal into one certificate;
a crashed shard is resumed without repeating a batch; Prefect global concurrency limits per
cloud account are strict (a missing one stops the run before approval) and held per batch."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

from flows import _steps
from flows.decommission import decommission_system
from flows.journal import Journal
from flows.models import DecommissionParameters, Party
from flows.shards import ShardResult, ShardSettings, limit_name
from sundown import registry
from sundown.certificate import verify_certificate
from sundown.errors import InputError
from tests.scale.systems import BigSystem, make_big_system

APPROVER = Party(name="Lee Marchetti", role="security-officer")
COUNT = 450  # per location: 9 batches of 50, shards of 4 batches -> 3 shards per location
SIZE = 50
SHARDS = ShardSettings(copies_per_shard=200, poll_seconds=0.5)


@pytest.fixture
def system(tmp_path: Path, prefect_api: str) -> BigSystem:
    return make_big_system(tmp_path / "sys", "shard-a", COUNT)


def _params(system: BigSystem, **kw: Any) -> DecommissionParameters:
    return DecommissionParameters(
        spec_path=str(system.spec_path), variables=system.variables, batch_size=SIZE, **kw
    )


def _approve(system: BigSystem, settings: ShardSettings = SHARDS) -> Any:
    plan = decommission_system(_params(system, dry_run=True), settings)
    return decommission_system(
        _params(system, approve_digest=plan.plan_digest, approver=APPROVER), settings
    )


def _journal(system: BigSystem, digest: str) -> Journal:
    evidence = registry.open_store((system.root / "evidence").as_uri())
    return Journal(evidence, system.name, digest, f"local://{system.name}-certificates")


def _shard_results(journal: Journal, operation: str) -> list[ShardResult]:
    return [r.parse(ShardResult) for _, r in journal.steps(f"shard-{operation}-")]


def test_several_shards_in_process_make_one_certificate(system: BigSystem) -> None:
    result = _approve(system)
    assert result.status == "complete", result.exceptions
    assert [loc.purged for loc in result.locations] == [COUNT, COUNT]
    assert system.files("logs") == 0 and system.files("data") == 0
    assert system.canaries_intact()

    journal = _journal(system, result.plan_digest)
    purges = _shard_results(journal, "purge")
    # 3 shards per location covering batches 0-3, 4-7, 8 (each batch exactly once)
    assert [(s.location, s.first_batch, s.last_batch) for s in purges] == [
        (0, 0, 4), (0, 4, 8), (0, 8, 9), (1, 0, 4), (1, 4, 8), (1, 8, 9)
    ]  # fmt: skip
    assert sum(s.purged.versions for s in purges) == 2 * COUNT
    assert all(s.pid == os.getpid() for s in purges)  # subflows of this process
    verifies = _shard_results(journal, "verify")
    assert [v.verification.passed for v in verifies if v.verification] == [True, True]
    assert len(list(journal.steps("purge-"))) == 18

    cert = verify_certificate(
        journal.read_file("certificate.dsse.json") or b"",
        registry.open_signer(f"local://{system.name}-certificates").public_key_pem(),
    ).certificate
    assert [loc.purged.versions for loc in cert.locations] == [COUNT, COUNT]
    assert cert.plan_digest == result.plan_digest


def test_crashed_shard_resumes_without_repeating_a_batch(
    system: BigSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _steps.purge_batch.fn
    calls: list[tuple[int, int]] = []

    def crashing(url: str, location: int, number: int, entries: list[Any]) -> Any:
        if (location, number) == (1, 6):
            raise RuntimeError("simulated crash in a shard")
        calls.append((location, number))
        return real(url, location, number, entries)

    monkeypatch.setattr(_steps.purge_batch, "fn", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _approve(system)
    first = list(calls)
    assert (1, 5) in first and (1, 6) not in first
    assert system.files("logs") == COUNT - 6 * SIZE  # location 1 (asset-class order)

    calls.clear()

    def counting(url: str, location: int, number: int, entries: list[Any]) -> Any:
        calls.append((location, number))
        return real(url, location, number, entries)

    monkeypatch.setattr(_steps.purge_batch, "fn", counting)
    result = decommission_system(_params(system), SHARDS)  # resumes the approved plan
    assert result.status == "complete" and result.resumed
    assert sorted(calls) == [(1, 6), (1, 7), (1, 8)]  # only what the journal lacked
    assert not set(first) & set(calls)
    journal = _journal(system, result.plan_digest)
    resumed = [s for s in _shard_results(journal, "purge") if s.batches_skipped]
    assert [(s.location, s.first_batch, s.batches_skipped, s.batches_purged) for s in resumed] == [
        (1, 4, 2, 2)
    ]
    assert system.files("logs") == 0 and system.canaries_intact()


def _delete_limit(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
        client.delete_global_concurrency_limit_by_name(name)


def test_missing_account_limit_stops_before_approval(system: BigSystem) -> None:
    name = limit_name(f"file://{system.root}")
    assert name == "sundown-file-local"
    _delete_limit(name)
    plan = decommission_system(_params(system, dry_run=True))
    strict = ShardSettings(account_limits="always")
    with pytest.raises(InputError, match=f"prefect gcl create {name} --limit"):
        decommission_system(
            _params(system, approve_digest=plan.plan_digest, approver=APPROVER), strict
        )
    assert system.files("logs") == COUNT and system.files("data") == COUNT
    assert not (system.root / "evidence").exists()  # not approved, nothing journaled


def test_each_purge_batch_holds_a_slot_of_the_account_limit(
    system: BigSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    name = "sundown-file-local"
    _delete_limit(name)
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=2))
    real = _steps.purge_batch.fn
    active: list[int] = []

    def observing(url: str, location: int, number: int, entries: list[Any]) -> Any:
        with get_client(sync_client=True) as client:
            active.append(client.read_global_concurrency_limit_by_name(name).active_slots)
        return real(url, location, number, entries)

    monkeypatch.setattr(_steps.purge_batch, "fn", observing)
    try:
        result = _approve(system, ShardSettings(copies_per_shard=200, account_limits="always"))
        with get_client(sync_client=True) as client:
            after = client.read_global_concurrency_limit_by_name(name).active_slots
    finally:
        _delete_limit(name)
    assert result.status == "complete"
    assert active == [1] * 18  # one slot held during each of the 18 batches
    assert after == 0


def test_missing_shard_deployment_stops_before_approval(system: BigSystem) -> None:
    plan = decommission_system(_params(system, dry_run=True))
    absent = ShardSettings(deployment="run-shard/absent", account_limits="never")
    with pytest.raises(InputError, match="shard deployment 'run-shard/absent' does not exist"):
        decommission_system(
            _params(system, approve_digest=plan.plan_digest, approver=APPROVER), absent
        )
    assert system.files("logs") == COUNT and not (system.root / "evidence").exists()
