"""``sundown demo``: the main job on the embedded default (file store, local keyring, no cloud).

Part 1 (the core, no Prefect): creates a key-encryption key and a signing key in a local keyring,
generates a small sample model, encrypts every file into a ``file://`` store (envelope format, one
DEK per file) and signs the model as an OpenSSF Model Signing bundle from the digests computed
while encrypting; then decrypts everything into a fresh folder and verifies the signature.

Part 2 (the lifecycle, through the Prefect flows on a temporary local Prefect server unless
PREFECT_API_URL is set): writes a system spec for a demo system on the file store, deploys the
model into it, rotates its KEK, runs a retention sweep over aged logs, data and caches, plans its
retirement, approves the plan digest, decommissions it, and verifies the signed certificate
against a trust anchor (the certificate key's public key, which the demo holds because it made the
key) and the evidence ledger (which must record it, up to the head the retirement printed).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sundown import registry
from sundown.certificate import MANIFEST_NAME, read_manifest_reference
from sundown.envelope import Artifact, decrypt_to_store, encrypt_to_store
from sundown.signing import sign_digests, verify_model, write_bundle

_SAMPLE = {
    "config.json": 2 * 1024,
    "tokenizer.json": 256 * 1024,
    "model-00001-of-00002.safetensors": 6 * 1024 * 1024,
    "model-00002-of-00002.safetensors": 3 * 1024 * 1024 + 17,
}


def make_sample_model(folder: Path) -> dict[str, int]:
    """A sample model: a few files of random bytes, named like a real checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in _SAMPLE.items():
        (folder / name).write_bytes(os.urandom(size))
    return dict(_SAMPLE)


def run_demo(home: Path, console: Console) -> Path:
    """Run the demo under ``home``; returns the run folder."""
    os.environ["SUNDOWN_HOME"] = str(home)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
    run = home / "demo" / stamp
    system = "demo-chatbot"
    kek_uri = f"local://{system}-kek-{stamp.lower()}"
    signing_uri = f"local://{system}-signing-{stamp.lower()}"

    console.print(f"[bold]Sundown demo[/bold] in {run}")
    registry.create_key(kek_uri)
    registry.create_key(signing_uri, signing=True)
    console.print(f"  keys: {kek_uri} (KEK), {signing_uri} (ECDSA P-256 signing)")
    kek = registry.open_key_service(kek_uri)
    signer = registry.open_signer(signing_uri)

    model = run / "model"
    files = make_sample_model(model)
    store_url = (run / "store" / "weights").as_uri()
    store = registry.open_store(store_url)
    digests: dict[str, str] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("encrypting", total=sum(files.values()))
        for name in files:
            with open(model / name, "rb") as src:
                sidecar = encrypt_to_store(
                    src, store, name, kek, Artifact(system=system, path=name, version="v1")
                )
            digests[name] = sidecar.plaintext_sha256
            progress.advance(task, files[name])
    console.print(f"  encrypted {len(files)} files into {store_url} (sidecars beside them)")

    bundle = sign_digests("model", digests, signer)
    signature = run / "model.sig"
    write_bundle(signature, bundle)
    console.print(f"  signed: {signature} (OMS v1.0 bundle, digests from the encryption pass)")

    restored = run / "restored" / "model"
    restored_store = registry.open_store(restored.as_uri())
    for name in files:
        bound = Artifact(system=system, path=name, version="v1")  # where it lies, not its sidecar
        decrypt_to_store(store, name, restored_store, name, kek, expect=bound)
    public_pem = signer.public_key_pem()
    (run / "signing-key.pub.pem").write_bytes(public_pem)
    verify_model(restored, bundle, public_pem)
    console.print(f"  decrypted into {restored} and verified the signature: [green]OK[/green]")
    return run


LIFECYCLE_SPEC = """\
spec_version: 1
name: demo-sentiment
owner: ml-platform@example.com
classification: internal
description: Sentiment classifier used by the Sundown demo.
assets:
  weights:
    locations: [file://{root}/stores/models/demo-sentiment]
    on_retirement: archive
  training_data:
    locations: [file://{root}/stores/datasets/demo-sentiment/train]
    retention: {{archive_after_days: 90, delete_after_days: 365}}
  logs:
    locations: [file://{root}/stores/logs/demo-sentiment]
    retention: {{delete_after_days: 30}}
  caches:
    locations: [file://{root}/stores/cache/demo-sentiment]
    retention: {{delete_after_days: 7}}
archive:
  target: file://{root}/stores/archive/demo-sentiment
  key: local://demo-archive-{stamp}
keys:
  kek: local://demo-sentiment-kek-{stamp}
  model_signing: local://demo-sentiment-signing-{stamp}
  certificate: local://demo-certificates-{stamp}
evidence: file://{root}/evidence
approval:
  roles: [ml-platform-lead, security-officer]
"""

# (folder, file name, age in days): what the retention sweep finds
_AGED = [
    ("logs/demo-sentiment", "2025/01/requests.log", 45),  # past 30 days: purged
    ("logs/demo-sentiment", "2025/03/requests.log", 3),  # kept
    ("datasets/demo-sentiment/train", "reviews-2024.parquet", 120),  # past 90: archived
    ("datasets/demo-sentiment/train", "reviews-2025.parquet", 20),  # kept
    ("cache/demo-sentiment", "embeddings.npy", 10),  # past 7 days: purged
]


