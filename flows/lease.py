"""One lifecycle run at a time changes a system: a lease in the evidence store.

The journal makes every step of a retirement idempotent, but it cannot tell a retirement that is
running from one that crashed: both look "approved, not certified". Without a lease a second run
would "resume" a retirement another run is executing, and both would purge, destroy keys and
revoke credentials. Other lifecycle runs must not overlap a retirement either: a deployment would
add objects the frozen plan does not hold, a rotation would issue credentials after the
retirement revoked them, a retention sweep would delete what the retirement is about to archive.
So ``decommission``, ``deploy``, ``rotate`` and ``retention`` runs take the system's one lease
(each names its purpose); ``revoke`` does not: an emergency revocation is never made to wait.

The lease is a chain of create-only records under the evidence location::

    leases/<system>/000000000001.json   {"purpose", "run", "holder", "expires", "released"...}

The record with the highest epoch is the lease's state. A run takes the lease by writing the next
epoch when the last one is released or expired; it renews by writing the next epoch every third
of the lease; it releases by writing a record with ``released: true`` when it ends (completed or
failed). Two runs that race for one epoch meet the store's create-only write: one wins, the other
stops. A crashed run stops renewing, so its lease expires after ``lease_seconds`` and the next run
takes over; until then a re-run is refused with the time to wait.

A retirement checks (``check``) before each destructive step that it still holds the lease, and
stops once it could not renew for a whole lease or found another run's record at its next epoch:
it never acts on a lease another run may hold. The shorter runs (deploy, rotate, retention) hold
it for their duration. Expiry compares wall clocks of the machines involved: they are assumed
to agree to well within a lease (NTP); the default lease is two minutes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from sundown.errors import ConflictError, IntegrityError, SundownError
from sundown.store import ObjectStore

from ._common import object_url

ROOT = "leases"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseRecord:
    epoch: int
    purpose: str
    run: str
    holder: str
    expires: datetime
    released: bool

    def live(self, now: datetime) -> bool:
        return not self.released and now < self.expires


def lease_prefix(system: str) -> str:
    return f"{ROOT}/{system}"


def _key(system: str, epoch: int) -> str:
    return f"{lease_prefix(system)}/{epoch:012d}.json"


def _read(store: ObjectStore, key: str) -> LeaseRecord:
    with store.open(key) as f:
        data = f.read()
    try:
        d = json.loads(data)
        return LeaseRecord(
            epoch=int(d["epoch"]),
            purpose=str(d["purpose"]),
            run=str(d["run"]),
            holder=str(d["holder"]),
            expires=datetime.fromisoformat(d["expires"]),
            released=bool(d["released"]),
        )
    except (ValueError, KeyError, TypeError):
        raise IntegrityError(f"lease record {object_url(store, key)} is malformed") from None


def current(store: ObjectStore, system: str) -> LeaseRecord | None:
    """The lease record with the highest epoch, or None if the system never had one."""
    last = None
    for info in store.list(lease_prefix(system)):
        last = info.key
    return None if last is None else _read(store, last)


def _holder() -> str:
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    where = f"{socket.gethostname()} pid {os.getpid()}"
    return f"flow run {run_id} on {where}" if run_id else where


class SystemLease:
    """The lease of one run on one system (see the module docstring). ``purpose`` names the run
    (``decommission``, ``deploy``, ``rotate``, ``retention``) to any run it refuses."""

    def __init__(self, store: ObjectStore, system: str, seconds: int, purpose: str) -> None:
        if seconds < 1:
            raise ValueError("a lease lasts at least one second")
        self.store = store
        self.system = system
        self.purpose = purpose
        self.seconds = seconds
        self.run = uuid.uuid4().hex
        self.holder = _holder()
        self._epoch = 0
        self._renewed = 0.0  # monotonic time at which the last written record was started
        self._lost: LeaseRecord | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the records ----------------------------------------------------------------------

    def _write(self, epoch: int, *, released: bool = False) -> bool:
        """Write our record at ``epoch``, create-only. True if it is ours (a lost answer whose
        retry met our own record counts), False if another run's record holds that epoch."""
        started = time.monotonic()
        now = datetime.now(UTC)
        record = {
            "system": self.system,
            "purpose": self.purpose,
            "epoch": epoch,
            "run": self.run,
            "holder": self.holder,
            "time": now.isoformat(),
            "expires": (now if released else now + timedelta(seconds=self.seconds)).isoformat(),
            "released": released,
        }
        body = (json.dumps(record, sort_keys=True, indent=1) + "\n").encode()
        key = _key(self.system, epoch)
        try:
            self.store.put(key, [body], if_absent=True)
        except ConflictError:
            # ours if it carries our run id, not only if it has these bytes: a renewal that
            # raised after the store had written it is written again with a new time
            found = _read(self.store, key)
            if found.run != self.run:
                self._lost = found
                return False
        self._epoch = epoch
        if not released:
            self._renewed = started
        return True

    def _refusal(self, other: LeaseRecord) -> ConflictError:
        until = other.expires.isoformat(timespec="seconds")
        return ConflictError(
            f"a {other.purpose} of {self.system!r} is in progress in another run "
            f"({other.holder}; its lease runs until {until}): this {self.purpose} stops and "
            f"changes nothing. If that run crashed, re-run after {until}"
        )

    # -- taking, keeping and giving back ---------------------------------------------------

    def acquire(self) -> SystemLease:
        """Take the lease, or ConflictError naming the run that holds it."""
        last = current(self.store, self.system)
        if last is not None and last.run != self.run and last.live(datetime.now(UTC)):
            raise self._refusal(last)
        if not self._write((last.epoch if last else 0) + 1):
            assert self._lost is not None
            raise self._refusal(self._lost)
        self._thread = threading.Thread(
            target=self._renew, name=f"sundown-lease-{self.system}", daemon=True
        )
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self._write(self._epoch + 1):
                    _log.error(
                        "the lease on %s was taken by %s",
                        self.system,
                        self._lost.holder if self._lost else "another run",
                    )
                    return
            except SundownError as exc:  # the store is unreachable: check() bounds the risk
                _log.warning("could not renew the lease on %s: %s", self.system, exc)

    def check(self, before: str) -> None:
        """ConflictError unless this run still holds the lease: called before each destructive
        step. Held means renewed within the last lease and not taken by another run."""
        if self._lost is not None:
            raise ConflictError(
                f"this {self.purpose} lost the lease on {self.system!r} to another run "
                f"({self._lost.holder}); it stops before {before}"
            )
        if time.monotonic() - self._renewed >= self.seconds:
            raise ConflictError(
                f"this {self.purpose} could not renew its lease on {self.system!r} for "
                f"{self.seconds} s (the evidence store did not answer), so another run may hold "
                f"it now; it stops before {before}"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._lost is None and self._epoch:
            try:
                self._write(self._epoch + 1, released=True)
            except SundownError as exc:  # it expires by itself
                _log.warning("could not release the lease on %s: %s", self.system, exc)

    def __enter__(self) -> SystemLease:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def check_held(store: ObjectStore, system: str, run: str, before: str) -> None:
    """For a shard (another process, maybe another machine): ConflictError unless the lease's
    latest record is the parent run's, live."""
    last = current(store, system)
    if last is None or last.run != run or not last.live(datetime.now(UTC)):
        who = "nobody" if last is None else last.holder
        raise ConflictError(
            f"{system!r} is no longer leased to the retirement that started this shard "
            f"(latest lease: {who}); the shard stops before {before}"
        )


def leased(store: ObjectStore, system: str, seconds: int, purpose: str) -> SystemLease:
    """Take the system's lease for a run of ``purpose`` (ConflictError if another run holds it);
    use as a context manager, which releases it."""
    return SystemLease(store, system, seconds, purpose).acquire()
