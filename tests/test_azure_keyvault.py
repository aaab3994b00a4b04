"""Azure Key Vault keys (``azure-kv://``) at the request level, against a local HTTPS server that
answers as the Key Vault keys REST API does (no emulator exists; tests/fixtures/fake_kms.py).

The real SDK (azure-keyvault-keys) and the real credential chain (DefaultAzureCredential, here
App Service managed identity) talk to it over TLS, trusting only the fake's self-signed
certificate. Tests assert what was sent and what Sundown refused. What the fake cannot prove is
in docs/known-gaps.md ("Azure Key Vault").
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors import azure_keyvault
from sundown import registry
from sundown.envelope import read_sidecar_file
from sundown.errors import InputError, IntegrityError, KeyDestroyedError
from tests.cli_run import created_key, decrypt_moved, run
from tests.fixtures.fake_kms import AZURE_ACCESS_TOKEN, FakeServer, kv_key

pytestmark = pytest.mark.timeout(120)


def new_uri() -> str:
    return f"azure-kv://sundown-test.vault.azure.net/keys/k-{secrets.token_hex(4)}"


def created(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    return created_key(capsys, new_uri(), *extra)


def name_of(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def test_create_sends_the_documented_requests_over_tls_with_a_challenge(
    azure_kv_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = created(capsys)
    name = name_of(uri)
    create = azure_kv_env.sent("POST", f"/keys/{name}/create")
    # Key Vault's challenge: a client's first request to a vault goes without a token and is
    # answered 401 with the authority (the SDK then caches the challenge per vault URL).
    assert any(
        "authorization" not in r.headers and r.path.startswith("/keys/")
        for r in azure_kv_env.requests
    )
    authorized = [r for r in create if "authorization" in r.headers]
    assert len(authorized) == 1
    assert authorized[0].headers["authorization"] == f"Bearer {AZURE_ACCESS_TOKEN}"
    assert authorized[0].query["api-version"]
    body = authorized[0].body
    assert body["kty"] == "RSA" and body["key_size"] == 3072
    assert sorted(body["key_ops"]) == ["unwrapKey", "wrapKey"]
    assert azure_kv_env.url.startswith("https://")
    # The name again: refused before Key Vault would add a version to it.
    code, _, err = run(capsys, "keys", "create", uri)
    assert code != 0 and "already exists" in err, err
    assert len(azure_kv_env.sent("POST", f"/keys/{name}/create")) == len(create)
    # Signing: EC P-256 (sign, verify); public key from the JWK.
    signing = created(capsys, "--signing")
    body = azure_kv_env.sent("POST", f"/keys/{name_of(signing)}/create")[-1].body
    assert body["kty"] == "EC" and body["crv"] == "P-256"
    code, pem, err = run(capsys, "keys", "public-key", signing)
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----"), err
    assert isinstance(serialization.load_pem_public_key(pem.encode()), ec.EllipticCurvePublicKey)


def test_wrap_binds_the_artifact_and_a_moved_sidecar_is_refused(
    azure_kv_env: FakeServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    uri = created(capsys)
    name = name_of(uri)
    src, enc, out = tmp_path / "model.bin", tmp_path / "model.enc", tmp_path / "model.out"
    src.write_bytes(secrets.token_bytes(50_000))
    code, _, err = run(capsys, "encrypt", "--key", uri, str(src), str(enc))
    assert code == 0, err
    # wrapKey is a public-key operation: the SDK performs it locally with the key read (GET).
    assert not [r for r in azure_kv_env.requests if r.path.endswith("/wrapkey")]
    code, _, err = run(capsys, "decrypt", str(enc), str(out))
    assert code == 0, err
    assert out.read_bytes() == src.read_bytes()
    unwrap = [
        r for r in azure_kv_env.sent("POST", f"/keys/{name}/") if r.path.endswith("/unwrapkey")
    ]
    assert unwrap and unwrap[-1].body["alg"] == "RSA-OAEP-256"
    sidecar = read_sidecar_file(tmp_path / "model.enc.sidecar.json")
    version = sidecar.wrapped_key.ciphertext.split(b".", 1)[0].decode()
    assert unwrap[-1].path == f"/keys/{name}/{version}/unwrapkey"

    # Moved with its binding rewritten: Key Vault unwraps (no AAD), Sundown's binding check
    # inside the wrapped plaintext refuses; nothing written.
    code, err = decrypt_moved(capsys, enc)
    assert code == 3 and "bound to another artifact" in err, err
    assert not (tmp_path / "other.out").exists()
    with pytest.raises(IntegrityError, match="bound to another artifact"):
        azure_keyvault.AzureKeyVaultKey(uri).bound_to(b"elsewhere").unwrap(sidecar.wrapped_key)
    # A wrapped key whose version part is altered is refused before any request.
    forged = type(sidecar.wrapped_key)(uri, 1, b"not-a-version." + b"x" * 10)
    with pytest.raises(IntegrityError, match="does not name a Key Vault key version"):
        azure_keyvault.AzureKeyVaultKey(uri).unwrap(forged)


def test_rotation_is_key_vaults_own(
    azure_kv_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Request level: Key Vault's own rotate operation, and the new version's id in the wrapped
    key (what a rotation guarantees: the conformance suite)."""
    uri = created(capsys)
    key = azure_keyvault.AzureKeyVaultKey(uri).bound_to(b"ad")
    _, old = key.new_data_key()
    assert azure_keyvault.AzureKeyVaultKey(uri).rotate() == 2
    assert azure_kv_env.sent("POST", f"/keys/{name_of(uri)}/rotate")
    _, new = key.new_data_key()
    assert new.key_version == 2 and new.ciphertext.split(b".")[0] != old.ciphertext.split(b".")[0]


