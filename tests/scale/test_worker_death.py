"""Worker death in the middle of a purge shard and of a verify shard, on the PostgreSQL-backed
Prefect server with two process workers and the deployments of prefect.yaml (its shard
deployment sends flow-run heartbeats every 30 s), shared with tests/scale/test_workers.py
(tests/scale/conftest.py). The retirement's parent runs here and dispatches its shards to the
pool; the worker running a shard and that shard's flow-run process are SIGKILLed mid-shard. The
parent must take the shard for crashed from its silence (no heartbeat for 3 periods: about 90 s,
which is what each trial costs), set it Crashed, and stop before certifying (and, for a purge
shard, before destroying a key: the keys are destroyed between the purge and the verification,
which proves them gone); a re-run on the surviving worker completes with exactly one
certificate, the purged counts equal to a plain listing made before, and every canary intact.

A verify shard of an emptied location ends within a second of starting, too fast to hit with a
poll: its process is single-stepped (SIGSTOP, then SIGCONT for 20 ms at a time) until its flow
run is Running, and killed there, its result provably not journaled.

Kept small (two locations of 240 files, one purge shard each), so that it runs with the normal
suite."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.decommission import decommission_system
from flows.journal import Journal, journals_of
from flows.models import DecommissionParameters, Party
from flows.shards import ShardParameters, ShardResult, ShardSettings
from sundown import registry
from sundown.errors import SundownError
from tests.fixtures.postgres import Postgres
from tests.scale.conftest import POOL
from tests.scale.servers import start_worker, stop_workers
from tests.scale.systems import BigSystem, make_big_system

COUNT = 240  # per location
SIZE = 4  # 60 batches per shard: a shard lasts long enough to be killed in the middle
APPROVER = Party(name="Lee Marchetti", role="security-officer")


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    out.append(int(entry))
                    todo.append(int(entry))
    return out


def _flow_run_pids(run_id: Any, workers: list[Any]) -> tuple[list[int], Any]:
    """(every process of flow run ``run_id``, the worker that started them), found by the flow
    run id in the environment of each worker's descendants ([] when none has started yet)."""
    needle = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    for worker in workers:
        found = []
        for pid in _descendants(worker.process.pid):
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    found.append(pid)
        if found:
            return found, worker
    return [], None


def _shard_runs(client: Any, system: str) -> list[Any]:
    """The shard flow runs of one system's retirement (their names start with it)."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterName,
    )

    return list(
        client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["shard"])),
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=f"{system}:")),
        )
    )


Victim = tuple[Any, list[int], Any]  # (flow run, its processes, its worker)


def _running_purge_shard(journal: Journal, workers: list[Any], timeout: float = 120) -> Victim:
    """A purge shard's flow run once it has journaled a few batches (mid-shard)."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = _shard_runs(client, journal.system)
            running = [r for r in runs if r.state is not None and r.state.is_running()]
            fresh = journal.fresh()
            for run in running:
                shard = ShardParameters.model_validate(run.parameters["params"])
                if _batches_done(fresh, shard) < 3:
                    continue
                pids, worker = _flow_run_pids(run.id, workers)
                if not pids:
                    continue
                # Frozen before it is judged: a shard that ends between being picked and the
                # kill would leave nothing to kill (the parent then certifies, rightly). Its
                # state alone does not show that: a proposal of Completed sent just before the
                # stop is still accepted. A shard journals its result before it ends, so one
                # frozen with its result unwritten and batches left cannot complete once killed.
                _signal(pids, signal.SIGSTOP)
                state = client.read_flow_run(run.id).state
                fresh = journal.fresh()
                if (
                    state is not None
                    and state.is_running()
                    and fresh.get(shard.step) is None
                    and _batches_done(fresh, shard) < shard.last_batch - shard.first_batch
                ):
                    return run, pids, worker
                _signal(pids, signal.SIGCONT)
            time.sleep(0.3)
    raise AssertionError("no purge shard was running mid-way")


