"""Lifecycle commands that run the Prefect flows: plan, decommission, deploy, rotate, revoke,
retention, serve.

Each command imports its flow (and so Prefect) inside its body, so that ``sundown --help`` and
the other commands stay fast; at import time this module takes only the Prefect-free
:mod:`flows.defaults`. A flow runs in this process
against ``PREFECT_API_URL`` when it is set, otherwise against a temporary local Prefect server
that Prefect starts and stops itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape

from flows.defaults import DEFAULT_LEASE_SECONDS
from sundown.errors import InputError

R = TypeVar("R")

_VAR_HELP = (
    "A ${NAME} value for the spec, NAME=VALUE (repeatable; never read from the environment)."
)


def _variables(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--var {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def _quiet_prefect() -> None:
    """Prefect's console log would repeat every step (and print the traceback of a refused
    approval); the commands print their own summary and one line per error instead. The flow run
    logs still go to the Prefect API. An explicit PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL wins."""
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _spec(spec: Path, var: list[str] | None) -> dict[str, Any]:
    if not spec.is_file():
        raise InputError(f"system spec {spec}: no such file")
    return {"spec_path": str(spec), "variables": _variables(var)}


def _console() -> Console:
    # no wrapping: digests and paths must stay on one line, copy-pasteable
    return Console(soft_wrap=True, highlight=False)


def _print_head(console: Console, result: Any) -> None:
    """The ledger head after this command's append: keep it to detect a ledger cut short
    (``sundown ledger verify --expect-head``)."""
    head = getattr(result, "ledger_head", None)
    if head:
        console.print(f"ledger record {result.ledger_sequence}, ledger head {head}")


def _whole(run: Callable[[], R]) -> R:
    """A flow's result, also when the flow ended Failed with ``Incomplete`` after recording
    everything: the command prints it in full, then exits 1."""
    from flows.models import Incomplete

    try:
        return run()
    except Incomplete as incomplete:
        return cast(R, incomplete.result)


def _path(url: str | None) -> str:
    if url and url.startswith("file://"):
        return url.removeprefix("file://")
    return url or "-"


SPEC_ARG = typer.Argument(..., help="The system spec (YAML).", show_default=False)
VAR_OPT = typer.Option(None, "--var", help=_VAR_HELP)
LEASE_OPT = typer.Option(
    DEFAULT_LEASE_SECONDS,
    "--lease-seconds",
    min=1,
    max=3600,
    help="One lifecycle run at a time changes a system: another run is refused while this "
    "run's lease is live; a crashed run's lease expires after this long.",
)


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan(spec: Path = SPEC_ARG, var: list[str] = VAR_OPT) -> None:
        """Inventory a system and print its retirement plan and plan digest (changes nothing)."""
        _quiet_prefect()
        from flows.decommission import decommission_system
        from flows.models import DecommissionParameters
        from sundown.plan import read_plan

        result = decommission_system(DecommissionParameters(**_spec(spec, var), dry_run=True))
        console = _console()
        if result.status == "already decommissioned":
            console.print(
                f"{result.system} was already decommissioned: certificate "
                f"{result.certificate_id} at {_path(result.certificate_url)}"
            )
            return
        console.print(read_plan(result.plan_path, result.plan_digest).to_markdown(), markup=False)
        console.print(f"Plan file: {result.plan_path}")
        console.print(f"Plan digest: [bold]{result.plan_digest}[/bold]")
        console.print(
            f"To execute it: sundown decommission {spec} --approve {result.plan_digest} "
            "--approver NAME --approver-role ROLE"
        )

    @app.command("decommission")
    def decommission(
        spec: Path = SPEC_ARG,
        dry_run: bool = typer.Option(False, "--dry-run", help="Plan only; change nothing."),
        approve: str | None = typer.Option(
            None, "--approve", metavar="DIGEST", help="The plan digest you reviewed."
        ),
        approver: str | None = typer.Option(
            None,
            "--approver",
            help="Approver's full name: someone other than the performer (separation of duties).",
        ),
        approver_role: str = typer.Option("approver", "--approver-role", help="Approver's role."),
        approver_org: str = typer.Option("unspecified", "--approver-org"),
        approver_contact: str = typer.Option("unspecified", "--approver-contact"),
        performer: str | None = typer.Option(
            None, "--performer", help="Your name (default: $USER)."
        ),
        performer_role: str = typer.Option("operator", "--performer-role"),
        lease_seconds: int = LEASE_OPT,
        var: list[str] = VAR_OPT,
    ) -> None:
        """Retire a system: --dry-run to plan, or --approve DIGEST to execute the reviewed plan
        (archive, purge every version, destroy keys, revoke credentials, verify, certify)."""
        if dry_run == (approve is not None):
            raise InputError("give exactly one of --dry-run and --approve DIGEST")
        if approve is not None and not approver:
            raise InputError("--approve needs --approver NAME (who approved the plan)")
        _quiet_prefect()
        from flows.decommission import decommission_system
        from flows.models import DecommissionParameters, Party, default_performer

        params = DecommissionParameters(
            **_spec(spec, var),
            dry_run=dry_run,
            approve_digest=approve,
            approver=Party(
                name=approver,
                role=approver_role,
                organisation=approver_org,
                contact=approver_contact,
            )
            if approver
            else None,
            performer=Party(name=performer, role=performer_role)
            if performer
            else default_performer(),
            lease_seconds=lease_seconds,
        )
        result = _whole(lambda: decommission_system(params))
        console = _console()
        console.print(f"{result.system}: [bold]{result.status}[/bold] (plan {result.plan_digest})")
        for loc in result.locations:
            console.print(
                f"  {loc.url}: found {loc.found}, archived {loc.archived}, "
                f"purged {loc.purged}, held {loc.held}"
            )
        for exc in result.exceptions:
            console.print(f"  exception: {exc}")
        for line in result.waiting:
            console.print(f"  waiting: {line} (re-run this command later to re-verify)")
        if result.certificate_url:
            console.print(f"Certificate: {_path(result.certificate_url)}")
            console.print(f"PDF: {result.pdf_path}")
            console.print(f"Deletion manifest: {_path(result.manifest_url)}")
        _print_head(console, result)
        if result.status == "failed":
            raise typer.Exit(1)

    @app.command("deploy")
    def deploy(
        spec: Path = SPEC_ARG,
        model_dir: Path = typer.Argument(..., help="The model folder.", show_default=False),
        version: str = typer.Option("", "--version", help="Model version (default: timestamp)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a deployed version."),
        lease_seconds: int = LEASE_OPT,
        var: list[str] = VAR_OPT,
    ) -> None:
        """Encrypt and sign a model into every weights location of a system."""
        _quiet_prefect()
        from flows.deploy import deploy_model
        from flows.models import DeployParameters

        result = deploy_model(
            DeployParameters(
                **_spec(spec, var),
                model_dir=str(model_dir),
                version=version,
                overwrite=overwrite,
                lease_seconds=lease_seconds,
            )
        )
        console = _console()
        console.print(
            f"deployed {result.system} {result.version}: {len(result.files)} file(s) to "
            f"{len(result.locations)} location(s) under {result.kek_uri} v{result.kek_version}"
        )
        console.print(f"model digest {result.model_digest}")
        for url in result.signature_urls:
            console.print(f"signature: {_path(url)}")
        _print_head(console, result)

    @app.command("rotate")
    def rotate(
        spec: Path = SPEC_ARG,
        keep_old: bool = typer.Option(
            False, "--keep-old-versions", help="Do not retire the older KEK versions."
        ),
        lease_seconds: int = LEASE_OPT,
        var: list[str] = VAR_OPT,
    ) -> None:
        """Rotate a system's KEK (re-wrap every sidecar, retire old versions) and credentials."""
        _quiet_prefect()
        from flows.models import RotateParameters
        from flows.rotate import rotate_credentials

        result = rotate_credentials(
            RotateParameters(
                **_spec(spec, var), retire_old_versions=not keep_old, lease_seconds=lease_seconds
            )
        )
        console = _console()
        console.print(
            f"{result.kek_uri}: v{result.old_version} -> v{result.new_version}, "
            f"{result.sidecars_rewrapped} of {result.sidecars_checked} sidecar(s) re-wrapped"
            + (f", versions below {result.retired_below} retired" if result.retired_below else "")
        )
        for line in result.credentials:
            console.print(f"  {line}")
        _print_head(console, result)

    @app.command("revoke")
    def revoke(
        spec: Path = SPEC_ARG,
        reason: str = typer.Option("emergency revocation", "--reason", help="Goes in the ledger."),
        var: list[str] = VAR_OPT,
    ) -> None:
        """Emergency revocation of every credential a system holds."""
        _quiet_prefect()
        from flows.models import RevokeParameters
        from flows.revoke import revoke_credentials

        result = _whole(
            lambda: revoke_credentials(RevokeParameters(**_spec(spec, var), reason=reason))
        )
        console = _console()
        for line in result.revoked:
            console.print(f"revoked: {line}")
        for line in result.failed:
            console.print(f"[red]NOT revoked[/red]: {line}")
        _print_head(console, result)
        if result.failed:
            raise typer.Exit(1)

    @app.command("retention")
    def retention(
        spec: Path = SPEC_ARG,
        dry_run: bool = typer.Option(False, "--dry-run", help="Plan only; change nothing."),
        lease_seconds: int = LEASE_OPT,
        var: list[str] = VAR_OPT,
    ) -> None:
        """Archive or delete what is older than each asset class's retention rule."""
        _quiet_prefect()
        from flows.models import RetentionParameters
        from flows.retention import retention_sweep

        params = RetentionParameters(
            **_spec(spec, var), dry_run=dry_run, lease_seconds=lease_seconds
        )
        result = _whole(lambda: retention_sweep(params))
        verb = "would archive" if dry_run else "archived"
        console = _console()
        console.print(
            f"{result.system}: {verb} {result.archived}, "
            f"{'would purge' if dry_run else 'purged'} {result.purged}, held {result.held}, "
            f"failed {result.failed} (plan {result.plan_digest})"
            + (f"; receipt {_path(result.receipt_url)}" if result.receipt_url else "")
        )
        for line in result.records:  # log groups and MLflow runs (docs/ml-platforms.md)
            console.print(f"  {line}", markup=False, highlight=False)
        if result.records_receipt_url:
            console.print(f"record retention receipt {_path(result.records_receipt_url)}")
        for line in result.keys_unchecked:
            console.print(f"[red]key deletion NOT checked[/red]: {escape(line)}", highlight=False)
        _print_head(console, result)
        if result.failed or result.keys_unchecked:
            raise typer.Exit(1)

    @app.command("serve")
    def serve(
        retention_spec: list[Path] = typer.Option(
            None,
            "--retention-spec",
            help="A system spec whose retention sweep runs daily (repeatable).",
        ),
    ) -> None:
        """Serve the five lifecycle flows as deployments (needs PREFECT_API_URL or a profile)."""
        from flows.serve import serve_all

        serve_all([str(p) for p in retention_spec or []])
