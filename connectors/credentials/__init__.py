"""Credential lifecycle: rotate and revoke the credentials a system spec declares, with evidence.

One module per backend, each a few small typed operations:

- :mod:`.vault_kv` - KV v2 secrets: rotate (new version), destroy every version and the metadata.
- :mod:`.vault_tokens` - tokens: revoke by accessor.
- :mod:`.vault_leases` - leases: revoke by id and by prefix.
- :mod:`.vault_approle` - AppRole: destroy secret-ids by accessor, delete a role.
- :mod:`.aws_iam` - IAM access keys: rotate (create, deactivate, delete after a grace period),
  revoke.
- :mod:`.azure_sas` - Azure Blob stored access policies: rotate and revoke (every SAS bound to a
  removed policy stops working).
- :mod:`.gcs_hmac` - GCS HMAC keys: rotate and revoke.

Every operation returns :class:`CredentialEvidence`: what was done, to which credential (named by
a non-secret identifier: an accessor, a key id, a policy id, a lease id, a path) and the checks
that prove it, each with the result observed. Evidence never holds a secret value; a rotation
that creates a new secret returns it separately, wrapped in :class:`pydantic.SecretStr` so that
it does not print.

Operations that remove a credential raise :class:`sundown.errors.NotFoundError` when it does not
exist, unless ``missing_ok=True`` (a re-run after a crash): then the evidence records that it was
already absent, with the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CredentialEvidence:
    """What was done to one credential and how it was checked. No secret values."""

    kind: str  # e.g. "vault-token", "aws-iam-access-key"
    target: str  # non-secret identifier: accessor, key id, lease id, path, policy id
    action: str  # "rotated", "revoked", "destroyed", "already absent", ...
    at: datetime
    details: dict[str, str] = field(default_factory=dict)  # what was done, in facts
    checks: dict[str, str] = field(default_factory=dict)  # check -> observed result
    verified: bool = False  # True only when every check passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "action": self.action,
            "at": self.at.isoformat(),
            "details": dict(self.details),
            "checks": dict(self.checks),
            "verified": self.verified,
        }


@dataclass(frozen=True)
class NewSecret:
    """A credential created by a rotation: its public identifier and its secret, which must be
    handed to its consumer (e.g. written to Vault KV) and is never shown."""

    identifier: str
    secret: SecretStr
    expires: datetime | None = None


@dataclass(frozen=True)
class Rotation:
    """A rotation's evidence, the new credential, and when the old one may be deleted (``None``
    when it was deleted already)."""

    evidence: CredentialEvidence
    new: NewSecret | None
    delete_old_after: datetime | None = None


class Checks:
    """Collects check results; ``verified`` is True only if every check passed."""

    def __init__(self) -> None:
        self.results: dict[str, str] = {}
        self.ok = True

    def passed(self, name: str, observed: str) -> None:
        self.results[name] = observed

    def failed(self, name: str, observed: str) -> None:
        self.results[name] = f"FAILED: {observed}"
        self.ok = False

    def expect(self, name: str, condition: bool, observed: str) -> None:
        if condition:
            self.passed(name, observed)
        else:
            self.failed(name, observed)


__all__ = ["Checks", "CredentialEvidence", "NewSecret", "Rotation", "now"]
