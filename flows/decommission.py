"""``decommission_system``: retire an AI system, provably.

The six steps of DESIGN.md, in order, each a call into the connectors and the core:

1. **Inventory** every copy at every location of the spec (``store.inventory()``), streamed
2. **Plan** straight into the plan file (:func:`sundown.plan.build_plan`); its digest is shown in
   a Prefect markdown artifact. A dry run stops here, having changed nothing.
3. **Approve**: the flow pauses for an :class:`~flows.models.ApprovalInput` that repeats the plan
   digest and names the approver (or takes a pre-given ``approve_digest``, checked the same way);
   a wrong digest is refused before anything is touched.
4. **Execute**: archive first (re-encrypt under the archive key, verify digests), purge every
   copy in batch tasks of up to 1000, destroy the keys, revoke the credentials.
5. **Verify**: inventory again (only held copies may remain), the keys are gone, the
   credentials are dead.
6. **Certify**: write the deletion manifest, sign the certificate with the spec's certificate
   key, append it to the ledger, render Markdown and PDF, publish an artifact.

Every completed step of 4-6 is journaled create-only in the evidence location (see
:mod:`flows.journal`): a re-run after a crash resumes the approved plan where it stopped, and a
re-run after completion returns the existing certificate instead of issuing a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.flow_runs import pause_flow_run

from sundown import registry
from sundown.certificate import (
    CERTIFICATE_NAME,
    MANIFEST_NAME,
    CredentialRevoked,
    KeyDestroyed,
    ManifestWriter,
    SystemRef,
    check_manifest,
    new_certificate_id,
    sign_certificate,
    verify_certificate,
)
from sundown.errors import InputError, IntegrityError, SundownError
from sundown.ledger import RecordKind
from sundown.plan import (
    Approval,
    Plan,
    check_approval_policy,
    check_plan_approval,
    check_plan_scope,
    iter_plan_records,
    normalize_digest,
)
from sundown.spec.kms import grants_by_key
from sundown.spec.model import CredentialRef, SystemSpec

from . import _certify, _credentials, _execute, _key_use, _record_certify, _records, _steps
from ._common import artifact_key, evidence_url, load_system, open_evidence, work_dir
from ._receipt import in_ledger, publish
from .evidence import Approved, Certified, CopyCounts, LifecycleChange, Verified
from .journal import APPROVED, CERTIFIED, PLAN_FILE, VERIFIED, Journal, journals_of
from .lease import SystemLease, leased
from .models import (
    ApprovalInput,
    DecommissionParameters,
    DecommissionResult,
    DecommissionStatus,
    Incomplete,
    LocationSummary,
)
from .models import Party as PartyParam
from .shards import (
    NO_SHARD_DEPLOYMENT,
    ShardParameters,
    ShardSettings,
    preflight,
    purge_shards,
    run_shards,
    verified_locations,
    verify_shards,
)

PDF_NAME = "certificate.pdf"
MARKDOWN_NAME = "certificate.md"


@flow(
    name="decommission-system",
    description="Retire an AI system: inventory, plan, approve (plan digest), archive, purge "
    "every version, destroy its keys, revoke its credentials, verify, and issue a signed "
    "decommissioning certificate.",
    persist_result=False,
    validate_parameters=True,
)
def decommission_system(
    params: DecommissionParameters, shards: ShardSettings = NO_SHARD_DEPLOYMENT
) -> DecommissionResult:
    """The retirement's result; Incomplete (holding it) when the certificate it issued says
    failed: the certificate is signed and ledgered first, and the run ends Failed."""
    result = _decommission(params, shards)
    if result.status == "failed":
        raise Incomplete(failed_retirement(result), result)
    return result


def failed_retirement(result: DecommissionResult) -> str:
    """What a retirement whose certificate says failed left, in one message."""
    shown = "; ".join(e[:300] for e in result.exceptions[:3])
    more = f" (and {len(result.exceptions) - 3} more)" if len(result.exceptions) > 3 else ""
    return (
        f"retirement of {result.system}: certificate {result.certificate_id} says FAILED"
        + (f": {shown}{more}" if shown else "") + f". It is signed and ledgered "
        f"({result.certificate_url}); the certificate states what was and was not done."
    )  # fmt: skip


def _decommission(params: DecommissionParameters, shards: ShardSettings) -> DecommissionResult:
    log = get_run_logger()
    spec = load_system(params)
    evidence = open_evidence(spec)

    # Every journal of the system is verified first (signatures, folders, steps): an unsigned,
    # wrongly signed or misplaced record stops the run here, before anything is changed.
    done, unfinished, failed = _earlier_runs(evidence, spec)
    if done is not None:
        log.info("system %s was already decommissioned (plan %s)", spec.name, done.plan_digest)
        return _already_certified(done)

    if unfinished is not None and not params.dry_run:
        # One run at a time: a retirement another run is executing is not resumed here.
        with leased(evidence, spec.name, params.lease_seconds, "decommission") as lease:
            done, _, _ = _earlier_runs(evidence, spec)
            if done is not None:  # certified meanwhile by the run that held the lease
                return _already_certified(done)
            journal, plan = _resume(unfinished, spec, params.approve_digest)
            preflight(plan, shards)
            log.info("resuming the approved retirement of plan %s", plan.digest)
            return _execute_and_certify(spec, plan, journal, shards, lease, resumed=True)

    # 1-2. Inventory every copy, streamed into the plan; publish the plan.
    plan = _steps.plan_system(
        spec,
        str(_plan_path(spec)),
        inventory_ranges=shards.inventory_ranges,
        follows_failed=failed,  # in the digest: never a failed plan's again (one journal each)
    )
    _publish_plan(plan)
    if params.dry_run:
        return _dry_run_result(plan)
    preflight(plan, shards)  # before anyone is asked to approve
    # 3. Approval gate: the plan digest, repeated, and the approver's name.
    approval, approver, via = _approve(plan, spec, params)
    with leased(evidence, spec.name, params.lease_seconds, "decommission") as lease:
        done, _, _ = _earlier_runs(evidence, spec)
        if done is not None:  # certified by another run while this one waited for approval
            return _already_certified(done)
        journal = _start(evidence, spec, plan, approval, approver, params, via)
        return _execute_and_certify(spec, plan, journal, shards, lease, resumed=False)


def _execute_and_certify(
    spec: SystemSpec,
    plan: Plan,
    journal: Journal,
    shards: ShardSettings,
    lease: SystemLease,
    *,
    resumed: bool,
) -> DecommissionResult:
    batch_size = _approved(journal).batch_size
    # 4. Execute: archive first, then purge every copy, destroy the keys, revoke credentials.
    progress = _execute.Progress(plan, "decommission")
    _execute.archive(spec, plan, journal, batch_size, progress)
    # purge_by: lifecycle locations: add Sundown's rule once, then wait until the provider has
    # expired every copy there; nothing further (no key destroyed, no certificate) until then.
    lease.check("adding lifecycle rules")
    _execute.apply_lifecycle_rules(plan, journal)
    waiting = _execute.lifecycle_pending(plan, journal)
    if waiting:
        return _waiting_result(plan, waiting, resumed)
    # serving and registry records first (docs/ml-platforms.md), then objects, then the rest
    _records.purge(plan, journal, batch_size, lease.check, before_objects=True)
    journal = _purge(spec, plan, journal, batch_size, shards, progress, lease)
    _records.purge(plan, journal, batch_size, lease.check)  # record stores (flows/_records.py)
    lease.check("destroying the keys")
    keys = _destroy_keys(plan, journal, spec)
    lease.check("revoking the credentials")
    credentials = _revoke_credentials(plan, journal)
    progress.finish()
    # 5. Verify: re-list everything (one shard per location), keys gone, credentials dead.
    verification = _verify(spec, plan, journal, keys, shards)
    # 6. Certify: manifest, signed certificate, ledger, renderings, artifact.
    lease.check("issuing the certificate")
    return _issue_certificate(spec, plan, journal, keys, credentials, verification, resumed)


def complete_lifecycle(spec: SystemSpec, lease: SystemLease) -> DecommissionResult | None:
    """For the daily retention sweep, under its lease: the system's approved retirement that is
    waiting on lifecycle rules (a ``lifecycle-NNN-added`` step journaled, not certified), taken
    as far as it goes now, exactly as a re-run would: every journal verified, the plan
    re-checked against the spec and its approval policy, each rule re-verified against the
    journal; once every prefix is empty, Sundown's rules removed, keys destroyed, certified.
    None when there is no such retirement."""
    done, unfinished, _ = _earlier_runs(open_evidence(spec), spec)
    if done is not None or unfinished is None:
        return None
    if next(unfinished.steps("lifecycle-"), None) is None:
        return None  # not a lifecycle retirement: finishing it is its operator's re-run
    journal, plan = _resume(unfinished, spec, None)
    preflight(plan, NO_SHARD_DEPLOYMENT)
    return _execute_and_certify(spec, plan, journal, NO_SHARD_DEPLOYMENT, lease, resumed=True)


def _waiting_result(plan: Plan, waiting: list[str], resumed: bool) -> DecommissionResult:
    """Not a failure: the rule is in place and a re-run re-verifies (docs/flows.md)."""
    for line in waiting:
        get_run_logger().info("waiting for lifecycle expiry: %s", line)
    return DecommissionResult(
        system=plan.system,
        plan_digest=plan.digest,
        plan_path=plan.path,
        status="waiting for lifecycle expiry",
        resumed=resumed,
        waiting=waiting,
    )


# --------------------------------------------------------------------------------------------
# Before execution: earlier runs, plan, approval


def _earlier_runs(
    evidence: Any, spec: SystemSpec
) -> tuple[Journal | None, Journal | None, list[str]]:
    """(a certified retirement of this spec, an approved but unfinished one, the certificate
    ids of retirements of this spec certified FAILED: they did not retire it, and a new plan
    names them).

    Every journal of the system is read and verified (flows/journal.py): one that does not
    verify is an IntegrityError naming the record, never taken as certified, unfinished or
    absent. A verified journal approved under another version of the spec is not resumed (its
    approval was given for another scope or policy), and the log says so."""
    certified = unfinished = None
    failed: list[str] = []
    for journal in journals_of(evidence, spec.name, spec.keys.certificate):
        approved = journal.get(APPROVED)
        if approved is None:  # listed a moment ago; cannot vanish from a create-only store
            raise IntegrityError(f"{journal.url('journal')}: the approval record vanished")
        if approved.data.get("spec_digest") != spec.digest():
            if not journal.done(CERTIFIED):
                get_run_logger().warning(
                    "the unfinished retirement of plan %s is not resumed: it was approved under "
                    "spec digest %s, and the spec of %s is now %s (its scope or approval policy "
                    "changed, so that approval does not carry over); a new plan needs a new "
                    "approval",
                    journal.plan_digest,
                    str(approved.data.get("spec_digest"))[:80],
                    spec.name,
                    spec.digest(),
                )
            continue
        if not journal.done(CERTIFIED):
            unfinished = journal
        elif (failed_id := _failed_certificate(journal)) is None:
            certified = journal
        else:  # certified FAILED (signed, ledgered, kept): not retired; a new plan may follow
            failed.append(failed_id)
    return certified, unfinished, sorted(failed)


def _failed_certificate(journal: Journal) -> str | None:
    """The certificate id when the journal's certificate says failed (None otherwise)."""
    data = _certified(journal)
    return data.certificate_id if data.status == "failed" else None


