"""Adversarial: a retirement's journal and plan, read back from the evidence location, never
steer a retirement (issue #11, "Resume re-derives, never trusts", "Separation of duties").

Each test runs as the attacker would, on the real Prefect test server, the file store and the
local keyring: the attacker writes into the system's evidence location with create-only puts
(what Object Lock still allows), or, where a test says so, holds more (an insider who can sign
with the certificate key, to show that the second layer, re-deriving the plan against the spec,
holds on its own). Then the ordinary next run of ``decommission_system`` (no digest given, or the
digest the attacker wants) is made, and each test asserts that it stopped with an error naming
what differed, that nothing in either team's stores changed, that no key was destroyed and that
no certificate was issued (no certificate file, no ledger record).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flows import _steps
from flows.decommission import decommission_system
from flows.journal import APPROVED, FORMAT, PAYLOAD_TYPE, PLAN_FILE
from flows.models import DecommissionParameters, Party
from sundown import canonical, dsse, registry
from sundown.errors import InputError, IntegrityError, ScopeError
from sundown.spec.loader import load_spec, parse_spec
from sundown.spec.model import SystemSpec
from tests.flows.systems import make_system

APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")
PERFORMER = Party(name="Dana Okafor", role="operator")
Tree = dict[str, str]


# --------------------------------------------------------------------------------------------
# The world: our system, another team's system, and what must not change


class World:
    def __init__(self, root: Path) -> None:
        self.ours = make_system(root / "ours", "sys-a")
        self.theirs = make_system(root / "theirs", "team-b")
        self.evidence = self.ours.root / "evidence"

    @property
    def spec(self) -> SystemSpec:
        return load_spec(self.ours.spec_path, variables=self.ours.variables)

    def params(self, **kw: Any) -> DecommissionParameters:
        kw.setdefault("performer", PERFORMER)
        return DecommissionParameters(
            spec_path=str(self.ours.spec_path),
            variables=self.ours.variables,
            approval_timeout_seconds=10,  # a run that wrongly pauses fails fast
            **kw,
        )

    def stores(self) -> Tree:
        out: Tree = {}
        for system in (self.ours, self.theirs):
            base = system.root / "stores"
            for p in sorted(base.rglob("*")):
                if p.is_file():
                    out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        return out

    def evidence_store(self) -> Any:
        return registry.open_store(self.evidence.as_uri())

    def assert_nothing_changed(self, before: Tree) -> None:
        after = self.stores()
        lost = sorted(set(before) - set(after))
        assert not lost, f"{len(lost)} files deleted, e.g. {lost[:3]}"
        assert after == before, "files changed"
        assert self.ours.canaries_intact() and self.theirs.canaries_intact()
        self.assert_keys_alive()
        self.assert_no_certificate()

    def assert_keys_alive(self) -> None:
        for uri in ("local://sys-a-kek", "local://team-b-kek"):
            registry.open_key_service(uri).info()  # KeyDestroyedError if it was destroyed

    def assert_no_certificate(self) -> None:
        certs = list(self.evidence.rglob("certificate*"))
        assert not certs, certs
        records = self.evidence / "ledger"
        decommissions = [p for p in self.evidence.rglob("*.json") if "records" in p.parts]
        assert (
            not decommissions
            or not records.exists()
            or all('"decommission"' not in p.read_text() for p in decommissions)
        )


@pytest.fixture
def world(tmp_path: Path, prefect_api: str) -> World:
    return World(tmp_path)


# --------------------------------------------------------------------------------------------
# The attacker's tools


def forge_plan(
    world: World,
    source: SystemSpec,
    *,
    extra: list[dict[str, Any]] | None = None,
) -> tuple[bytes, str]:
    """A plan made from ``source`` (a real inventory of whatever it names), relabelled as a plan
    of our system made from our spec: (plan file bytes, its digest)."""
    path = world.ours.root / f"forged-{datetime.now(UTC):%H%M%S%f}.jsonl"
    _steps.plan_system(source, str(path))
    real = world.spec
    out = []
    for line in path.read_bytes().splitlines():
        obj = json.loads(line)
        if obj["t"] == "header":
            obj.update(system=real.name, owner=real.owner, spec_digest=real.digest())
        if obj["t"] == "end":
            out += [canonical.dumps(x) + b"\n" for x in extra or []]
        out.append(canonical.dumps(obj) + b"\n")
    data = b"".join(out)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def spec_with(world: World, edit: Callable[[str], str]) -> SystemSpec:
    """Our spec's text, edited (what the attacker wants the plan to cover)."""
    return parse_spec(edit(world.ours.spec_path.read_text()), variables=world.ours.variables)


