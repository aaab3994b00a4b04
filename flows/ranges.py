"""One location verified in key ranges, each range a shard (sundown/ranges.py, flows/shards.py).

With ``ShardSettings.verify_ranges`` = N > 1, the verification of each location is split into N
key ranges whose bounds are sampled from the approved plan's keys (a deterministic reservoir
sample, so a re-run of the parent makes the same ranges and finds their journaled results); each
range is re-listed by its own shard (``inventory_range`` where the store has it, else the whole
inventory filtered to the range: correct, but no faster), and the parent merges the ranges'
outcomes into the location's one verification, after checking that the journaled ranges are the
ones it asked for and that together they cover every key.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence

from sundown.errors import IntegrityError
from sundown.plan import Plan
from sundown.ranges import KeyRange, RangedInventory, bounds_from_sorted_keys, ranges_from_bounds
from sundown.store import Entry, Inventory, ObjectStore

from . import _steps
from .evidence import VerifyOutcome

SAMPLE = 10_000  # keys sampled from the plan to place the bounds
LISTED = 20  # soft-deleted copies named in a merged outcome (as _steps.SOFT_DELETE_LISTED)

Bounds = tuple[str | None, str | None]


def sample_keys(keys: Iterable[str], size: int = SAMPLE, seed: int = 17) -> list[str]:
    """A uniform sample of ``keys`` (reservoir sampling, one pass, fixed seed), sorted."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample of key names, not a secret
    out: list[str] = []
    for i, key in enumerate(keys):
        if i < size:
            out.append(key)
        else:
            j = rng.randint(0, i)
            if j < size:
                out[j] = key
    return sorted(out)


def location_ranges(plan: Plan, location: int, parts: int) -> list[KeyRange]:
    """``parts`` key ranges (fewer when the plan has fewer distinct keys) covering every key,
    each holding about the same number of the plan's copies at ``location``."""
    keys = sample_keys(
        e.key for e in _steps.iter_plan_entries(plan.path, plan.digest, location=location)
    )
    return ranges_from_bounds(bounds_from_sorted_keys(keys, parts, len(keys)))


def entries_in(store: ObjectStore, key_range: Bounds | None) -> Iterator[Entry]:
    """Every copy of ``store`` (``key_range`` None), or of the keys in that range."""
    if key_range is None:
        yield from _steps._inventory(store)
        return
    wanted = KeyRange(*key_range)
    if isinstance(store, RangedInventory):
        yield from store.inventory_range(wanted)
    elif isinstance(store, Inventory):
        yield from (e for e in store.inventory() if wanted.contains(e.key))
    else:
        yield from _steps._inventory(store)  # raises: no inventory


def check_cover(
    url: str, asked: Sequence[Bounds | None], recorded: Sequence[Bounds | None]
) -> None:
    """The journaled ranges are the ones asked for, and together they are every key."""
    if list(recorded) != list(asked):
        raise IntegrityError(
            f"{url}: the verify shards recorded key ranges {recorded}, not {asked}"
        )
    if asked == [None]:
        return
    ranges = [KeyRange(*r) for r in asked if r is not None]
    bounds = [r.through for r in ranges[:-1]]
    if (
        len(ranges) != len(asked)
        or any(b is None for b in bounds)
        or (ranges != ranges_from_bounds([b for b in bounds if b is not None]))
    ):
        raise IntegrityError(f"{url}: the verify shards' key ranges do not cover every key")


def merge(outcomes: Sequence[VerifyOutcome]) -> VerifyOutcome:
    """One location's verification from its ranges' outcomes (each range verified apart)."""
    if len(outcomes) == 1:
        return outcomes[0]
    url = outcomes[0].url
    if any(o.url != url for o in outcomes):
        raise IntegrityError(f"verify shards of {url} name other locations")
    remaining = sum(o.remaining for o in outcomes)
    failed = [f"range {i + 1}: {o.details}" for i, o in enumerate(outcomes) if not o.passed]
    held = sum(o.held_remaining for o in outcomes)
    if failed:
        details = f"{remaining} copies remain that were not held, in {len(outcomes)} key ranges: "
        details += "; ".join(failed)[:2000]
    else:
        details = f"0 copies remain except {held} held" if held else "0 copies remain"
        details += f" (re-listed in {len(outcomes)} key ranges)"
    until = [o.restorable_until for o in outcomes if o.restorable_until is not None]
    return VerifyOutcome(
        url=url,
        passed=all(o.passed for o in outcomes),
        remaining=remaining,
        held_remaining=held,
        details=details,
        verified_at=max(o.verified_at for o in outcomes),
        soft_deleted=sum(o.soft_deleted for o in outcomes),
        restorable_until=max(until) if until else None,
        soft_deleted_copies=[c for o in outcomes for c in o.soft_deleted_copies][:LISTED],
    )
