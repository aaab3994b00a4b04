"""PostgreSQL roles and Redis ACL users through the spec and the machinery the flows use
(``flows/_rotation.rotate_unit`` with its delivery into OpenBao, ``flows/_credentials.revoke``
for the certificate's record), without Prefect (the tasks' functions are called directly): the
delivered password works, the outcome and the revocation record hold no password, and the spec
refuses what it must without echoing a password."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import hvac
import pytest

from flows import _credentials, _rotation
from sundown.credentials import Unit, declared_kinds, units
from sundown.errors import InputError
from sundown.spec.loader import parse_spec
from sundown.spec.model import CredentialRef, SystemSpec
from tests.conformance_credentials import backend_servers
from tests.fixtures.openbao import OpenBao
from tests.fixtures.postgres import Postgres
from tests.fixtures.redis import RedisServer
from tests.flows.systems import spec_text


def _spec(name: str, tmp_path: Path, credentials: str, grace: float = 0) -> SystemSpec:
    return parse_spec(
        spec_text(name)
        + "credentials:\n"
        + credentials
        + f"rotation:\n  deliver_to: {{path: {name}/rotated}}\n  grace_period_hours: {grace}\n",
        "<test>",
        variables={"ROOT": str(tmp_path)},
    )


def test_the_spec_declares_roles_and_users_and_their_deliveries(tmp_path: Path) -> None:
    spec = _spec(
        "sb",
        tmp_path,
        "  postgres_roles:\n"
        "    - {database: 'postgresql://admin@db.internal:5432/app', role: 'support bot'}\n"
        "  redis_acl_users:\n"
        "    - {server: 'redis://cache.internal:6379', user: 'support-bot'}\n",
    )
    pg = "postgresql://admin@db.internal:5432/app/support%20bot"
    rd = "redis://cache.internal:6379/support-bot"
    refs = spec.credential_refs()
    assert CredentialRef("postgres_role", pg) in refs
    assert CredentialRef("redis_acl_user", rd) in refs
    assert declared_kinds(spec) == ["postgres_role", "redis_acl_user"]
    assert [u.declared for u in units(spec)] == [pg, rd]
    paths = {d.source.kind: d.path for d in spec.deliveries()}
    assert paths["postgres_role"] == "sb/rotated/postgres/db.internal_5432/support_bot"
    assert paths["redis_acl_user"] == "sb/rotated/redis/cache.internal_6379/support-bot"
    # the delivery secrets are destroyed with the system
    assert {d.ref for d in spec.deliveries()} <= set(refs)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (
            "  postgres_roles: [{database: 'postgresql://admin:Sup3rSecretPw@h:5432/app', "
            "role: r}]\n",
            "must not hold a password",
        ),
        (
            "  postgres_roles: [{database: 'postgresql://admin@h:5432/app', role: admin}]\n",
            "connects as",
        ),
        (
            "  postgres_roles: [{database: 'postgresql://h:5432/app', role: pg_monitor}]\n",
            "reserved",
        ),
        ("  postgres_roles: [{database: 'postgresql://h:5432', role: r}]\n", "DATABASE"),
        ("  redis_acl_users: [{server: 'redis://:Sup3rSecretPw@h:6379', user: u}]\n", "password"),
        ("  redis_acl_users: [{server: 'redis://h:6379', user: default}]\n", "default"),
        ("  redis_acl_users: [{server: 'redis://h:6379/0', user: u}]\n", "redis location"),
        (
            "  redis_acl_users: [{server: 'redis://h:6379', user: u}, "
            "{server: 'redis://H:6379', user: u}]\n",
            "declared 2 times",
        ),
    ],
)
def test_the_spec_refuses_bad_entries_naming_the_problem(
    entry: str, says: str, tmp_path: Path
) -> None:
    with pytest.raises(InputError) as err:
        _spec("sb", tmp_path, entry)
    assert says in str(err.value), err.value
    assert "Sup3rSecretPw" not in str(err.value)


@pytest.fixture
def vault(vault_env: OpenBao) -> hvac.Client:
    return hvac.Client(url=vault_env.addr, token=vault_env.root_token)


def _read(vault: hvac.Client, path: str) -> dict[str, str]:
    data = vault.secrets.kv.v2.read_secret_version(
        path, mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]
    return {str(k): str(v) for k, v in data.items()}


def _no_password(passwords: list[str], *objects: object) -> None:
    for obj in objects:
        text = obj if isinstance(obj, str) else json.dumps(obj, default=str)
        for password in passwords:
            assert password not in text and password not in repr(obj)


def _rotated(
    vault_name: str, tmp_path: Path, credentials: str
) -> tuple[SystemSpec, Unit, _rotation.Outcome]:
    """The spec declaring one credential (``credentials``, one line under ``credentials:``,
    delivered with a 24-hour grace period), its unit, and that unit's rotation (asserted
    rotated)."""
    spec = _spec(vault_name, tmp_path, f"  {credentials}\n", grace=24)
    (unit,) = units(spec)
    outcome = _rotation.rotate_unit.fn(spec, unit, [unit.declared], datetime.now(UTC))
    assert outcome.outcome == "rotated", outcome
    return spec, unit, outcome


def test_a_role_rotates_delivers_and_is_revoked_without_a_password_anywhere(
    postgres_env: Postgres, vault: hvac.Client, vault_name: str, tmp_path: Path
) -> None:
    role, old = f"{vault_name}-role", "old-role-password-1234567890"
    backend_servers.create_role(postgres_env, role, old)
    spec, unit, outcome = _rotated(  # the grace period does not apply: one password per role
        vault_name,
        tmp_path,
        f"postgres_roles: [{{database: '{backend_servers.pg_database_url(postgres_env)}', "
        f"role: {role}}}]",
    )
    assert outcome.pending == [] and outcome.new == [unit.declared]
    (delivery,) = spec.deliveries()
    delivered = _read(vault, delivery.path)
    assert delivered["username"] == role
    assert backend_servers.pg_login(postgres_env, role, delivered["password"])
    assert not backend_servers.pg_login(postgres_env, role, old)
    line = _rotation.line(outcome)

    record = _credentials.revoke(CredentialRef("postgres_role", unit.declared))
    assert record.verified and record.checks["role in pg_roles"] == "absent", record
    assert not backend_servers.pg_login(postgres_env, role, delivered["password"])
    _no_password(
        [old, delivered["password"]],
        outcome.model_dump(mode="json"),
        line,
        record.model_dump(mode="json"),
    )


def test_an_acl_user_rotates_with_an_overlap_then_finishes_and_is_revoked(
    redis_env: RedisServer, vault: hvac.Client, vault_name: str, tmp_path: Path
) -> None:
    user, old = f"{vault_name}-user", "old-user-password-1234567890"
    backend_servers.create_acl_user(redis_env, user, old)
    spec, unit, outcome = _rotated(
        vault_name,
        tmp_path,
        f"redis_acl_users: [{{server: '{backend_servers.redis_server_url(redis_env)}', "
        f"user: {user}}}]",
    )
    assert unit == Unit("redis_acl_user", f"{backend_servers.redis_server_url(redis_env)}/{user}")
    (pending,) = outcome.pending
    delivered = _read(vault, spec.deliveries()[0].path)
    new = delivered["password"]
    assert backend_servers.redis_auth(redis_env, user, old) and backend_servers.redis_auth(
        redis_env, user, new
    )

    waiting, _ = _rotation.finish_pending.fn([pending])
    assert waiting[0].outcome == "waiting" and backend_servers.redis_auth(redis_env, user, old)
    due = pending.model_copy(update={"not_before": datetime.now(UTC)})
    finished, lines = _rotation.finish_pending.fn([due])
    assert finished[0].outcome == "finished", finished
    assert not backend_servers.redis_auth(redis_env, user, old) and backend_servers.redis_auth(
        redis_env, user, new
    )
    # the receipt's rotation state: the pending removal names the user and a fingerprint only
    state = _rotation.next_state(_rotation.RotationState(), [], [outcome])
    assert state.to_json()["pending"][0]["params"] == {"keep": pending.params["keep"]}

    record = _credentials.revoke(CredentialRef("redis_acl_user", unit.declared))
    assert record.verified, record
    assert not backend_servers.redis_auth(redis_env, user, new)
    _no_password(
        [old, new],
        outcome.model_dump(mode="json"),
        [f.model_dump(mode="json") for f in finished],
        lines,
        state.to_json(),
        record.model_dump(mode="json"),
    )


def test_sundown_connectors_lists_both_kinds_with_their_extra() -> None:
    from sundown.catalog import Kind, list_connectors

    listed = {c.name: c for c in list_connectors()}
    for name, extra in (("postgres_role", "postgres"), ("redis_acl_user", "redis")):
        info = listed[name]
        assert info.kind == Kind.CREDENTIAL and info.extra == extra
        assert info.capabilities == ("rotate", "revoke") and info.installed
        assert info.to_dict()["install_hint"] is None


@pytest.mark.parametrize(
    ("mine", "theirs", "clash"),
    [
        # a role is cluster-wide: another database or admin user names the same role
        ("postgres_roles: [{database: 'postgresql://a@db:5432/app', role: bot}]",
         "postgres_roles: [{database: 'postgresql://db:5432/other', role: bot}]", True),
        ("postgres_roles: [{database: 'postgresql://db:5432/app', role: bot}]",
         "postgres_roles: [{database: 'postgresql://db:5432/app', role: bot2}]", False),
        ("postgres_roles: [{database: 'postgresql://db:5432/app', role: bot}]",
         "postgres_roles: [{database: 'postgresql://db:5433/app', role: bot}]", False),
        ("redis_acl_users: [{server: 'redis://admin@cache:6379', user: bot}]",
         "redis_acl_users: [{server: 'redis://CACHE:6379', user: bot}]", True),
        ("redis_acl_users: [{server: 'redis://cache:6379', user: bot}]",
         "redis_acl_users: [{server: 'redis://cache:6379', user: 'bot:v2'}]", False),
    ],
)  # fmt: skip
def test_two_systems_may_not_declare_one_role_or_user(
    mine: str, theirs: str, clash: bool, tmp_path: Path
) -> None:
    from sundown.spec.overlap import check_no_overlap

    a = _spec("sys-a", tmp_path / "a", f"  {mine}\n")
    b = _spec("sys-b", tmp_path / "b", f"  {theirs}\n")
    if not clash:
        check_no_overlap(a, [b])
        return
    with pytest.raises(InputError, match="revoking it would break sys-b"):
        check_no_overlap(a, [b])