def approval_data(world: World, approver: Party = APPROVER, performer: Party = PERFORMER) -> Any:
    now = datetime.now(UTC).isoformat()
    return {
        "spec_digest": world.spec.digest(),
        "approver": approver.model_dump(),
        "approved_at": now,
        "performer": performer.model_dump(),
        "started_at": now,
        "batch_size": 1000,
    }


def plant(world: World, digest: str, name: str, data: bytes) -> None:
    """A create-only write into the plan's folder of the evidence location."""
    key = f"decommissions/sys-a/{digest.removeprefix('sha256:')}/{name}"
    world.evidence_store().put(key, [data], if_absent=True)


def v1_record(step: str, digest: str, data: dict[str, Any]) -> bytes:
    """A journal record as Sundown wrote them before records were signed (and as the issue's
    attacker planted them)."""
    record = {
        "step": step,
        "plan_digest": digest,
        "time": "2026-01-01T00:00:00+00:00",
        "data": data,
    }
    return json.dumps(record).encode()


def signed_record(world: World, digest: str, step: str, data: dict[str, Any], key: str) -> None:
    """A well-formed journal record signed with ``key`` (the journal's own format), written
    create-only into the plan's folder."""
    record = {
        "format": FORMAT,
        "system": "sys-a",
        "root": "decommissions",
        "plan_digest": digest,
        "step": step,
        "time": datetime.now(UTC).isoformat(),
        "data": data,
    }
    envelope = dsse.sign(PAYLOAD_TYPE, json.dumps(record).encode(), registry.open_signer(key))
    plant(world, digest, f"journal/{step}.json", json.dumps(envelope.to_json()).encode())


def run_refused(world: World, error: type[Exception], *expects: str, **kw: Any) -> str:
    before = world.stores()
    with pytest.raises(error) as info:
        decommission_system(world.params(**kw))
    text = str(info.value)
    for expect in expects:
        assert expect in text, f"expected {expect!r} in: {text}"
    assert "without an approval" not in text and "to resume it" not in text
    world.assert_nothing_changed(before)
    return text


def interrupted(
    world: World, monkeypatch: pytest.MonkeyPatch, approver: Party = APPROVER
) -> tuple[str, Path]:
    """A genuine retirement of our system, approved (by ``approver``) and interrupted after
    purging the weights (batches of 2): (plan digest, its evidence folder)."""
    plan = decommission_system(world.params(dry_run=True))
    real = _steps.purge_batch.fn

    def crashing(url: str, location: int, number: int, entries: list[Any]) -> Any:
        if location == 1:
            raise RuntimeError("simulated crash")
        return real(url, location, number, entries)

    with monkeypatch.context() as mp:
        mp.setattr(_steps.purge_batch, "fn", crashing)
        with pytest.raises(RuntimeError, match="simulated crash"):
            decommission_system(
                world.params(approve_digest=plan.plan_digest, approver=approver, batch_size=2)
            )
    assert world.ours.files("models/sys-a") == [] and world.ours.files("logs/sys-a")
    folder = world.evidence / "decommissions" / "sys-a" / plan.plan_digest.removeprefix("sha256:")
    return plan.plan_digest, folder


# --------------------------------------------------------------------------------------------
# (a)-(c): a planted plan and approval for another team's folder and KEK


