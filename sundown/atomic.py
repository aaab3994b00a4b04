"""Atomic local file writes: a temporary file beside the target, fsync, then rename.

Readers see the old file or the whole new one, never a part. ``overwrite=False`` is a create-only
write: the finished temporary file is hard-linked into place, which fails with
``FileExistsError`` if the name exists (atomic, even with several writers). Temporary files are
named ``.sundown-tmp-*`` (the file store leaves them out of listings) and removed on any failure.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

TMP_PREFIX = ".sundown-tmp-"


def fsync_dir(folder: Path) -> None:
    """Make a rename or link in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(
    path: Path, *, overwrite: bool = True, mode: int = 0o644, buffering: int = -1
) -> Iterator[BinaryIO]:
    """A file to write; on a clean exit it replaces ``path`` (or, with ``overwrite=False``,
    is created at ``path``, FileExistsError if it exists). On an exception nothing changes."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", buffering=buffering) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_atomically(
    path: Path, chunks: Iterable[bytes], *, overwrite: bool = True, mode: int = 0o644
) -> None:
    """Write ``chunks`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, overwrite=overwrite, mode=mode) as out:
        for chunk in chunks:
            out.write(chunk)
