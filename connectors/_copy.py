"""``copy`` for every object-store connector (:class:`sundown.store.Copier`): the connector's
server-side copy where it reaches the destination, else a streamed copy through this process,
from ``source.open`` to ``dest.put``.

The storage-class rule is one, with the clouds' real differences as the connector's hooks
(:class:`Copying`): a storage class is never dropped silently. The connector first checks the
name against its own classes (``_check_class``: S3 ``GLACIER``..., GCS ``ARCHIVE``..., Azure
tiers ``Hot``/``Cool``/``Cold``/``Archive``; the file store has none and checks nothing), then
copies server-side where it can (``_server_copy``: S3 to S3 on the same endpoint, GCS to any
bucket, Azure within one storage account; each into the class asked for). A streamed copy
applies a class only where the name means something at the destination and can be set on the
object written (``_class_setter``: Azure to another Azure account, by Set Blob Tier); anywhere
else a class asked for is an UnsupportedError, raised before anything is read or written.
docs/stores.md, "Copies", says which of these differences are the clouds' own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from sundown.errors import UnsupportedError
from sundown.store import ObjectInfo, ObjectStore


@dataclass(frozen=True)
class CopyJob:
    """One copy: ``key`` (``version_id``) of the source to ``dest_key`` of ``dest``, into
    ``storage_class`` (as the source connector spells it, checked) if given."""

    key: str
    dest: ObjectStore
    dest_key: str
    version_id: str | None = None
    storage_class: str | None = None


class Copying:
    """Mixin giving a connector's store :meth:`copy`; the connector overrides the hooks."""

    def copy(
        self,
        key: str,
        dest: ObjectStore,
        dest_key: str,
        *,
        version_id: str | None = None,
        storage_class: str | None = None,
    ) -> ObjectInfo:
        job = CopyJob(key, dest, dest_key, version_id, self._check_class(storage_class))
        done = self._server_copy(job)
        if done is not None:
            return done
        return streamed_copy(cast(ObjectStore, self), job, self._class_setter(job))

    def _check_class(self, name: str | None) -> str | None:
        """``name`` as this connector spells its storage class; InputError for one it does not
        have. Default: no classes of its own, nothing to check (a streamed copy refuses any)."""
        return name

    def _server_copy(self, job: CopyJob) -> ObjectInfo | None:
        """The server-side copy when this connector reaches ``job.dest`` itself, else None."""
        return None

    def _class_setter(self, job: CopyJob) -> Callable[[], ObjectInfo] | None:
        """How to give the streamed copy at ``job.dest`` its storage class, where it can be."""
        return None


def streamed_copy(
    source: ObjectStore, job: CopyJob, set_class: Callable[[], ObjectInfo] | None = None
) -> ObjectInfo:
    """Copy through this process. With ``job.storage_class``: ``set_class`` applies it to the
    copy written and returns the copy's facts after; without ``set_class``, UnsupportedError
    before anything is read."""
    if job.storage_class is not None and set_class is None:
        raise UnsupportedError(
            f"copy from {source.url} to {job.dest.url}: storage class {job.storage_class!r} "
            "cannot be set by a streamed copy there; copy without one, then change the class "
            "at the destination"
        )
    with source.open(job.key, job.version_id) as src:
        info = job.dest.put(job.dest_key, src)
    return info if set_class is None else set_class()
