"""Execution shared by retirement and retention: archive batches, then purge batches, each
journaled create-only so that a re-run skips what is done, with a progress artifact."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from sundown.errors import (
    BackendError,
    ConflictError,
    InputError,
    PermissionDeniedError,
    SundownError,
)
from sundown.plan import LocationPlan, Plan
from sundown.spec.model import SystemSpec
from sundown.store import EntryKind

from . import _steps
from ._common import artifact_key, opaque
from .evidence import BatchOutcome, Copy, LifecycleChange, for_archive, for_purge
from .journal import Journal


class Progress:
    """A progress artifact over the archive and purge batches."""

    def __init__(self, plan: Plan, operation: str) -> None:
        totals = plan.totals()
        self.total = max(1, totals["archive"].count + totals["purge"].count)
        self.done = 0
        self.id: UUID = create_progress_artifact(  # type: ignore[assignment]
            0.0,
            key=artifact_key(operation, "progress", plan.system),
            description=f"Archive and purge of plan {plan.digest}",
        )

    def advance(self, n: int) -> None:
        self.done += n
        update_progress_artifact(self.id, min(100.0, 100.0 * self.done / self.total))

    def finish(self) -> None:
        update_progress_artifact(self.id, 100.0)


def archive(spec: SystemSpec, plan: Plan, journal: Journal, size: int, progress: Progress) -> None:
    """Every archive batch of every location, before any purge batch: a copy that cannot be
    archived (a lost sidecar, a storage class the target lacks) stops the run with nothing
    deleted. Each batch's outcome lists every archive copy with its verification."""
    if spec.archive is not None and any(loc.archive.count for loc in plan.locations):
        from sundown import registry

        _steps.check_storage_class(
            registry.open_store(spec.archive.target), spec.archive.storage_class
        )
    for loc in plan.locations:
        if not loc.archive.count:
            continue
        if spec.archive is None:
            raise InputError(f"{loc.url} is to be archived but the spec has no archive target")
        for number, batch in _steps.batches(plan, loc.index, for_archive, size):
            step = f"archive-{loc.index:03d}-{number:06d}"
            if not journal.done(step):
                outcome = _steps.archive_batch(
                    loc.url,
                    spec.archive.target,
                    spec.archive.key,
                    spec.archive.storage_class,
                    loc.index,
                    number,
                    opaque(batch),
                )
                journal.record(step, outcome)
            progress.advance(len(batch))


RETENTION_ROOT = "retention"  # flows/retention.py's journal root (not imported: a cycle)


def earlier_archives(spec: SystemSpec) -> list[tuple[str, BatchOutcome]]:
    """(retention plan digest, archive batch outcome) of every archive batch an earlier
    retention sweep of this system journaled in the evidence location (``retention/<system>/
    <plan>/journal/archive-*.json``). Each record's signature is checked with the spec's
    certificate key (a forged or altered one: IntegrityError). Retention sweeps archive before
    they delete, so these copies are the system's too and the certificate lists them."""
    from ._common import open_evidence

    store = open_evidence(spec)
    plans: set[str] = set()
    for info in store.list(f"{RETENTION_ROOT}/{spec.name}"):
        parts = info.key.split("/")
        if len(parts) > 3 and parts[3] == "journal":
            plans.add(parts[2])
    out: list[tuple[str, BatchOutcome]] = []
    for hexdigest in sorted(plans):
        digest = f"sha256:{hexdigest}"
        journal = Journal(store, spec.name, digest, spec.keys.certificate, root=RETENTION_ROOT)
        for _, record in journal.steps("archive-"):
            out.append((digest, record.parse(BatchOutcome)))
    return out


def purge(plan: Plan, journal: Journal, size: int, progress: Progress) -> None:
    for loc in plan.locations:
        purge_range(plan, journal, loc.index, size, on_batch=progress.advance)


