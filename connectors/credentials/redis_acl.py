"""Redis ACL users (redis-py): revoke (``ACL DELUSER``), prove dead, rotate with an overlap
window (Redis keeps several passwords per user).

The ``redis_acl_user`` credential kind (:data:`ACL_USER`), identified as
``redis://[ADMIN@]HOST:PORT/USER`` (:mod:`sundown.credential_ids`). Sundown connects as
``ADMIN`` (or ``default``) with the password from ``REDISCLI_AUTH`` (TLS with
``SUNDOWN_REDIS_TLS=1``), as the Redis record store does; a client is made per operation.

Revocation: ``ACL SETUSER USER off`` (no new login), ``CLIENT KILL USER`` (its connections),
``ACL DELUSER`` and, when the server keeps its users in an ACL file, ``ACL SAVE`` (or a restart
would bring the user back). Proof: ``ACL GETUSER`` answers nil, no connection of the user is
left in ``CLIENT LIST``. ACL users are per server, never replicated: a server with replicas (or
one that is a replica) fails the check "replicas", since the user may live on there. Sundown
never holds the user's password, so it cannot try a login with it; authentication looks the
user up first (the conformance suite shows a real ``AUTH`` failing).

Rotation is a real dual-credential rotation: a new random password is added (``ACL SETUSER USER
#<sha256>``: only its SHA-256, which is what Redis stores, travels to the server, so neither
``MONITOR``, the slow log nor an error message can carry it), both old and new work during the
grace period, then :meth:`AclUser.finish` removes every other password (``!<sha256>`` for each
hash read from the server at that moment, never stored). The pending removal records only a
fingerprint of the new password's hash (SHA-256 of it, of a 256-bit random password) to know which
one to keep; nothing that identifies the old password is written anywhere. A user with more than
one password (an overlap window still open, or several consumers) is not rotated, nor one with
none, ``nopass`` or ``off``, nor one on a server with replicas (or on a replica: the new password
would reach that one server only). ``{username, password}`` is delivered.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import redis
import redis.exceptions as redis_errors
from pydantic import SecretStr

from connectors.credentials._server import ServerKind
from connectors.redis_kv import _map_error
from sundown.credential_ids import REDIS_FORM, ServiceCredential, redis_user
from sundown.credentials import Checks, NotRotated, Pending, Rotated, now
from sundown.errors import ConflictError, InputError, NotFoundError

if TYPE_CHECKING:
    from sundown.credentials import CredentialEvidence, RotationJob

KIND = "redis-acl-user"
_LOG = logging.getLogger(__name__)


def _client(cred: ServiceCredential, *, login: tuple[str, str] | None = None) -> redis.Redis:
    """A client as the admin, or as ``login`` (user, password)."""
    server = cred.server
    user, password = login or (server.admin, os.environ.get("REDISCLI_AUTH") or None)
    return redis.Redis(
        host=server.host,
        port=server.port,
        username=user,
        password=password,
        ssl=os.environ.get("SUNDOWN_REDIS_TLS", "") in ("1", "true", "yes"),
        socket_timeout=30,
        socket_connect_timeout=10,
    )


@contextlib.contextmanager
def _session(cred: ServiceCredential, what: str) -> Iterator[redis.Redis]:
    where = f"{what} (ACL user {cred.name!r} on {cred.server.host}:{cred.server.port})"
    try:
        with _client(cred) as client:
            yield client
    except redis_errors.RedisError as exc:
        raise _map_error(exc, where) from None


def _user(client: redis.Redis, name: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = client.acl_getuser(name)
    return found


def _hashes(user: dict[str, Any]) -> list[str]:
    return [str(h) for h in user.get("passwords") or []]


def _fingerprint(sha256_hex: str) -> str:
    """Names a password hash in a pending removal without being one."""
    return hashlib.sha256(b"sundown-redis-acl\0" + sha256_hex.encode()).hexdigest()[:32]


def _connections(client: redis.Redis, name: str) -> int:
    return sum(1 for c in client.client_list() if c.get("user") == name)


def _persistence(client: redis.Redis, checks: Checks) -> str:
    """``ACL SAVE`` when the server keeps its users in an ACL file (or the change is lost at
    restart; needs only the ACL command). A refusal is a failed check, not an error: the change
    on the running server is done by then."""
    try:
        client.execute_command("ACL", "SAVE")
    except redis_errors.ResponseError as exc:
        if "not configured to use an ACL file" in str(exc):
            return (
                "no ACL file: a 'user' line in the server's configuration file would recreate "
                "the user at restart (not reachable by a client)"
            )
        checks.failed("ACL file", f"ACL SAVE refused ({str(exc)[:120]})")
        return "ACL file NOT saved: a restart would load the users as they were"
    checks.passed("ACL file", "saved (ACL SAVE)")
    return "ACL file saved"


def _replication(client: redis.Redis) -> str | None:
    """None when the server has no replica and is none; otherwise what keeps its own ACL."""
    info = client.info("replication")
    role, replicas = str(info.get("role")), int(info.get("connected_slaves") or 0)
    if role != "master":
        return f"this server is a {role}: its primary keeps its own ACL users"
    if replicas:
        return f"{replicas} replica(s): ACL users are per server, not replicated"
    return None


def _replicas(client: redis.Redis, checks: Checks) -> None:
    problem = _replication(client)
    if problem is None:
        checks.passed("replicas", "none")
    else:
        checks.failed("replicas", f"{problem}; the user may still exist there")


def _gone_checks(client: redis.Redis, cred: ServiceCredential) -> Checks:
    checks = Checks()
    absent = _user(client, cred.name) is None
    checks.expect("ACL GETUSER", absent, "nil" if absent else "the user EXISTS")
    n = _connections(client, cred.name)
    checks.expect("connections of the user", n == 0, str(n))
    _replicas(client, checks)
    return checks


def revoke_user(ident: str, *, missing_ok: bool = False) -> CredentialEvidence:
    """Disable the user, end its connections, delete it (and save the ACL file), and prove it
    gone. NotFoundError when it does not exist, unless ``missing_ok``."""
    cred = redis_user(ident)
    with _session(cred, "revoke") as client:
        if _user(client, cred.name) is None:
            if not missing_ok:
                raise NotFoundError(f"no ACL user {cred.name!r} on {cred.server.host}")
            checks = _gone_checks(client, cred)  # (a crash may have come before ACL SAVE)
            details = {"persistence": _persistence(client, checks)}
            return checks.evidence(KIND, cred.ident, "already absent", details)
        _LOG.debug("ACL user %r: off, CLIENT KILL USER, ACL DELUSER", cred.name)
        client.execute_command("ACL", "SETUSER", cred.name, "off")
        killed = int(client.client_kill_filter(user=cred.name))
        deleted = int(client.acl_deluser(cred.name))
        checks = _gone_checks(client, cred)
        persistence = _persistence(client, checks)
    details = {
        "connections_ended": str(killed),
        "deleted": f"ACL DELUSER ({deleted})",
        "persistence": persistence,
    }
    return checks.evidence(KIND, cred.ident, "revoked", details)


def user_is_live(ident: str) -> bool:
    """Whether the user exists, is on, and has a password or ``nopass``; no change."""
    cred = redis_user(ident)
    with _session(cred, "look up") as client:
        user = _user(client, cred.name)
    if user is None:
        return False
    flags = {str(f) for f in user.get("flags") or []}
    return "on" in flags and (bool(_hashes(user)) or "nopass" in flags)


def _auth(cred: ServiceCredential, password: str) -> str:
    """``accepted`` or ``refused``: the server's answer to a login (``HELLO``/``AUTH``) as the
    user with ``password``."""
    try:
        with _client(cred, login=(cred.name, password)) as client:
            client.ping()
    except redis_errors.AuthenticationError:
        return "refused"
    except redis_errors.NoPermissionError:  # logged in, but may not PING
        return "accepted"
    except redis_errors.RedisError as exc:
        return f"error: {type(exc).__name__}"
    return "accepted"


def add_password(ident: str) -> tuple[CredentialEvidence, SecretStr, str] | NotRotated:
    """Add a fresh random password to the user, keeping its current one; returns the evidence,
    the password and the fingerprint of its hash (for :func:`remove_other_passwords`)."""
    cred = redis_user(ident)
    password = secrets.token_urlsafe(32)
    digest = hashlib.sha256(password.encode()).hexdigest()
    with _session(cred, "rotate") as client:
        user = _user(client, cred.name)
        if user is None:
            raise NotFoundError(f"no ACL user {cred.name!r} on {cred.server.host}")
        flags, before = {str(f) for f in user.get("flags") or []}, _hashes(user)
        if "nopass" in flags or "on" not in flags:
            return NotRotated(
                f"ACL user {cred.name!r} is {'nopass' if 'nopass' in flags else 'off'}: "
                "a password rotation would not change who can log in"
            )
        if not before:
            return NotRotated(
                f"ACL user {cred.name!r} has no password: a rotation would let it log in"
            )
        if (problem := _replication(client)) is not None:
            return NotRotated(f"{problem}: a new password would reach this server only")
        if len(before) > 1:
            return NotRotated(
                f"ACL user {cred.name!r} has {len(before)} passwords (an earlier rotation's "
                "overlap window is still open, or several consumers): rotated once it has one"
            )
        _LOG.debug("ACL user %r: ACL SETUSER #<sha256> (a password added)", cred.name)
        client.execute_command("ACL", "SETUSER", cred.name, f"#{digest}")
        after = _hashes(_user(client, cred.name) or {})
        checks = Checks()
        checks.expect(
            "passwords", digest in after and len(after) == len(before) + 1, str(len(after))
        )
        persistence = _persistence(client, checks)
    new = _auth(cred, password)
    checks.expect("AUTH with the new password", new == "accepted", new)
    details = {
        "method": "ACL SETUSER #<sha256 of the new password>",
        "overlap": f"{len(before)} old password(s) kept until the grace period ends",
        "persistence": persistence,
    }
    evidence = checks.evidence(KIND, cred.ident, "rotated", details)
    return evidence, SecretStr(password), _fingerprint(digest)


def remove_other_passwords(ident: str, keep: str) -> CredentialEvidence:
    """Remove every password of the user but the one whose hash has fingerprint ``keep``.
    ConflictError, removing nothing, when that one is no longer there."""
    cred = redis_user(ident)
    with _session(cred, "finish rotation") as client:
        user = _user(client, cred.name)
        if user is None:
            return _gone_checks(client, cred).evidence(KIND, cred.ident, "already absent")
        hashes = _hashes(user)
        kept = [h for h in hashes if _fingerprint(h) == keep]
        if not kept:
            raise ConflictError(
                f"ACL user {cred.name!r}: the password the rotation delivered is no longer "
                "among its passwords (reset meanwhile?): nothing removed"
            )
        old = [h for h in hashes if h not in kept]
        _LOG.debug("ACL user %r: removing %d old password(s)", cred.name, len(old))
        if old:
            client.execute_command("ACL", "SETUSER", cred.name, *(f"!{h}" for h in old))
        left = _hashes(_user(client, cred.name) or {})
        checks = Checks()
        checks.expect("passwords", left == kept, f"{len(left)} (the delivered one)")
        persistence = _persistence(client, checks)
    details = {"removed_passwords": str(len(old)), "persistence": persistence}
    return checks.evidence(KIND, cred.ident, "old passwords removed", details)


class AclUser(ServerKind):
    """``redis_acl_user``: revoked by ACL DELUSER; rotated with an overlap window."""

    kind = "redis_acl_user"
    form = REDIS_FORM
    spec_field = "redis_acl_users"
    split = staticmethod(redis_user)
    revoke_one = staticmethod(revoke_user)
    is_live = staticmethod(user_is_live)

    def rotate(self, job: RotationJob) -> Rotated | NotRotated:
        cred = redis_user(job.unit.declared)
        added = add_password(cred.ident)
        if isinstance(added, NotRotated):
            return added
        evidence, password, keep = added
        return Rotated(
            new=[cred.ident],
            evidence=[evidence],
            replaced=[self.pending(job.unit, cred.ident, job.delete_after, keep=keep)],
            deliver={"username": cred.name, "password": password},
            undo=lambda: _remove_new(cred.ident, keep),
        )

    def finish(self, pending: Pending) -> list[CredentialEvidence]:
        if now() < pending.not_before:
            raise InputError(f"the grace period runs until {pending.not_before.isoformat()}")
        return [remove_other_passwords(pending.target, str(pending.params.get("keep", "")))]


def _remove_new(ident: str, keep: str) -> None:
    """Undo of a rotation whose delivery failed: remove the password it added."""
    cred = redis_user(ident)
    with _session(cred, "undo rotation") as client:
        user = _user(client, cred.name) or {}
        for h in _hashes(user):
            if _fingerprint(h) == keep:
                client.execute_command("ACL", "SETUSER", cred.name, f"!{h}")


ACL_USER = AclUser()
