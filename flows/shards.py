"""Shards: a large retirement's purge and verification split into child flow runs.

A shard is a contiguous range of purge batches of one location (``copies_per_shard`` copies at
most), or the full re-listing of one location. The parent flow (``decommission_system``) makes
the shards from the approved plan and runs each as a child flow run of :func:`run_shard`:

- with a shard deployment (``ShardSettings.deployment``, e.g. ``run-shard/shard`` from
  ``prefect.yaml``) through :func:`prefect.deployments.run_deployment`, so that every worker of
  the deployment's work pool, on any machine, takes shards; the parent waits for all of them;
- without one, as in-process subflows, one after another.

The journal (:mod:`flows.journal`) stays the only record of what was done: a shard reads the
approved plan from the evidence location (digest-checked), skips every batch the journal records
and journals each batch it purges, create-only. Its typed :class:`ShardResult` is journaled too
(``shard-purge-L-FFFFFF``, ``shard-verify-L-000000``), signed like every record, and the parent
gathers the results from the journal (verified), so a shard that crashed, was retried, or ran
twice never repeats a completed batch and the certificate is built from the journal exactly as
without shards. A shard verifies every record with the key its parameters name (the spec's
certificate key) and works only for a plan with an approval record.

Concurrency on each cloud account is bounded by a Prefect global concurrency limit named
``sundown-<scheme>-<account>`` (:func:`limit_name`): every purge batch holds one slot. Limits are
used strictly: a missing limit is an error before the approval is asked, never a silent pass.
Create them once per account with ``prefect gcl create NAME --limit N`` (or
``python -m flows.shards create-limits SPEC --limit N``, which names the limits a spec needs).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, Field

from sundown import registry
from sundown.errors import InputError, IntegrityError, SundownError
from sundown.plan import Plan, read_plan
from sundown.store import ObjectStore

from . import _execute, _steps, liveness
from ._common import work_dir
from .evidence import CopyCounts, VerifyOutcome
from .journal import APPROVED, Journal
from .lease import check_held
from .ranges import check_cover, location_ranges, merge

SHARD_FLOW = "run-shard"
SHARD_DEPLOYMENT = f"{SHARD_FLOW}/shard"
LIMIT_PREFIX = "sundown-"

Operation = Literal["purge", "verify"]


def _ranges_per_location(step: str, description: str) -> Any:
    return Field(
        default=1, ge=1, le=1000, title=f"Key ranges per location at {step}",
        description=description,
    )  # fmt: skip


class ShardSettings(BaseModel):
    """How the purge and the verification are split into shards, and where the shards run
    (defaults fit most retirements)."""

    model_config = ConfigDict(extra="forbid")

    deployment: str | None = Field(
        default=None,
        title="Shard deployment",
        description="Run each shard as a flow run of this deployment (e.g. run-shard/shard), "
        "so that every worker of its work pool shares the purge and the verification. "
        "Empty: the shards run one after another inside this flow run.",
    )
    copies_per_shard: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        title="Copies per shard",
        description="At most this many copies (object versions, delete markers, ...) per purge "
        "shard, rounded to whole purge batches.",
    )
    account_limits: Literal["auto", "always", "never"] = Field(
        default="auto",
        title="Bound concurrency per cloud account",
        description="Every purge batch holds a slot of the Prefect global concurrency limit "
        "'sundown-<scheme>-<account>', which must exist ('prefect gcl create NAME --limit N'). "
        "auto: when a shard deployment is given.",
    )
    verify_ranges: int = _ranges_per_location(
        "verification",
        "Re-list each location in this many key ranges, each its own shard, with bounds "
        "sampled from the approved plan's keys (flows/ranges.py). 1: one shard re-lists the "
        "whole location.",
    )
    inventory_ranges: int = _ranges_per_location(
        "planning",
        "List each S3 or GCS location in at most this many key ranges side by side, bounds "
        "from a delimiter walk (flows/plan_ranges.py); the plan and its digest are those of a "
        "plain listing. 1: one listing.",
    )
    heartbeat_seconds: float | None = Field(
        default=30,
        ge=30,
        title="Shard heartbeat period (seconds)",
        description="The shard deployment's PREFECT_FLOWS_HEARTBEAT_FREQUENCY (prefect.yaml "
        "sets 30). A running shard with no heartbeat for 3 periods is taken as crashed. "
        "Empty: heartbeats are not watched.",
    )
    shard_deadline_seconds: float | None = Field(
        default=None,
        gt=0,
        title="Shard deadline (seconds)",
        description="A shard not finished this long after dispatch is taken as crashed. Empty: "
        "no deadline.",
    )
    poll_seconds: float = Field(
        default=2.0,
        ge=0.2,
        le=60,
        title="Poll interval (seconds)",
        description="How often the parent checks its shard flow runs.",
    )

    def limits_on(self) -> bool:
        if self.account_limits == "auto":
            return bool(self.deployment)
        return self.account_limits == "always"


NO_SHARD_DEPLOYMENT = ShardSettings()  # the default: shards run in the parent's process


class ShardParameters(BaseModel):
    """One shard's work: purge batches ``first_batch``..``last_batch - 1`` of one location of an
    approved plan, or re-list one location (verify)."""

    model_config = ConfigDict(extra="forbid")

    operation: Operation
    evidence_url: str = Field(description="The evidence location holding the journal.")
    certificate_key: str = Field(
        description="The spec's certificate key (keys.certificate): every journal record the "
        "shard reads must be signed by it, and it signs the records the shard writes."
    )
    system: str
    plan_digest: str
    location: int = Field(ge=0)
    batch_size: int = Field(ge=1, le=1000)
    first_batch: int = Field(default=0, ge=0)
    last_batch: int = Field(default=0, ge=0, description="Exclusive.")
    concurrency_limit: str | None = None
    plan_path: str | None = Field(
        default=None, description="A local copy of the plan, if this machine has one."
    )
    lease_run: str | None = Field(
        default=None,
        description="The run holding the retirement's lease (flows/lease.py): a purge shard "
        "checks before each batch that it still does.",
    )
    key_range: tuple[str | None, str | None] | None = Field(
        default=None,
        description="verify: only the keys k with after < k <= through (None: the whole "
        "location); first_batch numbers the range.",
    )

    @property
    def step(self) -> str:
        return f"shard-{self.operation}-{self.location:03d}-{self.first_batch:06d}"

    @property
    def title(self) -> str:
        if self.operation == "verify" and self.key_range is not None:
            return f"{self.system}: verify location {self.location} range {self.first_batch + 1}"
        if self.operation == "verify":
            return f"{self.system}: verify location {self.location}"
        return (
            f"{self.system}: purge location {self.location} "
            f"batches {self.first_batch}-{self.last_batch - 1}"
        )


class ShardResult(BaseModel):
    """What one shard did, and where it ran."""

    operation: Operation
    location: int
    url: str
    first_batch: int
    last_batch: int
    batches_purged: int = 0
    batches_skipped: int = Field(default=0, description="Found done in the journal.")
    purged: CopyCounts = Field(default_factory=CopyCounts)
    held: int = 0
    failed: int = 0
    requests: int = 0
    verification: VerifyOutcome | None = None
    key_range: tuple[str | None, str | None] | None = None
    host: str
    pid: int
    parent_pid: int = Field(description="The worker (or serving) process that started it.")
    flow_run_id: str | None = None
    started_at: datetime
    finished_at: datetime


# --------------------------------------------------------------------------------------------
# Accounts and their limits


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")


def limit_name(url: str) -> str:
    """The Prefect global concurrency limit that bounds purge batches on ``url``'s account."""
    return (LIMIT_PREFIX + _slug(registry.account_of(url)))[:100]


