"""Record stores that declare ``linked_locations``: every object-store location they name comes
from a record in scope, and naming them reads, never deletes."""

from __future__ import annotations

import pytest

from sundown.linked import LinkedLocation, LinksLocations
from sundown.records import RecordCapability
from tests.conformance_records import RecordCase


def test_linked_locations_come_from_records_in_scope(record_case: RecordCase) -> None:
    seeded = record_case.backend.seed(4)
    store = record_case.open(seeded)
    if RecordCapability.LINKED not in store.capabilities:
        pytest.skip(f"{record_case.name}:// declares no linked locations")
    assert isinstance(store, LinksLocations)
    before = sorted(e.id for e in store.inventory())
    linked = store.linked_locations()
    assert all(isinstance(x, LinkedLocation) and x.url and x.kind for x in linked)
    assert {x.source for x in linked} <= set(before) | {
        f"experiment:{seeded.names.get('experiment')}"
    }
    assert not {x.source for x in linked} & set(seeded.foreign_ids)
    assert sorted(e.id for e in store.inventory()) == before
