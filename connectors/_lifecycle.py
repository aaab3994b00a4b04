"""Lifecycle-rule merging shared by the GCS and Azure connectors (``purge_by: lifecycle``).

A provider's lifecycle write replaces the whole configuration, so Sundown reads it, adds or
removes only its own rules, writes it back and reads it back. Rules are compared as canonical
JSON, counted as a multiset: a foreign rule identical to one of Sundown's is kept when Sundown
removes its own (one occurrence each). S3 names rules by ``ID`` and keeps its own helpers in
``connectors/s3.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from sundown.errors import ConflictError

RETRIES = 3  # fresh read-modify-write attempts when the configuration changes under Sundown

Rules = list[dict[str, Any]]


def canonical(rule: object) -> str:
    return json.dumps(rule, sort_keys=True, separators=(",", ":"), default=str)


def count(rules: Sequence[object]) -> Counter[str]:
    return Counter(canonical(r) for r in rules)


def split(rules: Sequence[dict[str, Any]], mine: Sequence[dict[str, Any]]) -> tuple[Rules, Rules]:
    """(one occurrence of each rule of ``mine`` found in ``rules``, every other rule), both in
    ``rules``' order."""
    wanted = count(mine)
    found: Rules = []
    rest: Rules = []
    for rule in rules:
        key = canonical(rule)
        if wanted[key] > 0:
            wanted[key] -= 1
            found.append(dict(rule))
        else:
            rest.append(dict(rule))
    return found, rest


def occurrences(rules: Sequence[dict[str, Any]], mine: Sequence[dict[str, Any]]) -> Rules:
    """The rules of ``mine`` found in ``rules`` (one occurrence each)."""
    return split(rules, mine)[0]


def without(rules: Sequence[dict[str, Any]], mine: Sequence[dict[str, Any]]) -> Rules:
    """``rules`` less one occurrence of each rule of ``mine``; every other rule kept in order."""
    return split(rules, mine)[1]


def lost(
    before: Sequence[object], after: Sequence[object], expected: Sequence[object]
) -> list[str]:
    """Rules of ``before`` that ``expected`` kept and ``after`` (as read back) no longer has:
    someone else's rule gone under Sundown's write."""
    missing = count(expected) - count(after)
    kept = count(before) & count(expected)
    return sorted((missing & kept).elements())


def change_rules(
    where: str,
    read: Callable[[], tuple[Rules, Any]],
    write: Callable[[Rules, Any], bool],
    change: Callable[[Rules, Any], Rules | None],
) -> tuple[Rules, Rules]:
    """Read (rules and the provider's version token), change, write, read back.

    ``change`` returns the rules wanted, or None when there is nothing to do. ``write`` returns
    False when the provider refused it for a changed version (a precondition: start over from a
    fresh read). After the write, a foreign rule that was there before and is not after stops
    the run (ConflictError naming it); a read-back that is not what was written (a concurrent
    writer won) starts over. Returns (rules before, rules after) as read back."""
    for _ in range(RETRIES):
        before, token = read()
        wanted = change(before, token)
        if wanted is None:
            return before, before
        if not write(wanted, token):
            continue
        after, _ = read()
        gone = lost(before, after, wanted)
        if gone:
            raise ConflictError(
                f"lifecycle configuration of {where}: {len(gone)} rule(s) written by someone "
                f"else were there before Sundown's write and are gone after it (first: "
                f"{gone[0][:200]}); Sundown stops and changes nothing more: check the lifecycle "
                "rules with their owner, then re-run"
            )
        if count(after) == count(wanted):
            return before, after
    raise ConflictError(
        f"lifecycle configuration of {where} kept changing under Sundown's write ({RETRIES} "
        "attempts), or the provider did not keep what was written; nothing more was changed: "
        "re-run"
    )
