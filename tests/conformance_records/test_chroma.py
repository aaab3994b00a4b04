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
