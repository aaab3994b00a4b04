"""Vault credential lifecycle (KV v2, tokens, leases, AppRole) against a real OpenBao server."""

from __future__ import annotations

import json

import hvac
import pytest
from pydantic import SecretStr

from connectors.credentials import vault_approle, vault_kv, vault_leases, vault_tokens
from sundown.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from tests.fixtures.openbao import OpenBao


def root(openbao: OpenBao) -> hvac.Client:
    return hvac.Client(url=openbao.addr, token=openbao.root_token)


# --- KV v2 -------------------------------------------------------------------------------------


def test_kv_rotate_writes_a_new_version_and_shows_no_value(
    vault_env: OpenBao, vault_name: str
) -> None:
    kv = root(vault_env).secrets.kv.v2
    path = f"systems/{vault_name}/db"
    kv.create_or_update_secret(path, secret={"user": "app", "password": "old-password-1"})
    evidence = vault_kv.rotate_secret(
        path, {"user": "app", "password": SecretStr("new-password-2")}
    )
    assert evidence.verified
    assert (evidence.kind, evidence.target, evidence.action) == (
        "vault-kv",
        f"secret/{path}",
        "rotated",
    )
    assert evidence.details == {
        "previous_version": "1",
        "new_version": "2",
        "fields": "password,user",
    }
    assert evidence.checks["read back"] == "content digest matches what was written"
    text = json.dumps(evidence.to_dict())
    assert "new-password-2" not in text and "old-password-1" not in text
    latest = kv.read_secret_version(path, raise_on_deleted_version=True)["data"]
    assert latest["data"]["password"] == "new-password-2"
    assert latest["metadata"]["version"] == 2


def test_kv_rotate_needs_an_existing_secret_and_valid_input(
    vault_env: OpenBao, vault_name: str
) -> None:
    with pytest.raises(NotFoundError, match="no KV secret"):
        vault_kv.rotate_secret(f"systems/{vault_name}/nothing", {"k": "v"})
    with pytest.raises(InputError):
        vault_kv.rotate_secret("../escape", {"k": "v"})
    with pytest.raises(InputError):
        vault_kv.rotate_secret("systems/x", {})


def test_kv_rotate_detects_a_concurrent_write(vault_env: OpenBao, vault_name: str) -> None:
    kv = root(vault_env).secrets.kv.v2
    path = f"systems/{vault_name}/cas"
    kv.create_or_update_secret(path, secret={"k": "1"})
    # Another writer moves the secret on between our metadata read and our write: simulated by
    # requiring check-and-set on the mount-level metadata and racing with a write of our own.
    real_read = hvac.api.secrets_engines.KvV2.read_secret_metadata

    def racing_read(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        answer = real_read(self, *args, **kwargs)
        root(vault_env).secrets.kv.v2.create_or_update_secret(path, secret={"k": "racer"})
        return answer

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hvac.api.secrets_engines.KvV2, "read_secret_metadata", racing_read)
        with pytest.raises(ConflictError, match="changed while rotating"):
            vault_kv.rotate_secret(path, {"k": "mine"})
    assert kv.read_secret_version(path, raise_on_deleted_version=True)["data"]["data"] == {
        "k": "racer"
    }


def test_kv_destroy_erases_every_version_and_the_metadata(
    vault_env: OpenBao, vault_name: str
) -> None:
    kv = root(vault_env).secrets.kv.v2
    path = f"systems/{vault_name}/api"
    for i in range(3):
        kv.create_or_update_secret(path, secret={"token": f"value-{i}"})
    evidence = vault_kv.destroy_secret(path)
    assert evidence.verified
    assert evidence.action == "destroyed"
    assert evidence.details == {"versions_destroyed": "1,2,3", "metadata": "deleted"}
    assert evidence.checks == {
        "read metadata after": "404 not found",
        "read data after": "404 not found",
    }
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata(path)
    with pytest.raises(NotFoundError):
        vault_kv.destroy_secret(path)
    again = vault_kv.destroy_secret(path, missing_ok=True)
    assert (again.action, again.verified) == ("already absent", True)


