"""Chroma specifics: metadata selectors that are not equality are refused, values are values,
and the deleted text stays in the server's persistent directory (what the finding says)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sundown import registry
from sundown.errors import InputError, NotFoundError
from tests.conformance_records.backend_chroma import ChromaBackend, add
from tests.fixtures.chroma import ChromaServer


@pytest.fixture
def backend(chroma_env: ChromaServer) -> ChromaBackend:
    return ChromaBackend(chroma_env)


def _on_disk(server: ChromaServer, text: str) -> bool:
    return any(text.encode() in p.read_bytes() for p in Path(server.path).rglob("*") if p.is_file())


@pytest.mark.parametrize("whole", [False, True])
def test_deleted_text_stays_in_the_persistent_directory(
    backend: ChromaBackend, whole: bool
) -> None:
    seeded = backend.seed(5, whole=whole)
    store = registry.open_record_store(seeded.url, seeded.selector)
    entries = list(store.inventory())
    result = store.purge(entries)
    assert sorted(result.deleted) == sorted(seeded.ids)
    assert store.verify(entries).clean
    assert _on_disk(backend.server, seeded.canary_text)
    [finding] = store.findings()
    assert finding.setting == "persistent directory" and finding.keeps_deleted_data is True
    assert "chroma.sqlite3" in finding.statement


@pytest.mark.parametrize(
    "where",
    [{"$or": [{"system": "a"}]}, {"system": {"$ne": "x"}}, {"#document": "x"}, {"n": 1.5}],
)
def test_selectors_other_than_equality_are_refused(backend: ChromaBackend, where: object) -> None:
    url = backend.url("anything")
    with pytest.raises(InputError):
        registry.open_record_store(url, {"where": where})


@pytest.mark.parametrize("value", ['{"$ne": "x"}', "support-bot' OR 1=1", "*"])
def test_odd_values_are_compared_as_values(backend: ChromaBackend, value: str) -> None:
    seeded = backend.seed(3)
    before = backend.outside(seeded)
    col = backend.server.client().get_collection(seeded.names["collection"])
    [own] = add(col, value, ["literal value"], "odd")
    store = registry.open_record_store(seeded.url, {"where": {"system": value}})
    entries = list(store.inventory())
    assert [e.id for e in entries] == [own]
    assert store.purge(entries).deleted == [own]
    assert backend.outside(seeded) == before
    assert len(col.get(where={"system": "support-bot"})["ids"]) == 3


def test_a_missing_collection_is_not_found(backend: ChromaBackend) -> None:
    store = registry.open_record_store(
        backend.url("no-such-collection"), {"whole_collection": True}
    )
    with pytest.raises(NotFoundError):
        list(store.inventory())


@pytest.mark.parametrize("whole", [True, False])
def test_what_chroma_vacuum_removes_with_the_server_stopped(whole: bool) -> None:
    """What the finding tells the operator, shown: a server of its own, a purge, the text still
    on disk, the server stopped, ``chroma vacuum --force``. After ``delete_collection`` the text
    is gone; after a ``where`` delete it is not: Chroma's write-ahead log (the
    ``embeddings_queue`` table) still holds the document as it was added. The other
    collection's text stays either way."""
    import sqlite3
    import subprocess

    from tests.fixtures.chroma import chroma_binary, start_chroma

    server = start_chroma(name="chroma-vacuum")
    try:
        backend = ChromaBackend(server)
        seeded = backend.seed(6, whole=whole)
        store = registry.open_record_store(seeded.url, seeded.selector)
        store.purge(list(store.inventory()))
        [finding] = store.findings()
        server.server.stop()
        assert _on_disk(server, seeded.canary_text)
        subprocess.run(
            [chroma_binary(), "vacuum", "--path", str(server.path), "--force"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        assert _on_disk(server, "other collection 4")
        assert _on_disk(server, seeded.canary_text) is not whole
        assert finding.keeps_deleted_data is True and "chroma vacuum" in finding.statement
        if not whole:
            assert "write-ahead log" in finding.statement
            with sqlite3.connect(server.path / "chroma.sqlite3") as db:
                [(n,)] = db.execute(
                    "SELECT count(*) FROM embeddings_queue WHERE metadata LIKE ?",
                    (f"%{seeded.canary_text}%",),
                )
            assert n == 6
    finally:
        server.stop()
