"""Conformance: folder markers and other names no file system could hold (issue #12 item 7).

An operator (or the AWS console's "Create folder") writes ``models/a/`` and markers below it;
anyone who can write to the bucket can write ``models/a//x`` or ``models/a/y/../z``. Inventory
reports each of them relative to the location, purge deletes the ones it is handed by exact
name (folder markers, empty segments) and refuses any with a ``.``/``..`` segment before
sending a request, and nothing outside ``models/a/`` is touched (``models/ab/`` and the marker
``models/`` are canaries). docs/stores.md, "Odd keys".
"""

from __future__ import annotations

import pytest

from sundown.errors import InputError
from sundown.store import Entry, Inventory, ObjectStore
from tests.conformance import Snapshot, StoreCase, snapshot

MARKERS = {"models/a/": "", "models/a/sub/": "sub/", "models/a//x": "/x", "models/a/x": "x"}
DOTTED = {"models/a/y/../z": "y/../z", "models/a/./w": "./w"}
CANARIES = ("models/", "models/ab/", "models/ab/c", "models/a.bak", "models/z", "models/w")


def _inventory(store: ObjectStore) -> list[Entry]:
    assert isinstance(store, Inventory)
    return list(store.inventory())


def _outside(root: ObjectStore) -> Snapshot:
    return snapshot(e for e in _inventory(root) if not e.key.startswith("models/a/"))


def _raw(case: StoreCase, url: str, names: list[str]) -> None:
    try:
        for name in names:
            case.backend.put_raw(url, name, name.encode())
    except NotImplementedError as exc:  # a file system: a name cannot end in "/" or hold "//"
        pytest.skip(str(exc))


def test_folder_markers_are_inventoried_and_purged_by_exact_name(store_case: StoreCase) -> None:
    url = store_case.location()
    _raw(store_case, url, [*MARKERS, *CANARIES])
    root = store_case.open(url)
    before = _outside(root)
    assert {key for key, _, _ in before} >= set(CANARIES)
    store = store_case.open(url + "/models/a")

    entries = _inventory(store)
    assert {e.key for e in entries} == set(MARKERS.values())
    assert {e.key: e.size for e in entries}[""] == len(b"models/a/")
    with store.open("sub/") as f:  # the archive step reads a marker by its exact name
        assert f.read() == b"models/a/sub/"

    store_case.gap("batch_delete")
    assert isinstance(store, Inventory)
    result = store.purge(entries)
    assert snapshot(result.deleted) == snapshot(entries)
    assert (result.held, result.failed) == ([], [])
    assert _inventory(store) == []
    assert _outside(root) == before, "a purge touched something outside models/a/"


def test_dot_segment_names_are_never_deleted_by_name(store_case: StoreCase) -> None:
    url = store_case.location()
    _raw(store_case, url, [*DOTTED, "models/a/kept", *CANARIES])
    root = store_case.open(url)
    before = _outside(root)
    store = store_case.open(url + "/models/a")
    entries = _inventory(store)
    assert {e.key for e in entries} == {*DOTTED.values(), "kept"}

    assert isinstance(store, Inventory)
    with pytest.raises(InputError, match=r"'\.' or '\.\.' segment"):
        store.purge(entries)
    assert snapshot(_inventory(store)) == snapshot(entries)  # refused before any request
    dotted = [e for e in entries if e.key in DOTTED.values()]
    for entry in dotted:
        with pytest.raises(InputError):
            store.open(entry.key)
    assert _outside(root) == before
