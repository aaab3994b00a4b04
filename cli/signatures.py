"""``sundown sign`` and ``sundown verify-signature``: OpenSSF Model Signing v1.0 bundles.

The bundles are the ones ``model_signing sign key`` writes and ``model_signing verify key``
checks (see docs/formats/signatures.md), so either tool verifies the other's signatures.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sundown import signing
from sundown.keys import Signer
from sundown.registry import open_signer


def _signer(key: str) -> Signer:
    """A key URI (local://NAME, vault://MOUNT/NAME) or the path of a PEM private key file."""
    if "://" in key:
        return open_signer(key)
    return signing.PemSigner.from_file(Path(key).expanduser())


def _public_key(value: str) -> bytes:
    """A PEM public key file, or a signing key URI whose public key is used."""
    if "://" in value:
        return open_signer(value).public_key_pem()
    return Path(value).expanduser().read_bytes()


MODEL_ARG = typer.Argument(
    ..., metavar="MODEL_DIR", help="The model: a directory (or a single file)."
)


def _exists(model: Path) -> None:
    if not model.exists():
        raise FileNotFoundError(2, "No such file or directory", str(model))


def sign(
    model: Path = MODEL_ARG,
    key: str = typer.Option(
        ...,
        "--key",
        help="Signing key: local://NAME, vault://MOUNT/NAME, or a PEM private key file.",
    ),
    signature: Path = typer.Option(
        ..., "--signature", help="Where to write the bundle (left out when inside the model)."
    ),
    ignore_paths: list[str] = typer.Option(
        [], "--ignore-path", help="A path in the model to leave unsigned (repeatable)."
    ),
    ignore_git_paths: bool = typer.Option(
        True,
        "--ignore-git-paths/--no-ignore-git-paths",
        help="Leave .git, .gitattributes, .github and .gitignore unsigned (as model_signing does).",
    ),
) -> None:
    """Sign MODEL_DIR as an OpenSSF Model Signing v1.0 bundle (sigstore bundle JSON)."""
    _exists(model)
    signer = _signer(key)
    bundle = signing.sign_model(
        model,
        signer,
        signature_path=signature,
        ignore_paths=ignore_paths,
        ignore_git_paths=ignore_git_paths,
    )
    signing.write_bundle(signature, bundle)
    signed = signing.verify_bundle(bundle, signer.public_key_pem())
    typer.echo(
        f"signed {model} ({len(signed.resources)} files, model digest sha256:"
        f"{signed.digest.hex()}) with {signer.key_id} -> {signature}"
    )


def verify_signature(
    model: Path = MODEL_ARG,
    public_key: str = typer.Option(
        ...,
        "--public-key",
        metavar="PEM",
        help="PEM public key file of the signer (or a signing key URI).",
    ),
    signature: Path = typer.Option(..., "--signature", help="The bundle to verify."),
) -> None:
    """Verify MODEL_DIR against a signature bundle: every file, no more, no less."""
    pem = _public_key(public_key)
    bundle = signature.read_bytes()
    _exists(model)
    signed = signing.verify_model(model, bundle, pem, signature_path=signature)
    typer.echo(
        f"verified {model}: {len(signed.resources)} files match {signature} "
        f"(model digest sha256:{signed.digest.hex()})"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sundown`` app."""
    app.command("sign")(sign)
    app.command("verify-signature")(verify_signature)
