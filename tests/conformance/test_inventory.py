"""Conformance: inventory, exact purge, verification by re-listing, holds, soft delete."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from sundown.errors import InputError
from sundown.store import Capability, Entry, EntryKind, Inventory, ObjectStore
from tests.conformance import Snapshot, StoreCase, kinds, snapshot

CANARIES = ("models/ab/canary.bin", "models/a.bak", "models/canary.bin", "other/models/a/x")


def _inventory(store: ObjectStore) -> list[Entry]:
    assert isinstance(store, Inventory)
    return list(store.inventory())


def _with_canaries(case: StoreCase, url: str) -> tuple[ObjectStore, ObjectStore, Snapshot]:
    """The store at ``url/models/a`` and, at the location root, canaries beside it."""
    root = case.open(url)
    for key in CANARIES:
        root.put(key, iter([b"canary"]))
    before = _outside(root)
    return case.open(url + "/models/a"), root, before


def _outside(root: ObjectStore) -> Snapshot:
    """Every copy at the location root that is not under ``models/a/``."""
    outside = snapshot(e for e in _inventory(root) if not e.key.startswith("models/a/"))
    assert {key for key, _, _ in outside} == set(CANARIES)
    return outside


def _canaries_untouched(root: ObjectStore, before: Snapshot) -> None:
    assert _outside(root) == before, "a purge touched something outside its prefix"


def test_inventory_finds_every_version_and_delete_marker(store_case: StoreCase) -> None:
    url = store_case.location(versioning=True)
    store, _, _ = _with_canaries(store_case, url)
    v1 = store_case.put(store, "w.bin", b"one")
    v2 = store_case.put(store, "w.bin", b"two!")
    store.delete("w.bin")
    store_case.put(store, "cfg.json", b"{}")
    entries = _inventory(store)

    if store_case.has(store, Capability.VERSIONING, "versioning"):
        w = [e for e in entries if e.key == "w.bin"]
        # S3 records the delete as a delete marker; GCS and Azure keep no marker (the live
        # copy just becomes a noncurrent version / previous version).
        markers = kinds(w).get(EntryKind.DELETE_MARKER, 0)
        assert kinds(w) == {
            EntryKind.VERSION: 2,
            **({EntryKind.DELETE_MARKER: 1} if markers else {}),
        }
        assert {e.version_id for e in w if e.kind is EntryKind.VERSION} == {v1, v2}
        assert {e.size for e in w if e.kind is EntryKind.VERSION} == {3, 4}
        assert [e.is_latest for e in w if e.kind is EntryKind.DELETE_MARKER] == [True] * markers
        assert all(e.version_id for e in w)
    else:  # no versions kept: inventory is the current objects
        assert not any(e.key == "w.bin" for e in entries)
    cfg = [e for e in entries if e.key == "cfg.json"]
    assert len(cfg) == 1
    assert cfg[0].kind is EntryKind.OBJECT
    assert cfg[0].is_latest
    assert cfg[0].size == 2
    assert cfg[0].modified.tzinfo is not None
    assert {e.key for e in entries} <= {"w.bin", "cfg.json"}


def test_purge_deletes_exactly_the_listed_entries(store_case: StoreCase) -> None:
    url = store_case.location(versioning=True)
    store, root, before = _with_canaries(store_case, url)
    store_case.put(store, "doomed/w.bin", b"one")
    store_case.put(store, "doomed/w.bin", b"two")
    store_case.put(store, "kept/w.bin", b"keep")
    entries = _inventory(store)
    doomed = [e for e in entries if e.key.startswith("doomed/")]
    kept = [e for e in entries if e.key.startswith("kept/")]
    assert doomed and kept

    assert isinstance(store, Inventory)
    store_case.gap("batch_delete")
    result = store.purge(doomed)
    assert snapshot(result.deleted) == snapshot(doomed)
    assert result.held == []
    assert result.failed == []
    assert result.requests >= 1

    assert snapshot(_inventory(store)) == snapshot(kept)
    _canaries_untouched(root, before)


def test_purge_everything_then_verify_finds_nothing(store_case: StoreCase) -> None:
    url = store_case.location(versioning=True)
    store, root, before = _with_canaries(store_case, url)
    for i in range(5):
        store_case.put(store, f"shard-{i}.bin", b"x" * i)
        store_case.put(store, f"shard-{i}.bin", b"y" * i)
    store.delete("shard-0.bin")
    entries = _inventory(store)
    assert isinstance(store, Inventory)
    store_case.gap("batch_delete")
    result = store.purge(entries)
    assert (len(result.deleted), len(result.held), len(result.failed)) == (len(entries), 0, 0)
    assert _inventory(store) == []  # the re-listing is the proof
    assert list(store.list()) == []
    _canaries_untouched(root, before)


def test_purge_checks_every_entry_before_deleting_any(store_case: StoreCase) -> None:
    url = store_case.location(versioning=True)
    store, root, before = _with_canaries(store_case, url)
    store_case.put(store, "w.bin", b"w")
    entries = _inventory(store)
    bad = Entry("../ab/canary.bin", "v", EntryKind.VERSION, 6, datetime.now(UTC))
    assert isinstance(store, Inventory)
    with pytest.raises(InputError):
        store.purge([*entries, bad])
    assert snapshot(_inventory(store)) == snapshot(entries)
    _canaries_untouched(root, before)


def test_purge_batches_at_the_api_limit(store_case: StoreCase) -> None:
    """2.5 x the API's batch limit in 3 requests, none above the limit (counted on the wire)."""
    url = store_case.location(versioning=True)
    store = store_case.open(url + "/models/a")
    assert isinstance(store, Inventory)
    batch = store_case.has(store, Capability.BATCH_DELETE, "batch_delete")
    limit = store_case.backend.batch_limit if batch else 20
    assert limit, f"{store_case.name} declares BATCH_DELETE but no batch_limit"
    n = 2 * limit + limit // 2
    store_case.backend.seed(store, [f"w/{i:05d}.bin" for i in range(n)])
    entries = _inventory(store)  # pages through them all
    assert len(entries) == n
    assert len({e.key for e in entries}) == n

    if not batch:
        result = store.purge(entries)
        assert len(result.deleted) == n
        assert result.requests >= 1
        assert _inventory(store) == []
        return
    with store_case.backend.record_deletes(store) as sent:
        result = store.purge(entries)
    assert (len(result.deleted), result.held, result.failed) == (n, [], [])
    assert max(sent) <= limit, f"a delete request carried {max(sent)} > {limit} items"
    assert sum(sent) == n
    assert len(sent) == math.ceil(n / limit) == 3
    assert result.requests == 3
    assert _inventory(store) == []