def batch_count(plan: Plan, location: int, size: int) -> int:
    """How many purge batches of ``size`` the plan makes at this location."""
    return -(-plan.locations[location].purge.count // size)


def purge_range(
    plan: Plan,
    journal: Journal,
    location: int,
    size: int,
    first: int = 0,
    last: int | None = None,
    *,
    limit: str | None = None,
    on_batch: Callable[[int], None] | None = None,
    guard: Callable[[str], None] | None = None,
) -> tuple[list[BatchOutcome], int]:
    """Purge batches ``first`` to ``last`` (exclusive) of one location, skipping every batch the
    journal records as done; each batch holds one slot of the Prefect global concurrency limit
    ``limit`` (strict: a missing limit is an error). Returns (outcomes of the batches purged
    now, number of batches skipped as already done). ``guard``, if given, is called before each
    batch with what it is about to do, and raises to stop it (the retirement's lease)."""
    url = plan.locations[location].url
    done: list[BatchOutcome] = []
    skipped = 0
    for number, batch in _steps.batches(plan, location, for_purge, size):
        if number < first:
            continue
        if last is not None and number >= last:
            break
        step = f"purge-{location:03d}-{number:06d}"
        if journal.done(step):
            skipped += 1
        else:
            if guard is not None:
                guard(f"purge batch {number} of {url}")
            with _slot(limit):
                outcome = _steps.purge_batch(url, location, number, opaque(batch))
            if outcome.failed:
                raise refused(url, number, len(batch), outcome.failed)
            journal.record(step, outcome)
            done.append(outcome)
        if on_batch is not None:
            on_batch(len(batch))
    return done, skipped


_DENIED = ("AccessDenied", "Forbidden", "AuthorizationPermissionMismatch", "AuthorizationFailure")


def refused(url: str, number: int, size: int, failed: list[Copy]) -> SundownError:
    """The error that stops a purge whose batch had copies refused for a reason other than a
    hold (a policy denying the delete, a per-item server error, no answer for an item). Raised
    before the batch is journaled: nothing further is deleted, no key is destroyed, and a re-run
    resumes at this batch (a copy deleted already counts as deleted then)."""
    reasons = Counter(c.reason for c in failed)
    first = failed[0]
    where = first.key + (f" version {first.version_id}" if first.version_id else "")
    text = (
        f"purge of {url} stopped at batch {number}: {len(failed)} of {size} copies refused ("
        + "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(3))
        + f"; first: {where}). Nothing further was deleted and no key was destroyed; fix the "
        "cause and re-run the retirement to resume at this batch"
    )
    denied = any(c.reason.split(":", 1)[0] in _DENIED for c in failed)
    return PermissionDeniedError(text) if denied else BackendError(text)


def _slot(limit: str | None) -> AbstractContextManager[object]:
    if limit is None:
        return contextlib.nullcontext()
    from prefect.concurrency.sync import concurrency

    return concurrency(limit, occupy=1, strict=True)


def outcomes(journal: Journal, kind: str, loc: int) -> list[BatchOutcome]:
    return [r.parse(BatchOutcome) for _, r in journal.steps(f"{kind}-{loc:03d}-")]


# --------------------------------------------------------------------------------------------
# purge_by: lifecycle (docs/flows.md "Lifecycle purges")


def lifecycle_rule_id(plan: Plan, loc: LocationPlan) -> str:
    """Sundown's rule ID for one location: names Sundown, the system, the plan digest and the
    location (12 hex of SHA-256 of its URL), so that two lifecycle locations in one bucket or
    account each add and remove their own rule. At most 124 characters (S3 allows 255). A rule
    added before the location part existed is removed by the ID its journal records."""
    where = hashlib.sha256(loc.url.encode()).hexdigest()[:12]
    return f"sundown-retire-{plan.system}-{plan.digest.removeprefix('sha256:')[:32]}-{where}"


def _lifecycle_locations(plan: Plan) -> list[LocationPlan]:
    return [loc for loc in plan.locations if loc.purge_by == "lifecycle"]


def _rules_store(url: str) -> Any:
    from sundown import registry
    from sundown.store import Capability, LifecycleRules

    store = registry.open_store(url)
    if Capability.LIFECYCLE not in store.capabilities or not isinstance(store, LifecycleRules):
        raise InputError(f"{url}: purge_by: lifecycle, but the store has no lifecycle rules")
    return store


def _json(value: object) -> Any:
    return json.loads(json.dumps(value, default=str))  # rule dates as text, for the journal


PENDING_SAMPLE = 1000  # copies counted when re-verifying a lifecycle location


def apply_lifecycle_rules(plan: Plan, journal: Journal) -> None:
    """Add Sundown's rule to every ``purge_by: lifecycle`` location once: the journal step
    ``lifecycle-NNN-added`` records the rule ID, its scope and the bucket's configuration
    before and after, so a re-run never adds it twice."""
    for loc in _lifecycle_locations(plan):
        step = f"lifecycle-{loc.index:03d}-added"
        if journal.done(step):
            continue
        store = _rules_store(loc.url)
        rule_id = lifecycle_rule_id(plan, loc)
        before, after = store.add_lifecycle_rule(rule_id)
        scope = store.lifecycle_scope()
        journal.record(
            step,
            LifecycleChange(rule_id=rule_id, scope=scope, before=_json(before), after=_json(after)),
        )


def lifecycle_pending(plan: Plan, journal: Journal) -> list[str]:
    """Re-verify every lifecycle location whose rule is still in place: one line per location
    whose prefix still holds copies other than held ones (a hold or Object Lock wins over the
    rule: such copies are reported held as with batch purging). A location found empty has
    only Sundown's own rule removed (by ID; every other rule kept), journaled as
    ``lifecycle-NNN-removed`` with the configuration before and after."""
    pending: list[str] = []
    for loc in _lifecycle_locations(plan):
        step = f"lifecycle-{loc.index:03d}-removed"
        if journal.done(step):
            continue
        added = journal.data(f"lifecycle-{loc.index:03d}-added", LifecycleChange)
        if added is None:
            raise InputError(f"{loc.url}: no lifecycle rule is journaled as added")
        store = _rules_store(loc.url)
        rule_id = added.rule_id
        recorded = store.own_lifecycle_rules(added.after, rule_id)
        now = store.own_lifecycle_rules(_json(store.lifecycle_rules()), rule_id)
        # Stops at the first page's worth: re-verifying a huge prefix must not re-list it all.
        # Soft-deleted copies are past the rule: the provider removes them when their window
        # ends, and the certificate states it, as with batch purging.
        not_held = (
            e for e in store.inventory() if not e.hold.held and e.kind != EntryKind.SOFT_DELETED
        )
        left = sum(1 for _ in itertools.islice(not_held, PENDING_SAMPLE))
        if now and _json(now) != _json(recorded):
            raise ConflictError(
                f"{loc.url}: Sundown's lifecycle rule {rule_id} was changed since it was added "
                f"(now {json.dumps(now, default=str)[:300]}); nothing was removed and no key "
                "was destroyed: restore the rule as journaled, then re-run"
            )
        if left and not now:
            raise ConflictError(
                f"{loc.url}: Sundown's lifecycle rule {rule_id} is gone while {left} copies "
                "remain; nothing was removed and no key was destroyed: find who removed it"
            )
        if left:
            pending.append(
                f"{loc.url}: {'at least ' if left >= PENDING_SAMPLE else ''}{left} copies not "
                f"yet expired by rule {rule_id}"
            )
            continue
        before, after = store.remove_lifecycle_rule(rule_id)
        removed = LifecycleChange(rule_id=added.rule_id, before=_json(before), after=_json(after))
        journal.record(step, removed.model_dump(mode="json", exclude={"scope"}))
    return pending