# --- tokens ------------------------------------------------------------------------------------


def test_revoke_token_by_accessor(vault_env: OpenBao, vault_name: str) -> None:
    client = root(vault_env)
    client.sys.create_or_update_policy(
        name=vault_name, policy='path "auth/token/create" { capabilities = ["update"] }'
    )
    created = client.auth.token.create(policies=[vault_name], ttl="1h", display_name=vault_name)
    token, accessor = created["auth"]["client_token"], created["auth"]["accessor"]
    child = hvac.Client(url=vault_env.addr, token=token).auth.token.create(ttl="1h")
    child_token = child["auth"]["client_token"]

    evidence = vault_tokens.revoke_token_accessor(accessor)
    assert evidence.verified
    assert (evidence.kind, evidence.target, evidence.action) == (
        "vault-token",
        accessor,
        "revoked",
    )
    assert evidence.checks == {"lookup-accessor after": "invalid accessor"}
    assert evidence.details["policies"] == f"default,{vault_name}"
    assert token not in json.dumps(evidence.to_dict())
    # The token (and its child) no longer authenticate.
    for dead in (token, child_token):
        with pytest.raises(hvac.exceptions.Forbidden):
            hvac.Client(url=vault_env.addr, token=dead).auth.token.lookup_self()
    with pytest.raises(NotFoundError, match="already revoked"):
        vault_tokens.revoke_token_accessor(accessor)
    assert vault_tokens.revoke_token_accessor(accessor, missing_ok=True).action == "already absent"


def test_revoking_needs_permission(vault_env: OpenBao, vault_name: str, monkeypatch) -> None:
    client = root(vault_env)
    accessor = client.auth.token.create(ttl="1h")["auth"]["accessor"]
    weak = client.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    monkeypatch.setenv("VAULT_TOKEN", weak)
    with pytest.raises(PermissionDeniedError) as caught:
        vault_tokens.revoke_token_accessor(accessor)
    assert weak not in str(caught.value)
    assert client.auth.token.lookup_accessor(accessor)["data"]["accessor"] == accessor


# --- leases ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(openbao: OpenBao) -> str:
    """A PKI engine whose role issues leased certificates: real dynamic secrets with leases."""
    client = root(openbao)
    client.sys.enable_secrets_engine("pki", path="pki-leases")
    client.secrets.pki.generate_root("internal", "sundown.test", mount_point="pki-leases")
    client.secrets.pki.create_or_update_role(
        "app",
        {"allowed_domains": "sundown.test", "allow_subdomains": True, "generate_lease": True},
        mount_point="pki-leases",
    )
    return "pki-leases"


def issue(openbao: OpenBao, mount: str, name: str) -> str:
    answer = root(openbao).secrets.pki.generate_certificate(
        "app", f"{name}.sundown.test", mount_point=mount, extra_params={"ttl": "1h"}
    )
    return str(answer["lease_id"])


def test_revoke_a_lease_by_id(vault_env: OpenBao, pki: str, vault_name: str) -> None:
    lease = issue(vault_env, pki, vault_name)
    other = issue(vault_env, pki, vault_name + "-other")
    evidence = vault_leases.revoke_lease(lease)
    assert evidence.verified
    assert (evidence.target, evidence.action) == (lease, "revoked")
    assert evidence.checks == {"lookup after": "invalid lease"}
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid lease"):
        root(vault_env).sys.read_lease(lease)
    assert root(vault_env).sys.read_lease(other)["data"]["id"] == other  # untouched
    with pytest.raises(NotFoundError):
        vault_leases.revoke_lease(lease)
    with pytest.raises(InputError):
        vault_leases.revoke_lease("not a lease")


