"""redis:// in the record conformance suite: a fresh prefix per location on the session's
redis-server; canaries are ``PREFIX-v2:*`` keys, the key ``PREFIX`` itself and ``PREFIXx:*``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.backend_modules import BackendSpec
from tests.conformance_records import RecordBackend, Seeded, ServerBackend, unique
from tests.fixtures.redis import RedisServer


class RedisBackend(ServerBackend[RedisServer]):
    name = "redis"

    def url(self, prefix: str, db: int = 0) -> str:
        from urllib.parse import quote

        return f"redis://127.0.0.1:{self.server.port}/{db}/{quote(prefix, safe='')}"

    def seed(self, n: int, *, whole: bool = False, prefix: str | None = None) -> Seeded:
        prefix = prefix or unique("support-bot-")
        canary = unique("CANARY-")
        client = self.server.client()
        ids: list[str] = []
        pipe = client.pipeline()
        for i in range(n):
            key = f"{prefix}:{i}"
            if i % 3 == 0:
                pipe.hset(key, mapping={"answer": f"{canary} {i}"})
            elif i % 3 == 1:
                pipe.rpush(key, f"{canary} {i}")
            else:
                pipe.set(key, f"{canary} {i}")
            ids.append(key)
        foreign = [f"{prefix}-v2:{i}" for i in range(3)] + [prefix, f"{prefix}x:1"]
        for key in foreign:
            pipe.set(key, f"foreign {key}")
        pipe.execute()
        return Seeded(self.url(prefix), None, ids, foreign, canary, {"prefix": prefix})

    def add_in_scope(self, seeded: Seeded) -> str:
        key = seeded.names["prefix"] + ":late"
        self.server.client().set(key, "written late")
        return key

    def outside(self, seeded: Seeded) -> object:
        client = self.server.client()
        return {key: client.dump(key) for key in seeded.foreign_ids}


def _factory(fixtures: Mapping[str, Any], tmp_path: Path) -> RecordBackend:
    return RedisBackend(fixtures["redis_env"])


BACKENDS = [BackendSpec("redis", ("redis_env",), _factory)]