def _certified(journal: Journal) -> Certified:
    data = journal.data(CERTIFIED, Certified)
    if data is None:  # found certified a moment ago; cannot vanish from a create-only store
        raise IntegrityError(f"{journal.url('journal')}: the certified record vanished")
    return data


def _plan_path(spec: SystemSpec) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return work_dir("plans", spec.name) / f"retirement-{stamp}.jsonl"


def _publish_plan(plan: Plan) -> None:
    publish(
        plan.to_markdown() + f"\nPlan file: `{plan.path}`\n",
        artifact_key("plan", plan.system),
        f"Retirement plan {plan.digest}",
    )


def _dry_run_result(plan: Plan) -> DecommissionResult:
    return DecommissionResult(
        system=plan.system,
        plan_digest=plan.digest,
        plan_path=plan.path,
        status="dry run",
        locations=[
            LocationSummary(
                url=loc.url,
                found=loc.total_found.count,
                archived=loc.archive.count,
                purged=loc.purge.count,
                held=loc.held.count,
            )
            for loc in plan.locations
        ]
        + [  # record-store locations: every record found is purged (no holds)
            LocationSummary(url=r.subject, found=r.count, archived=0, purged=r.count, held=0)
            for r in plan.records
        ],
        keys_destroyed=[k.uri for k in plan.keys],
        credentials_revoked=[f"{c.kind} {c.id}" for c in plan.credentials],
    )


