"""The inventory of one location at planning, split into key ranges listed side by side.

With ``ShardSettings.inventory_ranges`` = N > 1, each location whose store lists key ranges
(:class:`sundown.ranges.RangedInventory`: S3, GCS, Azure) is cut into at most N ranges with
bounds from a one-level delimiter walk (``key_prefixes()``, evenly spaced by
:func:`sundown.ranges.choose_bounds`; fewer ranges when the walk finds fewer names). Each range
is a planning shard: it is listed on its own thread (the listings are I/O-bound) into a spool
file in a private scratch folder (0700, removed afterwards). The parent then checks that every
asked range was listed exactly once (:func:`sundown.ranges.check_listings`) and streams the
spools, in range order, into the plan, checking every copy against its range, the key order,
and each range's count (:func:`sundown.ranges.concatenated`).

The plan is the one a plain listing makes, byte for byte (same entries, same digest): the
stores list in key order with the copies of a key in one order (sundown/ranges.py), so the
ranges' listings, concatenated, are the plain listing. A range that fails stops the plan: no
plan is written from part of a location. A store without key ranges (the file store) is listed
whole, and the run log says so.

Planning shards run in the planning task's process, not on workers: the plan is one file that
the approver approves by digest, written in one pass; a spool per range keeps memory bounded.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from sundown.errors import NotFoundError, SundownError
from sundown.ranges import (
    KeyRange,
    RangedInventory,
    RangeListing,
    check_listings,
    choose_bounds,
    concatenated,
    ranges_from_bounds,
)
from sundown.store import Entry, EntryKind, HoldState, ServerSideEncryption

from ._common import work_dir

THREADS = 8  # ranges listed at once

Lister = Callable[[RangedInventory, int, KeyRange, Path, bool], RangeListing]


def inventory_ranges(store: RangedInventory, parts: int) -> list[KeyRange]:
    """At most ``parts`` ranges covering every key, bounds from a delimiter walk of the root."""
    return ranges_from_bounds(choose_bounds(store.key_prefixes(), parts))


def list_range(
    store: RangedInventory, index: int, key_range: KeyRange, spool: Path, encryption: bool
) -> RangeListing:
    """One planning shard: every copy of ``key_range`` into the spool file ``spool``."""
    count = 0
    with spool.open("x", encoding="utf-8") as f:
        for entry in store.inventory_range(key_range, encryption=encryption):
            f.write(dump_entry(entry) + "\n")
            count += 1
    return RangeListing(index, key_range, count)


def ranged_inventory(
    url: str,
    store: RangedInventory,
    parts: int | Sequence[KeyRange],
    *,
    encryption: bool = False,
    lister: Lister = list_range,
    log: Callable[[str], None] | None = None,
) -> Iterator[Entry]:
    """Every copy of ``store``, listed in at most ``parts`` key ranges side by side, in the order
    (and with the copies) of a plain listing. The ranges are listed when the first copy is asked
    for; SundownError (IntegrityError for a range missing, repeated, not asked for, or out of
    key order) before any copy is passed on when a range fails. ``parts`` may be the ranges
    themselves."""
    ranges = inventory_ranges(store, parts) if isinstance(parts, int) else list(parts)
    with tempfile.TemporaryDirectory(prefix="ranges-", dir=work_dir("spool")) as folder:
        spools = [Path(folder) / f"{i:05d}.jsonl" for i in range(len(ranges))]
        with ThreadPoolExecutor(min(len(ranges), THREADS), thread_name_prefix="range") as pool:
            futures = [
                pool.submit(lister, store, i, r, spools[i], encryption)
                for i, r in enumerate(ranges)
            ]
            listed, failed = [], []
            for i, future in enumerate(futures):
                try:
                    listed.append(future.result())
                except NotFoundError:  # the root is gone: as a plain listing reports it
                    raise
                except Exception as exc:
                    failed.append(f"range {i + 1} {ranges[i]}: {type(exc).__name__}: {exc}")
        if failed:
            raise SundownError(
                f"{url}: {len(failed)} of {len(ranges)} key ranges could not be listed, so no "
                "plan is written (a plan is never built from part of a location): "
                + "; ".join(failed)[:2000]
            )
        ordered = check_listings(url, ranges, listed)
        if log is not None:
            log(
                f"{url}: listed in {len(ranges)} key ranges "
                f"({', '.join(str(item.count) for item in ordered)} copies)"
            )
        yield from concatenated(url, ordered, (read_spool(spools[i.index]) for i in ordered))


# --------------------------------------------------------------------------------------------
# Spool files: one Entry a line, as the store reported it (read back by the same process)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"not in a spool: {type(value).__name__}")


def dump_entry(entry: Entry) -> str:
    return json.dumps(dataclasses.asdict(entry), default=_plain)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def load_entry(line: str) -> Entry:
    d = json.loads(line)
    hold = d["hold"]
    modified = _time(d["modified"])
    assert modified is not None
    return Entry(
        **{
            **d,
            "kind": EntryKind(d["kind"]),
            "modified": modified,
            "hard_delete_at": _time(d["hard_delete_at"]),
            "hold": HoldState(**{**hold, "retain_until": _time(hold["retain_until"])}),
            "encryption": ServerSideEncryption(**d["encryption"]) if d["encryption"] else None,
        }
    )


def read_spool(path: Path) -> Iterator[Entry]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            yield load_entry(line)