def missing_limits(names: Sequence[str]) -> list[str]:
    """The names among ``names`` that have no global concurrency limit on the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    missing = []
    with get_client(sync_client=True) as client:
        for name in sorted(set(names)):
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                missing.append(name)
    return missing


def preflight(plan: Plan, settings: ShardSettings) -> None:
    """Before any approval: the shard deployment exists, and so does each account's limit
    (InputError naming the command that makes what is missing)."""
    if settings.deployment:
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name(settings.deployment)
            except ObjectNotFound:
                raise InputError(
                    f"shard deployment {settings.deployment!r} does not exist on the Prefect "
                    "server: deploy it ('prefect deploy --all' with prefect.yaml, or "
                    "'sundown serve'), or leave the shard deployment empty"
                ) from None
    if not settings.limits_on():
        return
    missing = missing_limits([limit_name(loc.url) for loc in plan.locations])
    if missing:
        commands = "; ".join(f"prefect gcl create {name} --limit 4" for name in missing)
        raise InputError(
            "concurrency per cloud account is bounded by Prefect global concurrency limits, and "
            f"{len(missing)} do not exist: {', '.join(missing)}. Create them first ({commands}), "
            "or turn account limits off in the shard settings"
        )


def create_limits(names: Sequence[str], limit: int) -> list[str]:
    """Create each named global concurrency limit that does not exist yet; returns those made."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    made = []
    missing = missing_limits(names)
    with get_client(sync_client=True) as client:
        for name in missing:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=limit)
            )
            made.append(name)
    return made


