"""The ``postgres_role`` credential kind against the session's real PostgreSQL cluster, trying to
break it: names with quotes and spaces, a canary role with a prefix of the name, a role that
owns objects (here, in another database, or a database), one with members, one with privileges
elsewhere, a member of an admin role, open sessions; rotation that leaves the old password
working or sends the password to the server's statement log."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sundown.credential_ids import pg_role_ident
from sundown.credentials import credential_kind
from sundown.errors import ConflictError, InputError, PermissionDeniedError
from tests.conformance_credentials.backend_servers import (
    create_role,
    pg_admin,
    pg_database_url,
    pg_login,
)
from tests.fixtures.postgres import Postgres

ROLE = credential_kind("postgres_role")


@pytest.fixture
def pg(postgres_env: Postgres) -> Postgres:
    return postgres_env


def _name(tag: str = "") -> str:
    return f"r{uuid.uuid4().hex[:8]}{tag}"


def _ident(pg: Postgres, role: str) -> str:
    return pg_role_ident(pg_database_url(pg), role)


def _exists(pg: Postgres, role: str) -> bool:
    with pg_admin(pg) as conn:
        row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,))
        return row.fetchone() is not None


def _run(pg: Postgres, *statements: sql.Composable | str) -> None:
    with pg_admin(pg) as conn:
        for statement in statements:
            conn.execute(statement)


def _ident_sql(*names: str) -> list[sql.Identifier]:
    return [sql.Identifier(n) for n in names]


def _drop(pg: Postgres, table: str, *roles: str, if_exists: bool = False) -> None:
    """Clean up after a test: its table, then its roles (``if_exists``: the test may have
    dropped them already)."""
    drop_roles = "DROP ROLE IF EXISTS {}" if if_exists else "DROP ROLE {}"
    _run(
        pg,
        sql.SQL("DROP TABLE {}").format(sql.Identifier(table)),
        sql.SQL(drop_roles).format(sql.SQL(", ").join(_ident_sql(*roles))),
    )


@contextlib.contextmanager
def _other_database(pg: Postgres) -> Iterator[str]:
    db = _name("db")
    _run(pg, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    try:
        yield db
    finally:
        _run(pg, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))


def _as(pg: Postgres, db: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host="127.0.0.1",
        port=pg.server.port,
        user=pg.user,
        password=pg.password,
        dbname=db,
        autocommit=True,
    )


@pytest.mark.parametrize(
    "weird", ['bot "quoted"', "bot; DROP ROLE canary --", "bot with spaces", "Bot/Slash%20"]
)
def test_a_name_with_quotes_and_spaces_drops_exactly_that_role(pg: Postgres, weird: str) -> None:
    role, canary = f"{weird} {uuid.uuid4().hex[:6]}", _name()
    create_role(pg, role, "role-password-1234567890")
    create_role(pg, canary, "canary-password-1234567890")
    # a canary whose name is a prefix of the role's, and one that is the role's first word
    prefix = role[:5]
    create_role(pg, prefix, "prefix-password-1234567890")
    try:
        (evidence,) = ROLE.revoke(_ident(pg, role))
        assert evidence.verified and evidence.action == "revoked", evidence
        assert not _exists(pg, role) and not pg_login(pg, role, "role-password-1234567890")
        assert pg_login(pg, canary, "canary-password-1234567890")
        assert pg_login(pg, prefix, "prefix-password-1234567890")
        assert evidence.target == _ident(pg, role) and " " not in evidence.target
    finally:
        for r in (canary, prefix):
            _run(pg, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(r)))


def test_open_sessions_are_ended_and_memberships_and_privileges_revoked(pg: Postgres) -> None:
    role, canary, admins = _name(), _name("c"), _name("adm")
    table = _name("t")
    create_role(pg, role, "role-password-1234567890")
    create_role(pg, canary, "canary-password-1234567890")
    _run(
        pg,
        sql.SQL("CREATE ROLE {} CREATEROLE NOLOGIN").format(sql.Identifier(admins)),
        sql.SQL("GRANT {}, pg_read_all_data TO {}").format(*_ident_sql(admins, role)),
        sql.SQL("GRANT {} TO {}").format(*_ident_sql(admins, canary)),
        sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(table)),
        sql.SQL("GRANT SELECT, INSERT ON {} TO {}, {}").format(*_ident_sql(table, role, canary)),
        sql.SQL("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {}").format(
            sql.Identifier(role)
        ),
        # a privilege on a shared object (a database): DROP OWNED revokes it too
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(*_ident_sql(pg.database, role)),
    )
    session = psycopg.connect(
        host="127.0.0.1",
        port=pg.server.port,
        user=role,
        password="role-password-1234567890",
        dbname=pg.database,
        autocommit=True,
    )
    try:
        assert session.execute("SELECT 1").fetchone() == (1,)
        (evidence,) = ROLE.revoke(_ident(pg, role))
        assert evidence.verified, evidence
        assert evidence.details["sessions_ended"] == "1"
        assert set(evidence.details["memberships_revoked"].split(", ")) == {
            admins,
            "pg_read_all_data",
        }
        # the table's, the default privilege and the database's
        assert int(evidence.details["privileges_revoked"]) == 3, evidence.details
        assert evidence.checks["sessions"] == "0" and evidence.checks["memberships"] == "0"
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
        # the canary keeps its membership, its grant and its login; the table is still there
        with pg_admin(pg) as conn:
            members = conn.execute(
                "SELECT m.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
                "JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = %s",
                (admins,),
            ).fetchall()
            assert members == [(canary,)]
            assert conn.execute(
                "SELECT has_table_privilege(%s, %s, 'INSERT')", (canary, table)
            ).fetchone() == (True,)
            assert conn.execute("SELECT count(*) FROM pg_default_acl").fetchone() == (0,)
        assert pg_login(pg, canary, "canary-password-1234567890")
    finally:
        session.close()
        _drop(pg, table, canary, admins)


def _unchanged(pg: Postgres, role: str, password: str) -> None:
    """Refused before any change: the role exists and still logs in."""
    assert _exists(pg, role)
    assert pg_login(pg, role, password), "a refused revocation changed the role"


def test_a_role_that_owns_a_table_is_refused_before_anything_changes(pg: Postgres) -> None:
    role, table, password = _name(), _name("t"), "owner-password-1234567890"
    create_role(pg, role, password)
    _run(
        pg,
        sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(table)),
        sql.SQL("INSERT INTO {} VALUES (1)").format(sql.Identifier(table)),
        sql.SQL("ALTER TABLE {} OWNER TO {}").format(*_ident_sql(table, role)),
    )
    try:
        with pytest.raises(ConflictError) as err:
            ROLE.revoke(_ident(pg, role))
        assert "owns 1 object(s) of pg_class" in str(err.value)
        assert "Nothing was changed" in str(err.value)
        _unchanged(pg, role, password)
        with pg_admin(pg) as conn:  # the table is neither dropped nor reassigned
            owner = conn.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = %s", (table,)
            ).fetchone()
            assert owner == (role,)
    finally:
        _drop(pg, table, role)


@pytest.mark.parametrize("what", ["owns a table there", "holds a privilege there", "owns it"])
def test_what_is_in_another_database_is_refused(pg: Postgres, what: str) -> None:
    role, password = _name(), "other-db-password-1234567890"
    create_role(pg, role, password)
    with _other_database(pg) as db:
        if what == "owns it":
            _run(pg, sql.SQL("ALTER DATABASE {} OWNER TO {}").format(*_ident_sql(db, role)))
        else:
            with _as(pg, db) as conn:
                conn.execute("CREATE TABLE elsewhere (id int)")
                if what == "owns a table there":
                    conn.execute(sql.SQL("ALTER TABLE elsewhere OWNER TO {}").format(
                        sql.Identifier(role)))  # fmt: skip
                else:
                    conn.execute(sql.SQL("GRANT SELECT ON elsewhere TO {}").format(
                        sql.Identifier(role)))  # fmt: skip
        try:
            with pytest.raises(ConflictError) as err:
                ROLE.revoke(_ident(pg, role))
            expected = "on shared objects" if what == "owns it" else f"in database {db}"
            assert expected in str(err.value), err.value
            _unchanged(pg, role, password)
        finally:
            if what == "owns it":
                _run(pg, sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    *_ident_sql(db, pg.user)))  # fmt: skip
            with _as(pg, db) as conn:
                conn.execute("DROP TABLE IF EXISTS elsewhere")
    _run(pg, sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_role_with_members_is_refused(pg: Postgres) -> None:
    """Dropping a role takes its privileges from its members: another system's role that is a
    member of it must not lose them silently."""
    role, member, password = _name(), _name("m"), "group-password-1234567890"
    create_role(pg, role, password)
    create_role(pg, member, "member-password-1234567890")
    _run(pg, sql.SQL("GRANT {} TO {}").format(*_ident_sql(role, member)))
    try:
        with pytest.raises(ConflictError) as err:
            ROLE.revoke(_ident(pg, role))
        assert member in str(err.value) and "members" in str(err.value)
        _unchanged(pg, role, password)
    finally:
        _run(pg, sql.SQL("DROP ROLE {}, {}").format(*_ident_sql(member, role)))


def test_the_admin_role_and_reserved_roles_are_refused_before_any_call() -> None:
    with pytest.raises(InputError, match="connects as"):
        ROLE.parse("postgresql://admin@127.0.0.1:9/db/admin")
    with pytest.raises(InputError, match="reserved"):
        ROLE.revoke("postgresql://127.0.0.1:9/db/pg_write_all_data", missing_ok=True)


def test_a_password_in_the_identifier_is_refused_and_not_echoed() -> None:
    secret = "hunter2-should-not-be-echoed"
    for ident in (
        f"postgresql://admin:{secret}@127.0.0.1:5432/db/role",
        f"redis://admin:{secret}@127.0.0.1:6379/user",
    ):
        kind = credential_kind("postgres_role" if ident.startswith("post") else "redis_acl_user")
        with pytest.raises(InputError) as err:
            kind.parse(ident)
        assert secret not in str(err.value) and "must not hold a password" in str(err.value)


def test_rotation_replaces_the_password_at_once_and_never_logs_it(
    pg: Postgres, caplog: pytest.LogCaptureFixture
) -> None:
    role, old = _name(), "old-password-1234567890"
    canary = _name("c")
    create_role(pg, role, old)
    create_role(pg, canary, "canary-password-1234567890")
    log_start = pg.server.log.stat().st_size
    _run(pg, "ALTER SYSTEM SET log_statement = 'all'", "SELECT pg_reload_conf()")
    time.sleep(0.5)
    try:
        with caplog.at_level(logging.DEBUG):
            from connectors.credentials.postgres_role import rotate_password

            evidence, password = rotate_password(_ident(pg, role))
    finally:
        _run(pg, "ALTER SYSTEM RESET log_statement", "SELECT pg_reload_conf()")
    new = password.get_secret_value()
    assert evidence.verified, evidence
    assert evidence.checks == {
        "login with the new password": "accepted",
        "login with a wrong password": "refused",
    }
    assert "one password" in evidence.details["overlap"]
    assert pg_login(pg, role, new) and not pg_login(pg, role, old)
    assert pg_login(pg, canary, "canary-password-1234567890")
    with open(pg.server.log, "rb") as f:
        f.seek(log_start)
        server_log = f.read().decode(errors="replace")
    assert "ALTER ROLE" in server_log and "SCRAM-SHA-256$" in server_log, "nothing was logged"
    texts = [server_log, caplog.text, json.dumps(evidence.to_dict()), repr(evidence)]
    for text in texts:
        assert new not in text and old not in text
    _run(pg, sql.SQL("DROP ROLE {}, {}").format(*_ident_sql(role, canary)))


def test_a_nologin_role_is_not_rotated(pg: Postgres) -> None:
    role = _name()
    _run(pg, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    from connectors.credentials.postgres_role import rotate_password

    with pytest.raises(ConflictError, match="NOLOGIN"):
        rotate_password(_ident(pg, role))
    _run(pg, sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_createrole_admin_stops_with_the_role_nologin_where_it_lacks_a_right(
    pg: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A least-privileged admin (CREATEROLE) may drop roles but neither end other roles'
    sessions (pg_signal_backend) nor revoke what another user granted: each stops the revocation
    after NOLOGIN, says so and drops nothing; the superuser then finishes it."""
    admin, admin_pw = _name("adm"), "admin-password-1234567890"
    role, password, table = _name(), "session-password-1234567890", _name("t")
    _run(
        pg,
        sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
            sql.Identifier(admin), sql.Literal(admin_pw)
        ),
    )
    create_role(pg, role, password)
    _run(
        pg,
        sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(table)),
        sql.SQL("GRANT SELECT ON {} TO {}").format(*_ident_sql(table, role)),
    )
    monkeypatch.setenv("PGPASSWORD", admin_pw)
    ident = f"postgresql://{admin}@127.0.0.1:{pg.server.port}/{pg.database}/{role}"
    session = psycopg.connect(
        host="127.0.0.1", port=pg.server.port, user=role, password=password, dbname=pg.database
    )
    try:
        with pytest.raises(PermissionDeniedError) as err:
            ROLE.revoke(ident)
        assert "left NOLOGIN, nothing dropped" in str(err.value)
        assert _exists(pg, role) and not pg_login(pg, role, password)
        _run(pg, sql.SQL("GRANT pg_signal_backend TO {}").format(sql.Identifier(admin)))
        with pytest.raises(ConflictError) as err:
            ROLE.revoke(ident)
        assert f"privileges for table {table}" in str(err.value)
        assert "nothing dropped" in str(err.value) and _exists(pg, role)
        with pg_admin(pg) as conn:  # rolled back: the grant and the membership are as before
            assert conn.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT'), pg_has_role(%s, %s, 'MEMBER')",
                (role, table, admin, role),
            ).fetchone() == (True, False)
        monkeypatch.setenv("PGPASSWORD", pg.password)
        (evidence,) = ROLE.revoke(_ident(pg, role))
        assert evidence.verified and evidence.details["privileges_revoked"] == "1", evidence
        assert evidence.details["login_before"] == "no (NOLOGIN)"
        assert not _exists(pg, role)
    finally:
        session.close()
        _drop(pg, table, role, admin, if_exists=True)


