"""Building a retirement's certificate: a pure function of what the retirement recorded.

:func:`build_certificate` takes typed inputs only (:class:`CertificateInputs`): the approved
plan (its locations carry the settings and placement read at inventory time, covered by the
plan digest), the signed approval, each location's journaled archive and purge batches and
lifecycle rule, the archive batches of earlier retention sweeps, the key destruction and
credential revocation evidence, and the verification record. It asks no store, key service or
clock: the flow (:mod:`flows.decommission`) reads those inputs from the verified journal and the
digest-checked plan file, and a resume days later certifies from the same records, never from
a store read again (docs/decisions.md, "Certification from what was recorded").

Nothing here imports Prefect's runtime, a connector or the registry (tests/test_certify.py
checks it); it is unit-tested with plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sundown.certificate import (
    ERASABLE,
    MEDIA_TYPE_CLOUD,
    Certificate,
    CertificateException,
    CopyDisposition,
    CredentialRevoked,
    Execution,
    IrrecoverableAfter,
    KeyDestroyed,
    LocationRecord,
    ManifestEntry,
    ManifestRef,
    Party,
    Protection,
    ProtectionCount,
    Sanitization,
    SanitizationCategory,
    Status,
    StorageSettings,
    SystemRef,
    ce_claimable,
)
from sundown.certificate import Counts as CertCounts
from sundown.errors import InputError, IntegrityError
from sundown.key_use import exceptions as key_use_exceptions
from sundown.plan import Plan, PlanEntry, StoreSettings
from sundown.records import RecordEntry
from sundown.store import Placement

from . import _record_certify
from ._pending import accepted, irrecoverable, judge_pending, pending_exceptions
from ._record_certify import RecordEvidence
from ._verdict import checked
from .evidence import (
    Approved,
    BatchOutcome,
    CopyCounts,
    LifecycleChange,
    Verified,
    VerifyOutcome,
    for_purge,
    numbered_batches,
)
from .models import Party as PartyParam

PROVIDERS = {
    "file": "local file system",
    "s3": "aws s3",
    "gs": "google cloud storage",
    "az": "azure blob storage",
}

# What a location's settings are on a certificate whose plan did not record them.
UNRECORDED_SETTINGS = StoreSettings(
    versioning="unknown (not recorded in the plan)",
    object_lock="unknown (not recorded in the plan)",
    soft_delete_source="not recorded in the plan",
)


@dataclass(frozen=True)
class LocationEvidence:
    """What the journal recorded for one location of the plan."""

    archives: list[BatchOutcome] = field(default_factory=list)
    purges: list[BatchOutcome] = field(default_factory=list)
    lifecycle: LifecycleChange | None = None


@dataclass(frozen=True)
class CertificateInputs:
    """Everything a certificate states, as recorded. ``entries(i)`` streams the approved plan's
    entries of location ``i`` (from the digest-checked plan file; a plan holds millions);
    ``locations[i]`` is that location's journal evidence; ``keys`` and ``credentials`` the
    destruction and revocation evidence as journaled; ``now`` the time of issue."""

    system: SystemRef
    plan: Plan
    entries: Callable[[int], Iterable[PlanEntry]]
    approved: Approved
    locations: Sequence[LocationEvidence]
    keys: list[KeyDestroyed]
    credentials: list[CredentialRevoked]
    verification: Verified
    now: datetime
    earlier_archives: Sequence[tuple[str, BatchOutcome]] = ()
    archive_target: str | None = None
    # record-store locations (flows/_record_certify.py): journal evidence per plan.records
    # entry, and that location's planned records from the digest-checked plan file
    records: Sequence[RecordEvidence] = ()
    record_entries: Callable[[int], Sequence[RecordEntry]] = lambda _: ()


def manifest_entries(
    inputs: CertificateInputs, purged: dict[int, CopyCounts]
) -> Iterator[ManifestEntry]:
    """Every purged copy, batch by batch, as recorded in the journal (deterministic); counts
    each location's into ``purged``. A planned batch without a journal record is an
    IntegrityError (nothing is certified for a batch that was not done)."""
    size = inputs.approved.batch_size
    for loc in inputs.plan.locations:
        counts = purged.setdefault(loc.index, CopyCounts())
        outcomes = {o.batch: o for o in inputs.locations[loc.index].purges}
        for number, batch in numbered_batches(inputs.entries(loc.index), for_purge, size):
            outcome = outcomes.get(number)
            if outcome is None:
                raise InputError(f"purge batch {number} of {loc.url} has no journal record")
            skip = {(c.key, c.version_id, c.kind) for c in outcome.held + outcome.failed}
            for e in batch:
                if (e.key, e.version_id, e.kind.value) in skip:
                    continue
                counts.add(e.kind, e.size)
                yield ManifestEntry(
                    uri=loc.url.rstrip("/") + "/" + e.key,
                    version_id=e.version_id,
                    size=e.size,
                    deleted_at=outcome.finished_at,
                    kind=e.kind.value,
                )
    yield from _record_certify.manifest_entries(inputs.plan, inputs.records, inputs.record_entries)


def _key_still_answers(verification: Verified, uri: str) -> str | None:
    """The post-retirement check of one key as recorded: None when it proved the key gone."""
    recorded = verification.keys.get(uri)
    if accepted(recorded):  # gone, or scheduled for deletion by the KMS and refused for use
        return None
    return str(recorded) if recorded else "no post-retirement check recorded"


def _check_of(verification: Verified, url: str) -> VerifyOutcome:
    for check in verification.locations:
        if check.url == url:
            return check
    raise IntegrityError(f"the verification record has no re-listing of {url}")


def _party(data: PartyParam) -> Party:
    return Party(**data.model_dump())


def _location_record(
    inputs: CertificateInputs,
    index: int,
    purged: CopyCounts,
    keys: list[KeyDestroyed],
) -> tuple[LocationRecord, list[CertificateException], bool]:
    loc = inputs.plan.locations[index]
    recorded = inputs.locations[index]
    held_reasons: set[str] = set()
    held_at_purge: set[tuple[str, str | None, str]] = set()
    failed_ids: set[tuple[str, str | None, str]] = set()
    held = CopyCounts()
    failed = CopyCounts()
    for outcome in recorded.purges:
        for c in outcome.held:
            held.add(c.kind, c.size)
            held_reasons.add(c.reason)
            held_at_purge.add((c.key, c.version_id, c.kind))
        for c in outcome.failed:
            failed.add(c.kind, c.size)
            failed_ids.add((c.key, c.version_id, c.kind))
    # Per copy: what protected it (recorded in the approved plan) and what became of it.
    copies = copy_breakdown(inputs.entries(index), keys, held_at_purge, failed_ids)
    found, ce, logical, held_ce = copies.found, copies.ce, copies.logical, copies.held_ce
    held.merge(copies.held)
    held_reasons |= copies.held_reasons
    archived = CopyCounts()
    for outcome in recorded.archives:
        archived.merge(outcome.done)
    check = _check_of(inputs.verification, loc.url)
    # Settings as read at inventory time, recorded in the approved plan (never read again here:
    # a policy changed since does not change what held when the copies were listed and purged).
    exceptions: list[CertificateException] = []
    settings = loc.settings
    if settings is None:  # a plan made before settings were recorded
        settings = UNRECORDED_SETTINGS
        exceptions.append(
            CertificateException(
                subject=loc.url,
                kind="settings not recorded",
                description="the plan (made by an earlier Sundown version) does not record the "
                "location's settings at inventory time: versioning, object lock, soft delete "
                "and replication are unknown to this certificate",
            )
        )
    soft_seconds, soft = settings.soft_delete_seconds, settings.soft_delete
    purge_times = [o.finished_at for o in recorded.purges]
    last_purge = max(purge_times) if purge_times else inputs.now
    window_end = last_purge + timedelta(seconds=soft_seconds) if soft_seconds else None
    restorable = check.restorable_until
    if restorable and (window_end is None or restorable > window_end):
        window_end = restorable  # the latest hard-delete time found
    if window_end is not None:
        copies_found = check.soft_deleted_copies
        listed = ""
        if copies_found:
            listed = (
                f"; soft-deleted copies found at verification ({check.soft_deleted}, "
                f"first {len(copies_found)} named): " + "; ".join(copies_found)
            )
        exceptions.append(
            CertificateException(
                subject=loc.url,
                kind="soft-delete window",
                description=f"purged copies stay restorable by the owner for {soft}, the window "
                f"in force when the location was inventoried{listed}"[:3000],
                objects=purged.objects,
                bytes=purged.bytes,
                until=window_end,
            )
        )
    for replica in settings.replicas:
        exceptions.append(
            CertificateException(
                subject=loc.url,
                kind="replica not reached",
                description=f"{replica}: copies there were not purged or verified by this "
                "retirement",
            )
        )
    if held.versions:
        readable = held.versions - held_ce
        exceptions.append(
            CertificateException(
                subject=loc.url,
                kind="held",
                description=f"{held.versions} copies not deleted: "
                + "; ".join(sorted(held_reasons))[:3000]
                + (f"; {held_ce} of them unreadable once the key is destroyed" if held_ce else "")
                + (f"; {readable} not proven encrypted under a destroyed key" if readable else ""),
                objects=held.objects,
                bytes=held.bytes,
            )
        )
    if failed.versions:
        exceptions.append(
            CertificateException(
                subject=loc.url,
                kind="purge failed",
                description=f"{failed.versions} copies could not be deleted (see the journal)",
                objects=failed.objects,
                bytes=failed.bytes,
            )
        )
    if not check.passed:
        exceptions.append(
            CertificateException(
                subject=loc.url, kind="verification failed", description=check.details
            )
        )
    scheme = loc.url.split("://", 1)[0]
    added = recorded.lifecycle
    lifecycle = (
        None
        if added is None
        else f"lifecycle expiry: expired by the provider under Sundown's lifecycle rule "
        f"{added.rule_id} (prefix {added.scope!r}), then found gone by "
        "Sundown's re-listing; its batch purge afterwards only confirmed"
    )
    claims = _claims(scheme, copies, keys, soft, window_end, lifecycle)
    backups = _archive_copies(inputs, index, loc.url)
    remaining = check.remaining
    accepted = check.passed and not failed.versions and not remaining
    verification, validation = checked(
        method="full re-listing (inventory) of every version, delete marker, snapshot, "
        "soft-deleted copy and incomplete upload under the location",
        check=check,
        accepted=accepted,
        basis="automatic: the re-listing and the purge results compared with the approved "
        "plan (held copies are accepted as planned exceptions)",
        outcome=(
            "nothing found"
            if not found.versions
            else "every planned copy purged or held as planned; nothing else remains"
        )
        if accepted
        else f"{remaining} copies remain, {failed.versions} purges failed",
    )
    record = LocationRecord(
        uri=loc.url,
        provider=PROVIDERS.get(scheme, scheme),
        media_type="file system" if scheme == "file" else MEDIA_TYPE_CLOUD,
        classification=f"{loc.classification}: {loc.asset_class.replace('_', ' ')}",
        settings=StorageSettings(
            versioning=settings.versioning, soft_delete=soft, object_lock=settings.object_lock
        ),
        found=_cert_counts(found),
        protection=copies.protection(),
        purged=_cert_counts(purged),
        archived=_cert_counts(archived),
        held=_cert_counts(held),
        ce_covered=_cert_counts(ce),
        logically_deleted=_cert_counts(logical),
        remaining=remaining,
        sanitization=claims,
        verification=verification,
        validation=validation,
        backups=backups,
    )
    return record, exceptions, not check.passed or bool(failed.versions)


def _cert_counts(c: CopyCounts) -> CertCounts:
    return CertCounts(objects=c.objects, versions=c.versions, bytes=c.bytes)


_CE_BASIS = {
    Protection.ENVELOPE: "each envelope copy's sidecar data key unwrapped under it and its "
    "first segment authenticated when the plan was made",
    Protection.SSE_KMS: "each server-side encrypted copy reported by its store under exactly "
    "the storage key's ARN when the plan was made (S3 HeadObject SSEKMSKeyId, GCS kmsKeyName)",
}

_UNLINKED = {
    "file": "unlinking is logical deletion: the file system and its media may keep the bytes "
    "(see docs/keyring.md)",
}


@dataclass
class CopyBreakdown:
    """One location's copies: found (by protection), covered by a cryptographic erase (under a
    key destroyed, verified gone and claimable, at a version it destroyed: purged, held or not),
    logically deleted only (purged, not covered), held."""

    found: CopyCounts = field(default_factory=CopyCounts)
    ce: CopyCounts = field(default_factory=CopyCounts)
    logical: CopyCounts = field(default_factory=CopyCounts)
    held: CopyCounts = field(default_factory=CopyCounts)
    held_ce: int = 0
    held_reasons: set[str] = field(default_factory=set)
    ce_keys: set[str] = field(default_factory=set)
    ce_by: set[Protection] = field(default_factory=set)
    found_by: dict[tuple[Protection, str | None], list[int]] = field(default_factory=dict)
    notes: dict[tuple[Protection, str | None], list[str]] = field(default_factory=dict)
    logical_by: dict[str, int] = field(default_factory=dict)

    def protection(self) -> list[ProtectionCount]:
        return [
            ProtectionCount(
                protection=p, key=k, copies=c, bytes=b, notes=self.notes.get((p, k), [])
            )
            for (p, k), (c, b) in sorted(
                self.found_by.items(), key=lambda i: (i[0][0], i[0][1] or "")
            )
        ]


def copy_breakdown(
    entries: Iterable[PlanEntry],
    keys: Sequence[KeyDestroyed],
    held_at_purge: Set[tuple[str, str | None, str]] = frozenset(),
    failed: Set[tuple[str, str | None, str]] = frozenset(),
) -> CopyBreakdown:
    """Per copy of the approved plan: what protected it and what became of it. A copy counts
    as cryptographically erased only when the plan recorded it ``envelope`` under key K version
    v (checked when planned, see ``flows._steps.Protector``) and K's destruction is verified and
    claimable and destroyed v, or ``sse-kms`` under the storage key K (the store's report
    equal to K's ARN when planned; destroying K destroys all its versions) and K's destruction
    is verified and claimable. ``held_at_purge`` and ``failed`` name copies (key, version id,
    kind) the purge did not delete."""
    erasable = {k.uri: k for k in keys if ce_claimable(k) and k.versions_destroyed}
    out = CopyBreakdown()
    for e in entries:
        out.found.add(e.kind, e.size)
        guard = e.protection
        tally = out.found_by.setdefault((guard.protection, guard.key), [0, 0])
        tally[0] += 1
        tally[1] += e.size
        notes = out.notes.setdefault((guard.protection, guard.key), [])
        note = (guard.note or "")[:500]
        if note and note not in notes and len(notes) < 3:  # a few distinct reasons, not all
            notes.append(note)
        key = erasable.get(guard.key or "") if guard.protection in ERASABLE else None
        ident = (e.key, e.version_id, e.kind.value)
        if e.disposition == "held":
            out.held.add(e.kind, e.size)
            out.held_reasons.add(e.reason or "held")
        if key is not None and (
            guard.protection is Protection.SSE_KMS or guard.key_version in key.versions_destroyed
        ):
            out.ce.add(e.kind, e.size)
            out.ce_keys.add(key.uri)
            out.ce_by.add(guard.protection)
            out.held_ce += e.disposition == "held" or ident in held_at_purge
        elif e.disposition == "purge" and ident not in held_at_purge and ident not in failed:
            out.logical.add(e.kind, e.size)
            name = guard.protection.value
            out.logical_by[name] = out.logical_by.get(name, 0) + 1
    return out


def _claims(
    scheme: str,
    copies: CopyBreakdown,
    keys: Sequence[KeyDestroyed],
    soft: str,
    window_end: datetime | None,
    lifecycle: str | None = None,
) -> list[Sanitization]:
    """What may be claimed for a location's copies (SP 800-88 Rev. 2): cryptographic erase for
    the copies under a destroyed, verified key; logical deletion for the other deleted copies,
    irrecoverable at the end of the retention the store reports, else unknown."""
    out: list[Sanitization] = []
    ce, logical = copies.ce, copies.logical
    if ce.versions:
        used = [k for k in keys if k.uri in copies.ce_keys]
        out.append(
            Sanitization(
                category=SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE,
                copies=_cert_counts(ce),
                method="; ".join(
                    f"cryptographic erase of {k.uri} "
                    + ("version " if len(k.versions_destroyed) == 1 else "versions ")
                    + _span(k.versions_destroyed)
                    for k in used
                )
                + ": "
                + "; ".join(_CE_BASIS[p] for p in sorted(copies.ce_by))
                + (f"; the copies themselves: {lifecycle}" if lifecycle else ""),
                keys=sorted(copies.ce_keys),
                irrecoverable_after=irrecoverable(used),
            )
        )
    if logical.versions:
        how = (
            lifecycle
            if lifecycle
            else "unlinked from the file system"
            if scheme == "file"
            else "deleted through the provider's API (every version, delete marker, snapshot "
            "and upload listed)"
        )
        protections = ", ".join(f"{n} {p}" for p, n in sorted(copies.logical_by.items()))
        if window_end is not None:
            when = IrrecoverableAfter(
                at=window_end,
                basis=f"end of the soft-delete window the store reports ({soft}) after the "
                "last purge; the provider's media are outside this evidence",
            )
        else:
            when = IrrecoverableAfter(
                unknown=_UNLINKED.get(
                    scheme,
                    "provider retention: the provider does not report how long its media "
                    "keep deleted bytes",
                ),
                basis=f"logical deletion; soft delete found: {soft}",
            )
        out.append(
            Sanitization(
                category=SanitizationCategory.LOGICAL_DELETION,
                copies=_cert_counts(logical),
                method=f"{how}; protection found: {protections}",
                irrecoverable_after=when,
            )
        )
    return out


ARCHIVE_LISTED = 1000  # archive copies listed one by one per location (then a summary line)


def _archive_copies(inputs: CertificateInputs, index: int, url: str) -> list[CopyDisposition]:
    """Every archive copy of this location's data: this retirement's archive batches and every
    earlier retention sweep's (signed journal records in the evidence location), each with its
    URI, bytes, digest, encryption, key and how it was verified."""
    batches = [("this retirement", o) for o in inputs.locations[index].archives]
    for digest, outcome in inputs.earlier_archives:
        batches.append((f"retention sweep (plan {digest})", outcome))
    out: list[CopyDisposition] = []
    unlisted = 0
    for by, outcome in batches:
        copies = [c for c in outcome.archived if c.source.startswith(url + "/")]
        if by != "this retirement" and not copies:
            continue  # another location's batch
        if not outcome.archived and outcome.done.versions:
            unlisted += outcome.done.versions  # journaled before copies were listed
        for c in copies:
            if len(out) >= ARCHIVE_LISTED:
                unlisted += 1
                continue
            cls = f", storage class {c.storage_class}" if c.storage_class else ""
            out.append(
                CopyDisposition(
                    kind="archive",
                    description=f"archive copy of {c.source} made by {by}: {c.bytes} bytes, "
                    f"sha256 {c.sha256}, encryption {c.encryption}{cls}; verified: "
                    f"{c.verification}",
                    uri=c.uri,
                    disposition=f"retained, encrypted under {c.key}"
                    if c.key
                    else "retained in plaintext (not covered by any key destruction)",
                )
            )
    if unlisted:
        target = inputs.archive_target
        out.append(
            CopyDisposition(
                kind="archive",
                description=f"{unlisted} further archive copies (not listed one by one here: "
                "see the archive batches in the journal)",
                uri=target,
                disposition="retained",
            )
        )
    return out


def _span(versions: list[int]) -> str:
    if len(versions) == 1:
        return str(versions[0])
    return f"{min(versions)}..{max(versions)}"


def build_certificate(
    inputs: CertificateInputs,
    purged: Mapping[int, CopyCounts],
    manifest: ManifestRef,
    certificate_id: str,
) -> Certificate:
    """The certificate of a retirement, from what was recorded and nothing else (no store, key
    service or clock is asked: ``inputs.now`` is the time of issue). ``purged`` counts the copies
    :func:`manifest_entries` listed per location; ``manifest`` references the deletion manifest
    written from them. Every recorded check drives the status."""
    verification = inputs.verification
    meta = inputs.approved
    # A key that still answers at verification is not destroyed, whatever its destruction step
    # said, and cryptographic erase is not claimed.
    keys = [
        judge_pending(
            k.judged(still_answers=_key_still_answers(verification, k.uri)),
            verification.keys.get(k.uri),
        )
        for k in inputs.keys
    ]
    records, exceptions, failed = [], [], False
    for loc in inputs.plan.locations:
        record, exc, bad = _location_record(
            inputs, loc.index, purged.get(loc.index, CopyCounts()), keys
        )
        records.append(record)
        exceptions += exc
        failed |= bad
    rec_records, rec_exceptions, rec_failed = _record_certify.location_records(
        inputs.plan, inputs.records, inputs.record_entries, verification
    )
    records += rec_records
    exceptions += rec_exceptions
    failed |= rec_failed
    for check in verification.locations:
        if not check.passed:
            failed = True  # a remaining copy (the location's exception says which)
    for k in keys:
        if not k.verified:
            failed = True
            exceptions.append(
                CertificateException(
                    subject=k.uri,
                    kind="key destruction not verified",
                    description=(
                        "; ".join(f"{n}: {v}" for n, v in k.checks.items()) or "no checks"
                    )[:4000],
                )
            )
        elif not ce_claimable(k):
            exceptions.append(
                CertificateException(
                    subject=k.uri,
                    kind="cryptographic erase not claimed",
                    description=k.ce_basis or "not claimed",
                )
            )
    exceptions += key_use_exceptions((k.uri, k.use) for k in inputs.plan.keys)
    exceptions += pending_exceptions(
        keys, inputs.now, {r.uri: [u for c in r.sanitization for u in c.keys] for r in records}
    )
    live = verification.credentials
    for c in inputs.credentials:
        state = live.get(f"{c.kind}:{c.identifier}")
        if not c.verified or state == "live":
            failed = True
            exceptions.append(
                CertificateException(
                    subject=c.identifier,
                    kind="credential not revoked" if not c.verified else "credential still live",
                    description=c.method
                    if state != "live"
                    else f"{c.method}; still live at verification",
                )
            )
    now = inputs.now
    completed = max([r.verification.verified_at for r in records] + [now])
    status = (
        Status.FAILED
        if failed
        else (Status.COMPLETE_WITH_EXCEPTIONS if exceptions else Status.COMPLETE)
    )
    return Certificate(
        certificate_id=certificate_id,
        issued_at=max(now, completed),
        system=inputs.system,
        plan_digest=inputs.plan.digest,
        follows_failed=inputs.plan.follows_failed,
        performer=_party(meta.performer),
        approver=_party(meta.approver),
        approved_at=meta.approved_at,
        execution=Execution(
            started_at=meta.started_at,
            completed_at=completed,
            **placements(inputs.plan),
        ),
        locations=records,
        keys_destroyed=keys,
        credentials_revoked=inputs.credentials,
        deletion_manifest=manifest,
        exceptions=exceptions,
        status=status,
    )


def placements(plan: Plan) -> dict[str, list[str]]:
    """NIST "location": the accounts and regions of the locations sanitized (not the evidence
    store's), in plan order, without repeats, as recorded in the plan at inventory time:
    ``{"accounts": [...], "regions": [...]}``. A location whose plan did not record it (a plan
    made by an earlier version) is named as unknown."""
    accounts: list[str] = []
    regions: list[str] = []
    for loc in plan.locations:
        found = loc.placement
        if found is None:
            scheme, _, rest = loc.url.partition("://")
            where = f"{scheme}://{rest.split('/', 1)[0]}"
            placed = Placement(
                _PLACEMENT_PROVIDERS.get(scheme, scheme), None, None,
                f"{where}: not recorded in the plan",
            )  # fmt: skip
        else:
            placed = Placement(**found.model_dump())
        for out, label in ((accounts, placed.account_label), (regions, placed.region_label)):
            if label is not None and label[:1000] not in out:
                out.append(label[:1000])  # a certificate field's bound is 4096 characters
    return {"accounts": accounts, "regions": regions}


_PLACEMENT_PROVIDERS = {"s3": "aws", "gs": "gcp", "az": "azure", "file": "local"}
