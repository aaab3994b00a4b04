"""chroma:// in the record conformance suite: a fresh collection per location on the session's
``chroma run`` server; canaries are another system's documents in the same collection and a
second collection."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.backend_modules import BackendSpec
from tests.conformance_records import RecordBackend, Seeded, ServerBackend, unique
from tests.fixtures.chroma import ChromaServer

SYSTEM = "support-bot"


def add(collection: Any, system: str, texts: list[str], prefix: str) -> list[str]:
    ids = [f"{prefix}-{i}" for i in range(len(texts))]
    if texts:
        collection.add(
            ids=ids,
            documents=texts,
            metadatas=[{"system": system, "n": i} for i in range(len(texts))],
            embeddings=[[float(i), 0.5, 0.25] for i in range(len(texts))],
        )
    return ids


class ChromaBackend(ServerBackend[ChromaServer]):
    name = "chroma"

    def url(self, collection: str) -> str:
        return f"chroma://127.0.0.1:{self.server.port}/default_tenant/default_database/{collection}"

    def seed(self, n: int, *, whole: bool = False) -> Seeded:
        name, other = unique("rag"), unique("other")
        canary = unique("CANARY-")
        client = self.server.client()
        col = client.create_collection(name, embedding_function=None)
        ids = add(col, SYSTEM, [f"{canary} chunk {i}" for i in range(n)], "doc")
        foreign: list[str] = []
        if not whole:
            foreign = add(col, "support-bot-v2", [f"v2 chunk {i}" for i in range(5)], "v2")
        add(client.create_collection(other, embedding_function=None), SYSTEM,
            [f"other collection {i}" for i in range(5)], "doc")  # fmt: skip
        selector = {"whole_collection": True} if whole else {"where": {"system": SYSTEM}}
        names = {"collection": name, "other": other}
        return Seeded(self.url(name), selector, ids, foreign, canary, names)

    def add_in_scope(self, seeded: Seeded) -> str:
        col = self.server.client().get_collection(seeded.names["collection"])
        return add(col, SYSTEM, ["written late"], "late")[0]

    def outside(self, seeded: Seeded) -> object:
        client = self.server.client()
        snapshot: list[object] = []
        if seeded.foreign_ids:
            col = client.get_collection(seeded.names["collection"])
            snapshot.append(_content(col.get(ids=seeded.foreign_ids, include=_WHAT)))
        other = client.get_collection(seeded.names["other"])
        snapshot.append(_content(other.get(include=_WHAT)))
        return snapshot


_WHAT: Any = ["documents", "metadatas"]


def _content(got: Any) -> list[tuple[str, str, str]]:
    """Ids, documents and metadata (key order fixed), sorted."""
    metadata = (str(sorted(m.items())) for m in got["metadatas"])
    return sorted(zip(got["ids"], got["documents"], metadata, strict=True))


def _factory(fixtures: Mapping[str, Any], tmp_path: Path) -> RecordBackend:
    return ChromaBackend(fixtures["chroma_env"])


BACKENDS = [BackendSpec("chroma", ("chroma_env",), _factory)]
