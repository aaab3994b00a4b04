"""Linked locations of record stores (docs/ml-platforms.md, "How the retirement will use
these"): the object-store locations an MLflow run, a SageMaker model or endpoint configuration,
or a CloudWatch Logs export task names. At plan time each is split by the spec's object-store
locations (:func:`sundown.linked.split_by_scope`, path boundary) and recorded as a finding of
the record location that named it, so the approver sees it in the plan (its digest covers the
findings) and the certificate carries it after the purge:

- covered: inside a location of the spec, so the object-store purge lists, deletes and re-lists
  it with that location (never a delete beyond the spec); ``keeps_deleted_data`` False;
- outside: nothing deletes it; ``keeps_deleted_data`` True, which makes it an exception of the
  retirement ("deleted data retained"), never a silent pass.

The URLs were read back from the platform: untrusted, so they are only compared and shown
(truncated), never opened here."""

from __future__ import annotations

from typing import Any

from sundown.linked import LinksLocations, split_by_scope
from sundown.records import Finding, RecordCapability, RecordStore
from sundown.spec.model import SystemSpec

SETTING = "linked location"


def findings(store: RecordStore, spec: SystemSpec) -> list[Finding]:
    """One finding per object-store location the store's records name (none when the store
    does not declare :attr:`RecordCapability.LINKED`)."""
    if RecordCapability.LINKED not in store.capabilities or not isinstance(store, LinksLocations):
        return []
    scope = split_by_scope(store.linked_locations(), [ref.url for ref in spec.locations()])
    out = [
        Finding(
            SETTING,
            item.url[:500],
            False,
            f"{item.kind[:100]} named by {item.source[:200]} at {item.url[:500]}: inside the "
            f"spec's location {owner}, purged and verified with it by the object-store purge",
        )
        for item, owner in scope.covered
    ]
    out += [
        Finding(
            SETTING,
            item.url[:500],
            True,
            f"{item.kind[:100]} named by {item.source[:200]} at {item.url[:500]}: {why[:300]}; "
            "not deleted by this retirement (an exception)",
        )
        for item, why in scope.outside
    ]
    return out


def planned(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The linked-location findings of a plan's record location, carried to the certificate
    (after the purge the records that named them are gone, so they are not read again)."""
    return [f for f in found if f.get("setting") == SETTING]
