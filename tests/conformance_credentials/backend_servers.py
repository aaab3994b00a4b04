"""Conformance backends for the credentials of the record stores' servers: PostgreSQL roles on
the session's private cluster (tests/fixtures/postgres.py) and Redis ACL users on its
redis-server (tests/fixtures/redis.py). The probes log in the way a consumer does: a psycopg
connection with the role's password, a Redis ``AUTH`` with the user's."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import redis
import redis.exceptions
from psycopg import sql

from sundown.credential_ids import pg_role_ident, redis_user_ident
from tests.conformance_credentials.backends import Backend, Planted, Values, plain
from tests.fixtures.postgres import Postgres
from tests.fixtures.redis import RedisServer


def pg_admin(pg: Postgres) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host="127.0.0.1",
        port=pg.server.port,
        user=pg.user,
        password=pg.password,
        dbname=pg.database,
        autocommit=True,
    )


def pg_login(pg: Postgres, role: str, password: str) -> bool:
    """Whether a consumer's login as ``role`` with ``password`` is accepted."""
    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=pg.server.port,
            user=role,
            password=password,
            dbname=pg.database,
            passfile="/dev/null",
            connect_timeout=10,
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        refusals = ("password authentication failed", "is not permitted to log in")
        assert any(r in str(exc) for r in refusals), exc
        return False
    return True


def create_role(pg: Postgres, role: str, password: str, *extra: str) -> None:
    with pg_admin(pg) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} " + " ".join(extra)).format(
                sql.Identifier(role), sql.Literal(password)
            )
        )


def pg_database_url(pg: Postgres) -> str:
    return f"postgresql://127.0.0.1:{pg.server.port}/{pg.database}"


def redis_auth(server: RedisServer, user: str, password: str) -> bool:
    """Whether a consumer's ``AUTH user password`` is accepted."""
    client = redis.Redis(host="127.0.0.1", port=server.port, username=user, password=password)
    try:
        with client:
            client.ping()
    except redis.exceptions.AuthenticationError:
        return False
    return True


def create_acl_user(server: RedisServer, user: str, password: str) -> None:
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", f"~{user}:*", "+@all")


def redis_server_url(server: RedisServer) -> str:
    return f"redis://127.0.0.1:{server.port}"


class PostgresRoleBackend(Backend):
    kind = "postgres_role"
    rotatable = True
    rotates_in_place = True
    fixtures = ("postgres_env",)
    malformed = (
        "",
        "postgresql://127.0.0.1:5432/records",
        "postgresql://127.0.0.1:5432/records/a/b",
        "postgresql://127.0.0.1:5432/records/pg_monitor",
        "redis://127.0.0.1:6379/records/role",
        "postgresql://127.0.0.1:5432/records/a%01b",
    )

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        pg: Postgres = request.getfixturevalue("postgres_env")
        password = "pg-" + name + "-secret-password"
        create_role(pg, name, password)
        return Planted(
            ident=pg_role_ident(pg_database_url(pg), name),
            secrets=[password],
            works=lambda: pg_login(pg, name, password),
            declare=f"  postgres_roles: [{{database: '{pg_database_url(pg)}', role: {name}}}]\n",
            extra={"pg": pg, "role": name},
        )

    def new_works(self, planted: Planted, values: Values) -> bool:
        assert plain(values["username"]) == planted.extra["role"]
        return pg_login(planted.extra["pg"], planted.extra["role"], plain(values["password"]))


class RedisAclUserBackend(Backend):
    kind = "redis_acl_user"
    rotatable = True
    rotates_in_place = True
    fixtures = ("redis_env",)
    malformed = (
        "",
        "redis://127.0.0.1:6379",
        "redis://127.0.0.1:6379/default",
        "redis://127.0.0.1:6379/a%20b",
        "redis://127.0.0.1:6379/0/user",
        "postgresql://127.0.0.1:6379/user",
    )

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        server: RedisServer = request.getfixturevalue("redis_env")
        password = "rd-" + name + "-secret-password"
        create_acl_user(server, name, password)
        url = redis_server_url(server)
        return Planted(
            ident=redis_user_ident(url, name),
            secrets=[password],
            works=lambda: redis_auth(server, name, password),
            declare=f"  redis_acl_users: [{{server: '{url}', user: {name}}}]\n",
            extra={"server": server, "user": name},
        )

    def new_works(self, planted: Planted, values: Values) -> bool:
        assert plain(values["username"]) == planted.extra["user"]
        return redis_auth(planted.extra["server"], planted.extra["user"], plain(values["password"]))
