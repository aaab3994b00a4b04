"""PostgreSQL roles (psycopg 3): revoke (end the sessions, revoke memberships and privileges,
``DROP ROLE``), prove dead, rotate the password.

The ``postgres_role`` credential kind (:data:`ROLE`), identified as
``postgresql://[ADMIN@]HOST:PORT/DB/ROLE`` (:mod:`sundown.credential_ids`). Sundown connects to
``DB`` as ``ADMIN`` (or libpq's ``PGUSER``) with libpq's own password conventions
(``PGPASSWORD``, ``PGPASSFILE``, ``~/.pgpass``; TLS from ``PGSSLMODE``, ...); a connection is made
per operation and never cached. Every identifier is composed with :class:`psycopg.sql.Identifier`.

Revocation, in this order, and nothing after a refusal:

1. Look (read only): the role, the roles it is a member of, the roles that are members of it,
   and every dependency the server records on it (``pg_shdepend``). Refused, before any change,
   when the role owns anything (a table, a schema, a database, ... in any database: Sundown never
   drops or reassigns objects through a credential; the system's tables are purged as record-store
   locations before its credentials are revoked), holds privileges in a database other than
   ``DB``, is named in a row-level security policy, has members (dropping it would take
   privileges from other roles), or is the user Sundown connects as.
2. ``ALTER ROLE ... NOLOGIN``, then ``pg_terminate_backend`` on each of its sessions (in every
   database), waiting for each to end.
3. One transaction: look again (a session may have created something before it ended; then it
   stops, the role left NOLOGIN and nothing dropped), ``REVOKE`` each membership, ``DROP OWNED
   BY`` (which, the role owning nothing, only revokes its privileges and default privileges in
   ``DB`` and on shared objects), ``DROP ROLE``.
4. Prove: the role is not in ``pg_roles``; no membership, dependency or session refers to its
   old oid.

A login with the role cannot be tried by Sundown, which never holds its password: authentication
looks the role up first, so a role absent from the catalogue cannot log in (the conformance suite
shows a real login failing).

Rotation: ``ALTER ROLE ... PASSWORD`` with a fresh random password, sent as a SCRAM-SHA-256
verifier computed by libpq (``PQencryptPasswordConn``), so the password itself never reaches
the server's statement log. A role has one password: the old one stops working at once, there is
no overlap window (the grace period does not apply). Checks: a login with the new password
succeeds, a login with a wrong one is refused (password authentication applies to the role; a
``trust`` rule would make any password work). Open sessions stay open (a password change does not
end them). ``{username, password}`` is delivered.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

from connectors.credentials._server import ServerKind
from connectors.postgres import _map_error
from sundown.credential_ids import PG_FORM, ServiceCredential, pg_role
from sundown.credentials import Checks, NotRotated, Rotated
from sundown.errors import ConflictError, NotFoundError, SundownError

if TYPE_CHECKING:
    from sundown.credentials import CredentialEvidence, RotationJob

KIND = "postgres-role"
_LOG = logging.getLogger(__name__)
TERMINATE_WAIT_MS = 5000


@contextlib.contextmanager
def _connect(
    cred: ServiceCredential,
    *,
    autocommit: bool = True,
    user: str | None = None,
    password: str | None = None,
) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the role's database, as the admin (or as ``user`` with ``password``)."""
    server = cred.server
    params: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "dbname": server.database,
        "application_name": "sundown",
        "autocommit": autocommit,
        "connect_timeout": 10,
    }
    if user is not None:
        params.update(user=user, password=password, passfile="/dev/null")
    elif server.admin:
        params["user"] = server.admin
    what = f"connect to {server.host}:{server.port}"
    try:
        conn = psycopg.connect(**params)
    except psycopg.Error as exc:
        raise _map_error(exc, what) from None
    try:
        with conn:
            yield conn
    except psycopg.Error as exc:
        raise _map_error(exc, f"role {cred.name!r} on {server.host}:{server.port}") from None


