"""The certificate's record-store locations: a pure function of what the retirement recorded
(the approved plan's record lines and summary, the journaled purge and compaction, the
verification's re-query and findings), as :mod:`flows._certify` is for object stores. No store,
registry or Prefect runtime is imported here.

What is claimed (docs/formats/certificate.md, "Record stores"): deleting rows, keys or
documents through a database client is logical deletion, never cryptographic erase; each
location says so with its counts. Every finding that keeps deleted data (dead tuples and WAL,
an AOF or RDB snapshot, a vector store's own files, replicas, backups) is listed under
``backups``, and each one the server reported as keeping the data is also an exception, so a
retirement with record stores is at best "complete with exceptions": the records are gone from
every query, not from every byte the server or its backups hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sundown.certificate import (
    CertificateException,
    CopyDisposition,
    IrrecoverableAfter,
    LocationRecord,
    ManifestEntry,
    Protection,
    ProtectionCount,
    Sanitization,
    SanitizationCategory,
    StorageSettings,
)
from sundown.certificate import Counts as CertCounts
from sundown.errors import IntegrityError
from sundown.plan import Plan
from sundown.record_plan import RecordLocationPlan
from sundown.records import RecordEntry

from ._verdict import checked
from .evidence import RecordCheck, RecordsCompacted, RecordsPurged, Verified

MEDIA_TYPE_RECORDS = "database records"
_KEEPS = {
    True: "keeps the deleted records; not reached by this retirement",
    None: "unknown whether it keeps the deleted records; not reached by this retirement",
    False: "does not keep the deleted records",
}


@dataclass(frozen=True)
class RecordEvidence:
    """What the journal recorded for one record location of the plan."""

    purged: RecordsPurged | None
    compacted: RecordsCompacted | None


def evidence(plan: Plan, data: Callable[[str, Any], Any]) -> list[RecordEvidence]:
    """Each record location's journal evidence; ``data(step, model)`` reads the verified
    journal (:meth:`flows.journal.Journal.data`)."""
    return [
        RecordEvidence(
            data(f"records-{loc.index:03d}-purged", RecordsPurged),
            data(f"records-{loc.index:03d}-compacted", RecordsCompacted),
        )
        for loc in plan.records
    ]


def _purged_entries(
    entries: Sequence[RecordEntry], purged: RecordsPurged | None, subject: str
) -> list[RecordEntry]:
    if purged is None:
        raise IntegrityError(f"the purge of {subject} has no journal record")
    if purged.refused is not None:
        return []
    missed = {r.id for r in purged.not_purged}
    return [e for e in entries if e.id not in missed]


def manifest_entries(
    plan: Plan,
    records: Sequence[RecordEvidence],
    entries: Callable[[int], Sequence[RecordEntry]],
) -> Iterator[ManifestEntry]:
    """Every purged record (kind ``record``), location by location after the object stores':
    ``URL#ID`` with the identifier percent-encoded (its bytes, for a Redis key that is not
    UTF-8)."""
    for loc in plan.records:
        purged = records[loc.index].purged
        for e in _purged_entries(entries(loc.index), purged, loc.subject):
            assert purged is not None
            ident = quote(e.id.encode("utf-8", "surrogateescape"), safe="")
            yield ManifestEntry(
                uri=f"{loc.url}#{ident}",
                version_id=None,
                size=e.size,
                deleted_at=purged.finished_at,
                kind="record",
            )


def _check(verification: Verified, index: int, subject: str) -> RecordCheck:
    for check in verification.records:
        if check.index == index and check.subject == subject:
            return check
    raise IntegrityError(f"the verification record has no re-query of {subject}")


def _finding_text(f: dict[str, Any]) -> str:
    value = f" = {f.get('value')}" if f.get("value") is not None else ""
    note = f" ({f.get('note')})" if f.get("note") else ""
    return f"{f.get('setting')}{value}: {f.get('statement')}{note}"[:4000]


def location_records(
    plan: Plan,
    records: Sequence[RecordEvidence],
    entries: Callable[[int], Sequence[RecordEntry]],
    verification: Verified,
) -> tuple[list[LocationRecord], list[CertificateException], bool]:
    """(the certificate's location records, their exceptions, whether any failed)."""
    out: list[LocationRecord] = []
    exceptions: list[CertificateException] = []
    failed = False
    for loc in plan.records:
        record, found_exceptions, bad = _location_record(
            loc, records[loc.index], entries(loc.index), verification
        )
        out.append(record)
        exceptions += found_exceptions
        failed |= bad
    return out, exceptions, failed


def _location_record(
    loc: RecordLocationPlan,
    ev: RecordEvidence,
    listed: Sequence[RecordEntry],
    verification: Verified,
) -> tuple[LocationRecord, list[CertificateException], bool]:
    done = _purged_entries(listed, ev.purged, loc.subject)
    assert ev.purged is not None
    check = _check(verification, loc.index, loc.subject)
    subject = loc.subject
    found = CertCounts(objects=loc.count, versions=loc.count, bytes=loc.estimated_bytes)
    size = sum(e.size for e in done)
    purged = CertCounts(objects=len(done), versions=len(done), bytes=size)
    exceptions: list[CertificateException] = []

    def exception(kind: str, description: str, n: int = 0, b: int = 0) -> None:
        exceptions.append(
            CertificateException(
                subject=subject, kind=kind, description=description[:4000], objects=n, bytes=b
            )
        )

    bad = False
    if ev.purged.refused is not None:
        bad = True
        exception("purge refused", ev.purged.refused, loc.count, loc.estimated_bytes)
    elif ev.purged.not_purged:
        bad = True
        first = "; ".join(f"{r.id[:100]!r}: {r.code}" for r in ev.purged.not_purged[:5])
        exception(
            "purge failed",
            f"{len(ev.purged.not_purged)} planned record(s) not deleted (first: {first})"
            + (f"; the purge stopped: {ev.purged.stopped}" if ev.purged.stopped else ""),
            len(ev.purged.not_purged),
        )
    if not check.passed:
        bad = True
        exception("verification failed", check.details)
    compaction = ev.compacted.findings if ev.compacted is not None else []
    if ev.compacted is not None and ev.compacted.error:
        exception("compaction not done", ev.compacted.error)
    if check.findings_error:
        exception("findings not read", f"after the purge: {check.findings_error}")
    for f in check.findings:
        if f.get("keeps_deleted_data") is True:
            exception("deleted data retained", _finding_text(f))
    backups = [
        CopyDisposition(
            kind=str(f.get("setting"))[:200],
            description=_finding_text(f),
            disposition=_KEEPS.get(f.get("keeps_deleted_data"), _KEEPS[None]),
        )
        for f in check.findings
    ] + [
        CopyDisposition(
            kind=str(f.get("setting"))[:200],
            description=_finding_text(f),
            disposition="done by Sundown after the purge",
        )
        for f in compaction
    ]
    remaining = max(check.in_scope or 0, check.listed_present)
    accepted = check.passed and not bad and not remaining
    compacted = ", ".join(str(f.get("setting")) for f in compaction)
    claims = []
    if done:
        how = "dropped as a whole" if ev.purged.dropped else f"in {ev.purged.requests} batch(es)"
        claims.append(
            Sanitization(
                category=SanitizationCategory.LOGICAL_DELETION,
                copies=purged,
                method=f"deleted through the database's client by identifier, {how}, "
                "exactly the records listed in the approved plan"
                + (f"; then {compacted}" if compacted else ""),
                irrecoverable_after=IrrecoverableAfter(
                    unknown="the server's own files, logs, replicas and backups keep deleted "
                    "records for as long as they are kept (see backups and exceptions)",
                    basis="logical deletion through a database client",
                ),
            )
        )
    verdict, validation = checked(
        method="re-query: the records the selector matches now, and every planned "
        "identifier anywhere in the location",
        check=check,
        accepted=accepted,
        basis="automatic: the re-query and the purge result compared with the approved "
        "plan's identifiers",
        outcome=(
            "nothing found"
            if not loc.count
            else "every planned record deleted; the selector matches nothing"
        )
        if accepted
        else f"{remaining} record(s) remain, {loc.count - len(done)} planned record(s) not deleted",
    )
    record = LocationRecord(
        uri=subject,
        provider=loc.url.split("://", 1)[0],
        media_type=MEDIA_TYPE_RECORDS,
        classification=f"{loc.classification}: {loc.asset_class.replace('_', ' ')}",
        settings=StorageSettings(
            versioning="not applicable (record store)",
            soft_delete="not applicable (record store): what keeps deleted records is "
            "listed under backups",
        ),
        found=found,
        protection=[
            ProtectionCount(
                protection=Protection.UNKNOWN,
                copies=loc.count,
                bytes=loc.estimated_bytes,
                notes=["record store: encryption at rest not inspected"],
            )
        ]
        if loc.count
        else [],
        purged=purged,
        archived=CertCounts(),
        held=CertCounts(),
        ce_covered=CertCounts(),
        logically_deleted=purged,
        remaining=remaining,
        sanitization=claims,
        verification=verdict,
        validation=validation,
        backups=backups,
    )
    return record, exceptions, bad
