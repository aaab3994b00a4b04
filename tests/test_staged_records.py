"""The order evidence of a staged purge (connectors/_staged.py), without a server: a store of
our own whose resources live in a dict (the base class's logic, not an SDK, is under test; the
real platforms run it in tests/conformance_records and tests/flows/test_records_retirement.py).

A stage is reported only once every listed record of its kind is gone, in ``STAGES`` order
whatever order the list comes in; a delete that does not take stops the purge there, and no
later stage is reported as done."""

from __future__ import annotations

from connectors._staged import StagedRecords
from sundown.records import Location, RecordEntry, Selector


class _Platform(StagedRecords):
    STAGES = ("endpoint", "endpoint-config", "model")

    def __init__(self, names: list[str], stuck: str | None = None) -> None:
        super().__init__(Location("test", "h", 1, None, ("x",), "test://h/x"), Selector())
        self.live = set(names)
        self.stuck = stuck
        self.deleted: list[str] = []

    def _current(self) -> list[RecordEntry]:
        return [RecordEntry(i) for i in sorted(self.live)]

    def _exists(self, kind: str, name: str) -> bool:
        return f"{kind}:{name}" in self.live

    def _delete(self, kind: str, name: str) -> bool:
        ident = f"{kind}:{name}"
        if ident not in self.live:
            return False
        self.deleted.append(ident)
        if ident != self.stuck:
            self.live.discard(ident)
        return True


NAMES = ["model:a", "endpoint-config:a", "endpoint:a", "endpoint:b", "model:b"]


def test_stages_follow_the_dependency_order_not_the_listing_order() -> None:
    store = _Platform(NAMES)
    result = store.purge([RecordEntry(i) for i in NAMES], batch_size=2)
    assert [(s.kind, s.deleted, s.absent) for s in result.stages] == [
        ("endpoint", 2, 0), ("endpoint-config", 1, 0), ("model", 2, 0)]  # fmt: skip
    times = [s.finished_at for s in result.stages]
    assert times == sorted(times)
    assert [i.partition(":")[0] for i in store.deleted] == [
        "endpoint", "endpoint", "endpoint-config", "model", "model"]  # fmt: skip


def test_an_endpoint_that_stays_stops_the_purge_and_no_later_stage_is_reported() -> None:
    store = _Platform(NAMES, stuck="endpoint:b")
    result = store.purge([RecordEntry(i) for i in NAMES])
    assert result.stopped and [f.id for f in result.failed] == ["endpoint:b"]
    assert result.stages == []  # the endpoint stage never finished
    assert store.live == {"endpoint:b", "endpoint-config:a", "model:a", "model:b"}


def test_a_rerun_reports_the_records_already_gone_as_absent_in_their_stage() -> None:
    store = _Platform(NAMES)
    store.live -= {"endpoint:a", "endpoint:b"}  # an earlier attempt deleted them
    result = store.purge([RecordEntry(i) for i in NAMES])
    assert [(s.kind, s.deleted, s.absent) for s in result.stages] == [
        ("endpoint", 0, 2), ("endpoint-config", 1, 0), ("model", 2, 0)]  # fmt: skip
