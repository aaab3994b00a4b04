"""Run where users run it: a Prefect server on PostgreSQL, a process work pool with two workers,
the deployments of prefect.yaml (`prefect deploy --all`), and a retirement large enough for
several shards. Both workers must run shards, the certificate must verify, nothing outside the
spec may change, and the server's state must really be in PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flows.decommission import decommission_system
from flows.journal import Journal
from flows.models import DecommissionParameters
from flows.shards import ShardResult
from sundown import registry
from sundown.certificate import verify_certificate
from tests.fixtures.postgres import Postgres
from tests.fixtures.process import ROOT
from tests.scale.servers import workers
from tests.scale.systems import make_big_system

pytestmark = pytest.mark.slow

POOL = "sundown"  # the work pool prefect.yaml names
COUNT = 1200  # per location; batches of 100, shards of 300 copies: 4 purge shards per location
SIZE = 100


def _wait_final(api_url: str, flow_run_id: Any, timeout: float) -> Any:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            time.sleep(1)
    raise AssertionError(f"flow run {flow_run_id} did not end in {timeout}s")


def test_two_workers_share_the_shards_of_one_retirement(
    prefect_pg: tuple[str, Postgres], tmp_path: Path, sundown_home: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterName,
    )
    from prefect.deployments import run_deployment
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    api, postgres = prefect_pg  # shared with test_worker_death.py (tests/scale/conftest.py)
    system = make_big_system(tmp_path / "sys", "scale-a", COUNT)
    variables = ["--var", f"ROOT={system.root}"]
    # the per-account limit of the file store, made by the documented command
    made = _python_module(api, "flows.shards", "create-limits", str(system.spec_path), "--limit",
                          "2", *variables)  # fmt: skip
    assert made.strip() == "sundown-file-local: created"

    with temporary_settings(
        updates={PREFECT_API_URL: api, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    ):
        params = {"spec_path": str(system.spec_path), "variables": system.variables}
        plan = decommission_system(DecommissionParameters(**params, dry_run=True))
        env = {"SUNDOWN_HOME": str(sundown_home), "PREFECT_LOGGING_LEVEL": "INFO"}
        names = ["worker-a", "worker-b"]
        with workers(api, POOL, names, env, limit=2) as started:
            run = run_deployment(
                "decommission-system/decommission",
                parameters={
                    "params": {
                        **params,
                        "batch_size": SIZE,
                        "approve_digest": plan.plan_digest,
                        "approver": {"name": "Lee Marchetti", "role": "security-officer"},
                    },
                    "shards": {
                        "deployment": "run-shard/shard",
                        "copies_per_shard": 300,
                        "poll_seconds": 1,
                    },
                },
                timeout=0,
            )
            final = _wait_final(api, run.id, timeout=200)
            worker_pids = {n: w.process.pid for n, w in zip(names, started, strict=True)}
        assert final.state.is_completed(), final.state.message

        with get_client(sync_client=True) as client:
            shard_runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["shard"])),
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=f"{system.name}:")),
            )  # this retirement's shards (the server is shared with other tests)
    # 8 purge shards (4 per location) and 2 verify shards, each a child of the retirement
    assert len(shard_runs) == 10
    assert all(r.state is not None and r.state.is_completed() for r in shard_runs)
    assert all(r.parent_task_run_id is not None for r in shard_runs)

    journal = Journal(
        registry.open_store((system.root / "evidence").as_uri()),
        system.name,
        plan.plan_digest,
        f"local://{system.name}-certificates",
    )
    results = [r.parse(ShardResult) for _, r in journal.steps("shard-")]
    assert len(results) == 10
    ran_on = {r.parent_pid for r in results}
    assert ran_on == set(worker_pids.values()), (ran_on, worker_pids)  # both workers took shards
    purges = [r for r in results if r.operation == "purge"]
    assert sum(r.purged.versions for r in purges) == 2 * COUNT
    assert sum(r.batches_purged for r in purges) == 2 * COUNT // SIZE  # each batch once

    certified = journal.get("certified")
    assert certified is not None and certified.data["status"] == "complete"
    cert = verify_certificate(
        journal.read_file("certificate.dsse.json") or b"",
        registry.open_signer(f"local://{system.name}-certificates").public_key_pem(),
    ).certificate
    assert cert.plan_digest == plan.plan_digest
    assert [loc.purged.versions for loc in cert.locations] == [COUNT, COUNT]
    assert all(loc.verification.result.value == "passed" for loc in cert.locations)
    assert system.files("logs") == 0 and system.files("data") == 0
    assert system.canaries_intact()

    # the server's state is in PostgreSQL: the retirement and its 10 shards are rows there
    assert int(postgres.psql("SELECT count(*) FROM flow_run")) >= 12  # dry run, parent, shards
    stored = postgres.psql("SELECT name FROM deployment ORDER BY name").split()
    assert {"decommission", "shard", "retention"} <= set(stored)
    print(json.dumps({"shards per worker": _per_worker(results, worker_pids)}))


def _per_worker(results: list[ShardResult], pids: dict[str, int]) -> dict[str, int]:
    by_pid = {pid: name for name, pid in pids.items()}
    out: dict[str, int] = {}
    for r in results:
        out[by_pid[r.parent_pid]] = out.get(by_pid[r.parent_pid], 0) + 1
    return out


def _python_module(api: str, module: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PREFECT_API_URL": api},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout
