"""Retirement and retention plans: what is archived, purged and held, with a content digest.

:func:`build_plan` takes a :class:`~sundown.spec.model.SystemSpec`, the inventory of each of its
locations (iterables of :class:`~sundown.store.Entry`, as connectors yield them) and facts about
its keys and credentials, and writes a plan file: JSON Lines, one canonical JSON object per line
(header, then per location its entries and counts, then keys, credentials and totals). The digest
is SHA-256 over the file's bytes, computed while writing, so memory does not grow with the number
of entries: only counts are kept. :func:`read_plan` and :func:`iter_plan_entries` read a plan file
back and check it against a digest (:class:`~sundown.errors.IntegrityError` when it changed).

The digest covers decisions, not the time they were made: the same inventory and facts give the
same digest on every run, so ``sundown plan`` and a later ``sundown decommission --approve DIGEST``
agree unless something changed in between. :func:`check_approval` compares digests and refuses
expired approvals. The file format is documented in ``docs/plan.md``.

Nothing here performs I/O on stores or key services: the caller lists, the plan decides.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sundown import canonical, record_plan
from sundown.atomic import atomic_writer
from sundown.certificate import ERASABLE, Protection
from sundown.errors import InputError, IntegrityError, ScopeError
from sundown.key_use import KeyUse
from sundown.key_use import summary as key_use_summary
from sundown.keys import KeyInfo
from sundown.record_plan import (
    RECORD_LINES,
    RecordInventory,
    RecordLocationPlan,
    check_counts,
    iter_records,
    read_line,
    scope_problems,
    write_records,
)
from sundown.records import RecordEntry
from sundown.spec.model import CredentialRef, LocationRef, RetentionRule, SystemSpec
from sundown.store import (
    SPECIAL_KINDS,
    Entry,
    EntryKind,
    HoldState,
    check_entry_key,
    check_key,
    has_dot_segment,
)
from sundown.store_url import parse_store_url, urls_overlap

__all__ = [
    "PLAN_FORMAT",
    "Approval",
    "CopyProtection",
    "Counts",
    "CredentialPlan",
    "KeyPlan",
    "LocationPlan",
    "Plan",
    "PlanEntry",
    "Protection",
    "ProtectionTally",
    "StoreSettings",
    "archive_key_for",
    "build_plan",
    "check_approval",
    "check_approval_policy",
    "check_plan_approval",
    "check_plan_scope",
    "hold_decision",
    "iter_plan_entries",
    "iter_plan_records",
    "normalize_digest",
    "plan_locations",
    "read_plan",
    "retention_decision",
    "same_person",
]

PLAN_FORMAT = "sundown.plan/v1"
PlanKind = Literal["retirement", "retention"]
Disposition = Literal["purge", "held", "keep"]
FactState = Literal["present", "absent", "unknown"]
_BUFFER = 1024 * 1024


# --------------------------------------------------------------------------------------------
# Summary models (small: counts only)


class Counts(BaseModel):
    """A number of entries and their bytes."""

    model_config = ConfigDict(extra="forbid")

    count: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.count += 1
        self.bytes += size

    def merge(self, other: Counts) -> None:
        self.count += other.count
        self.bytes += other.bytes


def _kinds() -> dict[str, Counts]:
    return {k.value: Counts() for k in EntryKind}


class StoreSettings(BaseModel):
    """A location's settings, read with its inventory (so the certificate states what held when
    the copies were listed and purged, not what a policy says by certification time). Part of
    the plan file, hence of its digest: a policy switched between review and approval changes the
    digest and the approval no longer matches."""

    model_config = ConfigDict(extra="forbid")

    versioning: str = Field(description='"enabled" or "not enabled".')
    object_lock: str = Field(description='"enabled" or "none".')
    soft_delete_seconds: int | None = Field(
        default=None, description="The soft-delete window in force (None: none)."
    )
    soft_delete_source: str = Field(default="", description="Where the window was read.")
    redundancy: str | None = Field(default=None, description="Replication / redundancy setting.")
    replicas: list[str] = Field(
        default_factory=list,
        description="Copies the retirement cannot reach, each naming where it is.",
    )
    replicas_in_spec: list[str] = Field(
        default_factory=list, description="Replication destinations that are spec locations."
    )
    notes: list[str] = Field(default_factory=list, description="What could not be read.")

    @property
    def soft_delete(self) -> str:
        """The window in words, for the certificate's storage settings."""
        s = self.soft_delete_seconds
        return (
            f"{s} seconds ({self.soft_delete_source})" if s else f"none ({self.soft_delete_source})"
        )