def test_planted_unsigned_journal_for_another_teams_folder_is_refused(world: World) -> None:
    """The issue's attack, as filed: plan.jsonl for team-b's folders and KEK, relabelled as our
    system's, and journal/000-approved.json carrying our spec's digest (unsigned, the old
    format). The next ordinary run (no digest) refuses, naming the record."""
    data, digest = forge_plan(
        world, load_spec(world.theirs.spec_path, variables=world.theirs.variables)
    )
    assert b"team-b-kek" in data and b"/team-b" in data
    plant(world, digest, PLAN_FILE, data)
    plant(
        world, digest, f"journal/{APPROVED}.json", v1_record(APPROVED, digest, approval_data(world))
    )
    run_refused(world, IntegrityError, f"{APPROVED}.json", "unsigned")
    # a dry run (sundown plan) refuses too: it would otherwise report on a planted journal
    run_refused(world, IntegrityError, "unsigned", dry_run=True)


def test_planted_approval_with_its_signature_stripped_is_refused(world: World) -> None:
    """A DSSE envelope of a well-formed approval payload with no signature at all."""
    data, digest = forge_plan(
        world, load_spec(world.theirs.spec_path, variables=world.theirs.variables)
    )
    plant(world, digest, PLAN_FILE, data)
    # sign properly with a throwaway key, then strip the signature
    registry.create_key("local://throwaway", signing=True)
    signed_record(world, digest, APPROVED, approval_data(world), "local://throwaway")
    path = world.evidence / "decommissions" / "sys-a" / digest[7:] / "journal" / f"{APPROVED}.json"
    envelope = json.loads(path.read_text())
    envelope["signatures"] = []
    path.write_text(json.dumps(envelope))
    run_refused(world, IntegrityError, f"{APPROVED}.json", "exactly one signature")


def test_planted_approval_signed_by_a_key_the_spec_does_not_name_is_refused(world: World) -> None:
    """The attacker signs a well-formed approval with their own key (here: team-b's certificate
    key, a real signing key of the same keyring)."""
    data, digest = forge_plan(
        world, load_spec(world.theirs.spec_path, variables=world.theirs.variables)
    )
    plant(world, digest, PLAN_FILE, data)
    signed_record(world, digest, APPROVED, approval_data(world), "local://team-b-certificates")
    run_refused(
        world, IntegrityError, f"{APPROVED}.json", "not signed by the spec's certificate key"
    )


# --------------------------------------------------------------------------------------------
# (d) a forged "purge done" in a genuine unfinished journal


@pytest.mark.parametrize("forgery", ["unsigned", "another-key", "genuine-record-renamed"])
def test_forged_purge_done_in_a_genuine_journal_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, forgery: str
) -> None:
    """After a genuine crash, the attacker records the training data's purge as done, hoping
    the re-run skips it and certifies "complete" with the data still there."""
    digest, folder = interrupted(world, monkeypatch)
    step = "purge-001-000000"
    fake = {"location": 1, "batch": 0, "done": {}, "held": [], "failed": []}
    if forgery == "unsigned":
        plant(world, digest, f"journal/{step}.json", v1_record(step, digest, fake))
        expects = ("unsigned",)
    elif forgery == "another-key":
        signed_record(world, digest, step, fake, "local://team-b-certificates")
        expects = ("not signed by the spec's certificate key",)
    else:
        genuine = (folder / "journal" / "purge-000-000000.json").read_bytes()
        plant(world, digest, f"journal/{step}.json", genuine)
        expects = ("signed for step 'purge-000-000000'",)
    text = run_refused(world, IntegrityError, f"{step}.json", *expects)
    assert "sha256:" in text or step in text
    assert len(world.ours.files("data/sys-a")) == 2 and len(world.ours.files("logs/sys-a")) == 3


# --------------------------------------------------------------------------------------------
# (e) an approval replayed from another plan's journal; (f) a plan swapped after approval


