"""Attacks on what a path means: ciphertexts moved or rolled back inside a store, file://
locations reached through symbolic links, special files inside a location, missing roots.

Each attack is run as the attacker would: real files, the local keyring, the real ``sundown``
CLI, and (for whole retirements and deployments) the real flows on the session's Prefect server.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

import pytest

from flows.decommission import decommission_system
from flows.deploy import deploy_model
from flows.models import DecommissionParameters, DeployParameters, Party
from sundown import registry
from sundown.certificate import verify_certificate
from sundown.errors import InputError, NotFoundError, ScopeError
from sundown.spec.loader import load_spec
from sundown.spec.overlap import check_no_overlap
from sundown.store import Entry, EntryKind
from tests.cli_run import run
from tests.flows.systems import System, make_system

APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_with_sidecar(src: Path, dst: Path) -> None:
    """What a writer to the store does: ciphertext and sidecar copied over another artifact."""
    shutil.copyfile(src, dst)
    shutil.copyfile(f"{src}.sidecar.json", f"{dst}.sidecar.json")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    registry.create_key("local://paths-kek")
    folder = tmp_path / "bucket" / "models"
    folder.mkdir(parents=True)
    return folder


def encrypt(capsys: pytest.CaptureFixture[str], plain: bytes, dst: Path, *extra: str) -> None:
    src = dst.parent.parent / f"plain-{os.urandom(4).hex()}"
    src.write_bytes(plain)
    code, _, err = run(
        capsys, "encrypt", "--key", "local://paths-kek", *extra, str(src), dst.as_uri()
    )
    assert code == 0, err
    src.unlink()


# --------------------------------------------------------------------------------------------
# (a)-(c): associated data bound by default


def test_sidecar_and_ciphertext_swapped_over_another_artifact_is_refused(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = store / "a.bin", store / "b.bin"
    encrypt(capsys, b"secret A" * 1000, a)
    encrypt(capsys, b"public B" * 1000, b)
    code, _, err = run(capsys, "decrypt", b.as_uri(), str(tmp_path / "b.ok"))
    assert code == 0, err and (tmp_path / "b.ok").read_bytes() == b"public B" * 1000

    copy_with_sidecar(a, b)  # the attacker, who can write to the store
    code, out, err = run(capsys, "decrypt", b.as_uri(), str(tmp_path / "b.out"))
    assert code == 3, out
    assert "IntegrityError" in err and "'a.bin'" in err and "'b.bin'" in err
    assert "verified" not in out
    assert not (tmp_path / "b.out").exists()
    # the same through a plain local path
    code, _, _ = run(capsys, "decrypt", str(b), str(tmp_path / "b.out2"))
    assert code == 3 and not (tmp_path / "b.out2").exists()


def test_rollback_to_an_older_version_is_refused(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = store / "model.bin"
    encrypt(capsys, b"v1 weights", model, "--system", "fraud", "--artifact-version", "1")
    saved = tmp_path / "v1.bin"
    copy_with_sidecar(model, saved)
    encrypt(
        capsys, b"v2 weights", model, "--system", "fraud", "--artifact-version", "2",
        "--overwrite",
    )  # fmt: skip
    want = ("--system", "fraud", "--artifact-version", "2")
    assert run(capsys, "decrypt", *want, model.as_uri(), str(tmp_path / "ok"))[0] == 0

    copy_with_sidecar(saved, model)  # roll v2 back to v1
    code, _, err = run(capsys, "decrypt", *want, model.as_uri(), str(tmp_path / "rolled"))
    assert code == 3 and "version '1'" in err and "version '2'" in err
    assert not (tmp_path / "rolled").exists()
    # without options, decrypt binds the defaults: system 'default' is refused too
    code, _, err = run(capsys, "decrypt", model.as_uri(), str(tmp_path / "rolled2"))
    assert code == 3 and not (tmp_path / "rolled2").exists()


def test_unbound_recovery_decrypts_and_warns(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = store / "a.bin", store / "b.bin"
    encrypt(capsys, b"secret A", a)
    encrypt(capsys, b"public B", b)
    copy_with_sidecar(a, b)
    code, out, err = run(capsys, "decrypt", "--unbound", b.as_uri(), str(tmp_path / "rec"))
    assert code == 0, err
    assert "warning: --unbound" in err and "NOT checked" in err
    assert "NOT bound" in out
    assert (tmp_path / "rec").read_bytes() == b"secret A"
    # --unbound still checks what the caller pins explicitly
    code, _, err = run(
        capsys, "decrypt", "--unbound", "--artifact-path", "b.bin", b.as_uri(), str(tmp_path / "x")
    )
    assert code == 3 and not (tmp_path / "x").exists()


# --------------------------------------------------------------------------------------------
# (d), (e): file:// locations through symbolic links

OTHER = """\
spec_version: 1
name: {name}
owner: eval@example.com
classification: internal
assets:
  evaluation_data:
    locations: [{url}]
