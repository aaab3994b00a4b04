"""A location verified in key ranges, each range a shard (flows/ranges.py): one certificate, the
ranges' counts add up to a plain re-listing, a copy left in any one range fails the location, and
journaled ranges that differ from the ones asked for, or leave a gap, stop the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import _steps
from flows.decommission import decommission_system
from flows.ranges import check_cover, location_ranges, merge
from flows.shards import ShardResult, ShardSettings
from sundown.errors import IntegrityError
from sundown.plan import read_plan
from sundown.ranges import KeyRange
from tests.scale.systems import BigSystem, make_big_system
from tests.scale.test_shards import _approve, _journal, _params, _shard_results

COUNT = 300  # per location, 3 folders of 100 files


@pytest.fixture
def system(tmp_path: Path, prefect_api: str) -> BigSystem:
    return make_big_system(tmp_path / "sys", "ranges-a", COUNT)


def test_each_location_verified_in_three_key_ranges_makes_one_certificate(
    system: BigSystem,
) -> None:
    settings = ShardSettings(verify_ranges=3)
    result = _approve(system, settings)
    assert result.status == "complete", result.exceptions
    journal = _journal(system, result.plan_digest)
    verifies = _shard_results(journal, "verify")
    assert [(v.location, v.first_batch) for v in verifies] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)
    ]  # fmt: skip
    for loc in (0, 1):
        recorded = [v.key_range for v in verifies if v.location == loc]
        assert recorded[0] is not None and recorded[0][0] is None  # from the first key
        assert recorded[-1] is not None and recorded[-1][1] is None  # to the last
        check_cover("loc", recorded, recorded)
    assert all(v.verification is not None and v.verification.passed for v in verifies)
    cert = journal.get("verified")
    assert cert is not None
    assert all("3 key ranges" in loc["details"] for loc in cert.data["locations"])
    assert system.files("logs") == 0 and system.files("data") == 0
    assert system.canaries_intact()


def test_ranges_count_what_a_plain_listing_counts_and_a_leftover_fails(system: BigSystem) -> None:
    dry = decommission_system(_params(system, dry_run=True))
    plan = read_plan(dry.plan_path, dry.plan_digest)
    loc = plan.locations[0]
    ranges = location_ranges(plan, 0, 4)
    assert len(ranges) == 4
    plain = _steps.verify_location.fn(loc.url, [], loc.settings)
    parts = [
        _steps.verify_location.fn(loc.url, [], loc.settings, (r.after, r.through)) for r in ranges
    ]
    # nothing purged: every copy remains, each counted in exactly one range
    assert plain.remaining == COUNT
    assert [p.remaining for p in parts] == [75, 75, 75, 75]  # balanced by the sampled bounds
    merged = merge(parts)
    assert (merged.passed, merged.remaining) == (False, plain.remaining)
    # one copy left in the last range only: that range fails, and so does the location
    clean = [p.model_copy(update={"passed": True, "remaining": 0}) for p in parts[:-1]]
    assert not merge([*clean, parts[-1]]).passed


def test_journaled_ranges_must_be_the_ones_asked_and_cover_every_key() -> None:
    asked: list[tuple[str | None, str | None] | None] = [(None, "m"), ("m", None)]
    check_cover("loc", asked, asked)
    with pytest.raises(IntegrityError, match="recorded key ranges"):
        check_cover("loc", asked, [(None, "m"), ("n", None)])
    with pytest.raises(IntegrityError, match="do not cover"):
        check_cover("loc", [(None, "m"), ("n", None)], [(None, "m"), ("n", None)])
    with pytest.raises(IntegrityError, match="do not cover"):
        check_cover("loc", [(None, "m")], [(None, "m")])  # the keys after "m" never listed
    assert KeyRange("m", None).contains("n")


def test_a_verify_shard_result_records_its_range() -> None:
    assert "key_range" in ShardResult.model_fields