def test_approval_replayed_from_another_plans_journal_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A genuine, validly signed approval of plan P1 copied beside a forged plan P2."""
    _, folder = interrupted(world, monkeypatch)
    genuine = (folder / "journal" / f"{APPROVED}.json").read_bytes()
    data, digest = forge_plan(
        world, load_spec(world.theirs.spec_path, variables=world.theirs.variables)
    )
    plant(world, digest, PLAN_FILE, data)
    plant(world, digest, f"journal/{APPROVED}.json", genuine)
    run_refused(world, IntegrityError, f"{APPROVED}.json", "signed for plan_digest")


def test_plan_swapped_after_approval_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone who can overwrite (not only create) replaces the approved plan file with one
    for team-b's folders; the approval names the original digest."""
    digest, folder = interrupted(world, monkeypatch)
    data, _ = forge_plan(world, load_spec(world.theirs.spec_path, variables=world.theirs.variables))
    (folder / PLAN_FILE).write_bytes(data)
    run_refused(world, IntegrityError, "changed after it was made", digest)
    run_refused(
        world, IntegrityError, "changed after it was made", approve_digest=digest, approver=APPROVER
    )


# --------------------------------------------------------------------------------------------
# (g) separation of duties; (h) the approval policy at resume


def test_self_approval_is_refused_unless_the_spec_allows_it(world: World) -> None:
    plan = decommission_system(world.params(dry_run=True))
    me = Party(name="  lee   MARCHETTI ", role="security-officer")  # the approver, respelled
    run_refused(
        world,
        InputError,
        "separation of duties",
        approve_digest=plan.plan_digest,
        approver=APPROVER,
        performer=me,
    )
    # the spec (reviewed like code) allows it: then it goes ahead
    spec = world.ours.spec_path
    spec.write_text(
        spec.read_text().replace("approval:\n", "approval:\n  allow_self_approval: true\n")
    )
    plan = decommission_system(world.params(dry_run=True))
    result = decommission_system(
        world.params(approve_digest=plan.plan_digest, approver=APPROVER, performer=me)
    )
    assert result.status == "complete", result.exceptions
    assert world.theirs.canaries_intact() and world.ours.canaries_intact()


def test_self_approval_recorded_in_a_signed_journal_is_refused_at_resume(world: World) -> None:
    """Insider with the certificate key: a signed approval record whose approver is the
    performer, for a plan that is otherwise exactly the spec's. The resume refuses it."""
    data, digest = forge_plan(world, world.spec)
    plant(world, digest, PLAN_FILE, data)
    same = Party(name="Lee Marchetti", role="security-officer")
    signed_record(
        world, digest, APPROVED, approval_data(world, APPROVER, same), "local://sys-a-certificates"
    )
    run_refused(world, InputError, "separation of duties", "approval policy")


