"""One conformance suite that every record store runs (PostgreSQL, Redis, Chroma).

Each test takes the ``record_case`` fixture, parametrized over every ``backend_*.py`` module
here; a module defines ``BACKENDS = [BackendSpec("redis", ("redis_env",), factory)]`` and
is picked up without any other edit. Real servers, started once per session by the fixtures in
tests/fixtures/ (a private PostgreSQL cluster, redis-server, ``chroma run``).

Every location a backend seeds comes with canaries beside the selector: another system's rows in
the same table and another table, ``support-bot-v2:*`` keys and the key ``support-bot`` itself,
another system's documents in the same collection and another collection. ``outside()``
snapshots them with their content, and every test that deletes asserts the snapshot unchanged.
Tests decide what to expect from the store's declared capabilities, never from its type.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sundown import registry
from sundown.records import RecordStore


@dataclass
class Seeded:
    """A fresh location: its URL and selector, the identifiers in scope, and identifiers that
    exist outside the selector on the same server and that this connector could address."""

    url: str
    selector: dict[str, Any] | None
    ids: list[str]
    foreign_ids: list[str]  # exist beside the selector (another system's rows, keys, documents)
    canary_text: str  # a string written inside every in-scope record
    names: dict[str, str] = field(default_factory=dict)  # the backend's own (table, prefix...)


class RecordBackend:
    name: str = "?"

    def seed(self, n: int, *, whole: bool = False) -> Seeded:
        """A fresh location with ``n`` records in scope (each holding ``canary_text``) and
        canaries beside it; ``whole``: the selector takes the whole table or collection."""
        raise NotImplementedError

    def add_in_scope(self, seeded: Seeded) -> str:
        """Write one more record the selector matches (as the system would); its id."""
        raise NotImplementedError

    def outside(self, seeded: Seeded) -> object:
        """A comparable snapshot, with content, of everything outside the selector that this
        backend created for ``seeded`` (canaries)."""
        raise NotImplementedError


S = TypeVar("S")


class ServerBackend(RecordBackend, Generic[S]):
    """A backend on one of the session's servers (tests/fixtures/), kept as ``server``."""

    def __init__(self, server: S) -> None:
        self.server = server


@dataclass
class RecordCase:
    backend: RecordBackend

    @property
    def name(self) -> str:
        return self.backend.name

    def open(self, seeded: Seeded) -> RecordStore:
        """The store, opened as Sundown opens it (through the registry)."""
        return registry.open_record_store(seeded.url, seeded.selector)


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"
