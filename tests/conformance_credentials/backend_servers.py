"""Conformance backends for the credentials of the record stores' servers: PostgreSQL roles on
the session's private cluster (tests/fixtures/postgres.py) and Redis ACL users on its
redis-server (tests/fixtures/redis.py). The probes log in the way a consumer does: a psycopg
connection with the role's password, a Redis ``AUTH`` with the user's."""

from __future__ import annotations

from collections.abc import Callable
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


class _ServerBackend(Backend):
    """A role or user on the session's server, created with a password; its consumer logs in."""

    rotatable = True
    rotates_in_place = True
    fixture: str
    prefix: str  # of the planted password
    entry: str  # the spec line: its list, and the keys of the server URL and the name

    url: Callable[[Any], str]  # the server's URL in the spec
    ident: Callable[[str, str], str]  # (url, name) -> the credential identifier
    create: Callable[[Any, str, str], None]  # (server, name, password)
    login: Callable[[Any, str, str], bool]  # (server, name, password): accepted?

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        server = request.getfixturevalue(self.fixture)
        password = f"{self.prefix}-{name}-secret-password"
        self.create(server, name, password)
        return Planted(
            ident=self.ident(self.url(server), name),
            secrets=[password],
            works=lambda: self.login(server, name, password),
            declare=self.entry.format(url=self.url(server), name=name),
            extra={"server": server, "name": name},
        )

    def new_works(self, planted: Planted, values: Values) -> bool:
        name = planted.extra["name"]
        assert plain(values["username"]) == name
        return self.login(planted.extra["server"], name, plain(values["password"]))


class PostgresRoleBackend(_ServerBackend):
    kind = "postgres_role"
    fixture = "postgres_env"
    prefix = "pg"
    entry = "  postgres_roles: [{{database: '{url}', role: {name}}}]\n"
    malformed = (
        "",
        "postgresql://127.0.0.1:5432/records",
        "postgresql://127.0.0.1:5432/records/a/b",
        "postgresql://127.0.0.1:5432/records/pg_monitor",
        "redis://127.0.0.1:6379/records/role",
        "postgresql://127.0.0.1:5432/records/a%01b",
    )
    url = staticmethod(pg_database_url)
    ident = staticmethod(pg_role_ident)
    create = staticmethod(create_role)
    login = staticmethod(pg_login)


class RedisAclUserBackend(_ServerBackend):
    kind = "redis_acl_user"
    fixture = "redis_env"
    prefix = "rd"
    entry = "  redis_acl_users: [{{server: '{url}', user: {name}}}]\n"
    malformed = (
        "",
        "redis://127.0.0.1:6379",
        "redis://127.0.0.1:6379/default",
        "redis://127.0.0.1:6379/a%20b",
        "redis://127.0.0.1:6379/0/user",
        "postgresql://127.0.0.1:6379/user",
    )
    url = staticmethod(redis_server_url)
    ident = staticmethod(redis_user_ident)
    create = staticmethod(create_acl_user)
    login = staticmethod(redis_auth)
