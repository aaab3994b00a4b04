"""Keys a cloud KMS deletes at the end of a window, inside retirements (docs/kms.md, "In a
retirement").

AWS KMS (ScheduleKeyDeletion, 7-30 days), Cloud KMS (DESTROY_SCHEDULED until each version's
``destroyTime``) and Key Vault (soft delete until the scheduled purge date) do not delete a key
at once: until the date they report, an administrator can restore it. Here:

- the destroy step passes the spec's window (``keys.pending_days``) to a key service that takes
  one, and revokes the spec's grants first (``keys.grants``);
- the post-retirement check accepts "scheduled for deletion, refused for use" as proof of the
  step and records the date the KMS answered (:func:`check_text`); the certificate takes that
  date, and a date that changed since the destroy step (deletion cancelled and scheduled again
  behind Sundown's back) is not accepted (:func:`judge_pending`);
- :func:`follow_up` (run by the daily retention sweep and by ``key_deletion_follow_up``) appends
  one signed ledger record per pending key once the KMS reports it gone;
- :func:`cancel_deletion` restores a key within its window and ledgers that the certificate
  naming it no longer holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from prefect import flow, get_run_logger
from pydantic import BaseModel

from sundown import dsse, registry
from sundown.certificate import Certificate, verify_certificate
from sundown.errors import (
    BackendError,
    InputError,
    IntegrityError,
    KeyDestroyedError,
    NotFoundError,
    SundownError,
)
from sundown.ledger import KEY_DELETION_CANCELLED as CANCELLED
from sundown.ledger import KEY_DELETION_CONFIRMED as CONFIRMED
from sundown.ledger import KEY_DELETION_REVERSED as RESTORED  # restored outside cancel-deletion
from sundown.ledger import Ledger, RecordKind, StoredRecord, key_event
from sundown.spec.model import SystemSpec
from sundown.store import put_once

from ._common import ledger_append, load_system, object_url, open_evidence, sha256_digest
from ._pending import check_text, follow_up_verdict
from .models import SpecSource

RECEIPTS = "key-deletions"
UNCHECKED = "unchecked"
MAX_CERTIFICATE_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# Follow-up and cancellation: signed ledger records


class KeyDeletionReceipt(BaseModel):
    """The evidence of a follow-up or a cancellation record (``key-deletions/...json``)."""

    event: str  # CONFIRMED, CANCELLED or RESTORED
    system: str
    certificate_id: str | None
    certificate_digest: str | None
    key_uri: str
    observed_at: datetime
    key_state: str
    checks: dict[str, str]
    certificate_holds: bool
    statement: str


@dataclass(frozen=True)
class FollowUp:
    certificate_id: str
    key_uri: str
    # "deleted" (record appended), "recorded", "pending", "cancelled" (by cancel-deletion),
    # "restored" (found usable again outside Sundown: record appended once, then "restored"),
    # or UNCHECKED (the key service did not answer: nothing recorded, asked again next run)
    outcome: str
    detail: str
    sequence: int | None = None

    @property
    def line(self) -> str:
        """One line for a log or a flow result."""
        return f"{self.key_uri} ({self.certificate_id}): {self.outcome}: {self.detail}"


@dataclass(frozen=True)
class _Issued:
    certificate: Certificate
    digest: str
    record: StoredRecord


def _trusted_ledger(spec: SystemSpec) -> tuple[Ledger, list[StoredRecord], bytes]:
    """The spec's ledger, verified whole against the spec's certificate key (the trust anchor):
    a planted or altered record stops everything here."""
    ledger = Ledger(open_evidence(spec))
    if ledger.head() is None:  # nothing recorded yet: no retirement to follow up
        return ledger, [], b""
    anchor = registry.open_signer(spec.keys.certificate).public_key_pem()
    ledger.verify(anchor)
    records = list(ledger.records())
    for stored in records:  # read again after the verification: each must still be signed
        dsse.verify(stored.envelope, anchor)
    return ledger, records, anchor


def _certificates(spec: SystemSpec, records: list[StoredRecord], anchor: bytes) -> list[_Issued]:
    """The certificates of this system's retirements, each verified against the anchor and
    equal to the digest its signed ledger record names."""
    store = open_evidence(spec)
    base = store.url.rstrip("/") + "/"
    out = []
    for stored in records:
        ev = stored.record.evidence
        if stored.record.kind is not RecordKind.DECOMMISSION or ev is None:
            continue
        if not stored.record.subject.startswith(f"decommissioned {spec.name}: "):
            continue
        if not ev.location.startswith(base):
            raise IntegrityError(f"{stored.name}: certificate {ev.location} is outside {base}")
        with store.open(ev.location[len(base) :]) as f:
            data = f.read(MAX_CERTIFICATE_BYTES + 1)
        if len(data) > MAX_CERTIFICATE_BYTES:
            raise IntegrityError(f"{ev.location}: larger than any certificate Sundown writes")
        verified = verify_certificate(data, anchor)
        if verified.envelope_digest != ev.digest:
            raise IntegrityError(
                f"{ev.location}: its digest {verified.envelope_digest} is not the one "
                f"{stored.name} records ({ev.digest}): the certificate was replaced"
            )
        out.append(_Issued(verified.certificate, ev.digest, stored))
    return out


def _events(records: list[StoredRecord]) -> dict[tuple[str, str], tuple[str, int]]:
    """(certificate id, key URI) -> (the latest event recorded for it, its sequence)."""
    out: dict[tuple[str, str], tuple[str, int]] = {}
    for event in filter(None, map(key_event, records)):
        out[(event.certificate_id, event.key_uri)] = (event.event, event.sequence)
    return out


def _append(spec: SystemSpec, receipt: KeyDeletionReceipt, detail: str) -> StoredRecord:
    """Store the receipt create-only under a name of its own and append the signed record."""
    store = open_evidence(spec)
    body = json.dumps(receipt.model_dump(mode="json"), indent=1, sort_keys=True).encode()
    digest = sha256_digest(body)
    name = hashlib.sha256(receipt.key_uri.encode()).hexdigest()[:16]
    key = (
        f"{RECEIPTS}/{spec.name}/{receipt.certificate_id or 'no-certificate'}/"
        f"{name}-{receipt.event.split()[-1]}-{digest[7:23]}.json"
    )
    if not put_once(store, key, body):
        raise IntegrityError(f"{object_url(store, key)}: another file holds this receipt's name")
    subject = (
        f"{receipt.event}: certificate {receipt.certificate_id or '-'}, key {receipt.key_uri}: "
        f"{detail}"
    )[:4000]
    return ledger_append(spec, RecordKind.DECOMMISSION, subject, digest, object_url(store, key))


def follow_up(spec: SystemSpec) -> list[FollowUp]:
    """For every certificate of this system naming a key whose deletion was pending: ask the
    key service now (deleting nothing); once it reports the key gone, append one signed ledger
    record (never twice: a record already in the verified ledger is found first)."""
    _ledger, records, anchor = _trusted_ledger(spec)
    events = _events(records)
    out: list[FollowUp] = []
    for issued in _certificates(spec, records, anchor):
        cert = issued.certificate
        for key in cert.keys_destroyed:
            if key.pending_until is None:
                continue
            done = events.get((cert.certificate_id, key.uri))
            if done is not None:
                outcome = {CONFIRMED: "recorded", RESTORED: "restored"}.get(done[0], "cancelled")
                out.append(FollowUp(cert.certificate_id, key.uri, outcome, done[0], done[1]))
                continue
            try:
                evidence = registry.key_for_destruction(key.uri).verify_destroyed()
            except SundownError as exc:
                # One key the service will not answer for (access denied, throttled, a
                # network fault) is reported as unchecked; the other keys are still asked and
                # their records appended. Nothing is recorded for this one: a later run asks
                # again.
                out.append(FollowUp(cert.certificate_id, key.uri, UNCHECKED, str(exc)[:500]))
                continue
            state = getattr(evidence, "key_state", "") or "unknown"
            verdict, why = follow_up_verdict(key.pending_until, evidence)
            if verdict == "reversed":
                out.append(_reversed(spec, issued, key.uri, state, check_text(evidence), why))
                continue
            if verdict == "pending":
                out.append(FollowUp(cert.certificate_id, key.uri, "pending", why))
                continue
            detail = why
            receipt = KeyDeletionReceipt(
                event=CONFIRMED,
                system=spec.name,
                certificate_id=cert.certificate_id,
                certificate_digest=issued.digest,
                key_uri=key.uri,
                observed_at=datetime.now(UTC),
                key_state=state,
                checks=dict(evidence.checks),
                certificate_holds=True,
                statement=f"{detail}; the copies certificate {cert.certificate_id} covers by "
                f"cryptographic erase under this key are irrecoverable (pending until "
                f"{key.pending_until.isoformat()} on the certificate)",
            )
            stored = _append(spec, receipt, detail)
            out.append(
                FollowUp(cert.certificate_id, key.uri, "deleted", detail, stored.record.sequence)
            )
    return out


def _reversed(
    spec: SystemSpec, issued: _Issued, uri: str, state: str, answer: str, why: str
) -> FollowUp:
    """The key's deletion was reversed behind Sundown's back (restored within its window by
    someone with KMS rights, not through ``cancel-deletion``; or cancelled and scheduled again,
    ``why`` says which): the certificate's erase claim under it no longer holds. Ledgered once,
    so that whoever verifies the certificate against the ledger learns it; a key only looking
    usable (a wrong answer of the KMS) costs a false alarm, never a false claim."""
    cert_id = issued.certificate.certificate_id
    answer = answer[:500]
    detail = f"certificate {cert_id} NO LONGER HOLDS for copies under this key: {why}"
    receipt = KeyDeletionReceipt(
        event=RESTORED,
        system=spec.name,
        certificate_id=cert_id,
        certificate_digest=issued.digest,
        key_uri=uri,
        observed_at=datetime.now(UTC),
        key_state=state,
        checks={"key service": answer},
        certificate_holds=False,
        statement=f"{why}; the key service answers for {uri}: {answer}. Certificate {cert_id} "
        "no longer holds for the copies it covers by cryptographic erase under this key: they "
        "may be readable again, or become irrecoverable only later than it states",
    )
    stored = _append(spec, receipt, detail)
    return FollowUp(cert_id, uri, "restored", detail, stored.record.sequence)


def cancel_deletion(spec: SystemSpec, uri: str) -> tuple[KeyDeletionReceipt, StoredRecord]:
    """Restore a key of this system within its window (the key service's cancel) and append
    one signed ledger record saying so, naming the latest certificate that relied on the key:
    that certificate no longer holds for the copies under it."""
    roles = dict(spec.keys_to_destroy())
    if uri not in roles:
        raise InputError(
            f"{uri} is not a key system {spec.name!r} destroys at retirement "
            f"({', '.join(roles)}): nothing was cancelled"
        )
    _ledger, records, anchor = _trusted_ledger(spec)
    relying = [i for i in _certificates(spec, records, anchor) if _names(i.certificate, uri)]
    service = registry.key_for_destruction(uri)
    cancel = getattr(service, "cancel_deletion", None)
    if cancel is None:
        raise InputError(f"{uri}: this key service deletes at once; nothing can be cancelled")
    try:
        registry.open_key_service(uri).info()
        how = "the key was found usable already (restored by other means); recorded now"
    except (KeyDestroyedError, NotFoundError):
        cancel()
        how = "deletion cancelled through the key service; the key is usable again"
    issued = relying[-1] if relying else None
    cert_id = issued.certificate.certificate_id if issued else None
    statement = (
        f"{how}. Certificate {cert_id} no longer holds for the copies it covers by "
        f"cryptographic erase under {uri}: they are readable again"
        if cert_id
        else f"{how}. No certificate of {spec.name} relied on this key"
    )
    receipt = KeyDeletionReceipt(
        event=CANCELLED,
        system=spec.name,
        certificate_id=cert_id,
        certificate_digest=issued.digest if issued else None,
        key_uri=uri,
        observed_at=datetime.now(UTC),
        key_state="restored",
        checks={"key service": how},
        certificate_holds=not cert_id,
        statement=statement,
    )
    detail = (
        f"certificate {cert_id} NO LONGER HOLDS for copies under this key"
        if cert_id
        else "no certificate relied on this key"
    )
    return receipt, _append(spec, receipt, detail)


def _names(cert: Certificate, uri: str) -> bool:
    return any(k.uri == uri for k in cert.keys_destroyed)


class FollowUpParameters(SpecSource):
    """Check the keys whose deletion is pending in a system's retirements."""


@flow(
    name="key-deletion-follow-up",
    description="For each retirement whose key deletion is pending, ask the key service and "
    "append a signed ledger record once it reports the key gone.",
    persist_result=False,
)
def key_deletion_follow_up(params: FollowUpParameters) -> list[str]:
    spec = load_system(params)
    done = follow_up(spec)
    for f in done:
        get_run_logger().info("key deletion follow-up: %s", f.line)
    unchecked = [f.line for f in done if f.outcome == UNCHECKED]
    if unchecked:
        # after every other key was asked and recorded: the run fails so that its schedule
        # shows it, naming each key the service did not answer for
        raise BackendError(
            f"key deletion follow-up: {len(unchecked)} key(s) could not be checked (the others "
            "were, and their records appended): " + "; ".join(unchecked)
        )
    return [f.line for f in done]