keys:
  kek: local://{name}-kek
  certificate: local://{name}-cert
"""


def test_symlinked_ancestor_cannot_hide_an_overlap_with_another_system(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "evalset"
    shared.mkdir(parents=True)
    (shared / "eval.jsonl").write_bytes(b"team B's evaluation set")
    (tmp_path / "alias").symlink_to(tmp_path / "shared")
    systems = tmp_path / "systems"
    systems.mkdir()
    (systems / "a.yaml").write_text(
        OTHER.format(name="team-a", url=f"file://{tmp_path}/alias/evalset")
    )
    (systems / "b.yaml").write_text(OTHER.format(name="team-b", url=f"file://{shared}"))
    a, b = load_spec(systems / "a.yaml"), load_spec(systems / "b.yaml")
    with pytest.raises(InputError, match="through symbolic links") as err:
        check_no_overlap(a, [b])
    assert str(shared) in str(err.value)
    # and within one spec
    both = OTHER.format(name="team-c", url=f"file://{tmp_path}/alias/evalset").replace(
        "locations: [", f"locations: [file://{shared}, "
    )
    (tmp_path / "c.yaml").write_text(both)
    with pytest.raises(InputError, match="through symbolic links"):
        load_spec(tmp_path / "c.yaml")


@pytest.fixture
def system(tmp_path: Path, prefect_api: str) -> System:
    return make_system(tmp_path / "sys")


def params(system: System, **kw: object) -> DecommissionParameters:
    return DecommissionParameters(
        spec_path=str(system.spec_path),
        variables=system.variables,
        **kw,  # type: ignore[arg-type]
    )


def test_symlinked_ancestor_overlap_refused_by_the_flow(system: System, tmp_path: Path) -> None:
    """Another team's spec sits in the same folder; this system's logs location reaches their
    folder through a symlinked ancestor. The retirement refuses before planning."""
    theirs = tmp_path / "team-b" / "logs"
    theirs.mkdir(parents=True)
    (theirs / "keep.log").write_bytes(b"team B")
    spec = system.spec_path.read_text().replace(
        "file://${ROOT}/stores/logs/sys-a", f"file://{tmp_path}/alias/logs"
    )
    (tmp_path / "alias").symlink_to(tmp_path / "team-b")
    system.spec_path.write_text(spec)
    (system.spec_path.parent / "team-b.yaml").write_text(
        OTHER.format(name="team-b", url=f"file://{theirs}")
    )
    with pytest.raises(InputError, match="overlaps other systems"):
        decommission_system(params(system, dry_run=True))
    assert (theirs / "keep.log").read_bytes() == b"team B"


def test_symlinked_root_refused_at_planning(system: System, tmp_path: Path) -> None:
    victim = tmp_path / "elsewhere"
    victim.mkdir()
    (victim / "precious.bin").write_bytes(b"not this system's")
    logs = system.store("logs/sys-a")
    shutil.rmtree(logs)
    logs.symlink_to(victim)
    with pytest.raises(ScopeError, match="is a symbolic link") as err:
        decommission_system(params(system, dry_run=True))
    assert "assets.logs.locations[0]" in str(err.value)
    assert (victim / "precious.bin").read_bytes() == b"not this system's"
    registry.open_key_service("local://sys-a-kek").info()


def test_root_swapped_for_a_symlink_after_planning_stops_the_purge(tmp_path: Path) -> None:
    """The plan was made on the real folder; the attacker then swaps the folder for a link to
    the victim's folder with the same file names. The purge refuses before deleting."""
    root = tmp_path / "loc"
    root.mkdir()
    (root / "x.bin").write_bytes(b"mine")
    store = registry.open_store(root.as_uri())
    entries = list(store.inventory())  # type: ignore[attr-defined]
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "x.bin").write_bytes(b"victim's")
    shutil.rmtree(root)
    root.symlink_to(victim)
    with pytest.raises(ScopeError, match="symbolic link"):
        store.purge(entries)  # type: ignore[attr-defined]
    assert (victim / "x.bin").read_bytes() == b"victim's"


