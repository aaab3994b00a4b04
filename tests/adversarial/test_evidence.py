"""Adversarial: evidence read back from the evidence location (receipts, journal records) is
parsed as its typed format before it steers anything (issue #16, "Typed evidence").

The attacker writes into the evidence location with create-only puts (what Object Lock still
allows). Each test runs the real flow on the Prefect test server, the file store and the local
keyring, and asserts that the run stopped with an error naming the file, and that nothing was
written where the flow would have written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.deploy import deploy_model
from flows.models import DeployParameters
from sundown.errors import ConflictError, IntegrityError
from tests.flows.systems import make_system


def _model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(b'{"layers": 2}')
    (folder / "weights.bin").write_bytes(b"w" * 4096)
    return folder


@pytest.mark.parametrize(
    ("planted", "error", "says"),
    [
        (b"\x00not json", IntegrityError, "is not a deployment receipt"),
        (b'{"files": {}, "note": "deployed already"}', IntegrityError, "not a deployment receipt"),
        (b"[1, 2, 3]", IntegrityError, "not a deployment receipt"),
    ],
)
def test_a_planted_deployment_receipt_stops_the_deployment_before_any_write(
    tmp_path: Path, prefect_api: str, planted: bytes, error: type[Exception], says: str
) -> None:
    """A file planted at the version's receipt key, which is not a deployment receipt (not
    JSON, another shape, extra fields): IntegrityError naming it, raised before a single object
    is encrypted into the weights location; the planted file is kept and nothing is ledgered.
    (It used to surface as a JSON or attribute error from the raw dict.)"""
    system = make_system(tmp_path / "sys", with_weights=False)
    receipt = system.root / "evidence" / "deployments" / "sys-a" / "v1.json"
    receipt.parent.mkdir(parents=True)
    receipt.write_bytes(planted)
    with pytest.raises(error) as info:
        deploy_model(
            DeployParameters(
                spec_path=str(system.spec_path),
                variables=system.variables,
                model_dir=str(_model(tmp_path / "model")),
                version="v1",
            )
        )
    assert says in str(info.value) and "v1.json" in str(info.value)
    assert system.files("models/sys-a") == []
    assert receipt.read_bytes() == planted
    assert not (system.root / "evidence" / "records").exists() or not [
        p for p in (system.root / "evidence" / "records").iterdir() if '"deploy"' in p.read_text()
    ]


def test_a_genuine_receipt_of_other_files_is_another_deployment(
    tmp_path: Path, prefect_api: str
) -> None:
    """A well-formed receipt of the same version with other files: ConflictError, nothing
    overwritten (the recorded deployment stands)."""
    system = make_system(tmp_path / "sys", with_weights=False)
    params = DeployParameters(
        spec_path=str(system.spec_path),
        variables=system.variables,
        model_dir=str(_model(tmp_path / "model")),
        version="v1",
    )
    deploy_model(params)
    receipt = system.root / "evidence" / "deployments" / "sys-a" / "v1.json"
    stored = json.loads(receipt.read_text())
    before = {
        p: (system.store("models/sys-a") / p).read_bytes() for p in system.files("models/sys-a")
    }
    (tmp_path / "model" / "weights.bin").write_bytes(b"x" * 4096)
    with pytest.raises(ConflictError, match="already deployed with other files"):
        deploy_model(params)
    assert json.loads(receipt.read_text()) == stored
    after = {
        p: (system.store("models/sys-a") / p).read_bytes() for p in system.files("models/sys-a")
    }
    assert after == before
