"""Run ``decommission_system`` in a thread until it pauses for approval (the approval then comes
through the Prefect API, as an approver's in the UI would)."""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

from flows.decommission import decommission_system
from flows.models import DecommissionParameters


def newest_runs(client: Any) -> list[Any]:
    """The session server's newest flow runs (the default page would miss new ones once the
    session has made more runs than a page holds)."""
    from prefect.client.schemas.sorting import FlowRunSort

    return list(client.read_flow_runs(sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=50))


def start_in_thread(p: DecommissionParameters) -> tuple[threading.Thread, dict[str, Any]]:
    """Run the flow in a thread (it pauses); returns once its flow run exists, with
    ``out["id"]``; ``out["result"]`` or ``out["error"]`` once the thread ends."""
    from prefect.client.orchestration import get_client

    out: dict[str, Any] = {}
    with get_client(sync_client=True) as client:
        before = {r.id for r in newest_runs(client)}

    def target() -> None:
        try:
            out["result"] = decommission_system(p)
        except BaseException as exc:  # asserted on by the test
            out["error"] = exc

    # a new thread starts with empty context variables: carry this test's Prefect settings over
    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline and "id" not in out and "error" not in out:
            new = [r.id for r in newest_runs(client) if r.id not in before]
            if new:
                out["id"] = new[0]
            time.sleep(0.2)
    assert "id" in out, out.get("error")
    return thread, out


def wait_paused(flow_run_id: Any, out: dict[str, Any], timeout: float = 90) -> None:
    """Until the run is paused for approval (AssertionError naming the flow's error, if any)."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline and "error" not in out:
            state = client.read_flow_run(flow_run_id).state
            if state is not None and state.is_paused():
                return
            time.sleep(0.2)
    raise AssertionError(f"the flow run did not pause for approval: {out.get('error')!r}")


def approve(flow_run_id: Any, plan_digest: str, approver: str, role: str) -> None:
    """Resume a run paused for approval with the form an approver fills in the UI."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(
        flow_run_id, run_input={"plan_digest": plan_digest, "approver": approver, "role": role}
    )
