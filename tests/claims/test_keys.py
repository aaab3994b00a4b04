"""Claims about keys on the decommissioning certificate, each made false in the world.

For every claim the certificate makes about a key (destroyed, verified from its material,
cryptographic erase) and about credentials (dead at verification), a test breaks it for real
(a destroy killed halfway, a key file that cannot be removed, key files restored from a backup,
an exportable Vault key, a token left alive) and asserts that the certificate no longer makes
it. Real file store, local keyring, OpenBao and Prefect test server; no SDK is mocked. Where a
step is interrupted, the test wraps the real function and stops the run at that point.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hvac
import pytest

from connectors import keyring
from flows import _steps
from flows.decommission import decommission_system
from flows.models import DecommissionParameters, DecommissionResult, Party
from sundown import registry
from sundown.certificate import Certificate, verify_certificate
from sundown.envelope import Artifact, encrypt_to_store
from sundown.errors import KeyDestroyedError
from sundown.keys import WrappedKey
from tests.fixtures.openbao import OpenBao
from tests.flows.systems import System, make_system
from tests.retirement import retirement

APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")


class Interrupted(RuntimeError):
    """The run stops here, as if the worker died (the journal keeps what was recorded)."""


def _params(system: System, **kw: Any) -> DecommissionParameters:
    return DecommissionParameters(spec_path=str(system.spec_path), variables=system.variables, **kw)


def _retire(system: System) -> DecommissionResult:
    plan = decommission_system(_params(system, dry_run=True))
    return retirement(_params(system, approve_digest=plan.plan_digest, approver=APPROVER))


def _certificate(system: System, result: DecommissionResult) -> Certificate:
    assert result.certificate_url, result
    path = Path(result.certificate_url.removeprefix("file://"))
    pub = registry.open_signer(f"local://{system.name}-certificates").public_key_pem()
    return verify_certificate(path.read_bytes(), pub).certificate


def _plan_keys(result: DecommissionResult) -> list[dict[str, Any]]:
    lines = Path(result.plan_path).read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("t") == "key"]


def _claims_ce(cert: Certificate, uri: str) -> bool:
    """Whether any location's sanitization claims cryptographic erase by this key."""
    return any(uri in claim.keys for loc in cert.locations for claim in loc.sanitization)


def _sentinel(key_dir: Path) -> WrappedKey:
    tomb = json.loads((key_dir / "DESTROYED.json").read_text())
    return keyring._wrapped_from_json(tomb["sentinel"])


@pytest.fixture
def system(tmp_path: Path, prefect_api: str) -> System:
    return make_system(tmp_path / "sys", "sys-k")


# --------------------------------------------------------------------------------------------
# (a) "the key was destroyed and verified": a destroy killed after the tombstone


