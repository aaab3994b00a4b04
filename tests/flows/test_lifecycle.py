"""deploy_model, rotate_credentials, revoke_credentials and retention_sweep on the embedded
default (file store, local keyring), through a real Prefect server."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.deploy import deploy_model
from flows.models import (
    DeployParameters,
    Incomplete,
    RetentionParameters,
    RevokeParameters,
    RotateParameters,
)
from flows.retention import retention_sweep
from flows.revoke import revoke_credentials
from flows.rotate import rotate_credentials
from sundown import registry
from sundown.envelope import decrypt_to_store, read_sidecar
from sundown.ledger import Ledger
from sundown.signing import verify_bundle, verify_model
from tests.flows.systems import System, make_system


def spec_params(system: System) -> dict[str, object]:
    return {"spec_path": str(system.spec_path), "variables": system.variables}


def ledger_kinds(system: System) -> dict[str, int]:
    ledger = Ledger(registry.open_store((system.root / "evidence").as_uri()))
    pub = registry.open_signer("local://sys-a-certificates").public_key_pem()
    return ledger.verify(pub).kinds


def make_model(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_bytes(b'{"layers": 2}')
    (folder / "sub" / "weights.bin").write_bytes(os.urandom(200_000))
    return folder


def test_deploy_encrypts_and_signs_into_every_weights_location(
    tmp_path: Path, prefect_api: str
) -> None:
    system = make_system(tmp_path / "sys", with_weights=False)
    model = make_model(tmp_path / "model")
    result = deploy_model(DeployParameters(**spec_params(system), model_dir=str(model)))
    weights = registry.open_store(system.store("models/sys-a").as_uri())
    for name in ("config.json", "sub/weights.bin"):
        sidecar = read_sidecar(weights, name)
        assert sidecar.key_uri == "local://sys-a-kek" and sidecar.artifact.version == result.version
        assert (system.store("models/sys-a") / name).read_bytes() != (model / name).read_bytes()
    # the bundle verifies over the decrypted model with the signing key
    restored = tmp_path / "restored"
    out = registry.open_store(restored.as_uri())
    for name in ("config.json", "sub/weights.bin"):
        decrypt_to_store(weights, name, out, name)
    bundle = (system.store("models/sys-a") / "model.sig").read_bytes()
    pub = registry.open_signer("local://sys-a-signing").public_key_pem()
    verify_model(restored, bundle, pub)
    assert verify_bundle(bundle, pub).name == "model"
    assert result.model_digest.startswith("sha256:") and result.kek_version == 1
    assert ledger_kinds(system) == {"genesis": 1, "deploy": 1}
    # a second deployment of the same version is refused (create-only) unless overwrite
    from sundown.errors import ConflictError

    with pytest.raises(ConflictError):
        deploy_model(
            DeployParameters(**spec_params(system), model_dir=str(model), version=result.version)
        )
    # re-run with overwrite and the same files: a resume, same ledger record, none appended
    again = deploy_model(
        DeployParameters(
            **spec_params(system), model_dir=str(model), version=result.version, overwrite=True
        )
    )
    assert again.ledger_sequence == result.ledger_sequence
    assert again.model_digest == result.model_digest
    assert ledger_kinds(system) == {"genesis": 1, "deploy": 1}
    # other files under a deployed version: refused before a single object is replaced
    stored = {p: p.read_bytes() for p in system.store("models/sys-a").rglob("*") if p.is_file()}
    (model / "config.json").write_bytes(b'{"layers": 3}')
    with pytest.raises(ConflictError, match="already deployed with other files"):
        deploy_model(
            DeployParameters(
                **spec_params(system), model_dir=str(model), version=result.version, overwrite=True
            )
        )
    assert {
        p: p.read_bytes() for p in system.store("models/sys-a").rglob("*") if p.is_file()
    } == stored


def test_rotate_rewraps_every_sidecar_and_retires_old_versions(
    system: System, tmp_path: Path
) -> None:
    weights = registry.open_store(system.store("models/sys-a").as_uri())
    before = {k: read_sidecar(weights, k) for k in ("config.json", "model.safetensors")}
    ciphertext = (system.store("models/sys-a") / "model.safetensors").read_bytes()
    spec = system.spec_path.read_text() + "credentials:\n  vault_token_accessors: [abcdefgh1234]\n"
    result = rotate_credentials(RotateParameters(spec_yaml=spec, variables=system.variables))
    assert result.credentials == [
        "vault_token abcdefgh1234: not rotated unattended (the new secret needs a declared "
        "consumer)"
    ]
    assert (result.old_version, result.new_version) == (1, 2)
    assert result.sidecars_checked == 2 and result.sidecars_rewrapped == 2
    assert result.retired_below == 2
    for key, old in before.items():
        new = read_sidecar(weights, key)
        assert new.key_version == 2 and new.wrapped_dek != old.wrapped_dek
        assert new.plaintext_sha256 == old.plaintext_sha256
    # the ciphertext was not rewritten, and it still decrypts
    assert (system.store("models/sys-a") / "model.safetensors").read_bytes() == ciphertext
    out = registry.open_store((tmp_path / "out").as_uri())
    decrypt_to_store(weights, "model.safetensors", out, "m")
    info = registry.open_key_service("local://sys-a-kek").info()
    assert info.min_decryption_version == 2 and info.versions == (2,)
    assert ledger_kinds(system) == {"genesis": 1, "rotate": 1}


def test_retention_dry_run_then_sweep(system: System) -> None:
    as_of = datetime.now(UTC) + timedelta(days=400)  # everything is past every rule
    logs, data = system.files("logs/sys-a"), system.files("data/sys-a")
    dry = retention_sweep(RetentionParameters(**spec_params(system), dry_run=True, as_of=as_of))
    assert dry.dry_run and dry.purged == len(logs) + len(data) and dry.archived == len(data)
    assert system.files("logs/sys-a") == logs and system.files("data/sys-a") == data
    assert not (system.root / "evidence").exists()
    # nothing is old enough today
    today = retention_sweep(RetentionParameters(**spec_params(system)))
    assert (today.purged, today.archived) == (0, 0)
    assert system.files("logs/sys-a") == logs

    result = retention_sweep(RetentionParameters(**spec_params(system), as_of=as_of))
    assert (result.archived, result.purged, result.held, result.failed) == (2, 5, 0, 0)
    assert system.files("logs/sys-a") == [] and system.files("data/sys-a") == []
    archived = system.files("archive/sys-a")
    assert sorted(a.rsplit("/", 1)[-1] for a in archived) == ["part-0.parquet", "part-1.parquet"]
    assert system.files("models/sys-a")  # weights have no retention rule: untouched
    assert system.canaries_intact()
    assert result.receipt_url and ledger_kinds(system) == {"genesis": 1, "retention": 1}


def test_revoke_reports_what_it_cannot_revoke(system: System) -> None:
    """Recorded, then the run fails naming it (a Completed run would hide it in the UI)."""
    spec = system.spec_path.read_text() + "credentials:\n  vault_token_accessors: [abcdefgh1234]\n"
    with pytest.raises(Incomplete, match=r"1 NOT revoked .*vault_token abcdefgh1234") as failed:
        revoke_credentials(
            RevokeParameters(spec_yaml=spec, variables=system.variables, reason="drill")
        )
    result = failed.value.result
    assert result.revoked == []
    assert len(result.failed) == 1 and result.failed[0].startswith("vault_token abcdefgh1234")
    assert ledger_kinds(system) == {"genesis": 1, "revoke": 1}


def test_revoke_aws_access_key_on_moto(system: System, moto_env: str) -> None:
    import uuid

    import boto3

    iam = boto3.client("iam")
    user = f"sys-a-ci-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    spec = system.spec_path.read_text() + (
        f"credentials:\n  aws_access_keys:\n    - user: {user}\n      access_key_ids: [{key_id}]\n"
    )
    result = revoke_credentials(RevokeParameters(spec_yaml=spec, variables=system.variables))
    assert result.failed == [] and result.revoked == [f"aws_access_key {user}/{key_id}"]
    assert iam.list_access_keys(UserName=user)["AccessKeyMetadata"] == []


def test_a_running_decommission_holds_off_every_other_changing_run(
    system: System, tmp_path: Path
) -> None:
    """While a run holds the system's lease (here: a decommission that is running), a
    deployment, a rotation and a retention sweep of that system stop before changing anything,
    naming it; an emergency revocation is never held off. Once released, they run."""
    from flows.lease import leased
    from sundown.errors import ConflictError

    evidence = registry.open_store((system.root / "evidence").as_uri())
    weights = system.files("models/sys-a")
    sidecar = (system.store("models/sys-a") / "model.safetensors.sidecar.json").read_bytes()
    model = make_model(tmp_path / "model")
    as_of = datetime.now(UTC) + timedelta(days=400)
    runs = {
        "deploy": lambda: deploy_model(
            DeployParameters(**spec_params(system), model_dir=str(model), version="v9")
        ),
        "rotate": lambda: rotate_credentials(RotateParameters(**spec_params(system))),
        "retention": lambda: retention_sweep(
            RetentionParameters(**spec_params(system), as_of=as_of)
        ),
    }
    with leased(evidence, "sys-a", 60, "decommission") as lease:
        for name, run in runs.items():
            with pytest.raises(ConflictError, match="a decommission of 'sys-a' is in progress"):
                run()
            assert name != "deploy" or not (system.root / "evidence" / "deployments").exists()
        assert system.files("models/sys-a") == weights
        assert (system.store("models/sys-a") / "model.safetensors.sidecar.json").read_bytes() == (
            sidecar
        )
        revoked = revoke_credentials(RevokeParameters(**spec_params(system), reason="drill"))
        assert revoked.revoked == [] and revoked.failed == []
        lease.check("the end of this test")  # none of them took it
    assert ledger_kinds(system) == {"genesis": 1, "revoke": 1}
    assert runs["rotate"]().new_version == 2  # released: the next run goes ahead
