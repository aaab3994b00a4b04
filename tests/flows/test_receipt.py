"""The receipt helper's store and ledger steps (flows/_receipt.py), without Prefect: the file
store and the local keyring. The flows that use it (deploy, retention, decommission) are tested
end to end in tests/flows/ and tests/adversarial/."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows._common import sha256_digest
from flows._receipt import in_ledger, receipt_bytes, store_receipt
from flows.evidence import DeployReceipt, KekVersion
from sundown import registry
from sundown.errors import ConflictError
from sundown.ledger import Ledger, RecordKind
from sundown.spec.loader import load_spec
from sundown.spec.model import SystemSpec
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