def _approve(
    plan: Plan, spec: SystemSpec, params: DecommissionParameters
) -> tuple[Approval, PartyParam, dict[str, Any]]:
    """The approval, checked against the plan and the spec's policy, separation of duties
    included (InputError otherwise); with how it was given (journaled with it)."""
    from prefect.runtime import flow_run

    via: dict[str, Any] = {"flow_run_id": flow_run.get_id()}
    if params.approve_digest is not None:
        assert params.approver is not None
        approver = params.approver
        given = params.approve_digest
        via["channel"] = "approve_digest parameter (approval given in advance)"
    else:
        roles = spec.approval.roles
        get_run_logger().info(
            "waiting for approval of plan %s%s: review the plan artifact, then resume this "
            "flow run (run menu > Resume) with its plan digest, your name and your role",
            plan.digest,
            f" by one of: {', '.join(roles)}" if roles else "",
        )
        answer = pause_flow_run(
            wait_for_input=ApprovalInput,
            timeout=params.approval_timeout_seconds,
            poll_interval=2,
        )
        assert isinstance(answer, ApprovalInput)
        approver = PartyParam(
            name=answer.approver,
            role=answer.role,
            organisation=answer.organisation or "unspecified",
            contact=answer.contact or "unspecified",
        )
        given = answer.plan_digest
        # Prefect OSS records no user for a resume (docs/decisions.md): the approver's name is
        # what they typed; the run and its pause are recorded so an audit can find them.
        via["channel"] = "Prefect pause/resume input (name self-asserted)"
        via["resumed_by"] = None
    approval = Approval(
        plan_digest=given,
        approver=approver.name,
        role=approver.role,
        performer=params.performer.name,
    )
    check_plan_approval(plan, approval, spec)
    get_run_logger().info("plan %s approved by %s (%s)", plan.digest, approver.name, approver.role)
    return approval, approver, via


