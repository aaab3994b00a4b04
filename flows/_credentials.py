"""Credential revocation and liveness as the flows need them: one spec credential -> its
kind (:func:`sundown.credentials.credential_kind`, imported lazily: a system without Vault
credentials never imports the Vault client library), whose
:class:`~sundown.credentials.CredentialEvidence` becomes the certificate's
:class:`~sundown.certificate.CredentialRevoked`. Every removal runs with ``missing_ok=True``, so a
re-run after a crash records "already absent" with the same checks instead of failing.

A kind with no connector, or an operation that fails, is reported as *not* revoked (``verified``
false) with the reason: the certificate lists it as an exception instead of pretending. Nothing
here ever returns or logs a secret.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sundown.certificate import CredentialRevoked
from sundown.credentials import credential_kind
from sundown.errors import SundownError
from sundown.spec.model import CredentialRef


def _unrevoked(ref: CredentialRef, why: str) -> CredentialRevoked:
    return CredentialRevoked(
        kind=ref.kind,
        identifier=ref.id,
        revoked_at=datetime.now(UTC),
        method=f"not revoked: {why}"[:4000],
        checks={"revocation": why[:4000]},
        verified=False,
    )


def revoke(ref: CredentialRef) -> CredentialRevoked:
    """Revoke one credential and prove it dead; expected failures become an unverified record."""
    try:
        evidence = credential_kind(ref.kind).revoke(ref.id, missing_ok=True)
    except (SundownError, ValueError) as exc:
        return _unrevoked(ref, f"{type(exc).__name__}: {exc}")
    checks: dict[str, str] = {}
    for ev in evidence:
        for name, observed in ev.checks.items():
            checks[f"{ev.target}: {name}" if len(evidence) > 1 else name] = observed
    return CredentialRevoked(
        kind=ref.kind,
        identifier=ref.id,
        revoked_at=max((ev.at for ev in evidence), default=datetime.now(UTC)),
        method="; ".join(f"{ev.action} ({ev.kind})" for ev in evidence) or ref.action,
        checks=checks,
        verified=bool(evidence) and all(ev.verified for ev in evidence),
    )


def exists(ref: CredentialRef) -> bool | None:
    """Whether the credential still exists; None: not known without changing it (the plan then
    says "unknown"). The connectors have no side-effect-free lookup for every kind yet."""
    return None


# The kinds whose liveness check the post-retirement verification consults (every kind has
# one, :meth:`~sundown.credentials.CredentialKind.live`; widening this set changes what
# certificates record, so it is the lead's decision, see docs/decisions.md).
VERIFIED_LIVENESS = frozenset({"vault_token"})


def live(ref: CredentialRef) -> bool | None:
    """Whether the credential still works, looked up without changing it, for the
    post-retirement verification; None where the verification does not consult the kind."""
    if ref.kind not in VERIFIED_LIVENESS:
        return None
    return credential_kind(ref.kind).live(ref.id)
