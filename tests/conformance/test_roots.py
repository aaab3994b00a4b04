"""What a location's root means on every backend (docs/spec.md, "Locations"): an inventory of a
root that does not exist (a bucket or container, a file:// folder) raises NotFoundError, so
planning can name it instead of certifying it empty; an existing but empty location inventories
to nothing ("nothing found")."""

from __future__ import annotations

import pytest

from sundown import registry
from sundown.errors import NotFoundError
from sundown.store import Inventory
from sundown.store_url import ParsedStoreURL, parse_store_url
from tests.conformance import StoreCase, unique


def _missing_root(url: str) -> str:
    """A URL like ``url`` whose root (bucket, container or folder) was never created."""
    p = parse_store_url(url)
    if p.scheme == "file":
        return ParsedStoreURL("file", "", (*p.parts[:-1], unique("never"))).url
    return ParsedStoreURL(p.scheme, unique("never"), p.parts).url


def test_empty_location_inventories_to_nothing(store_case: StoreCase) -> None:
    store = store_case.open(store_case.location())
    assert isinstance(store, Inventory)
    assert list(store.inventory()) == []


def test_missing_root_is_not_found(store_case: StoreCase) -> None:
    store = registry.open_store(_missing_root(store_case.location()))
    assert isinstance(store, Inventory)
    with pytest.raises(NotFoundError):
        list(store.inventory())
