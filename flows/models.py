"""Parameter and result models of the flows.

Every flow takes one Pydantic model (so the Prefect UI renders a form from the field
descriptions) and returns one typed result. A system spec is given either as a file path or as
its YAML text (the UI form has no file upload); ``${NAME}`` placeholders in it are filled from
``variables`` only, never from the environment.
"""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Annotated, Any, Literal

from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sundown.errors import SundownError

from .defaults import DEFAULT_LEASE_SECONDS


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _default_name() -> str:
    try:
        return getpass.getuser() or "unknown operator"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown operator"


class Party(_Params):
    """A person named on the certificate (NIST SP 800-88: name, title, organisation)."""

    name: str = Field(min_length=1, max_length=200, description="Full name.")
    role: str = Field(default="operator", min_length=1, max_length=64, description="Role/title.")
    organisation: str = Field(
        default="unspecified", min_length=1, max_length=200, description="Organisation."
    )
    contact: str = Field(
        default="unspecified", min_length=1, max_length=200, description="E-mail or phone."
    )


def default_performer() -> Party:
    return Party(name=_default_name())


class SpecSource(_Params):
    """Where the system spec comes from: exactly one of ``spec_path`` and ``spec_yaml``."""

    spec_path: str | None = Field(
        default=None,
        title="System spec file",
        description="Path of the system spec YAML file, as seen by the worker "
        "(e.g. systems/fraud-scoring.yaml). Give this or the spec text below.",
    )
    spec_yaml: str | None = Field(
        default=None,
        title="System spec text",
        description="The system spec as YAML text, pasted here instead of a file path.",
        json_schema_extra={"format": "textarea"},
    )
    variables: dict[str, str] = Field(
        default_factory=dict,
        title="Spec variables",
        description="Values for ${NAME} placeholders in the spec, as JSON, e.g. "
        '{"ROOT": "/srv/ml"} (never read from the environment).',
    )

    @model_validator(mode="after")
    def _one_source(self) -> SpecSource:
        if (self.spec_path is None) == (self.spec_yaml is None):
            raise ValueError("give exactly one of spec_path and spec_yaml")
        return self


class LeasedSource(SpecSource):
    """A run that changes the system: it holds the system's lease (flows/lease.py) while it
    runs, so that no other lifecycle run of that system overlaps it."""

    lease_seconds: int = Field(
        default=DEFAULT_LEASE_SECONDS,
        ge=1,
        le=3600,
        title="Lease (seconds)",
        description="One lifecycle run at a time changes a system: this run holds a lease it "
        "renews every third of this; another run is refused while it is live. A crashed run's "
        "lease expires after this long, and a re-run then goes on.",
    )


class DecommissionParameters(LeasedSource):
    """Retire an AI system: inventory, plan, approve, execute, verify, certify."""

    dry_run: bool = Field(
        default=False,
        title="Dry run (plan only)",
        description="Inventory and plan only: no approval asked, nothing archived, deleted, "
        "destroyed or revoked.",
    )
    approve_digest: str | None = Field(
        default=None,
        title="Approved plan digest (leave empty to approve in the UI)",
        description="Only for an approval given in advance: the plan digest (sha256:...) "
        "reviewed with 'sundown plan'. Leave empty and the run pauses after planning; "
        "approve it then with the digest shown in its plan artifact.",
    )
    approver: Party | None = Field(
        default=None,
        title="Approver (only with an approved plan digest)",
        description="Who gave the approval in advance (required with the digest above).",
    )
    performer: Party = Field(
        default_factory=default_performer,
        title="Performer",
        description="Who performs the retirement (named on the certificate).",
    )
    approval_timeout_seconds: int = Field(
        default=24 * 3600,
        ge=10,
        le=30 * 24 * 3600,
        title="Approval timeout (seconds)",
        description="How long the run waits paused for approval before it fails (86400 = one day).",
    )
    batch_size: int = Field(
        default=1000,
        ge=1,
        le=1000,
        title="Copies per purge batch",
        description="Copies deleted per purge task, 1-1000 (the connector splits them at its "
        "API limit).",
    )

    @model_validator(mode="after")
    def _approval_shape(self) -> DecommissionParameters:
        if self.dry_run and self.approve_digest is not None:
            raise ValueError("a dry run needs no approval: give dry_run or approve_digest")
        if self.approve_digest is not None and self.approver is None:
            raise ValueError("approve_digest needs the approver's name (approver)")
        return self


class ApprovalInput(RunInput):
    """What an approver types into the paused flow run."""

    plan_digest: str = Field(
        title="Plan digest",
        description="Copy the plan digest (sha256:...) from this run's plan artifact "
        "(Artifacts tab): approving names exactly the plan you reviewed. A different digest "
        "is refused and nothing is deleted.",
    )
    approver: str = Field(
        min_length=1, max_length=200, title="Your full name", description="Named on the "
        "certificate as the approver."
    )  # fmt: skip
    role: str = Field(
        min_length=1,
        max_length=64,
        title="Your role",
        description="Must be one of the approval roles of the system spec (e.g. security-officer).",
    )
    organisation: str = Field(default="unspecified", max_length=200, title="Organisation")
    contact: str = Field(
        default="unspecified", max_length=200, title="Contact", description="E-mail or phone."
    )


