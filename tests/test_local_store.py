"""file:// store specifics (the shared behaviour is in tests/conformance/)."""

from __future__ import annotations

import io
import os
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from connectors.local import open_store
from sundown.errors import ConflictError, InputError, NotFoundError, ScopeError
from sundown.registry import open_store as registry_open_store
from sundown.store import Entry, EntryKind


def test_registry_picks_file_store(tmp_path: Path) -> None:
    store = registry_open_store(tmp_path.as_uri())
    assert store.url == tmp_path.as_uri()


@pytest.mark.parametrize(
    "url",
    ["file://host/x", "file:///a/../b", "file:///a/./b", "file:///a?x=1", "file:relative"],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InputError):
        open_store(url)


def test_round_trip_and_path_boundary(tmp_path: Path) -> None:
    (tmp_path / "models" / "ab").mkdir(parents=True)
    (tmp_path / "models" / "ab" / "canary").write_bytes(b"keep")
    store = open_store((tmp_path / "models" / "a").as_uri())
    store.put("w/x.bin", io.BytesIO(b"hello"))
    store.put("w/y.bin", [b"he", b"llo"])
    with store.open("w/x.bin") as f:
        assert f.read() == b"hello"
    assert [o.key for o in store.list()] == ["w/x.bin", "w/y.bin"]
    assert [o.key for o in store.list("w")] == ["w/x.bin", "w/y.bin"]
    assert list(store.list("w/x")) == []  # a prefix is a path: w/x does not match w/x.bin
    result = store.purge(list(store.inventory()))
    assert len(result.deleted) == 2 and not result.failed
    assert list(store.list()) == []
    assert (tmp_path / "models" / "ab" / "canary").read_bytes() == b"keep"
    assert not (tmp_path / "models" / "a" / "w").exists()  # emptied folders are pruned


def test_key_order_is_lexicographic(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    for key in ["a/b", "a.txt", "a0", "b"]:
        store.put(key, [b"x"])
    keys = [o.key for o in store.list()]
    assert keys == sorted(keys) == ["a.txt", "a/b", "a0", "b"]


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a/", "a\\b"])
def test_bad_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = open_store(tmp_path.as_uri())
    with pytest.raises(InputError):
        store.put(key, [b"x"])


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "link")
    store = open_store(root.as_uri())
    with pytest.raises(ScopeError):
        store.open("link/secret")
    with pytest.raises(ScopeError):
        store.delete("link/secret")
    assert list(store.list()) == []
    assert (outside / "secret").exists()


