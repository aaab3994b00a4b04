"""``sundown encrypt`` and ``sundown decrypt``: envelope encryption of one artifact.

SRC and DST are local paths or object URLs (``file:///...``, ``s3://bucket/key``, ...). The
sidecar is written beside the ciphertext as ``<DST>.sidecar.json`` and read from
``<SRC>.sidecar.json`` on decryption, which finds the key through it.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sundown.envelope import Artifact, decrypt_to_store, encrypt_to_store, read_sidecar
from sundown.errors import IntegrityError
from sundown.registry import open_key_service, open_store, split_object_url
from sundown.store import ObjectStore

DEFAULT_SYSTEM = "default"
DEFAULT_VERSION = "1"


def _locate(arg: str) -> tuple[ObjectStore, str]:
    """(store, key) for a local path or an object URL."""
    if "://" in arg:
        root, key = split_object_url(arg)
    else:
        path = Path(arg).expanduser().absolute()
        root, key = path.parent.as_uri(), path.name
    return open_store(root), key


def encrypt(
    src: str = typer.Argument(..., help="Plaintext: a local path or an object URL."),
    dst: str = typer.Argument(..., help="Ciphertext: a local path or an object URL."),
    key: str = typer.Option(
        ..., "--key", help="Key-encryption key URI, e.g. local://NAME or vault://transit/NAME."
    ),
    system: str = typer.Option(
        DEFAULT_SYSTEM, "--system", help="System the artifact belongs to (bound to it)."
    ),
    artifact_path: str | None = typer.Option(
        None, "--artifact-path", help="Logical artifact path bound to it (default: DST's name)."
    ),
    artifact_version: str = typer.Option(
        DEFAULT_VERSION, "--artifact-version", help="Artifact version bound to it."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace DST if it exists."),
) -> None:
    """Encrypt SRC to DST under a fresh data key wrapped by --key; write DST.sidecar.json."""
    src_store, src_key = _locate(src)
    dst_store, dst_key = _locate(dst)
    artifact = Artifact(system, artifact_path or dst_key.rsplit("/", 1)[-1], artifact_version)
    key_service = open_key_service(key)
    with src_store.open(src_key) as source:
        sidecar = encrypt_to_store(
            source, dst_store, dst_key, key_service, artifact, overwrite=overwrite
        )
    typer.echo(
        f"encrypted {src} -> {dst} ({sidecar.plaintext_size} bytes, "
        f"sha256 {sidecar.plaintext_sha256}, key {sidecar.key_uri} v{sidecar.key_version})"
    )


def decrypt(
    src: str = typer.Argument(..., help="Ciphertext: a local path or an object URL."),
    dst: str = typer.Argument(..., help="Plaintext: a local path or an object URL."),
    key: str | None = typer.Option(
        None, "--key", help="Refuse unless the sidecar names this key [default: any]."
    ),
    system: str | None = typer.Option(None, "--system", help="Refuse unless bound to this."),
    artifact_path: str | None = typer.Option(
        None, "--artifact-path", help="Refuse unless bound to this artifact path."
    ),
    artifact_version: str | None = typer.Option(
        None, "--artifact-version", help="Refuse unless bound to this artifact version."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace DST if it exists."),
) -> None:
    """Decrypt SRC to DST, checked against SRC.sidecar.json (which also names the key)."""
    src_store, src_key = _locate(src)
    dst_store, dst_key = _locate(dst)
    src_store.head(src_key)  # a missing ciphertext is named as such, before its sidecar
    try:
        sidecar = read_sidecar(src_store, src_key)
    except IntegrityError as exc:
        raise IntegrityError(f"{src}: {exc}") from None
    bound = sidecar.artifact
    expect = Artifact(
        system or bound.system,
        artifact_path or bound.path,
        artifact_version or bound.version,
    )
    if key is not None and key != sidecar.key_uri:
        raise IntegrityError(f"{src} is wrapped by {sidecar.key_uri}, not {key}")
    key_service = open_key_service(sidecar.key_uri)
    try:
        decrypt_to_store(
            src_store, src_key, dst_store, dst_key, key_service, expect=expect, overwrite=overwrite
        )
    except IntegrityError as exc:
        raise IntegrityError(f"{src}: {exc}; nothing was written to {dst}") from None
    typer.echo(
        f"decrypted {src} -> {dst} ({sidecar.plaintext_size} bytes, "
        f"sha256 {sidecar.plaintext_sha256} verified)"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sundown`` app."""
    app.command("encrypt")(encrypt)
    app.command("decrypt")(decrypt)
