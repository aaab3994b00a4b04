"""Identifiers of the credentials of the record stores' servers: PostgreSQL roles and Redis ACL
users (issue #14). Parsed here, in the core, so that the system spec refuses a malformed entry
when it is loaded and the credential kinds (``connectors/credentials/postgres_role.py``,
``redis_acl.py``) refuse it before any call to a server, with the same rules.

- A PostgreSQL role: ``postgresql://[ADMIN@]HOST:PORT/DB/ROLE``. ``DB`` is the database Sundown
  connects to (as ``ADMIN``, or libpq's ``PGUSER``; the password from ``PGPASSWORD`` or the
  password file), ``ROLE`` the role (percent-encoded: ``support%20bot`` is ``support bot``).
- A Redis ACL user: ``redis://[ADMIN@]HOST:PORT/USER`` (``ADMIN`` an ACL user allowed the ``ACL``
  and ``CLIENT`` commands, or ``default``; the password from ``REDISCLI_AUTH``).

A password in the URL is refused without being echoed (identifiers are written into receipts and
certificates). The spec declares each as a server URL and a name (:func:`pg_role_ident`,
:func:`redis_user_ident` compose the identifier).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sundown.errors import InputError
from sundown.records import Location, parse_location

PG_FORM = "postgresql://[ADMIN@]HOST:PORT/DB/ROLE (ROLE percent-encoded)"
REDIS_FORM = "redis://[ADMIN@]HOST:PORT/USER (USER percent-encoded)"
_PG_AUTH = "PGPASSWORD or the password file (PGPASSFILE, ~/.pgpass)"
_REDIS_AUTH = "REDISCLI_AUTH"
_NAMEDATALEN = 63  # PostgreSQL's longest identifier, in bytes


@dataclass(frozen=True)
class Server:
    """Where to connect: host, port, the admin user (None: the environment's), and for
    PostgreSQL the database."""

    host: str
    port: int
    admin: str | None
    database: str | None = None

    def url(self, scheme: str) -> str:
        user = f"{quote(self.admin, safe='')}@" if self.admin else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        db = f"/{quote(self.database, safe='')}" if self.database is not None else ""
        return f"{scheme}://{user}{host}:{self.port}{db}"


@dataclass(frozen=True)
class ServiceCredential:
    """A role or ACL user on a server; ``ident`` is its canonical identifier."""

    server: Server
    name: str
    ident: str


def _printable(name: str, what: str) -> None:
    if not name:
        raise InputError(f"empty {what}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InputError(f"{what} {name!r} holds a control character")


def check_role(role: str) -> str:
    """A PostgreSQL role name Sundown may revoke: 1 to 63 bytes, no control character, not a
    reserved ``pg_`` role."""
    _printable(role, "role name")
    if len(role.encode("utf-8")) > _NAMEDATALEN:
        raise InputError(f"role name {role!r} is longer than {_NAMEDATALEN} bytes")
    if role.startswith("pg_"):
        raise InputError(f"role {role!r} is a reserved PostgreSQL role (pg_*): never revoked")
    return role


def check_acl_user(user: str) -> str:
    """A Redis ACL user name Sundown may revoke: no space or control character (Redis refuses
    them), at most 256 characters, not ``default`` (ACL DELUSER refuses it)."""
    _printable(user, "ACL user name")
    if " " in user or len(user) > 256:
        raise InputError(f"ACL user name {user!r} holds a space or is too long")
    if user == "default":
        raise InputError(
            "the 'default' user cannot be deleted (ACL DELUSER refuses it): declare an ACL "
            "user of the system"
        )
    return user


def _server(loc: Location, database: str | None = None) -> Server:
    return Server(loc.host.lower(), loc.port, loc.user, database)


def pg_database(url: str) -> Server:
    """The spec's ``database`` URL: ``postgresql://[ADMIN@]HOST:PORT/DB``."""
    loc = parse_location(
        url, scheme="postgresql", default_port=5432, names=("database",), auth_hint=_PG_AUTH
    )
    return _server(loc, loc.segments[0])


def redis_server(url: str) -> Server:
    """The spec's ``server`` URL: ``redis://[ADMIN@]HOST:PORT``."""
    loc = parse_location(url, scheme="redis", default_port=6379, names=(), auth_hint=_REDIS_AUTH)
    return _server(loc)


def _compose(server: Server, scheme: str, name: str) -> ServiceCredential:
    return ServiceCredential(server, name, f"{server.url(scheme)}/{quote(name, safe='')}")


def pg_role(ident: str) -> ServiceCredential:
    """A role identifier, split and checked (InputError naming the problem)."""
    loc = parse_location(
        ident,
        scheme="postgresql",
        default_port=5432,
        names=("database", "role"),
        auth_hint=_PG_AUTH,
    )
    database, role = loc.segments
    server = _server(loc, database)
    _refuse_admin(server, check_role(role), "role")
    return _compose(server, "postgresql", role)


def redis_user(ident: str) -> ServiceCredential:
    """An ACL user identifier, split and checked (InputError naming the problem)."""
    loc = parse_location(
        ident, scheme="redis", default_port=6379, names=("user",), auth_hint=_REDIS_AUTH
    )
    server = _server(loc)
    _refuse_admin(server, check_acl_user(loc.segments[0]), "ACL user")
    return _compose(server, "redis", loc.segments[0])


def same_target(kind: str, a: str, b: str) -> bool:
    """Whether two identifiers of ``kind`` (``postgres_role``, ``redis_acl_user``) name one role
    or user: the same server (host and port as written) and name, whatever the database or the
    admin user (a PostgreSQL role is cluster-wide)."""
    split = pg_role if kind == "postgres_role" else redis_user
    ca, cb = split(a), split(b)
    return (ca.server.host, ca.server.port, ca.name) == (cb.server.host, cb.server.port, cb.name)


def _refuse_admin(server: Server, name: str, what: str) -> None:
    if server.admin is not None and server.admin == name:
        raise InputError(f"{what} {name!r} is the user Sundown connects as: it cannot revoke it")


def pg_role_ident(database_url: str, role: str) -> str:
    """The identifier of ``role`` declared on ``database_url``."""
    server = pg_database(database_url)
    _refuse_admin(server, check_role(role), "role")
    return _compose(server, "postgresql", role).ident


def redis_user_ident(server_url: str, user: str) -> str:
    """The identifier of ACL user ``user`` declared on ``server_url``."""
    server = redis_server(server_url)
    _refuse_admin(server, check_acl_user(user), "ACL user")
    return _compose(server, "redis", user).ident


__all__ = [
    "PG_FORM",
    "REDIS_FORM",
    "Server",
    "ServiceCredential",
    "check_acl_user",
    "check_role",
    "pg_database",
    "pg_role",
    "pg_role_ident",
    "redis_server",
    "redis_user",
    "redis_user_ident",
    "same_target",
]
