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

from collections.abc import Iterable, Iterator, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
)
from prefect.flow_runs import pause_flow_run

from sundown import registry
from sundown.certificate import (
    CERTIFICATE_NAME,
    MANIFEST_NAME,
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
    ManifestWriter,
    Party,
    Protection,
    ProtectionCount,
    Sanitization,
    SanitizationCategory,
    Status,
    StorageSettings,
    SystemRef,
    Validation,
    ValidationResult,
    Verification,
    VerificationResult,
    ce_claimable,
    check_manifest,
    new_certificate_id,
    sign_certificate,
    verify_certificate,
)
from sundown.certificate import Counts as CertCounts
from sundown.errors import InputError, IntegrityError, SundownError
from sundown.ledger import RecordKind
from sundown.plan import (
    Approval,
    Plan,
    PlanEntry,
    check_approval_policy,
    check_plan_approval,
    check_plan_scope,
    normalize_digest,
)
from sundown.spec.model import CredentialRef, SystemSpec
from sundown.store import Placed, Placement

from . import _credentials, _execute, _steps
from ._common import (
    PROVIDERS,
    artifact_key,
    evidence_url,
    find_ledger_record,
    ledger_append,
    load_system,
    open_evidence,
    work_dir,
)
from .journal import APPROVED, CERTIFIED, PLAN_FILE, VERIFIED, Journal, journals_of
from .lease import SystemLease, leased
from .models import (
    ApprovalInput,
    DecommissionParameters,
    DecommissionResult,
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
    log = get_run_logger()
    spec = load_system(params)
    evidence = open_evidence(spec)

    # Every journal of the system is verified first (signatures, folders, steps): an unsigned,
    # wrongly signed or misplaced record stops the run here, before anything is changed.
    done, unfinished = _earlier_runs(evidence, spec)
    if done is not None:
        log.info("system %s was already decommissioned (plan %s)", spec.name, done.plan_digest)
        return _result_of_certified(done)

    if unfinished is not None and not params.dry_run:
        # One run at a time: a retirement another run is executing is not resumed here.
        with leased(evidence, spec.name, params.lease_seconds, "decommission") as lease:
            done, _ = _earlier_runs(evidence, spec)
            if done is not None:  # certified meanwhile by the run that held the lease
                return _result_of_certified(done)
            journal, plan = _resume(unfinished, spec, params)
            preflight(plan, shards)
            log.info("resuming the approved retirement of plan %s", plan.digest)
            return _execute_and_certify(spec, plan, journal, shards, lease, resumed=True)

    # 1-2. Inventory every copy, streamed into the plan; publish the plan.
    plan = _steps.plan_system(spec, str(_plan_path(spec)))
    _publish_plan(plan)
    if params.dry_run:
        return _dry_run_result(plan)
    preflight(plan, shards)  # before anyone is asked to approve
    # 3. Approval gate: the plan digest, repeated, and the approver's name.
    approval, approver, via = _approve(plan, spec, params)
    with leased(evidence, spec.name, params.lease_seconds, "decommission") as lease:
        done, _ = _earlier_runs(evidence, spec)
        if done is not None:  # certified by another run while this one waited for approval
            return _result_of_certified(done)
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
    batch_size = int(journal.get(APPROVED)["data"]["batch_size"])  # type: ignore[index]
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
    journal = _purge(spec, plan, journal, batch_size, shards, progress, lease)
    lease.check("destroying the keys")
    keys = _destroy_keys(plan, journal)
    lease.check("revoking the credentials")
    credentials = _revoke_credentials(plan, journal)
    progress.finish()
    # 5. Verify: re-list everything (one shard per location), keys gone, credentials dead.
    verification = _verify(spec, plan, journal, keys, shards)
    # 6. Certify: manifest, signed certificate, ledger, renderings, artifact.
    lease.check("issuing the certificate")
    return _certify(spec, plan, journal, keys, credentials, verification, resumed)


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


def _earlier_runs(evidence: Any, spec: SystemSpec) -> tuple[Journal | None, Journal | None]:
    """(a certified retirement of this spec, an approved but unfinished one).

    Every journal of the system is read and verified (flows/journal.py): one that does not
    verify is an IntegrityError naming the record, never taken as certified, unfinished or
    absent. A verified journal approved under another version of the spec is not resumed (its
    approval was given for another scope or policy), and the log says so."""
    certified = unfinished = None
    for journal in journals_of(evidence, spec.name, spec.keys.certificate):
        approved = journal.get(APPROVED)
        if approved is None:  # listed a moment ago; cannot vanish from a create-only store
            raise IntegrityError(f"{journal.url('journal')}: the approval record vanished")
        if approved["data"].get("spec_digest") != spec.digest():
            if not journal.done(CERTIFIED):
                get_run_logger().warning(
                    "the unfinished retirement of plan %s is not resumed: it was approved under "
                    "spec digest %s, and the spec of %s is now %s (its scope or approval policy "
                    "changed, so that approval does not carry over); a new plan needs a new "
                    "approval",
                    journal.plan_digest,
                    str(approved["data"].get("spec_digest"))[:80],
                    spec.name,
                    spec.digest(),
                )
            continue
        if journal.done(CERTIFIED):
            certified = journal
        else:
            unfinished = journal
    return certified, unfinished


def _plan_path(spec: SystemSpec) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return work_dir("plans", spec.name) / f"retirement-{stamp}.jsonl"


def _publish_plan(plan: Plan) -> None:
    create_markdown_artifact(
        plan.to_markdown() + f"\nPlan file: `{plan.path}`\n",
        key=artifact_key("plan", plan.system),
        description=f"Retirement plan {plan.digest}",
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
    journal.put_plan(plan.path)
    journal.verify()  # records planted in this plan's folder before its approval stop it here
    journal.record(
        APPROVED,
        {
            "spec_digest": spec.digest(),
            "approver": approver.model_dump(),
            "approved_at": approval.approved_at.isoformat(),
            "performer": params.performer.model_dump(),
            "started_at": datetime.now(UTC).isoformat(),
            "batch_size": params.batch_size,
            "approved_via": via,
        },
    )
    _check_approved(journal, spec)
    return journal


def _resume(
    journal: Journal, spec: SystemSpec, params: DecommissionParameters
) -> tuple[Journal, Plan]:
    """The unfinished plan, once re-derived against the current spec: its approval record is
    signed and still satisfies the spec's approval policy, and everything the plan acts on lies
    inside the spec (:func:`sundown.plan.check_plan_scope`). Stops before any change otherwise,
    naming what differed."""
    if params.approve_digest is not None and normalize_digest(params.approve_digest) != (
        journal.plan_digest
    ):
        raise InputError(
            f"an approved retirement of {spec.name!r} (plan {journal.plan_digest}) is "
            f"unfinished, and this run's approval names plan "
            f"{normalize_digest(params.approve_digest)}: one retirement of a system at a time. "
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


def _check_approved(journal: Journal, spec: SystemSpec) -> None:
    """The journal's approval record (its signature verified on reading) names the current
    spec and satisfies its approval policy now: allowed role, separation of duties, a batch
    size in range. IntegrityError / InputError naming what differed."""
    record = journal.get(APPROVED)
    where = journal.url(f"journal/{APPROVED}.json")
    if record is None:
        raise IntegrityError(f"plan {journal.plan_digest} has no approval record ({where})")
    data = record["data"]
    if data.get("spec_digest") != spec.digest():
        raise IntegrityError(
            f"{where} approves spec digest {str(data.get('spec_digest'))[:80]}, not the "
            f"current spec of {spec.name!r} ({spec.digest()}); nothing was changed"
        )
    try:
        approver = PartyParam.model_validate(data["approver"])
        performer = PartyParam.model_validate(data["performer"])
        size = int(data["batch_size"])
        datetime.fromisoformat(data["approved_at"])
        datetime.fromisoformat(data["started_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"{where} is not a complete approval record ({exc})"[:400]) from None
    if not 1 <= size <= 1000:
        raise IntegrityError(f"{where} names batch size {size}, outside 1-1000")
    try:
        check_approval_policy(spec, approver.name, approver.role, performer.name)
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


def _destroy_keys(plan: Plan, journal: Journal) -> list[KeyDestroyed]:
    """Destroy every planned key (a key "absent" at planning too: its destruction may have
    stopped halfway, which ``destroy()`` finishes) and journal the evidence, which carries the
    plan's exportable / plaintext-backup facts fixed at approval."""
    out = []
    for key in plan.keys:
        step = f"key-{key.role}"
        record = journal.get(step)
        if record is None:
            evidence = _steps.destroy_key(key.uri, key.versions).judged(
                planned_exportable=key.exportable, planned_backup=key.allow_plaintext_backup
            )
            record = journal.record(step, evidence.model_dump(mode="json"))
        out.append(KeyDestroyed.model_validate(record["data"], strict=False))
    return out


def _revoke_credentials(plan: Plan, journal: Journal) -> list[CredentialRevoked]:
    out = []
    for i, cred in enumerate(plan.credentials):
        step = f"credential-{i:04d}"
        record = journal.get(step)
        if record is None:
            evidence = _steps.revoke_credential(cred.kind, cred.id)
            record = journal.record(step, evidence.model_dump(mode="json"))
        out.append(CredentialRevoked.model_validate(record["data"], strict=False))
    return out


# --------------------------------------------------------------------------------------------
# 5. Verify


def _verify(
    spec: SystemSpec,
    plan: Plan,
    journal: Journal,
    keys: list[KeyDestroyed],
    settings: ShardSettings,
) -> dict[str, Any]:
    record = journal.get(VERIFIED)
    if record is None:
        size = int(journal.get(APPROVED)["data"]["batch_size"])  # type: ignore[index]
        results = run_shards(
            verify_shards(plan, journal, evidence_url(spec), size), journal, settings
        )
        locations = []
        for r in results:
            assert r.verification is not None
            locations.append(r.verification.model_dump(mode="json"))
        # Proved from the key material again, after everything else: "gone" or what answers.
        key_checks = {k.uri: _steps.key_is_gone(k.uri) or "gone" for k in keys}
        record = journal.record(
            VERIFIED,
            {"locations": locations, "keys": key_checks, "credentials": _credential_checks(plan)},
        )
    return dict(record["data"])


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


def _key_still_answers(verification: dict[str, Any], uri: str) -> str | None:
    """The post-retirement check of one key as recorded: None when it proved the key gone."""
    recorded = (verification.get("keys") or {}).get(uri)
    if recorded == "gone":
        return None
    return str(recorded) if recorded else "no post-retirement check recorded"


# --------------------------------------------------------------------------------------------
# 6. Certify


def _manifest_entries(
    plan: Plan, journal: Journal, size: int, purged: dict[int, _steps.CopyCounts]
) -> Iterator[ManifestEntry]:
    """Every purged copy, batch by batch, as recorded in the journal (deterministic)."""
    for loc in plan.locations:
        counts = purged.setdefault(loc.index, _steps.CopyCounts())
        outcomes = {o.batch: o for o in _execute.outcomes(journal, "purge", loc.index)}
        for number, batch in _steps.batches(plan, loc.index, _steps.for_purge, size):
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


def _party(data: dict[str, Any]) -> Party:
    return Party(**PartyParam.model_validate(data).model_dump())


def _certify(
    spec: SystemSpec,
    plan: Plan,
    journal: Journal,
    keys: list[KeyDestroyed],
    credentials: list[CredentialRevoked],
    verification: dict[str, Any],
    resumed: bool,
) -> DecommissionResult:
    approved = journal.get(APPROVED)
    assert approved is not None
    meta = approved["data"]
    size = int(meta["batch_size"])
    signer = registry.open_signer(spec.keys.certificate)

    existing = journal.read_file(CERTIFICATE_NAME)
    if existing is None:
        purged: dict[int, _steps.CopyCounts] = {}
        writer = ManifestWriter()
        chunks = writer.chunks(_manifest_entries(plan, journal, size, purged))
        if journal.exists(MANIFEST_NAME):  # written by an attempt that crashed: same content
            for _ in chunks:
                pass
        else:
            journal.put_file(MANIFEST_NAME, chunks)
        manifest = writer.reference()
        check_manifest(journal.iter_file(MANIFEST_NAME), manifest)
        manifest_url = journal.url(MANIFEST_NAME)
        cert = _certificate(spec, plan, journal, keys, credentials, verification, purged, manifest)
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
    ledger_record = find_ledger_record(spec, verified.envelope_digest) or ledger_append(
        spec,
        RecordKind.DECOMMISSION,
        f"decommissioned {spec.name}: {cert.status.value} (certificate {cert.certificate_id}, "
        f"plan {plan.digest})",
        verified.envelope_digest,
        cert_url,
    )

    pdf_url, markdown = _render(journal, verified, ledger_record.head)
    record = journal.record(
        CERTIFIED,
        {
            "system": spec.name,
            "plan_digest": plan.digest,
            "plan_path": plan.path,
            "certificate_id": cert.certificate_id,
            "certificate_url": cert_url,
            "certificate_digest": verified.envelope_digest,
            "manifest_url": manifest_url,
            "pdf_url": pdf_url,
            "status": cert.status.value,
            "ledger_sequence": ledger_record.record.sequence,
            "ledger_head": ledger_record.head,
            "locations": [
                LocationSummary(
                    url=loc.uri,
                    found=loc.found.versions,
                    archived=loc.archived.versions,
                    purged=loc.purged.versions,
                    held=loc.held.versions,
                ).model_dump()
                for loc in cert.locations
            ],
            "keys": [k.uri for k in cert.keys_destroyed],
            "credentials": [f"{c.kind} {c.identifier}" for c in cert.credentials_revoked],
            "exceptions": [f"{e.subject}: {e.kind}: {e.description}" for e in cert.exceptions],
        },
    )
    create_markdown_artifact(
        markdown
        + f"\n\n---\nCertificate: [{cert_url}]({cert_url})  \nPDF: [{pdf_url}]({pdf_url})  \n"
        f"Deletion manifest: [{manifest_url}]({manifest_url})  \n"
        f"Ledger head after recording it: `{ledger_record.head}`  \n"
        f"Verify offline: `sundown certificate verify {_display(cert_url)} --fingerprint "
        f"{verified.key_fingerprint}`\n",
        key=artifact_key("decommission-certificate", spec.name),
        description=f"Decommissioning certificate {cert.certificate_id}: {cert.status.value}",
    )
    result = _result_of_certified(journal, record)
    result.resumed = resumed
    return result


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


def _location_record(
    spec: SystemSpec,
    plan: Plan,
    journal: Journal,
    index: int,
    verification: dict[str, Any],
    purged: _steps.CopyCounts,
    keys: list[KeyDestroyed],
) -> tuple[LocationRecord, list[CertificateException], bool]:
    loc = plan.locations[index]
    held_reasons: set[str] = set()
    held_at_purge: set[tuple[str, str | None, str]] = set()
    failed_ids: set[tuple[str, str | None, str]] = set()
    held = _steps.CopyCounts()
    failed = _steps.CopyCounts()
    for outcome in _execute.outcomes(journal, "purge", index):
        for c in outcome.held:
            held.add(c.kind, c.size)
            held_reasons.add(c.reason)
            held_at_purge.add((c.key, c.version_id, c.kind))
        for c in outcome.failed:
            failed.add(c.kind, c.size)
            failed_ids.add((c.key, c.version_id, c.kind))
    # Per copy: what protected it (recorded in the approved plan) and what became of it.
    copies = copy_breakdown(
        _steps.iter_plan_entries(plan.path, plan.digest, location=index),
        keys,
        held_at_purge,
        failed_ids,
    )
    found, ce, logical, held_ce = copies.found, copies.ce, copies.logical, copies.held_ce
    held.merge(copies.held)
    held_reasons |= copies.held_reasons
    archived = _steps.CopyCounts()
    for outcome in _execute.outcomes(journal, "archive", index):
        archived.merge(outcome.done)
    check = next(v for v in verification["locations"] if v["url"] == loc.url)
    # Settings as read at inventory time (the plan's); a plan made before they were recorded
    # falls back to reading them now.
    settings = loc.settings or _steps.store_settings(loc.url, spec)
    soft_seconds, soft = settings.soft_delete_seconds, settings.soft_delete
    purge_times = [o.finished_at for o in _execute.outcomes(journal, "purge", index)]
    last_purge = max(purge_times) if purge_times else datetime.now(UTC)
    window_end = last_purge + timedelta(seconds=soft_seconds) if soft_seconds else None
    restorable = check.get("restorable_until")
    if restorable and (window_end is None or datetime.fromisoformat(restorable) > window_end):
        window_end = datetime.fromisoformat(restorable)  # the latest hard-delete time found
    exceptions: list[CertificateException] = []
    if window_end is not None:
        copies_found = check.get("soft_deleted_copies") or []
        listed = ""
        if copies_found:
            listed = (
                f"; soft-deleted copies found at verification ({check.get('soft_deleted', 0)}, "
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
    if not check["passed"]:
        exceptions.append(
            CertificateException(
                subject=loc.url, kind="verification failed", description=check["details"]
            )
        )
    scheme = loc.url.split("://", 1)[0]
    added = journal.get(f"lifecycle-{index:03d}-added")
    lifecycle = (
        None
        if added is None
        else f"lifecycle expiry: expired by the provider under Sundown's lifecycle rule "
        f"{added['data']['rule_id']} (prefix {added['data']['scope']!r}), then found gone by "
        "Sundown's re-listing; its batch purge afterwards only confirmed"
    )
    claims = _claims(scheme, copies, keys, soft, window_end, lifecycle)
    backups = _archive_copies(spec, journal, index, loc.url)
    remaining = int(check.get("remaining", 0))
    accepted = bool(check["passed"]) and not failed.versions and not remaining
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
        verification=Verification(
            method="full re-listing (inventory) of every version, delete marker, snapshot, "
            "soft-deleted copy and incomplete upload under the location",
            result=VerificationResult.PASSED if check["passed"] else VerificationResult.FAILED,
            details=check["details"],
            verified_at=datetime.fromisoformat(check["verified_at"]),
        ),
        validation=Validation(
            result=ValidationResult.ACCEPTED if accepted else ValidationResult.REJECTED,
            basis="automatic: the re-listing and the purge results compared with the approved "
            "plan (held copies are accepted as planned exceptions)",
            details=(
                "nothing found"
                if not found.versions
                else "every planned copy purged or held as planned; nothing else remains"
            )
            if accepted
            else f"{remaining} copies remain, {failed.versions} purges failed",
        ),
        backups=backups,
    )
    return record, exceptions, not check["passed"] or bool(failed.versions)


def _cert_counts(c: _steps.CopyCounts) -> CertCounts:
    return CertCounts(objects=c.objects, versions=c.versions, bytes=c.bytes)


_UNLINKED = {
    "file": "unlinking is logical deletion: the file system and its media may keep the bytes "
    "(see docs/keyring.md)",
}


@dataclass
class CopyBreakdown:
    """One location's copies: found (by protection), covered by a cryptographic erase (under a
    key destroyed, verified gone and claimable, at a version it destroyed: purged, held or not),
    logically deleted only (purged, not covered), held."""

    found: _steps.CopyCounts = field(default_factory=_steps.CopyCounts)
    ce: _steps.CopyCounts = field(default_factory=_steps.CopyCounts)
    logical: _steps.CopyCounts = field(default_factory=_steps.CopyCounts)
    held: _steps.CopyCounts = field(default_factory=_steps.CopyCounts)
    held_ce: int = 0
    held_reasons: set[str] = field(default_factory=set)
    ce_keys: set[str] = field(default_factory=set)
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
    claimable and destroyed v. ``held_at_purge`` and ``failed`` name copies (key, version id,
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
        key = erasable.get(guard.key or "") if guard.protection is Protection.ENVELOPE else None
        ident = (e.key, e.version_id, e.kind.value)
        if e.disposition == "held":
            out.held.add(e.kind, e.size)
            out.held_reasons.add(e.reason or "held")
        if key is not None and guard.key_version in key.versions_destroyed:
            out.ce.add(e.kind, e.size)
            out.ce_keys.add(key.uri)
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
                + ": each copy's sidecar data key unwrapped under it and its first segment "
                "authenticated when the plan was made"
                + (f"; the copies themselves: {lifecycle}" if lifecycle else ""),
                keys=sorted(copies.ce_keys),
                irrecoverable_after=IrrecoverableAfter(
                    at=max(k.destroyed_at for k in used),
                    basis=", ".join(k.uri for k in used) + " destroyed and verified gone",
                ),
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


def _archive_copies(
    spec: SystemSpec, journal: Journal, index: int, url: str
) -> list[CopyDisposition]:
    """Every archive copy of this location's data: this retirement's archive batches and every
    earlier retention sweep's (signed journal records in the evidence location), each with its
    URI, bytes, digest, encryption, key and how it was verified."""
    batches = [("this retirement", o) for o in _execute.outcomes(journal, "archive", index)]
    for digest, outcome in _execute.earlier_archives(spec):
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
        target = spec.archive.target if spec.archive is not None else None
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


def _certificate(
    spec: SystemSpec,
    plan: Plan,
    journal: Journal,
    keys: list[KeyDestroyed],
    credentials: list[CredentialRevoked],
    verification: dict[str, Any],
    purged: dict[int, _steps.CopyCounts],
    manifest: Any,
) -> Certificate:
    meta = journal.get(APPROVED)["data"]  # type: ignore[index]
    # Every recorded check drives the status: a key that still answers at verification is not
    # destroyed, whatever its destruction step said, and cryptographic erase is not claimed.
    keys = [k.judged(still_answers=_key_still_answers(verification, k.uri)) for k in keys]
    records, exceptions, failed = [], [], False
    for loc in plan.locations:
        record, exc, bad = _location_record(
            spec,
            plan,
            journal,
            loc.index,
            verification,
            purged.get(loc.index, _steps.CopyCounts()),
            keys,
        )
        records.append(record)
        exceptions += exc
        failed |= bad
    for check in verification.get("locations") or []:
        if not check.get("passed"):
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
    live = verification.get("credentials") or {}
    for c in credentials:
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
    now = datetime.now(UTC)
    completed = max([r.verification.verified_at for r in records] + [now])
    status = (
        Status.FAILED
        if failed
        else (Status.COMPLETE_WITH_EXCEPTIONS if exceptions else Status.COMPLETE)
    )
    return Certificate(
        certificate_id=new_certificate_id(spec.name, now),
        issued_at=max(now, completed),
        system=SystemRef(name=spec.name, owner=spec.owner, spec_digest=spec.digest()),
        plan_digest=plan.digest,
        performer=_party(meta["performer"]),
        approver=_party(meta["approver"]),
        approved_at=datetime.fromisoformat(meta["approved_at"]),
        execution=Execution(
            started_at=datetime.fromisoformat(meta["started_at"]),
            completed_at=completed,
            **_placements(plan),
        ),
        locations=records,
        keys_destroyed=keys,
        credentials_revoked=credentials,
        deletion_manifest=manifest,
        exceptions=exceptions,
        status=status,
    )


_PLACEMENT_PROVIDERS = {"s3": "aws", "gs": "gcp", "az": "azure", "file": "local"}


def _placements(plan: Plan) -> dict[str, list[str]]:
    """NIST "location": the accounts and regions of the locations sanitized (not the evidence
    store's), in plan order, without repeats: ``{"accounts": [...], "regions": [...]}``. Each
    bucket (container, folder tree) is asked once. A store without ``placement()``, or one that
    fails, is recorded as unknown with the reason; it never stops the certificate."""
    from urllib.parse import urlsplit

    accounts: list[str] = []
    regions: list[str] = []
    asked: set[str] = set()
    for loc in plan.locations:
        parts = urlsplit(loc.url)
        where = f"{parts.scheme}://{parts.netloc}"
        if where in asked:
            continue
        asked.add(where)
        provider = _PLACEMENT_PROVIDERS.get(parts.scheme, parts.scheme)
        try:
            store = registry.open_store(loc.url)
            placed = store.placement() if isinstance(store, Placed) else None
        except Exception as exc:  # evidence gathering never stops a retirement
            reason = str(exc) if isinstance(exc, SundownError) else type(exc).__name__
            get_run_logger().warning("placement of %s not learned: %s", loc.url, reason)
            placed = Placement(provider, None, None, f"{where}: {reason}")
        if placed is None:
            placed = Placement(provider, None, None, f"{where}: the store does not report it")
        for out, label in ((accounts, placed.account_label), (regions, placed.region_label)):
            if label is not None and label[:1000] not in out:
                out.append(label[:1000])  # a certificate field's bound is 4096 characters
    return {"accounts": accounts, "regions": regions}


def _result_of_certified(
    journal: Journal, record: dict[str, Any] | None = None
) -> DecommissionResult:
    data = (record or journal.get(CERTIFIED) or {})["data"]
    return DecommissionResult(
        system=data["system"],
        plan_digest=data["plan_digest"],
        plan_path=data["plan_path"],
        status=data["status"] if record is not None else "already decommissioned",
        certificate_id=data["certificate_id"],
        certificate_url=data["certificate_url"],
        certificate_digest=data["certificate_digest"],
        manifest_url=data["manifest_url"],
        pdf_path=_display(data["pdf_url"]),
        ledger_sequence=data["ledger_sequence"],
        ledger_head=data.get("ledger_head"),
        locations=[LocationSummary.model_validate(x) for x in data["locations"]],
        keys_destroyed=data["keys"],
        credentials_revoked=data["credentials"],
        exceptions=data["exceptions"],
    )