def _start(
    evidence: Any,
    spec: SystemSpec,
    plan: Plan,
    approval: Approval,
    approver: PartyParam,
    params: DecommissionParameters,
    via: dict[str, Any],
) -> Journal:
    """Store the plan and the signed approval record (over plan digest, spec digest, approver,
    performer, times and batch size); the record that wins a race is checked like a resumed
    one."""
    journal = Journal(evidence, spec.name, plan.digest, spec.keys.certificate)
    if journal.done(CERTIFIED):
        # _earlier_runs passed it over (its certificate says failed), and a plan made after it
        # names it in follows_failed, so its digest differs: this plan is not one Sundown made
        raise IntegrityError(
            f"plan {plan.digest} of {spec.name!r} already has a journal certified FAILED "
            f"({_failed_certificate(journal)}), which a new plan would name (follows_failed); "
            "nothing was changed"
        )
    journal.put_plan(plan.path)
    journal.verify()  # records planted in this plan's folder before its approval stop it here
    journal.record(
        APPROVED,
        Approved(
            spec_digest=spec.digest(),
            approver=approver,
            approved_at=approval.approved_at,
            performer=params.performer,
            started_at=datetime.now(UTC),
            batch_size=params.batch_size,
            approved_via=via,
        ),
    )
    _check_approved(journal, spec)
    return journal