@dataclass
class _Role:
    """What the catalogue says of a role (public facts only)."""

    oid: int
    can_login: bool
    groups: list[str]  # roles it is a member of
    members: list[str]  # roles that are members of it
    deps: list[tuple[str, str, str, int]] = field(default_factory=list)  # (db, class, type, n)


def _inspect(conn: psycopg.Connection[Any], role: str) -> _Role | None:
    row = conn.execute("SELECT oid, rolcanlogin FROM pg_roles WHERE rolname = %s", (role,))
    found = row.fetchone()
    if found is None:
        return None
    oid = int(found[0])
    groups = conn.execute(
        "SELECT DISTINCT g.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
        "WHERE a.member = %s ORDER BY 1",
        (oid,),
    ).fetchall()
    members = conn.execute(
        "SELECT DISTINCT m.rolname FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.member "
        "WHERE a.roleid = %s ORDER BY 1",
        (oid,),
    ).fetchall()
    deps = conn.execute(
        "SELECT CASE WHEN d.dbid = 0 THEN '' "
        "WHEN d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "THEN '.' ELSE coalesce(db.datname, d.dbid::text) END, "
        "d.classid::regclass::text, d.deptype::text, count(*) "
        "FROM pg_shdepend d LEFT JOIN pg_database db ON db.oid = d.dbid "
        "WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = %s "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        (oid,),
    ).fetchall()
    return _Role(
        oid,
        bool(found[1]),
        [str(g[0]) for g in groups],
        [str(m[0]) for m in members],
        [(str(d[0]), str(d[1]), str(d[2]), int(d[3])) for d in deps],
    )


def _where(db: str, database: str) -> str:
    return {"": "on shared objects", ".": f"in database {database}"}.get(db, f"in database {db}")


def _refusals(cred: ServiceCredential, role: _Role, admin: str) -> list[str]:
    """Why the role must not be dropped: everything DROP OWNED / DROP ROLE would do beyond
    revoking the role's own privileges."""
    out: list[str] = []
    if cred.name == admin:
        out.append("it is the user Sundown connects as")
    if role.members:
        out.append(
            f"roles {role.members} are members of it (dropping it would take privileges from "
            "them): revoke those memberships first or declare those roles"
        )
    database = str(cred.server.database)
    for db, cls, deptype, n in role.deps:
        where = _where(db, database)
        if deptype == "o" and cls != "pg_default_acl":
            out.append(f"it owns {n} object(s) of {cls} {where}")
        elif deptype == "r":
            out.append(f"it is named in {n} row-level security policy(ies) {where}")
        elif db not in ("", "."):
            out.append(f"it holds {n} privilege(s) ({cls}) {where}, outside {database}")
        elif deptype not in ("o", "a"):
            out.append(f"it has {n} dependency(ies) of type {deptype!r} ({cls}) {where}")
    return out


def _refuse(cred: ServiceCredential, role: _Role, admin: str, state: str) -> None:
    why = _refusals(cred, role, admin)
    if why:
        raise ConflictError(
            f"revocation of role {cred.name!r} on {cred.server.host}:{cred.server.port} stopped: "
            + "; ".join(why)
            + f". {state} (reassign or drop those objects yourself, then run again)"
        )