DecommissionStatus = Literal[
    "dry run",
    "complete",
    "complete with exceptions",
    "failed",
    "already decommissioned",
    "waiting for lifecycle expiry",
]


# What each flow result says of the ledger record it appended.
LedgerHead = Annotated[
    str | None,
    Field(
        description="The ledger record appended, as SEQ:sha256:HASH: keep it, and check it with "
        "`sundown ledger verify --expect-head` (a ledger cut short before it fails).",
    ),
]


class LocationSummary(BaseModel):
    url: str
    found: int
    archived: int
    purged: int
    held: int
    remaining: int = 0


class DecommissionResult(BaseModel):
    """What a retirement did (or, for a dry run, would do)."""

    system: str
    plan_digest: str
    plan_path: str
    status: DecommissionStatus
    resumed: bool = False
    certificate_id: str | None = None
    certificate_url: str | None = None
    certificate_digest: str | None = None
    manifest_url: str | None = None
    pdf_path: str | None = None
    ledger_sequence: int | None = None
    ledger_head: LedgerHead = None
    locations: list[LocationSummary] = Field(default_factory=list)
    keys_destroyed: list[str] = Field(default_factory=list)
    credentials_revoked: list[str] = Field(default_factory=list)
    exceptions: list[str] = Field(default_factory=list)
    waiting: list[str] = Field(
        default_factory=list,
        description="purge_by: lifecycle locations whose prefix still holds copies (re-run later).",
    )


class PlanParameters(SpecSource):
    """Inventory a system and write its retirement plan (changes nothing)."""


class PlanResult(BaseModel):
    system: str
    plan_digest: str
    plan_path: str
    markdown: str


class DeployParameters(LeasedSource):
    """Encrypt and sign a model directory into every weights location of a system."""

    model_dir: str = Field(description="Local folder of the model files, as seen by the worker.")
    version: str = Field(
        default="",
        description="Model version bound into every ciphertext (default: a timestamp).",
    )
    overwrite: bool = Field(default=False, description="Replace objects already deployed.")


class DeployedFile(BaseModel):
    name: str
    sha256: str
    size: int


class DeployResult(BaseModel):
    system: str
    version: str
    locations: list[str]
    files: list[DeployedFile]
    kek_uri: str
    kek_version: int
    signature_urls: list[str]
    model_digest: str
    ledger_sequence: int
    ledger_head: LedgerHead = None


class RotateParameters(LeasedSource):
    """Rotate the system's KEK (re-wrap sidecars, retire old versions) and its credentials."""

    retire_old_versions: bool = Field(
        default=True,
        description="After re-wrapping every sidecar, delete the older KEK versions.",
    )


class RotateResult(BaseModel):
    system: str
    kek_uri: str
    old_version: int
    new_version: int
    sidecars_rewrapped: int
    sidecars_checked: int
    retired_below: int | None
    credentials: list[str]
    ledger_sequence: int
    ledger_head: LedgerHead = None


class RevokeParameters(SpecSource):
    """Emergency revocation of every credential the system holds."""

    reason: str = Field(
        default="emergency revocation", max_length=500, description="Why (goes in the ledger)."
    )


class RevokeResult(BaseModel):
    system: str
    revoked: list[str]
    failed: list[str]
    ledger_sequence: int
    ledger_head: LedgerHead = None


class RetentionParameters(LeasedSource):
    """Archive or delete what is older than each asset class's retention rule."""

    dry_run: bool = Field(default=False, description="Plan only: change nothing.")
    as_of: datetime | None = Field(
        default=None, description="Evaluate ages at this time (default: now)."
    )
    batch_size: int = Field(default=1000, ge=1, le=1000, description="Copies per purge task.")


class RetentionResult(BaseModel):
    system: str
    plan_digest: str
    plan_path: str
    dry_run: bool
    archived: int
    purged: int
    held: int
    failed: int
    lifecycle: list[str] = Field(
        default_factory=list,
        description="The system's retirement waiting on lifecycle rules, re-verified by this "
        "sweep: its status, and each location still waiting.",
    )
    certificate_url: str | None = Field(
        default=None, description="The certificate, when this sweep completed that retirement."
    )
    keys_unchecked: list[str] = Field(
        default_factory=list,
        description="Keys of earlier retirements whose pending deletion the key service did "
        "not answer for (access denied, a fault): nothing recorded for them; the next sweep "
        "asks again. The other keys were checked.",
    )
    receipt_url: str | None = None
    ledger_sequence: int | None = None
    ledger_head: LedgerHead = None
    records: list[str] = Field(
        default_factory=list,
        description="Record locations' retention (log groups, MLflow runs): one line per "
        "group or run changed, left or failed (docs/ml-platforms.md).",
    )
    records_receipt_url: str | None = Field(
        default=None, description="Their receipt, when anything changed or failed."
    )


class Incomplete(SundownError):
    """Raised by a flow that did and recorded everything it could (receipts, ledger) but left
    something undone that its result names: copies or records a retention sweep could not
    remove, keys it could not check, credentials an emergency revocation could not revoke. The
    flow run ends Failed, so that the UI, a schedule's history and automations show it, instead
    of a Completed run with failures inside. ``result`` is the run's whole result."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result
