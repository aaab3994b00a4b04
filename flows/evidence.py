"""Typed evidence: the receipts the flows store and the data of their journal records.

Every model here describes a format already on disk (docs/formats/evidence.md): dumped with
``model_dump(mode="json")`` it gives exactly the JSON earlier versions wrote (times as Python's
``isoformat()``, ``+00:00`` rather than ``Z``), so stored receipts keep their digests and a
re-run writes the same bytes. Read back (untrusted input), a record that does not fit its model
is an IntegrityError naming it (:meth:`flows.journal.Journal.data`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from sundown.certificate import CredentialRevoked
from sundown.credentials import Finished, Outcome
from sundown.plan import PlanEntry
from sundown.store import EntryKind

from .models import DecommissionStatus, LocationSummary, Party

# A time as stored in receipts and journal records: ``datetime.isoformat()`` (``+00:00``).
IsoTime = Annotated[datetime, PlainSerializer(lambda t: t.isoformat(), return_type=str)]


class _Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------
# Receipts (``deployments/<system>/<version>.json``, ``retention/<system>/<plan>/receipt.json``)


class KekVersion(_Evidence):
    uri: str
    version: int


class DeployReceipt(_Evidence):
    """What a deployment wrote: the model's digest, each file's, where, under which key."""

    system: str
    version: str
    kek: KekVersion
    signing_key: str
    model_digest: str
    files: dict[str, str] = Field(description="File name -> sha256:<hex> of its plaintext.")
    locations: list[str]
    signatures: list[str]


class RetentionRow(_Evidence):
    url: str
    archived: int
    purged: int
    held: int
    failed: int
    kept: int


class RetentionReceipt(_Evidence):
    system: str
    plan_digest: str
    spec_digest: str
    as_of: IsoTime
    locations: list[RetentionRow]


class RotationReceipt(_Evidence):
    """A credential run of ``rotate_credentials`` or of a retention sweep that only removes
    replaced credentials (``rotations/<system>/<time>.json``): the lines shown, what was rotated
    and finished, and the rotation state after it (read back by the next run)."""

    system: str
    at: IsoTime
    kek: str | None = Field(description="The KEK rotated; null when no key was rotated.")
    credentials: list[str]
    rotations: list[Outcome]
    finished: list[Finished]
    rotation_state: dict[str, Any]
    previous_receipt: str | None


class KekRotationReceipt(RotationReceipt):
    """A run of ``rotate_credentials``: a rotation receipt with the KEK's versions and sidecars."""

    kek: str
    old_version: int
    new_version: int
    sidecars_checked: int
    sidecars_rewrapped: int
    retired_below: int | None


class RevocationReceipt(_Evidence):
    """An emergency revocation (``revocations/<system>/<time>.json``)."""

    system: str
    reason: str
    at: IsoTime
    credentials: list[CredentialRevoked]


# --------------------------------------------------------------------------------------------
# Journal record data (flows/journal.py; one model per step)


# --------------------------------------------------------------------------------------------
# Batches of a plan (archive-NNN-B, purge-NNN-B) and their outcomes


def numbered_batches(
    entries: Iterable[PlanEntry], select: Callable[[PlanEntry], bool], size: int
) -> Iterator[tuple[int, list[PlanEntry]]]:
    """(batch number, entries) of the selected ``entries``, ``size`` at a time, streamed: the
    numbering every journaled batch of a plan uses."""
    batch: list[PlanEntry] = []
    number = 0
    for entry in entries:
        if not select(entry):
            continue
        batch.append(entry)
        if len(batch) >= size:
            yield number, batch
            number, batch = number + 1, []
    if batch:
        yield number, batch


def for_purge(entry: PlanEntry) -> bool:
    return entry.disposition == "purge"


def for_archive(entry: PlanEntry) -> bool:
    return entry.archive_key is not None


class ArchivedCopy(BaseModel):
    """One archive copy, as the certificate lists it."""

    source: str  # the copy archived: location URL / key
    uri: str  # the archive copy: archive target URL / archive key
    bytes: int  # of the archive object
    sha256: str  # of the plaintext (envelope) or of the bytes (plaintext copy)
    encryption: str  # "envelope (AES-256-GCM streaming) under <key> v<n>" or "none (plaintext)"
    key: str | None = None  # the key the archive copy is encrypted under
    storage_class: str | None = None  # as the archive store reports it after the copy
    verification: str  # how the copy was checked


class CopyCounts(BaseModel):
    objects: int = 0  # current objects
    versions: int = 0  # every copy
    bytes: int = 0

    def add(self, kind: EntryKind | str, size: int) -> None:
        self.versions += 1
        self.bytes += size
        if EntryKind(kind) is EntryKind.OBJECT:
            self.objects += 1

    def merge(self, other: CopyCounts) -> None:
        self.objects += other.objects
        self.versions += other.versions
        self.bytes += other.bytes


