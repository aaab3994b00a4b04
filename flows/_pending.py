"""The pure part of keys deleted at the end of a window (no Prefect, no I/O beyond the key
service handed in): the destroy step's window and grants, the post-retirement check's text, and
what the certificate makes of it. The follow-up and the cancellation are in
:mod:`flows.key_deletion`."""

from __future__ import annotations

from datetime import UTC, datetime

from sundown.certificate import CertificateException, IrrecoverableAfter, KeyDestroyed
from sundown.errors import InputError
from sundown.keys import ChosenPendingWindow, KeyDestruction, KeyGrants, KeyService
from sundown.spec.kms import grants_by_key
from sundown.spec.model import SystemSpec

PENDING_CHECK = "scheduled for deletion and refused for use; pending until "
# The KMS's date read at destruction and at verification may differ by its own rounding only.
_SAME_DATE_SECONDS = 2


# --------------------------------------------------------------------------------------------
# Destroy step


def destroy_with_window(service: KeyService, pending_days: int | None) -> KeyDestruction:
    """``destroy()``, with the spec's pending window where the key service takes one."""
    if pending_days is None:
        return service.destroy()
    if not isinstance(service, ChosenPendingWindow):
        raise InputError(
            f"keys.pending_days is {pending_days}, but {service.uri} has no pending window "
            "chosen at deletion; nothing was destroyed"
        )
    return service.destroy_after(pending_days)


def _grant_service(service: KeyService) -> KeyGrants:
    if not isinstance(service, KeyGrants):
        raise InputError(f"keys.grants names grants on {service.uri}, which has no grants")
    return service


def check_grants(spec: SystemSpec, uri: str, service: KeyService) -> None:
    """At planning: every grant the spec names on ``uri`` exists (InputError naming the missing
    ones otherwise, before anything is planned)."""
    wanted = grants_by_key(spec).get(uri, [])
    if not wanted:
        return
    present = set(_grant_service(service).grant_ids())
    missing = [g for g in wanted if g not in present]
    if missing:
        raise InputError(
            f"keys.grants: grant(s) {', '.join(missing)} on {uri} do not exist (the key has "
            f"{len(present)} grant(s)): a typo, a grant of another key, or one revoked already; "
            "fix the spec before planning"
        )


def revoke_spec_grants(service: KeyService, grants: list[str]) -> dict[str, str]:
    """Revoke the spec's grants on the key before it is destroyed; the checks for the evidence."""
    if not grants:
        return {}
    return _grant_service(service).revoke_grants(grants)


# --------------------------------------------------------------------------------------------
# Post-retirement check and certificate


def check_text(evidence: KeyDestruction) -> str:
    """What the post-retirement check records: "gone", the pending text with the KMS's date,
    or what still answers."""
    if not evidence.verified:
        return "still answers: " + "; ".join(f"{n}: {v}" for n, v in evidence.checks.items())[:3000]
    if evidence.pending_until is not None:
        return PENDING_CHECK + evidence.pending_until.astimezone(UTC).isoformat()
    return "gone"


def pending_of(check: str | None) -> datetime | None:
    if check is None or not check.startswith(PENDING_CHECK):
        return None
    try:
        when = datetime.fromisoformat(check[len(PENDING_CHECK) :])
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def accepted(check: str | None) -> bool:
    """Whether a recorded post-retirement check proves the destroy step."""
    return check == "gone" or pending_of(check) is not None


def judge_pending(key: KeyDestroyed, check: str | None) -> KeyDestroyed:
    """``key`` with the pending date of the post-retirement check (the KMS's answer then). A
    date other than the one the destroy step recorded means the deletion was cancelled and
    scheduled again in between (the key was usable meanwhile): not verified."""
    if not key.verified:
        return key
    when = pending_of(check)
    if check == "gone":
        return key.model_copy(update={"pending_until": None})
    if when is None:
        return key
    before = key.pending_until
    if before is not None and not same_date(when, before):
        return key.judged(
            still_answers=f"the KMS's deletion date changed from {before.isoformat()} at "
            f"destruction to {when.isoformat()} at verification: the deletion was cancelled "
            "and scheduled again behind Sundown's back, so the key was usable in between"
        )
    return key.model_copy(update={"pending_until": when})


