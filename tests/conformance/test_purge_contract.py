"""Conformance: the one purge contract of every object store (connectors/_purge.py).

Once a request is sent, ``purge`` never raises for a backend failure: every listed copy ends in
exactly one of deleted, held and failed. A batch request refused as a whole fails every copy of
that batch with the service's reason and stops the purge (nothing more is sent; the copies not
sent are failed ``NotSent``); a copy already gone counts as deleted (the re-listing is the
proof). Before this suite S3 raised on a refused batch while GCS and Azure marked its copies
failed and sent the next batch.
"""

from __future__ import annotations

from dataclasses import replace

from connectors._purge import NOT_SENT
from sundown.store import Capability, Entry, EntryKind, Inventory, ObjectStore
from tests.conformance import StoreCase, snapshot


def _inventory(store: ObjectStore) -> list[Entry]:
    assert isinstance(store, Inventory)
    return list(store.inventory())


def test_a_refused_batch_fails_its_copies_and_stops_the_purge(store_case: StoreCase) -> None:
    """The server refuses every batch delete request (HTTP 403 with its own error code, as a
    policy denying deletes does), through a proxy in front of the real server. The purge
    returns; every copy is failed exactly once, those of the refused requests with the
    service's code and the rest ``NotSent``; no request is sent once the refusal is known
    (beyond those already in flight with it: S3 sends four at once); nothing is deleted.

    To have more batches than requests in flight, the three real copies are followed by copies
    named like them under other keys: their requests are refused before any reaches the
    server."""
    url = store_case.location(versioning=True) + "/models/a"
    store = store_case.open(url)
    assert isinstance(store, Inventory)
    if Capability.BATCH_DELETE not in store.capabilities:
        # One request per copy (the file store): no batch to refuse as a whole.
        assert store_case.backend.batch_limit is None
        return
    backend = store_case.backend
    limit = backend.batch_limit
    assert limit and backend.refusal, f"{store_case.name}: no batch limit or refusal"
    code = backend.refusal.code
    for i in range(3):
        store_case.put(store, f"w{i}.bin", b"weights")
    real = _inventory(store)
    assert len(real) == 3
    total = (backend.purge_concurrency + 1) * limit + 1
    ghosts = [replace(real[0], key=f"ghost/{i:05d}.bin") for i in range(total - len(real))]
    entries = real + ghosts

    with backend.refusing_batches(url) as refusing:
        assert isinstance(refusing.store, Inventory)
        result = refusing.store.purge(entries)

    assert (result.deleted, result.held) == ([], [])
    assert len(result.failed) == len(entries)
    assert snapshot(f.entry for f in result.failed) == snapshot(entries)
    sent = len(refusing.refused)
    assert 1 <= sent <= backend.purge_concurrency, refusing.refused
    assert result.requests == sent
    refused = [f for f in result.failed if f.code == code]
    unsent = [f for f in result.failed if f.code == NOT_SENT]
    assert len(refused) == sent * limit, {f.code for f in result.failed}
    assert len(unsent) == len(entries) - len(refused) > limit
    assert all(f.message for f in refused)
    assert all(code in f.message for f in unsent), "NotSent names no cause"
    assert snapshot(_inventory(store)) == snapshot(real), "a refused purge deleted something"


def test_a_copy_already_gone_counts_as_deleted(store_case: StoreCase) -> None:
    """A copy deleted by someone else between inventory and purge: reported deleted (every
    backend answers so: S3's DeleteObjects, a 404 sub-response on GCS and Azure, a missing file),
    never failed, and nothing else is touched."""
    store = store_case.open(store_case.location() + "/models/a")
    store_case.put(store, "gone.bin", b"gone")
    store_case.put(store, "kept.bin", b"kept")
    entries = _inventory(store)
    gone = [e for e in entries if e.key == "gone.bin"]
    kept = [e for e in entries if e.key == "kept.bin"]
    assert [e.kind for e in gone + kept] == [EntryKind.OBJECT, EntryKind.OBJECT]
    store.delete("gone.bin")
    assert snapshot(_inventory(store)) == snapshot(kept)
    store_case.gap("batch_delete")
    assert isinstance(store, Inventory)
    result = store.purge(gone)
    assert (snapshot(result.deleted), result.held, result.failed) == (snapshot(gone), [], [])
    assert snapshot(_inventory(store)) == snapshot(kept)
