"""``sundown keys ...``: create, inspect, rotate, retire and destroy keys.

A key is named by a URI: ``local://NAME`` (the local keyring under ``$SUNDOWN_HOME``),
``vault://MOUNT/NAME`` (Vault/OpenBao transit), ``aws-kms://arn:aws:kms:...`` (AWS KMS),
``gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K`` (Cloud KMS) or
``azure-kv://VAULT.vault.azure.net/keys/NAME`` (Azure Key Vault; docs/kms.md).
Destructive commands (``retire``, ``destroy``) ask for confirmation on a terminal and need
``--yes`` otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from sundown.errors import BackendError, InputError
from sundown.keys import KeyDestruction, KeyInfo
from sundown.registry import (
    create_key,
    key_for_destruction,
    open_key_service,
    open_signer,
    scheme_of,
)

keys_app = typer.Typer(
    name="keys",
    help=(
        "Create, inspect, rotate, retire and destroy keys "
        "(local://NAME, vault://MOUNT/NAME, aws-kms://ARN, gcp-kms://projects/..., "
        "azure-kv://VAULT.vault.azure.net/keys/NAME)."
    ),
    no_args_is_help=True,
)

_URI = typer.Argument(
    ...,
    metavar="URI",
    help="Key URI: local://NAME, vault://MOUNT/NAME, aws-kms://arn:aws:kms:... (or alias/NAME), "
    "gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K or "
    "azure-kv://VAULT.vault.azure.net/keys/NAME.",
)


def _confirm(action: str, consequence: str, yes: bool) -> None:
    """Ask on a terminal; refuse without ``--yes`` when nobody can answer."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(f"refusing to {action} without confirmation: pass --yes")
    typer.confirm(f"{action[:1].upper()}{action[1:]}? {consequence}", abort=True)


def _describe(info: KeyInfo) -> list[str]:
    versions = info.versions
    span = f"{versions[0]}..{versions[-1]}" if len(versions) > 1 else ",".join(map(str, versions))
    return [
        f"uri: {info.uri}",
        f"kind: {info.kind}",
        f"algorithm: {info.algorithm}",
        f"latest version: {info.latest_version}",
        f"minimum decryption version: {info.min_decryption_version}",
        f"versions present: {span or 'none'}",
    ]


@keys_app.command("create")
def create(
    uri: str = _URI,
    signing: bool = typer.Option(
        False, "--signing", help="Create an ECDSA P-256 signing key instead of a KEK."
    ),
) -> None:
    """Create a key-encryption key (AES-256-GCM, versioned) or, with --signing, a signing key."""
    info = create_key(uri, signing=signing)
    what = "signing key" if info.kind == "signing" else "key-encryption key"
    typer.echo(f"created {what} {info.uri} ({info.algorithm}, version {info.latest_version})")
    if info.kind == "signing":
        typer.echo(f"key id: {open_signer(info.uri).key_id}")


@keys_app.command("info")
def info(uri: str = _URI) -> None:
    """Show public facts about a key (never key material)."""
    facts = open_key_service(uri).info()
    for line in _describe(facts):
        typer.echo(line)
    if facts.kind == "signing":
        typer.echo(f"key id: {open_signer(uri).key_id}")


@keys_app.command("rotate")
def rotate(uri: str = _URI) -> None:
    """Add a new key version that wraps from now on; older versions still unwrap."""
    version = open_key_service(uri).rotate()
    typer.echo(f"rotated {uri}: version {version} now wraps new data keys")