def test_held_objects_are_reported_as_held(store_case: StoreCase) -> None:
    url = store_case.location(versioning=True, object_lock=True)
    store, root, before = _with_canaries(store_case, url)
    assert isinstance(store, Inventory)
    held_version = store_case.put(store, "held.bin", b"evidence")
    store_case.put(store, "free.bin", b"free")
    if not store_case.has(store, Capability.OBJECT_LOCK, "object_lock"):
        assert not any(e.hold.held for e in _inventory(store))
        return
    store_case.backend.set_legal_hold(store, "held.bin", held_version, True)
    try:
        entries = _inventory(store)
        by_key = {e.key: e for e in entries}
        assert by_key["held.bin"].hold.legal_hold
        assert by_key["held.bin"].hold.held
        assert not by_key["free.bin"].hold.held

        result = store.purge(entries)
        assert [e.key for e in result.deleted] == ["free.bin"]
        assert [e.key for e in result.held] == ["held.bin"]
        assert result.failed == []
        assert [e.key for e in _inventory(store)] == ["held.bin"]
    finally:
        store_case.backend.set_legal_hold(store, "held.bin", held_version, False)
    result = store.purge(_inventory(store))
    assert [e.key for e in result.deleted] == ["held.bin"]
    assert _inventory(store) == []
    _canaries_untouched(root, before)


def test_governance_retention_is_bypassed_only_when_allowed(store_case: StoreCase) -> None:
    url = store_case.location(versioning=True, object_lock=True)
    store = store_case.open(url + "/models/a")
    assert isinstance(store, Inventory)
    version = store_case.put(store, "retained.bin", b"r")
    if not store_case.has(store, Capability.OBJECT_LOCK, "object_lock"):
        assert not any(e.hold.held for e in _inventory(store))
        return
    store_case.gap("retention")
    store_case.backend.set_retention(store, "retained.bin", version, "GOVERNANCE", days=1)
    entries = _inventory(store)
    (entry,) = entries
    assert entry.hold.retention_mode == "GOVERNANCE"
    assert entry.hold.retain_until is not None
    assert entry.hold.retain_until > datetime.now(UTC) + timedelta(hours=23)

    refused = store.purge(entries)
    assert ([e.key for e in refused.held], refused.deleted) == (["retained.bin"], [])
    assert snapshot(_inventory(store)) == snapshot(entries)

    bypassed = store.purge(entries, bypass_governance=True)
    assert [e.key for e in bypassed.deleted] == ["retained.bin"]
    assert _inventory(store) == []


def test_soft_delete_policy_is_reported(store_case: StoreCase) -> None:
    store = store_case.open(store_case.location(soft_delete=True) + "/models/a")
    assert isinstance(store, Inventory)
    policy = store.soft_delete_policy()
    assert policy.source
    now = datetime.now(UTC)
    if store_case.has(store, Capability.SOFT_DELETE, "soft_delete"):
        expected = store_case.backend.soft_delete_seconds
        assert expected, f"{store_case.name} declares SOFT_DELETE but no soft_delete_seconds"
        assert policy.retention_seconds == expected
        assert policy.irrecoverable_after(now) == now + timedelta(seconds=expected)
    else:
        assert policy.retention_seconds is None
        assert policy.irrecoverable_after(now) == now


def test_soft_deleted_copies_are_listed_with_their_hard_delete_time(
    store_case: StoreCase,
) -> None:
    """Every soft-deleted copy in scope is inventoried with when the provider deletes it for
    good (GCS ``hardDeleteTime``; Azure deletion time + the retention in force, as an upper
    bound), so verification can hold it to the window the certificate states."""
    url = store_case.location(soft_delete=True)
    store, root, before = _with_canaries(store_case, url)
    assert isinstance(store, Inventory)
    store_case.put(store, "gone.bin", b"gone")
    store_case.put(store, "kept.bin", b"kept")
    store.delete("gone.bin")
    if not store_case.has(store, Capability.SOFT_DELETE, "soft_delete"):
        assert not any(e.kind is EntryKind.SOFT_DELETED for e in _inventory(store))
        return
    store_case.gap("soft_delete_listing")
    entries = _inventory(store)
    (soft,) = [e for e in entries if e.kind is EntryKind.SOFT_DELETED]
    assert soft.key == "gone.bin"
    window = store_case.backend.soft_delete_seconds
    assert window and soft.hard_delete_at is not None
    now = datetime.now(UTC)
    assert now < soft.hard_delete_at <= now + timedelta(seconds=window, days=1)
    _canaries_untouched(root, before)