# --------------------------------------------------------------------------------------------
# (f), (g): special files inside a location


def test_symlink_and_fifo_inside_a_location_are_reported_not_followed(
    system: System, tmp_path: Path
) -> None:
    canary = tmp_path / "outside" / "canary.bin"
    canary.parent.mkdir()
    canary.write_bytes(b"outside every scope")
    digest = sha(canary)
    logs = system.store("logs/sys-a")
    (logs / "link-to-canary").symlink_to(canary)
    (logs / "dir-link").symlink_to(canary.parent, target_is_directory=True)
    os.mkfifo(logs / "pipe")

    plan = decommission_system(params(system, dry_run=True))
    result = decommission_system(params(system, approve_digest=plan.plan_digest, approver=APPROVER))
    assert result.status != "complete"
    assert result.status == "complete with exceptions", result.exceptions
    assert canary.read_bytes() == b"outside every scope" and sha(canary) == digest
    assert (logs / "link-to-canary").is_symlink() and (logs / "pipe").exists()
    held = " ".join(result.exceptions)
    for name in ("symlink link-to-canary", "symlink dir-link", "fifo pipe"):
        assert name in held, held
    assert system.canaries_intact()
    pub = registry.open_signer("local://sys-a-certificates").public_key_pem()
    assert result.certificate_url
    cert = verify_certificate(
        Path(result.certificate_url.removeprefix("file://")).read_bytes(), pub
    ).certificate
    assert cert.status.value == "complete with exceptions"
    logs_record = next(r for r in cert.locations if r.uri == logs.as_uri())
    assert logs_record.held.versions == 3
    assert "remaining, not followed" in logs_record.verification.details


def test_fifo_inventory_does_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "loc"
    root.mkdir()
    os.mkfifo(root / "pipe")
    (root / "a.bin").write_bytes(b"a")
    out: list[Entry] = []
    t = threading.Thread(
        target=lambda: out.extend(registry.open_store(root.as_uri()).inventory()),  # type: ignore[attr-defined]
        daemon=True,
    )
    t.start()
    t.join(10)
    assert not t.is_alive(), "inventory blocked on a FIFO"
    assert {(e.key, e.kind) for e in out} == {("a.bin", EntryKind.OBJECT), ("pipe", EntryKind.FIFO)}
    with pytest.raises(InputError, match="fifo"):
        registry.open_store(root.as_uri()).purge([e for e in out if e.kind is EntryKind.FIFO])  # type: ignore[attr-defined]
    assert (root / "pipe").exists() and (root / "a.bin").exists()


# --------------------------------------------------------------------------------------------
# (h): missing roots


def test_missing_root_is_refused_at_planning(system: System) -> None:
    spec = system.spec_path.read_text().replace("stores/logs/sys-a", "stores/logz/sys-a")
    system.spec_path.write_text(spec)
    with pytest.raises(NotFoundError, match=r"assets\.logs\.locations\[0\].*does not exist"):
        decommission_system(params(system, dry_run=True))
    assert system.files("models/sys-a") and system.files("logs/sys-a")
    registry.open_key_service("local://sys-a-kek").info()


