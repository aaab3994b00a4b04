"""The Vault transit key service and signer against a real OpenBao dev server."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import hvac
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors import vault
from sundown import dsse, errors, registry
from sundown.keys import KeyService, Signer, WrappedKey
from tests.fixtures.openbao import OpenBao
from tests.fixtures.process import free_port


def root(openbao: OpenBao) -> hvac.Client:
    return hvac.Client(url=openbao.addr, token=openbao.root_token)


@pytest.fixture
def kek(vault_env: OpenBao, vault_name: str) -> vault.VaultTransitKey:
    uri = f"vault://transit/{vault_name}"
    registry.create_key(uri)
    ks = registry.open_key_service(uri)
    assert isinstance(ks, vault.VaultTransitKey)
    return ks


# --- URIs ------------------------------------------------------------------------------------


def test_uri_parsing() -> None:
    assert vault.parse_uri("vault://transit/sys-a") == ("transit", "sys-a")
    assert vault.parse_uri("vault://team/transit/sys-a/") == ("team/transit", "sys-a")
    for bad in ("vault://transit", "vault://transit/a b", "vault://transit/x?v=1", "s3://a/b"):
        with pytest.raises(errors.InputError):
            vault.parse_uri(bad)


# --- creation --------------------------------------------------------------------------------


def test_create_kek_is_non_exportable_and_keeps_a_sentinel(
    vault_env: OpenBao, vault_name: str
) -> None:
    uri = f"vault://transit/{vault_name}"
    info = registry.create_key(uri)
    assert (info.kind, info.algorithm, info.latest_version, info.versions) == (
        "kek",
        "aes256-gcm96",
        1,
        (1,),
    )
    data = root(vault_env).secrets.transit.read_key(vault_name)["data"]
    assert data["exportable"] is False
    assert data["allow_plaintext_backup"] is False
    assert data["deletion_allowed"] is False
    record = root(vault_env).secrets.kv.v2.read_secret_version(
        path=f"sundown/keys/transit/{vault_name}",
        mount_point="secret",
        raise_on_deleted_version=True,
    )["data"]["data"]
    assert record["status"] == "active"
    assert record["sentinel_ciphertext"].startswith("vault:v1:")
    assert len(record["sentinel_sha256"]) == 64
    with pytest.raises(errors.ConflictError, match="already exists"):
        registry.create_key(uri)


def test_create_fails_before_making_a_key_when_the_record_cannot_be_written(
    vault_env: OpenBao, vault_name: str, monkeypatch
) -> None:
    policy = 'path "transit/keys/*" { capabilities = ["create", "read", "update"] }'
    monkeypatch.setenv("VAULT_TOKEN", limited_token(vault_env, vault_name, policy))
    with pytest.raises(errors.PermissionDeniedError):
        registry.create_key(f"vault://transit/{vault_name}")
    with pytest.raises(hvac.exceptions.InvalidPath):
        root(vault_env).secrets.transit.read_key(vault_name)


def test_missing_key_and_missing_mount(vault_env: OpenBao, vault_name: str) -> None:
    with pytest.raises(errors.NotFoundError, match=f"no transit key vault://transit/{vault_name}"):
        registry.open_key_service(f"vault://transit/{vault_name}").info()
    with pytest.raises(errors.NotFoundError) as caught:
        registry.open_key_service(f"vault://{vault_name}/k").new_data_key()
    assert not isinstance(caught.value, errors.KeyDestroyedError)
    with pytest.raises(errors.NotFoundError):
        registry.create_key(f"vault://{vault_name}/k")


# --- wrap and unwrap ---------------------------------------------------------------------------


def test_data_key_round_trip_records_the_version(kek: vault.VaultTransitKey) -> None:
    assert isinstance(kek, KeyService)
    dek, wrapped = kek.new_data_key()
    assert len(dek) == 32
    assert wrapped.key_uri == kek.uri
    assert wrapped.key_version == 1
    assert wrapped.ciphertext.startswith(b"vault:v1:")
    assert dek not in wrapped.ciphertext
    assert kek.unwrap(wrapped) == dek
    other, _ = kek.new_data_key()
    assert other != dek


def test_altered_or_foreign_wrapped_keys_are_integrity_errors(
    kek: vault.VaultTransitKey, vault_name: str
) -> None:
    dek, wrapped = kek.new_data_key()
    body = wrapped.ciphertext
    flipped = body[:-6] + (b"A" if body[-6:-5] != b"A" else b"B") + body[-5:]
    with pytest.raises(errors.IntegrityError) as caught:
        kek.unwrap(replace(wrapped, ciphertext=flipped))
    assert dek.hex() not in str(caught.value)
    with pytest.raises(errors.IntegrityError, match="version"):
        kek.unwrap(replace(wrapped, key_version=2))
    with pytest.raises(errors.IntegrityError, match="belongs to"):
        kek.unwrap(replace(wrapped, key_uri="vault://transit/other"))
    with pytest.raises(errors.IntegrityError, match="not a Vault transit ciphertext"):
        kek.unwrap(replace(wrapped, ciphertext=b"garbage"))
    # Wrapped by another key, presented as this key's.
    registry.create_key(f"vault://transit/{vault_name}-b")
    _, foreign = registry.open_key_service(f"vault://transit/{vault_name}-b").new_data_key()
    with pytest.raises(errors.IntegrityError, match="does not unwrap"):
        kek.unwrap(replace(foreign, key_uri=kek.uri))
    # A version the key does not have yet.
    with pytest.raises(errors.IntegrityError):
        kek.unwrap(WrappedKey(kek.uri, 7, b"vault:v7:" + body.split(b":", 2)[2]))


# --- rotation, re-wrap, retirement ------------------------------------------------------------


def test_rotation_rewraps_sidecars_without_touching_ciphertext(
    kek: vault.VaultTransitKey, tmp_path: Path
) -> None:
    from sundown import envelope

    store = registry.open_store(tmp_path.as_uri())
    keys = [f"weights/shard-{i}.bin" for i in range(3)]
    plaintexts = {k: hashlib.sha256(k.encode()).digest() * 40_000 for k in keys}  # ~1.2 MiB each
    for key in keys:
        artifact = envelope.Artifact("sys", key, "v1")
        envelope.encrypt_to_store(io.BytesIO(plaintexts[key]), store, key, kek, artifact)
    before = {k: (tmp_path / k).read_bytes() for k in keys}
    mtimes = {k: (tmp_path / k).stat().st_mtime_ns for k in keys}
    old_sidecars = {k: envelope.read_sidecar(store, k) for k in keys}
    assert {s.key_version for s in old_sidecars.values()} == {1}

    assert kek.rotate() == 2
    assert kek.rotate() == 3
    sidecars = envelope.rewrap_store(store, keys, kek, batch_size=2)
    assert [s.key_version for s in sidecars] == [3, 3, 3]
    kek.retire_versions_below(3)

    info = kek.info()
    assert (info.latest_version, info.min_decryption_version, info.versions) == (3, 3, (3,))
    for key in keys:
        # The re-wrapped sidecar decrypts the untouched ciphertext.
        out = io.BytesIO()
        with store.open(key) as source:
            for chunk in envelope.decrypt_stream(source, envelope.read_sidecar(store, key), kek):
                out.write(chunk)
        assert out.getvalue() == plaintexts[key]
        # The old sidecar no longer unwraps: its version was trimmed.
        with pytest.raises(errors.KeyDestroyedError, match="version 1 was retired and trimmed"):
            kek.unwrap(old_sidecars[key].wrapped_key)
    assert {k: (tmp_path / k).read_bytes() for k in keys} == before
    assert {k: (tmp_path / k).stat().st_mtime_ns for k in keys} == mtimes


def test_retired_but_untrimmed_and_bad_retire_arguments(kek: vault.VaultTransitKey) -> None:
    _, old = kek.new_data_key()
    kek.rotate()
    with pytest.raises(errors.InputError, match=r"versions are 1\.\.2"):
        kek.retire_versions_below(3)
    with pytest.raises(errors.InputError):
        kek.retire_versions_below(0)
    [rewrapped] = kek.rewrap([old])
    assert rewrapped.key_version == 2
    kek.retire_versions_below(2)
    kek.retire_versions_below(2)  # idempotent
    with pytest.raises(errors.NotFoundError):
        kek.unwrap(old)
    assert len(kek.unwrap(rewrapped)) == 32


def test_rewrap_reports_a_bad_item_without_secrets(kek: vault.VaultTransitKey) -> None:
    good = [kek.new_data_key()[1] for _ in range(3)]
    bad = replace(good[1], ciphertext=good[1].ciphertext[:-8] + b"AAAAAAA=")
    with pytest.raises(
        errors.IntegrityError, match="1 of 3 wrapped keys cannot be re-wrapped"
    ) as e:
        kek.rewrap([good[0], bad, good[2]])
    assert "item 1" in str(e.value)
    assert kek.rewrap([]) == []


def test_rewrap_in_several_batches(kek: vault.VaultTransitKey, monkeypatch) -> None:
    monkeypatch.setattr(vault, "REWRAP_BATCH", 4)
    pairs = [kek.new_data_key() for _ in range(10)]
    kek.rotate()
    rewrapped = kek.rewrap([w for _, w in pairs])
    assert [w.key_version for w in rewrapped] == [2] * 10
    assert [kek.unwrap(w) for w in rewrapped] == [d for d, _ in pairs]


# --- destruction -------------------------------------------------------------------------------


def test_destroy_proves_the_key_is_gone(kek: vault.VaultTransitKey, vault_env: OpenBao) -> None:
    dek, wrapped = kek.new_data_key()
    kek.rotate()
    kek.rotate()
    [rewrapped] = kek.rewrap([wrapped])
    kek.retire_versions_below(2)  # the creation sentinel is re-wrapped, not lost
    evidence = kek.destroy()
    assert evidence.verified is True
    assert evidence.uri == kek.uri
    assert evidence.versions_destroyed == (1, 2, 3)
    assert "deletion_allowed=true" in evidence.method
    assert "versions 1..1 had been trimmed" in evidence.method
    checks = evidence.checks
    assert checks["creation sentinel before delete"] == "unwrapped, digest matches record"
    assert checks["read key after delete"] == "404 not found"
    assert checks["list keys after delete"] == "not listed"
    assert checks["creation sentinel #1 after delete"].startswith("does not unwrap")
    assert checks["sentinel #2 after delete"].startswith("does not unwrap")
    assert dek.hex() not in json.dumps(checks)
    # The key is destroyed, not merely missing.
    with pytest.raises(errors.KeyDestroyedError):
        kek.info()
    with pytest.raises(errors.KeyDestroyedError):
        kek.unwrap(rewrapped)
    with pytest.raises(errors.KeyDestroyedError):
        kek.new_data_key()
    with pytest.raises(hvac.exceptions.InvalidPath):
        root(vault_env).secrets.transit.read_key(kek.uri.rsplit("/", 1)[1])
    # Re-running destroy re-checks and still proves it.
    again = kek.destroy()
    assert again.verified is True
    assert again.checks["re-run"].startswith("key already destroyed")
    assert again.destroyed_at == evidence.destroyed_at
    # The name of a destroyed key is never reused.
    with pytest.raises(errors.ConflictError, match="names of destroyed keys are not reused"):
        registry.create_key(kek.uri)


def test_destroy_refuses_a_missing_key(vault_env: OpenBao, vault_name: str) -> None:
    with pytest.raises(errors.NotFoundError, match="no record that Sundown destroyed it"):
        registry.open_key_service(f"vault://transit/{vault_name}").destroy()


def test_destroy_stops_before_deleting_when_the_sentinel_is_wrong(
    kek: vault.VaultTransitKey, vault_env: OpenBao, vault_name: str
) -> None:
    client = root(vault_env)
    path = f"sundown/keys/transit/{vault_name}"
    record = client.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)[
        "data"
    ]["data"]
    client.secrets.kv.v2.create_or_update_secret(
        path=path, secret={**record, "sentinel_sha256": "0" * 64}
    )
    with pytest.raises(errors.IntegrityError, match="refusing to destroy"):
        kek.destroy()
    assert kek.info().latest_version == 1  # still there


def test_destroy_a_key_not_created_by_sundown(vault_env: OpenBao, vault_name: str) -> None:
    root(vault_env).secrets.transit.create_key(vault_name)
    ks = registry.open_key_service(f"vault://transit/{vault_name}")
    evidence = ks.destroy()
    assert evidence.verified
    assert evidence.checks["creation sentinel before delete"].startswith("absent")
    assert evidence.checks["sentinel #1 after delete"].startswith("does not unwrap")


class Crash(BaseException):
    """The process dies here (not an Exception: no handler of Sundown's catches it)."""


def _crash_after(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
    real = getattr(owner, name)

    def then_die(*args: object, **kwargs: object) -> object:
        real(*args, **kwargs)
        raise Crash(name)

    monkeypatch.setattr(owner, name, then_die)


@pytest.mark.parametrize("point", ["_write_record", "_set_config", "delete_key"])
def test_destroy_interrupted_at_each_point_is_finished_by_the_rerun(
    kek: vault.VaultTransitKey,
    vault_env: OpenBao,
    vault_name: str,
    monkeypatch: pytest.MonkeyPatch,
    point: str,
) -> None:
    """Killed after the "destroying" record, after ``deletion_allowed=true``, or after the
    delete but before the record says so: the re-run finishes, proved from Vault's read."""
    _, wrapped = kek.new_data_key()
    with monkeypatch.context() as m:
        if point == "delete_key":
            _crash_after(m, hvac.api.secrets_engines.Transit, "delete_key")
        else:
            _crash_after(m, vault.VaultTransitKey, point)
        with pytest.raises(Crash):
            kek.destroy()
    half = kek.verify_destroyed()
    if point == "delete_key":
        assert half.verified  # the material is gone already; only the record lags
    else:
        assert half.verified is False
        assert half.checks["read key after delete"].startswith("FAILED")
        assert kek.unwrap(wrapped)  # the key still works: nothing may call it destroyed
    evidence = registry.key_for_destruction(kek.uri).destroy()
    assert evidence.verified is True, evidence.checks
    assert evidence.checks["read key after delete"] == "404 not found"
    assert evidence.ce_claimable
    assert "snapshots" in evidence.limits
    with pytest.raises(hvac.exceptions.InvalidPath):
        root(vault_env).secrets.transit.read_key(vault_name)
    with pytest.raises(errors.KeyDestroyedError):
        kek.unwrap(wrapped)
    record = root(vault_env).secrets.kv.v2.read_secret_version(
        path=f"sundown/keys/transit/{vault_name}", raise_on_deleted_version=True
    )["data"]["data"]
    assert record["status"] == "destroyed" and record["destroyed_at"]


def test_a_key_recreated_under_the_destroyed_name_is_found(
    kek: vault.VaultTransitKey, vault_env: OpenBao, vault_name: str
) -> None:
    """The record says destroyed; a key of that name reads again: verify_destroyed fails."""
    assert kek.destroy().verified
    root(vault_env).secrets.transit.create_key(vault_name)
    again = kek.verify_destroyed()
    assert again.verified is False
    assert again.checks["read key after delete"].startswith("FAILED")


@pytest.mark.parametrize(
    "flags",
    [{"exportable": True}, {"exportable": True, "allow_plaintext_backup": True}],
    ids=["exportable", "plaintext-backup"],
)
def test_exportable_or_backed_up_key_gets_no_ce_claim(
    vault_env: OpenBao, vault_name: str, flags: dict[str, bool]
) -> None:
    """A transit key not created by Sundown that Vault lets out (export, plaintext backup):
    the facts are read, recorded on the evidence, and CE is not claimable. With a plaintext
    backup taken before the destroy, restoring it brings the key back: the claim would be
    false, and verify_destroyed sees the key answer again."""
    from sundown.certificate import KeyDestroyed

    client = root(vault_env)
    client.secrets.transit.create_key(vault_name, **flags)
    uri = f"vault://transit/{vault_name}"
    ks = registry.open_key_service(uri)
    info = ks.info()
    assert info.exportable is True
    assert info.allow_plaintext_backup is bool(flags.get("allow_plaintext_backup"))
    _, wrapped = ks.new_data_key()
    backup = None
    if flags.get("allow_plaintext_backup"):
        backup = client.secrets.transit.backup_key(vault_name)["data"]["backup"]
    evidence = ks.destroy()
    assert evidence.verified is True  # Vault's copy is gone ...
    assert evidence.exportable is True
    assert evidence.checks["exportable"] == "true"
    assert evidence.ce_claimable is False  # ... but CE is not claimed
    cert_evidence = KeyDestroyed.from_destruction(evidence)
    assert cert_evidence.ce_claimable is False
    assert cert_evidence.ce_basis and "exportable" in cert_evidence.ce_basis
    with pytest.raises(ValueError, match="cryptographic erase claimed"):
        KeyDestroyed.model_validate({**cert_evidence.model_dump(), "ce_claimable": True})
    if backup is not None:
        client.secrets.transit.restore_key(backup, name=vault_name)
        assert ks.unwrap(wrapped)  # the "destroyed" data key unwraps again
        assert ks.verify_destroyed().verified is False


# --- signing -----------------------------------------------------------------------------------


@pytest.fixture
def signer(vault_env: OpenBao, vault_name: str) -> vault.VaultSigner:
    uri = f"vault://transit/{vault_name}-sig"
    info = registry.create_key(uri, signing=True)
    assert (info.kind, info.algorithm) == ("signing", "ecdsa-p256")
    s = registry.open_signer(uri)
    assert isinstance(s, vault.VaultSigner)
    return s


def test_sign_verifies_with_the_exported_public_key(signer: vault.VaultSigner) -> None:
    assert isinstance(signer, Signer)
    assert signer.key_id == f"{signer.uri}#v1"
    public = serialization.load_pem_public_key(signer.public_key_pem())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    message = b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
    signature = signer.sign(message)
    public.verify(signature, message, ec.ECDSA(hashes.SHA256()))  # raises if not DER/ASN.1
    envelope = dsse.sign(dsse.INTOTO_PAYLOAD_TYPE, b'{"_type": "x"}', signer)
    assert dsse.verify(envelope, signer.public_key_pem()) == b'{"_type": "x"}'
    tampered = replace(envelope, payload=b'{"_type": "y"}')
    with pytest.raises(errors.IntegrityError):
        dsse.verify(tampered, signer.public_key_pem())


def test_signer_is_pinned_to_its_version(signer: vault.VaultSigner) -> None:
    registry.open_key_service(signer.uri).rotate()
    newer = registry.open_signer(signer.uri)
    assert newer.key_id == f"{signer.uri}#v2"
    assert newer.public_key_pem() != signer.public_key_pem()
    message = b"pinned"
    old_key = serialization.load_pem_public_key(signer.public_key_pem())
    assert isinstance(old_key, ec.EllipticCurvePublicKey)
    old_key.verify(signer.sign(message), message, ec.ECDSA(hashes.SHA256()))


def test_a_kek_is_not_a_signer(kek: vault.VaultTransitKey) -> None:
    with pytest.raises(errors.InputError, match="not an ecdsa-p256 signing key"):
        registry.open_signer(kek.uri)


def test_destroy_a_signing_key(signer: vault.VaultSigner) -> None:
    evidence = registry.open_key_service(signer.uri).destroy()
    assert evidence.verified
    assert evidence.checks["sign after delete"].startswith("refused")
    with pytest.raises(errors.KeyDestroyedError):
        signer.sign(b"after")


def test_model_signed_in_vault_verifies_with_model_signing(
    signer: vault.VaultSigner, tmp_path: Path
) -> None:
    signing = pytest.importorskip("sundown.signing", reason="sundown/signing.py not written yet")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"layers": 2}')
    (model / "weights.bin").write_bytes(b"\x01\x02" * 5000)
    bundle_path = tmp_path / "model.sig"
    signing.write_bundle(bundle_path, signing.sign_model(model, signer))
    pem = tmp_path / "key.pub"
    pem.write_bytes(signer.public_key_pem())
    argv = ["model_signing", "verify", "key", str(model)]
    argv += ["--signature", str(bundle_path), "--public_key", str(pem)]
    ok = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (model / "weights.bin").write_bytes(b"\x01\x03" * 5000)
    bad = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0


# --- errors: permission, sealed, unreachable, transient ----------------------------------------


def limited_token(openbao: OpenBao, name: str, policy: str) -> str:
    client = root(openbao)
    client.sys.create_or_update_policy(name=name, policy=policy)
    return str(client.auth.token.create(policies=[name], ttl="10m")["auth"]["client_token"])


def test_permission_denied_is_distinct_and_names_no_token(
    kek: vault.VaultTransitKey, vault_env: OpenBao, vault_name: str, monkeypatch
) -> None:
    read_only = f'path "transit/keys/{vault_name}" {{ capabilities = ["read"] }}\n'
    token = limited_token(vault_env, vault_name, read_only)
    monkeypatch.setenv("VAULT_TOKEN", token)
    assert kek.info().latest_version == 1
    with pytest.raises(errors.PermissionDeniedError, match="permission denied") as caught:
        kek.rotate()
    assert token not in str(caught.value)
    assert vault_env.root_token not in str(caught.value)
    monkeypatch.setenv("VAULT_TOKEN", "not-a-token")
    with pytest.raises(errors.PermissionDeniedError):
        kek.info()


def test_no_credentials_at_all(vault_env: OpenBao, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.vault-token either
    with pytest.raises(errors.PermissionDeniedError, match="set VAULT_TOKEN"):
        registry.open_key_service("vault://transit/x").info()


def test_approle_login_is_an_option(
    kek: vault.VaultTransitKey, vault_env: OpenBao, vault_name: str, monkeypatch
) -> None:
    client = root(vault_env)
    policy = 'path "transit/*" { capabilities = ["read", "update"] }\n'
    client.sys.create_or_update_policy(name=vault_name, policy=policy)
    client.auth.approle.create_or_update_approle(vault_name, token_policies=[vault_name])
    role_id = client.auth.approle.read_role_id(vault_name)["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id(vault_name)["data"]["secret_id"]
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.setenv("VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("VAULT_SECRET_ID", secret_id)
    dek, wrapped = kek.new_data_key()
    assert kek.unwrap(wrapped) == dek
    monkeypatch.setenv("VAULT_SECRET_ID", "wrong")
    with pytest.raises(errors.PermissionDeniedError, match="AppRole login") as caught:
        kek.info()
    assert secret_id not in str(caught.value)


def test_sealed_server_is_a_clear_backend_error(
    kek: vault.VaultTransitKey, vault_env: OpenBao
) -> None:
    client = root(vault_env)
    client.sys.seal()
    try:
        with pytest.raises(errors.BackendError, match="is sealed; unseal it") as caught:
            kek.info()
        assert not isinstance(caught.value, errors.TransientError)
    finally:
        client.sys.submit_unseal_key(vault_env.unseal_key())
    assert kek.info().latest_version == 1


def test_unreachable_server_is_transient_and_bounded(vault_env: OpenBao, monkeypatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("VAULT_MAX_RETRIES", "2")
    started = time.monotonic()
    with pytest.raises(errors.TransientError, match="cannot reach Vault") as caught:
        registry.open_key_service("vault://transit/x").info()
    assert time.monotonic() - started < 10
    assert "after 2 retries" in str(caught.value)
    assert vault_env.root_token not in str(caught.value)


class FlakyProxy:
    """A real HTTP proxy in front of OpenBao that answers 502 to the first ``failures`` requests
    (``failures < 0``: to every request), and counts what it receives."""

    def __init__(self, upstream: str, failures: int) -> None:
        self.upstream = upstream
        self.failures = failures
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                proxy.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.failures < 0 or proxy.requests <= proxy.failures:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body or None,
                    method=self.command,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        status, payload = answer.status, answer.read()
                except urllib.error.HTTPError as err:
                    status, payload = err.code, err.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky(vault_env: OpenBao, monkeypatch) -> Iterator[type[FlakyProxy]]:
    monkeypatch.setenv("VAULT_MAX_RETRIES", "2")
    yield FlakyProxy


def test_transient_5xx_is_retried_then_succeeds(
    kek: vault.VaultTransitKey, vault_env: OpenBao, flaky, monkeypatch
) -> None:
    with flaky(vault_env.addr, failures=2) as proxy:
        monkeypatch.setenv("VAULT_ADDR", proxy.url)
        assert kek.info().latest_version == 1
    assert proxy.requests == 3  # two 502s, then the answer


def test_persistent_5xx_gives_up_after_bounded_retries(
    kek: vault.VaultTransitKey, vault_env: OpenBao, flaky, monkeypatch
) -> None:
    with flaky(vault_env.addr, failures=-1) as proxy:
        monkeypatch.setenv("VAULT_ADDR", proxy.url)
        with pytest.raises(errors.TransientError, match="failed after 2 retries"):
            kek.info()
    assert proxy.requests == 3


def test_permanent_errors_are_not_retried(
    kek: vault.VaultTransitKey, vault_env: OpenBao, flaky, monkeypatch
) -> None:
    with flaky(vault_env.addr, failures=0) as proxy:
        monkeypatch.setenv("VAULT_ADDR", proxy.url)
        monkeypatch.setenv("VAULT_TOKEN", "not-a-token")
        with pytest.raises(errors.PermissionDeniedError):
            kek.info()
        assert proxy.requests == 1
        monkeypatch.setenv("VAULT_TOKEN", vault_env.root_token)
        _, wrapped = kek.new_data_key()
        proxy.requests = 0
        with pytest.raises(errors.IntegrityError):
            kek.unwrap(replace(wrapped, ciphertext=wrapped.ciphertext[:-8] + b"AAAAAAA="))
        assert proxy.requests == 1


# --- the command line --------------------------------------------------------------------------


def sundown_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
    )


def test_cli_keys_on_vault(vault_env: OpenBao, vault_name: str) -> None:
    env = vault_env.env()
    kek = f"vault://transit/{vault_name}"
    sig = f"vault://transit/{vault_name}-sig"

    out = sundown_cli("keys", "create", kek, env=env)
    assert out.returncode == 0, out.stderr
    assert f"created key-encryption key {kek} (aes256-gcm96, version 1)" in out.stdout
    out = sundown_cli("keys", "create", "--signing", sig, env=env)
    assert out.returncode == 0, out.stderr
    assert f"key id: {sig}#v1" in out.stdout

    out = sundown_cli("keys", "rotate", kek, env=env)
    assert (out.returncode, out.stdout.strip()) == (
        0,
        f"rotated {kek}: version 2 now wraps new data keys",
    ), out.stderr
    out = sundown_cli("keys", "retire", kek, "--below", "2", "--yes", env=env)
    assert out.returncode == 0, out.stderr
    out = sundown_cli("keys", "info", kek, env=env)
    assert "versions present: 2" in out.stdout and "minimum decryption version: 2" in out.stdout

    out = sundown_cli("keys", "public-key", sig, env=env)
    assert out.returncode == 0, out.stderr
    served = root(vault_env).secrets.transit.read_key(f"{vault_name}-sig")["data"]["keys"]["1"]
    assert serialization.load_pem_public_key(out.stdout.encode()) == (
        serialization.load_pem_public_key(served["public_key"].encode())
    )

    out = sundown_cli("keys", "destroy", kek, "--yes", env=env)
    assert out.returncode == 0, out.stderr
    assert f"destroyed {kek} (versions 1..2)" in out.stdout
    assert "verified: yes" in out.stdout
    assert "check read key after delete: 404 not found" in out.stdout

    out = sundown_cli("keys", "info", kek, env=env)
    assert out.returncode == 5
    assert out.stderr.startswith("sundown: error: KeyDestroyedError:")
    assert "Traceback" not in out.stderr
    out = sundown_cli("keys", "destroy", f"{kek}-never", "--yes", env=env)
    assert out.returncode == 4, out.stderr
    out = sundown_cli("keys", "rotate", kek, env={**env, "VAULT_TOKEN": "not-a-token"})
    assert out.returncode == 6 and "permission denied" in out.stderr
    addr = f"http://127.0.0.1:{free_port()}"
    out = sundown_cli(
        "keys", "info", kek, env={**env, "VAULT_ADDR": addr, "VAULT_MAX_RETRIES": "1"}
    )
    assert out.returncode == 7 and "cannot reach Vault" in out.stderr
    for text in (out.stdout, out.stderr):
        assert vault_env.root_token not in text
