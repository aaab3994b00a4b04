"""`sundown serve` against a real Prefect server: trigger decommission_system through the API,
approve it with resume_flow_run and the plan digest from the plan artifact, read back the
certificate artifact; a wrong digest is refused and nothing is deleted."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sundown import registry
from tests.fixtures.process import free_port, running, start_server
from tests.flows.paused import approve
from tests.flows.systems import System, make_system

ROOT = Path(__file__).resolve().parents[2]


DEPLOYMENTS = (
    "decommission-system/decommission",
    "deploy-model/deploy",
    "rotate-credentials/rotate",
    "revoke-credentials/revoke",
    "retention-sweep/retention",
    "run-shard/shard",
)


def _deployments_ready() -> bool:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for name in DEPLOYMENTS:
            client.read_deployment_by_name(name)
    return True


def _wait_state(flow_run_id: Any, done: Any, timeout: float = 180) -> Any:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and done(run.state):
                return run.state
            time.sleep(0.5)
    raise AssertionError(f"flow run {flow_run_id} did not reach the state in {timeout}s")


def _artifact(key: str, flow_run_id: Any) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    assert found, f"no artifact {key} for flow run {flow_run_id}"
    return str(found[-1].data)


@pytest.fixture
def served(prefect_api: str, sundown_home: Path) -> Any:
    port = free_port()  # not used by serve; names the log file
    server = start_server(
        "sundown-serve",
        [sys.executable, "-m", "cli", "serve"],
        port,
        env={"PREFECT_API_URL": prefect_api, "SUNDOWN_HOME": str(sundown_home)},
        ready=_deployments_ready,
        timeout=120,
        cwd=ROOT,
    )
    with running(server):
        yield server


def _trigger(system: System) -> Any:
    from prefect.deployments import run_deployment

    run = run_deployment(
        "decommission-system/decommission",
        parameters={"params": {"spec_path": str(system.spec_path), "variables": system.variables}},
        timeout=0,
    )
    _wait_state(run.id, lambda s: s.is_paused())
    return run


def test_serve_trigger_approve_and_read_certificate(served: Any, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    # every flow is a deployment (the fixture waited for all five); retention has its schedule
    with get_client(sync_client=True) as client:
        retention = client.read_deployment_by_name("retention-sweep/retention")
    assert [s.schedule.cron for s in retention.schedules] == ["0 3 * * *"]  # type: ignore[union-attr]

    system = make_system(tmp_path / "sys")
    run = _trigger(system)
    plan = _artifact("plan-sys-a", run.id)
    digest = re.search(r"Plan digest: `(sha256:[0-9a-f]{64})`", plan)
    assert digest, plan
    assert len(system.files("models/sys-a")) == 4  # paused: nothing touched
    approve(run.id, digest[1], "Lee", "security-officer")
    state = _wait_state(run.id, lambda s: s.is_final())
    assert state.is_completed(), state.message
    certificate = _artifact("decommission-certificate-sys-a", run.id)
    assert "**Status: COMPLETE.**" in certificate and "certificate.dsse.json" in certificate
    path = re.search(
        r"sundown certificate verify (\S+) --fingerprint sha256:[0-9a-f]{64}`", certificate
    )
    assert re.search(r"Ledger head after recording it: `\d+:sha256:[0-9a-f]{64}`", certificate)
    assert re.search(r"Ledger head after recording this certificate: `\d+:sha256:", certificate)
    assert path and Path(path[1]).exists()
    assert system.files("models/sys-a") == [] and system.canaries_intact()


def test_serve_refuses_a_wrong_digest(served: Any, tmp_path: Path) -> None:
    system = make_system(tmp_path / "sys")
    run = _trigger(system)
    approve(run.id, "sha256:" + "5" * 64, "X", "security-officer")
    state = _wait_state(run.id, lambda s: s.is_final())
    assert state.is_failed()
    assert "approval names plan digest" in str(state.message)
    assert len(system.files("models/sys-a")) == 4
    registry.open_key_service("local://sys-a-kek").info()
    assert system.canaries_intact()


def test_prefect_yaml_declares_the_served_deployments() -> None:
    """prefect.yaml names the same five deployments, each entrypoint a flow of flows/, and the
    daily retention schedule."""
    import importlib

    import yaml
    from prefect import Flow

    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    declared = {}
    for d in config["deployments"]:
        path, _, attr = d["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, attr)
        assert isinstance(flow, Flow)
        declared[f"{flow.name}/{d['name']}"] = d
        assert d["work_pool"]["name"] == "sundown"
    assert set(declared) == set(DEPLOYMENTS)
    assert declared["retention-sweep/retention"]["schedules"][0]["cron"] == "0 3 * * *"
