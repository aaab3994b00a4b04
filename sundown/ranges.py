"""Key ranges: one location split into contiguous ranges of keys, each listed on its own.

A :class:`KeyRange` is the half-open interval ``(after, through]`` of keys relative to a store's
root, compared as Python strings, i.e. by Unicode code point, which for valid UTF-8 is the byte
order S3 and GCS list in. ``None`` is unbounded on that side. The ranges made from sorted,
distinct bounds ``b1 < ... < bn`` by :func:`ranges_from_bounds` are ``(None, b1], (b1, b2], ...,
(bn, None)``: every key lies in exactly one of them (a key equal to a bound in the range that
ends with it), whatever the key holds (folder markers ``dir/``, ``""`` for ``<root>/``, ``a//b``,
any Unicode). A range is a range of *keys*, so every version, delete marker, snapshot or upload
of one key falls in the same range.

Listing a range is the store's business (:class:`RangedInventory`): S3 starts after the lower
bound (``KeyMarker``) and stops past the upper one; GCS starts at it (``startOffset``); Azure
narrows by the bounds' common prefix (:meth:`KeyRange.common_prefix`). Every connector also
filters by :meth:`KeyRange.contains`, so a server that starts too early or lists in another
order never puts a key in two ranges (docs/stores.md, "Key ranges").

Where the bounds come from: a delimiter walk of the location (:meth:`RangedInventory.key_prefixes`,
the first level of "folders" and keys), or keys sampled from an earlier listing such as an
approved plan (:func:`bounds_from_sorted_keys`, balanced by count).

A plan is written in listing order and its digest covers that order, so an inventory split into
ranges makes the same plan as a plain listing only if the store lists in **key order**, with the
copies of one key in an order that does not depend on where pages end: the ranges' listings,
concatenated in range order, are then exactly the plain listing. :func:`key_ordered` gives a
paged listing that order; :func:`check_listings` and :func:`concatenated` check, before and
while a plan is written from ranges, that every range was listed exactly once and that the
result is in key order (a missing, repeated or foreign range stops the plan, never shortens it).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sundown.errors import InputError, IntegrityError
from sundown.store import Entry

MAX_RANGES = 10_000


@dataclass(frozen=True)
class KeyRange:
    """Keys ``k`` with ``after < k <= through`` (``None``: unbounded on that side)."""

    after: str | None = None
    through: str | None = None

    def __post_init__(self) -> None:
        for bound in (self.after, self.through):
            if bound is not None and "\x00" in bound:
                raise InputError(f"key range bound {bound!r} holds a NUL")
        if self.after is not None and self.through is not None and self.after >= self.through:
            raise InputError(f"empty key range: {self.after!r} is not before {self.through!r}")

    def contains(self, key: str) -> bool:
        if self.after is not None and key <= self.after:
            return False
        return self.through is None or key <= self.through

    def past(self, key: str) -> bool:
        """Whether ``key`` sorts after the whole range (a listing in key order may stop)."""
        return self.through is not None and key > self.through

    def common_prefix(self) -> str:
        """A prefix every key of the range starts with: the longest common prefix of both
        bounds (a string between two strings shares their common prefix); "" when unbounded."""
        if self.after is None or self.through is None:
            return ""
        n = 0
        for a, b in zip(self.after, self.through, strict=False):
            if a != b:
                break
            n += 1
        return self.after[:n]

    def __str__(self) -> str:
        lo = "start" if self.after is None else repr(self.after)
        hi = "end" if self.through is None else repr(self.through)
        return f"({lo}, {hi}]"


def ranges_from_bounds(bounds: Sequence[str]) -> list[KeyRange]:
    """The ``len(bounds) + 1`` ranges that the strictly increasing ``bounds`` cut the key space
    into (InputError for bounds out of order, repeated, or too many)."""
    if len(bounds) >= MAX_RANGES:
        raise InputError(f"{len(bounds) + 1} key ranges: at most {MAX_RANGES}")
    for a, b in itertools.pairwise(bounds):
        if not a < b:
            raise InputError(f"key range bounds out of order or repeated: {a!r}, {b!r}")
    edges: list[str | None] = [None, *bounds, None]
    return [KeyRange(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def choose_bounds(candidates: Iterable[str], parts: int) -> list[str]:
    """At most ``parts - 1`` bounds, evenly spaced among the distinct ``candidates`` (e.g. the
    prefixes of a delimiter walk): fewer ranges when there are fewer candidates."""
    if parts < 1:
        raise InputError(f"a location splits into at least 1 key range, not {parts}")
    distinct = sorted(set(candidates))
    cuts = min(parts - 1, len(distinct))
    if cuts == len(distinct):
        return distinct
    step = len(distinct) / (cuts + 1)
    picked = sorted(
        {distinct[min(len(distinct) - 1, round(step * (i + 1)) - 1)] for i in range(cuts)}
    )
    return picked


def bounds_from_sorted_keys(keys: Iterable[str], parts: int, total: int) -> list[str]:
    """Bounds that give each of ``parts`` ranges about ``total / parts`` of ``keys`` (in key
    order, repeats allowed: one per version), read in one pass; never a bound between two
    versions of one key, since a bound is a key and a range holds every version of its keys."""
    if parts < 1:
        raise InputError(f"a location splits into at least 1 key range, not {parts}")
    per = max(1, -(-total // parts))
    out: list[str] = []
    previous: str | None = None
    for seen, key in enumerate(keys, 1):
        if previous is not None and key < previous:
            raise InputError(f"keys not in order: {key!r} after {previous!r}")
        previous = key
        if seen >= per * (len(out) + 1) and len(out) < parts - 1 and (not out or key > out[-1]):
            out.append(key)
    return out


@runtime_checkable
class RangedInventory(Protocol):
    """Optional: a store that inventories one key range (docs/stores.md, "Key ranges").
    ``plans_in_ranges``: its ``inventory()`` is in key order and a range's listing starts at
    the range, so a plan may be listed in ranges (flows/plan_ranges.py)."""

    plans_in_ranges: bool

    def inventory_range(self, key_range: KeyRange, *, encryption: bool = False) -> Iterator[Entry]:
        """Every copy (as ``inventory()`` reports it; with ``encryption``, as
        ``encrypted_inventory()`` does) whose key lies in ``key_range``."""
        ...

    def key_prefixes(self) -> list[str]:
        """A delimiter walk of the root, one level: the first path segment of every key, as
        ``"name/"`` for a folder and ``"name"`` for a key, sorted (candidates for bounds)."""
        ...


# --------------------------------------------------------------------------------------------
# Listings in key order, and a location's listing put together from its ranges


def entry_order(entry: Entry) -> tuple[str, str, str]:
    """The order of copies in a key-ordered listing: by key, then kind, then version id."""
    return (entry.key, entry.kind.value, entry.version_id or "")


def key_ordered(pages: Iterable[Sequence[Entry]]) -> Iterator[Entry]:
    """The entries of a paged listing whose pages follow each other in key order (no key of a
    page sorts before a key of the page before: S3's ListObjectVersions, whose pages split each
    page into versions and delete markers) sorted by :func:`entry_order`, so that the order no
    longer depends on where pages end. Holds back only the last key of each page (its copies
    may go on in the next one). IntegrityError when a page goes back before a key passed on."""
    held: list[Entry] = []
    passed: str | None = None
    for page in pages:
        if not page:
            continue
        low = min(e.key for e in page)
        if passed is not None and low <= passed:
            raise IntegrityError(f"a listing went back from {passed!r} to {low!r}: not key order")
        held.extend(page)
        held.sort(key=entry_order)
        top = max(e.key for e in page)
        cut = bisect.bisect_left([e.key for e in held], top)
        if cut:
            passed = held[cut - 1].key
        yield from held[:cut]
        del held[:cut]
    yield from held


@dataclass(frozen=True)
class RangeListing:
    """What one range's shard reports: which of the asked ranges (``index``), its bounds as
    listed, and how many copies it found."""

    index: int
    key_range: KeyRange
    count: int


def check_listings(
    url: str, asked: Sequence[KeyRange], listed: Iterable[RangeListing]
) -> list[RangeListing]:
    """The listings in range order, once each asked range was listed exactly once with the
    bounds asked, and the asked ranges cover every key (IntegrityError naming the range that
    is missing, repeated or not asked: a plan is never built from part of a location)."""
    inner = [r.through for r in asked[:-1]]
    if (
        not asked
        or None in inner
        or asked != ranges_from_bounds([b for b in inner if b is not None])
    ):
        raise IntegrityError(f"{url}: the key ranges asked for do not cover every key")
    by_index: dict[int, RangeListing] = {}
    for item in listed:
        if not 0 <= item.index < len(asked) or item.key_range != asked[item.index]:
            raise IntegrityError(
                f"{url}: a shard listed key range {item.key_range} as number {item.index + 1}, "
                "which was not asked for"
            )
        if item.index in by_index:
            raise IntegrityError(
                f"{url}: key range {item.index + 1} {item.key_range} was listed twice"
            )
        by_index[item.index] = item
    missing = [f"{i + 1} {r}" for i, r in enumerate(asked) if i not in by_index]
    if missing:
        raise IntegrityError(
            f"{url}: key range(s) {', '.join(missing)} were not listed; the plan would miss "
            "their copies, so none is written"
        )
    return [by_index[i] for i in range(len(asked))]


def concatenated(
    url: str, listings: Sequence[RangeListing], parts: Iterable[Iterable[Entry]]
) -> Iterator[Entry]:
    """The copies of ``listings``' ranges (from :func:`check_listings`), one part per range,
    as one listing: every copy in its range, keys never going back, each range's count as its
    shard reported it (IntegrityError otherwise: stop before a plan is finished)."""
    previous: str | None = None
    for n, (item, part) in enumerate(itertools.zip_longest(listings, parts)):
        if item is None or part is None:
            raise IntegrityError(f"{url}: {n} key range listings for {len(listings)} ranges")
        count = 0
        for entry in part:
            if not item.key_range.contains(entry.key):
                raise IntegrityError(
                    f"{url}: key range {item.index + 1} {item.key_range} holds {entry.key!r}"
                )
            if previous is not None and entry.key < previous:
                raise IntegrityError(
                    f"{url}: key range {item.index + 1} lists {entry.key!r} after "
                    f"{previous!r}: the store does not list in key order"
                )
            previous = entry.key
            count += 1
            yield entry
        if count != item.count:
            raise IntegrityError(
                f"{url}: key range {item.index + 1} {item.key_range} holds {count} copies, "
                f"its shard listed {item.count}"
            )
