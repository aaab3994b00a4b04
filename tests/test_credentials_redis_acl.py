"""The ``redis_acl_user`` credential kind against a real redis-server, trying to break it: a user
named like a prefix of another, open connections, the overlap window of a rotation (both
passwords work, then only the new one), a second rotation inside that window, a reset of the
delivered password before the old ones are removed, ``nopass``, a replica that keeps its own
ACL, an ACL file that would bring the user back at restart, the password in the slow log."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import redis.exceptions

from connectors.credentials import redis_acl
from sundown.credential_ids import redis_user_ident
from sundown.credentials import NotRotated, Pending, credential_kind
from sundown.errors import ConflictError, InputError
from tests.conformance_credentials.backend_servers import (
    create_acl_user,
    redis_auth,
    redis_server_url,
)
from tests.fixtures.process import free_port, start_server
from tests.fixtures.redis import RedisServer, redis_binary, start_redis

USER = credential_kind("redis_acl_user")


@pytest.fixture
def server(redis_env: RedisServer) -> RedisServer:
    return redis_env


def _name(tag: str = "") -> str:
    return f"u{uuid.uuid4().hex[:8]}{tag}"


def _ident(server: RedisServer, user: str) -> str:
    return redis_user_ident(redis_server_url(server), user)


def _pending(ident: str, keep: str, at: datetime) -> Pending:
    return Pending(
        unit="u", kind="redis_acl_user", target=ident, not_before=at, params={"keep": keep}
    )


def test_a_user_named_like_a_prefix_of_another_leaves_the_other_intact(
    server: RedisServer,
) -> None:
    user = _name()
    others = [f"{user}2", f"{user}:x", f"{user}-v2"]
    create_acl_user(server, user, "user-password-1234567890")
    for other in others:
        create_acl_user(server, other, f"{other}-password-1234567890")
    canary = redis.Redis(
        host="127.0.0.1",
        port=server.port,
        username=others[0],
        password=f"{others[0]}-password-1234567890",
    )
    victim = redis.Redis(
        host="127.0.0.1", port=server.port, username=user, password="user-password-1234567890"
    )
    try:
        ids = {"canary": canary.client_id(), "victim": victim.client_id()}
        (evidence,) = USER.revoke(_ident(server, user))
        assert evidence.verified, evidence
        assert evidence.details["connections_ended"] == "1"
        assert evidence.checks["ACL GETUSER"] == "nil"
        assert not redis_auth(server, user, "user-password-1234567890")
        with server.client() as admin:
            open_ids = {int(c["id"]) for c in admin.client_list()}
        assert ids["victim"] not in open_ids, "the revoked user's connection is still open"
        assert ids["canary"] in open_ids, "the connection of a user named like a prefix ended"
        for other in others:
            assert redis_auth(server, other, f"{other}-password-1234567890")
    finally:
        canary.close()
        victim.close()
        with server.client() as admin:
            admin.acl_deluser(*others)


def test_rotation_keeps_both_passwords_until_finish_then_only_the_new(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    user, old = _name(), "old-password-1234567890"
    create_acl_user(server, user, old)
    ident = _ident(server, user)
    with server.client() as admin:
        admin.config_set("slowlog-log-slower-than", 0)
        admin.slowlog_reset()
    try:
        with caplog.at_level(logging.DEBUG):
            added = redis_acl.add_password(ident)
            assert not isinstance(added, NotRotated), added
            evidence, password, keep = added
            new = password.get_secret_value()
            # the overlap window: both work
            assert redis_auth(server, user, old) and redis_auth(server, user, new)
            # a second rotation inside the window is refused, changing nothing
            again = redis_acl.add_password(ident)
            assert isinstance(again, NotRotated) and "2 passwords" in again.reason
            # finishing before the grace period ends is refused
            with pytest.raises(InputError, match="grace period"):
                USER.finish(_pending(ident, keep, datetime.now(UTC) + timedelta(hours=1)))
            assert redis_auth(server, user, old)
            (finished,) = USER.finish(_pending(ident, keep, datetime.now(UTC)))
        with server.client() as admin:
            slowlog = json.dumps([str(e) for e in admin.slowlog_get(128)])
    finally:
        with server.client() as admin:
            admin.config_set("slowlog-log-slower-than", 10000)
    assert evidence.verified and finished.verified, (evidence, finished)
    assert evidence.checks["AUTH with the new password"] == "accepted"
    assert finished.details["removed_passwords"] == "1"
    assert not redis_auth(server, user, old) and redis_auth(server, user, new)
    assert USER.live(ident) is True
    assert "SETUSER" in slowlog, "the slow log recorded nothing"
    texts = [caplog.text, slowlog, json.dumps(evidence.to_dict()), json.dumps(finished.to_dict())]
    texts += [keep, repr(added)]
    for text in texts:
        assert new not in text and old not in text
    USER.revoke(ident)


def test_finish_refuses_when_the_delivered_password_was_reset(server: RedisServer) -> None:
    user, old = _name(), "old-password-1234567890"
    create_acl_user(server, user, old)
    ident = _ident(server, user)
    added = redis_acl.add_password(ident)
    assert not isinstance(added, NotRotated)
    _, password, keep = added
    with server.client() as admin:  # someone resets the passwords meanwhile
        admin.execute_command("ACL", "SETUSER", user, "resetpass", ">other-password-123456789")
    with pytest.raises(ConflictError, match="nothing removed"):
        USER.finish(_pending(ident, keep, datetime.now(UTC)))
    assert redis_auth(server, user, "other-password-123456789")
    assert not redis_auth(server, user, password.get_secret_value())
    USER.revoke(ident)


def test_nopass_disabled_and_passwordless_users_are_not_rotated(server: RedisServer) -> None:
    cases = (
        (["on", "nopass"], "is nopass", 0),
        (["off", ">some-password-1234567890"], "is off", 1),
        (["on"], "has no password", 0),  # a rotation would let it log in
    )
    for flags, why, passwords in cases:
        user = _name()
        with server.client() as admin:
            admin.execute_command("ACL", "SETUSER", user, *flags)
        result = redis_acl.add_password(_ident(server, user))
        assert isinstance(result, NotRotated), result
        assert why in result.reason and "some-password" not in result.reason
        with server.client() as admin:  # unchanged
            assert len(admin.acl_getuser(user)["passwords"]) == passwords
            admin.acl_deluser(user)


@pytest.fixture
def with_replica(redis_env: RedisServer) -> Iterator[tuple[RedisServer, RedisServer]]:
    primary = start_redis(name="redis-acl-primary")
    replica = start_redis(replica_of=primary, name="redis-acl-replica")
    try:
        with primary.client() as c:
            for _ in range(100):
                if int(c.info("replication").get("connected_slaves") or 0):
                    break
                import time

                time.sleep(0.1)
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def test_a_replica_keeps_its_own_acl_so_the_revocation_is_not_verified(
    with_replica: tuple[RedisServer, RedisServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, replica = with_replica
    monkeypatch.setenv("REDISCLI_AUTH", primary.password)
    user = _name()
    for s in (primary, replica):  # ACL users are per server: declared on both
        create_acl_user(s, user, "replicated-password-1234567890")
    rotated = redis_acl.add_password(_ident(primary, user))  # would reach the primary only
    assert isinstance(rotated, NotRotated) and "1 replica(s)" in rotated.reason
    replica_side = redis_acl.add_password(f"redis://127.0.0.1:{replica.port}/{user}")
    assert isinstance(replica_side, NotRotated) and "is a slave" in replica_side.reason
    (evidence,) = USER.revoke(_ident(primary, user))
    assert not evidence.verified
    assert evidence.checks["replicas"].startswith("FAILED: 1 replica(s)")
    assert evidence.checks["ACL GETUSER"] == "nil"
    # and rightly so: the replica still accepts the user
    assert redis_auth(replica, user, "replicated-password-1234567890")


def test_an_acl_file_is_saved_so_the_user_does_not_come_back_at_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aclfile = tmp_path / "users.acl"
    password = "admin-password-1234567890"
    user = _name()
    aclfile.write_text(
        f"user default on >{password} ~* &* +@all\n"
        f"user {user} on >user-password-1234567890 ~{user}:* +@all\n"
        f"user {user}2 on >canary-password-1234567890 ~* +@all\n"
    )
    port = free_port()
    argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
            "--aclfile", str(aclfile), "--save", "", "--appendonly", "no"]  # fmt: skip
    proc = start_server("redis-aclfile", argv, port, timeout=30)
    try:
        monkeypatch.setenv("REDISCLI_AUTH", password)
        (evidence,) = USER.revoke(f"redis://127.0.0.1:{port}/{user}")
        assert evidence.verified and evidence.checks["ACL file"] == "saved (ACL SAVE)"
        saved = aclfile.read_text()
        assert f"user {user} " not in saved and f"user {user}2 " in saved
        assert "user-password" not in saved  # Redis stores hashes only
    finally:
        proc.stop()


def test_without_an_acl_file_the_evidence_says_what_a_restart_may_bring_back(
    server: RedisServer,
) -> None:
    user = _name()
    create_acl_user(server, user, "user-password-1234567890")
    (evidence,) = USER.revoke(_ident(server, user))
    assert "configuration file would recreate" in evidence.details["persistence"]


@pytest.mark.parametrize("bad", ["default", "a b", "tab\there", ""])
def test_names_redis_refuses_or_must_not_be_deleted_are_refused_before_any_call(bad: str) -> None:
    with pytest.raises(InputError):
        USER.revoke(f"redis://127.0.0.1:9/{bad.replace(' ', '%20').replace(chr(9), '%09')}")


def test_a_least_privileged_admin_revokes_and_rotates(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin Sundown needs: the ACL, CLIENT, INFO and PING commands, nothing else (no
    CONFIG, no keys)."""
    admin, admin_pw = _name("adm"), "admin-password-1234567890"
    user = _name()
    with server.client() as root:
        root.execute_command(
            "ACL", "SETUSER", admin, "on", f">{admin_pw}", "+acl", "+client", "+info", "+ping"
        )
    create_acl_user(server, user, "user-password-1234567890")
    monkeypatch.setenv("REDISCLI_AUTH", admin_pw)
    ident = f"redis://{admin}@127.0.0.1:{server.port}/{user}"
    try:
        added = redis_acl.add_password(ident)
        assert not isinstance(added, NotRotated) and added[0].verified, added
        (evidence,) = USER.revoke(ident)
        assert evidence.verified, evidence
        assert not redis_auth(server, user, added[1].get_secret_value())
    finally:
        with server.client() as root:
            root.acl_deluser(admin)


@pytest.mark.parametrize("odd", ['we"ird', "it's", "ü-ser", "a/b%c", "k:1"])
def test_odd_names_round_trip_and_only_that_user_goes(server: RedisServer, odd: str) -> None:
    user, canary = f"{odd}{uuid.uuid4().hex[:6]}", _name()
    create_acl_user(server, user, "odd-password-1234567890")
    create_acl_user(server, canary, "canary-password-1234567890")
    ident = _ident(server, user)
    assert USER.parse(ident)[-1] == user and " " not in ident
    (evidence,) = USER.revoke(ident)
    assert evidence.verified and evidence.target == ident
    assert not redis_auth(server, user, "odd-password-1234567890")
    assert redis_auth(server, canary, "canary-password-1234567890")
    USER.revoke(_ident(server, canary))