def _one(conn: psycopg.Connection[Any], query: str, params: Any = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None  # an aggregate or a function call: always one row
    return row[0]


# what must no longer refer to a dropped role's oid
_LEFT = {
    "memberships": "SELECT count(*) FROM pg_auth_members WHERE %(oid)s IN (member, roleid)",
    "dependencies (pg_shdepend)": "SELECT count(*) FROM pg_shdepend "
    "WHERE refclassid = 'pg_authid'::regclass AND refobjid = %(oid)s",
    "sessions": "SELECT count(*) FROM pg_stat_activity WHERE usesysid = %(oid)s",
}


def _absent_checks(
    conn: psycopg.Connection[Any], cred: ServiceCredential, oid: int | None
) -> Checks:
    """The role is not in the catalogue, and nothing refers to its old oid (or, when it was
    absent already, no session runs under its name)."""
    checks = Checks()
    gone = _inspect(conn, cred.name) is None
    checks.expect("role in pg_roles", gone, "absent" if gone else "PRESENT")
    if oid is None:
        n = int(
            _one(conn, "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (cred.name,))
        )
        checks.expect("sessions", n == 0, str(n))
        return checks
    for name, query in _LEFT.items():
        n = int(_one(conn, query, {"oid": oid}))
        checks.expect(name, n == 0, str(n))
    return checks


def _drop(
    conn: psycopg.Connection[Any], cred: ServiceCredential, role: _Role, privileges: int
) -> None:
    """Inside the final transaction: revoke the memberships, the privileges (DROP OWNED: the
    role owns nothing by now), drop the role."""
    role_id = sql.Identifier(cred.name)
    for group in role.groups:
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), role_id))
    _LOG.debug("role %r: revoked %s; DROP OWNED BY, DROP ROLE", cred.name, role.groups)
    if privileges:
        # DROP OWNED needs the role's privileges: a CREATEROLE admin takes its membership for
        # this transaction (it goes with the role)
        if not _one(conn, "SELECT pg_has_role(current_user, %s, 'USAGE')", (role.oid,)):
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role_id))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(role_id))
    conn.execute(sql.SQL("DROP ROLE {}").format(role_id))


def revoke_role(ident: str, *, missing_ok: bool = False) -> CredentialEvidence:
    """End the role's sessions, revoke its memberships and privileges, drop it, and prove it
    gone. ConflictError, before any change, when it owns anything or holds what DROP ROLE would
    take from others (see the module docstring)."""
    cred = pg_role(ident)
    role_id = sql.Identifier(cred.name)
    with _connect(cred) as conn:
        admin = str(_one(conn, "SELECT current_user"))
        role = _inspect(conn, cred.name)
        if role is None:
            if not missing_ok:
                raise NotFoundError(f"no role {cred.name!r} on {cred.server.host}")
            checks = _absent_checks(conn, cred, None)
            return checks.evidence(KIND, cred.ident, "already absent")
        _refuse(cred, role, admin, "Nothing was changed")
        _LOG.debug("role %r: ALTER ROLE NOLOGIN, ending its sessions", cred.name)
        conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(role_id))
        try:
            ended = _one(
                conn,
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, %s)) "
                "FROM pg_stat_activity WHERE usesysid = %s AND pid <> pg_backend_pid()",
                (TERMINATE_WAIT_MS, role.oid),
            )
        except psycopg.Error as exc:
            error = _map_error(exc, f"ending the sessions of role {cred.name!r}")
            raise type(error)(
                f"{error}; the role was left NOLOGIN, nothing dropped (Sundown's user needs "
                "pg_signal_backend to end other roles' sessions)"
            ) from None
    with _connect(cred, autocommit=False) as conn:
        again = _inspect(conn, cred.name)
        if again is None or again.oid != role.oid:
            raise ConflictError(f"role {cred.name!r} was dropped or replaced meanwhile; run again")
        _refuse(cred, again, admin, "The role was left NOLOGIN, with no session; nothing dropped")
        privileges = sum(n for _, cls, t, n in again.deps if t == "a" or cls == "pg_default_acl")
        try:
            _drop(conn, cred, again, privileges)
        except psycopg.Error as exc:
            error = _map_error(exc, f"dropping role {cred.name!r}")
            detail = (exc.diag.message_detail or "").replace("\n", "; ")[:300]
            raise type(error)(
                f"{error}{': ' + detail if detail else ''}; rolled back: the role was left "
                "NOLOGIN, with no session; nothing dropped"
            ) from None
    with _connect(cred) as conn:
        checks = _absent_checks(conn, cred, role.oid)
    details = {
        "database": str(cred.server.database),
        "login_before": "yes" if role.can_login else "no (NOLOGIN)",
        "sessions_ended": str(ended),
        "memberships_revoked": ", ".join(again.groups) or "none",
        "privileges_revoked": str(privileges),
        "dropped": ("DROP OWNED BY (privileges only: it owned nothing), " if privileges else "")
        + "DROP ROLE",
    }
    return checks.evidence(KIND, cred.ident, "revoked", details)


