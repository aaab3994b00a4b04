"""``revoke_credentials``: emergency revocation of every credential a system holds.

Each credential of the spec is revoked through its connector and proven dead (lookup fails);
one that cannot be revoked is reported, never skipped silently. The receipt goes to the evidence
location and the ledger. Keys are not destroyed here: that is a retirement.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from sundown.errors import ConflictError
from sundown.ledger import RecordKind
from sundown.store import put_once

from . import _rotation, _steps
from ._common import (
    artifact_key,
    ledger_append,
    load_system,
    object_url,
    open_evidence,
    sha256_digest,
)
from .models import RevokeParameters, RevokeResult


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
    receipt = {
        "system": spec.name,
        "reason": params.reason,
        "at": datetime.now(UTC).isoformat(),
        "credentials": [e.model_dump(mode="json") for e in evidence_list],
    }
    body = json.dumps(receipt, indent=1, sort_keys=True).encode()
    store = open_evidence(spec)
    key = f"revocations/{spec.name}/{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.json"
    if not put_once(store, key, body):
        raise ConflictError(f"{object_url(store, key)} holds another revocation receipt")
    record = ledger_append(
        spec,
        RecordKind.REVOKE,
        f"revoked {len(revoked)} credential(s) of {spec.name} ({params.reason})"
        + (f"; {len(failed)} NOT revoked" if failed else ""),
        sha256_digest(body),
        object_url(store, key),
    )
    create_markdown_artifact(
        f"# Credential revocation for `{spec.name}`\n\nReason: {params.reason}\n\n"
        + "| Credential | Revoked | Method |\n|---|---|---|\n"
        + "\n".join(
            f"| {e.kind} `{e.identifier}` | {'yes' if e.verified else '**NO**'} | {e.method} |"
            for e in evidence_list
        )
        + f"\n\nLedger record {record.record.sequence} (ledger head `{record.head}`).\n",
        key=artifact_key("revoke", spec.name),
        description=f"Revocation of {spec.name}'s credentials",
    )
    return RevokeResult(
        system=spec.name,
        revoked=revoked,
        failed=failed,
        ledger_sequence=record.record.sequence,
        ledger_head=record.head,
    )
