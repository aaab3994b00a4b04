"""Credential rotation as ``rotate_credentials`` needs it: one spec credential -> its kind's
rotation (:class:`sundown.credentials.CredentialKind`), the delivery of the new secret into Vault
KV, and the old credential's removal after the grace period.

What rotation means per kind is written in each kind's module (``connectors/credentials``) and in
docs/flows.md, "Credential rotation". This module only orchestrates, the same way for every kind:
refuse what cannot be rotated (and say why), adopt a delivery whose receipt was lost, rotate,
deliver (removing the successor again if the delivery fails), schedule or finish the removal of
what was replaced, and record the typed state.

The identifiers a rotation creates differ from the ones the spec declares. The spec stays as
written (it names each credential's lineage); what stands for it now, and which replaced
credentials still wait for their grace period, is the ``rotation_state`` of the latest rotation
receipt that the ledger points at (create-only evidence, digest-checked against the ledger).
:func:`current_refs` turns that into the credentials to revoke.

New secret material lives only inside the task that creates it: it goes from the connector's
:class:`pydantic.SecretStr` straight into Vault, and never into a return value, a log line, an
artifact, the receipt or the ledger. Evidence names credentials by their public identifiers and
the delivery by its KV path and version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from prefect import task
from pydantic import SecretStr, ValidationError

from sundown.credentials import (
    Delivered,
    Finished,
    NotRotated,
    Outcome,
    OutcomeKind,
    Pending,
    RotationJob,
    RotationState,
    Unit,
    credential_kind,
    now,
    units,
)
from sundown.errors import ConflictError, IntegrityError, PermissionDeniedError, SundownError
from sundown.ledger import Ledger, RecordKind
from sundown.spec.model import CredentialRef, Delivery, SystemSpec
from sundown.store import put_once

from ._common import TASK_OPTIONS, open_evidence, sha256_digest

RECEIPTS = "rotations"
NO_CONSUMER = "not rotated unattended (the new secret needs a declared consumer)"


# --------------------------------------------------------------------------------------------
# State: the latest ledgered receipt


def receipt_prefix(spec: SystemSpec) -> str:
    return f"{RECEIPTS}/{spec.name}/"


def load_state(spec: SystemSpec) -> RotationState:
    """The rotation state of the latest ``rotate`` ledger record of this system whose receipt
    carries one. IntegrityError if that receipt no longer matches the ledger's digest, or holds
    a state that is not one."""
    store = open_evidence(spec)
    base = store.url.rstrip("/") + "/" + receipt_prefix(spec)
    latest = None
    for stored in Ledger(store).records():
        ev = stored.record.evidence
        ours = ev is not None and ev.location.startswith(base)
        if stored.record.kind is RecordKind.ROTATE and ours:
            latest = ev
    if latest is None:
        return RotationState()
    key = latest.location[len(store.url.rstrip("/")) + 1 :]
    with store.open(key) as f:
        body = f.read()
    if sha256_digest(body) != latest.digest:
        raise IntegrityError(
            f"rotation receipt {latest.location} does not match its ledger record's digest: "
            "the rotation state cannot be trusted; nothing was rotated"
        )
    try:
        state = json.loads(body).get("rotation_state") or {}
        return RotationState.model_validate({**state, "source": latest.location})
    except (ValueError, AttributeError, ValidationError) as exc:
        raise IntegrityError(
            f"rotation receipt {latest.location} holds no valid rotation state "
            f"({type(exc).__name__}): nothing was rotated"
        ) from None


def current_refs(spec: SystemSpec, state: RotationState | None = None) -> list[CredentialRef]:
    """Every credential the system holds after its rotations: the spec's own, the ones rotation
    created in their place, and the replaced ones still waiting for their grace period. This is
    what a revocation or retirement must kill (``spec.credential_refs()`` alone misses what
    rotation created)."""
    state = state if state is not None else load_state(spec)
    refs = list(spec.credential_refs())
    if state.current:
        for unit in units(spec):
            ids = state.current.get(unit.key)
            if ids is not None:
                refs += credential_kind(unit.kind).references(unit.declared, ids)
    refs += [CredentialRef(p.kind, p.target) for p in state.pending if p.kind != "vault_kv_version"]
    return list(dict.fromkeys(refs))


# --------------------------------------------------------------------------------------------
# Delivery into Vault KV v2


def _deliveries(spec: SystemSpec) -> list[Delivery]:
    out = []
    for unit in units(spec):
        delivery = credential_kind(unit.kind).delivery(spec, unit.declared)
        if delivery is not None:
            out.append(delivery)
    return out


def preflight(spec: SystemSpec) -> None:
    """Before anything changes: the Vault token may write every delivery path (a rotation whose
    new secret cannot be delivered would lock its consumer out)."""
    deliveries = _deliveries(spec)
    if not deliveries:
        return
    from connectors.credentials import vault_kv

    refused = vault_kv.check_writable([(d.mount, d.path) for d in deliveries])
    if refused:
        raise PermissionDeniedError(
            "the Vault token may not write the rotation delivery path(s) "
            + "; ".join(refused)
            + ": nothing was rotated (grant create and update there)"
        )


def deliver(delivery: Delivery, values: Mapping[str, str | SecretStr]) -> Delivered:
    """Write ``values`` as a new version of the delivery secret; read it back and compare.
    Returns the path, version and checks only."""
    from connectors.credentials import vault_kv

    return vault_kv.deliver(delivery, values)


# --------------------------------------------------------------------------------------------
# Finishing: removing replaced credentials after the grace period


@task(name="finish-rotation", **TASK_OPTIONS)
def finish_pending(pending: list[Pending]) -> tuple[list[Finished], list[str]]:
    """Remove every replaced credential whose grace period is over. Returns what was done and
    the lines for the result. Nothing is removed before its time; a failure leaves it pending."""
    done: list[Finished] = []
    lines: list[str] = []
    for p in pending:
        label = f"{p.kind} {p.target} (replaced, of {p.unit})"
        if now() < p.not_before:
            done.append(Finished(pending=p, outcome="waiting"))
            lines.append(f"{label}: kept until {p.not_before.isoformat()}")
            continue
        try:
            evidence = credential_kind(p.kind).finish(p)
        except (SundownError, KeyError) as exc:
            why = f"{type(exc).__name__}: {exc}"[:500]
            done.append(Finished(pending=p, outcome="failed", reason=why))
            lines.append(f"{label}: removal FAILED ({why}); still pending")
            continue
        verified = bool(evidence) and all(e.verified for e in evidence)
        done.append(
            Finished(pending=p, outcome="finished" if verified else "failed", evidence=evidence)
        )
        action = "; ".join(e.action for e in evidence)
        lines.append(f"{label}: {action}" + ("" if verified else " but NOT proven (still pending)"))
    return done, lines


# --------------------------------------------------------------------------------------------
# Rotating one unit


def _outcome(job: RotationJob, outcome: OutcomeKind, reason: str = "", **more: object) -> Outcome:
    fields: dict[str, object] = {
        "unit": job.unit.key,
        "kind": job.unit.kind,
        "declared": job.unit.declared,
        "outcome": outcome,
        "reason": reason,
        "old": list(job.ids),
        "new": list(job.ids),
    }
    fields.update(more)
    return Outcome.model_validate(fields)


def _recover(job: RotationJob, delivery: Delivery) -> Outcome | None:
    """A delivery that names a credential the state does not know was made by a run whose
    receipt is missing (a crash between rotating and recording): adopt it as the current one,
    schedule the ones it replaced for removal, and rotate nothing more this time."""
    from connectors.credentials import vault_kv

    kind = credential_kind(job.unit.kind)
    if kind.delivery_field is None:
        return None
    delivered = vault_kv.delivered_field(delivery, kind.delivery_field)
    if delivered is None or delivered[0] in job.ids:
        return None
    new_id, version = delivered
    path = f"{delivery.mount}/{delivery.path}"
    # The delivery path is writable by others (its consumers' pipelines, an operator): what it
    # names is adopted only if it is a live credential in this unit's own scope, or a forged
    # or stale entry would make the real current credential look replaced.
    refs = kind.references(job.unit.declared, [new_id])
    if not refs or not all(credential_kind(r.kind).live(r.id) for r in refs):
        return _outcome(
            job,
            "failed",
            f"the delivery {path} (v{version}) names {new_id}, which is not a live credential "
            f"of {job.unit.key}: not adopted, nothing rotated (find out who wrote it)",
        )
    return _outcome(
        job,
        "recovered",
        f"the delivery (v{version}) names {new_id}, made by a run whose receipt is missing; "
        "adopted as current, nothing rotated this time",
        new=[new_id],
        pending=[kind.replaced(job.unit, old, job.delete_after) for old in job.ids],
        delivered=Delivered(path=path, version=version),
    )


def _deliver_or_undo(
    delivery: Delivery, values: Mapping[str, str | SecretStr], undo: Callable[[], object] | None
) -> Delivered:
    """Deliver the new secret; if that fails, remove the new credential (an undelivered secret
    is of use to nobody) and raise, saying what state the old one is in."""
    try:
        return deliver(delivery, values)
    except SundownError as exc:
        try:
            if undo is None:  # rotated in place (a role's one password): nothing to remove
                undone = "the credential keeps the undelivered secret: rotate again"
            else:
                undo()
                undone = "the new credential was removed again"
        except SundownError as undo_exc:
            undone = f"removing the new credential failed too ({type(undo_exc).__name__})"
        raise type(exc)(f"{exc}; {undone}") from None


def _rotate(job: RotationJob, delivery: Delivery | None) -> Outcome:
    kind = credential_kind(job.unit.kind)
    if delivery is not None and (recovered := _recover(job, delivery)) is not None:
        return recovered
    result = kind.rotate(job)
    if isinstance(result, NotRotated):
        return _outcome(job, "not rotated", result.reason)
    delivered = result.delivered
    if result.deliver is not None:
        assert delivery is not None
        delivered = _deliver_or_undo(delivery, result.deliver, result.undo)
    evidence = list(result.evidence)
    pending = list(result.replaced)
    if job.grace == timedelta(0):  # removed at once, once the successor is delivered
        for p in pending:
            evidence += credential_kind(p.kind).finish(p)
        pending = []
    ok = all(e.verified for e in evidence) and (
        delivered is None or delivered.verified is not False
    )
    return _outcome(
        job,
        "rotated" if ok else "failed",
        "" if ok else result.failure,
        new=list(result.new),
        evidence=evidence,
        pending=pending,
        delivered=delivered,
    )


@task(name="rotate-credential", **TASK_OPTIONS)
def rotate_unit(spec: SystemSpec, unit: Unit, ids: list[str], stamp: datetime) -> Outcome:
    """Rotate one credential and deliver its new secret; returns the outcome (no secret).
    Expected failures are an outcome ``failed`` with the reason, so the others still rotate."""
    assert spec.rotation is not None
    job = RotationJob(spec, unit, ids, timedelta(hours=spec.rotation.grace_period_hours), stamp)
    try:
        kind = credential_kind(unit.kind)
        delivery = kind.delivery(spec, unit.declared)
        if kind.needs_delivery and delivery is None:
            return _outcome(
                job, "not rotated", "the new secret needs a consumer: declare rotation.deliver_to"
            )
        if (refusal := kind.refusal(spec, unit.declared)) is not None:
            return _outcome(job, "not rotated", refusal)
        if not ids and kind.needs_current:
            return _outcome(job, "failed", "the rotation state names no current credential")
        return _rotate(job, delivery)
    except SundownError as exc:
        return _outcome(job, "failed", f"{type(exc).__name__}: {exc}"[:1000])


def line(outcome: Outcome) -> str:
    """One line for the result and the artifact."""
    head = outcome.unit
    if outcome.outcome == "rotated":
        old, new = ", ".join(outcome.old) or "-", ", ".join(outcome.new)
        text = f"{head}: rotated ({old} -> {new})"
        if outcome.delivered is not None:
            d = outcome.delivered
            text += f", delivered to {d.path} v{d.version}"
        waiting = [p.target for p in outcome.pending]
        if waiting:
            after = outcome.pending[0].not_before.isoformat()
            text += f"; {', '.join(waiting)} removed after {after}"
        return text
    if outcome.outcome == "recovered":
        gone = ", ".join(p.target for p in outcome.pending) or "nothing"
        return f"{head}: recovered: {outcome.reason}; {gone} removed after the grace period"
    if outcome.outcome == "failed":
        return f"{head}: rotation FAILED ({outcome.reason})"
    return f"{head}: not rotated: {outcome.reason}"


def next_state(
    state: RotationState, finished: list[Finished], outcomes: list[Outcome]
) -> RotationState:
    """The state after this run: successors of what rotated; pending = what is still waiting
    or failed to be removed, plus what this run replaced."""
    current = dict(state.current)
    pending = [f.pending for f in finished if f.outcome != "finished"]
    for o in outcomes:
        # a rotation whose checks failed still changed things: record them all the same
        if o.new != o.old:
            current[o.unit] = list(o.new)
        pending += o.pending
    return RotationState(current=current, pending=pending)


def complete_pending(spec: SystemSpec) -> list[str]:
    """Remove the credentials replaced by earlier rotations whose grace period is over, without
    rotating anything, and record it (receipt under ``rotations/`` and a ``rotate`` ledger
    record, so the next run sees the new state). For a scheduled flow such as retention_sweep;
    returns the lines to show (empty when nothing was due)."""
    from ._common import ledger_append, object_url

    state = load_state(spec)
    at = now()
    if not any(p.not_before <= at for p in state.pending):
        return []
    finished, lines = finish_pending(state.pending)
    after = next_state(state, finished, [])
    receipt = {
        "system": spec.name,
        "at": at.isoformat(),
        "kek": None,
        "credentials": lines,
        "rotations": [],
        "finished": [f.model_dump(mode="json") for f in finished],
        "rotation_state": after.to_json(),
        "previous_receipt": state.source,
    }
    body = json.dumps(receipt, indent=1, sort_keys=True).encode()
    store = open_evidence(spec)
    key = f"{receipt_prefix(spec)}{at:%Y%m%dT%H%M%S%fZ}.json"
    if not put_once(store, key, body):
        raise ConflictError(f"{object_url(store, key)} holds another rotation receipt")
    done = sum(1 for f in finished if f.outcome == "finished")
    failed = sum(1 for f in finished if f.outcome == "failed")
    ledger_append(
        spec,
        RecordKind.ROTATE,
        f"removed {done} credential(s) of {spec.name} replaced by earlier rotations"
        + (f"; {failed} removal(s) FAILED" if failed else ""),
        sha256_digest(body),
        object_url(store, key),
    )
    return lines