def _frozen_verify_shard(journal: Journal, workers: list[Any], timeout: float = 240) -> Victim:
    """A verify shard's flow run, caught Running with its processes stopped (SIGSTOP): each is
    stopped as soon as it appears and let run 20 ms at a time until the server has it Running."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = [r for r in _shard_runs(client, journal.system) if "verify" in r.name]
            for run in runs:
                if run.state is not None and run.state.is_final():
                    continue
                pids, worker = _flow_run_pids(run.id, workers)
                if not pids:
                    continue
                _signal(pids, signal.SIGSTOP)
                step = ShardParameters.model_validate(run.parameters["params"]).step
                while time.monotonic() < deadline:
                    state = client.read_flow_run(run.id).state
                    if state is not None and state.is_running():
                        if journal.fresh().get(step) is None:  # frozen before its result
                            return run, pids, worker
                        break  # it ran to its result in one 20 ms slice: it would complete
                    if state is not None and state.is_final():
                        break
                    _signal(pids, signal.SIGCONT)
                    time.sleep(0.02)
                    _signal(pids, signal.SIGSTOP)
                _signal(pids, signal.SIGCONT)
            time.sleep(0.05)
    raise AssertionError("no verify shard was caught running")


def _batches_done(journal: Journal, shard: ShardParameters) -> int:
    """How many of a purge shard's batches the journal records done."""
    return sum(1 for _ in journal.steps(f"purge-{shard.location:03d}-"))


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@dataclass
class Trial:
    system: BigSystem
    journal: Journal
    victim: Any
    listed: list[int]
    result: Any


