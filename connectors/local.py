"""The ``file://`` object store: the embedded default, a folder on the local filesystem.

``open_store("file:///var/lib/sundown/models/a")`` is rooted at that folder; keys are relative
paths below it (``/`` separated). Writes are atomic (temp file in the same folder, fsync, rename)
and ``put(..., if_absent=True)`` is an atomic create-only write (``link(2)`` of the finished temp
file, which fails if the name exists), which the evidence ledger relies on with several writers.

The root of a location is checked before every inventory and purge: a root that does not exist
is a NotFoundError (planning turns it into an error naming the location, unless the spec marks it
``may_be_absent``), and a root reached through a symbolic link (the folder or any ancestor) is a
ScopeError, so a link swapped in between planning and deletion cannot redirect a purge.
Symbolic links, FIFOs, sockets and device files inside a location are inventoried with their
kind (``symlink``, ``fifo``, ``socket``, ``device``), never followed or opened, and never purged;
so is a file with other hard links (``hardlink``): unlinking its name here would leave its data
readable through the others, and a retirement must not claim it gone.

What it does not have: versions, holds, soft delete, archive tiers, object metadata (``metadata``
passed to ``put`` is not stored). Deleting a file unlinks it; whether the bytes can be recovered
from the device afterwards depends on the filesystem and the device (see docs/keyring.md for the
same question about key files): a file store is sanitized by cryptographic erase of the key its
artifacts are encrypted under, not by unlinking alone.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from connectors import _copy, _streams
from sundown import store
from sundown.atomic import TMP_PREFIX, write_atomically
from sundown.errors import ConflictError, InputError, NotFoundError, ScopeError, UnsupportedError

_CHUNK = 1024 * 1024


def _path_from_url(url: str) -> Path:
    parts = urlsplit(url)
    if parts.scheme != "file":
        raise InputError(f"not a file:// URL: {url!r}")
    if parts.netloc not in ("", "localhost"):
        raise InputError(f"file:// URL with a host is not supported: {url!r}")
    if parts.query or parts.fragment:
        raise InputError(f"file:// URL must not have a query or fragment: {url!r}")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise InputError(f"file:// URL must hold an absolute path: {url!r}")
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise InputError(f"file:// URL must not contain '.' or '..' segments: {url!r}")
    return Path("/" + "/".join(segments))


class FileStore(_copy.Copying):
    """A folder as an object store. See the module docstring. ``copy`` is a streamed copy; a
    storage class is refused whatever the destination (the file store has none to name)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def url(self) -> str:
        return self._root.as_uri()

    @property
    def root(self) -> Path:
        return self._root

    @property
    def capabilities(self) -> frozenset[store.Capability]:
        return frozenset({store.Capability.CONDITIONAL_CREATE})

    def __repr__(self) -> str:
        return f"FileStore({self.url!r})"

    # -- paths ------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The file for ``key``; refuses symbolic links on the way (they could leave the root)."""
        path = self._root
        for part in store.check_key(key).split("/"):
            path = path / part
            if path.is_symlink():
                raise ScopeError(f"{key!r} in {self.url} passes a symbolic link; refusing it")
        return path

    def _info(self, key: str, st: os.stat_result) -> store.ObjectInfo:
        return store.ObjectInfo(
            key=key,
            size=st.st_size,
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    # -- ObjectStore ------------------------------------------------------------------------

    def put(
        self,
        key: str,
        data: store.PutData,
        *,
        if_absent: bool = False,
        metadata: store.Metadata | None = None,
    ) -> store.ObjectInfo:
        path = self._path(key)
        if if_absent and path.exists():
            raise ConflictError(f"{key!r} already exists in {self.url}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_atomically(path, _streams.chunks(data, _CHUNK), overwrite=not if_absent)
        except FileExistsError:
            raise ConflictError(f"{key!r} already exists in {self.url}") from None
        return self._info(key, path.stat())

    def open(self, key: str, version_id: str | None = None) -> BinaryIO:
        self._no_versions(version_id)
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"no object {key!r} in {self.url}") from None

    def head(self, key: str, version_id: str | None = None) -> store.ObjectInfo:
        self._no_versions(version_id)
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"no object {key!r} in {self.url}") from None
        if not path.is_file():
            raise NotFoundError(f"no object {key!r} in {self.url}")
        return self._info(key, st)

    def list(self, prefix: str = "") -> Iterator[store.ObjectInfo]:
        for info, kind in self._scan(prefix, temporary=False, special=False):
            if kind is store.EntryKind.OBJECT:
                yield info

    def _scan(
        self, prefix: str, *, temporary: bool, special: bool
    ) -> Iterator[tuple[store.ObjectInfo, store.EntryKind]]:
        prefix = store.check_prefix(prefix)
        start = self._root.joinpath(*prefix.split("/")) if prefix else self._root
        if not start.is_symlink():
            yield from self._walk(start, prefix, temporary, special)

    def check_root(self) -> None:
        """NotFoundError when the root folder does not exist; ScopeError when the root or one of
        its ancestors is a symbolic link (what it points to is not what the spec names and can
        change between planning and deletion) or the root is not a folder."""
        path = Path("/")
        for part in self._root.parts[1:]:
            path = path / part
            if path.is_symlink():
                try:
                    target = os.readlink(path)
                except OSError:  # replaced meanwhile: still not the folder the spec names
                    target = "?"
                raise ScopeError(
                    f"{self.url}: {path} is a symbolic link (to {target}); a location is never "
                    "reached through a symbolic link: the spec names the real path"
                )
        if not self._root.exists():
            raise NotFoundError(f"{self.url}: the folder {self._root} does not exist")
        if not self._root.is_dir():
            raise ScopeError(f"{self.url}: {self._root} is not a folder")

    def _walk(
        self, folder: Path, rel: str, temporary: bool, special: bool
    ) -> Iterator[tuple[store.ObjectInfo, store.EntryKind]]:
        """Files below ``folder`` in key order (a folder sorts as ``name/``), not following
        symbolic links, each with its kind: the temp files of unfinished writes too if
        ``temporary`` (``multipart_upload``), and, if ``special``, symbolic links, FIFOs,
        sockets and devices (never opened or followed). A file gone between the folder's
        listing and its stat (a concurrent delete, or a temp file renamed into place) is left
        out."""
        try:
            with os.scandir(folder) as it:
                entries = sorted(
                    it, key=lambda e: e.name + ("/" if e.is_dir(follow_symlinks=False) else "")
                )
        except (FileNotFoundError, NotADirectoryError):
            return
        for e in entries:
            key = f"{rel}/{e.name}" if rel else e.name
            temp = e.name.startswith(TMP_PREFIX)
            if e.is_dir(follow_symlinks=False):
                if not temp:
                    yield from self._walk(Path(e.path), key, temporary, special)
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                if temp and temporary:
                    yield self._info(key, st), store.EntryKind.MULTIPART_UPLOAD
                elif not temp and (st.st_nlink == 1 or not special):
                    yield self._info(key, st), store.EntryKind.OBJECT
                elif not temp:  # other names keep its data whatever happens to this one
                    yield self._info(key, st), store.EntryKind.HARDLINK
            elif special:
                yield self._info(key, st), _special_kind(st.st_mode)

    def delete(self, key: str, version_id: str | None = None) -> None:
        self._no_versions(version_id)
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFoundError(f"no object {key!r} in {self.url}") from None
        self._prune(path.parent)

    def _prune(self, folder: Path) -> None:
        """Remove folders left empty by a delete, up to (not including) the root."""
        while folder != self._root and self._root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _no_versions(self, version_id: str | None) -> None:
        if version_id is not None:
            raise UnsupportedError(f"{self.url} keeps no versions (asked for {version_id!r})")

    # -- Inventory --------------------------------------------------------------------------

    def inventory(self, prefix: str = "") -> Iterator[store.Entry]:
        """Every file, and every temp file a crashed write left (``.sundown-tmp-*``, which
        ``list`` hides): those are this store's incomplete uploads, kind ``multipart_upload``,
        so that a retirement deletes them too and its re-listing proves it. Symbolic links,
        FIFOs, sockets and devices are reported with their own kind (see the module
        docstring). The root is checked first (:meth:`check_root`)."""
        self.check_root()
        for info, kind in self._scan(prefix, temporary=True, special=True):
            yield store.Entry(
                key=info.key,
                version_id=None,
                kind=kind,
                size=info.size,
                modified=info.modified,
                is_latest=kind is store.EntryKind.OBJECT,
            )

    def purge(
        self, entries: Sequence[store.Entry], *, bypass_governance: bool = False
    ) -> store.PurgeResult:
        """Unlink exactly these files. A file already absent counts as deleted (as S3's
        DeleteObjects reports it); the re-listing, not this result, is the proof."""
        result = store.PurgeResult()
        self.check_root()
        for entry in entries:  # validate all first: stop before deleting anything odd
            if entry.kind in store.SPECIAL_KINDS:
                raise InputError(
                    f"{self.url}: {entry.key!r} is a {entry.kind.value}, which a retirement "
                    "never deletes or follows"
                )
            temporary = entry.key.rsplit("/", 1)[-1].startswith(TMP_PREFIX)
            kind = store.EntryKind.MULTIPART_UPLOAD if temporary else store.EntryKind.OBJECT
            if entry.kind is not kind or entry.version_id is not None:
                raise InputError(
                    f"{self.url} has only current objects and temp files of unfinished writes; "
                    f"cannot purge {entry.kind} "
                    f"{entry.key!r} version {entry.version_id!r}"
                )
            self._path(entry.key)
        for entry in entries:  # from here on every outcome is reported, never raised
            try:
                path = self._path(entry.key)
                self._unlink_nofollow(entry.key)
            except FileNotFoundError:
                pass
            except ScopeError as exc:  # a link swapped in after the checks: not deleted
                result.failed.append(store.PurgeFailure(entry, "ScopeError", str(exc)))
                continue
            except OSError as exc:
                result.failed.append(
                    store.PurgeFailure(entry, type(exc).__name__, str(exc.strerror))
                )
                continue
            result.deleted.append(entry)
            self._prune(path.parent)
        result.requests = len(entries)
        return result

    def _unlink_nofollow(self, key: str) -> None:
        """Unlink the regular file ``key``, walking from ``/`` one folder at a time, each opened
        relative to the one before with ``O_NOFOLLOW``: a symbolic link swapped in anywhere on
        the path after the checks (root, ancestors, folders below it) makes an open fail and
        never redirects the unlink. FileNotFoundError when it is gone; ScopeError when a
        component is not a folder or the file is no longer a regular file."""
        parts = [*self._root.parts[1:], *key.split("/")]
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open("/", flags)
        try:
            for part in parts[:-1]:
                try:
                    folder = os.open(part, flags, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise ScopeError(
                            f"{key!r} in {self.url}: {part!r} on its path is no longer a folder "
                            "(a symbolic link?); not deleted"
                        ) from None
                    raise
                os.close(fd)
                fd = folder
            st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise ScopeError(f"{key!r} in {self.url} is no longer a regular file; not deleted")
            os.unlink(parts[-1], dir_fd=fd)
        finally:
            os.close(fd)

    def soft_delete_policy(self) -> store.SoftDeletePolicy:
        return store.SoftDeletePolicy(None, "file store: no soft delete")

    def placement(self) -> store.Placement:
        """Provider ``local``, the host name (``socket.gethostname()``) as the account; a
        folder has no region. No request, nothing to fail."""
        return store.Placement("local", socket.gethostname() or None, None, None, "host")


def _special_kind(mode: int) -> store.EntryKind:
    if stat.S_ISLNK(mode):
        return store.EntryKind.SYMLINK
    if stat.S_ISFIFO(mode):
        return store.EntryKind.FIFO
    if stat.S_ISSOCK(mode):
        return store.EntryKind.SOCKET
    return store.EntryKind.DEVICE  # character or block device (or a kind this platform adds)


def account_of(url: str) -> str:
    """A folder belongs to this host: ``file-local``."""
    return "file-local"


def open_store(url: str) -> FileStore:
    return FileStore(_path_from_url(url))