# --------------------------------------------------------------------------------------------
# The parent's side: make the shards, run them, gather their results from the journal


def purge_shards(
    plan: Plan,
    journal: Journal,
    evidence_url: str,
    size: int,
    settings: ShardSettings,
    *,
    lease_run: str | None = None,
) -> list[ShardParameters]:
    per_shard = max(1, settings.copies_per_shard // size)
    out = []
    for loc in plan.locations:
        count = _execute.batch_count(plan, loc.index, size)
        for first in range(0, count, per_shard):
            out.append(
                _shard(
                    "purge",
                    plan,
                    journal,
                    evidence_url,
                    loc.index,
                    size,
                    first_batch=first,
                    last_batch=min(count, first + per_shard),
                    concurrency_limit=limit_name(loc.url) if settings.limits_on() else None,
                    lease_run=lease_run,
                )
            )
    return out


def _shard(
    operation: Operation,
    plan: Plan,
    journal: Journal,
    evidence_url: str,
    location: int,
    size: int,
    **fields: object,
) -> ShardParameters:
    return ShardParameters.model_validate(
        {
            "operation": operation,
            "evidence_url": evidence_url,
            "certificate_key": journal.signing_key,
            "system": plan.system,
            "plan_digest": plan.digest,
            "location": location,
            "batch_size": size,
            "plan_path": plan.path,
            **fields,
        }
    )


def verify_shards(
    plan: Plan, journal: Journal, evidence_url: str, size: int, ranges: int = 1
) -> list[ShardParameters]:
    """One shard per location, or per key range of a location (``ranges`` > 1)."""
    out = []
    for loc in plan.locations:
        split: list[tuple[str | None, str | None] | None] = [None]
        if ranges > 1:
            split = [(r.after, r.through) for r in location_ranges(plan, loc.index, ranges)]
        for i, key_range in enumerate(split):
            out.append(
                _shard(
                    "verify",
                    plan,
                    journal,
                    evidence_url,
                    loc.index,
                    size,
                    first_batch=i,
                    key_range=key_range,
                )
            )
    return out


def verified_locations(
    plan: Plan, shards: list[ShardParameters], results: list[ShardResult]
) -> list[VerifyOutcome]:
    """Each location's verification, its key ranges' outcomes merged once the journaled ranges
    are checked to be the ones asked for and to cover every key (flows/ranges.py)."""
    out = []
    for loc in plan.locations:
        mine = [(s, r) for s, r in zip(shards, results, strict=True) if s.location == loc.index]
        outcomes = [r.verification for _, r in mine if r.verification is not None]
        if len(outcomes) != len(mine) or not mine:
            raise IntegrityError(f"{loc.url}: a verify shard recorded no verification")
        check_cover(loc.url, [s.key_range for s, _ in mine], [r.key_range for _, r in mine])
        out.append(merge(outcomes))
    return out


def run_shards(
    shards: list[ShardParameters],
    journal: Journal,
    settings: ShardSettings,
    on_done: Callable[[ShardParameters], None] | None = None,
) -> list[ShardResult]:
    """Run every shard not yet journaled as done; return every shard's result, from the journal
    (SundownError naming the shards that failed, once all have ended)."""
    todo = [s for s in shards if not journal.done(s.step)]
    for s in shards:
        if s not in todo and on_done is not None:
            on_done(s)
    if todo and settings.deployment:
        _dispatch(todo, settings, on_done)
    elif len(todo) == 1:
        # One shard in this process: its work runs inside the parent's flow run, no child flow
        # run (a child flow run's creation, states and logs are the larger part of a small
        # retirement's fixed Prefect cost; docs/decisions.md). The journal records it the same.
        run_shard.fn(todo[0])
        if on_done is not None:
            on_done(todo[0])
    else:
        for s in todo:
            run_shard.with_options(flow_run_name=s.title)(s)
            if on_done is not None:
                on_done(s)
    fresh = journal.fresh()
    results = []
    for s in shards:
        record = fresh.get(s.step)
        if record is None:
            raise IntegrityError(f"shard {s.title!r} ended without a journal record")
        results.append(record.parse(ShardResult))
    return results


def _dispatch(
    shards: list[ShardParameters],
    settings: ShardSettings,
    on_done: Callable[[ShardParameters], None] | None,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    assert settings.deployment is not None
    log = get_run_logger()
    runs: dict[UUID, ShardParameters] = {}
    dispatched_at = datetime.now(UTC)
    for s in shards:
        run = run_deployment(
            settings.deployment,
            parameters={"params": s.model_dump(mode="json")},
            flow_run_name=s.title,
            timeout=0,
            as_subflow=True,
        )
        assert isinstance(run, FlowRun)  # the sync call in a sync flow
        runs[run.id] = s
    log.info("dispatched %d shard(s) to deployment %s", len(runs), settings.deployment)
    failed: list[str] = []
    pending = set(runs)
    with get_client(sync_client=True) as client:
        while pending:
            time.sleep(settings.poll_seconds)
            found = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(pending)))
            )
            for run in found:
                if run.state is None or not run.state.is_final():
                    why = liveness.crashed_reason(
                        client,
                        run,
                        dispatched_at,
                        heartbeat_seconds=settings.heartbeat_seconds,
                        misses=3,
                        deadline_seconds=settings.shard_deadline_seconds,
                    )
                    if why is not None:  # killed outright: it will never report an end
                        liveness.mark_crashed(client, run.id, why)
                        pending.discard(run.id)
                        failed.append(f"{runs[run.id].title} (Crashed: {why})")
                    continue
                pending.discard(run.id)
                s = runs[run.id]
                if not run.state.is_completed():
                    failed.append(f"{s.title} ({run.state.name}: {run.state.message})")
                elif on_done is not None:
                    on_done(s)
    if failed:
        raise SundownError(
            f"{len(failed)} of {len(runs)} shard(s) did not complete: " + "; ".join(failed)
            + ". Completed batches are journaled: re-run the retirement to resume it."
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# The child: one shard


def _plan(params: ShardParameters, journal: Journal) -> Plan:
    """The approved plan, from a local copy when this machine has one, else from the journal
    (written atomically: several shards on one machine may fetch it at once); digest-checked."""
    if params.plan_path and Path(params.plan_path).is_file():
        return read_plan(params.plan_path, params.plan_digest)
    path = work_dir("plans", params.system) / f"{params.plan_digest.removeprefix('sha256:')}.jsonl"
    if not path.is_file():
        data = journal.read_file("plan.jsonl")
        if data is None:
            raise InputError(f"the journal of plan {params.plan_digest} has no plan file")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return read_plan(path, params.plan_digest)


def _held_ids(plan: Plan, journal: Journal, loc: int) -> list[tuple[str, str | None, str]]:
    """Copies that may remain at a location: held by the plan, or refused by the store."""
    ids = [
        (e.key, e.version_id, e.kind.value)
        for e in _steps.iter_plan_entries(plan.path, plan.digest, location=loc)
        if e.disposition == "held"
    ]
    for outcome in _execute.outcomes(journal, "purge", loc):
        ids += [(c.key, c.version_id, c.kind) for c in outcome.held]
    return ids


def _lease_guard(store: ObjectStore, params: ShardParameters) -> Callable[[str], None] | None:
    run = params.lease_run
    if run is None:
        return None
    return lambda before: check_held(store, params.system, run, before)


@flow(
    name=SHARD_FLOW,
    description="One shard of a retirement: purge a range of batches of one location of an "
    "approved plan, or re-list one location to verify it. Started by decommission-system; "
    "every batch is journaled, so a re-run skips what is done.",
    persist_result=False,
    validate_parameters=True,
)
def run_shard(params: ShardParameters) -> ShardResult:
    from prefect.runtime import flow_run

    started = datetime.now(UTC)
    journal = Journal(
        registry.open_store(params.evidence_url),
        params.system,
        params.plan_digest,
        params.certificate_key,
    )
    # Reading verifies every record (signature, plan, step); a shard acts only for an approved
    # plan, whose approval record its parent wrote and re-derived against the spec.
    if not journal.done(APPROVED):
        raise IntegrityError(
            f"plan {params.plan_digest} of {params.system!r} has no approval record: a shard "
            "purges or verifies only an approved plan; nothing was changed"
        )
    recorded = journal.get(params.step)
    if recorded is not None:  # ran to the end before (a retried parent): same result
        return recorded.parse(ShardResult)
    plan = _plan(params, journal)
    if params.location >= len(plan.locations):
        raise InputError(f"plan {plan.digest} has no location {params.location}")
    url = plan.locations[params.location].url
    result = ShardResult(
        operation=params.operation,
        location=params.location,
        url=url,
        first_batch=params.first_batch,
        last_batch=params.last_batch,
        host=socket.gethostname(),
        pid=os.getpid(),
        parent_pid=os.getppid(),
        flow_run_id=flow_run.get_id(),
        started_at=started,
        finished_at=started,
    )
    if params.operation == "purge":
        outcomes, skipped = _execute.purge_range(
            plan,
            journal,
            params.location,
            params.batch_size,
            params.first_batch,
            params.last_batch,
            limit=params.concurrency_limit,
            guard=_lease_guard(journal.store, params),
        )
        result.batches_purged, result.batches_skipped = len(outcomes), skipped
        for o in outcomes:
            result.purged.merge(o.done)
            result.held += len(o.held)
            result.failed += len(o.failed)
            result.requests += o.requests
        if len(outcomes) + skipped != params.last_batch - params.first_batch:
            raise IntegrityError(
                f"{params.title}: the plan has {len(outcomes) + skipped} of these batches"
            )
    else:
        result.key_range = params.key_range
        result.verification = _steps.verify_location(
            url,
            _held_ids(plan, journal, params.location),
            plan.locations[params.location].settings,  # the window the certificate states
            params.key_range,
        )
    result.finished_at = datetime.now(UTC)
    get_run_logger().info(
        "%s: %d batch(es) purged, %d already done (pid %d on %s)",
        params.title,
        result.batches_purged,
        result.batches_skipped,
        result.pid,
        result.host,
    )
    record = journal.record(params.step, result.model_dump(mode="json"))
    return record.parse(ShardResult)


# --------------------------------------------------------------------------------------------
# python -m flows.shards create-limits SPEC --limit N


def main(argv: Sequence[str] | None = None) -> int:
    from ._common import load_system
    from .models import SpecSource

    parser = argparse.ArgumentParser(
        prog="python -m flows.shards",
        description="Create the Prefect global concurrency limits that bound purge batches per "
        "cloud account for a system's locations (names as this environment's configuration "
        "gives them; run it with the workers' environment).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-limits", help="create the missing limits of a spec")
    create.add_argument("spec", help="the system spec (YAML)")
    create.add_argument("--limit", type=int, default=4, help="slots per account (default 4)")
    create.add_argument("--var", action="append", default=[], help="NAME=VALUE for the spec")
    args = parser.parse_args(argv)
    variables = dict(v.split("=", 1) for v in args.var)
    spec = load_system(SpecSource(spec_path=args.spec, variables=variables))
    from sundown.plan import plan_locations

    names = sorted({limit_name(ref.url) for ref in plan_locations(spec)})
    made = create_limits(names, args.limit)
    for name in names:
        print(f"{name}: {'created' if name in made else 'exists'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