def _resume(journal: Journal, spec: SystemSpec, approve_digest: str | None) -> tuple[Journal, Plan]:
    """The unfinished plan, once re-derived against the current spec: its approval record is
    signed and still satisfies the spec's approval policy, and everything the plan acts on lies
    inside the spec (:func:`sundown.plan.check_plan_scope`). Stops before any change otherwise,
    naming what differed."""
    if approve_digest is not None and normalize_digest(approve_digest) != journal.plan_digest:
        raise InputError(
            f"an approved retirement of {spec.name!r} (plan {journal.plan_digest}) is "
            f"unfinished, and this run's approval names plan "
            f"{normalize_digest(approve_digest)}: one retirement of a system at a time. "
            f"Review the unfinished plan ({journal.url(PLAN_FILE)}) and approve its digest to "
            "finish it; nothing was changed"
        )
    data = journal.read_file(PLAN_FILE)
    if data is None:
        raise IntegrityError(f"the journal of plan {journal.plan_digest} has no plan file")
    path = _plan_path(spec)
    path.write_bytes(data)
    _check_approved(journal, spec)
    plan = check_plan_scope(path, journal.plan_digest, spec)
    return journal, plan


def _approved(journal: Journal) -> Approved:
    """The approval record's data (checked by :func:`_check_approved` before any step)."""
    data = journal.data(APPROVED, Approved)
    if data is None:
        raise IntegrityError(f"plan {journal.plan_digest} has no approval record")
    return data


def _check_approved(journal: Journal, spec: SystemSpec) -> None:
    """The journal's approval record (its signature verified on reading) names the current
    spec and satisfies its approval policy now: allowed role, separation of duties, a batch
    size in range. IntegrityError / InputError naming what differed."""
    record = journal.get(APPROVED)
    where = journal.url(f"journal/{APPROVED}.json")
    if record is None:
        raise IntegrityError(f"plan {journal.plan_digest} has no approval record ({where})")
    if record.data.get("spec_digest") != spec.digest():
        raise IntegrityError(
            f"{where} approves spec digest {str(record.data.get('spec_digest'))[:80]}, not the "
            f"current spec of {spec.name!r} ({spec.digest()}); nothing was changed"
        )
    try:
        data = record.parse(Approved)
    except IntegrityError as exc:
        raise IntegrityError(f"{where} is not a complete approval record ({exc})"[:400]) from None
    if not 1 <= data.batch_size <= 1000:
        raise IntegrityError(f"{where} names batch size {data.batch_size}, outside 1-1000")
    try:
        check_approval_policy(spec, data.approver.name, data.approver.role, data.performer.name)
    except InputError as exc:
        raise InputError(
            f"the approval of plan {journal.plan_digest} ({where}) does not satisfy the "
            f"approval policy of the current spec: {exc}; nothing was changed"
        ) from None


# --------------------------------------------------------------------------------------------
# 4. Execute