def test_revoke_leases_by_prefix(vault_env: OpenBao, pki: str, vault_name: str) -> None:
    leases = [issue(vault_env, pki, f"{vault_name}-{i}") for i in range(3)]
    evidence = vault_leases.revoke_lease_prefix(f"{pki}/issue/app")
    assert evidence.verified
    assert int(evidence.details["leases_found"]) >= 3
    assert evidence.checks == {"list after": f"0 leases listed under {pki}/issue/app/"}
    for lease in leases:
        with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid lease"):
            root(vault_env).sys.read_lease(lease)
    with pytest.raises(NotFoundError, match="no leases under"):
        vault_leases.revoke_lease_prefix(f"{pki}/issue/app")
    assert vault_leases.revoke_lease_prefix(f"{pki}/issue/app", missing_ok=True).verified


# --- AppRole -----------------------------------------------------------------------------------


def test_destroy_approle_secret_ids_by_accessor(vault_env: OpenBao, vault_name: str) -> None:
    client = root(vault_env)
    client.auth.approle.create_or_update_approle(vault_name, token_policies=["default"])
    role_id = client.auth.approle.read_role_id(vault_name)["data"]["role_id"]
    issued = [client.auth.approle.generate_secret_id(vault_name)["data"] for _ in range(3)]
    login = hvac.Client(url=vault_env.addr).auth.approle.login
    login(role_id, issued[0]["secret_id"])  # works before

    doomed = [issued[0]["secret_id_accessor"], issued[1]["secret_id_accessor"]]
    evidence = vault_approle.destroy_secret_ids(vault_name, doomed)
    assert [e.target for e in evidence] == [f"{vault_name}/{a}" for a in doomed]
    for item in evidence:
        assert item.verified
        assert item.checks == {
            "accessor lookup after": "not found",
            "listed on role after": "not listed",
        }
        text = json.dumps(item.to_dict())
        assert all(i["secret_id"] not in text for i in issued)
    for secret in (issued[0]["secret_id"], issued[1]["secret_id"]):
        with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
            login(role_id, secret)
    login(role_id, issued[2]["secret_id"])  # the one not named still works

    with pytest.raises(NotFoundError, match="nothing destroyed"):
        vault_approle.destroy_secret_ids(vault_name, [*doomed, issued[2]["secret_id_accessor"]])
    login(role_id, issued[2]["secret_id"])  # a partly wrong request destroyed nothing

    rest = vault_approle.destroy_secret_ids(vault_name)  # all remaining secret-ids
    assert [e.target for e in rest] == [f"{vault_name}/{issued[2]['secret_id_accessor']}"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        login(role_id, issued[2]["secret_id"])
    with pytest.raises(NotFoundError, match="no AppRole role"):
        vault_approle.destroy_secret_ids(vault_name + "-missing")
    [gone] = vault_approle.destroy_secret_ids(vault_name + "-missing", ["abc"], missing_ok=True)
    assert (gone.action, gone.verified) == ("already absent", True)
    with pytest.raises(InputError):
        vault_approle.destroy_secret_ids(vault_name, ["bad accessor!"])


def test_delete_approle_role(vault_env: OpenBao, vault_name: str) -> None:
    client = root(vault_env)
    client.auth.approle.create_or_update_approle(vault_name, token_policies=["default"])
    role_id = client.auth.approle.read_role_id(vault_name)["data"]["role_id"]
    secret = client.auth.approle.generate_secret_id(vault_name)["data"]
    login = hvac.Client(url=vault_env.addr).auth.approle.login
    login(role_id, secret["secret_id"])  # works before

    evidence = vault_approle.delete_role(vault_name)
    assert (evidence.action, evidence.verified) == ("deleted", True)
    assert evidence.checks == {
        "role lookup after": "not found",
        "listed on mount after": "not listed",
    }
    assert secret["secret_id"] not in json.dumps(evidence.to_dict())
    with pytest.raises(hvac.exceptions.InvalidRequest):
        login(role_id, secret["secret_id"])
    with pytest.raises(NotFoundError, match="no AppRole role"):
        vault_approle.delete_role(vault_name)
    again = vault_approle.delete_role(vault_name, missing_ok=True)
    assert (again.action, again.verified) == ("already absent", True)
    with pytest.raises(InputError):
        vault_approle.delete_role("bad role!")


# --- the policy documented in docs/vault.md ----------------------------------------------------


def documented_policy() -> str:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "vault.md").read_text()
    start = text.index("```hcl\n") + len("```hcl\n")
    return text[start : text.index("```", start)]


