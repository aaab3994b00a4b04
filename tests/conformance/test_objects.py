"""Conformance: the ObjectStore operations, path-boundary scoping and key validation."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from sundown.errors import ConflictError, InputError, NotFoundError, UnsupportedError
from sundown.plan import PlanEntry
from sundown.store import Capability, Copier, EntryKind, HoldState, Inventory, ObjectStore
from tests.conformance import StoreCase, unique

MiB = 1024 * 1024


def _stream(seed: int, size: int) -> Iterator[bytes]:
    """``size`` pseudo-random bytes in 1 MiB chunks, never all in memory."""
    rng = random.Random(seed)
    left = size
    while left:
        n = min(MiB, left)
        yield rng.randbytes(n)
        left -= n


def _digest(chunks: Iterator[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def _read_digest(store: ObjectStore, key: str) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with store.open(key) as f:
        while chunk := f.read(MiB):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def test_store_declares_protocols_and_capabilities(store_case: StoreCase) -> None:
    store = store_case.open(store_case.location() + "/models/a")
    assert isinstance(store, ObjectStore)
    assert isinstance(store, Inventory)
    assert isinstance(store.capabilities, frozenset)
    assert all(isinstance(c, Capability) for c in store.capabilities)
    assert store.url.endswith("/models/a")
    store_case.has(store, Capability.CONDITIONAL_CREATE, "conditional_create")
    assert Capability.CONDITIONAL_CREATE in store.capabilities, "the evidence ledger needs it"


def test_round_trip_put_open_head_list_delete(store_case: StoreCase) -> None:
    store = store_case.open(store_case.location() + "/models/a")
    info = store.put("w/model.bin", io.BytesIO(b"weights"))
    assert info.key == "w/model.bin"
    assert info.size == 7
    store.put("w/config.json", iter([b'{"a":', b" 1}"]))
    store.put("readme", iter([]))

    with store.open("w/model.bin") as f:
        assert f.read() == b"weights"
    with store.open("w/config.json") as f:
        assert f.read() == b'{"a": 1}'
    with store.open("readme") as f:
        assert f.read() == b""
    head = store.head("w/config.json")
    assert (head.key, head.size) == ("w/config.json", 8)
    assert head.modified.tzinfo is not None

    assert [o.key for o in store.list()] == ["readme", "w/config.json", "w/model.bin"]
    assert [(o.key, o.size) for o in store.list("w")] == [
        ("w/config.json", 8),
        ("w/model.bin", 7),
    ]

    store.put("w/model.bin", io.BytesIO(b"weights v2"))  # overwrite
    with store.open("w/model.bin") as f:
        assert f.read() == b"weights v2"

    store.delete("w/model.bin")
    with pytest.raises(NotFoundError):
        store.head("w/model.bin")
    assert [o.key for o in store.list()] == ["readme", "w/config.json"]


def test_missing_objects_raise_not_found(store_case: StoreCase) -> None:
    store = store_case.open(store_case.location() + "/models/a")
    store.put("present", iter([b"x"]))
    with pytest.raises(NotFoundError):
        store.open("absent")
    with pytest.raises(NotFoundError):
        store.head("absent")
    with pytest.raises(NotFoundError):
        store.delete("absent")
    assert list(store.list("absent")) == []


def test_large_streaming_put_round_trips(store_case: StoreCase) -> None:
    """20 MiB from a generator: the multipart / resumable / block path on cloud stores."""
    store = store_case.open(store_case.location() + "/models/a")
    size = 20 * MiB + 12345
    info = store.put("big/weights.safetensors", _stream(7, size))
    assert info.size == size
    assert store.head("big/weights.safetensors").size == size
    assert _read_digest(store, "big/weights.safetensors") == (_digest(_stream(7, size)), size)


def test_create_only_put_conflicts_and_keeps_the_original(store_case: StoreCase) -> None:
    store = store_case.open(store_case.location() + "/ledger")
    store_case.gap("conditional_create")
    store.put("records/000001.json", iter([b"first"]), if_absent=True)
    with pytest.raises(ConflictError):
        store.put("records/000001.json", iter([b"second"]), if_absent=True)
    store_case.gap("conditional_create_large")
    with pytest.raises(ConflictError):  # the large (multipart) path too
        store.put("records/000001.json", _stream(3, 12 * MiB), if_absent=True)
    with store.open("records/000001.json") as f:
        assert f.read() == b"first"
    store.put("records/000002.json", _stream(4, 12 * MiB), if_absent=True)
    assert store.head("records/000002.json").size == 12 * MiB
    with pytest.raises(ConflictError):
        store.put("records/000002.json", iter([b"small"]), if_absent=True)


def test_path_boundary_prefix_never_matches_a_longer_name(store_case: StoreCase) -> None:
    url = store_case.location()
    a = store_case.open(url + "/models/a")
    ab = store_case.open(url + "/models/ab")
    parent = store_case.open(url + "/models")
    a.put("x.bin", iter([b"a"]))
    ab.put("x.bin", iter([b"ab"]))
    ab.put("y.bin", iter([b"ab"]))
    parent.put("a.bak", iter([b"sibling file"]))

    assert [o.key for o in a.list()] == ["x.bin"]
    assert [o.key for o in ab.list()] == ["x.bin", "y.bin"]
    assert isinstance(a, Inventory)
    assert {e.key for e in a.inventory()} == {"x.bin"}
    with pytest.raises(NotFoundError):
        a.head("y.bin")

    a.delete("x.bin")
    assert [o.key for o in ab.list()] == ["x.bin", "y.bin"]
    assert sorted(o.key for o in parent.list()) == ["a.bak", "ab/x.bin", "ab/y.bin"]


def test_list_prefix_is_a_path(store_case: StoreCase) -> None:
    store = store_case.open(store_case.location() + "/root")
    for key in ("p/1", "p/sub/3", "pq/2", "p.txt"):
        store.put(key, iter([b"."]))
    assert [o.key for o in store.list("p")] == ["p/1", "p/sub/3"]
    assert [o.key for o in store.list("p/")] == ["p/1", "p/sub/3"]
    assert [o.key for o in store.list("pq")] == ["pq/2"]
    assert isinstance(store, Inventory)
    assert {e.key for e in store.inventory("p")} == {"p/1", "p/sub/3"}


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/abs", "", "a/./b", "a//b", "dir/"])
def test_bad_keys_are_rejected(store_case: StoreCase, key: str) -> None:
    """Writes and deletes take plain keys only. Reads also take what an inventory reports on an
    object store (a folder marker ``dir/``, ``""`` for ``<root>/``, ``a//b``: exact names inside
    the location, which the archive step reads; absent here, so NotFoundError), never a ``.`` or
    ``..`` segment (docs/stores.md, "Odd keys")."""
    store = store_case.open(store_case.location() + "/models/a")
    with pytest.raises(InputError):
        store.put(key, iter([b"x"]))
    with pytest.raises(InputError):
        store.delete(key)
    readable = store_case.name != "file" and not any(p in (".", "..") for p in key.split("/"))
    with pytest.raises(NotFoundError if readable else InputError):
        store.open(key)
    with pytest.raises(NotFoundError if readable else InputError):
        store.head(key)
    assert list(store_case.open(store_case.location()).list()) == []


def test_put_of_chunks_that_are_not_bytes_is_input_error_and_writes_nothing(
    store_case: StoreCase,
) -> None:
    """One stream adapter on every store (connectors/_streams.py): a chunk that is not bytes is
    an InputError naming it, and nothing is written (S3 and the file store failed with a
    TypeError before). Bytes given whole are one chunk everywhere (the file store took them
    apart into ints before)."""
    store = store_case.open(store_case.location() + "/models/a")
    with pytest.raises(InputError, match="byte chunks, got str"):
        store.put("w.bin", iter([b"ok", "text"]))  # type: ignore[arg-type]
    assert list(store.list()) == []
    store.put("b.bin", b"whole bytes")
    with store.open("b.bin") as f:
        assert f.read() == b"whole bytes"


def test_dot_dot_in_the_store_url_is_rejected(store_case: StoreCase) -> None:
    url = store_case.location()
    with pytest.raises(InputError):
        store_case.open(url + "/models/a/../ab")


def test_copy_to_another_location(store_case: StoreCase) -> None:
    url = store_case.location()
    src = store_case.open(url + "/models/a")
    dest = store_case.open(url + "/archive/a")
    src.put("w.bin", iter([b"weights"]))
    if not isinstance(src, Copier):
        pytest.fail(f"{store_case.name} store does not implement Copier")
    info = src.copy("w.bin", dest, "w.bin")
    assert (info.key, info.size) == ("w.bin", 7)
    with dest.open("w.bin") as f:
        assert f.read() == b"weights"
    with src.open("w.bin") as f:
        assert f.read() == b"weights"


def test_copy_into_archive_tier(store_case: StoreCase) -> None:
    url = store_case.location()
    src = store_case.open(url + "/models/a")
    dest = store_case.open(url + "/archive/a")
    src.put("w.bin", iter([b"weights"]))
    assert isinstance(src, Copier)
    if store_case.has(src, Capability.ARCHIVE_TIER, "archive_tier"):
        archive = store_case.backend.archive_class
        assert archive, f"{store_case.name} declares ARCHIVE_TIER but names no archive class"
        info = src.copy("w.bin", dest, "w.bin", storage_class=archive)
        assert info.storage_class == archive
        assert dest.head("w.bin").storage_class == archive
    else:  # no archive tier: asking for one is refused, not ignored
        with pytest.raises(Exception) as raised:
            src.copy("w.bin", src, "w2.bin", storage_class="ARCHIVE")
        assert "storage class" in str(raised.value) or "storage classes" in str(raised.value)


def _archive_entry(store: ObjectStore, key: str, archive_key: str) -> PlanEntry:
    info = store.head(key)
    return PlanEntry(
        loc=0, key=key, version_id=info.version_id, kind=EntryKind.OBJECT, size=info.size,
        modified=info.modified, is_latest=True, storage_class=info.storage_class,
        hold=HoldState(), disposition="purge", archive_key=archive_key,
    )  # fmt: skip


@pytest.mark.parametrize("direction", ["file->store", "store->file"])
def test_archive_between_two_different_stores(
    store_case: StoreCase, direction: str, tmp_path: Path
) -> None:
    """The archive step (flows/_steps.py archive_one) between a folder and this store, both
    ways: envelope ciphertext re-encrypted under the archive key and verified by decrypting the
    copy; plaintext copied and read back; the storage class honoured where the archive store has
    classes, refused with UnsupportedError where it has none (never dropped)."""
    from flows._steps import archive_one
    from sundown import registry
    from sundown.envelope import Artifact, decrypt_stream, encrypt_to_store, read_sidecar

    folder = store_case.open((tmp_path / "folder").as_uri())
    other = store_case.open(store_case.location() + "/x")
    src, dest = (folder, other) if direction == "file->store" else (other, folder)
    kek, archive_key = f"local://{unique('kek')}", f"local://{unique('arch')}"
    registry.create_key(kek)
    registry.create_key(archive_key)
    weights = random.randbytes(70_000)
    encrypt_to_store(
        io.BytesIO(weights),
        src,
        "w.bin",
        registry.open_key_service(kek),
        Artifact("s", "w.bin", "v1"),
    )
    src.put("notes.txt", iter([b"plain notes"]))

    copy = archive_one(src, _archive_entry(src, "w.bin", "a/w.bin"), dest, archive_key, None)
    assert copy is not None and copy.key == archive_key
    assert copy.sha256 == hashlib.sha256(weights).hexdigest()
    assert copy.encryption.startswith(f"envelope (AES-256-GCM streaming) under {archive_key}")
    assert copy.uri == f"{dest.url}/a/w.bin" and copy.bytes == dest.head("a/w.bin").size
    sidecar = read_sidecar(dest, "a/w.bin")
    assert sidecar.key_uri == archive_key
    with dest.open("a/w.bin") as f:
        assert b"".join(decrypt_stream(f, sidecar, registry.open_key_service(archive_key))) == (
            weights
        )

    entry = _archive_entry(src, "notes.txt", "a/notes.txt")
    plain = archive_one(src, entry, dest, archive_key, None)
    assert plain is not None and plain.encryption == "none (plaintext)" and plain.key is None
    assert plain.sha256 == hashlib.sha256(b"plain notes").hexdigest()

    cls = store_case.backend.archive_class
    if dest is folder or cls is None:
        with pytest.raises(UnsupportedError, match="no storage classes"):
            archive_one(src, _archive_entry(src, "notes.txt", "b/n.txt"), dest, archive_key, "X")
        with pytest.raises(NotFoundError):
            dest.head("b/n.txt")
        return
    store_case.gap("archive_tier")
    moved = archive_one(src, _archive_entry(src, "notes.txt", "b/n.txt"), dest, archive_key, cls)
    assert moved is not None and moved.storage_class == cls
    assert dest.head("b/n.txt").storage_class == cls
