"""One conformance suite that every object store runs.

Each test takes the ``store_case`` fixture, which is parametrized over every backend found in
this package: a module ``tests/conformance/backend_<name>.py`` that defines

    BACKENDS = [BackendSpec("gs-fake", ("fake_gcs_env",), FakeGcsBackend)]

is picked up by ``conftest.py`` without any other edit. ``fixtures`` names the pytest fixtures the
backend needs (a server, a per-test environment); their values are passed to ``factory``, which
returns a :class:`StoreBackend`. The pytest id of each case is the backend's name, so
``pytest tests/conformance -k s3`` runs one backend.

Tests decide what to expect from the store's declared capabilities, never from the backend's
type. Where an emulator lacks a behaviour its cloud has, the backend lists it in ``gaps``
(feature -> reason) and the affected test calls :meth:`StoreCase.gap`, which marks it xfail with
that reason; each gap is also listed in docs/known-gaps.md. Features named in ``gaps``:

- ``versioning``: the location keeps old versions / generations and inventory reports them
- ``object_lock``: legal holds block deletion and inventory reports them
- ``retention``: retention (mode and date) blocks deletion and inventory reports it
- ``delete_version``: one chosen version can be deleted
- ``batch_delete``: purge sends many versions per request
- ``soft_delete``: a soft-delete window can be configured and is reported
- ``archive_tier``: copy into an archive storage class
- ``conditional_create``: create-only writes are enforced (``conditional_create_large``: also
  on the multipart / resumable / block path)
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sundown import registry
from sundown.store import Capability, Entry, EntryKind, ObjectStore
from tests.fixtures.http_log import batch_item_counts, record_requests
from tests.reliability.faultproxy import Answer, FaultProxy, Flavour, Request


class StoreBackend:
    """What the suite needs from one backend beyond the store protocol: fresh locations and a
    few administrative actions an operator (not Sundown) would take. Override what the backend
    has; the defaults say "not available here"."""

    name: str = "?"
    batch_limit: int | None = None  # versions per purge request (S3 1000, GCS 100, Azure 256)
    purge_concurrency: int = 1  # purge requests in flight at once (S3 4)
    refusal: Refusal | None = None  # how the service refuses a whole batch delete (HTTP 403)
    endpoint_variable: str | None = None  # what points the connector at its server
    archive_class: str | None = None  # a storage class copy() may target (ARCHIVE_TIER)
    soft_delete_seconds: int | None = None  # window set on locations made with soft_delete=True
    gaps: Mapping[str, str] = {}

    def new_location(
        self, *, versioning: bool = False, object_lock: bool = False, soft_delete: bool = False
    ) -> str:
        """URL of a fresh, empty location (a new bucket or container, a new folder) with as many
        of the asked features switched on as the backend has."""
        raise NotImplementedError

    def set_legal_hold(
        self, store: ObjectStore, key: str, version_id: str | None, on: bool
    ) -> None:
        raise NotImplementedError(f"{self.name}: no legal holds")

    def set_retention(
        self, store: ObjectStore, key: str, version_id: str | None, mode: str, days: int
    ) -> None:
        raise NotImplementedError(f"{self.name}: no retention")

    def seed(self, store: ObjectStore, keys: Sequence[str]) -> None:
        """Create at least one copy of each key under ``store`` (for the batch tests). The default
        writes each one; a backend may do it cheaper (S3: one delete marker per key, 1000 per
        request), as long as ``inventory`` then reports exactly one copy per key."""
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key: store.put(key, iter([b"."])), keys))

    @contextlib.contextmanager
    def record_deletes(self, store: ObjectStore) -> Iterator[list[int]]:
        """Record the purge requests ``store`` sends while the block runs: the list gets one
        item count per delete request, counted on the wire (not from the purge result)."""
        raise NotImplementedError(f"{self.name}: cannot count delete requests")
        yield []

    def put_raw(self, url: str, name: str, data: bytes) -> None:
        """Write an object named exactly ``name`` in the bucket or container of ``url`` with the
        provider's own client, as an operator or the AWS console would (folder markers
        ``dir/``, ``a//b``: names Sundown's ``put`` refuses). NotImplementedError where the
        store cannot hold such a name (a file system)."""
        raise NotImplementedError(f"{self.name}: no object names outside file-system paths")

    def refusing_batches(self, url: str) -> contextlib.AbstractContextManager[Refusing]:
        """The store at ``url`` opened through a proxy that answers every batch delete request
        with the service's own refusal (HTTP 403, as a policy denying deletes does) and passes
        everything else on (see :func:`refusing`). The default points ``endpoint_variable`` at
        the proxy."""
        variable = self.endpoint_variable
        if self.refusal is None or variable is None:
            raise NotImplementedError(f"{self.name}: no batch delete requests")
        upstream = os.environ[variable]
        return refusing(url, upstream, lambda proxy: {variable: proxy}, self.refusal)

    def cleanup(self) -> None:
        """Undo what a test left that would outlive the session (holds, ...)."""


@contextlib.contextmanager
def batch_deletes_on_the_wire(backend: StoreBackend, store: ObjectStore) -> Iterator[list[int]]:
    """``record_deletes`` of a store that deletes by multipart batch requests (GCS, Azure): the
    sub-requests of each batch request, counted on the wire."""
    counts: list[int] = []
    with record_requests() as sent:
        yield counts
    counts.extend(batch_item_counts(sent))


@dataclass(frozen=True)
class Refusal:
    """A service's refusal of a whole batch delete: which requests are batch deletes, the
    answer (status, error body and headers as the service sends them) and the error code the
    connector reports for each copy of the batch."""

    flavour: Flavour
    is_batch: Callable[[Request], bool]
    answer: Answer
    code: str


@dataclass
class Refusing:
    """A store whose batch deletes a proxy refuses, and the requests it refused (in order)."""

    store: ObjectStore
    refused: list[str]


@contextlib.contextmanager
def refusing(
    url: str, upstream: str, env: Callable[[str], Mapping[str, str]], refusal: Refusal
) -> Iterator[Refusing]:
    """Open ``url`` with the environment ``env(proxy_url)`` pointing the connector at a
    :class:`~tests.reliability.faultproxy.FaultProxy` in front of ``upstream`` that injects no
    random fault and answers each batch delete with ``refusal.answer``."""
    refused: list[str] = []

    def rule(request: Request) -> Answer | None:
        if not refusal.is_batch(request):
            return None
        refused.append(f"{request.method} {request.path}")
        return refusal.answer

    name = f"{refusal.flavour} refusing batch deletes"
    proxy = FaultProxy(upstream, refusal.flavour, rate=0.0, name=name)
    proxy.rules.append(rule)
    with proxy, pytest.MonkeyPatch.context() as patch:
        for name, value in env(proxy.url).items():
            patch.setenv(name, value)
        yield Refusing(registry.open_store(url), refused)


@dataclass
class StoreCase:
    """One backend as a test sees it."""

    backend: StoreBackend
    tmp_path: Path
    _opened: list[ObjectStore] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.backend.name

    def location(
        self, *, versioning: bool = False, object_lock: bool = False, soft_delete: bool = False
    ) -> str:
        return self.backend.new_location(
            versioning=versioning, object_lock=object_lock, soft_delete=soft_delete
        )

    def open(self, url: str) -> ObjectStore:
        """The store at ``url``, opened the way Sundown opens it (through the registry)."""
        store = registry.open_store(url)
        self._opened.append(store)
        return store

    def gap(self, feature: str) -> None:
        """xfail this test when the backend declares ``feature`` as an emulator gap."""
        reason = self.backend.gaps.get(feature)
        if reason:
            pytest.xfail(f"{self.name}: known emulator gap ({feature}): {reason}")

    def has(self, store: ObjectStore, capability: Capability, feature: str) -> bool:
        """Whether ``store`` declares ``capability``. When the backend lists ``feature`` as an
        emulator gap, xfail: the cloud has it and the emulator does not, whether the store
        declares it (read from settings the emulator accepts, e.g. GCS's batch endpoint) or not."""
        if capability in store.capabilities and feature not in self.backend.gaps:
            return True
        self.gap(feature)
        return False

    def put(self, store: ObjectStore, key: str, data: bytes) -> str | None:
        """Write ``data``; the version id (or ``None``)."""
        return store.put(key, iter([data])).version_id


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


Snapshot = set[tuple[str, str | None, str]]


def snapshot(entries: Sequence[Entry] | Iterator[Entry]) -> Snapshot:
    """Comparable identity of inventory entries: (key, version id, kind)."""
    return {(e.key, e.version_id, e.kind.value) for e in entries}


def kinds(entries: Sequence[Entry]) -> dict[EntryKind, int]:
    out: dict[EntryKind, int] = {}
    for e in entries:
        out[e.kind] = out.get(e.kind, 0) + 1
    return out
