"""Redis specifics: the ':' boundary, glob metacharacters in prefixes, credentials, and what
keeps deleted keys (AOF rewritten and checked on the server's own files; RDB; replicas)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from connectors.redis_kv import RedisPrefix, match_pattern
from sundown import registry
from sundown.errors import InputError, PermissionDeniedError
from tests.conformance_records.backend_redis import RedisBackend
from tests.fixtures.redis import RedisServer, start_redis


@pytest.fixture
def backend(redis_env: RedisServer) -> RedisBackend:
    return RedisBackend(redis_env)


def test_match_pattern_escapes_every_glob_metacharacter() -> None:
    assert match_pattern(b"support-bot") == b"support-bot:*"
    assert match_pattern(b"a*b?c[d]e\\f") == b"a\\*b\\?c\\[d\\]e\\\\f:*"


@pytest.mark.parametrize("prefix", ["gl*b", "q?x", "br[ab]c", "back\\slash", "[^x]*"])
def test_glob_metacharacters_in_a_prefix_match_only_themselves(
    backend: RedisBackend, prefix: str
) -> None:
    """Keys an unescaped pattern would match (``glZZb:1`` for ``gl*b``) stay."""
    client = backend.server.client()
    lookalikes = {
        "gl*b": ["glZZb:1", "glb:2"],
        "q?x": ["qAx:1"],
        "br[ab]c": ["brac:1", "brbc:1"],
        "back\\slash": ["backslash:1"],
        "[^x]*": ["a:1", "[^x]:1"],
    }[prefix]
    unique_tail = str(time.monotonic_ns())
    prefix = prefix + unique_tail
    lookalikes = [k.replace(":", unique_tail + ":", 1) for k in lookalikes]
    for key in lookalikes:
        client.set(key, "look-alike")
    seeded = backend.seed(6, prefix=prefix)
    store = registry.open_record_store(seeded.url, None)
    entries = list(store.inventory())
    assert sorted(e.id for e in entries) == sorted(seeded.ids)
    store.purge(entries, batch_size=4)
    assert all(client.get(key) == b"look-alike" for key in lookalikes)
    assert all(client.exists(key) for key in seeded.foreign_ids)
    assert store.verify(entries).clean


def test_the_prefix_ends_at_a_colon_boundary(backend: RedisBackend) -> None:
    seeded = backend.seed(3)
    prefix = seeded.names["prefix"]
    assert {prefix, f"{prefix}-v2:0", f"{prefix}x:1"} <= set(seeded.foreign_ids)
    store = registry.open_record_store(seeded.url, None)
    assert all(e.id.startswith(prefix + ":") for e in store.inventory())
    with pytest.raises(InputError, match="trailing ':'"):
        registry.open_record_store(seeded.url + ":", None)
    with pytest.raises(InputError):
        registry.open_record_store(f"redis://127.0.0.1:{backend.server.port}/0/", None)
    with pytest.raises(InputError, match="must be a number"):
        registry.open_record_store(f"redis://127.0.0.1:{backend.server.port}/x/p", None)
    with pytest.raises(InputError, match="unknown key"):
        registry.open_record_store(seeded.url, {"where": {"a": "b"}})


def test_a_password_in_the_url_is_refused_and_a_wrong_one_is_not_echoed(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = backend.server.port
    with pytest.raises(InputError) as caught:
        registry.open_record_store(f"redis://default:opensesame@127.0.0.1:{port}/0/p", None)
    assert "opensesame" not in str(caught.value) and "REDISCLI_AUTH" in str(caught.value)
    monkeypatch.setenv("REDISCLI_AUTH", "wrong-password-xyzzy")
    with pytest.raises(PermissionDeniedError) as denied:
        list(registry.open_record_store(f"redis://127.0.0.1:{port}/0/p", None).inventory())
    assert "xyzzy" not in str(denied.value)


def _aof_holds(server: RedisServer, text: str) -> bool:
    folder = server.folder / "appendonlydir"
    return any(text.encode() in p.read_bytes() for p in folder.iterdir() if p.is_file())


def test_bgrewriteaof_takes_the_deleted_keys_out_of_the_aof(backend: RedisBackend) -> None:
    seeded = backend.seed(12)
    store = RedisPrefix(seeded.url)
    found = {f.setting: f for f in store.findings()}
    assert found["appendonly"].value == "yes" and found["appendonly"].keeps_deleted_data
    time.sleep(1.1)  # appendfsync everysec
    assert _aof_holds(backend.server, seeded.canary_text)
    store.purge(list(store.inventory()))
    time.sleep(1.1)
    assert _aof_holds(backend.server, seeded.canary_text)  # deleted, still in the AOF
    [done] = store.compact()
    assert done.setting == "appendonly" and done.keeps_deleted_data is False
    assert done.value is not None and done.value.startswith("rewritten at")
    assert not _aof_holds(backend.server, seeded.canary_text)
    assert all(backend.server.client().exists(k) for k in seeded.foreign_ids)


def test_an_rdb_snapshot_taken_before_the_purge_still_holds_the_keys(
    backend: RedisBackend,
) -> None:
    seeded = backend.seed(4)
    client = backend.server.client()
    saves = int(client.info("persistence")["rdb_saves"])
    client.bgsave()
    deadline = time.monotonic() + 30
    while True:  # rdb_saves counts a save when it starts: wait until none is in progress
        info = client.info("persistence")
        if int(info["rdb_saves"]) > saves and not int(info["rdb_bgsave_in_progress"]):
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert info["rdb_last_bgsave_status"] == "ok"
    store = RedisPrefix(seeded.url)
    store.purge(list(store.inventory()))
    dump: Path = backend.server.folder / "dump.rdb"
    assert seeded.canary_text.encode() in dump.read_bytes()
    found = {f.setting: f for f in store.findings()}
    assert found["rdb"].keeps_deleted_data is True
    assert "snapshot" in found["rdb"].statement


def test_a_connected_replica_is_reported(redis_env: RedisServer) -> None:
    replica = start_redis(replica_of=redis_env, name="redis-replica")
    try:
        deadline = time.monotonic() + 30
        while int(redis_env.client().info("replication")["connected_slaves"]) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        found = RedisPrefix(f"redis://127.0.0.1:{redis_env.port}/0/anything").findings()
        replicas = [f for f in found if f.setting == "replica"]
        assert len(replicas) == 1 and str(replica.port) in (replicas[0].value or "")
        assert replicas[0].keeps_deleted_data
    finally:
        replica.stop()


def test_a_key_that_is_not_utf8_is_listed_deleted_and_verified_byte_exact(
    backend: RedisBackend,
) -> None:
    seeded = backend.seed(2)
    prefix = seeded.names["prefix"].encode()
    odd = prefix + b":\xff\xfe raw"
    lookalike = prefix + b"-v2:\xff\xfe raw"
    client = backend.server.client()
    client.set(odd, b"binary key")
    client.set(lookalike, b"binary canary")
    store = registry.open_record_store(seeded.url, None)
    entries = list(store.inventory())
    assert len(entries) == 3
    [weird] = [e for e in entries if e.id.encode("utf-8", "surrogateescape") == odd]
    result = store.purge(entries)
    assert weird.id in result.deleted and store.verify(entries).clean
    assert not client.exists(odd) and client.get(lookalike) == b"binary canary"


def test_an_acl_user_from_the_url_with_config_and_info_refused_gets_findings_not_errors(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A least-privileged ACL user (as on managed Redis, where CONFIG is off): the user comes
    from the URL, the password from REDISCLI_AUTH; purge works, and the findings say what could
    not be read instead of raising. MEMORY USAGE refused too: each size falls back to the key's
    length (the inventory's byte estimate, never an error)."""
    seeded = backend.seed(3)
    prefix = seeded.names["prefix"]
    user, password = f"u{prefix[-8:]}", "limited-pw-" + prefix[-8:]
    admin = backend.server.client()
    admin.acl_setuser(
        user, enabled=True, passwords=[f"+{password}"], keys=[f"{prefix}:*"],
        commands=["+@all", "-config", "-info", "-memory"],
    )  # fmt: skip
    try:
        monkeypatch.setenv("REDISCLI_AUTH", password)
        url = seeded.url.replace("redis://", f"redis://{user}@")
        store = registry.open_record_store(url, None)
        entries = list(store.inventory())
        assert len(entries) == 3
        assert all(e.size == len(e.id.encode()) for e in entries), entries
        port = backend.server.port
        own = redis.Redis(host="127.0.0.1", port=port, username=user, password=password)
        with own, pytest.raises(redis.exceptions.NoPermissionError):  # refused indeed
            own.memory_usage(entries[0].id)
        assert len(store.purge(entries).deleted) == 3
        found = store.findings()
        assert [f.value for f in found] == [None, None]
        assert all(f.note and "refused" in f.note for f in found)
        assert all(admin.exists(k) for k in seeded.foreign_ids)
    finally:
        admin.acl_deluser(user)
