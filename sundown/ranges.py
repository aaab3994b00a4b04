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
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sundown.errors import InputError
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
    """Optional: a store that inventories one key range (docs/stores.md, "Key ranges")."""

    def inventory_range(self, key_range: KeyRange) -> Iterator[Entry]:
        """Every copy (as ``inventory()`` reports it) whose key lies in ``key_range``."""
        ...

    def key_prefixes(self) -> list[str]:
        """A delimiter walk of the root, one level: the first path segment of every key, as
        ``"name/"`` for a folder and ``"name"`` for a key, sorted (candidates for bounds)."""
        ...
