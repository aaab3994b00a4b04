"""The journal of a retirement: one create-only record per completed step, in the evidence store.

Layout under the evidence location (``<evidence>/decommissions/<system>/<plan hex>/``)::

    plan.jsonl                     the approved plan file (its SHA-256 is the plan digest)
    journal/000-approved.json      who approved, when, the spec digest, execution start
    journal/archive-L-B.json       archive batch B of location L done (counts)
    journal/purge-L-B.json         purge batch B of location L done (counts, held, failed)
    journal/key-ROLE.json          key destroyed (the destruction evidence)
    journal/credential-N.json      credential N revoked (the revocation evidence)
    journal/verified.json          re-listing, key and credential checks
    journal/certified.json         certificate id, digest, URLs, ledger sequence
    deletion-manifest.jsonl, certificate.dsse.json, certificate.md, certificate.pdf

Records are written with ``put(if_absent=True)``: a step recorded once is never recorded again,
even by two workers at once. A re-run reads the journal and skips every recorded step, so a crash
halfway never repeats a destructive step and never issues a second certificate for one plan.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sundown.errors import ConflictError, IntegrityError, NotFoundError
from sundown.store import ObjectStore

from ._common import object_url

ROOT = "decommissions"
APPROVED = "000-approved"
VERIFIED = "verified"
CERTIFIED = "certified"


def _hex(plan_digest: str) -> str:
    return plan_digest.removeprefix("sha256:")


class Journal:
    """The step records of one plan of one system."""

    def __init__(
        self, store: ObjectStore, system: str, plan_digest: str, *, root: str = ROOT
    ) -> None:
        self.store = store
        self.system = system
        self.plan_digest = plan_digest
        self.prefix = f"{root}/{system}/{_hex(plan_digest)}"
        self._cache: dict[str, dict[str, Any]] | None = None

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def url(self, name: str) -> str:
        return object_url(self.store, self.key(name))

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._cache is None:
            records: dict[str, dict[str, Any]] = {}
            for info in self.store.list(f"{self.prefix}/journal"):
                name = info.key.rsplit("/", 1)[-1].removesuffix(".json")
                records[name] = self._read(info.key)
            self._cache = records
        return self._cache

    def _read(self, key: str) -> dict[str, Any]:
        with self.store.open(key) as f:
            data = f.read()
        try:
            record = json.loads(data)
        except ValueError:
            raise IntegrityError(
                f"journal record {object_url(self.store, key)} is not JSON"
            ) from None
        if not isinstance(record, dict) or record.get("plan_digest") != self.plan_digest:
            raise IntegrityError(
                f"journal record {object_url(self.store, key)} does not belong to plan "
                f"{self.plan_digest}"
            )
        return record

    def get(self, step: str) -> dict[str, Any] | None:
        return self._load().get(step)

    def done(self, step: str) -> bool:
        return step in self._load()

    def record(self, step: str, data: dict[str, Any]) -> dict[str, Any]:
        """Record a completed step (create-only). If it was recorded already (another worker, or
        a run that crashed after writing it), the existing record wins and is returned."""
        record = {
            "step": step,
            "plan_digest": self.plan_digest,
            "time": datetime.now(UTC).isoformat(),
            "data": data,
        }
        key = self.key(f"journal/{step}.json")
        body = (json.dumps(record, sort_keys=True, indent=1) + "\n").encode()
        try:
            self.store.put(key, [body], if_absent=True)
        except ConflictError:
            record = self._read(key)
        self._load()[step] = record
        return record

    def steps(self, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, record in sorted(self._load().items()):
            if name.startswith(prefix):
                yield name, record

    def put_file(self, name: str, chunks: Iterable[bytes]) -> str:
        """Write an evidence file create-only; an existing one is kept (resume)."""
        with contextlib.suppress(ConflictError):
            self.store.put(self.key(name), chunks, if_absent=True)
        return self.url(name)

    def exists(self, name: str) -> bool:
        try:
            self.store.head(self.key(name))
        except NotFoundError:
            return False
        return True

    def iter_file(self, name: str) -> Iterator[bytes]:
        """The chunks of an evidence file (NotFoundError if absent)."""
        with self.store.open(self.key(name)) as f:
            while chunk := f.read(1024 * 1024):
                yield chunk

    def read_file(self, name: str) -> bytes | None:
        try:
            with self.store.open(self.key(name)) as f:
                return bytes(f.read())
        except NotFoundError:
            return None


def journals_of(store: ObjectStore, system: str) -> list[Journal]:
    """Every plan of ``system`` that has a journal (was approved), oldest listing order."""
    digests: list[str] = []
    for info in store.list(f"{ROOT}/{system}"):
        parts = info.key.split("/")
        if len(parts) >= 5 and parts[3] == "journal" and parts[4] == f"{APPROVED}.json":
            digests.append("sha256:" + parts[2])
    return [Journal(store, system, d) for d in digests]
