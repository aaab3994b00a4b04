"""rotate_credentials and revoke_credentials with a PostgreSQL role and a Redis ACL user, through
the session's Prefect server, delivering into OpenBao: the role's password is replaced at once,
the ACL user's old password keeps working until the run after the grace period, each delivered
password works, revocation kills both, and no password (old or delivered) appears in any Prefect
log, artifact, task run, receipt or ledger record."""

from __future__ import annotations

import time
import uuid

import hvac

from flows.models import RevokeParameters, RotateParameters
from flows.revoke import revoke_credentials
from flows.rotate import rotate_credentials
from tests.conformance_credentials import backend_servers
from tests.fixtures.openbao import OpenBao
from tests.fixtures.postgres import Postgres
from tests.fixtures.redis import RedisServer
from tests.flows.systems import System
from tests.flows.test_rotate_credentials import evidence_texts, prefect_texts


def test_roles_and_acl_users_rotate_deliver_and_are_revoked_without_a_password_anywhere(
    system: System,
    postgres_env: Postgres,
    redis_env: RedisServer,
    vault_env: OpenBao,
) -> None:
    name = "c" + uuid.uuid4().hex[:10]
    old_pg, old_rd = f"pg-old-{name}-password", f"rd-old-{name}-password"
    backend_servers.create_role(postgres_env, name, old_pg)
    backend_servers.create_acl_user(redis_env, name, old_rd)
    database = backend_servers.pg_database_url(postgres_env)
    server = backend_servers.redis_server_url(redis_env)
    spec = system.spec_path.read_text() + (
        "credentials:\n"
        f"  postgres_roles: [{{database: '{database}', role: {name}}}]\n"
        f"  redis_acl_users: [{{server: '{server}', user: {name}}}]\n"
        f"rotation:\n  deliver_to: {{path: {name}/rotated}}\n  grace_period_hours: 0.001\n"
    )
    vault = hvac.Client(url=vault_env.addr, token=vault_env.root_token)

    def delivered(kind: str, host_port: str) -> str:
        answer = vault.secrets.kv.v2.read_secret_version(
            f"{name}/rotated/{kind}/{host_port}/{name}",
            mount_point="secret",
            raise_on_deleted_version=True,
        )
        return str(answer["data"]["data"]["password"])

    pg_path = f"127.0.0.1_{postgres_env.server.port}"
    rd_path = f"127.0.0.1_{redis_env.port}"
    runs = []

    def rotate() -> tuple[str, str]:
        """One rotate_credentials run; the passwords it delivered (role, ACL user)."""
        state = rotate_credentials(
            RotateParameters(spec_yaml=spec, variables=system.variables), return_state=True
        )
        runs.append(state.state_details.flow_run_id)
        lines = state.result().credentials
        assert not [line for line in lines if "FAILED" in line], lines
        return delivered("postgres", pg_path), delivered("redis", rd_path)

    pg1, rd1 = rotate()
    assert backend_servers.pg_login(postgres_env, name, pg1) and not backend_servers.pg_login(
        postgres_env, name, old_pg
    )
    assert backend_servers.redis_auth(redis_env, name, rd1) and backend_servers.redis_auth(
        redis_env, name, old_rd
    )  # overlap

    time.sleep(4)  # the grace period (3.6 s) ends; the next run removes the old Redis password
    pg2, rd2 = rotate()
    assert not backend_servers.redis_auth(redis_env, name, old_rd)
    assert backend_servers.redis_auth(redis_env, name, rd1) and backend_servers.redis_auth(
        redis_env, name, rd2
    )
    assert backend_servers.pg_login(postgres_env, name, pg2) and not backend_servers.pg_login(
        postgres_env, name, pg1
    )

    state = revoke_credentials(
        RevokeParameters(spec_yaml=spec, variables=system.variables, reason="drill"),
        return_state=True,
    )
    runs.append(state.state_details.flow_run_id)
    revoked = state.result()
    assert not revoked.failed, revoked
    assert not backend_servers.pg_login(postgres_env, name, pg2)
    assert not backend_servers.redis_auth(redis_env, name, rd2) and not backend_servers.redis_auth(
        redis_env, name, rd1
    )

    texts = prefect_texts(runs) + evidence_texts(system)
    assert any("postgres-role" in t for t in texts) and any("redis-acl-user" in t for t in texts)
    for password in (old_pg, old_rd, pg1, rd1, pg2, rd2):
        for text in texts:
            assert password not in text