def run_lifecycle(run: Path, model: Path, console: Console) -> dict[str, Any]:
    """Part 2: deploy, rotate, retention, decommission with approval, verify the certificate."""
    from cli.lifecycle import _quiet_prefect

    _quiet_prefect()
    stamp = run.name.lower()
    root = run / "lifecycle"
    spec_path = root / "demo-sentiment.yaml"
    root.mkdir(parents=True)
    spec_path.write_text(LIFECYCLE_SPEC.format(root=root, stamp=stamp))
    for name, signing in (
        (f"demo-sentiment-kek-{stamp}", False),
        (f"demo-archive-{stamp}", False),
        (f"demo-sentiment-signing-{stamp}", True),
        (f"demo-certificates-{stamp}", True),
    ):
        registry.create_key(f"local://{name}", signing=signing)
    now = time.time()
    for folder, name, days in _AGED:
        path = root / "stores" / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(4096))
        os.utime(path, (now - days * 86400, now - days * 86400))

    console.print(f"[bold]Lifecycle[/bold] of system demo-sentiment ({spec_path})")
    with console.status("starting Prefect (a temporary local server unless PREFECT_API_URL)"):
        from flows.decommission import decommission_system
        from flows.deploy import deploy_model
        from flows.models import (
            DecommissionParameters,
            DeployParameters,
            Party,
            RetentionParameters,
            RotateParameters,
        )
        from flows.retention import retention_sweep
        from flows.rotate import rotate_credentials
    spec: dict[str, Any] = {"spec_path": str(spec_path)}
    out: dict[str, Any] = {}
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:

        @contextmanager
        def step(text: str) -> Iterator[None]:
            task = progress.add_task(text, total=1)
            yield
            progress.update(task, completed=1)

        with step("deploy: encrypt and sign the model into the weights location"):
            deployed = deploy_model(DeployParameters(**spec, model_dir=str(model), version="v1"))
        console.print(
            f"  deployed {len(deployed.files)} files, model digest {deployed.model_digest}; "
            f"ledger head {deployed.ledger_head}"
        )
        with step("rotate: new KEK version, re-wrap every sidecar, retire the old version"):
            rotated = rotate_credentials(RotateParameters(**spec))
        console.print(
            f"  KEK v{rotated.old_version} -> v{rotated.new_version}, "
            f"{rotated.sidecars_rewrapped} sidecars re-wrapped, ciphertext untouched; "
            f"ledger head {rotated.ledger_head}"
        )
        with step("retention: archive or purge what is past its rule"):
            swept = retention_sweep(RetentionParameters(**spec))
        console.print(
            f"  retention: {swept.archived} archived, {swept.purged} purged, "
            f"receipt in the ledger (ledger head {swept.ledger_head})"
        )
        with step("plan the retirement (dry run: changes nothing)"):
            plan = decommission_system(DecommissionParameters(**spec, dry_run=True))
        console.print(f"  plan digest {plan.plan_digest}")
        with step("approve the plan digest and decommission"):
            approver = Party(
                name="Demo Approver", role="security-officer", organisation="Example Corp"
            )
            result = decommission_system(
                DecommissionParameters(**spec, approve_digest=plan.plan_digest, approver=approver)
            )
    console.print(f"  decommission: [bold]{result.status}[/bold]")
    assert result.certificate_url is not None
    cert_path = Path(result.certificate_url.removeprefix("file://"))
    manifest_path = cert_path.with_name(MANIFEST_NAME)
    public = registry.open_signer(f"local://demo-certificates-{stamp}").public_key_pem()
    public_path = root / "certificate-signing.pub.pem"
    public_path.write_bytes(public)
    with open(manifest_path, "rb") as f:
        manifest = read_manifest_reference(iter(lambda: f.read(1 << 20), b""))
    from sundown.ledger import Ledger
    from sundown.trust import anchors_from_options, verify_anchored

    # The anchor is the public key the demo exported itself, never one read back from the
    # evidence location; the ledger there is checked as evidence, up to the head just printed.
    ledger_url = (root / "evidence").as_uri()
    anchored = verify_anchored(
        cert_path.read_bytes(),
        anchors_from_options([public_path]),
        manifest=manifest,
        ledger=Ledger.open(ledger_url),
        expect_head=result.ledger_head,
    )
    console.print(f"  certificate: {cert_path}")
    console.print(f"  PDF: {result.pdf_path}")
    console.print(f"  deletion manifest: {manifest_path}")
    console.print(f"  ledger head: {result.ledger_head}")
    console.print(f"  certificate verified: [green]OK[/green] ({anchored.summary()})")
    # What the certificate claims per location (NIST SP 800-88 Rev. 2): cryptographic erase
    # only where the copies were proven encrypted under the destroyed KEK (the weights).
    for loc in anchored.verified.certificate.locations:
        console.print(f"  claims for {loc.uri.rsplit('/stores/', 1)[-1]}: {loc.claims}")
    console.print(
        f"  verify it yourself: sundown certificate verify {cert_path} --public-key {public_path} "
        f"--ledger {ledger_url} --expect-head {result.ledger_head}"
    )
    out.update(result=result, certificate=cert_path, public_key=public_path)
    return out


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        home: Path = typer.Option(
            None,
            "--home",
            help="Where keys and demo files go (default: $SUNDOWN_HOME or ~/.sundown).",
        ),
    ) -> None:
        """Run the main job on the embedded default: local keyring, file store, no cloud."""
        base = home or Path(os.environ.get("SUNDOWN_HOME") or Path.home() / ".sundown")
        console = Console(soft_wrap=True, highlight=False)
        run = run_demo(base.expanduser().resolve(), console)
        run_lifecycle(run, run / "model", console)