def _purge(
    spec: SystemSpec,
    plan: Plan,
    journal: Journal,
    size: int,
    settings: ShardSettings,
    progress: _execute.Progress,
    lease: SystemLease,
) -> Journal:
    """Purge every copy, shard by shard (child flow runs, see :mod:`flows.shards`); returns the
    journal read afresh (the shards wrote to it). Each shard checks before each batch that this
    run still holds the lease."""
    lease.check("purging")
    shards = purge_shards(plan, journal, evidence_url(spec), size, settings, lease_run=lease.run)
    where = settings.deployment or "this flow run"
    get_run_logger().info("purging in %d shard(s) on %s", len(shards), where)

    def done(s: ShardParameters) -> None:
        end = min(s.last_batch * size, plan.locations[s.location].purge.count)
        progress.advance(end - s.first_batch * size)

    run_shards(shards, journal, settings, on_done=done)
    fresh = journal.fresh()
    for loc in plan.locations:
        recorded = len(_execute.outcomes(fresh, "purge", loc.index))
        expected = _execute.batch_count(plan, loc.index, size)
        if recorded != expected:
            raise IntegrityError(
                f"{loc.url}: {recorded} of {expected} purge batches are journaled after the shards"
            )
    return fresh


def _destroy_keys(plan: Plan, journal: Journal, spec: SystemSpec) -> list[KeyDestroyed]:
    """Destroy every planned key (a key "absent" at planning too: its destruction may have
    stopped halfway, which ``destroy()`` finishes) and journal the evidence, which carries the
    plan's exportable / plaintext-backup facts fixed at approval. The spec's grants on a key are
    revoked and its pending window passed (``keys.grants``, ``keys.pending_days``)."""
    grants = grants_by_key(spec)
    # What else the keys encrypt, read again now: a bucket default changed after approval stops
    # the run here, before any key is destroyed (flows/_key_use.py).
    todo = [k.uri for k in plan.keys if journal.get(f"key-{k.role}") is None]
    use = _key_use.before_destroying(spec, todo) if todo else {}
    out = []
    for key in plan.keys:
        step = f"key-{key.role}"
        record = journal.get(step)
        if record is None:
            evidence = _steps.destroy_key(
                key.uri, key.versions, spec.keys.pending_days, grants.get(key.uri, [])
            ).judged(planned_exportable=key.exportable, planned_backup=key.allow_plaintext_backup)
            evidence.checks.update(use.get(key.uri, {}))
            record = journal.record(step, evidence)
        out.append(record.parse(KeyDestroyed))
    return out


def _revoke_credentials(plan: Plan, journal: Journal) -> list[CredentialRevoked]:
    out = []
    for i, cred in enumerate(plan.credentials):
        step = f"credential-{i:04d}"
        record = journal.get(step)
        if record is None:
            evidence = _steps.revoke_credential(cred.kind, cred.id)
            record = journal.record(step, evidence)
        out.append(record.parse(CredentialRevoked))
    return out


# --------------------------------------------------------------------------------------------
# 5. Verify


def _verify(
    spec: SystemSpec,
    plan: Plan,
    journal: Journal,
    keys: list[KeyDestroyed],
    settings: ShardSettings,
) -> Verified:
    record = journal.get(VERIFIED)
    if record is None:
        size = _approved(journal).batch_size
        shards = verify_shards(plan, journal, evidence_url(spec), size, settings.verify_ranges)
        results = run_shards(shards, journal, settings)
        locations = verified_locations(plan, shards, results)  # key ranges merged per location
        # Proved from the key material again, after everything else: "gone" or what answers.
        key_checks = {k.uri: _steps.key_check(k.uri) for k in keys}
        verified = Verified(
            locations=locations, keys=key_checks, credentials=_credential_checks(plan)
        )
        verified = _records.with_records(verified, plan)
        record = journal.record(VERIFIED, verified)
    return record.parse(Verified)


