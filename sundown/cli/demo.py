"""``sundown demo``: the main job on the embedded default (file store, local keyring, no cloud).

Creates a key-encryption key and a signing key in a local keyring, generates a small sample model,
encrypts every file into a ``file://`` store (envelope format, one DEK per file) and signs the
model as an OpenSSF Model Signing bundle from the digests computed while encrypting; then
decrypts everything into a fresh folder and verifies the signature over the restored model.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from sundown import registry
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
        decrypt_to_store(store, name, restored_store, name, kek)
    public_pem = signer.public_key_pem()
    (run / "signing-key.pub.pem").write_bytes(public_pem)
    verify_model(restored, bundle, public_pem)
    console.print(f"  decrypted into {restored} and verified the signature: [green]OK[/green]")
    return run


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
        run_demo(base.expanduser().resolve(), Console())
