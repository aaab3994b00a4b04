"""The record-store conformance suite: every connector, real servers, canaries beside every
selector (see ``__init__``)."""

from __future__ import annotations

import pytest

from sundown.errors import ConflictError, InputError, ScopeError
from sundown.records import (
    Compactor,
    Finding,
    RecordCapability,
    RecordEntry,
    RecordStore,
    ids_digest,
    summarize,
)
from tests.conformance_records import RecordCase, Seeded


def test_inventory_lists_exactly_the_selector(record_case: RecordCase) -> None:
    seeded = record_case.backend.seed(25)
    store = record_case.open(seeded)
    entries = list(store.inventory())
    assert sorted(e.id for e in entries) == sorted(seeded.ids)
    summary = summarize(entries)
    assert summary.count == 25
    assert summary.estimated_bytes >= 25 * len(seeded.canary_text)
    assert summary.ids_digest == ids_digest(seeded.ids)
    assert summarize(store.inventory()) == summary  # stable
    record_case.backend.add_in_scope(seeded)
    assert summarize(store.inventory()).ids_digest != summary.ids_digest


def test_purge_in_batches_deletes_the_selector_and_nothing_beside_it(
    record_case: RecordCase,
) -> None:
    seeded = record_case.backend.seed(23)
    before = record_case.backend.outside(seeded)
    store = record_case.open(seeded)
    entries = list(store.inventory())
    result = store.purge(entries, batch_size=5)
    assert sorted(result.deleted) == sorted(seeded.ids)
    assert not result.absent and not result.failed
    assert [b.asked for b in result.batches] == [5, 5, 5, 5, 3]
    assert sum(b.deleted for b in result.batches) == 23
    check = store.verify(entries)
    assert check.clean and check.in_scope == 0 and check.listed_present == ()
    assert list(store.inventory()) == []
    assert record_case.backend.outside(seeded) == before


def test_a_rerun_finds_every_listed_record_absent(record_case: RecordCase) -> None:
    seeded = record_case.backend.seed(6)
    store = record_case.open(seeded)
    entries = list(store.inventory())
    first = store.purge(entries)
    again = store.purge(entries)
    assert len(first.deleted) == 6
    assert again.deleted == [] and sorted(again.absent) == sorted(seeded.ids)


def test_a_rerun_after_the_whole_location_is_gone_finds_every_record_absent(
    record_case: RecordCase,
) -> None:
    seeded, store, entries = _seed_whole(record_case, 3)
    assert store.purge(entries).dropped
    again = store.purge(entries)
    assert not again.dropped and again.deleted == []
    assert sorted(again.absent) == sorted(seeded.ids)
    assert store.verify(entries).gone


def test_a_record_written_after_the_plan_stops_the_purge_before_any_delete(
    record_case: RecordCase,
) -> None:
    seeded = record_case.backend.seed(8)
    store = record_case.open(seeded)
    entries = list(store.inventory())
    late = record_case.backend.add_in_scope(seeded)
    with pytest.raises(ConflictError, match="not in the list"):
        store.purge(entries, batch_size=3)
    assert sorted(e.id for e in store.inventory()) == sorted([*seeded.ids, late])


def test_a_listed_record_beside_the_selector_is_refused_before_any_delete(
    record_case: RecordCase,
) -> None:
    """A plan (untrusted when read back) that names another system's record: nothing is
    deleted, neither that record nor the selector's own."""
    seeded = record_case.backend.seed(5)
    before = record_case.backend.outside(seeded)
    store = record_case.open(seeded)
    entries = list(store.inventory())
    forged = [*entries, RecordEntry(seeded.foreign_ids[0], 1)]
    with pytest.raises(ScopeError):
        store.purge(forged)
    assert len(list(store.inventory())) == 5
    assert record_case.backend.outside(seeded) == before


def test_a_record_listed_twice_is_refused(record_case: RecordCase) -> None:
    seeded = record_case.backend.seed(3)
    store = record_case.open(seeded)
    entries = list(store.inventory())
    with pytest.raises(InputError, match="listed twice"):
        store.purge([*entries, entries[0]])
    assert len(list(store.inventory())) == 3


def test_verify_reports_what_the_selector_still_matches(record_case: RecordCase) -> None:
    seeded = record_case.backend.seed(4)
    store = record_case.open(seeded)
    entries = list(store.inventory())
    store.purge(entries)
    late = record_case.backend.add_in_scope(seeded)
    check = store.verify(entries)
    assert not check.clean
    assert check.in_scope == 1 and check.sample == (late,)


def test_the_whole_table_or_collection_is_removed(record_case: RecordCase) -> None:
    seeded, store, entries = _seed_whole(record_case, 7)
    before = record_case.backend.outside(seeded)
    assert sorted(e.id for e in entries) == sorted(seeded.ids)
    result = store.purge(entries)
    assert result.dropped and sorted(result.deleted) == sorted(seeded.ids)
    check = store.verify(entries)
    assert check.gone and check.clean
    assert record_case.backend.outside(seeded) == before


def test_the_whole_location_is_not_removed_when_it_holds_unlisted_records(
    record_case: RecordCase,
) -> None:
    seeded, store, entries = _seed_whole(record_case, 4)
    record_case.backend.add_in_scope(seeded)
    with pytest.raises(ConflictError):
        store.purge(entries)
    assert len(list(store.inventory())) == 5


def test_findings_name_what_keeps_deleted_data(record_case: RecordCase) -> None:
    seeded = record_case.backend.seed(2)
    store = record_case.open(seeded)
    findings = store.findings()
    assert findings and all(isinstance(f, Finding) and f.statement for f in findings)
    assert any(f.keeps_deleted_data for f in findings)
    if RecordCapability.COMPACT in store.capabilities:
        assert isinstance(store, Compactor)
        store.purge(list(store.inventory()))
        done = store.compact()
        assert done and all(isinstance(f, Finding) for f in done)


def _seed_whole(case: RecordCase, n: int) -> tuple[Seeded, RecordStore, list[RecordEntry]]:
    """``n`` records seeded under a whole-location selector (the backend must declare one):
    what was seeded, the store and its inventory."""
    _need_whole(case)
    seeded = case.backend.seed(n, whole=True)
    store = case.open(seeded)
    return seeded, store, list(store.inventory())


def _need_whole(case: RecordCase) -> None:
    store = case.open(case.backend.seed(1))
    if RecordCapability.WHOLE not in store.capabilities:
        pytest.skip(f"{case.name}:// declares no whole-location selector (capability 'whole')")
