"""The receipt helper's store and ledger steps (flows/_receipt.py), without Prefect: the file
store and the local keyring. The flows that use it (deploy, retention, decommission) are tested
end to end in tests/flows/ and tests/adversarial/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows._common import sha256_digest
from flows._receipt import in_ledger, receipt_bytes, store_receipt
from flows.evidence import (
    DeployReceipt,
    KekRotationReceipt,
    KekVersion,
    RevocationReceipt,
    RotationReceipt,
)
from sundown import registry
from sundown.credentials import CredentialEvidence, Finished, Outcome, Pending, RotationState
from sundown.errors import ConflictError
from sundown.ledger import Ledger, RecordKind
from sundown.spec.loader import load_spec
from sundown.spec.model import SystemSpec
from tests.certificate_sample import sample_certificate
from tests.flows.systems import make_system


@pytest.fixture
def spec(tmp_path: Path) -> SystemSpec:
    system = make_system(tmp_path / "sys", with_weights=False)
    return load_spec(system.spec_path, variables=system.variables)


def _receipt(version: str) -> DeployReceipt:
    return DeployReceipt(
        system="sys-a",
        version=version,
        kek=KekVersion(uri="local://sys-a-kek", version=1),
        signing_key="local://sys-a-signing",
        model_digest="sha256:" + "ab" * 32,
        files={"config.json": "sha256:" + "cd" * 32},
        locations=["file:///srv/models"],
        signatures=["file:///srv/models/model.sig"],
    )


def test_receipt_bytes_are_the_format_on_disk() -> None:
    """Indented JSON, keys sorted: what deployments have always stored (their digests hold)."""
    body = receipt_bytes(_receipt("v1")).decode()
    assert body.startswith('{\n "files": {\n  "config.json": "sha256:cdcd')
    assert '"kek": {\n  "uri": "local://sys-a-kek",\n  "version": 1\n }' in body


def test_the_same_bytes_are_this_receipt_and_other_bytes_are_never_replaced(
    spec: SystemSpec,
) -> None:
    store = registry.open_store(spec.evidence or "")
    body = receipt_bytes(_receipt("v1"))

    def taken(url: str) -> ConflictError:
        return ConflictError(f"{url} holds another receipt")

    url = store_receipt(store, "deployments/sys-a/v1.json", body, taken)
    assert store_receipt(store, "deployments/sys-a/v1.json", body, taken) == url  # a re-run
    other = receipt_bytes(_receipt("v2"))
    with pytest.raises(ConflictError, match=r"v1\.json holds another receipt"):
        store_receipt(store, "deployments/sys-a/v1.json", other, taken)
    with store.open("deployments/sys-a/v1.json") as f:
        assert f.read() == body


def test_a_receipt_is_ledgered_once_when_the_ledger_is_searched_first(spec: SystemSpec) -> None:
    """A re-run after a crash between the ledger append and the rest finds the record (one
    record per receipt); without ``find_first`` (a receipt no re-run repeats) each call
    appends."""
    digest = sha256_digest(receipt_bytes(_receipt("v1")))
    first = in_ledger(spec, RecordKind.DEPLOY, "deployed", digest, "file:///r.json")
    again = in_ledger(spec, RecordKind.DEPLOY, "deployed", digest, "file:///r.json")
    assert again.record.sequence == first.record.sequence
    ledger = Ledger(registry.open_store(spec.evidence or ""))
    pub = registry.open_signer(spec.keys.certificate).public_key_pem()
    assert ledger.verify(pub).kinds == {"genesis": 1, "deploy": 1}
    in_ledger(spec, RecordKind.DEPLOY, "deployed", digest, "file:///r.json", find_first=False)
    assert ledger.verify(pub).kinds == {"genesis": 1, "deploy": 2}


def _rotation_parts() -> tuple[list[Outcome], list[Finished], RotationState, datetime]:
    at = datetime(2026, 12, 5, 7, 30, 1, 123456, tzinfo=UTC)
    pending = Pending(unit="vault-token a", kind="vault-token", target="acc-old", not_before=at)
    evidence = CredentialEvidence(
        kind="vault-token", target="acc-old", action="revoked", at=at, checks={"lookup": "403"}
    )
    outcomes = [
        Outcome(
            unit="vault-token a",
            kind="vault-token",
            declared="acc-a",
            outcome="rotated",
            old=["acc-old"],
            new=["acc-new"],
            pending=[pending],
            evidence=[evidence],
        )
    ]
    finished = [
        Finished(pending=pending, outcome="finished", evidence=[evidence]),
        Finished(pending=pending, outcome="waiting"),  # its None fields are left out
    ]
    state = RotationState(current={"vault-token a": ["acc-new"]}, pending=[pending])
    return outcomes, finished, state, at


def _as_written_before(receipt: dict[str, object]) -> bytes:
    """How rotate and revoke wrote their receipts before they were typed."""
    return json.dumps(receipt, indent=1, sort_keys=True).encode()


def test_rotation_receipts_keep_the_bytes_earlier_versions_wrote() -> None:
    """The typed rotation receipts (rotate_credentials and the sweep's removal of replaced
    credentials) dump to exactly the JSON the hand-built dicts gave: the digests of stored
    receipts hold and the next run reads the same rotation state back."""
    outcomes, finished, state, at = _rotation_parts()
    typed = {
        "system": "sys-a",
        "credentials": ["vault-token acc-a: rotated"],
        "rotations": outcomes,
        "finished": finished,
        "rotation_state": state.to_json(),
        "previous_receipt": "file:///ev/rotations/sys-a/1.json",
        "at": at,
    }
    # what rotate and the sweep built by hand before
    by_hand = typed | {
        "rotations": [o.model_dump(mode="json") for o in outcomes],
        "finished": [f.model_dump(mode="json") for f in finished],
        "at": at.isoformat(),
    }
    kek = {
        "kek": "local://sys-a-kek",
        "old_version": 1,
        "new_version": 2,
        "sidecars_checked": 3,
        "sidecars_rewrapped": 2,
        "retired_below": None,
    }
    full = KekRotationReceipt.model_validate(typed | kek)
    assert receipt_bytes(full) == _as_written_before(by_hand | kek)
    removal = RotationReceipt.model_validate(typed | {"kek": None})
    assert receipt_bytes(removal) == _as_written_before(by_hand | {"kek": None})
    assert '"not_before": "2026-12-05T07:30:01.123456+00:00"' in receipt_bytes(removal).decode()
    # Finished drops its unset fields: the waiting removal has no reason or evidence key
    assert set(json.loads(receipt_bytes(removal))["finished"][1]) == {"pending", "outcome"}


def test_revocation_receipts_keep_the_bytes_earlier_versions_wrote() -> None:
    at = datetime(2026, 12, 5, 7, 30, 1, 123456, tzinfo=UTC)
    revoked = sample_certificate(now=at).certificate.credentials_revoked
    receipt = RevocationReceipt(system="sys-a", reason="leak", at=at, credentials=revoked)
    assert receipt_bytes(receipt) == _as_written_before(
        {
            "system": "sys-a",
            "reason": "leak",
            "at": at.isoformat(),
            "credentials": [e.model_dump(mode="json") for e in revoked],
        }
    )


def test_a_rotation_receipt_refuses_fields_it_does_not_know() -> None:
    """Typed receipts forbid extra fields: a misspelt field fails at the flow, not on disk."""
    at = _rotation_parts()[3]
    with pytest.raises(ValidationError, match="sidecars_rewraped"):
        KekRotationReceipt.model_validate(
            {
                "system": "sys-a",
                "kek": "local://k",
                "old_version": 1,
                "new_version": 2,
                "sidecars_checked": 0,
                "sidecars_rewraped": 0,
                "sidecars_rewrapped": 0,
                "retired_below": None,
                "credentials": [],
                "rotations": [],
                "finished": [],
                "rotation_state": {},
                "previous_receipt": None,
                "at": at,
            }
        )