def test_documented_policy_is_enough(
    vault_env: OpenBao, vault_name: str, pki: str, monkeypatch
) -> None:
    """A token with only the policy of docs/vault.md runs the whole key and credential
    lifecycle (transit at transit/, KV at secret/, AppRole at approle/, leases anywhere)."""
    from sundown import registry

    client = root(vault_env)
    client.sys.create_or_update_policy(name=f"{vault_name}-sundown", policy=documented_policy())
    token = client.auth.token.create(policies=[f"{vault_name}-sundown"], ttl="15m")
    # Things to act on, made with the root token.
    kv_path = f"systems/{vault_name}/db"
    client.secrets.kv.v2.create_or_update_secret(kv_path, secret={"password": "p1"})
    victim = client.auth.token.create(ttl="1h")["auth"]["accessor"]
    lease = issue(vault_env, pki, vault_name)
    client.auth.approle.create_or_update_approle(vault_name, token_policies=["default"])
    client.auth.approle.generate_secret_id(vault_name)

    monkeypatch.setenv("VAULT_TOKEN", token["auth"]["client_token"])
    kek_uri = f"vault://transit/{vault_name}"
    registry.create_key(kek_uri)
    kek = registry.open_key_service(kek_uri)
    dek, wrapped = kek.new_data_key()
    kek.rotate()
    [rewrapped] = kek.rewrap([wrapped])
    kek.retire_versions_below(2)
    assert kek.unwrap(rewrapped) == dek
    assert kek.info().versions == (2,)
    assert kek.destroy().verified
    signing_uri = f"vault://transit/{vault_name}-sig"
    registry.create_key(signing_uri, signing=True)
    signer = registry.open_signer(signing_uri)
    assert signer.sign(b"x") and signer.public_key_pem().startswith(b"-----BEGIN PUBLIC KEY")
    assert registry.open_key_service(signing_uri).destroy().verified

    assert vault_kv.rotate_secret(kv_path, {"password": SecretStr("p2")}).verified
    assert vault_kv.destroy_secret(kv_path).verified
    assert vault_tokens.revoke_token_accessor(victim).verified
    assert vault_leases.revoke_lease(lease).verified
    issue(vault_env, pki, vault_name)
    assert vault_leases.revoke_lease_prefix(f"{pki}/issue/app").verified
    assert all(e.verified for e in vault_approle.destroy_secret_ids(vault_name))
    assert vault_approle.delete_role(vault_name).verified


def test_no_client_outlives_a_credential(
    vault_env: OpenBao, vault_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Vault credential operation opens its client from the environment as it is then
    (connectors/_vault.py): once the token it used is revoked, the next operation fails, and a
    new token in the environment is used at once."""
    from sundown.credentials import credential_kind

    client = root(vault_env)
    client.secrets.kv.v2.create_or_update_secret(
        f"{vault_name}/db", secret={"password": "p" * 20}, mount_point="secret"
    )
    first = client.auth.token.create(policies=["root"], ttl="10m")["auth"]
    monkeypatch.setenv("VAULT_TOKEN", first["client_token"])
    kv = credential_kind("vault_kv")
    assert kv.live(f"secret/{vault_name}/db") is True
    client.auth.token.revoke_accessor(first["accessor"])
    with pytest.raises(PermissionDeniedError):
        kv.live(f"secret/{vault_name}/db")
    second = client.auth.token.create(policies=["root"], ttl="10m")["auth"]["client_token"]
    monkeypatch.setenv("VAULT_TOKEN", second)
    assert kv.live(f"secret/{vault_name}/db") is True