def test_destroy_killed_after_the_tombstone_is_finished_and_proved(
    system: System, sundown_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_dir = sundown_home / "keys" / "sys-k-kek"
    real = keyring.LocalKey._begin_destroy

    def tombstone_then_die(self: keyring.LocalKey) -> dict[str, Any]:
        real(self)
        raise Interrupted("killed after the tombstone, before any key file was removed")

    with monkeypatch.context() as m:
        m.setattr(keyring.LocalKey, "_begin_destroy", tombstone_then_die)
        with pytest.raises(Exception, match="killed after the tombstone"):
            _retire(system)
    # The world the bug certified: tombstone written, v1.key still there and still unwrapping.
    assert (key_dir / "DESTROYED.json").exists() and (key_dir / "v1.key").exists()
    sentinel = _sentinel(key_dir)
    assert keyring._unwrap((key_dir / "v1.key").read_bytes(), sentinel)
    assert _steps.key_check("local://sys-k-kek") != "gone"  # the tombstone is not proof

    result = decommission_system(_params(system))  # resumes the approved plan
    assert result.resumed
    assert result.status == "complete", result.exceptions
    assert not (key_dir / "v1.key").exists()
    assert sorted(p.name for p in key_dir.iterdir()) == [".lock", "DESTROYED.json"]
    with pytest.raises(KeyDestroyedError):
        registry.key_for_destruction("local://sys-k-kek").unwrap(sentinel)
    cert = _certificate(system, result)
    [key] = cert.keys_destroyed
    assert key.verified and key.ce_claimable
    assert key.checks["key files remaining"] == "none"
    assert key.checks["sentinel unwrap from key file"] == "v1 key file absent"
    assert key.limits and "not a media sanitization" in key.limits


def test_key_material_that_cannot_be_removed_is_not_certified(
    system: System, sundown_home: Path
) -> None:
    """v1.key is immutable (chattr +i): root cannot overwrite or unlink it. The destroy reports
    it, the key is not verified, no CE is claimed and the certificate is not complete."""
    victim = sundown_home / "keys" / "sys-k-kek" / "v1.key"
    if shutil.which("chattr") is None:
        pytest.fail("chattr is needed to make key material the destroy cannot remove")
    if subprocess.run(["chattr", "+i", str(victim)], capture_output=True).returncode != 0:
        pytest.xfail("this filesystem has no immutable attribute (chattr +i refused)")
    try:
        result = _retire(system)
        assert victim.exists()
    finally:
        subprocess.run(["chattr", "-i", str(victim)], check=True)
    assert result.status == "failed", result
    cert = _certificate(system, result)
    assert cert.status.value == "failed"
    [key] = cert.keys_destroyed
    assert not key.verified and not key.ce_claimable
    assert "v1.key" in key.checks["key files remaining"]
    assert key.checks["sentinel unwrap from key file"].startswith("succeeded")
    assert any(e.kind == "key destruction not verified" for e in cert.exceptions)
    assert not _claims_ce(cert, key.uri)


# --------------------------------------------------------------------------------------------
# (b) "the key is gone at verification": key files restored from a backup after the destroy


def test_key_restored_before_verification_is_an_exception_not_complete(
    system: System, sundown_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_dir = sundown_home / "keys" / "sys-k-kek"
    backup = {p.name: p.read_bytes() for p in key_dir.iterdir() if p.name != ".lock"}
    real = _steps.destroy_key.fn

    def destroy_then_restore(uri: str, versions: list[int], *args: Any) -> Any:
        evidence = real(uri, versions, *args)
        if uri == "local://sys-k-kek":
            assert evidence.verified  # the destroy itself worked ...
            for name, data in backup.items():  # ... then a backup puts the files back
                (key_dir / name).write_bytes(data)
                (key_dir / name).chmod(0o600)
        return evidence

    monkeypatch.setattr(_steps.destroy_key, "fn", destroy_then_restore)
    result = _retire(system)
    assert result.status == "failed", result
    cert = _certificate(system, result)
    assert cert.status.value == "failed"
    [key] = cert.keys_destroyed
    assert not key.verified and not key.ce_claimable
    assert key.checks["post-retirement check"].startswith("still answers")
    assert "v1.key" in key.checks["post-retirement check"]
    assert any(
        e.subject == key.uri and e.kind == "key destruction not verified" for e in cert.exceptions
    )
    assert not _claims_ce(cert, key.uri)


# --------------------------------------------------------------------------------------------
# Vault KEKs: (c) exportable / plaintext backup, (d) a destroy interrupted


def _vault_system(tmp_path: Path, name: str, system_name: str = "sys-v") -> tuple[System, str]:
    """The small system, its KEK in OpenBao's transit engine (weights encrypted under it)."""
    system = make_system(tmp_path / "sys", system_name, with_weights=False)
    uri = f"vault://transit/{name}"
    spec = system.spec_path.read_text()
    local = f"  kek: local://{system_name}-kek\n"
    assert local in spec
    system.spec_path.write_text(spec.replace(local, f"  kek: {uri}\n"))
    return system, uri


def _encrypt_weights(system: System, uri: str) -> None:
    kek = registry.open_key_service(uri)
    weights = registry.open_store(system.store(f"models/{system.name}").as_uri())
    for fname in ("config.json", "model.safetensors"):
        encrypt_to_store(
            io.BytesIO(os.urandom(2000)),
            weights,
            fname,
            kek,
            Artifact(system=system.name, path=fname, version="v1"),
        )


@pytest.mark.parametrize(
    "flags",
    [{"exportable": True}, {"exportable": True, "allow_plaintext_backup": True}],
    ids=["exportable", "plaintext-backup"],
)
def test_exportable_vault_kek_is_planned_so_and_gets_no_ce_claim(
    tmp_path: Path,
    prefect_api: str,
    vault_env: OpenBao,
    vault_name: str,
    flags: dict[str, bool],
) -> None:
    """A transit key not created by Sundown, exportable (and allowing plaintext backup):
    the plan records the facts, the certificate repeats them and does not claim CE."""
    system, uri = _vault_system(tmp_path, vault_name)
    hvac.Client(url=vault_env.addr, token=vault_env.root_token).secrets.transit.create_key(
        vault_name, **flags
    )
    _encrypt_weights(system, uri)
    result = _retire(system)
    [planned] = _plan_keys(result)
    assert planned["uri"] == uri and planned["exportable"] is True
    assert planned["allow_plaintext_backup"] is bool(flags.get("allow_plaintext_backup"))
    assert planned["algorithm"] == "aes256-gcm96"
    from sundown.plan import read_plan

    shown = read_plan(result.plan_path).to_markdown()
    assert "exportable" in shown and "no cryptographic erase claimed" in shown
    assert result.status == "complete with exceptions", result
    cert = _certificate(system, result)
    [key] = cert.keys_destroyed
    assert key.verified  # Vault's copy is proved gone ...
    assert key.exportable is True and not key.ce_claimable  # ... CE is not claimed
    assert key.ce_basis and "exportable" in key.ce_basis
    assert any(
        e.subject == uri and e.kind == "cryptographic erase not claimed" for e in cert.exceptions
    )
    assert not _claims_ce(cert, uri)


def test_vault_kek_made_exportable_after_review_or_approval_gets_no_ce_claim(
    tmp_path: Path,
    prefect_api: str,
    vault_env: OpenBao,
    vault_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Export switched on after the plan was reviewed: the plan's digest changes, so the
    approval is refused. Switched on after approval (during the purge): the destroy sees it and
    the certificate does not claim CE."""
    from sundown.errors import InputError

    system, uri = _vault_system(tmp_path, vault_name)
    registry.create_key(uri)
    _encrypt_weights(system, uri)
    client = hvac.Client(url=vault_env.addr, token=vault_env.root_token)

    def export_on() -> None:
        client.adapter.post(f"/v1/transit/keys/{vault_name}/config", json={"exportable": True})

    plan = decommission_system(_params(system, dry_run=True))
    export_on()
    with pytest.raises(InputError, match="the plan changed since it was reviewed"):
        decommission_system(_params(system, approve_digest=plan.plan_digest, approver=APPROVER))

    # A second system whose key is switched after approval, between purge and destroy.
    other, other_uri = _vault_system(tmp_path / "b", vault_name + "b", "sys-w")
    registry.create_key(other_uri)
    _encrypt_weights(other, other_uri)
    real = _steps.destroy_key.fn

    def switch_then_destroy(uri: str, versions: list[int], *args: Any) -> Any:
        client.adapter.post(f"/v1/transit/keys/{vault_name}b/config", json={"exportable": True})
        return real(uri, versions, *args)

    monkeypatch.setattr(_steps.destroy_key, "fn", switch_then_destroy)
    result = _retire(other)
    [planned] = _plan_keys(result)
    assert planned["exportable"] is False
    [key] = _certificate(other, result).keys_destroyed
    assert key.verified and key.exportable is True and not key.ce_claimable
    assert result.status == "complete with exceptions", result


def test_vault_destroy_interrupted_after_deletion_allowed_is_finished(
    tmp_path: Path,
    prefect_api: str,
    vault_env: OpenBao,
    vault_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from connectors import vault

    system, uri = _vault_system(tmp_path, vault_name)
    registry.create_key(uri)
    _encrypt_weights(system, uri)
    real = vault.VaultTransitKey._set_config

    def allow_then_die(self: Any, client: Any, **config: Any) -> None:
        real(self, client, **config)
        if config.get("deletion_allowed"):
            raise Interrupted("killed after deletion_allowed=true, before the delete")

    with monkeypatch.context() as m:
        m.setattr(vault.VaultTransitKey, "_set_config", allow_then_die)
        with pytest.raises(Exception, match="killed after deletion_allowed"):
            _retire(system)
    client = hvac.Client(url=vault_env.addr, token=vault_env.root_token)
    assert client.secrets.transit.read_key(vault_name)["data"]["deletion_allowed"] is True
    assert _steps.key_check(uri) != "gone"

    result = decommission_system(_params(system))
    assert result.resumed and result.status == "complete", result.exceptions
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.transit.read_key(vault_name)
    [key] = _certificate(system, result).keys_destroyed
    assert key.verified and key.ce_claimable and key.exportable is False
    assert key.checks["read key after delete"] == "404 not found"


# --------------------------------------------------------------------------------------------
# (e) "the credentials are dead": a token left alive at verification


def test_credential_still_live_at_verification_is_not_complete(
    system: System, vault_env: OpenBao, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation step reports success but the token was never revoked (a broken connector
    or a worker that lies): the verification looks the token up, finds it, and the certificate
    is failed."""
    from sundown.certificate import CredentialRevoked

    client = hvac.Client(url=vault_env.addr, token=vault_env.root_token)
    accessor = client.auth.token.create(policies=["default"], ttl="1h")["auth"]["accessor"]
    system.spec_path.write_text(
        system.spec_path.read_text() + f"credentials:\n  vault_token_accessors: [{accessor}]\n"
    )

    def lying_revoke(kind: str, ident: str) -> CredentialRevoked:
        from datetime import UTC, datetime

        return CredentialRevoked(
            kind=kind,
            identifier=ident,
            revoked_at=datetime.now(UTC),
            method="revoked (claimed)",
            checks={"lookup-accessor after": "invalid accessor (claimed)"},
            verified=True,
        )

    monkeypatch.setattr(_steps.revoke_credential, "fn", lying_revoke)
    result = _retire(system)
    assert client.auth.token.lookup_accessor(accessor)["data"]  # still live
    assert result.status == "failed", result
    cert = _certificate(system, result)
    assert cert.status.value == "failed"
    assert any(e.subject == accessor and e.kind == "credential still live" for e in cert.exceptions)