class Copy(BaseModel):
    """One copy named in a batch outcome (a held or failed one)."""

    key: str
    version_id: str | None
    kind: str
    size: int
    reason: str = ""


class BatchOutcome(BaseModel):
    location: int
    batch: int
    done: CopyCounts = Field(default_factory=CopyCounts)
    held: list[Copy] = Field(default_factory=list)
    failed: list[Copy] = Field(default_factory=list)
    archived: list[ArchivedCopy] = Field(default_factory=list)  # archive batches: each copy
    requests: int = 0
    finished_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class VerifyOutcome(BaseModel):
    url: str
    passed: bool
    remaining: int
    held_remaining: int
    details: str
    verified_at: datetime
    soft_deleted: int = 0  # soft-deleted copies found (restorable by the owner until deleted)
    restorable_until: datetime | None = None  # the latest hard-delete time among them
    soft_deleted_copies: list[str] = Field(default_factory=list)  # the first ones, named


class Approved(_Evidence):
    """``000-approved``: who approved which spec, who performs, when, and the batch size."""

    spec_digest: str
    approver: Party
    approved_at: IsoTime
    performer: Party
    started_at: IsoTime
    batch_size: int = Field(description="Checked (1-1000) when the record is read.")
    approved_via: dict[str, Any] = Field(default_factory=dict)


class RetentionStarted(_Evidence):
    """``000-started`` of a retention sweep."""

    batch_size: int = Field(ge=1, le=1000)
    as_of: IsoTime


class LifecycleChange(_Evidence):
    """``lifecycle-NNN-added`` / ``-removed``: Sundown's rule and the bucket's rules around it
    (``scope`` only when added)."""

    rule_id: str
    scope: str | None = None
    before: list[dict[str, Any]] = Field(default_factory=list)
    after: list[dict[str, Any]] = Field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Record stores (flows/_records.py; docs/records.md)


class RecordNotPurged(BaseModel):
    """A listed record that this retirement did not delete, and why."""

    id: str
    code: str  # "failed: <connector code>" or "not attempted"
    message: str = ""


class RecordStage(_Evidence):
    """One kind of a staged purge, all done (``sundown.records.StageDone``)."""

    kind: str
    deleted: int
    absent: int
    finished_at: IsoTime


class RecordsPurged(_Evidence):
    """``records-R-purged``: the purge of record location R, as the connector reported it.
    ``refused``: the purge stopped before deleting anything (records written into the
    selector since the plan): nothing at R was purged. ``not_purged``: listed records neither
    deleted nor found already gone (failed, or after ``stopped``). ``started_at`` and
    ``stages`` (SageMaker, MLflow, CloudWatch Logs: each kind in delete order, with the time
    its last delete was read back) make the order of the retirement evidence (None and empty
    in records written before they were)."""

    index: int
    subject: str
    deleted: int = 0
    absent: int = 0  # listed and already gone (an earlier attempt of this retirement)
    not_purged: list[RecordNotPurged] = Field(default_factory=list)
    requests: int = 0
    dropped: bool = False
    stopped: str | None = None
    refused: str | None = None
    finished_at: IsoTime = Field(default_factory=lambda: datetime.now(UTC))
    started_at: IsoTime | None = None
    stages: list[RecordStage] = Field(default_factory=list)


class RecordsCompacted(_Evidence):
    """``records-R-compacted``: what the server was asked to drop of the deleted records
    (VACUUM, BGREWRITEAOF), as findings; ``error`` when it refused."""

    index: int
    findings: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None


class RecordCheck(BaseModel):
    """The re-query of one record location at verification, and the findings read then."""

    index: int
    subject: str
    passed: bool
    in_scope: int | None  # None: the table or collection is gone
    listed_present: int
    gone: bool
    sample: list[str] = Field(default_factory=list)
    details: str
    verified_at: datetime
    findings: list[dict[str, Any]] = Field(default_factory=list)
    findings_error: str | None = None


class Verified(_Evidence):
    """``verified``: each location's re-listing, each key's check after everything else
    ("gone" or what still answers), each credential's state ("dead", "live" or why unknown)."""

    locations: list[VerifyOutcome]
    keys: dict[str, str] = Field(default_factory=dict)
    credentials: dict[str, str] = Field(default_factory=dict)
    # record-store locations; absent (not []) without any, so earlier records dump as written
    records: list[RecordCheck] = Field(default_factory=list, exclude_if=lambda v: not v)


class Certified(_Evidence):
    """``certified``: the certificate issued for the plan, and where everything went."""

    system: str
    plan_digest: str
    plan_path: str
    certificate_id: str
    certificate_url: str
    certificate_digest: str
    manifest_url: str
    pdf_url: str
    status: DecommissionStatus
    ledger_sequence: int
    ledger_head: str | None = None
    locations: list[LocationSummary]
    keys: list[str]
    credentials: list[str]
    exceptions: list[str]
