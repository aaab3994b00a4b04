"""Record-store locations in a retirement (docs/records.md, "In a retirement"): inventory
into the plan, purge of exactly the planned records, compaction, verification by re-query.

Generic over every record store the registry opens (``registry.open_record_store``): nothing
here names a scheme. Each step is journaled per location (``records-R-purged``,
``records-R-compacted``), so a re-run after a crash skips what is recorded; a purge that
crashed before its record re-runs, and the connector reports the records an earlier attempt
deleted as already gone (``absent``).

Decisions (docs/decisions.md): the plan's frozen identifiers are what is purged. A record
written into the selector after planning makes the connector refuse the purge of that location
before deleting anything (ConflictError): this is journaled as refused, the retirement goes on,
and verification then finds the location not clean, so the certificate says "failed" for it
and names it. A listed record outside the selector (a tampered plan) stops the retirement
(ScopeError), as any other unexpected answer does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from sundown import registry
from sundown.errors import ConflictError, SundownError
from sundown.plan import Plan, iter_plan_records
from sundown.record_plan import RecordInventory, RecordLocationPlan
from sundown.records import Compactor, RecordCapability, RecordEntry, RecordStore
from sundown.spec.model import SystemSpec

from . import _linked
from .evidence import (
    RecordCheck,
    RecordNotPurged,
    RecordsCompacted,
    RecordsPurged,
    RecordStage,
    Verified,
)
from .journal import Journal

SAMPLE = 10


def inventory(spec: SystemSpec) -> list[RecordInventory]:
    """Each record location's findings, read now, and its records as a stream the plan writer
    pulls page by page (memory does not grow with the table), in spec order
    (``build_plan(records=...)``). A location that cannot be opened stops the planning here,
    and one that cannot be listed stops it while the plan is written (the file is discarded)."""
    out = []
    for ref in spec.record_locations():
        store = registry.open_record_store(ref.url, ref.location.raw_selector())
        found = store.findings() + _linked.findings(store, spec)
        out.append(RecordInventory(_listing(store), found))
    return out


def _listing(store: RecordStore) -> Iterator[RecordEntry]:
    try:
        yield from store.inventory()
    finally:
        store.close()


def purge_step(index: int) -> str:
    return f"records-{index:03d}-purged"


def compact_step(index: int) -> str:
    return f"records-{index:03d}-compacted"


#: Purged before the object stores, in this order: serving stops first, then the registry
#: (docs/ml-platforms.md); every other record store after them (logs once nothing writes them).
_BEFORE_OBJECTS = {"sagemaker": 0, "mlflow": 1}


def _ordered(plan: Plan, before_objects: bool) -> list[RecordLocationPlan]:
    def rank(loc: RecordLocationPlan) -> int | None:
        return _BEFORE_OBJECTS.get(loc.url.split("://", 1)[0].lower())

    chosen = [loc for loc in plan.records if (rank(loc) is not None) is before_objects]
    return sorted(chosen, key=lambda loc: (rank(loc) or 0, loc.index))


def purge(
    plan: Plan,
    journal: Journal,
    batch_size: int,
    check: Callable[[str], None],
    *,
    before_objects: bool = False,
) -> None:
    """Purge the record locations of the approved plan (``before_objects``: SageMaker, then
    MLflow; otherwise every other scheme), then ask the server to compact each; each
    journaled. ``check(what)`` runs before each location (the lease check)."""
    for loc in _ordered(plan, before_objects):
        if journal.get(purge_step(loc.index)) is None:
            check(f"purging {loc.subject}")
            entries = iter_plan_records(plan.path, plan.digest, loc.index)
            store = _open(plan, loc.index)
            try:
                evidence = _purge_one(store, loc.index, loc.subject, entries, batch_size)
            finally:
                store.close()
            journal.record(purge_step(loc.index), evidence)
        purged = journal.data(purge_step(loc.index), RecordsPurged)
        if journal.get(compact_step(loc.index)) is None and purged is not None:
            journal.record(compact_step(loc.index), _compact(plan, loc.index, purged))


def _open(plan: Plan, index: int) -> RecordStore:
    loc = plan.records[index]
    return registry.open_record_store(loc.url, loc.selector)


def _purge_one(
    store: RecordStore, index: int, subject: str, entries: list, batch_size: int
) -> RecordsPurged:
    started = datetime.now(UTC)
    try:
        result = store.purge(entries, batch_size=batch_size)
    except ConflictError as exc:
        return RecordsPurged(
            index=index, subject=subject, refused=str(exc)[:2000], started_at=started
        )
    done = set(result.deleted) | set(result.absent)
    failed = {f.id: f for f in result.failed}
    not_purged = [
        RecordNotPurged(
            id=e.id,
            code=f"failed: {failed[e.id].code}" if e.id in failed else "not attempted",
            message=(failed[e.id].message if e.id in failed else result.stopped or "")[:500],
        )
        for e in entries
        if e.id not in done
    ]
    return RecordsPurged(
        index=index,
        subject=subject,
        deleted=len(result.deleted),
        absent=len(result.absent),
        not_purged=not_purged,
        requests=result.requests,
        dropped=result.dropped,
        stopped=result.stopped,
        started_at=started,
        stages=[RecordStage(**vars(stage)) for stage in result.stages],
    )


def _compact(plan: Plan, index: int, purged: RecordsPurged) -> RecordsCompacted:
    """VACUUM, BGREWRITEAOF, ... where the connector can (its findings say what it did); a
    refusal is recorded, never fatal: the data it would drop is stated in the certificate."""
    store = _open(plan, index)
    try:
        if RecordCapability.COMPACT not in store.capabilities or not isinstance(store, Compactor):
            return RecordsCompacted(index=index)
        if purged.refused is not None:
            return RecordsCompacted(index=index, error="not run: the purge was refused")
        try:
            return RecordsCompacted(index=index, findings=[f.to_dict() for f in store.compact()])
        except SundownError as exc:  # recorded; the certificate states the data kept
            return RecordsCompacted(index=index, error=f"{type(exc).__name__}: {exc}"[:1000])
    finally:
        store.close()


def verify(plan: Plan) -> list[RecordCheck]:
    """Re-query every record location: the selector matches nothing and no planned record
    exists anywhere in the location (a whole table or collection: gone). Then read the
    findings again (after compaction) for the certificate."""
    out = []
    for loc in plan.records:
        entries = iter_plan_records(plan.path, plan.digest, loc.index)
        store = _open(plan, loc.index)
        try:
            check = store.verify(entries)
            try:
                findings, error = [f.to_dict() for f in store.findings()], None
                findings += _linked.planned(loc.findings)
            except SundownError as exc:  # recorded: "findings not read"
                findings, error = [], f"{type(exc).__name__}: {exc}"[:1000]
        finally:
            store.close()
        if check.gone:
            details = "the whole location is gone"
        else:
            details = (
                f"{check.in_scope} record(s) match the selector, "
                f"{len(check.listed_present)} planned record(s) still exist"
            )
        sample = list(check.sample[:SAMPLE]) or list(check.listed_present[:SAMPLE])
        if sample:
            details += f" (e.g. {', '.join(repr(s)[:100] for s in sample)})"
        out.append(
            RecordCheck(
                index=loc.index,
                subject=loc.subject,
                passed=check.clean,
                in_scope=check.in_scope,
                listed_present=len(check.listed_present),
                gone=check.gone,
                sample=[repr(s)[:200] for s in sample],
                details=details,
                verified_at=datetime.now(UTC),
                findings=findings,
                findings_error=error,
            )
        )
    return out


def with_records(verified: Verified, plan: Plan) -> Verified:
    """``verified`` with the record locations' checks (none: unchanged)."""
    if not plan.records:
        return verified
    return verified.model_copy(update={"records": verify(plan)})
