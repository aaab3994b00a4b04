"""Worker death in the middle of a purge shard, on the PostgreSQL-backed Prefect server with two
process workers and the deployments of prefect.yaml (its shard deployment sends flow-run
heartbeats every 30 s). The retirement's parent runs here and dispatches its shards to the pool;
the worker running a purge shard and that shard's flow-run process are SIGKILLed mid-shard. The
parent must take the shard for crashed from its silence (no heartbeat for 3 periods: about 90 s,
which is what this trial costs), set it Crashed, and stop before destroying a key or certifying;
a re-run on the surviving worker completes with exactly one certificate, the purged counts equal
to a plain listing made before, and every canary intact.

Kept small (two locations of 240 files, one purge shard each) and sharing one PostgreSQL and one
Prefect server for the module, so that it runs with the normal suite."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.decommission import decommission_system
from flows.journal import Journal, journals_of
from flows.models import DecommissionParameters, Party
from flows.shards import ShardResult, ShardSettings
from sundown import registry
from sundown.errors import SundownError
from tests.fixtures.postgres import Postgres, start_postgres
from tests.fixtures.prefect import start_prefect_server
from tests.scale.servers import prefect_cli, start_worker, stop_workers
from tests.scale.systems import BigSystem, make_big_system

POOL = "sundown"
COUNT = 240  # per location
SIZE = 4  # 60 batches per shard: a shard lasts long enough to be killed in the middle
APPROVER = Party(name="Lee Marchetti", role="security-officer")


@pytest.fixture(scope="module")
def prefect_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Postgres]]:
    pg = start_postgres()
    server = None
    try:
        server = start_prefect_server(
            tmp_path_factory.mktemp("death-prefect"), pg.url, name="prefect-death"
        )
        api = f"{server.url}/api"
        prefect_cli(api, "work-pool", "create", POOL, "--type", "process")
        prefect_cli(api, "deploy", "--all")
        yield api, pg
    finally:
        if server is not None:
            server.stop()
        pg.stop()


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


def _flow_run_pid(run_id: Any, workers: list[Any]) -> tuple[int, Any]:
    """(the process running flow run ``run_id``, the worker that started it), found by the
    flow run id in the environment of each worker's descendants."""
    needle = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    for worker in workers:
        for pid in _descendants(worker.process.pid):
            with contextlib.suppress(OSError):
                if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    return pid, worker
    raise AssertionError(f"no process of flow run {run_id} under the workers")


def _running_purge_shard(api: str, journal: Journal, timeout: float = 120) -> Any:
    """A purge shard's flow run once it has journaled a few batches (mid-shard)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            done = {name for name, _ in journal.fresh().steps("purge-")}
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["shard"]))
            )
            running = [r for r in runs if r.state is not None and r.state.is_running()]
            if len(done) >= 3 and running:
                return running[0]
            time.sleep(0.3)
    raise AssertionError("no purge shard was running mid-way")


def test_a_worker_killed_mid_purge_shard_stops_the_parent_and_a_rerun_certifies_once(
    prefect_pg: tuple[str, Postgres], tmp_path: Path, sundown_home: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    api, pg = prefect_pg
    system: BigSystem = make_big_system(tmp_path / "sys", "death-p", COUNT)
    kek = f"local://{system.name}-kek"
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
        "batch_size": SIZE,
    }
    env = {"SUNDOWN_HOME": str(sundown_home), "PREFECT_LOGGING_LEVEL": "INFO"}
    with temporary_settings(
        updates={PREFECT_API_URL: api, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
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
        workers = [start_worker(api, POOL, n, env, limit=2) for n in ("death-a", "death-b")]
        try:
            outcome: dict[str, Any] = {}

            def parent() -> None:  # settings are per context: entered again in this thread
                try:
                    with temporary_settings(
                        updates={PREFECT_API_URL: api, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
                    ):
                        outcome["result"] = decommission_system(params, settings)
                except Exception as exc:  # the parent's verdict, read below
                    outcome["error"] = exc

            thread = threading.Thread(target=parent, name="retirement-parent")
            thread.start()
            victim_run = _running_purge_shard(api, journal)
            pid, worker = _flow_run_pid(victim_run.id, workers)
            os.kill(pid, signal.SIGKILL)  # the shard's flow-run process ...
            os.killpg(worker.process.pid, signal.SIGKILL)  # ... and its worker
            killed_at = time.monotonic()
            thread.join(timeout=300)
            assert not thread.is_alive(), "the parent never gave up on the killed shard"
            silent = time.monotonic() - killed_at

            error = outcome.get("error")
            assert isinstance(error, SundownError), outcome
            assert "Crashed" in str(error) and "no heartbeat" in str(error)
            assert silent >= 60  # it waited for missed heartbeats, not a guess
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(victim_run.id).state
            assert state is not None and state.name == "Crashed"
            # stopped before the irreversible steps: no key destroyed, nothing certified
            assert journal.fresh().get("certified") is None
            assert not journal.exists("certificate.dsse.json")
            assert registry.open_key_service(kek).info() is not None
            assert system.files("logs") + system.files("data") > 0  # the killed shard's rest

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
    purges = [r.parse(ShardResult) for _, r in fresh.steps("shard-purge-")]
    assert len(purges) == 2  # one result per shard, the killed one's from the re-run
    assert len(list(fresh.steps("purge-"))) == 2 * COUNT // SIZE  # every batch journaled once
    evidence = registry.open_store((system.root / "evidence").as_uri())
    key = f"local://{system.name}-certificates"
    certified = [j for j in journals_of(evidence, system.name, key) if j.done("certified")]
    assert len(certified) == 1 and certified[0].exists("certificate.dsse.json")
    # the PostgreSQL server holds the crashed shard run
    assert int(pg.psql("SELECT count(*) FROM flow_run WHERE state_name = 'Crashed'")) >= 1