def same_date(a: datetime, b: datetime) -> bool:
    """Whether two pending dates the key service reported are the same date (its own rounding
    aside): another date means the deletion was cancelled and scheduled again in between."""
    return abs((a - b).total_seconds()) <= _SAME_DATE_SECONDS


def follow_up_verdict(certified: datetime, evidence: KeyDestruction) -> tuple[str, str]:
    """What the follow-up makes of the key service's answer now (``evidence``) for a key a
    certificate states pending until ``certified``, and why: "gone" (one record confirms it),
    "pending" (nothing recorded, asked again next run) or "reversed" (the certificate no longer
    holds: one record says so)."""
    state = getattr(evidence, "key_state", "") or "unknown"
    when = evidence.pending_until
    if when is not None and not same_date(when, certified):
        # Pending again, but until another date than the certificate's: the deletion was
        # cancelled and scheduled again between two runs (the key usable in between, and
        # irrecoverable only later than the certificate says).
        return "reversed", (
            "its deletion was cancelled and scheduled again outside Sundown: the key service "
            f"reports it pending until {when.isoformat()}, not {certified.isoformat()} as the "
            "certificate states"
        )
    if not evidence.verified and getattr(evidence, "overdue", False):
        # The certificate's date has passed; the key service deletes the key after it, and has
        # not yet: still restorable, but nothing was reversed either.
        return "pending", (
            f"the certificate's date {certified.isoformat()} has passed, but the key service "
            f"still reports the key pending (key state {state}): restorable until it deletes "
            "it; checked again on the next run"
        )
    if not evidence.verified:
        return "reversed", (
            "its deletion was reversed outside Sundown, or no longer proves the key destroyed "
            f"(key state {state})"
        )
    if when is not None:
        return "pending", (
            f"pending until {when.isoformat()} (key state {state}); checked again on the next run"
        )
    return "gone", f"the key service reports the key gone (key state {state})"


def irrecoverable(used: list[KeyDestroyed]) -> IrrecoverableAfter:
    """When copies under these destroyed keys become irrecoverable: the latest pending date the
    KMS reported, else the latest destruction."""
    pending = [k for k in used if k.pending_until is not None]
    if pending:
        at = max(k.pending_until for k in pending if k.pending_until is not None)
        return IrrecoverableAfter(
            at=max([at, *(k.destroyed_at for k in used)]),
            basis=", ".join(k.uri for k in used)
            + " destroyed and verified; deletion pending (scheduled by the key service, which "
            f"can restore the key until {at.isoformat()}, the date it reported)",
        )
    return IrrecoverableAfter(
        at=max(k.destroyed_at for k in used),
        basis=", ".join(k.uri for k in used) + " destroyed and verified gone",
    )


def pending_exceptions(
    keys: list[KeyDestroyed], now: datetime, locations: dict[str, list[str]]
) -> list[CertificateException]:
    """One exception per key whose deletion is still pending, and one per location whose
    cryptographic erase rests on it (``locations``: location URI -> the keys of its claim)."""
    out: list[CertificateException] = []
    pending = {k.uri: k.pending_until for k in keys if k.pending_until and k.pending_until > now}
    for k in keys:
        when = pending.get(k.uri)
        if when is None:
            continue
        out.append(
            CertificateException(
                subject=k.uri,
                kind="key deletion pending",
                description=f"complete; key deletion pending until {when.isoformat()}: the "
                "key service deletes the key then; until then it is disabled and refused for "
                "use, but an administrator can restore it (`sundown keys cancel-deletion`), "
                "and this certificate then no longer holds",
                until=when,
            )
        )
    for uri, used in locations.items():
        dates = [pending[u] for u in used if u in pending]
        if dates:
            out.append(
                CertificateException(
                    subject=uri,
                    kind="key deletion pending",
                    description=f"complete; key deletion pending until {max(dates).isoformat()}:"
                    " the copies covered by cryptographic erase become irrecoverable when the "
                    f"key service deletes {', '.join(u for u in used if u in pending)}",
                    until=max(dates),
                )
            )
    return out
