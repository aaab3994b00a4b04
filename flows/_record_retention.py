"""Retention rules on record-store locations, in ``retention_sweep`` (docs/ml-platforms.md,
"Retention"): each record location whose asset class has ``delete_after_days`` and whose
connector applies it (:attr:`sundown.records.RecordCapability.RETENTION`: CloudWatch Logs
groups, MLflow experiments' runs; the spec refuses the rule everywhere else) is asked to apply
it, scoped by the location as its purge is. What each did, per group or run, goes into one
receipt per sweep (``retention/<system>/records/<time>.json``) recorded in the ledger with
:func:`flows._receipt.record_receipt`, as the object sweep's receipt is. A sweep that changed
nothing (every group already short enough, no run old enough) records none; a dry run changes
nothing and records none. A location that fails is a row with its error and counts as failed;
the other locations are still swept.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from sundown import registry
from sundown.errors import IntegrityError, SundownError, UnsupportedError
from sundown.ledger import RecordKind
from sundown.records import AppliesRetention, RecordCapability
from sundown.spec.model import SystemSpec

from ._common import artifact_key, open_evidence
from ._receipt import Receipted, record_receipt
from .evidence import IsoTime, _Evidence
from .models import RetentionResult

CHANGED = ("set", "deleted", "failed")


class RecordRetentionRow(_Evidence):
    location: str = Field(description="The record location as the certificate names it.")
    delete_after_days: int
    actions: list[dict[str, str]] = Field(
        default_factory=list,
        description="target, action (set, kept, deleted, failed, would set, would delete), "
        "before, after, detail: sundown.record_retention.RetentionAction.",
    )
    error: str | None = None


class RecordRetentionReceipt(_Evidence):
    system: str
    spec_digest: str
    as_of: IsoTime
    locations: list[RecordRetentionRow]


def apply(spec: SystemSpec, as_of: datetime, *, dry_run: bool) -> list[RecordRetentionRow]:
    """Apply each record location's ``delete_after_days`` (dry: report only)."""
    rows: list[RecordRetentionRow] = []
    for ref in spec.record_locations():
        rule = getattr(spec.assets, ref.asset_class).retention
        if rule is None or rule.delete_after_days is None:
            continue
        row = RecordRetentionRow(
            location=ref.location.describe(), delete_after_days=rule.delete_after_days
        )
        try:
            store = registry.open_record_store(ref.url, ref.location.raw_selector())
            try:
                if RecordCapability.RETENTION not in store.capabilities or not isinstance(
                    store, AppliesRetention
                ):
                    raise UnsupportedError(f"the connector of {ref.url} applies no retention")
                actions = store.apply_retention(rule.delete_after_days, as_of, dry_run=dry_run)
                row.actions = [a.to_dict() for a in actions]
            finally:
                store.close()
        except SundownError as exc:  # this location failed; the others are still swept
            row.error = f"{type(exc).__name__}: {exc}"[:1000]
        rows.append(row)
    return rows


def lines(rows: list[RecordRetentionRow]) -> list[str]:
    out = [f"{r.location}: {r.error}" for r in rows if r.error]
    out += [
        f"{a['target']}: {a['action']} ({a['before']} -> {a['after']}): {a['detail']}"
        for r in rows
        for a in r.actions
    ]
    return out


def sweep(
    spec: SystemSpec, as_of: datetime, dry_run: bool, result: RetentionResult
) -> RetentionResult:
    """Apply the record locations' rules and, when anything changed or failed, record the
    receipt; ``result`` with the lines, the receipt and the failures added."""
    rows = apply(spec, as_of, dry_run=dry_run)
    if not rows:
        return result
    actions = [a for r in rows for a in r.actions]
    failed = sum(a["action"] == "failed" for a in actions) + sum(bool(r.error) for r in rows)
    shown = lines(rows)
    update: dict[str, object] = {"records": shown, "failed": result.failed + failed}
    if dry_run or not (failed or any(a["action"] in CHANGED for a in actions)):
        return result.model_copy(update=update)
    count = {k: sum(a["action"] == k for a in actions) for k in CHANGED}
    at = datetime.now(UTC)
    receipt = RecordRetentionReceipt(
        system=spec.name, spec_digest=spec.digest(), as_of=as_of, locations=rows
    )

    def report(done: Receipted) -> str:
        body = "\n".join(f"- {line}" for line in shown)
        return (
            f"# Record retention of `{spec.name}`\n\nAs of {as_of.isoformat()}\n\n{body}\n\n"
            f"Receipt: `{done.url}` (ledger record {done.sequence}, ledger head `{done.head}`)\n"
        )

    record = record_receipt(
        spec,
        open_evidence(spec),
        f"retention/{spec.name}/records/{at:%Y%m%dT%H%M%S%fZ}.json",
        receipt,
        kind=RecordKind.RETENTION,
        subject=f"record retention of {spec.name} as of {as_of:%Y-%m-%d}: {count['set']} "
        f"retention policies set, {count['deleted']} runs deleted, {failed} failed",
        taken=_taken,
        report=report,
        artifact_key=artifact_key("retention-records-report", spec.name),
        description=f"Record retention report of {spec.name}",
        find_first=False,
    )
    # the ledger head to keep is the last append's: this receipt's
    return result.model_copy(update={**update, "records_receipt_url": record.url,
                                     "ledger_sequence": record.sequence,
                                     "ledger_head": record.head})  # fmt: skip


def _taken(url: str) -> IntegrityError:
    return IntegrityError(
        f"{url} is not this sweep's record retention receipt (another file was there first): "
        "it is not recorded in the ledger; a person must remove it"
    )
