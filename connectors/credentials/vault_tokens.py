"""Vault tokens: revoke by accessor (the token itself is never needed, nor seen)."""

from __future__ import annotations

import hvac
import hvac.exceptions as hvac_errors

from connectors.credentials import Checks, CredentialEvidence, now
from connectors.vault import VaultSettings, vault_client, vault_errors
from sundown.errors import InputError, NotFoundError

KIND = "vault-token"


def _lookup(client: hvac.Client, accessor: str) -> dict[str, object] | None:
    try:
        return dict(client.auth.token.lookup_accessor(accessor)["data"])
    except (hvac_errors.InvalidRequest, hvac_errors.InvalidPath) as exc:
        # Vault answers 400 "invalid accessor" for an unknown or revoked accessor.
        if isinstance(exc, hvac_errors.InvalidPath) or "invalid accessor" in str(exc):
            return None
        raise


def token_is_live(accessor: str) -> bool:
    """Whether a token with this accessor still works (lookup-accessor answers); no change."""
    if not accessor or not accessor.replace("-", "").replace(".", "").isalnum():
        raise InputError(f"{accessor!r} is not a token accessor")
    settings = VaultSettings.from_env()
    with vault_errors(f"look up token accessor {accessor}", settings), vault_client(settings) as c:
        return _lookup(c, accessor) is not None


def revoke_token_accessor(accessor: str, *, missing_ok: bool = False) -> CredentialEvidence:
    """Revoke the token with this accessor (and its child tokens). Proof: lookup-accessor fails."""
    if not accessor or not accessor.replace("-", "").replace(".", "").isalnum():
        raise InputError(f"{accessor!r} is not a token accessor")
    settings = VaultSettings.from_env()
    with (
        vault_errors(f"revoke token accessor {accessor}", settings),
        vault_client(settings) as client,
    ):
        before = _lookup(client, accessor)
        if before is None and not missing_ok:
            raise NotFoundError(f"no token with accessor {accessor} (unknown or already revoked)")
        details: dict[str, str] = {}
        if before is not None:
            details = {
                "display_name": str(before.get("display_name", "")),
                "policies": ",".join(str(p) for p in before.get("policies") or []),  # type: ignore[attr-defined]
                "expire_time": str(before.get("expire_time") or "never"),
            }
            client.auth.token.revoke_accessor(accessor)
        checks = Checks()
        after = _lookup(client, accessor)
        checks.expect(
            "lookup-accessor after",
            after is None,
            "invalid accessor" if after is None else "still valid",
        )
    return CredentialEvidence(
        kind=KIND,
        target=accessor,
        action="revoked" if before is not None else "already absent",
        at=now(),
        details=details,
        checks=checks.results,
        verified=checks.ok,
    )
