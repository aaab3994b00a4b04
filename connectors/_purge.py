"""The batch-purge skeleton of the object stores, with the one contract every backend keeps
(sundown.store.Inventory.purge; pinned by tests/conformance/test_purge_contract.py):

- Everything is checked before the first request (the connector's own checks raise then, and
  nothing has been deleted).
- Once a request has been sent, ``purge`` never raises for a backend failure: every listed copy
  ends in exactly one of ``deleted``, ``held`` and ``failed``, read from its own per-item answer.
- A batch request that fails as a whole (refused, unavailable after the SDK's retries, an
  answer that cannot be read or does not match the request) marks every copy of that batch
  failed with the reason, and stops the purge: no further request is sent (requests already in
  flight finish and their answers are read), and every copy not sent is failed ``NotSent``.
  So a purge that meets anything unexpected stops, and says how far it got, instead of
  deleting on; the flow then stops before journaling the batch (flows/_execute.py).
- Per-item refusals (a hold -> ``held``; a policy, a bad version id -> ``failed``) do not stop
  the purge: each is that copy's own answer, and the flow decides what it means.

A connector cuts its copies into batches at its API's limit, sends one batch with ``request``
(which returns the per-item outcome, or raises :class:`BatchFailed`), and, where a purge has
phases (Azure: versions and snapshots before base blobs), runs each phase through the same
:class:`PurgeRun`, so that a failure in one phase stops the next.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from sundown.store import Entry, PurgeFailure, PurgeResult

T = TypeVar("T")

NOT_SENT = "NotSent"


@dataclass
class BatchFailed(Exception):
    """One batch request failed as a whole: nothing is known about its items. ``code`` is the
    backend's error code (``AccessDenied``, ``Forbidden``, ``AuthorizationPermissionMismatch``,
    ``BatchMismatch``, ...), ``message`` says what happened; neither holds a secret."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class PurgeRun(Generic[T]):
    """One purge: its batches, its result and whether it has stopped. See the module
    docstring. ``entry`` gives the inventory entry of one of the connector's items."""

    def __init__(
        self,
        entry: Callable[[T], Entry],
        *,
        concurrency: int = 1,
        thread_name: str = "purge",
    ) -> None:
        self.result = PurgeResult()
        self.stopped: BatchFailed | None = None
        self._entry = entry
        self._concurrency = concurrency
        self._thread_name = thread_name

    def run(
        self, items: Sequence[T], size: int, request: Callable[[Sequence[T]], PurgeResult]
    ) -> PurgeResult:
        """Send ``items`` in batches of ``size`` (in order, up to ``concurrency`` requests in
        flight); the outcome of these items, also merged into :attr:`result`."""
        batches = [items[i : i + size] for i in range(0, len(items), size)]
        outcome = PurgeResult()
        if self._concurrency <= 1 or len(batches) <= 1:
            for batch in batches:
                outcome.merge(self._send(batch, request))
        else:
            outcome = self._parallel(batches, request)
        self.result.merge(outcome)
        return outcome

    def _send(
        self, batch: Sequence[T], request: Callable[[Sequence[T]], PurgeResult]
    ) -> PurgeResult:
        if self.stopped is not None:
            return self._not_sent(batch)
        try:
            return request(batch)
        except BatchFailed as exc:
            return self._failed(batch, exc)

    def _parallel(
        self, batches: list[Sequence[T]], request: Callable[[Sequence[T]], PurgeResult]
    ) -> PurgeResult:
        """Up to ``concurrency`` requests in flight, merged in order; after a whole-batch
        failure nothing more is submitted, and what is in flight finishes."""
        outcome = PurgeResult()
        queue = deque(batches)

        def call(batch: Sequence[T]) -> PurgeResult:
            try:
                return request(batch)
            except BatchFailed as exc:
                return self._failed(batch, exc)

        with ThreadPoolExecutor(self._concurrency, thread_name_prefix=self._thread_name) as pool:
            pending: deque[Future[PurgeResult]] = deque()
            while queue or pending:
                while queue and self.stopped is None and len(pending) < self._concurrency:
                    pending.append(pool.submit(call, queue.popleft()))
                if not pending:
                    break
                outcome.merge(pending.popleft().result())
        for batch in queue:
            outcome.merge(self._not_sent(batch))
        return outcome

    def _failed(self, batch: Sequence[T], exc: BatchFailed) -> PurgeResult:
        if self.stopped is None:
            self.stopped = exc
        failed = [PurgeFailure(self._entry(item), exc.code, exc.message) for item in batch]
        return PurgeResult(failed=failed, requests=1)

    def _not_sent(self, batch: Sequence[T]) -> PurgeResult:
        assert self.stopped is not None
        message = f"not sent: an earlier batch request of this purge failed ({self.stopped})"
        return PurgeResult(failed=[PurgeFailure(self._entry(i), NOT_SENT, message) for i in batch])
