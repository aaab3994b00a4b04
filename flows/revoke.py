"""``revoke_credentials``: emergency revocation of every credential a system holds.

Each credential of the spec is revoked through its connector and proven dead (lookup fails);
one that cannot be revoked is reported, never skipped silently: the run then fails (Incomplete,
holding the result) after its receipt is recorded. The receipt goes to the evidence
location and the ledger. Keys are not destroyed here: that is a retirement.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from sundown.errors import ConflictError
from sundown.ledger import RecordKind

from . import _rotation, _steps
from ._common import artifact_key, load_system, open_evidence
from ._receipt import Receipted, record_receipt
from .evidence import RevocationReceipt
from .models import Incomplete, RevokeParameters, RevokeResult


@flow(
    name="revoke-credentials",
    description="Emergency revocation of every credential a system holds (Vault tokens, "
    "leases, AppRole secret-ids, KV secrets, cloud access keys, SAS policies); ledger record.",
    persist_result=False,
)
def revoke_credentials(params: RevokeParameters) -> RevokeResult:
    spec = load_system(params)
    # Every credential the system holds: the spec's and what rotations created in their place.
    refs = _rotation.current_refs(spec)
    evidence_list = [_steps.revoke_credential(r.kind, r.id) for r in refs]
    revoked = [f"{e.kind} {e.identifier}" for e in evidence_list if e.verified]
    failed = [f"{e.kind} {e.identifier}: {e.method}" for e in evidence_list if not e.verified]
    at = datetime.now(UTC)
    receipt = RevocationReceipt(
        system=spec.name, reason=params.reason, at=at, credentials=evidence_list
    )

    def report(done: Receipted) -> str:
        return (
            f"# Credential revocation for `{spec.name}`\n\nReason: {params.reason}\n\n"
            + "| Credential | Revoked | Method |\n|---|---|---|\n"
            + "\n".join(
                f"| {e.kind} `{e.identifier}` | {'yes' if e.verified else '**NO**'} | {e.method} |"
                for e in evidence_list
            )
            + f"\n\nLedger record {done.sequence} (ledger head `{done.head}`).\n"
        )

    record = record_receipt(
        spec,
        open_evidence(spec),
        f"revocations/{spec.name}/{at:%Y%m%dT%H%M%S%fZ}.json",
        receipt,
        kind=RecordKind.REVOKE,
        subject=f"revoked {len(revoked)} credential(s) of {spec.name} ({params.reason})"
        + (f"; {len(failed)} NOT revoked" if failed else ""),
        taken=lambda url: ConflictError(f"{url} holds another revocation receipt"),
        report=report,
        artifact_key=artifact_key("revoke", spec.name),
        description=f"Revocation of {spec.name}'s credentials",
        # a new receipt (its key is the time): no earlier run can have ledgered it
        find_first=False,
    )
    result = RevokeResult(
        system=spec.name,
        revoked=revoked,
        failed=failed,
        ledger_sequence=record.sequence,
        ledger_head=record.head,
    )
    if failed:  # after the receipt and its ledger record: the run fails, naming each one
        raise Incomplete(
            f"revocation of {spec.name}'s credentials: {len(failed)} NOT revoked (revoke them "
            f"by hand now): " + "; ".join(failed) + f". {len(revoked)} revoked; ledger record "
            f"{record.sequence}.",
            result,
        )
    return result
