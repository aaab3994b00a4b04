"""The retirement lease (flows/lease.py): one run at a time, a crashed run's lease expires, a run
that lost its lease stops. On the file store and on S3 (moto), whose create-only writes it uses."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from flows.lease import SystemLease, check_held, current, lease_prefix
from sundown import registry
from sundown.errors import ConflictError
from sundown.store import ObjectStore

SYSTEM = "sys-lease"
LEASE = 3  # seconds: long enough that a loaded machine does not expire it between two lines


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return registry.open_store((tmp_path / "evidence").as_uri())
    request.getfixturevalue("moto_env")
    bucket = "lease-" + uuid.uuid4().hex[:10]
    boto3.client("s3").create_bucket(Bucket=bucket)
    return registry.open_store(f"s3://{bucket}/evidence")


def epochs(store: ObjectStore) -> list[str]:
    return [info.key.rsplit("/", 1)[-1] for info in store.list(lease_prefix(SYSTEM))]


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_run_is_refused_while_the_first_holds_the_lease(store: ObjectStore) -> None:
    first = SystemLease(store, SYSTEM, 60, "decommission").acquire()
    written = epochs(store)
    second = SystemLease(store, SYSTEM, 60, "decommission")
    with pytest.raises(ConflictError, match="in progress in another run") as refused:
        second.acquire()
    assert first.holder in str(refused.value) and "re-run after" in str(refused.value)
    assert epochs(store) == written  # the refused run wrote nothing
    first.check("purging")  # still held
    check_held(store, SYSTEM, first.run, "a batch")
    with pytest.raises(ConflictError, match="no longer leased"):
        check_held(store, SYSTEM, second.run, "a batch")
    # released when the first run ends (completed or failed): the next run takes it at once
    first.release()
    last = current(store, SYSTEM)
    assert last is not None and last.released and last.run == first.run
    with pytest.raises(ConflictError, match="no longer leased"):
        check_held(store, SYSTEM, first.run, "a batch")
    with second.acquire():
        check_held(store, SYSTEM, second.run, "a batch")
    last = current(store, SYSTEM)
    assert last is not None and last.released and last.run == second.run


def test_a_crashed_runs_lease_expires_and_it_could_no_longer_act(store: ObjectStore) -> None:
    crashed = SystemLease(store, SYSTEM, LEASE, "decommission").acquire()
    crashed._stop.set()  # what a SIGKILL does to the renewals: none after this
    assert crashed._thread is not None
    crashed._thread.join()
    successor = SystemLease(store, SYSTEM, LEASE, "decommission")
    with pytest.raises(ConflictError, match="in progress"):
        successor.acquire()
    time.sleep(LEASE + 0.1)
    with successor.acquire():
        check_held(store, SYSTEM, successor.run, "a batch")
        # had the crashed run only been frozen, it would stop before its next destructive step
        with pytest.raises(ConflictError, match="could not renew its lease"):
            crashed.check("destroying the keys")


def test_the_holder_renews_and_stops_once_another_run_took_its_next_epoch(
    store: ObjectStore,
) -> None:
    holder = SystemLease(store, SYSTEM, LEASE, "decommission").acquire()
    start = holder._epoch
    wait_for(lambda: holder._epoch >= start + 2)  # renewed twice: a record every third of LEASE
    holder.check("purging")
    # another run writes the holder's next epoch first (as after a partition longer than the
    # lease): the holder's renewal meets it, and the holder stops
    intruder = SystemLease(store, SYSTEM, 60, "decommission")
    while not intruder._write(holder._epoch + 1):  # lost a race with a renewal: try the next
        pass
    wait_for(lambda: holder._lost is not None)
    with pytest.raises(ConflictError, match=r"lost the lease .* stops before destroying the keys"):
        holder.check("destroying the keys")
    holder.release()  # writes nothing over the intruder's record
    last = current(store, SYSTEM)
    assert last is not None and last.run == intruder.run and not last.released


def test_two_runs_racing_for_one_epoch_get_one_lease(store: ObjectStore) -> None:
    a = SystemLease(store, SYSTEM, 60, "decommission")
    b = SystemLease(store, SYSTEM, 60, "retention")
    assert a._write(1)
    assert not b._write(1)  # the create-only write refuses the loser
    assert b._lost is not None and b._lost.run == a.run
    assert a._write(1)  # a retried write that meets its own record is not a loss