def _credential_checks(plan: Plan) -> dict[str, str]:
    """Each planned credential at verification: "dead" only when the credential connectors
    prove it (``_credentials.live`` is False); "live" when they find it working; otherwise what
    is known. The status then rests on the revocation's own proof (``CredentialRevoked.verified``),
    which ``_certificate`` reads beside this."""
    checks: dict[str, str] = {}
    for cred in plan.credentials:
        try:
            state = _credentials.live(CredentialRef(cred.kind, cred.id))
        except SundownError as exc:
            state, why = None, f"not re-checked: {type(exc).__name__}"
        else:
            why = "not re-checked: no side-effect-free lookup for this kind"
        checks[f"{cred.kind}:{cred.id}"] = (
            "live" if state is True else "dead" if state is False else why
        )
    return checks


# --------------------------------------------------------------------------------------------
# 6. Certify


def _issue_certificate(
    spec: SystemSpec,
    plan: Plan,
    journal: Journal,
    keys: list[KeyDestroyed],
    credentials: list[CredentialRevoked],
    verification: Verified,
    resumed: bool,
) -> DecommissionResult:
    signer = registry.open_signer(spec.keys.certificate)

    existing = journal.read_file(CERTIFICATE_NAME)
    if existing is None:
        inputs = _certificate_inputs(spec, plan, journal, keys, credentials, verification)
        purged: dict[int, CopyCounts] = {}
        writer = ManifestWriter()
        chunks = writer.chunks(_certify.manifest_entries(inputs, purged))
        if journal.exists(MANIFEST_NAME):  # written by an attempt that crashed: same content
            for _ in chunks:
                pass
        else:
            journal.put_file(MANIFEST_NAME, chunks)
        manifest = writer.reference()
        check_manifest(journal.iter_file(MANIFEST_NAME), manifest)
        manifest_url = journal.url(MANIFEST_NAME)
        cert_id = new_certificate_id(spec.name, inputs.now)
        cert = _certify.build_certificate(inputs, purged, manifest, cert_id)
        signed = sign_certificate(cert, signer)
        journal.put_file(CERTIFICATE_NAME, [signed.data])
        existing = journal.read_file(CERTIFICATE_NAME)  # the one that won a race, if any
        assert existing is not None
    else:
        manifest_url = journal.url(MANIFEST_NAME)
    verified = verify_certificate(existing, signer.public_key_pem())
    cert = verified.certificate
    cert_url = journal.url(CERTIFICATE_NAME)
    if (cert.system.name, cert.plan_digest) != (spec.name, plan.digest):
        # a genuine certificate of another plan or system, copied here before this one: the
        # signature alone does not make it this retirement's (docs/threat-model.md, X1)
        raise IntegrityError(
            f"{cert_url} is certificate {cert.certificate_id[:100]!r} of system "
            f"{cert.system.name[:100]!r}, plan {cert.plan_digest}, not of this retirement "
            f"({spec.name!r}, plan {plan.digest}): it was put there by someone else; it is not "
            "recorded in the ledger, and a person must remove it before this retirement can be "
            "certified"
        )

    # Ledger: once per certificate, also across a crash between append and journal.
    ledger_record = in_ledger(
        spec,
        RecordKind.DECOMMISSION,
        f"decommissioned {spec.name}: {cert.status.value} (certificate {cert.certificate_id}, "
        f"plan {plan.digest})",
        verified.envelope_digest,
        cert_url,
    )

    pdf_url, markdown = _render(journal, verified, ledger_record.head)
    certified = Certified(
        system=spec.name,
        plan_digest=plan.digest,
        plan_path=plan.path,
        certificate_id=cert.certificate_id,
        certificate_url=cert_url,
        certificate_digest=verified.envelope_digest,
        manifest_url=manifest_url,
        pdf_url=pdf_url,
        status=cert.status.value,
        ledger_sequence=ledger_record.record.sequence,
        ledger_head=ledger_record.head,
        locations=[
            LocationSummary(
                url=loc.uri,
                found=loc.found.versions,
                archived=loc.archived.versions,
                purged=loc.purged.versions,
                held=loc.held.versions,
            )
            for loc in cert.locations
        ],
        keys=[k.uri for k in cert.keys_destroyed],
        credentials=[f"{c.kind} {c.identifier}" for c in cert.credentials_revoked],
        exceptions=[f"{e.subject}: {e.kind}: {e.description}" for e in cert.exceptions],
    )
    record = journal.record(CERTIFIED, certified).parse(Certified)
    publish(
        markdown
        + f"\n\n---\nCertificate: [{cert_url}]({cert_url})  \nPDF: [{pdf_url}]({pdf_url})  \n"
        f"Deletion manifest: [{manifest_url}]({manifest_url})  \n"
        f"Ledger head after recording it: `{ledger_record.head}`  \n"
        f"Verify offline: `sundown certificate verify {_display(cert_url)} --fingerprint "
        f"{verified.key_fingerprint}`\n",
        artifact_key("decommission-certificate", spec.name),
        f"Decommissioning certificate {cert.certificate_id}: {cert.status.value}",
    )
    result = _result_of_certified(record, record.status)
    result.resumed = resumed
    return result


