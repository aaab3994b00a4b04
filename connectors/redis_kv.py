"""Redis keys under a prefix as a record store (redis-py): ``redis://[USER@]HOST:PORT/DB/PREFIX``.

The prefix ends at a ``:`` boundary: ``redis://h:6379/0/support-bot`` covers the keys
``support-bot:*``, never ``support-bot-v2:*`` nor the key ``support-bot`` itself. Glob
metacharacters in the prefix (``* ? [ ] \\``) are escaped for ``SCAN MATCH``, and every key a
scan returns is checked to start with ``PREFIX:`` before it is counted. A ``/`` inside the prefix
is written ``%2F``; a prefix ending with ``:`` is refused (write it without).

Credentials: the user from the URL (``redis://USER@HOST...``, Redis 6 ACL users) or the
``default`` user; the password from ``REDISCLI_AUTH`` (redis-cli's own variable). A password in
the URL is refused. ``SUNDOWN_REDIS_TLS=1`` connects with TLS (system trust store).

Purge sends ``UNLINK`` per key inside ``MULTI``/``EXEC`` batches, so every key has its own result
(1 deleted, 0 already gone). Verify re-scans the prefix and checks every listed key with
``EXISTS``. Findings read ``INFO persistence`` and ``INFO replication``; :meth:`compact` runs
``BGREWRITEAOF`` when the append-only file is on and waits until the rewrite has finished, so
the deleted keys leave the AOF.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import redis
import redis.exceptions as redis_errors

from sundown.errors import (
    BackendError,
    InputError,
    PermissionDeniedError,
    SundownError,
    TransientError,
)
from sundown.records import (
    REDIS_SHAPE,
    BatchResult,
    Finding,
    RecordCapability,
    RecordEntry,
    RecordPurgeResult,
    RecordVerification,
    ScopedRecords,
    parse_selector,
)

CAPABILITIES = frozenset(
    {RecordCapability.PREFIX, RecordCapability.BATCH_DELETE, RecordCapability.COMPACT}
)
_GLOB = frozenset(b"*?[]\\")
_SCAN_COUNT = 1000
REWRITE_TIMEOUT = 600.0  # seconds compact() waits for BGREWRITEAOF


def match_pattern(prefix: bytes) -> bytes:
    """``SCAN MATCH`` pattern for the keys under ``prefix:``, glob metacharacters escaped."""
    escaped = b"".join(b"\\" + bytes([c]) if c in _GLOB else bytes([c]) for c in prefix)
    return escaped + b":*"


def _key(ident: str) -> bytes:
    return ident.encode("utf-8", "surrogateescape")


def _ident(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def _map_error(exc: Exception, what: str) -> SundownError:
    if isinstance(exc, SundownError):
        return exc
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, redis_errors.AuthenticationError | redis_errors.NoPermissionError):
        return PermissionDeniedError(f"{what}: refused ({text})")
    if isinstance(exc, redis_errors.ResponseError) and text.startswith(("NOAUTH", "WRONGPASS")):
        return PermissionDeniedError(f"{what}: refused ({text})")
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return TransientError(f"{what}: {text}")
    return BackendError(f"{what}: {text}")


class RedisPrefix(ScopedRecords):
    """The keys under one prefix of one Redis database."""

    capabilities = CAPABILITIES
    noun = "key"

    def __init__(self, url: str, selector: Mapping[str, object] | None = None) -> None:
        super().__init__(
            REDIS_SHAPE.parse(url),
            parse_selector(selector, whole_word=None, where=False, where_of=url),
        )
        db, prefix = self._loc.segments
        if not db.isdigit() or len(db) > 5:
            raise InputError(f"{url!r}: database {db!r} must be a number (0, 1, ...)")
        if prefix.endswith(":"):
            raise InputError(
                f"{url!r}: write the prefix without the trailing ':' (it covers PREFIX:*)"
            )
        self.db = int(db)
        self.prefix = prefix.encode("utf-8")
        self._scope = self.prefix + b":"

    @property
    def where(self) -> str:
        return f"keys {self.prefix.decode('utf-8', 'replace')}:* in Redis database {self.db}"

    def _client(self) -> redis.Redis:
        return redis.Redis(
            host=self._loc.host,
            port=self._loc.port,
            db=self.db,
            username=self._loc.user,
            password=os.environ.get("REDISCLI_AUTH") or None,
            ssl=os.environ.get("SUNDOWN_REDIS_TLS", "") in ("1", "true", "yes"),
            socket_timeout=30,
            socket_connect_timeout=10,
            decode_responses=False,
        )

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis_errors.RedisError as exc:
            raise _map_error(exc, f"{what} on {self._loc.host}:{self._loc.port}") from None

    def in_scope(self, key: bytes) -> bool:
        return key.startswith(self._scope)

    def _scan(self, client: redis.Redis) -> Iterator[list[bytes]]:
        """Pages of distinct keys under the prefix (SCAN may return a key twice)."""
        seen: set[bytes] = set()
        cursor = 0
        pattern = match_pattern(self.prefix)
        while True:
            cursor, keys = self._call(
                "SCAN", client.scan, cursor=cursor, match=pattern, count=_SCAN_COUNT
            )
            page = [k for k in keys if self.in_scope(k) and k not in seen]
            seen.update(page)
            if page:
                yield page
            if int(cursor) == 0:
                return

    def inventory(self) -> Iterator[RecordEntry]:
        with self._client() as client:
            for page in self._scan(client):
                pipe = client.pipeline(transaction=False)
                for key in page:
                    pipe.memory_usage(key)
                try:
                    sizes = pipe.execute(raise_on_error=False)
                except redis_errors.RedisError as exc:
                    raise _map_error(exc, f"MEMORY USAGE in {self.where}") from None
                for key, size in zip(page, sizes, strict=True):
                    estimate = int(size) if isinstance(size, int) else len(key)
                    yield RecordEntry(_ident(key), estimate)

    def purge(self, entries: Sequence[RecordEntry], *, batch_size: int = 500) -> RecordPurgeResult:
        listed = self.checked_input(entries, batch_size)
        keys = [_key(e.id) for e in listed]
        self.refuse_outside(
            [_ident(k) for k in keys if not self.in_scope(k)],
            f"the prefix {self.prefix.decode('utf-8', 'replace')}:",
        )
        result = RecordPurgeResult()
        with self._client() as client:
            self.refuse_unlisted(
                (_ident(k) for page in self._scan(client) for k in page), (e.id for e in listed)
            )
            for start in range(0, len(keys), batch_size):
                batch = keys[start : start + batch_size]
                pipe = client.pipeline(transaction=True)
                for key in batch:
                    pipe.unlink(key)
                answers = self._call("UNLINK", pipe.execute)
                deleted = [_ident(k) for k, n in zip(batch, answers, strict=True) if n == 1]
                gone = [_ident(k) for k, n in zip(batch, answers, strict=True) if n != 1]
                result.deleted.extend(deleted)
                result.absent.extend(gone)
                result.batches.append(
                    BatchResult(
                        _ident(batch[0]), _ident(batch[-1]), len(batch), len(deleted), len(gone)
                    )
                )
        return result

    def verify(self, entries: Sequence[RecordEntry]) -> RecordVerification:
        with self._client() as client:
            remaining = [k for page in self._scan(client) for k in page]
            keys = [_key(e.id) for e in entries]
            present: list[str] = []
            for start in range(0, len(keys), 1000):
                batch = keys[start : start + 1000]
                pipe = client.pipeline(transaction=False)
                for key in batch:
                    pipe.exists(key)
                answers = self._call("EXISTS", pipe.execute)
                present.extend(_ident(k) for k, n in zip(batch, answers, strict=True) if n)
        return RecordVerification(
            len(remaining),
            tuple(sorted(present)),
            False,
            tuple(sorted(_ident(k) for k in remaining)[:10]),
        )

    # -- what keeps deleted keys -----------------------------------------------------------------

    def _info(self, client: redis.Redis, section: str) -> dict[str, Any] | None:
        try:
            return dict(client.info(section))
        except redis_errors.RedisError:
            return None

    def findings(self) -> list[Finding]:
        with self._client() as client:
            persistence = self._info(client, "persistence")
            replication = self._info(client, "replication")
            save = self._config(client, "save")
        out: list[Finding] = []
        if persistence is None:
            out.append(Finding("persistence", None, None, "unknown whether Redis persists to "
                               "disk", note="INFO persistence refused"))  # fmt: skip
        else:
            out.append(_aof_finding(persistence))
            out.append(_rdb_finding(persistence, save))
        out.extend(_replica_findings(replication))
        return out

    def _config(self, client: redis.Redis, name: str) -> str | None:
        try:
            answer = client.config_get(name)
        except redis_errors.RedisError:
            return None  # CONFIG is often disabled on managed Redis
        for key, value in answer.items():
            if _text(key) == name:
                return _text(value)
        return None

    def compact(self) -> list[Finding]:
        """BGREWRITEAOF when the AOF is on, waiting (up to :data:`REWRITE_TIMEOUT`) until the
        rewrite has finished; the finding says whether the AOF still holds the deleted keys."""
        with self._client() as client:
            info = self._info(client, "persistence")
            if info is None:
                return [Finding("appendonly", None, None, "the AOF could not be rewritten",
                                note="INFO persistence refused")]  # fmt: skip
            if not int(info.get("aof_enabled", 0)):
                return [_aof_finding(info)]
            deadline = time.monotonic() + REWRITE_TIMEOUT
            while True:
                # read the count before asking: the rewrite we wait for must start after the
                # purge, so one already running (refused: "already in progress") is waited out
                before = int((self._info(client, "persistence") or {}).get("aof_rewrites", 0))
                try:
                    client.bgrewriteaof()
                    break
                except redis_errors.ResponseError as exc:
                    if "already in progress" not in str(exc) or time.monotonic() > deadline:
                        raise _map_error(exc, "BGREWRITEAOF") from None
                    time.sleep(0.2)
                except redis_errors.RedisError as exc:
                    raise _map_error(exc, "BGREWRITEAOF") from None
            while time.monotonic() < deadline:
                now = self._info(client, "persistence") or {}
                done = (
                    int(now.get("aof_rewrites", 0)) > before
                    and not int(now.get("aof_rewrite_in_progress", 1))
                    and not int(now.get("aof_rewrite_scheduled", 1))
                )
                if done:
                    ok = str(now.get("aof_last_bgrewrite_status", "")) == "ok"
                    at = datetime.now(UTC).isoformat(timespec="seconds")
                    return [
                        Finding(
                            "appendonly",
                            f"rewritten at {at}" if ok else "rewrite failed",
                            not ok,
                            "BGREWRITEAOF rewrote the append-only file from the live data set: "
                            "it no longer holds the deleted keys (the old AOF files were "
                            "deleted, not overwritten)"
                            if ok
                            else "BGREWRITEAOF failed: the AOF still holds the deleted keys",
                        )
                    ]
                time.sleep(0.1)
        return [Finding("appendonly", "rewrite not finished", True,
                        "the AOF rewrite did not finish in time: the AOF still holds the deleted "
                        "keys")]  # fmt: skip

    def close(self) -> None:
        """Nothing to release: a client is made per operation."""


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _aof_finding(info: Mapping[str, Any]) -> Finding:
    if int(info.get("aof_enabled", 0)):
        return Finding(
            "appendonly",
            "yes",
            True,
            "the append-only file logs every write: it holds the deleted keys until "
            "BGREWRITEAOF rewrites it",
        )
    return Finding("appendonly", "no", False, "no append-only file")


def _rdb_finding(info: Mapping[str, Any], save: str | None) -> Finding:
    changes = int(info.get("rdb_changes_since_last_save", 0))
    saves = int(info.get("rdb_saves", 0))
    last = datetime.fromtimestamp(int(info.get("rdb_last_save_time", 0)), UTC)
    schedule = "unknown (CONFIG refused)" if save is None else repr(save)
    value = f"save {schedule}; {saves} snapshot(s) since start, last {last.isoformat()}; "
    value += f"{changes} write(s) since"
    if saves == 0 and save == "":
        return Finding(
            "rdb",
            value,
            None,
            "no snapshot was written since the server started and none is scheduled; an RDB "
            "file written before the start, and any copy of one, may still hold the keys",
        )
    return Finding(
        "rdb",
        value,
        True,
        "an RDB snapshot written while the keys existed (the dump file on the server, and every "
        "copy of it taken as a backup) holds them; the next snapshot on the server replaces the "
        "file there, copies elsewhere are outside Sundown's reach",
    )


def _replica_findings(info: Mapping[str, Any] | None) -> list[Finding]:
    if info is None:
        return [Finding("replication", None, None, "unknown whether replicas exist",
                        note="INFO replication refused")]  # fmt: skip
    out: list[Finding] = []
    for name, value in sorted(info.items()):
        if not (name.startswith("slave") and name[5:].isdigit() and isinstance(value, dict)):
            continue
        where = f"{value.get('ip', '?')}:{value.get('port', '?')} ({value.get('state', '?')})"
        out.append(
            Finding(
                "replica",
                where,
                True,
                "a replica applies the deletes, but its own AOF and RDB files keep the keys until "
                "rewritten there, and a disconnected replica keeps them live",
            )
        )
    if not out:
        role = str(info.get("role", "?"))
        out.append(Finding("replication", f"role {role}, 0 replicas", False,
                           "no replica was connected when this was read"))  # fmt: skip
    return out


def open_record_store(url: str, selector: Mapping[str, object] | None = None) -> RedisPrefix:
    return RedisPrefix(url, selector)