def test_a_createrole_admin_revokes_what_it_granted_through_a_membership_that_goes_with_the_role(
    pg: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, admin_pw = _name("adm"), "admin-password-1234567890"
    role, table = _name(), _name("t")
    _run(
        pg,
        sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {} IN ROLE pg_signal_backend").format(
            sql.Identifier(admin), sql.Literal(admin_pw)
        ),
        sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(admin)),
    )
    create_role(pg, role, "member-password-1234567890")
    monkeypatch.setenv("PGPASSWORD", admin_pw)
    with psycopg.connect(
        host="127.0.0.1", port=pg.server.port, user=admin, dbname=pg.database, autocommit=True
    ) as conn:  # the admin's own table, granted by the admin
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(table)))
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(*_ident_sql(table, role)))
    ident = f"postgresql://{admin}@127.0.0.1:{pg.server.port}/{pg.database}/{role}"
    try:
        (evidence,) = ROLE.revoke(ident)
        assert evidence.verified and evidence.details["privileges_revoked"] == "1", evidence
        assert evidence.checks["memberships"] == "0"  # the admin's temporary one went too
        assert not _exists(pg, role)
    finally:
        _run(
            pg,
            sql.SQL("DROP TABLE {}").format(sql.Identifier(table)),
            sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(sql.Identifier(admin)),
            sql.SQL("DROP ROLE IF EXISTS {}, {}").format(*_ident_sql(role, admin)),
        )
