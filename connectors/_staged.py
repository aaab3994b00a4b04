"""What the ML-platform record stores share (MLflow, SageMaker, CloudWatch Logs): records that
are typed platform resources (``run:ID``, ``endpoint:NAME``, ``log-group:NAME``) deleted one API
call each, in dependency order, each delete read back before the next.

A record identifier is ``KIND:NAME``. :meth:`StagedRecords.purge`:

1. refuses a malformed list (a kind this store does not have, an identifier listed twice);
2. re-inventories and stops before any delete when the scope now holds a resource the list does
   not name (ConflictError) or a listed resource exists outside the scope (ScopeError);
3. lets the connector refuse what it must (:meth:`StagedRecords._precheck`: a resource another
   system still uses, a missing credential for a permanent delete), still before any delete;
4. deletes stage by stage in :attr:`StagedRecords.STAGES` order (an endpoint before its
   configuration before its model), and after each delete asks the platform whether the
   resource is gone; one that is not is a failure and the purge stops there (a later stage
   would delete what a live earlier one still uses). Each finished stage is reported with the
   time its last delete was read back (``RecordPurgeResult.stages``), which the retirement
   journals: the order is evidence, not only the code's intent.

Listed resources already gone count as absent (a re-run after a crash).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from sundown.errors import InputError
from sundown.records import (
    BatchResult,
    RecordEntry,
    RecordFailure,
    RecordPurgeResult,
    RecordVerification,
    ScopedRecords,
    StageDone,
    batches,
)


def split_id(ident: str) -> tuple[str, str]:
    kind, sep, name = ident.partition(":")
    if not sep or not kind or not name:
        raise InputError(f"record identifier {ident!r} is not KIND:NAME")
    return kind, name


class StagedRecords(ScopedRecords):
    """A record store whose records are typed platform resources; subclasses say how to list,
    find, delete and read back one of them."""

    STAGES: tuple[str, ...] = ()  # record kinds, in delete order

    # -- what a connector implements ------------------------------------------------------------

    def _current(self) -> list[RecordEntry]:
        """Every resource in scope now (the inventory)."""
        raise NotImplementedError

    def _exists(self, kind: str, name: str) -> bool:
        """Whether the resource exists anywhere the platform can show it (in scope or not)."""
        raise NotImplementedError

    def _delete(self, kind: str, name: str) -> bool:
        """Delete one resource; False when it was already gone."""
        raise NotImplementedError

    def _precheck(self, listed: Sequence[RecordEntry], current: Sequence[RecordEntry]) -> None:
        """Raise (nothing deleted yet) when the purge must not start."""

    def _scope_text(self) -> str:
        return self.where

    # -- the protocol ---------------------------------------------------------------------------

    def inventory(self) -> Iterator[RecordEntry]:
        yield from self._current()

    def _kinds(self, listed: Sequence[RecordEntry]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for e in listed:
            kind, name = split_id(e.id)
            if kind not in self.STAGES:
                raise InputError(
                    f"purge of {self.where}: {e.id!r} is not a record of this store (kinds: "
                    f"{', '.join(self.STAGES)})"
                )
            out.append((kind, name))
        return out

    def purge(self, entries: Sequence[RecordEntry], *, batch_size: int = 500) -> RecordPurgeResult:
        listed = self.checked_input(entries, batch_size)
        self._kinds(listed)
        current = self._current()
        now = {e.id for e in current}
        self.refuse_unlisted((e.id for e in current), (e.id for e in listed))
        missing = [e for e in listed if e.id not in now]
        outside = [e.id for e in missing if self._exists(*split_id(e.id))]
        self.refuse_outside(outside, self._scope_text())
        self._precheck(listed, current)
        absent = {e.id for e in missing}
        ordered = sorted(listed, key=lambda e: self.STAGES.index(split_id(e.id)[0]))
        result = RecordPurgeResult()
        left = Counter(split_id(e.id)[0] for e in ordered)  # per kind, not yet done
        deleted_of: Counter[str] = Counter()
        absent_of: Counter[str] = Counter()
        for batch in batches(ordered, batch_size):
            deleted = gone = 0
            for e in batch:
                kind, name = split_id(e.id)
                if e.id in absent or not self._delete(kind, name):
                    result.absent.append(e.id)
                    gone += 1
                    absent_of[kind] += 1
                elif self._exists(kind, name):
                    result.failed.append(
                        RecordFailure(e.id, "not_deleted", "still there after its delete")
                    )
                    result.stopped = f"{e.id} is still there after its delete: stopped"
                else:
                    result.deleted.append(e.id)
                    deleted += 1
                    deleted_of[kind] += 1
                if result.stopped:
                    break
                left[kind] -= 1
                if not left[kind]:  # the last of its kind: the stage is over, read back
                    at = datetime.now(UTC)
                    result.stages.append(StageDone(kind, deleted_of[kind], absent_of[kind], at))
            result.batches.append(BatchResult(batch[0].id, batch[-1].id, len(batch), deleted, gone))
            if result.stopped:
                break
        return result

    def verify(self, entries: Sequence[RecordEntry]) -> RecordVerification:
        remaining = sorted(e.id for e in self._current())
        present = [e.id for e in entries if self._exists(*split_id(e.id))]
        return RecordVerification(
            len(remaining), tuple(sorted(present)), False, tuple(remaining[:10])
        )

    def close(self) -> None:
        """Nothing to release: a client is made per operation."""