class PlacementFound(BaseModel):
    """Where a location's data lives (NIST SP 800-88 "location": account and region), as its
    store reported it at inventory time (:class:`sundown.store.Placement`). Part of the plan file
    and its digest, like :class:`StoreSettings`: the certificate states it from here, never from
    a store asked again at certification."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    account: str | None = None
    region: str | None = None
    note: str | None = None
    account_kind: str | None = None


class ProtectionTally(BaseModel):
    """Copies of a location found with one protection (and key)."""

    model_config = ConfigDict(extra="forbid")

    protection: Protection
    key: str | None = None
    count: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class CopyProtection:
    """What protected one copy when the plan was made (decided by the caller, who can read the
    store and the keys: see ``flows._steps.Protector``). ``key`` is the KEK URI of an envelope,
    or a server-side key id; ``key_version`` the KEK version; ``note`` how it was established
    or why it is unknown."""

    protection: Protection
    key: str | None = None
    key_version: int | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.protection.value,
            "key": self.key,
            "key_version": self.key_version,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> CopyProtection:
        if d is None:  # a plan made before protection was recorded: nothing may be claimed
            return NOT_INSPECTED
        version = d["key_version"]
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise ValueError("protection key_version is not an integer")
        return cls(Protection(d["kind"]), d["key"], version, d["note"])


NOT_INSPECTED = CopyProtection(Protection.UNKNOWN, note="not inspected")


class LocationPlan(BaseModel):
    """One location: what inventory found (by kind) and what the plan does with it."""

    model_config = ConfigDict(extra="forbid")

    index: int
    url: str
    asset_class: str
    classification: str
    archive_to: str | None = Field(
        default=None, description="Archive target URL that archive_key values are relative to."
    )
    found: dict[str, Counts] = Field(default_factory=_kinds)
    archive: Counts = Field(default_factory=Counts)
    purge: Counts = Field(default_factory=Counts)
    held: Counts = Field(default_factory=Counts)
    keep: Counts = Field(default_factory=Counts, description="Not selected (retention).")
    bypass_governance: Counts = Field(
        default_factory=Counts, description="Purged by bypassing governance retention."
    )
    settings: StoreSettings | None = Field(
        default=None, description="Settings read at inventory time (None: not recorded)."
    )
    placement: PlacementFound | None = Field(
        default=None, description="Account and region read at inventory time (None: not recorded)."
    )
    root_absent: bool = Field(
        default=False,
        description="The root did not exist (allowed by may_be_absent): nothing found.",
    )
    purge_by: Literal["batch", "lifecycle"] = Field(
        default="batch",
        description="How the retirement purges the location: Sundown's batch deletes, or a "
        "lifecycle rule it adds and waits on (recorded in the plan: the digest covers it).",
    )
    protection: list[ProtectionTally] = Field(
        default_factory=list, description="Copies found, by what protected them."
    )

    def protection_summary(self) -> str:
        """e.g. ``envelope (local://k): 8; none: 3``, or ``nothing found``."""
        if not self.protection:
            return "nothing found" if not self.total_found.count else "not recorded"
        return "; ".join(
            f"{t.protection.value}" + (f" ({t.key})" if t.key else "") + f": {t.count}"
            for t in self.protection
        )

    def coverage(self) -> str:
        """e.g. ``"3 of 5 copies crypto-shreddable, 2 only logically deletable"``: the copies
        recorded under a key this retirement destroys (an envelope or the storage key) against
        the rest (erase is claimed later only if each key's destruction is verified)."""
        total = sum(t.count for t in self.protection)
        erasable = sum(t.count for t in self.protection if t.protection in ERASABLE)
        return (
            f"{erasable:,} of {total:,} copies crypto-shreddable, "
            f"{total - erasable:,} only logically deletable"
        )

    @property
    def total_found(self) -> Counts:
        out = Counts()
        for c in self.found.values():
            out.merge(c)
        return out


class KeyPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str
    role: str  # "kek" or "model_signing"
    action: Literal["destroy"] = "destroy"
    state: FactState
    versions: list[int] = Field(default_factory=list)
    # Read from the key service at planning, so fixed at approval (the plan is digest-bound).
    # True: the key service may have let a copy of the material out (a Vault transit key that
    # is exportable or allows a plaintext backup), so cryptographic erase is not claimed for
    # it. None: not applicable to this key service, or the key was already gone.
    algorithm: str | None = None
    exportable: bool | None = None
    allow_plaintext_backup: bool | None = None
    # What else the key encrypts (bucket defaults), checked at planning (sundown/key_use.py).
    use: KeyUse | None = None

    @property
    def ce_claimable(self) -> bool:
        return not self.exportable and not self.allow_plaintext_backup


def _key_warning(key: KeyPlan) -> str:
    """What the plan's reviewer must see about a key the service may have let out."""
    on = [
        n
        for n, v in (
            ("exportable", key.exportable),
            ("plaintext backup", key.allow_plaintext_backup),
        )
        if v
    ]
    if not on:
        return ""
    return f"; **{' and '.join(on)}: no cryptographic erase claimed**"


class CredentialPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    id: str
    action: str
    state: FactState


class Plan(BaseModel):
    """A plan's summary. The entries stay in the plan file (``path``)."""

    model_config = ConfigDict(extra="forbid")

    format: str = PLAN_FORMAT
    kind: PlanKind
    system: str
    owner: str
    spec_digest: str
    digest: str = Field(description="sha256:<hex> over the plan file's bytes.")
    path: str = Field(description="The plan file (JSON Lines).")
    as_of: datetime | None = Field(
        default=None, description="When holds and ages were evaluated (not part of the digest)."
    )
    allow_governance_bypass: bool = False
    follows_failed: list[str] = Field(
        default_factory=list,
        description="Certificate ids of earlier retirements of this system under the same "
        "spec whose certificates say failed: this plan takes what they left. In the header, so "
        "in the digest: a new plan never equals a failed one's (each plan has one journal).",
    )
    locations: list[LocationPlan] = Field(default_factory=list)
    keys: list[KeyPlan] = Field(default_factory=list)
    credentials: list[CredentialPlan] = Field(default_factory=list)
    records: list[RecordLocationPlan] = Field(
        default_factory=list, description="Record-store locations (sundown/record_plan.py)."
    )

    def totals(self) -> dict[str, Counts]:
        out = {n: Counts() for n in ("found", "archive", "purge", "held", "keep")}
        for loc in self.locations:
            out["found"].merge(loc.total_found)
            for n in ("archive", "purge", "held", "keep"):
                out[n].merge(getattr(loc, n))
        return out

    def to_markdown(self) -> str:
        """A table for a Prefect artifact or a terminal."""
        t = self.totals()
        rows = [
            f"# {self.kind.capitalize()} plan for `{self.system}`",
            "",
            f"Plan digest: `{self.digest}`  ",
            f"Spec digest: `{self.spec_digest}`",
            *(
                [f"Follows failed certificate(s): {', '.join(self.follows_failed)}"]
                if self.follows_failed
                else []
            ),
            "",
            "| Location | Class | Found | Archive | Purge | Held | Keep | Protection found |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for loc in self.locations:
            f = loc.total_found
            found = _fmt(f)
            if f.count == 0:
                found = "nothing found" + (" (root absent)" if loc.root_absent else "")
            rows.append(
                f"| `{loc.url}` | {loc.asset_class} | {found} | {_fmt(loc.archive)} | "
                f"{_fmt(loc.purge)} | {_fmt(loc.held)} | {_fmt(loc.keep)} | "
                f"{_cell(loc.protection_summary())} |"
            )
        rows.append(
            f"| **total** | | {_fmt(t['found'])} | {_fmt(t['archive'])} | {_fmt(t['purge'])} | "
            f"{_fmt(t['held'])} | {_fmt(t['keep'])} | |"
        )
        inspected = [loc for loc in self.locations if loc.protection]
        if inspected:
            rows += ["", "| Location | Cryptographic erase coverage |", "|---|---|"]
            rows += [f"| `{loc.url}` | {loc.coverage()} |" for loc in inspected]
        with_settings = [loc for loc in self.locations if loc.settings is not None]
        if with_settings:
            rows += [
                "",
                "| Location | Soft delete | Redundancy | Replicas this retirement does not reach |",
                "|---|---|---|---|",
            ]
            for loc in with_settings:
                st = loc.settings
                assert st is not None
                rows.append(
                    f"| `{loc.url}` | {st.soft_delete} | {st.redundancy or '-'} | "
                    f"{'; '.join(st.replicas) or 'none'} |"
                )
        rows += record_plan.markdown(self.records, _cell)
        if self.keys:
            rows += ["", "| Key | Role | State | Versions | Action |", "|---|---|---|---|---|"]
            rows += [
                f"| `{k.uri}` | {k.role} | {k.state} | {_versions(k.versions)} | {k.action}"
                f"{_key_warning(k)} |"
                for k in self.keys
            ]
            used = [k for k in self.keys if k.use is not None]
            if used:
                rows += ["", "| Key | What else it encrypts (checked at planning) |", "|---|---|"]
                rows += [f"| `{k.uri}` | {_cell(key_use_summary(k.use))} |" for k in used if k.use]
        if self.credentials:
            rows += ["", "| Credential | Id | State | Action |", "|---|---|---|---|"]
            rows += [f"| {c.kind} | `{c.id}` | {c.state} | {c.action} |" for c in self.credentials]
        return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    """A Markdown table cell: key URIs from sidecars are untrusted text."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _fmt(c: Counts) -> str:
    return f"{c.count} ({c.bytes:,} B)" if c.count else "0"


def _versions(v: list[int]) -> str:
    if not v:
        return "-"
    return f"{v[0]}..{v[-1]}" if len(v) > 1 and v == list(range(v[0], v[-1] + 1)) else str(v)


# --------------------------------------------------------------------------------------------
# Entries of the plan file


@dataclass(frozen=True)
class PlanEntry:
    """One line of the plan file that names a copy: what to do with it and why."""

    loc: int
    key: str
    version_id: str | None
    kind: EntryKind
    size: int
    modified: datetime
    is_latest: bool
    storage_class: str | None
    hold: HoldState
    disposition: Disposition
    reason: str | None = None
    archive_key: str | None = None
    bypass_governance: bool = False
    protection: CopyProtection = NOT_INSPECTED
    hard_delete_at: datetime | None = None  # soft-deleted copies: when the provider purges it

    @classmethod
    def of(cls, loc: int, entry: Entry, disposition: Disposition, **fields: Any) -> PlanEntry:
        """The plan line of inventory's ``entry`` in location ``loc``, as listed, with
        ``fields`` (``reason``, ``archive_key``, ...) added."""
        return cls(
            loc=loc, key=entry.key, version_id=entry.version_id, kind=entry.kind,
            size=entry.size, modified=entry.modified, is_latest=entry.is_latest,
            storage_class=entry.storage_class, hold=entry.hold, disposition=disposition,
            hard_delete_at=entry.hard_delete_at, **fields,
        )  # fmt: skip

    def to_entry(self) -> Entry:
        """The :class:`~sundown.store.Entry` to hand back to the connector's ``purge``."""
        return Entry(
            key=self.key,
            version_id=self.version_id,
            kind=self.kind,
            size=self.size,
            modified=self.modified,
            is_latest=self.is_latest,
            storage_class=self.storage_class,
            hold=self.hold,
            hard_delete_at=self.hard_delete_at,
        )

    def to_json(self) -> dict[str, Any]:
        h = self.hold
        extra = {"hard_delete_at": _iso(self.hard_delete_at)} if self.hard_delete_at else {}
        return {
            **extra,
            "t": "entry",
            "loc": self.loc,
            "key": self.key,
            "version_id": self.version_id,
            "kind": self.kind.value,
            "size": self.size,
            "modified": _iso(self.modified),
            "is_latest": self.is_latest,
            "storage_class": self.storage_class,
            "hold": {
                "legal_hold": h.legal_hold,
                "retention_mode": h.retention_mode,
                "retain_until": _iso(h.retain_until) if h.retain_until else None,
                "event_based_hold": h.event_based_hold,
                "temporary_hold": h.temporary_hold,
            },
            "disposition": self.disposition,
            "reason": self.reason,
            "archive_key": self.archive_key,
            "bypass_governance": self.bypass_governance,
            "protection": self.protection.to_json(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PlanEntry:
        h = d["hold"]
        return cls(
            loc=d["loc"],
            key=d["key"],
            version_id=d["version_id"],
            kind=EntryKind(d["kind"]),
            size=d["size"],
            modified=datetime.fromisoformat(d["modified"]),
            is_latest=d["is_latest"],
            storage_class=d["storage_class"],
            hold=HoldState(
                legal_hold=h["legal_hold"],
                retention_mode=h["retention_mode"],
                retain_until=datetime.fromisoformat(h["retain_until"])
                if h["retain_until"]
                else None,
                event_based_hold=h["event_based_hold"],
                temporary_hold=h["temporary_hold"],
            ),
            disposition=d["disposition"],
            reason=d["reason"],
            archive_key=d["archive_key"],
            bypass_governance=d["bypass_governance"],
            protection=CopyProtection.from_json(d.get("protection")),
            hard_delete_at=datetime.fromisoformat(d["hard_delete_at"])
            if d.get("hard_delete_at")
            else None,
        )


def _utc(t: datetime) -> datetime:
    """Aware UTC; a naive time is taken as UTC (connectors should not produce them)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _iso(t: datetime) -> str:
    return _utc(t).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# Decisions


def hold_decision(
    hold: HoldState, now: datetime, *, allow_governance_bypass: bool = False
) -> tuple[str | None, bool]:
    """(why the copy cannot be purged, or None; whether purging it needs the governance bypass).

    Legal, event-based and temporary holds always hold. COMPLIANCE (S3) and LOCKED (GCS, Azure)
    retention holds until ``retain_until``. GOVERNANCE (S3) and UNLOCKED (GCS, Azure) retention
    holds unless the spec sets ``allow_governance_bypass``. A retention whose ``retain_until`` is
    past no longer holds; one without a date holds. An unknown mode holds."""
    reasons: list[str] = []
    if hold.legal_hold:
        reasons.append("legal hold")
    if hold.event_based_hold:
        reasons.append("event-based hold")
    if hold.temporary_hold:
        reasons.append("temporary hold")
    bypass = False
    mode = (hold.retention_mode or "").upper()
    if mode and (hold.retain_until is None or _utc(hold.retain_until) > _utc(now)):
        until = (
            f" until {_iso(hold.retain_until)}" if hold.retain_until else " (no end date reported)"
        )
        if mode in ("COMPLIANCE", "LOCKED"):
            reasons.append(f"{mode.lower()} retention{until}")
        elif mode in ("GOVERNANCE", "UNLOCKED"):
            if allow_governance_bypass:
                bypass = True
            else:
                reasons.append(
                    f"{mode.lower()} retention{until}; the spec does not allow governance bypass"
                )
        else:
            reasons.append(f"unknown retention mode {mode!r}{until}")
    if reasons:
        return "; ".join(reasons), False
    return None, bypass


def retention_decision(rule: RetentionRule, entry: Entry, now: datetime) -> tuple[bool, bool]:
    """(archive, delete) for one entry under a retention rule at ``now``.

    An entry is selected when it is at least N days old (``now - modified >= N days``). Only
    current objects are archived; deletion selects every kind of copy (versions, delete markers,
    snapshots, soft-deleted objects, incomplete uploads) by its own age."""
    age = _utc(now) - _utc(entry.modified)
    archive = (
        rule.archive_after_days is not None
        and entry.kind is EntryKind.OBJECT
        and age >= timedelta(days=rule.archive_after_days)
    )
    delete = rule.delete_after_days is not None and age >= timedelta(days=rule.delete_after_days)
    return archive, delete


def archive_key_for(ref: LocationRef, key: str) -> str:
    """Where a copy of ``key`` from location ``ref`` goes, relative to the archive target:
    ``<asset class>/<scheme>/<bucket>/<prefix>/<key>`` (for ``file://``: ``.../file/<path>/<key>``).
    Distinct locations never map to the same archive key."""
    return check_key(f"{_archive_prefix(ref)}/{key}")


def _archive_prefix(ref: LocationRef, *, odd: bool = False) -> str:
    p = parse_store_url(ref.url)
    scheme = f"{p.scheme}~odd-keys" if odd else p.scheme
    return "/".join([ref.asset_class, scheme, *([p.bucket] if p.bucket else []), *p.parts])


def _archive_key(ref: LocationRef, prefix: str, key: str) -> str:
    """``<prefix>/<key>`` for a plain key. A key no file system could hold (a folder marker
    ``dir/``, ``""``, ``a//b``) goes to a namespace of its own, ``<asset class>/<scheme>~odd-keys/
    ...``, with each segment percent-encoded and an empty one written ``%``: no plain key's
    archive key can be the same (docs/stores.md)."""
    try:
        return f"{prefix}/{check_key(key)}"
    except InputError:
        pass
    from urllib.parse import quote

    escaped = "/".join(quote(part, safe="") or "%" for part in key.split("/"))
    return f"{_archive_prefix(ref, odd=True)}/{escaped}"


def plan_locations(spec: SystemSpec, kind: PlanKind = "retirement") -> list[LocationRef]:
    """The locations a plan of this kind needs an inventory of (retention: those with a rule)."""
    refs = spec.locations()
    if kind == "retention":
        refs = [r for r in refs if getattr(spec.assets, r.asset_class).retention is not None]
    return refs


# --------------------------------------------------------------------------------------------
# Building


class _HashingWriter:
    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._h = hashlib.sha256()
        self.lines = 0

    def write(self, obj: Mapping[str, Any]) -> None:
        line = canonical.dumps(obj) + b"\n"
        self._h.update(line)
        self._f.write(line)
        self.lines += 1

    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()


def build_plan(
    spec: SystemSpec,
    inventories: Mapping[str, Iterable[Entry]],
    path: str | Path,
    *,
    kind: PlanKind = "retirement",
    key_facts: Mapping[str, KeyInfo | None] | None = None,
    credential_facts: Mapping[CredentialRef, bool] | None = None,
    credentials: Sequence[CredentialRef] | None = None,
    now: datetime | None = None,
    absent_roots: Iterable[str] = (),
    protection: Mapping[str, Callable[[Entry], CopyProtection]] | None = None,
    settings: Mapping[str, StoreSettings] | None = None,
    placements: Mapping[str, PlacementFound] | None = None,
    records: Sequence[RecordInventory] | None = None,
    key_use: Mapping[str, KeyUse] | None = None,
    follows_failed: Sequence[str] = (),
) -> Plan:
    """Write the plan file at ``path`` (atomically) and return its summary.

    ``inventories`` maps each location URL of :func:`plan_locations` to its entries (keys
    relative to the location); a missing or undeclared location is an InputError / ScopeError,
    as is an invalid key. ``key_facts`` maps a key URI to its :class:`KeyInfo` (``None``: the
    key does not exist); ``credential_facts`` maps a credential to whether it still exists.
    Keys and credentials are planned for retirement only. ``absent_roots`` names locations
    whose root does not exist; each must be marked ``may_be_absent`` in the spec (its inventory
    must then be empty), and the plan records it. ``protection`` maps a location URL to a
    function that tells what protects each copy (recorded per entry, so the approved digest
    covers it); a location without one records ``unknown`` ("not inspected"). ``settings``
    maps a location URL to the settings read with its inventory, ``placements`` to the account
    and region its store reported then (both recorded in the plan file and its digest).
    ``records[i]`` is the listing of ``spec.record_locations()[i]`` (retirement plans only;
    sundown/record_plan.py). ``key_use`` maps a key URI to what its blast-radius check found
    (sundown/key_use.py)."""
    now = _utc(now or datetime.now(UTC))
    refs = plan_locations(spec, kind)
    absent: set[str] = set()
    for url in absent_roots:
        ref = spec.location(url)
        if not ref.location.may_be_absent:
            raise InputError(
                f"{ref.field}: the root of {ref.url} does not exist, and the spec does not mark "
                "the location may_be_absent (a misspelt or moved location must not be planned "
                "as empty)"
            )
        absent.add(ref.url)
    by_url: dict[str, Iterable[Entry]] = {}
    for url, entries in inventories.items():
        try:
            norm = parse_store_url(url).url
        except ValueError as exc:
            raise InputError(f"inventory for {url!r}: {exc}") from None
        spec.location(norm)  # ScopeError when undeclared
        by_url[norm] = entries
    missing = [r.url for r in refs if r.url not in by_url]
    if missing:
        raise InputError(
            f"{kind} plan for {spec.name!r}: no inventory for {', '.join(missing)} "
            "(every declared location must be listed, or the plan would miss copies)"
        )

    target = Path(path)
    plan = Plan(
        kind=kind,
        system=spec.name,
        owner=spec.owner,
        spec_digest=spec.digest(),
        digest="",
        path=str(target),
        as_of=now,
        allow_governance_bypass=spec.allow_governance_bypass,
        follows_failed=list(follows_failed),
    )
    with atomic_writer(target, buffering=_BUFFER) as f:
        w = _HashingWriter(f)
        w.write(
            {
                "t": "header",
                "format": PLAN_FORMAT,
                "kind": kind,
                "system": spec.name,
                "owner": spec.owner,
                "spec_digest": plan.spec_digest,
                "allow_governance_bypass": spec.allow_governance_bypass,
                # only when there are some: every other plan's bytes and digest stay as they were
                **({"follows_failed": plan.follows_failed} if plan.follows_failed else {}),
            }
        )
        for i, ref in enumerate(refs):
            inspect = (protection or {}).get(ref.url)
            found = _settings_for(settings, ref.url)
            placed = _settings_for(placements, ref.url)
            loc = _plan_location(
                spec, ref, i, by_url[ref.url], kind, now, w, ref.url in absent, inspect, found,
                placed,
            )  # fmt: skip
            plan.locations.append(loc)
        if kind == "retirement":
            plan.records = write_records(spec, records or [], w.write)
            plan.keys = _plan_keys(spec, key_facts or {}, key_use or {})
            creds = spec.credential_refs() if credentials is None else credentials
            plan.credentials = _plan_credentials(creds, credential_facts or {})
        for k in plan.keys:
            w.write({"t": "key", **k.model_dump(mode="json")})
        for c in plan.credentials:
            w.write({"t": "credential", **c.model_dump(mode="json")})
        w.write(
            {
                "t": "end",
                "totals": {n: c.model_dump() for n, c in plan.totals().items()},
                "lines": w.lines + 1,
            }
        )
    plan.digest = w.digest()
    return plan


def _plan_location(
    spec: SystemSpec,
    ref: LocationRef,
    index: int,
    entries: Iterable[Entry],
    kind: PlanKind,
    now: datetime,
    w: _HashingWriter,
    root_absent: bool = False,
    inspect: Callable[[Entry], CopyProtection] | None = None,
    settings: StoreSettings | None = None,
    placement: PlacementFound | None = None,
) -> LocationPlan:
    cls = getattr(spec.assets, ref.asset_class)
    rule: RetentionRule | None = cls.retention
    archives = (kind == "retirement" and cls.on_retirement == "archive") or (
        kind == "retention" and rule is not None and rule.archive_after_days is not None
    )
    loc = LocationPlan(
        index=index,
        url=ref.url,
        asset_class=ref.asset_class,
        classification=spec.classification_of(ref.asset_class),
        archive_to=spec.archive.target if archives and spec.archive else None,
        root_absent=root_absent,
        settings=settings,
        placement=placement,
        purge_by=ref.location.purge_by if kind == "retirement" else "batch",
    )
    header: dict[str, Any] = {
        "t": "location",
        "loc": index,
        "url": ref.url,
        "field": ref.field,
        "asset_class": ref.asset_class,
        "classification": loc.classification,
        "archive_to": loc.archive_to,
    }
    if settings is not None:
        header["settings"] = settings.model_dump(mode="json")
    if placement is not None:
        header["placement"] = placement.model_dump(mode="json")
    if kind == "retention" and rule is not None:
        header["rule"] = rule.model_dump()
    else:
        header["on_retirement"] = cls.on_retirement
    if root_absent:
        header["root"] = "absent"
    if loc.purge_by != "batch":
        header["purge_by"] = loc.purge_by
    w.write(header)
    archive_prefix = _archive_prefix(ref) if archives else ""
    # Plain integer tallies while streaming (hot loop); copied into the Counts models at the end.
    found = {k: [0, 0] for k in loc.found}
    t_archive, t_purge, t_held, t_keep, t_bypass = [0, 0], [0, 0], [0, 0], [0, 0], [0, 0]
    t_protection: dict[tuple[Protection, str | None], list[int]] = {}
    for entry in entries:
        if not isinstance(entry, Entry):
            raise InputError(f"inventory of {ref.url}: expected Entry, got {type(entry).__name__}")
        try:
            check_entry_key(entry.key, "/".join(parse_store_url(ref.url).parts))
        except InputError as exc:
            raise ScopeError(f"inventory of {ref.url}: {exc}; stopping before planning") from None
        dotted = has_dot_segment(entry.key)
        size = entry.size
        if not isinstance(size, int) or size < 0:
            raise InputError(f"inventory of {ref.url}: {entry.key!r} has an invalid size")
        tally = found[entry.kind.value]
        tally[0] += 1
        tally[1] += size
        if root_absent:
            raise InputError(f"inventory of {ref.url}: entries listed under an absent root")
        if entry.kind in SPECIAL_KINDS:
            # Never followed, never deleted: it remains, and the plan and certificate say so.
            why = f"{entry.kind.value} {entry.key}: not followed and not deleted; it remains"
            pe = PlanEntry(
                loc=index, key=entry.key, version_id=None, kind=entry.kind, size=size,
                modified=entry.modified, is_latest=False, storage_class=None, hold=entry.hold,
                disposition="held", reason=why,
            )  # fmt: skip
            w.write(pe.to_json())
            t_held[0] += 1
            t_held[1] += size
            continue
        if kind == "retention":
            assert rule is not None
            archive, delete = retention_decision(rule, entry, now)
        else:
            archive, delete = archives and entry.kind is EntryKind.OBJECT, True
        archive = archive and not dotted  # never read by name: stays in place, held
        if not archive and not delete:
            t_keep[0] += 1
            t_keep[1] += size
            continue
        guard = inspect(entry) if inspect is not None else NOT_INSPECTED
        tally = t_protection.setdefault((guard.protection, guard.key), [0, 0])
        tally[0] += 1
        tally[1] += size
        reason, bypass = None, False
        disposition: Disposition = "keep"
        if delete:
            reason, bypass = hold_decision(
                entry.hold, now, allow_governance_bypass=spec.allow_governance_bypass
            )
            if dotted:  # docs/stores.md: a delete by this name could resolve outside the location
                reason = "; ".join(filter(None, [reason, f"{entry.key!r}: {_DOTTED}"]))
                bypass = False
            disposition = "held" if reason else "purge"
        pe = PlanEntry.of(
            index,
            entry,
            disposition,
            reason=reason,
            archive_key=_archive_key(ref, archive_prefix, entry.key) if archive else None,
            bypass_governance=bypass,
            protection=guard,
        )
        w.write(pe.to_json())
        if archive:
            t_archive[0] += 1
            t_archive[1] += size
        target = {"purge": t_purge, "held": t_held, "keep": t_keep}[disposition]
        target[0] += 1
        target[1] += size
        if bypass and disposition == "purge":
            t_bypass[0] += 1
            t_bypass[1] += size
    loc.found = {k: Counts(count=c, bytes=b) for k, (c, b) in found.items()}
    loc.archive = Counts(count=t_archive[0], bytes=t_archive[1])
    loc.purge = Counts(count=t_purge[0], bytes=t_purge[1])
    loc.held = Counts(count=t_held[0], bytes=t_held[1])
    loc.keep = Counts(count=t_keep[0], bytes=t_keep[1])
    loc.bypass_governance = Counts(count=t_bypass[0], bytes=t_bypass[1])
    loc.protection = [
        ProtectionTally(protection=p, key=k, count=c, bytes=b)
        for (p, k), (c, b) in sorted(t_protection.items(), key=lambda i: (i[0][0], i[0][1] or ""))
    ]
    w.write({"t": "location_end", "loc": index, **_loc_counts(loc)})
    return loc


_DOTTED = (
    "key has a '.' or '..' segment: not deleted by name (a request path could resolve it "
    "outside the location); remove it with the provider's console and plan again"
)


_Found = TypeVar("_Found", StoreSettings, PlacementFound)


def _settings_for(settings: Mapping[str, _Found] | None, url: str) -> _Found | None:
    if not settings:
        return None
    for given, value in settings.items():
        if parse_store_url(given).url == url:
            return value
    return None


def _loc_counts(loc: LocationPlan) -> dict[str, Any]:
    return {
        "found": {k: c.model_dump() for k, c in loc.found.items()},
        "archive": loc.archive.model_dump(),
        "purge": loc.purge.model_dump(),
        "held": loc.held.model_dump(),
        "keep": loc.keep.model_dump(),
        "bypass_governance": loc.bypass_governance.model_dump(),
        "protection": [t.model_dump(mode="json") for t in loc.protection],
    }


def _plan_keys(
    spec: SystemSpec, facts: Mapping[str, KeyInfo | None], use: Mapping[str, KeyUse]
) -> list[KeyPlan]:
    out = []
    for uri, role in spec.keys_to_destroy():
        if uri not in facts:
            out.append(KeyPlan(uri=uri, role=role, state="unknown"))
            continue
        info = facts[uri]
        if info is None:
            out.append(KeyPlan(uri=uri, role=role, state="absent"))
        else:
            out.append(
                KeyPlan(
                    uri=uri,
                    role=role,
                    state="present",
                    versions=sorted(info.versions),
                    algorithm=info.algorithm,
                    exportable=info.exportable,
                    allow_plaintext_backup=info.allow_plaintext_backup,
                    use=use.get(uri),
                )
            )
    return out


def _plan_credentials(
    refs: Sequence[CredentialRef], facts: Mapping[CredentialRef, bool]
) -> list[CredentialPlan]:
    out = []
    for ref in refs:
        state: FactState = "unknown"
        if ref in facts:
            state = "present" if facts[ref] else "absent"
        out.append(CredentialPlan(kind=ref.kind, id=ref.id, action=ref.action, state=state))
    return out


# --------------------------------------------------------------------------------------------
# Reading back


def _lines(path: Path) -> Iterator[tuple[bytes, dict[str, Any]]]:
    try:
        f = path.open("rb", buffering=_BUFFER)
    except FileNotFoundError:
        raise InputError(f"plan file {path}: no such file") from None
    with f:
        for n, line in enumerate(f, 1):
            try:
                obj = json.loads(line)
            except ValueError:
                raise IntegrityError(f"plan file {path}: line {n} is not JSON") from None
            if not isinstance(obj, dict) or "t" not in obj or not line.endswith(b"\n"):
                raise IntegrityError(f"plan file {path}: line {n} is not a plan record")
            yield line, obj


def read_plan(path: str | Path, expected_digest: str | None = None) -> Plan:
    """The summary of a plan file, in one streaming pass. IntegrityError when the file's digest
    differs from ``expected_digest`` or the file is malformed or truncated."""
    p = Path(path)
    h = hashlib.sha256()
    plan: Plan | None = None
    ended = False
    try:
        for line, obj in _lines(p):
            h.update(line)
            t = obj["t"]
            if ended:
                raise IntegrityError(f"plan file {p}: records after the end record")
            if plan is None:
                if t != "header" or obj.get("format") != PLAN_FORMAT:
                    raise IntegrityError(f"plan file {p}: not a {PLAN_FORMAT} plan")
                plan = Plan(
                    kind=obj["kind"],
                    system=obj["system"],
                    owner=obj["owner"],
                    spec_digest=obj["spec_digest"],
                    digest="",
                    path=str(p),
                    allow_governance_bypass=obj["allow_governance_bypass"],
                    follows_failed=obj.get("follows_failed", []),
                )
            elif t == "location":
                plan.locations.append(
                    LocationPlan(
                        index=obj["loc"],
                        url=obj["url"],
                        asset_class=obj["asset_class"],
                        classification=obj["classification"],
                        archive_to=obj["archive_to"],
                        root_absent=obj.get("root") == "absent",
                        purge_by=obj.get("purge_by", "batch"),
                        settings=StoreSettings.model_validate(obj["settings"])
                        if obj.get("settings") is not None
                        else None,
                        placement=PlacementFound.model_validate(obj["placement"])
                        if obj.get("placement") is not None
                        else None,
                    )
                )
            elif t == "location_end":
                loc = plan.locations[obj["loc"]]
                loc.found = {k: Counts(**c) for k, c in obj["found"].items()}
                for n in ("archive", "purge", "held", "keep", "bypass_governance"):
                    setattr(loc, n, Counts(**obj[n]))
                loc.protection = [ProtectionTally(**t) for t in obj.get("protection", [])]
            elif t == "key":
                plan.keys.append(KeyPlan(**{k: v for k, v in obj.items() if k != "t"}))
            elif t == "credential":
                plan.credentials.append(
                    CredentialPlan(**{k: v for k, v in obj.items() if k != "t"})
                )
            elif t in RECORD_LINES:
                read_line(plan.records, obj)
            elif t == "end":
                ended = True
            elif t != "entry":
                raise IntegrityError(f"plan file {p}: unknown record type {t!r}")
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise IntegrityError(f"plan file {p}: malformed record ({type(exc).__name__})") from None
    if plan is None or not ended:
        raise IntegrityError(f"plan file {p}: truncated (no end record)")
    plan.digest = "sha256:" + h.hexdigest()
    if expected_digest is not None and not _same(plan.digest, expected_digest):
        raise IntegrityError(
            f"plan file {p} has digest {plan.digest}, not {normalize_digest(expected_digest)}: "
            "it changed after it was made"
        )
    return plan


def iter_plan_entries(
    path: str | Path, expected_digest: str, *, location: int | None = None
) -> Iterator[PlanEntry]:
    """The entries of a plan file (of one location when ``location`` is given), streamed.

    Call :func:`read_plan` with the digest first: this generator hashes again as it reads and
    raises IntegrityError at the end if the file changed since (so a batch executor must act on
    entries only after the file passed :func:`read_plan`, and treats this error as fatal)."""
    p = Path(path)
    h = hashlib.sha256()
    for line, obj in _lines(p):
        h.update(line)
        if obj["t"] == "entry" and (location is None or obj["loc"] == location):
            try:
                yield PlanEntry.from_json(obj)
            except (KeyError, TypeError, ValueError):
                raise IntegrityError(f"plan file {p}: malformed entry record") from None
    if not _same("sha256:" + h.hexdigest(), expected_digest):
        raise IntegrityError(f"plan file {p} changed while it was being read")


def iter_plan_records(path: str | Path, expected_digest: str, index: int) -> list[RecordEntry]:
    """The records of record location ``index`` of a plan file, all of them (a purge is given
    the whole list: its check for records written since is over the whole selector), once the
    file still has ``expected_digest`` and they add up to the location's summary."""
    p = Path(path)
    plan = read_plan(p, expected_digest)
    if not 0 <= index < len(plan.records):
        raise IntegrityError(f"plan file {p} has no record location {index}")
    h = hashlib.sha256()

    def lines() -> Iterator[dict[str, Any]]:
        for line, obj in _lines(p):
            h.update(line)
            yield obj

    try:
        entries = list(iter_records(lines(), index))
    except (KeyError, TypeError, ValueError):
        raise IntegrityError(f"plan file {p}: malformed record line") from None
    if not _same("sha256:" + h.hexdigest(), expected_digest):
        raise IntegrityError(f"plan file {p} changed while it was being read")
    check_counts(plan.records[index], entries)
    return entries


# --------------------------------------------------------------------------------------------
# Approval

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def normalize_digest(value: str) -> str:
    """``sha256:<64 lowercase hex>``; bare hex is accepted. InputError for anything else."""
    if not isinstance(value, str):
        raise InputError("a plan digest must be a string (sha256:<64 hex digits>)")
    v = value.strip().lower()
    if not v.startswith("sha256:"):
        v = "sha256:" + v
    if not _DIGEST.match(v):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise InputError(f"{shown!r} is not a plan digest (expected sha256:<64 hex digits>)")
    return v


def _same(a: str, b: str) -> bool:
    try:
        return hmac.compare_digest(normalize_digest(a), normalize_digest(b))
    except InputError:
        return False


def check_approval(
    plan_digest: str,
    given_digest: str,
    *,
    approved_at: datetime | None = None,
    max_age: timedelta | None = None,
    now: datetime | None = None,
) -> None:
    """InputError unless ``given_digest`` names ``plan_digest`` and the approval (made at
    ``approved_at``) is younger than ``max_age`` and not in the future.

    On a mismatch the message shows the digest given in full and only the first 12 hex digits of
    the plan's: enough to tell which plan it is, not enough to approve it without reading it."""
    expected = normalize_digest(plan_digest)
    given = normalize_digest(given_digest)
    if not hmac.compare_digest(expected, given):
        raise InputError(
            f"approval names plan digest {given}, but the plan's digest is "
            f"{expected[:19]}... : the plan changed since it was reviewed, or the digest was "
            "mistyped; review the current plan and approve its digest"
        )
    if approved_at is None:
        if max_age is not None:
            raise InputError("approval has no approval time, so its age cannot be checked")
        return
    now = _utc(now or datetime.now(UTC))
    at = _utc(approved_at)
    if at > now + timedelta(minutes=5):
        raise InputError(f"approval time {_iso(at)} is in the future (now {_iso(now)})")
    if max_age is not None and now - at > max_age:
        raise InputError(
            f"approval made at {_iso(at)} expired at {_iso(at + max_age)} (maximum age "
            f"{max_age}); approve the plan again"
        )


class Approval(BaseModel):
    """A human approval of one plan."""

    model_config = ConfigDict(extra="forbid")

    plan_digest: str = Field(description="The digest of the plan being approved (sha256:...).")
    approver: str = Field(min_length=1, max_length=200, description="Who approves (name).")
    role: str | None = Field(default=None, max_length=64, description="The approver's role.")
    approved_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    performer: str | None = Field(
        default=None,
        max_length=200,
        description="Who performs the retirement: checked against the approver (separation of "
        "duties) when given.",
    )


def same_person(a: str, b: str) -> bool:
    """Whether two names name one person for separation of duties: compared after Unicode
    NFKC normalization, ignoring case and all whitespace (``"Lee  Marchetti"`` is
    ``"lee marchetti"`` is ``"LeeMarchetti"``)."""

    def norm(name: str) -> str:
        return "".join(unicodedata.normalize("NFKC", name).split()).casefold()

    return norm(a) == norm(b)


def check_approval_policy(
    spec: SystemSpec, approver: str, role: str | None, performer: str | None
) -> None:
    """InputError unless the approver's role is one the spec's approval policy allows (when it
    lists roles) and, unless ``approval.allow_self_approval``, the approver is not the performer
    (separation of duties; ``performer`` None: not checked)."""
    roles = spec.approval.roles
    if roles and role not in roles:
        raise InputError(
            f"approver {approver!r} has role {role!r}, but the spec of "
            f"{spec.name!r} requires one of: {', '.join(roles)}"
        )
    if (
        performer is not None
        and not spec.approval.allow_self_approval
        and same_person(approver, performer)
    ):
        raise InputError(
            f"approver {approver!r} is also the performer {performer!r}: the spec of "
            f"{spec.name!r} requires separation of duties (a retirement is approved by someone "
            "other than the person who performs it)"
        )


def check_plan_approval(
    plan: Plan, approval: Approval, spec: SystemSpec, *, now: datetime | None = None
) -> None:
    """:func:`check_approval` with the spec's approval policy: the plan must belong to this spec
    (same spec digest), the approver's role must be one the spec allows (when it lists roles),
    the approver must not be the performer (unless the spec allows self-approval; checked when
    ``approval.performer`` is given), and the approval must be younger than
    ``approval.max_age_hours``."""
    if plan.spec_digest != spec.digest():
        raise InputError(
            f"plan {plan.digest} was made from another version of the spec of {spec.name!r} "
            f"(spec digest {plan.spec_digest}, now {spec.digest()}): plan again"
        )
    check_approval_policy(spec, approval.approver, approval.role, approval.performer)
    check_approval(
        plan.digest,
        approval.plan_digest,
        approved_at=approval.approved_at,
        max_age=timedelta(hours=spec.approval.max_age_hours),
        now=now,
    )


# --------------------------------------------------------------------------------------------
# A stored plan against the current spec (resume re-derives, never trusts)


def check_plan_scope(path: str | Path, expected_digest: str, spec: SystemSpec) -> Plan:
    """The plan file at ``path`` (digest-checked as :func:`read_plan` does), once everything it
    would act on lies inside ``spec`` by the planning rules: a retirement plan of this system,
    made from this spec version, with exactly the spec's locations in planning order (same URL,
    asset class, classification and archive target: a wider or a sibling prefix is not the
    spec's location), every entry valid for its location by the rules of planning (a key with
    a ``.`` or ``..`` segment, or a link, is held: never purged or archived), archive keys where
    planning puts them, governance bypass only where the spec allows
    it, exactly the keys the spec destroys and only credentials the spec declares.

    A plan read back from the evidence location is untrusted input: ScopeError naming what
    differed (IntegrityError for a changed or malformed file). Reads the file twice, streamed."""
    plan = read_plan(path, expected_digest)
    where = f"plan {plan.digest}"
    problems: list[str] = []
    if plan.kind != "retirement":
        problems.append(f"it is a {plan.kind} plan, not a retirement plan")
    if plan.system != spec.name:
        problems.append(f"it retires system {plan.system!r}, not {spec.name!r}")
    if plan.spec_digest != spec.digest():
        problems.append(
            f"it was made from spec digest {plan.spec_digest}, not the current {spec.digest()}"
        )
    if plan.owner != spec.owner:
        problems.append(f"it names owner {plan.owner!r}, the spec {spec.owner!r}")
    if plan.allow_governance_bypass and not spec.allow_governance_bypass:
        problems.append("it bypasses governance retention, which the spec does not allow")
    refs = plan_locations(spec)
    for i, loc in enumerate(plan.locations):
        ref = refs[i] if i < len(refs) else None
        if loc.index != i:
            problems.append(f"its location {i} is numbered {loc.index}")
        elif ref is None or loc.url != ref.url:
            problems.append(f"its location {i} {loc.url} is {_scope_of(spec, loc.url, ref)}")
        else:
            archives = spec.archive.target if _archives(spec, ref) and spec.archive else None
            expected = (ref.asset_class, spec.classification_of(ref.asset_class), archives)
            found = (loc.asset_class, loc.classification, loc.archive_to)
            if found != expected:
                problems.append(
                    f"its location {i} {loc.url} has (asset class, classification, archive "
                    f"target) {found}, the spec {expected}"
                )
    if len(plan.locations) < len(refs):
        missing = ", ".join(r.url for r in refs[len(plan.locations) :])
        problems.append(f"it leaves out the spec's location(s) {missing}")
    problems += scope_problems(plan.records, spec)
    expected_keys = spec.keys_to_destroy()
    planned_keys = [(k.uri, k.role) for k in plan.keys]
    for uri, role in planned_keys:
        if (uri, role) not in expected_keys:
            problems.append(f"it destroys key {uri} ({role}), which the spec does not destroy")
    if not problems and planned_keys != expected_keys:
        problems.append(
            f"it destroys keys {[u for u, _ in planned_keys]}, the spec "
            f"{[u for u, _ in expected_keys]}"
        )
    declared = {(r.kind, r.id): r.action for r in spec.credential_refs()}
    seen: set[tuple[str, str]] = set()
    for c in plan.credentials:
        if declared.get((c.kind, c.id)) != c.action or (c.kind, c.id) in seen:
            problems.append(
                f"it revokes credential {c.kind} {c.id[:200]!r} ({c.action[:100]}), which is "
                "not a credential the spec declares"
                + (" (listed twice)" if (c.kind, c.id) in seen else "")
            )
        seen.add((c.kind, c.id))
    if problems:
        raise ScopeError(
            f"{where} does not lie inside the current spec of {spec.name!r}: "
            + "; ".join(problems[:5])
            + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            + ". Nothing was changed"
        )
    for e in iter_plan_entries(path, plan.digest):
        if not 0 <= e.loc < len(plan.locations):
            raise ScopeError(f"{where}: an entry names location {e.loc}, which it does not have")
        ref, url = refs[e.loc], refs[e.loc].url
        # the planning rules of _plan_location, entry by entry
        try:
            check_entry_key(e.key, "/".join(parse_store_url(url).parts))
        except InputError as exc:
            raise ScopeError(f"{where}: an entry of {url} is outside it: {exc}") from None
        unsafe = has_dot_segment(e.key) or e.kind in SPECIAL_KINDS
        if unsafe and (e.disposition == "purge" or e.archive_key is not None):
            raise ScopeError(
                f"{where}: entry {e.key[:200]!r} ({e.kind.value}) of {url} is to be "
                f"{'archived' if e.archive_key else 'purged'}, but the planning rules hold it "
                "(a '.' or '..' segment, or a link): a delete or read by that name could reach "
                "outside the location"
            )
        if e.archive_key is not None and (
            plan.locations[e.loc].archive_to is None
            or e.archive_key != _archive_key(ref, _archive_prefix(ref), e.key)
        ):
            raise ScopeError(
                f"{where}: entry {e.key[:200]!r} of {url} archives to {e.archive_key[:200]!r}, "
                "not where the spec's archive rules put it"
            )
        if e.bypass_governance and not spec.allow_governance_bypass:
            raise ScopeError(
                f"{where}: entry {e.key[:200]!r} of {url} bypasses governance retention, which "
                "the spec does not allow"
            )
    for i in range(len(plan.records)):  # the lines add up to what the reviewer saw
        iter_plan_records(path, plan.digest, i)
    return plan


def _archives(spec: SystemSpec, ref: LocationRef) -> bool:
    return getattr(spec.assets, ref.asset_class).on_retirement == "archive"


def _scope_of(spec: SystemSpec, url: str, ref: LocationRef | None) -> str:
    """Why a planned location URL is not the spec's location ``ref``, in words."""
    try:
        norm = parse_store_url(url).url
    except ValueError:
        return "not a store URL"
    for r in spec.locations():
        if r.url == norm:
            return f"the spec's {r.field}, out of planning order"
        if urls_overlap(r.url, norm):
            return (
                f"not a location of the spec: it overlaps {r.url} ({r.field}) but is not it "
                "(path boundary: a wider or a sibling prefix is another location)"
            )
    expected = f" (the spec's is {ref.url})" if ref is not None else ""
    return f"not a location of the spec{expected}"