def _trial(
    api: str,
    tmp_path: Path,
    sundown_home: Path,
    name: str,
    size: int,
    find_victim: Callable[[Journal, list[Any]], Victim],
    before_rerun: Callable[[BigSystem, Journal, Any], None],
) -> Trial:
    """Plan, approve and run a sharded retirement on two workers; kill the victim shard's
    processes and its worker; check the parent's verdict; re-run on the surviving worker."""
    from prefect.client.orchestration import get_client
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    system: BigSystem = make_big_system(tmp_path / "sys", name, COUNT)
    settings = ShardSettings(
        deployment="run-shard/shard",
        copies_per_shard=COUNT,
        account_limits="never",
        poll_seconds=1,
        heartbeat_seconds=30,  # as prefect.yaml sets it for the shard deployment
    )
    base: dict[str, Any] = {
        "spec_path": str(system.spec_path),
        "variables": system.variables,
        "batch_size": size,
    }
    env = {"SUNDOWN_HOME": str(sundown_home), "PREFECT_LOGGING_LEVEL": "INFO"}
    context = {PREFECT_API_URL: api, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    with temporary_settings(updates=context):
        plan = decommission_system(DecommissionParameters(**base, dry_run=True))
        listed = [loc.found for loc in plan.locations]  # the plain listing, before anything
        assert listed == [COUNT, COUNT]
        params = DecommissionParameters(**base, approve_digest=plan.plan_digest, approver=APPROVER)
        journal = Journal(
            registry.open_store((system.root / "evidence").as_uri()),
            system.name,
            plan.plan_digest,
            f"local://{system.name}-certificates",
        )
        workers = [start_worker(api, POOL, f"{name}-{n}", env, limit=2) for n in "ab"]
        try:
            outcome: dict[str, Any] = {}

            def parent() -> None:  # settings are per context: entered again in this thread
                try:
                    with temporary_settings(updates=context):
                        outcome["result"] = decommission_system(params, settings)
                except Exception as exc:  # the parent's verdict, read below
                    outcome["error"] = exc

            thread = threading.Thread(target=parent, name="retirement-parent")
            thread.start()
            victim, pids, worker = find_victim(journal, workers)
            _signal(pids, signal.SIGKILL)  # the shard's flow-run process ...
            os.killpg(worker.process.pid, signal.SIGKILL)  # ... and its worker
            killed_at = time.monotonic()
            thread.join(timeout=300)
            assert not thread.is_alive(), "the parent never gave up on the killed shard"
            silent = time.monotonic() - killed_at

            error = outcome.get("error")
            assert isinstance(error, SundownError), outcome
            assert f"{victim.name} (Crashed: no heartbeat" in str(error)
            # A shard that shared the killed worker dies with it: its process still logs to
            # the dead worker's pipe and exits at its next line (rich raises SystemExit on a
            # broken pipe), which Prefect records as Crashed. The parent names it among the
            # shards that did not complete; none is ever taken for done.
            with get_client(sync_client=True) as client:
                others = [r for r in _shard_runs(client, name) if r.id != victim.id]
            for run in others:
                assert run.state is not None and run.state.name in ("Completed", "Crashed")
                assert (run.state.name == "Crashed") == (run.name in str(error)), run.state
            assert silent >= 60  # it waited for missed heartbeats, not a guess
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(victim.id).state
            assert state is not None and state.name == "Crashed"
            # stopped before certifying
            assert journal.fresh().get("certified") is None
            assert not journal.exists("certificate.dsse.json")
            before_rerun(system, journal.fresh(), victim)

            # the re-run, on the surviving worker: resumes and certifies once
            result = decommission_system(params, settings)
        finally:
            stop_workers(workers)
    assert result.status == "complete", result.exceptions
    assert result.resumed
    assert [loc.purged for loc in result.locations] == listed
    assert system.files("logs") == 0 and system.files("data") == 0
    assert system.canaries_intact()
    fresh = journal.fresh()
    assert len(list(fresh.steps("purge-"))) == 2 * COUNT // size  # every batch journaled once
    evidence = registry.open_store((system.root / "evidence").as_uri())
    key = f"local://{system.name}-certificates"
    certified = [j for j in journals_of(evidence, system.name, key) if j.done("certified")]
    assert len(certified) == 1 and certified[0].exists("certificate.dsse.json")
    return Trial(system, fresh, victim, listed, result)


def test_a_worker_killed_mid_purge_shard_stops_the_parent_and_a_rerun_certifies_once(
    prefect_pg: tuple[str, Postgres], tmp_path: Path, sundown_home: Path
) -> None:
    api, pg = prefect_pg

    def before_rerun(system: BigSystem, journal: Journal, victim: Any) -> None:
        # stopped before the irreversible steps: no key destroyed either
        assert registry.open_key_service(f"local://{system.name}-kek").info() is not None
        assert journal.get("key-kek") is None
        assert system.files("logs") + system.files("data") > 0  # the killed shard's rest

    trial = _trial(api, tmp_path, sundown_home, "death-p", SIZE, _running_purge_shard, before_rerun)
    purges = [r.parse(ShardResult) for _, r in trial.journal.steps("shard-purge-")]
    assert len(purges) == 2  # one result per shard, the killed one's from the re-run
    # the PostgreSQL server holds the crashed shard run
    assert int(pg.psql("SELECT count(*) FROM flow_run WHERE state_name = 'Crashed'")) >= 1


def test_a_worker_killed_mid_verify_shard_stops_before_certifying_and_a_rerun_certifies_once(
    prefect_pg: tuple[str, Postgres], tmp_path: Path, sundown_home: Path
) -> None:
    api, pg = prefect_pg
    size = 60  # the purge is not what this trial is about: 4 batches per shard

    def before_rerun(system: BigSystem, journal: Journal, victim: Any) -> None:
        # killed mid-shard: its result was never journaled
        verifies = dict(journal.steps("shard-verify-"))
        location = 0 if "location 0" in victim.name else 1
        assert f"shard-verify-{location:03d}-000000" not in verifies
        assert journal.get("verified") is None
        # the purge and the key's destruction (proven gone by the verification) came before
        assert system.files("logs") == 0 and system.files("data") == 0
        assert journal.get("key-kek") is not None

    trial = _trial(api, tmp_path, sundown_home, "death-v", size, _frozen_verify_shard, before_rerun)
    verifies = [r.parse(ShardResult) for _, r in trial.journal.steps("shard-verify-")]
    assert sorted(v.location for v in verifies) == [0, 1]  # one each, the killed from the re-run
    assert all(v.verification is not None and v.verification.passed for v in verifies)
    assert all(v.verification.remaining == 0 for v in verifies if v.verification is not None)
    certified = trial.journal.get("certified")
    assert certified is not None and certified.data["status"] == "complete"
    crashed = pg.psql(f"SELECT name FROM flow_run WHERE state_name = 'Crashed' AND id = "
                      f"'{trial.victim.id}'")  # fmt: skip
    assert trial.victim.name in crashed