@keys_app.command("retire")
def retire(
    uri: str = _URI,
    below: int = typer.Option(
        ..., "--below", min=1, help="Raise the minimum decryption version to this version."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete the versions below --below: data keys wrapped under them stop unwrapping.

    Re-wrap sidecars first (rotation re-wraps sidecars and never rewrites the data)."""
    service = open_key_service(uri)
    _confirm(
        f"delete the versions below {below} of {uri}",
        "Data keys wrapped under them can no longer be unwrapped.",
        yes,
    )
    service.retire_versions_below(below)
    facts = service.info()
    typer.echo(
        f"retired {uri} versions below {facts.min_decryption_version}; "
        f"versions present: {', '.join(map(str, facts.versions))}"
    )


def _evidence_lines(evidence: KeyDestruction) -> list[str]:
    versions = evidence.versions_destroyed
    span = f"{versions[0]}..{versions[-1]}" if len(versions) > 1 else ",".join(map(str, versions))
    lines = [
        f"destroyed {evidence.uri} (versions {span or 'none'}) "
        f"at {evidence.destroyed_at.isoformat()}",
        f"method: {evidence.method}",
    ]
    lines += [f"check {name}: {result}" for name, result in evidence.checks.items()]
    lines.append(f"verified: {'yes' if evidence.verified else 'NO'}")
    return lines


@keys_app.command("destroy")
def destroy(
    uri: str = _URI,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    pending_days: int | None = typer.Option(
        None,
        "--pending-days",
        min=7,
        max=30,
        help="AWS KMS only: the deletion pending window (default 7).",
    ),
) -> None:
    """Destroy a key (cryptographic erase) and print the evidence that it is gone.

    Everything encrypted under it, backups and replicas included, becomes unreadable. Exits
    non-zero when the destruction could not be verified. On a key whose destruction was
    interrupted, it finishes the deletion; on a destroyed key, it proves it again. AWS KMS keys
    are disabled and scheduled for deletion after --pending-days (docs/kms.md)."""
    if scheme_of(uri) == "aws-kms":
        from connectors.aws_kms import key_for_destruction as kms_key

        kms = kms_key(uri)
        _confirm(f"destroy {uri}", "It is disabled now and deleted by KMS after the window.", yes)
        evidence: KeyDestruction = kms.destroy(pending_days=pending_days or 7)
        for line in _evidence_lines(evidence):
            typer.echo(line)
        typer.echo(
            f"ce: {'claimable' if evidence.ce_claimable else 'NOT claimable'}: "
            f"{getattr(evidence, 'ce_reason', '')}"
        )
        if not evidence.verified:
            raise BackendError(f"{uri}: the KMS key destruction could not be verified")
        return
    if pending_days is not None:
        raise InputError(
            f"{uri}: --pending-days applies to aws-kms:// keys only (Cloud KMS keeps the key's "
            "destroyScheduledDuration, Key Vault its vault's soft-delete retention)"
        )
    service = key_for_destruction(uri)
    _confirm(f"destroy {uri}", "Everything encrypted under it becomes unreadable, for good.", yes)
    evidence = service.destroy()
    for line in _evidence_lines(evidence):
        typer.echo(line)
    if hasattr(evidence, "ce_reason"):  # a cloud KMS: the pending window, stated
        typer.echo(
            f"ce: {'claimable' if evidence.ce_claimable else 'NOT claimable'}: {evidence.ce_reason}"
        )
    if not evidence.verified:
        raise BackendError(
            f"{uri}: the destruction could not be verified: key material remains or still "
            "answers (see the checks printed above)"
        )


@keys_app.command("cancel-deletion")
def cancel_deletion(
    uri: str = _URI,
    spec: Path | None = typer.Option(
        None,
        "--spec",
        help="The system spec whose key this is: the cancellation is appended to that "
        "system's ledger, naming the certificate that no longer holds (runbooks/).",
    ),
    var: list[str] | None = typer.Option(
        None, "--var", help="A ${NAME} value for the spec, NAME=VALUE (repeatable)."
    ),
) -> None:
    """Within the pending window: AWS KMS CancelKeyDeletion + EnableKey; Cloud KMS
    RestoreCryptoKeyVersion + enable; Key Vault RecoverDeletedKey. With --spec, one signed
    ledger record says so and that the certificate relying on the key no longer holds."""
    if scheme_of(uri) not in ("aws-kms", "gcp-kms", "azure-kv"):
        raise InputError(f"{uri}: cancel-deletion applies to cloud KMS keys only")
    if spec is None:
        service = key_for_destruction(uri)
        facts = service.cancel_deletion()  # type: ignore[attr-defined]
        typer.echo(f"deletion cancelled and key enabled: {facts.uri}")
        typer.echo(
            "NOT LEDGERED: run with --spec SYSTEM.yaml so that the system's ledger records it "
            "(a certificate that relied on this key no longer holds)",
            err=True,
        )
        return
    from flows._common import load_system
    from flows.key_deletion import cancel_deletion as ledgered_cancel
    from flows.models import SpecSource

    from .lifecycle import _spec

    system = load_system(SpecSource(**_spec(spec, var)))
    receipt, record = ledgered_cancel(system, uri)
    typer.echo(f"deletion cancelled: {uri}: {receipt.statement}")
    typer.echo(f"ledger record {record.record.sequence}, ledger head {record.head}")


@keys_app.command("public-key")
def public_key(uri: str = _URI) -> None:
    """Print the PEM public key of a signing key (give it to verifiers)."""
    pem = open_signer(uri).public_key_pem()
    typer.echo(pem.decode("ascii"), nl=not pem.endswith(b"\n"))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sundown`` app."""
    app.add_typer(keys_app, name="keys")
