"""``retention_sweep``: archive or delete what is older than each asset class's retention rule.

The same path as a retirement: inventory into a retention plan (every version, by its own age),
then archive batches and purge batches of up to 1000 copies, journaled create-only per plan digest
so that a re-run resumes. Held copies are reported, never forced. A dry run plans only. The
receipt goes to the evidence location and the signed ledger; a report artifact shows the counts.
Deployed with a daily cron schedule (``sundown serve``, ``prefect.yaml``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger

from sundown.errors import IntegrityError
from sundown.ledger import RecordKind
from sundown.spec.model import SystemSpec

from . import _execute, _record_retention, _rotation, _steps
from ._common import artifact_key, load_system, open_evidence, work_dir
from ._receipt import Receipted, publish, record_receipt
from .decommission import complete_lifecycle, failed_retirement
from .evidence import RetentionReceipt, RetentionRow, RetentionStarted
from .journal import Journal
from .key_deletion import UNCHECKED, follow_up
from .lease import leased
from .models import Incomplete, RetentionParameters, RetentionResult

ROOT = "retention"
STARTED = "000-started"
DONE = "done"
RECEIPT = "receipt.json"


@flow(
    name="retention-sweep",
    description="Archive or delete what is older than each asset class's retention rule, every "
    "version, in batches; held copies reported; signed receipt in the ledger.",
    persist_result=False,
)
def retention_sweep(params: RetentionParameters) -> RetentionResult:
    """The sweep's result; Incomplete (holding it) after everything else was done and recorded,
    when a copy or record could not be removed or a key could not be checked."""
    spec = load_system(params)
    if params.dry_run:
        return _sweep(spec, params)
    retirement = None
    with leased(open_evidence(spec), spec.name, params.lease_seconds, "retention") as lease:
        result = _sweep(spec, params)
        # A retirement waiting on lifecycle rules is re-verified and, once its prefixes are
        # empty, completed (docs/flows.md "Lifecycle purges").
        retirement = complete_lifecycle(spec, lease)
        if retirement is not None:
            lines = [f"retirement of plan {retirement.plan_digest}: {retirement.status}"]
            lines += [f"waiting: {line}" for line in retirement.waiting]
            for line in lines:
                get_run_logger().info("lifecycle retirement: %s", line)
            result = result.model_copy(
                update={"lifecycle": lines, "certificate_url": retirement.certificate_url}
            )
    # a waiting retirement this sweep certified, whose certificate says failed
    failed = failed_retirement(retirement) if retirement and retirement.status == "failed" else None
    if result.failed or result.keys_unchecked or failed:
        # the run fails, so that its schedule shows it (a Completed run with failures inside
        # would pass for a clean one in the UI and in automations)
        raise _incomplete(result, failed)
    return result


def _incomplete(result: RetentionResult, retirement: str | None) -> Incomplete:
    """``retirement``: what the waiting retirement this sweep certified left, when its
    certificate says failed."""
    parts = [retirement] if retirement is not None else []
    if result.failed:
        parts.append(f"{result.failed} copy(ies) or record(s) could not be removed")
    if result.keys_unchecked:
        parts.append(
            f"{len(result.keys_unchecked)} key(s) could not be checked: "
            + "; ".join(result.keys_unchecked)
        )
    receipt = result.records_receipt_url or result.receipt_url
    return Incomplete(
        f"retention sweep of {result.system}: " + "; ".join(parts) + ". Everything else was done"
        + (f" and recorded ({receipt})" if receipt else "") + "; the next sweep tries these again.",
        result,
    )  # fmt: skip


def _sweep(spec: SystemSpec, params: RetentionParameters) -> RetentionResult:
    as_of = params.as_of or datetime.now(UTC)
    unchecked = [] if params.dry_run else _follow_ups(spec)
    result = _sweep_objects(spec, params, as_of)
    if unchecked:
        result = result.model_copy(update={"keys_unchecked": unchecked})
    # record locations whose connector applies delete_after_days (flows/_record_retention.py)
    return _record_retention.sweep(spec, as_of, params.dry_run, result)


def _follow_ups(spec: SystemSpec) -> list[str]:
    """The daily follow-ups before the sweep: credentials replaced by earlier rotations whose
    grace period is over go now, rather than at the next rotation; keys of earlier retirements
    whose deletion the KMS finishes later get their ledger record once it reports them gone
    (flows/key_deletion.py). Returns one line per key the key service did not answer for: the
    sweep goes on, and its result names them."""
    logger = get_run_logger()
    for line in _rotation.complete_pending(spec):
        logger.info("rotation follow-up: %s", line)
    unchecked: list[str] = []
    for f in follow_up(spec):
        if f.outcome == UNCHECKED:
            logger.warning("key deletion follow-up: %s", f.line)
            unchecked.append(f.line)
        else:
            logger.info("key deletion follow-up: %s", f.line)
    return unchecked


def _sweep_objects(
    spec: SystemSpec, params: RetentionParameters, as_of: datetime
) -> RetentionResult:
    path = work_dir("plans", spec.name) / f"retention-{as_of:%Y%m%dT%H%M%S%fZ}.jsonl"
    plan = _steps.plan_system(spec, str(path), "retention", as_of)
    totals = plan.totals()
    publish(
        plan.to_markdown(),
        artifact_key("retention-plan", spec.name),
        f"Retention plan {plan.digest} as of {as_of.isoformat()}",
    )
    result = RetentionResult(
        system=spec.name,
        plan_digest=plan.digest,
        plan_path=plan.path,
        dry_run=params.dry_run,
        archived=totals["archive"].count,
        purged=totals["purge"].count,
        held=totals["held"].count,
        failed=0,
    )
    if params.dry_run or not (totals["archive"].count or totals["purge"].count):
        return result

    journal = Journal(open_evidence(spec), spec.name, plan.digest, spec.keys.certificate, root=ROOT)
    done = journal.data(DONE, RetentionResult)
    if done is not None:  # the same plan was swept already (same inventory, same ages)
        return done
    journal.put_plan(plan.path)  # IntegrityError if a planted file holds its name
    started = RetentionStarted(batch_size=params.batch_size, as_of=as_of)
    size = journal.record(STARTED, started).parse(RetentionStarted).batch_size
    progress = _execute.Progress(plan, "retention")
    _execute.archive(spec, plan, journal, size, progress)
    _execute.purge(plan, journal, size, progress)
    progress.finish()

    rows: list[RetentionRow] = []
    archived, purged, held, failed = 0, 0, totals["held"].count, 0
    for loc in plan.locations:
        a = sum(o.done.versions for o in _execute.outcomes(journal, "archive", loc.index))
        p = sum(o.done.versions for o in _execute.outcomes(journal, "purge", loc.index))
        h = sum(len(o.held) for o in _execute.outcomes(journal, "purge", loc.index))
        n = sum(len(o.failed) for o in _execute.outcomes(journal, "purge", loc.index))
        archived, purged, held, failed = archived + a, purged + p, held + h, failed + n
        rows.append(RetentionRow(url=loc.url, archived=a, purged=p, held=loc.held.count + h,
                                 failed=n, kept=loc.keep.count))  # fmt: skip
    receipt = RetentionReceipt(
        system=spec.name,
        plan_digest=plan.digest,
        spec_digest=spec.digest(),
        as_of=as_of,
        locations=rows,
    )

    def report(done: Receipted) -> str:
        return (
            f"# Retention sweep of `{spec.name}`\n\nAs of {as_of.isoformat()}, plan "
            f"`{plan.digest}`\n\n| Location | Archived | Purged | Held | Failed | Kept |\n"
            "|---|---:|---:|---:|---:|---:|\n"
            + "\n".join(
                f"| `{r.url}` | {r.archived} | {r.purged} | {r.held} | {r.failed} | {r.kept} |"
                for r in rows
            )
            + f"\n\nReceipt: `{done.url}` (ledger record {done.sequence}, ledger head "
            f"`{done.head}`)\n"
        )

    record = record_receipt(
        spec,
        journal.store,
        journal.key(RECEIPT),
        receipt,
        kind=RecordKind.RETENTION,
        subject=f"retention sweep of {spec.name} as of {as_of:%Y-%m-%d}: {archived} archived, "
        f"{purged} purged, {held} held, {failed} failed",
        taken=_taken,
        report=report,
        artifact_key=artifact_key("retention-report", spec.name),
        description=f"Retention report of {spec.name}",
        # A re-run of a swept plan returns its ``done`` record above; reading the whole ledger
        # on every daily sweep to find a record is not worth the rare crash in between.
        find_first=False,
    )
    result = result.model_copy(
        update={
            "archived": archived,
            "purged": purged,
            "held": held,
            "failed": failed,
            "receipt_url": record.url,
            "ledger_sequence": record.sequence,
            "ledger_head": record.head,
        }
    )
    journal.record(DONE, result)
    return result


def _taken(url: str) -> IntegrityError:
    return IntegrityError(
        f"{url} is not this sweep's receipt (another file was there first): it is not recorded "
        "in the ledger; a person must remove it before this sweep is receipted"
    )
