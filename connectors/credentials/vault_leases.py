"""Vault leases: revoke one lease by id, or every lease under a prefix.

Revoking a lease revokes the dynamic secret behind it (a database user, a certificate, a cloud
credential). Listing and prefix revocation need ``sudo`` on ``sys/leases/*`` (docs/vault.md).
The ``vault_lease_prefix`` credential kind is :data:`LEASE_PREFIX`; leases are **not rotated**:
they belong to the secrets engine that issued them, expire, and the consumer asks for new ones.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import hvac
import hvac.exceptions as hvac_errors

from connectors import _vault
from sundown.credentials import Checks, KindBase
from sundown.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from sundown.credentials import CredentialEvidence
    from sundown.spec.model import SystemSpec

KIND = "vault-lease"
_LEASE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)+$")


def _check(value: str, what: str) -> str:
    value = value.strip("/")
    if not _LEASE.match(value) or ".." in value.split("/"):
        raise InputError(f"{value!r} is not a lease {what} (e.g. database/creds/app/AbC123)")
    return value


def _lookup(client: hvac.Client, lease_id: str) -> dict[str, object] | None:
    try:
        return dict(client.sys.read_lease(lease_id)["data"])
    except hvac_errors.InvalidRequest as exc:
        if "invalid lease" in str(exc):
            return None
        raise


def _list(client: hvac.Client, prefix: str) -> list[str]:
    try:
        return [str(k) for k in client.sys.list_leases(prefix)["data"]["keys"]]
    except hvac_errors.InvalidPath:
        return []


def revoke_lease(lease_id: str, *, missing_ok: bool = False) -> CredentialEvidence:
    """Revoke one lease. Proof: looking it up fails ("invalid lease")."""
    lease_id = _check(lease_id, "id")
    with _vault.session(f"revoke lease {lease_id}") as client:
        before = _lookup(client, lease_id)
        if before is None and not missing_ok:
            raise NotFoundError(f"no lease {lease_id} (unknown, expired or already revoked)")
        if before is not None:
            client.sys.revoke_lease(lease_id)
        checks = Checks()
        after = _lookup(client, lease_id)
        checks.expect(
            "lookup after", after is None, "invalid lease" if after is None else "still live"
        )
    details = {"expire_time": str(before.get("expire_time"))} if before else {}
    return checks.evidence(
        KIND, lease_id, "revoked" if before is not None else "already absent", details
    )


def revoke_lease_prefix(prefix: str, *, missing_ok: bool = False) -> CredentialEvidence:
    """Revoke every lease under ``prefix`` (e.g. ``database/creds/my-system``). Proof: listing
    the prefix afterwards finds nothing."""
    prefix = _check(prefix, "prefix")
    with _vault.session(f"revoke leases under {prefix}/") as client:
        before = _list(client, prefix)
        if not before and not missing_ok:
            raise NotFoundError(f"no leases under {prefix}/")
        if before:
            client.sys.revoke_prefix(prefix)
        after = _list(client, prefix)
    checks = Checks()
    checks.expect("list after", not after, f"{len(after)} leases listed under {prefix}/")
    return checks.evidence(
        KIND,
        f"{prefix}/",
        "revoked" if before else "already absent",
        {"leases_found": str(len(before))},
    )


def leases_under(prefix: str) -> list[str]:
    """The leases listed under ``prefix`` (changes nothing)."""
    prefix = _check(prefix, "prefix")
    with _vault.session(f"list leases under {prefix}/") as client:
        return _list(client, prefix)


class LeasePrefix(KindBase):
    """``vault_lease_prefix``: every lease under a prefix (e.g. ``database/creds/app``)."""

    kind = "vault_lease_prefix"
    form = "a lease prefix (e.g. database/creds/app)"
    revoke_one = staticmethod(revoke_lease_prefix)
    is_live = staticmethod(leases_under)
    needs_delivery = False
    not_rotated = (
        "leases belong to the secrets engine that issued them; they expire, and the "
        "consumer asks for new credentials (revoke them early with sundown revoke)"
    )

    def _parts(self, ident: str) -> tuple[str, ...]:
        return tuple(_check(ident, "prefix").split("/"))

    def units(self, spec: SystemSpec) -> list[str]:
        return list(spec.credentials.vault_lease_prefixes)


LEASE_PREFIX = LeasePrefix()
