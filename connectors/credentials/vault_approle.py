"""Vault AppRole: issue and destroy secret-ids by accessor (logins with a destroyed one fail),
delete a role; the ``vault_approle_role`` and ``vault_approle_secret_id`` credential kinds
(:data:`ROLE`, :data:`SECRET_ID`).

The secret-ids themselves are never needed: their accessors (listed on the role) identify them.
Rotating a role issues a new secret-id (tagged with the system's name), delivered as
``{role_id, secret_id, secret_id_accessor}``; the secret-ids it replaces (the declared accessors,
then the ones Sundown issued) are destroyed after the grace period.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import hvac
import hvac.exceptions as hvac_errors
from pydantic import SecretStr

from connectors import _vault
from sundown.credentials import (
    Checks,
    CredentialEvidence,
    KindBase,
    MountKind,
    NewSecret,
    Pending,
    Rotated,
    now,
)
from sundown.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from sundown.credentials import NotRotated, RotationJob, Unit
    from sundown.spec.model import CredentialRef, SystemSpec

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
    results: list[CredentialEvidence] = []
    with _vault.session(f"destroy secret-ids of AppRole {role}") as client:
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
                checks.evidence(
                    KIND,
                    f"{role}/{accessor}",
                    "destroyed" if meta is not None else "already absent",
                    details,
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
    with _vault.session(f"delete AppRole {role}") as client:
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
    return checks.evidence(
        "vault-approle-role", role, "deleted" if existed else "already absent", {"mount": mount}
    )


def _check_names(**values: str) -> None:
    for what, value in values.items():
        if not _NAME.match(value):
            raise InputError(f"{value!r} is not a valid AppRole {what.replace('_', ' ')}")


def issue_secret_id(
    role: str, *, mount: str = "approle", metadata: dict[str, str] | None = None
) -> tuple[str, NewSecret, CredentialEvidence]:
    """Issue a new secret-id on ``role``: (role-id, the secret-id under its accessor, evidence).
    The secret-id is returned once, hidden; the evidence names it by accessor."""
    _check_names(role_name=role, mount=mount)
    with _vault.session(f"issue a secret-id for AppRole {role}") as client:
        approle = client.auth.approle
        try:
            role_id = str(approle.read_role_id(role, mount_point=mount)["data"]["role_id"])
        except hvac_errors.InvalidPath:
            raise NotFoundError(f"no AppRole role {role!r} at auth/{mount}") from None
        issued = approle.generate_secret_id(role, metadata=metadata, mount_point=mount)["data"]
        secret_id = SecretStr(str(issued["secret_id"]))
        accessor = str(issued["secret_id_accessor"])
        del issued
        checks = Checks()
        found = _lookup(client, role, accessor, mount) is not None
        checks.expect("new accessor lookup", found, "found" if found else "not found")
    evidence = checks.evidence(KIND, f"{role}/{accessor}", "issued", {"role": role, "mount": mount})
    return role_id, NewSecret(accessor, secret_id), evidence


def secret_id_is_live(role: str, accessor: str, *, mount: str = "approle") -> bool:
    """Whether a secret-id with this accessor is still on the role (a login with it would
    work); changes nothing."""
    _check_names(role_name=role, mount=mount, secret_id_accessor=accessor)
    with _vault.session(f"look up secret-id {accessor} of AppRole {role}") as client:
        return _lookup(client, role, accessor, mount) is not None


def role_exists(role: str, *, mount: str = "approle") -> bool:
    _check_names(role_name=role, mount=mount)
    with _vault.session(f"read AppRole {role}") as client:
        try:
            client.auth.approle.read_role(role, mount_point=mount)
        except hvac_errors.InvalidPath:
            return False
    return True


def _parse_role(ident: str) -> tuple[str, str]:
    mount, sep, role = ident.rpartition("/")
    if not sep:
        raise InputError(f"{ident!r} is not an AppRole role (MOUNT/ROLE, e.g. approle/my-role)")
    _check_names(mount=mount, role_name=role)
    return mount, role


class AppRoleRole(MountKind):
    """``vault_approle_role``: ``MOUNT/ROLE``. Revoking deletes the role; rotating issues a new
    secret-id and replaces the role's current secret-ids."""

    kind = "vault_approle_role"
    form = "MOUNT/ROLE (e.g. approle/my-role)"
    revoke_one = staticmethod(delete_role)
    is_live = staticmethod(role_exists)
    delivery_field = "secret_id_accessor"
    needs_current = False  # a role with no declared secret-id still gets one

    def _parts(self, ident: str) -> tuple[str, ...]:
        return _parse_role(ident)

    def units(self, spec: SystemSpec) -> list[str]:
        return [f"{ar.mount}/{ar.role}" for ar in spec.credentials.vault_approles]

    def current(self, spec: SystemSpec, declared: str) -> list[str]:
        for ar in spec.credentials.vault_approles:
            if f"{ar.mount}/{ar.role}" == declared:
                return list(ar.secret_id_accessors)
        return []

    def rotate(self, job: RotationJob) -> Rotated | NotRotated:
        mount, role = _parse_role(job.unit.declared)
        role_id, new, evidence = issue_secret_id(
            role, mount=mount, metadata={"system": job.spec.name, "issued_by": "sundown rotate"}
        )
        details = {**evidence.details, "replaces": ",".join(job.ids)}
        accessor = new.identifier
        return Rotated(
            new=[accessor],
            evidence=[evidence.model_copy(update={"details": details})],
            replaced=[self.replaced(job.unit, old, job.delete_after) for old in job.ids],
            deliver={"role_id": role_id, "secret_id": new.secret, "secret_id_accessor": accessor},
            undo=lambda: destroy_secret_ids(role, [accessor], mount=mount),
        )

    def replaced(self, unit: Unit, old: str, not_before: datetime) -> Pending:
        mount, role = _parse_role(unit.declared)
        return Pending(
            unit=unit.key,
            kind=SECRET_ID.kind,
            target=f"{unit.declared}/{old}",
            not_before=not_before,
            params={"mount": mount, "role": role, "accessor": old},
        )

    def references(self, declared: str, ids: Sequence[str]) -> list[CredentialRef]:
        from sundown.spec.model import CredentialRef

        return [CredentialRef(SECRET_ID.kind, f"{declared}/{i}") for i in ids]


class AppRoleSecretId(KindBase):
    """``vault_approle_secret_id``: ``MOUNT/ROLE/ACCESSOR``; revoking destroys the secret-id."""

    kind = "vault_approle_secret_id"
    form = "MOUNT/ROLE/SECRET_ID_ACCESSOR"

    def _parts(self, ident: str) -> tuple[str, ...]:
        role_part, sep, accessor = ident.rpartition("/")
        if not sep or "/" not in role_part:
            raise InputError(f"{ident!r} is not an AppRole secret-id (MOUNT/ROLE/ACCESSOR)")
        mount, role = _parse_role(role_part)
        _check_names(secret_id_accessor=accessor)
        return mount, role, accessor

    def revoke(self, ident: str, *, missing_ok: bool = False) -> list[CredentialEvidence]:
        mount, role, accessor = self.parse(ident)
        return destroy_secret_ids(role, [accessor], mount=mount, missing_ok=missing_ok)

    def live(self, ident: str) -> bool:
        mount, role, accessor = self.parse(ident)
        return secret_id_is_live(role, accessor, mount=mount)


ROLE = AppRoleRole()
SECRET_ID = AppRoleSecretId()
