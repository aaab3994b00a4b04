"""Vault AppRole: destroy secret-ids by accessor, so logins with them fail.

The secret-ids themselves are never needed: their accessors (listed on the role) identify them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import hvac
import hvac.exceptions as hvac_errors

from connectors.credentials import Checks, CredentialEvidence, now
from connectors.vault import VaultSettings, vault_client, vault_errors
from sundown.errors import InputError, NotFoundError

KIND = "vault-approle-secret-id"
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def _accessors(client: hvac.Client, role: str, mount: str) -> list[str]:
    try:
        answer = client.auth.approle.list_secret_id_accessors(role, mount_point=mount)
    except hvac_errors.InvalidPath:
        return []
    return [str(k) for k in answer["data"]["keys"]]


def _lookup(client: hvac.Client, role: str, accessor: str, mount: str) -> dict[str, object] | None:
    try:
        return dict(
            client.auth.approle.read_secret_id_accessor(role, accessor, mount_point=mount)["data"]
        )
    except hvac_errors.InvalidPath:
        return None


def destroy_secret_ids(
    role: str,
    accessors: Sequence[str] | None = None,
    *,
    mount: str = "approle",
    missing_ok: bool = False,
) -> list[CredentialEvidence]:
    """Destroy the role's secret-ids with these accessors (all of the role's secret-ids when
    ``accessors`` is None). Proof per secret-id: its accessor no longer looks up and is no longer
    listed on the role, so a login with the secret-id fails."""
    for value, what in ((role, "role name"), (mount, "mount")):
        if not _NAME.match(value):
            raise InputError(f"{value!r} is not a valid AppRole {what}")
    settings = VaultSettings.from_env()
    results: list[CredentialEvidence] = []
    with (
        vault_errors(f"destroy secret-ids of AppRole {role}", settings),
        vault_client(settings) as client,
    ):
        for accessor in accessors or ():
            if not _NAME.match(accessor):
                raise InputError(f"{accessor!r} is not a secret-id accessor")
        try:
            client.auth.approle.read_role(role, mount_point=mount)
        except hvac_errors.InvalidPath:
            if not missing_ok:
                raise NotFoundError(f"no AppRole role {role!r} at auth/{mount}") from None
            # A deleted role takes its secret-ids with it (a resumed retirement).
            return [
                CredentialEvidence(
                    kind=KIND,
                    target=f"{role}/{accessor}",
                    action="already absent",
                    at=now(),
                    details={"role": role, "mount": mount},
                    checks={"role lookup": "not found: the role and its secret-ids are gone"},
                    verified=True,
                )
                for accessor in accessors or ()
            ]
        targets = list(accessors) if accessors is not None else _accessors(client, role, mount)
        found = {a: _lookup(client, role, a, mount) for a in targets}
        missing = [a for a, meta in found.items() if meta is None]
        if missing and not missing_ok:
            raise NotFoundError(
                f"AppRole {role}: no secret-id with accessor(s) {', '.join(missing)}; "
                "nothing destroyed"
            )
        for accessor, meta in found.items():
            if meta is not None:
                client.auth.approle.destroy_secret_id_accessor(role, accessor, mount_point=mount)
        listed = set(_accessors(client, role, mount))
        for accessor, meta in found.items():
            checks = Checks()
            gone = _lookup(client, role, accessor, mount) is None
            checks.expect("accessor lookup after", gone, "not found" if gone else "still present")
            checks.expect(
                "listed on role after",
                accessor not in listed,
                "not listed" if accessor not in listed else "still listed",
            )
            details = {"role": role, "mount": mount}
            if meta is not None:
                details["created"] = str(meta.get("creation_time", ""))
            results.append(
                CredentialEvidence(
                    kind=KIND,
                    target=f"{role}/{accessor}",
                    action="destroyed" if meta is not None else "already absent",
                    at=now(),
                    details=details,
                    checks=checks.results,
                    verified=checks.ok,
                )
            )
    return results


def delete_role(
    role: str, *, mount: str = "approle", missing_ok: bool = False
) -> CredentialEvidence:
    """Delete the AppRole role itself (its role-id and every secret-id go with it). Proof: the
    role no longer reads and is no longer listed on the mount."""
    for value, what in ((role, "role name"), (mount, "mount")):
        if not _NAME.match(value):
            raise InputError(f"{value!r} is not a valid AppRole {what}")
    settings = VaultSettings.from_env()
    with vault_errors(f"delete AppRole {role}", settings), vault_client(settings) as client:
        try:
            client.auth.approle.read_role(role, mount_point=mount)
            existed = True
        except hvac_errors.InvalidPath:
            if not missing_ok:
                raise NotFoundError(f"no AppRole role {role!r} at auth/{mount}") from None
            existed = False
        if existed:
            client.auth.approle.delete_role(role, mount_point=mount)
        checks = Checks()
        try:
            client.auth.approle.read_role(role, mount_point=mount)
            read = "still readable"
        except hvac_errors.InvalidPath:
            read = "not found"
        checks.expect("role lookup after", read == "not found", read)
        try:
            listed = role in client.auth.approle.list_roles(mount_point=mount)["data"]["keys"]
        except hvac_errors.InvalidPath:  # no roles left on the mount
            listed = False
        checks.expect(
            "listed on mount after", not listed, "still listed" if listed else "not listed"
        )
    return CredentialEvidence(
        kind="vault-approle-role",
        target=role,
        action="deleted" if existed else "already absent",
        at=now(),
        details={"mount": mount},
        checks=checks.results,
        verified=checks.ok,
    )