def test_missing_root_with_may_be_absent_says_nothing_found(system: System) -> None:
    spec = system.spec_path.read_text().replace(
        "      - file://${ROOT}/stores/logs/sys-a",
        "      - {url: 'file://${ROOT}/stores/logz/sys-a', may_be_absent: true}",
    )
    system.spec_path.write_text(spec)
    plan = decommission_system(params(system, dry_run=True))
    logs = next(loc for loc in plan.locations if "logz" in loc.url)
    assert logs.found == 0
    from sundown.plan import read_plan

    summary = read_plan(plan.plan_path, plan.plan_digest)
    assert "nothing found (root absent)" in summary.to_markdown()


# --------------------------------------------------------------------------------------------
# (b) through a real deployment: --spec binds the version from the newest deployment receipt


def test_rollback_of_a_deployment_is_refused_with_spec(
    tmp_path: Path, prefect_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    system = make_system(tmp_path / "sys", with_weights=False)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_bytes(b'{"v": 1}')
    common = {"spec_path": str(system.spec_path), "variables": system.variables}
    deploy_model(DeployParameters(**common, model_dir=str(model), version="v1"))  # type: ignore[arg-type]
    weights = system.store("models/sys-a")
    saved = tmp_path / "v1-config.json"
    copy_with_sidecar(weights / "config.json", saved)
    (model / "config.json").write_bytes(b'{"v": 2}')
    deploy_model(
        DeployParameters(**common, model_dir=str(model), version="v2", overwrite=True)  # type: ignore[arg-type]
    )
    var = ("--spec", str(system.spec_path), "--var", f"ROOT={system.root}")
    url = (weights / "config.json").as_uri()
    code, out, err = run(capsys, "decrypt", *var, url, str(tmp_path / "ok"))
    assert code == 0, err
    assert (tmp_path / "ok").read_bytes() == b'{"v": 2}' and "version 'v2'" in out

    copy_with_sidecar(saved, weights / "config.json")  # the rollback
    code, _, err = run(capsys, "decrypt", *var, url, str(tmp_path / "rolled"))
    assert code == 3, err
    assert "version 'v1'" in err and "version 'v2'" in err
    assert not (tmp_path / "rolled").exists()

    # A writer to the evidence location rewrites the newest receipt to name v1's digest: the
    # receipt no longer matches the digest its signed ledger record holds.
    receipt = system.root / "evidence" / "deployments" / "sys-a" / "v2.json"
    v1_receipt = (system.root / "evidence" / "deployments" / "sys-a" / "v1.json").read_text()
    receipt.chmod(0o644)
    receipt.write_text(v1_receipt.replace('"version": "v1"', '"version": "v2"'))
    code, _, err = run(capsys, "decrypt", *var, url, str(tmp_path / "forged"))
    assert code == 3 and "differs from what ledger record" in err, err
    assert not (tmp_path / "forged").exists()


def test_subfolder_swapped_for_a_symlink_between_approval_and_purge(
    system: System, tmp_path: Path
) -> None:
    """The run pauses for approval with its plan made on the real folders; while it waits, a
    writer to the store swaps the logs' subfolder ``2025`` for a link to the victim's folder
    holding files of the same names; then the approver approves the reviewed digest. The purge
    checks every key of its batch before deleting any and stops on the link: the victim's files
    survive, the KEK is not destroyed and no certificate is issued."""
    from tests.flows.paused import approve, start_in_thread, wait_paused

    plan = decommission_system(params(system, dry_run=True))
    thread, out = start_in_thread(params(system))
    wait_paused(out["id"], out, timeout=60)
    victim = tmp_path / "victim" / "2025"
    shutil.copytree(system.store("logs/sys-a") / "2025", victim)
    before = {p: sha(p) for p in victim.rglob("*") if p.is_file()}
    shutil.rmtree(system.store("logs/sys-a") / "2025")
    (system.store("logs/sys-a") / "2025").symlink_to(victim, target_is_directory=True)
    approve(out["id"], plan.plan_digest, APPROVER.name, APPROVER.role)
    thread.join(180)
    assert not thread.is_alive()
    assert isinstance(out.get("error"), ScopeError), out
    assert "passes a symbolic link" in str(out["error"])
    registry.open_key_service("local://sys-a-kek").info()  # stopped before key destruction
    assert {p: sha(p) for p in victim.rglob("*") if p.is_file()} == before
    assert system.canaries_intact()
