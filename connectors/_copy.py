"""The streamed copy every connector falls back on when no server-side copy reaches the
destination: the bytes go through this process, from ``source.open`` to ``dest.put``.

The storage-class rule is one, with the difference between clouds as a parameter: a storage
class is never dropped silently. Each connector first checks the name against its own classes
(S3 ``GLACIER``..., GCS ``ARCHIVE``..., Azure tiers ``Hot``/``Cool``/``Cold``/``Archive``; the
file store has none), then, for a streamed copy, passes ``set_class`` only where the name means
something at the destination and the class can be set on the written object: Azure to another
Azure account (Set Blob Tier). Everywhere else (S3 or GCS to a store of another kind, anything
from a file store) a class asked for is an UnsupportedError, raised before anything is read or
written. docs/stores.md, "Copies", says which of these differences are the clouds' own.
"""

from __future__ import annotations

from collections.abc import Callable

from sundown.errors import UnsupportedError
from sundown.store import ObjectInfo, ObjectStore


def streamed_copy(
    source: ObjectStore,
    key: str,
    dest: ObjectStore,
    dest_key: str,
    *,
    version_id: str | None = None,
    storage_class: str | None = None,
    set_class: Callable[[], ObjectInfo] | None = None,
) -> ObjectInfo:
    """Copy ``key`` (``version_id``) of ``source`` to ``dest_key`` of ``dest`` through this
    process. With ``storage_class``: ``set_class`` applies it to the copy written and returns
    the copy's facts after; without ``set_class``, UnsupportedError before anything is read."""
    if storage_class is not None and set_class is None:
        raise UnsupportedError(
            f"copy from {source.url} to {dest.url}: storage class {storage_class!r} cannot be "
            "set by a streamed copy there; copy without one, then change the class at the "
            "destination"
        )
    with source.open(key, version_id) as src:
        info = dest.put(dest_key, src)
    return info if set_class is None else set_class()