def test_purge_refuses_versions_before_deleting_anything(tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    info = store.put("keep", [b"x"])
    good = Entry("keep", None, EntryKind.OBJECT, 1, info.modified)
    odd = Entry("keep", "v1", EntryKind.VERSION, 1, info.modified)
    with pytest.raises(InputError):
        store.purge([good, odd])
    assert store.head("keep").size == 1


def _create(args: tuple[str, int]) -> bool:
    url, n = args
    try:
        open_store(url).put("record", [str(n).encode()], if_absent=True)
    except ConflictError:
        return False
    return True


def test_create_only_has_one_winner_across_processes(tmp_path: Path) -> None:
    with ProcessPoolExecutor(4) as pool:
        wins = list(pool.map(_create, [(tmp_path.as_uri(), n) for n in range(16)]))
    assert wins.count(True) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["record"]  # no temp file left behind


def test_a_crashed_writes_temp_file_is_inventoried_and_purged(tmp_path: Path) -> None:
    """A write killed before its rename leaves ``.sundown-tmp-*`` beside the target: hidden from
    ``list`` (it is no object), but a copy of the data all the same, so inventory reports it as
    an incomplete upload and a purge removes it (the retirement's re-listing then proves it)."""
    store = open_store((tmp_path / "w").as_uri())
    store.put("a/model.bin", [b"weights"])
    left = tmp_path / "w" / "a" / ".sundown-tmp-k3j2h1"
    left.write_bytes(b"half a model")
    assert [o.key for o in store.list()] == ["a/model.bin"]
    entries = sorted(store.inventory(), key=lambda e: e.key)
    assert [(e.key, e.kind, e.size) for e in entries] == [
        ("a/.sundown-tmp-k3j2h1", EntryKind.MULTIPART_UPLOAD, 12),
        ("a/model.bin", EntryKind.OBJECT, 7),
    ]
    # the kind must match the file: a temp file is no object, an object no temp file
    wrong = Entry("a/model.bin", None, EntryKind.MULTIPART_UPLOAD, 7, entries[1].modified)
    with pytest.raises(InputError, match="temp files of unfinished writes"):
        store.purge([entries[0], wrong])
    assert left.exists()  # refused before deleting anything
    assert len(store.purge(entries).deleted) == 2
    assert list(store.inventory()) == []


def test_put_once_tells_its_own_object_from_another(tmp_path: Path) -> None:
    """The create-only write that survives a lost answer (sundown.store.put_once): the same
    bytes already there count as written; other bytes are another writer's and stay."""
    from sundown.store import put_once

    store = open_store(tmp_path.as_uri())
    assert put_once(store, "r/1.json", b"mine")
    assert put_once(store, "r/1.json", b"mine")  # a retry that meets its own object
    assert not put_once(store, "r/1.json", b"theirs")
    with store.open("r/1.json") as f:
        assert f.read() == b"mine"


def test_inventory_reports_special_files_by_kind_and_never_follows_them(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(b"a")
    os.symlink(outside, root / "dirlink")
    os.symlink(outside / "secret", root / "sub" / "filelink")
    os.mkfifo(root / "sub" / "pipe")
    os.link(outside / "secret", root / "sub" / "hard")
    store = open_store(root.as_uri())
    kinds = {e.key: e.kind for e in store.inventory()}
    assert kinds == {
        "a.bin": EntryKind.OBJECT,
        "dirlink": EntryKind.SYMLINK,
        "sub/filelink": EntryKind.SYMLINK,
        "sub/hard": EntryKind.HARDLINK,
        "sub/pipe": EntryKind.FIFO,
    }
    assert [i.key for i in store.list()] == ["a.bin", "sub/hard"]  # regular files only
    specials = [e for e in store.inventory() if e.kind is not EntryKind.OBJECT]
    with pytest.raises(InputError, match="never deletes or follows"):
        store.purge(specials)
    assert (root / "dirlink").is_symlink() and (outside / "secret").exists()
    assert (root / "sub" / "hard").exists()


def test_missing_or_symlinked_root_is_named_before_listing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        list(open_store((tmp_path / "nope").as_uri()).inventory())
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ScopeError, match="is a symbolic link"):
        list(open_store((tmp_path / "link" / "").as_uri()).inventory())
    with pytest.raises(ScopeError, match="is a symbolic link"):
        open_store((tmp_path / "link").as_uri()).purge(
            list(open_store((tmp_path / "real").as_uri()).inventory())
        )
    assert (tmp_path / "real" / "x").exists()


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (stat.S_IFLNK, EntryKind.SYMLINK),
        (stat.S_IFIFO, EntryKind.FIFO),
        (stat.S_IFSOCK, EntryKind.SOCKET),
        (stat.S_IFCHR, EntryKind.DEVICE),
        (stat.S_IFBLK, EntryKind.DEVICE),
    ],
)
def test_every_special_file_type_has_a_kind(mode: int, kind: EntryKind) -> None:
    """Devices cannot be made without CAP_MKNOD, so the classification itself is checked for
    every file type ``stat`` knows besides files and folders."""
    from connectors.local import _special_kind

    assert _special_kind(mode | 0o644) is kind


def test_a_folder_swapped_for_a_link_after_the_checks_is_not_followed(tmp_path: Path) -> None:
    """The race the path checks alone leave open: between purge's checks and its unlink, a
    folder on the key's path becomes a symbolic link to the victim's folder. The unlink walks
    the path with O_NOFOLLOW and refuses."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "x.bin").write_bytes(b"mine")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "x.bin").write_bytes(b"victim's")
    store = open_store(root.as_uri())
    (root / "sub" / "x.bin").unlink()
    (root / "sub").rmdir()
    (root / "sub").symlink_to(victim)
    with pytest.raises(ScopeError, match="no longer a folder"):
        store._unlink_nofollow("sub/x.bin")
    assert (victim / "x.bin").read_bytes() == b"victim's"
    (root / "plain.bin").write_bytes(b"p")
    store._unlink_nofollow("plain.bin")
    assert not (root / "plain.bin").exists()


def test_a_folder_swapped_for_a_link_during_the_purge_fails_that_copy_and_never_raises(
    tmp_path: Path,
) -> None:
    """The purge contract on the file store (connectors/_purge.py): once deleting has begun,
    ``purge`` reports, it does not raise. An attacker waits for the purge to start, then swaps
    a folder still to be purged for a symbolic link to a victim folder: the copies under it are
    failed (ScopeError), the victim is untouched, and the purge returns."""
    import threading

    root = tmp_path / "loc"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "last.bin").write_bytes(b"victim")
    store = open_store(root.as_uri())
    for i in range(3000):
        store.put(f"a/{i:04d}.bin", [b"x"])
    store.put("z/last.bin", [b"x"])
    entries = list(store.inventory())
    assert len(entries) == 3001 and entries[-1].key == "z/last.bin"
    swapped = threading.Event()

    def attacker() -> None:
        while (root / "a" / "0000.bin").exists():
            pass
        (root / "z" / "last.bin").unlink()
        (root / "z").rmdir()
        (root / "z").symlink_to(victim)
        swapped.set()

    thread = threading.Thread(target=attacker)
    thread.start()
    result = store.purge(entries)
    thread.join()
    assert swapped.is_set()
    assert [f.entry.key for f in result.failed] == ["z/last.bin"], result.failed[:3]
    assert result.failed[0].code == "ScopeError"
    assert len(result.deleted) == 3000
    assert (victim / "last.bin").read_bytes() == b"victim"
