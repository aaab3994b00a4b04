"""Whether a dispatched shard is still alive, as its parent sees it (flows/shards.py).

A worker or a shard's flow-run process killed outright (SIGKILL, a lost machine, an evicted pod)
never reports a final state: its flow run stays Running on the server. The parent therefore
judges each running shard by two signals and treats it as crashed when either says so:

- **heartbeats**: a flow-run process sends a ``prefect.flow-run.heartbeat`` event every
  ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (prefect.yaml sets it for the shard deployment);
  none for ``misses`` periods since the last one (or since the run started) means the process
  is gone;
- **its own deadline**: ``ShardSettings.shard_deadline_seconds`` after dispatch.

A crashed shard's run is set Crashed on the server (so the UI and a re-run agree), and the parent
stops before destroying a key or certifying; a re-run resumes from the journal.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"


def last_heartbeat(client: Any, run_id: Any, since: datetime) -> datetime | None:
    """The time of the flow run's latest heartbeat event since ``since`` (None: none)."""
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    # Prefect's filters are typed for its own DateTime; a datetime is accepted
    start: Any = since
    until: Any = datetime.now(UTC) + timedelta(hours=1)
    found = client.read_events(
        filter=EventFilter(
            occurred=EventOccurredFilter(since=start, until=until),
            event=EventNameFilter(name=[HEARTBEAT_EVENT]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
        ),
        limit=50,
    )
    times = [e.occurred for e in found.events]
    return max(times) if times else None


def crashed_reason(
    client: Any,
    run: Any,
    dispatched_at: datetime,
    *,
    heartbeat_seconds: float | None,
    misses: int,
    deadline_seconds: float | None,
) -> str | None:
    """Why the parent takes a shard that has not ended for crashed, or None (alive)."""
    now = datetime.now(UTC)
    if deadline_seconds is not None and now - dispatched_at > timedelta(seconds=deadline_seconds):
        return f"not finished {deadline_seconds:g}s after dispatch (the parent's deadline)"
    if heartbeat_seconds is None or run.state is None or not run.state.is_running():
        return None
    started = run.start_time or dispatched_at
    beat = last_heartbeat(client, run.id, started - timedelta(seconds=1))
    last = max(beat, started) if beat is not None else started
    silent = (now - last).total_seconds()
    if silent > misses * heartbeat_seconds:
        return (
            f"no heartbeat for {silent:.0f}s ({misses} x {heartbeat_seconds:g}s): its process "
            "is gone"
        )
    return None


def mark_crashed(client: Any, run_id: Any, reason: str) -> None:
    """Set the run Crashed on the server (forced: its own process can no longer do it)."""
    from prefect.states import Crashed

    client.set_flow_run_state(run_id, Crashed(message=f"Sundown: {reason}"), force=True)