def role_can_log_in(ident: str) -> bool:
    """Whether the role exists, may log in and its password has not expired; no change."""
    cred = pg_role(ident)
    with _connect(cred) as conn:
        row = conn.execute(
            "SELECT rolcanlogin AND (rolvaliduntil IS NULL OR rolvaliduntil > now()) "
            "FROM pg_roles WHERE rolname = %s",
            (cred.name,),
        ).fetchone()
    return bool(row and row[0])


def _login(cred: ServiceCredential, password: str) -> str:
    """``accepted`` or ``refused`` (the server's answer to a password login as the role)."""
    try:
        with _connect(cred, user=cred.name, password=password) as conn:
            conn.execute("SELECT 1")
    except SundownError as exc:
        text = str(exc)
        if "password authentication failed" in text or "authentication refused" in text:
            return "refused"
        # authenticated, then refused for another reason (e.g. no CONNECT on the database)
        return "accepted" if "permission denied for database" in text else f"error: {text[:200]}"
    return "accepted"


def rotate_password(ident: str) -> tuple[CredentialEvidence, SecretStr]:
    """Give the role a fresh random password (sent as a SCRAM verifier) and prove it works and
    that a wrong one does not. The old password stops working at once."""
    cred = pg_role(ident)
    password = secrets.token_urlsafe(32)
    with _connect(cred) as conn:
        role = _inspect(conn, cred.name)
        if role is None:
            raise NotFoundError(f"no role {cred.name!r} on {cred.server.host}")
        if not role.can_login:
            raise ConflictError(f"role {cred.name!r} cannot log in (NOLOGIN): not rotated")
        verifier = conn.pgconn.encrypt_password(
            password.encode(), cred.name.encode(), b"scram-sha-256"
        ).decode()
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(cred.name), sql.Literal(verifier)
            )
        )
        del verifier
        _LOG.debug("role %r: ALTER ROLE PASSWORD (a SCRAM verifier)", cred.name)
        sessions = _one(
            conn, "SELECT count(*) FROM pg_stat_activity WHERE usesysid = %s", (role.oid,)
        )
    checks = Checks()
    new = _login(cred, password)
    checks.expect("login with the new password", new == "accepted", new)
    wrong = _login(cred, secrets.token_urlsafe(32))
    checks.expect("login with a wrong password", wrong == "refused", wrong)
    details = {
        "database": str(cred.server.database),
        "method": "ALTER ROLE ... PASSWORD (SCRAM-SHA-256 verifier computed by libpq)",
        "overlap": "none: a PostgreSQL role has one password; the old one stopped working at once",
        "sessions_left_open": str(sessions),
    }
    return checks.evidence(KIND, cred.ident, "rotated", details), SecretStr(password)


class Role(ServerKind):
    """``postgres_role``: a role, revoked by DROP ROLE; rotated in place (new password)."""

    kind = "postgres_role"
    form = PG_FORM
    spec_field = "postgres_roles"
    split = staticmethod(pg_role)
    revoke_one = staticmethod(revoke_role)
    is_live = staticmethod(role_can_log_in)

    def rotate(self, job: RotationJob) -> Rotated | NotRotated:
        cred = pg_role(job.unit.declared)
        evidence, password = rotate_password(cred.ident)
        return Rotated(
            new=[cred.ident],
            evidence=[evidence],
            deliver={"username": cred.name, "password": password},
            failure="the new password was set but a check of it (or its delivery) did not pass",
        )


ROLE = Role()