def _certificate_inputs(
    spec: SystemSpec,
    plan: Plan,
    journal: Journal,
    keys: list[KeyDestroyed],
    credentials: list[CredentialRevoked],
    verification: Verified,
) -> _certify.CertificateInputs:
    """What the certificate is built from, all of it recorded: the approved plan (settings and
    placement as inventoried), the signed journal, earlier sweeps' signed archive records."""
    return _certify.CertificateInputs(
        system=SystemRef(name=spec.name, owner=spec.owner, spec_digest=spec.digest()),
        plan=plan,
        entries=lambda index: _steps.iter_plan_entries(plan.path, plan.digest, location=index),
        approved=_approved(journal),
        locations=[
            _certify.LocationEvidence(
                archives=_execute.outcomes(journal, "archive", loc.index),
                purges=_execute.outcomes(journal, "purge", loc.index),
                lifecycle=journal.data(f"lifecycle-{loc.index:03d}-added", LifecycleChange),
            )
            for loc in plan.locations
        ],
        keys=keys,
        credentials=credentials,
        verification=verification,
        now=datetime.now(UTC),
        earlier_archives=_execute.earlier_archives(spec),
        archive_target=spec.archive.target if spec.archive is not None else None,
        records=_record_certify.evidence(plan, journal.data),
        record_entries=lambda i: iter_plan_records(plan.path, plan.digest, i),
    )


def _display(url: str) -> str:
    path = _steps.local_path(url)
    return str(path) if path else url


def _render(journal: Journal, verified: Any, ledger_head: str) -> tuple[str, str]:
    from sundown.render import certificate_markdown, certificate_pdf, rendering_of

    rendering = rendering_of(verified, "the certificate key of the spec", ledger_head=ledger_head)
    markdown = certificate_markdown(rendering)
    journal.put_file(MARKDOWN_NAME, [markdown.encode("utf-8")])
    if journal.read_file(PDF_NAME) is None:
        journal.put_file(PDF_NAME, [certificate_pdf(rendering)])
    return journal.url(PDF_NAME), markdown


def _result_of_certified(data: Certified, status: DecommissionStatus) -> DecommissionResult:
    return DecommissionResult(
        system=data.system,
        plan_digest=data.plan_digest,
        plan_path=data.plan_path,
        status=status,
        certificate_id=data.certificate_id,
        certificate_url=data.certificate_url,
        certificate_digest=data.certificate_digest,
        manifest_url=data.manifest_url,
        pdf_path=_display(data.pdf_url),
        ledger_sequence=data.ledger_sequence,
        ledger_head=data.ledger_head,
        locations=data.locations,
        keys_destroyed=data.keys,
        credentials_revoked=data.credentials,
        exceptions=data.exceptions,
    )


def _already_certified(journal: Journal) -> DecommissionResult:
    return _result_of_certified(_certified(journal), "already decommissioned")