def test_approval_whose_role_the_policy_no_longer_allows_is_not_used(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approved by a ml-platform-lead, interrupted; then the spec's policy is tightened to
    security officers. The old approval does not carry over (the journal names another spec
    digest, so it is not resumed): the re-run with the old digest and approver is checked
    against the tightened policy and refused, and nothing more is deleted."""
    lead = Party(name="Ari Lind", role="ml-platform-lead")
    plan_digest, _folder = interrupted(world, monkeypatch, approver=lead)
    spec = world.ours.spec_path
    spec.write_text(
        spec.read_text().replace("[security-officer, ml-platform-lead]", "[security-officer]")
    )
    run_refused(
        world,
        InputError,
        "role 'ml-platform-lead'",
        "requires one of",
        approve_digest=plan_digest,
        approver=lead,
    )


def test_signed_approval_by_a_role_outside_the_policy_is_refused_at_resume(world: World) -> None:
    """Insider with the certificate key signs an approval by an intern for the spec's own
    plan: the resume checks the recorded approval against the policy again."""
    data, digest = forge_plan(world, world.spec)
    plant(world, digest, PLAN_FILE, data)
    intern = Party(name="Sam Doe", role="intern")
    signed_record(
        world, digest, APPROVED, approval_data(world, intern), "local://sys-a-certificates"
    )
    run_refused(world, InputError, "role 'intern'", "requires one of")


# --------------------------------------------------------------------------------------------
# (i), (j): the plan against the spec, even under a validly signed approval


@pytest.mark.parametrize(
    "where, expect",
    [
        ("stores/models", "path boundary"),  # wider: holds our weights and every canary
        ("stores/models/sys-ax", "not a location of the spec"),  # a sibling prefix
    ],
    ids=["wider-prefix", "sibling-prefix"],
)
def test_plan_location_outside_the_spec_is_refused_under_a_signed_approval(
    world: World, where: str, expect: str
) -> None:
    source = spec_with(world, lambda t: t.replace("stores/models/sys-a\n", f"{where}\n"))
    data, digest = forge_plan(world, source)
    plant(world, digest, PLAN_FILE, data)
    signed_record(world, digest, APPROVED, approval_data(world), "local://sys-a-certificates")
    run_refused(world, ScopeError, "does not lie inside the current spec", expect)


def test_plan_with_another_kek_is_refused_under_a_signed_approval(world: World) -> None:
    source = spec_with(world, lambda t: t.replace("local://sys-a-kek", "local://team-b-kek"))
    data, digest = forge_plan(world, source)
    plant(world, digest, PLAN_FILE, data)
    signed_record(world, digest, APPROVED, approval_data(world), "local://sys-a-certificates")
    run_refused(world, ScopeError, "destroys key local://team-b-kek")


def test_plan_revoking_a_credential_not_in_the_spec_is_refused(world: World) -> None:
    credential = {
        "t": "credential",
        "kind": "vault_kv",
        "id": "secret/team-b/database",
        "action": "destroy every version and the metadata",
        "state": "present",
    }
    data, digest = forge_plan(world, world.spec, extra=[credential])
    plant(world, digest, PLAN_FILE, data)
    signed_record(world, digest, APPROVED, approval_data(world), "local://sys-a-certificates")
    run_refused(world, ScopeError, "secret/team-b/database", "not a credential the spec declares")


def test_junk_in_the_systems_evidence_folder_is_refused(world: World) -> None:
    """Anything under decommissions/<system>/ that is not a plan folder is named, not skipped."""
    world.evidence_store().put(
        "decommissions/sys-a/not-a-digest/journal/000-approved.json", [b"{}"]
    )
    run_refused(world, IntegrityError, "not-a-digest", "not in a plan folder")


def test_a_giant_planted_journal_record_is_refused_unread(world: World) -> None:
    """A record far larger than any Sundown writes (to exhaust the runner's memory) is refused
    after reading at most the bound, before its JSON is parsed."""
    from flows.journal import MAX_RECORD_BYTES

    world.evidence_store().put(
        f"decommissions/sys-a/{'ab' * 32}/journal/000-approved.json",
        [b" " * (1024 * 1024)] * (MAX_RECORD_BYTES // (1024 * 1024) + 1),
    )
    run_refused(world, IntegrityError, "larger than", "000-approved")


# --------------------------------------------------------------------------------------------
# The approval through the Prefect pause form; a shard; a genuine journal


def test_self_approval_through_the_pause_form_is_refused(world: World) -> None:
    """The performer resumes their own paused run, typing their name respelled."""
    from tests.flows.paused import approve, start_in_thread, wait_paused

    plan = decommission_system(world.params(dry_run=True))
    before = world.stores()
    thread, out = start_in_thread(world.params())
    wait_paused(out["id"], out, timeout=60)
    approve(out["id"], plan.plan_digest, "DANA okafor", "security-officer")
    thread.join(120)
    assert isinstance(out.get("error"), InputError), out
    assert "separation of duties" in str(out["error"])
    world.assert_nothing_changed(before)


def test_a_shard_refuses_a_plan_without_a_signed_approval(world: World) -> None:
    """A shard is a flow of its own: pointed at a planted plan (unsigned approval), it purges
    nothing."""
    from flows.shards import ShardParameters, run_shard

    data, digest = forge_plan(
        world, load_spec(world.theirs.spec_path, variables=world.theirs.variables)
    )
    plant(world, digest, PLAN_FILE, data)
    plant(
        world, digest, f"journal/{APPROVED}.json", v1_record(APPROVED, digest, approval_data(world))
    )
    before = world.stores()
    params = ShardParameters(
        operation="purge",
        evidence_url=world.evidence.as_uri(),
        certificate_key="local://sys-a-certificates",
        system="sys-a",
        plan_digest=digest,
        location=0,
        batch_size=1000,
        first_batch=0,
        last_batch=1,
    )
    with pytest.raises(IntegrityError, match="unsigned"):
        run_shard(params)
    world.assert_nothing_changed(before)


def test_a_genuine_retirement_journals_signed_records_naming_both_parties(world: World) -> None:
    """The positive side: every record of a completed retirement is one DSSE signature by the
    certificate key over its own step; the approval binds approver, performer and spec."""
    plan = decommission_system(world.params(dry_run=True))
    result = decommission_system(world.params(approve_digest=plan.plan_digest, approver=APPROVER))
    assert result.status == "complete", result.exceptions
    assert world.theirs.canaries_intact()
    registry.open_key_service("local://team-b-kek").info()
    folder = world.evidence / "decommissions" / "sys-a" / plan.plan_digest[7:] / "journal"
    pem = registry.open_signer("local://sys-a-certificates").public_key_pem()
    steps = []
    for path in sorted(folder.glob("*.json")):
        envelope = dsse.Envelope.loads(path.read_bytes())
        assert envelope.payload_type == PAYLOAD_TYPE and len(envelope.signatures) == 1
        record = json.loads(dsse.verify(envelope, pem))
        assert record["step"] == path.stem and record["plan_digest"] == plan.plan_digest
        steps.append(path.stem)
    assert {APPROVED, "verified", "certified"} <= set(steps)
    approved = json.loads(dsse.Envelope.loads((folder / f"{APPROVED}.json").read_bytes()).payload)
    data = approved["data"]
    assert data["approver"]["name"] == APPROVER.name
    assert data["performer"]["name"] == PERFORMER.name
    assert data["spec_digest"] == world.spec.digest()
    assert data["approved_via"]["channel"].startswith("approve_digest parameter")


def with_entry(data: bytes, edit: Callable[[dict[str, Any]], None]) -> tuple[bytes, str]:
    """The plan with one more entry: a copy of its first log entry, edited."""
    lines = data.splitlines(keepends=True)
    i = next(n for n, line in enumerate(lines) if b'"t":"entry"' in line and b'"loc":2' in line)
    entry = json.loads(lines[i])
    edit(entry)
    lines.insert(i + 1, canonical.dumps(entry) + b"\n")
    out = b"".join(lines)
    return out, "sha256:" + hashlib.sha256(out).hexdigest()


@pytest.mark.parametrize(
    "edit, expect",
    [
        (lambda e: e.update(key="../sys-ax/canary.bin"), "planning rules hold it"),
        (lambda e: e.update(key="a/./b.log"), "planning rules hold it"),
        (lambda e: e.update(key="x\x00y"), "is outside it"),
        (lambda e: e.update(bypass_governance=True), "bypasses governance retention"),
        (lambda e: e.update(archive_key="logs/file/elsewhere.log"), "archives to"),
        (lambda e: e.update(loc=7), "names location 7"),
    ],
    ids=["dotdot", "dot", "nul", "governance-bypass", "archive-elsewhere", "no-such-location"],
)
def test_plan_entry_outside_the_planning_rules_is_refused_under_a_signed_approval(
    world: World, edit: Callable[[dict[str, Any]], None], expect: str
) -> None:
    """One entry the planning rules would never write, in a plan that is otherwise exactly the
    spec's, under a validly signed approval (insider): refused before the first batch."""
    base, _ = forge_plan(world, world.spec)
    data, digest = with_entry(base, edit)
    plant(world, digest, PLAN_FILE, data)
    signed_record(world, digest, APPROVED, approval_data(world), "local://sys-a-certificates")
    run_refused(world, ScopeError, expect)


def test_another_approval_while_a_retirement_is_unfinished_names_the_plan_to_review(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message no longer advises re-running without an approval (which resumed whatever
    journal was there): it names the unfinished plan to review, and nothing changes."""
    digest, _ = interrupted(world, monkeypatch)
    fresh = decommission_system(world.params(dry_run=True))  # what remains, planned anew
    assert fresh.plan_digest != digest
    text = run_refused(
        world,
        InputError,
        f"(plan {digest}) is unfinished",
        "Review the unfinished plan",
        approve_digest=fresh.plan_digest,
        approver=APPROVER,
    )
    assert "plan.jsonl" in text