def test_sign_sends_es256_over_the_digest(
    azure_kv_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Request level (the signature itself is verified by the conformance suite): Key Vault's
    raw r||s answer is returned as DER."""
    uri = created(capsys, "--signing")
    message = b"statement" * 1000
    signature = registry.open_signer(uri).sign(message)
    sent = [r for r in azure_kv_env.requests if r.path.endswith("/sign")][-1]
    assert sent.path.startswith(f"/keys/{name_of(uri)}/")
    assert sent.body["alg"] == "ES256"
    digest = hashlib.sha256(message).digest()
    assert (
        base64.urlsafe_b64decode(sent.body["value"] + "=" * (-len(sent.body["value"]) % 4))
        == digest
    )
    assert signature[0] == 0x30  # DER


def test_destroy_soft_deletes_states_the_purge_date_then_purges_after_it(
    azure_kv_env: FakeServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    uri = created(capsys)
    name = name_of(uri)
    src, enc = tmp_path / "w.bin", tmp_path / "w.enc"
    src.write_bytes(b"weights" * 1000)
    assert run(capsys, "encrypt", "--key", uri, str(src), str(enc))[0] == 0
    code, out, err = run(capsys, "keys", "destroy", uri, "--yes")
    assert code == 0, err
    assert azure_kv_env.sent("DELETE", f"/keys/{name}")
    record = kv_key(azure_kv_env, name)
    assert record.purge_date is not None
    until = datetime.fromtimestamp(record.purge_date, UTC)
    assert timedelta(days=89) < until - datetime.now(UTC) <= timedelta(days=90, minutes=5)
    assert "verified: yes" in out and f"purge pending until {until.date().isoformat()}" in out
    assert "ce: claimable: deleted; purge pending until" in out
    # Use refused, naming the purge date; nothing written.
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "out"))
    assert code == 5 and "deleted, purge scheduled for" in err, err
    assert not (tmp_path / "out").exists()
    # cancel-deletion recovers it within the window.
    code, _, err = run(capsys, "keys", "cancel-deletion", uri)
    assert code == 0, err
    assert azure_kv_env.sent("POST", f"/deletedkeys/{name}/recover")
    assert run(capsys, "decrypt", str(enc), str(tmp_path / "out"))[0] == 0
    # Destroyed again, and the purge date passed with the key still listed: destroy purges.
    assert run(capsys, "keys", "destroy", uri, "--yes")[0] == 0
    kv_key(azure_kv_env, name).purge_date = int(time.time()) - 1
    code, out, err = run(capsys, "keys", "destroy", uri, "--yes")
    assert code == 0, err
    assert azure_kv_env.sent("DELETE", f"/deletedkeys/{name}")
    assert "gone (purged)" in out and "ce: claimable: key purged by Key Vault" in out
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "out2"))
    assert code == 4 and "no such key in the vault (nor deleted)" in err, err


def test_sundown_refuses_a_disabled_version_the_server_would_still_serve(
    azure_kv_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = created(capsys)
    name = name_of(uri)
    key = azure_keyvault.AzureKeyVaultKey(uri).bound_to(b"ad")
    _, wrapped = key.new_data_key()
    record = kv_key(azure_kv_env, name)
    record.lenient = True
    record.versions[0].enabled = False
    before = len([r for r in azure_kv_env.requests if r.path.endswith("/unwrapkey")])
    with pytest.raises(KeyDestroyedError, match=r"is disabled \(enabled=false\)"):
        key.unwrap(wrapped)
    with pytest.raises(KeyDestroyedError, match="disabled"):
        key.new_data_key()
    assert len([r for r in azure_kv_env.requests if r.path.endswith("/unwrapkey")]) == before


def test_an_exportable_key_is_destroyed_but_not_claimable(
    azure_kv_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key with a release policy (``exportable``) may have copies anywhere: the destruction
    is carried out and verified, but cryptographic erase is not claimed."""
    uri = created(capsys)
    kv_key(azure_kv_env, name_of(uri)).exportable = True
    code, out, err = run(capsys, "keys", "destroy", uri, "--yes")
    assert code == 0, err
    assert "exportable=True" in out and "verified: yes" in out and "ce: NOT claimable" in out


def test_under_purge_protection_destroy_never_asks_for_a_purge(
    azure_kv_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A vault with purge protection (recovery level "Recoverable"): Key Vault alone purges at
    the date; a re-run past it sends no purge and still states what it sees."""
    uri = created(capsys)
    name = name_of(uri)
    azure_kv_env.state.purge_protection = True
    try:
        assert run(capsys, "keys", "destroy", uri, "--yes")[0] == 0
        kv_key(azure_kv_env, name).purge_date = int(time.time()) - 1
        code, out, err = run(capsys, "keys", "destroy", uri, "--yes")
    finally:
        azure_kv_env.state.purge_protection = False
    assert code == 0, err
    assert not azure_kv_env.sent("DELETE", f"/deletedkeys/{name}")
    assert "left to Key Vault (recovery level Recoverable)" in out and "verified: yes" in out


def test_an_endpoint_override_off_loopback_is_refused_before_any_request(
    azure_kv_env: FakeServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The override turns off the SDK's challenge-resource check, so it must not be able to
    send the bearer token anywhere but a loopback host."""
    uri = created(capsys)
    before = len(azure_kv_env.requests)
    monkeypatch.setenv(
        "SUNDOWN_AZURE_KEYVAULT_ENDPOINT", "https://sundown-test.vault.azure.net.evil.example"
    )
    with pytest.raises(InputError, match="SUNDOWN_AZURE_KEYVAULT_ENDPOINT names host"):
        registry.open_key_service(uri)
    assert len(azure_kv_env.requests) == before
