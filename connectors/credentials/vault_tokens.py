"""Vault tokens: revoke by accessor (the token itself is never needed, nor seen); the
``vault_token`` credential kind (:data:`TOKEN`).

Tokens are **not rotated**: a token cannot be re-issued by its accessor with the same parent and
policies; its consumer gets a new one, then this one is revoked (``sundown revoke``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hvac
import hvac.exceptions as hvac_errors

from connectors import _vault
from sundown.credentials import Checks, KindBase
from sundown.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from sundown.credentials import CredentialEvidence
    from sundown.spec.model import SystemSpec

KIND = "vault-token"


def _lookup(client: hvac.Client, accessor: str) -> dict[str, object] | None:
    try:
        return dict(client.auth.token.lookup_accessor(accessor)["data"])
    except (hvac_errors.InvalidRequest, hvac_errors.InvalidPath) as exc:
        # Vault answers 400 "invalid accessor" for an unknown or revoked accessor.
        if isinstance(exc, hvac_errors.InvalidPath) or "invalid accessor" in str(exc):
            return None
        raise


def _check(accessor: str) -> str:
    if not accessor or not accessor.replace("-", "").replace(".", "").isalnum():
        raise InputError(f"{accessor!r} is not a token accessor")
    return accessor


def token_is_live(accessor: str) -> bool:
    """Whether a token with this accessor still works (lookup-accessor answers); no change."""
    _check(accessor)
    with _vault.session(f"look up token accessor {accessor}") as c:
        return _lookup(c, accessor) is not None


def revoke_token_accessor(accessor: str, *, missing_ok: bool = False) -> CredentialEvidence:
    """Revoke the token with this accessor (and its child tokens). Proof: lookup-accessor fails."""
    _check(accessor)
    with _vault.session(f"revoke token accessor {accessor}") as client:
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
    return checks.evidence(
        KIND, accessor, "revoked" if before is not None else "already absent", details
    )


class VaultToken(KindBase):
    """``vault_token``: a token accessor."""

    kind = "vault_token"
    form = "a token accessor"
    revoke_one = staticmethod(revoke_token_accessor)
    is_live = staticmethod(token_is_live)
    needs_delivery = False
    not_rotated = (
        "a Vault token cannot be re-issued by its accessor with the same parent and "
        "policies; issue a new one to its consumer, then revoke this one (sundown revoke)"
    )

    def _parts(self, ident: str) -> tuple[str, ...]:
        return (_check(ident),)

    def units(self, spec: SystemSpec) -> list[str]:
        return list(spec.credentials.vault_token_accessors)


TOKEN = VaultToken()
