"""Vault KV v2 secrets: rotate (write a new version) and destroy (every version, then metadata);
the delivery of rotated credentials' new secrets; the ``vault_kv`` and ``vault_kv_version``
credential kinds (:data:`KV`, :data:`KV_VERSION`).

Paths are relative to the KV v2 mount (``mount``, default ``secret``). The values written are
never returned, logged or put in evidence: a rotation's check compares the SHA-256 of what was
written with the SHA-256 of what reads back.

What rotation means for ``vault_kv`` (``on_rotation: generate``): a new version of the secret
where every field gets a fresh value of 32 random bytes, URL-safe base64
(``secrets.token_urlsafe(32)``); the secret is its own delivery. The previous version
(``vault_kv_version``) is destroyed after the grace period.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import hvac.exceptions as hvac_errors
from pydantic import SecretStr

from connectors import _vault
from sundown.credentials import (
    Checks,
    CredentialEvidence,
    Delivered,
    KindBase,
    MountKind,
    NotRotated,
    Pending,
    Rotated,
    now,
)
from sundown.errors import ConflictError, InputError, NotFoundError

if TYPE_CHECKING:
    from sundown.credentials import RotationJob
    from sundown.spec.model import Delivery, SystemSpec

KIND = "vault-kv"
_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


def _check_path(mount: str, path: str) -> None:
    for what, value in (("mount", mount), ("path", path)):
        if not _PATH.match(value) or ".." in value.split("/"):
            raise InputError(
                f"KV {what} {value!r} is not a valid path (segments of A-Z a-z 0-9 . _ -)"
            )


def _plain(data: Mapping[str, str | SecretStr]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in data.items():
        if not isinstance(name, str) or not name:
            raise InputError("KV secret field names must be non-empty strings")
        if isinstance(value, SecretStr):
            out[name] = value.get_secret_value()
        elif isinstance(value, str):
            out[name] = value
        else:
            raise InputError(f"KV secret field {name!r} must be a string or SecretStr")
    if not out:
        raise InputError("a rotated KV secret needs at least one field")
    return out


def _digest(data: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


def rotate_secret(
    path: str, data: Mapping[str, str | SecretStr], *, mount: str = "secret"
) -> CredentialEvidence:
    """Write ``data`` as a new version of an existing secret, with check-and-set on the version
    read just before (ConflictError if someone else wrote in between)."""
    _check_path(mount, path)
    values = _plain(data)
    target = f"{mount}/{path}"
    with _vault.session(f"rotate KV secret {target}") as client:
        kv = client.secrets.kv.v2
        try:
            previous = int(
                kv.read_secret_metadata(path, mount_point=mount)["data"]["current_version"]
            )
        except hvac_errors.InvalidPath:
            raise NotFoundError(f"no KV secret {target} to rotate") from None
        try:
            written = kv.create_or_update_secret(
                path, secret=values, cas=previous, mount_point=mount
            )
        except hvac_errors.InvalidRequest as exc:
            if "check-and-set" in str(exc):
                raise ConflictError(
                    f"KV secret {target} changed while rotating; run again"
                ) from None
            raise
        version = int(written["data"]["version"])
        back = kv.read_secret_version(
            path, version=version, mount_point=mount, raise_on_deleted_version=True
        )["data"]
    checks = Checks()
    checks.expect("new version", version == previous + 1, f"version {version} after {previous}")
    checks.expect(
        "read back",
        _digest(back["data"]) == _digest(values),
        "content digest matches what was written",
    )
    return CredentialEvidence(
        kind=KIND,
        target=target,
        action="rotated",
        at=now(),
        details={
            "previous_version": str(previous),
            "new_version": str(version),
            "fields": ",".join(sorted(values)),
        },
        checks=checks.results,
        verified=checks.ok,
    )


def destroy_secret(
    path: str, *, mount: str = "secret", missing_ok: bool = False
) -> CredentialEvidence:
    """Destroy every version of the secret (the data is erased, not soft-deleted), then delete its
    metadata. Proof: the metadata and the data no longer read."""
    _check_path(mount, path)
    target = f"{mount}/{path}"
    details: dict[str, str] = {}
    with _vault.session(f"destroy KV secret {target}") as client:
        kv = client.secrets.kv.v2
        try:
            meta = kv.read_secret_metadata(path, mount_point=mount)["data"]
        except hvac_errors.InvalidPath:
            if not missing_ok:
                raise NotFoundError(f"no KV secret {target} to destroy") from None
            meta = None
        if meta is not None:
            versions = sorted(int(v) for v in (meta.get("versions") or {}))
            if versions:
                kv.destroy_secret_versions(path, versions=versions, mount_point=mount)
            kv.delete_metadata_and_all_versions(path, mount_point=mount)
            details = {
                "versions_destroyed": ",".join(map(str, versions)),
                "metadata": "deleted",
            }
        checks = Checks()
        try:
            kv.read_secret_metadata(path, mount_point=mount)
            checks.failed("read metadata after", "still reads")
        except hvac_errors.InvalidPath:
            checks.passed("read metadata after", "404 not found")
        try:
            kv.read_secret_version(path, mount_point=mount, raise_on_deleted_version=True)
            checks.failed("read data after", "still reads")
        except hvac_errors.InvalidPath:
            checks.passed("read data after", "404 not found")
    return checks.evidence(
        KIND, target, "destroyed" if meta is not None else "already absent", details
    )


def field_names(path: str, *, mount: str = "secret") -> list[str]:
    """The field names of the secret's current version (its values are read, not kept)."""
    _check_path(mount, path)
    with _vault.session(f"read the fields of KV {mount}/{path}") as client:
        try:
            current = client.secrets.kv.v2.read_secret_version(
                path, mount_point=mount, raise_on_deleted_version=True
            )["data"]["data"]
        except hvac_errors.InvalidPath:
            raise NotFoundError(f"no readable KV secret {mount}/{path} to rotate") from None
        fields = sorted(current)
        del current  # the old values are not needed, only the field names
    return fields


def is_readable(path: str, *, mount: str = "secret", version: int | None = None) -> bool:
    """Whether the secret (or one version of it) still reads; changes nothing."""
    _check_path(mount, path)
    with _vault.session(f"read KV {mount}/{path}") as client:
        try:
            answer = client.secrets.kv.v2.read_secret_version(
                path, version=version, mount_point=mount, raise_on_deleted_version=True
            )
        except hvac_errors.InvalidPath:
            return False
        readable = bool(answer["data"]["data"])
        del answer
    return readable


def check_writable(paths: Sequence[tuple[str, str]]) -> list[str]:
    """The KV v2 secrets (``(mount, path)``) the Vault token may not create and update, each
    with the capabilities it has; empty when it may write them all."""
    if not paths:
        return []
    api = [f"{mount}/data/{path}" for mount, path in paths]
    with _vault.session("check the rotation delivery paths") as client:
        answer = client.sys.get_capabilities(paths=api)
    data = answer.get("data", answer) if isinstance(answer, Mapping) else {}
    refused = []
    for path in api:
        caps = set(data.get(path) or data.get("capabilities") or [])
        if "root" not in caps and not {"create", "update"} <= caps:
            refused.append(f"{path} ({', '.join(sorted(caps)) or 'deny'})")
    return refused


def deliver(delivery: Delivery, values: Mapping[str, str | SecretStr]) -> Delivered:
    """Write ``values`` as a new version of the delivery secret (check-and-set on the version
    read just before); read it back and compare. Returns the path, version and checks only."""
    plain = {
        k: v.get_secret_value() if isinstance(v, SecretStr) else str(v) for k, v in values.items()
    }
    target = f"{delivery.mount}/{delivery.path}"
    with _vault.session(f"deliver to KV {target}") as client:
        kv = client.secrets.kv.v2
        try:
            meta = kv.read_secret_metadata(delivery.path, mount_point=delivery.mount)
            previous = int(meta["data"]["current_version"])
        except hvac_errors.InvalidPath:
            previous = 0
        written = kv.create_or_update_secret(
            delivery.path, secret=plain, cas=previous, mount_point=delivery.mount
        )
        version = int(written["data"]["version"])
        back = kv.read_secret_version(
            delivery.path,
            version=version,
            mount_point=delivery.mount,
            raise_on_deleted_version=True,
        )["data"]["data"]
    checks = Checks()
    checks.expect("read back", back == plain, "every field reads back as written")
    checks.expect("new version", version == previous + 1, f"version {version} after {previous}")
    return Delivered(
        path=target,
        version=version,
        fields=sorted(plain),
        checks=checks.results,
        verified=checks.ok,
    )


def delivered_field(delivery: Delivery, name: str) -> tuple[str, int] | None:
    """The public identifier field ``name`` of the latest delivery and its version (None when
    nothing was delivered). The other (secret) fields are read and dropped."""
    with _vault.session(f"read KV {delivery.mount}/{delivery.path}") as client:
        try:
            answer = client.secrets.kv.v2.read_secret_version(
                delivery.path, mount_point=delivery.mount, raise_on_deleted_version=True
            )["data"]
        except hvac_errors.InvalidPath:
            return None
    found = answer["data"].get(name)
    version = int(answer["metadata"]["version"])
    del answer
    return (str(found), version) if found else None


def destroy_version(path: str, version: int, *, mount: str = "secret") -> CredentialEvidence:
    """Destroy one old version of a KV secret (its data erased; metadata kept). NotFoundError
    when the secret itself is gone."""
    _check_path(mount, path)
    target = f"{mount}/{path}"
    with _vault.session(f"destroy version {version} of {target}") as client:
        kv = client.secrets.kv.v2
        kv.destroy_secret_versions(path, versions=[version], mount_point=mount)
        meta = kv.read_secret_metadata(path, mount_point=mount)["data"]
        destroyed = bool((meta.get("versions") or {}).get(str(version), {}).get("destroyed"))
        checks = Checks()
        checks.expect("version destroyed", destroyed, "destroyed" if destroyed else "readable")
        try:
            kv.read_secret_version(
                path, version=version, mount_point=mount, raise_on_deleted_version=True
            )
            checks.failed("read version after", "still reads")
        except hvac_errors.InvalidPath:
            checks.passed("read version after", "no data")
    return checks.evidence(
        KIND, f"{target}#{version}", "old version destroyed", {"version": str(version)}
    )


def _split(ident: str) -> tuple[str, str]:
    mount, _, path = ident.partition("/")
    _check_path(mount, path)
    return mount, path


class KvSecret(MountKind):
    """``vault_kv``: ``MOUNT/PATH`` of a KV v2 secret."""

    kind = "vault_kv"
    form = "MOUNT/PATH (e.g. secret/my-system/db)"
    revoke_one = staticmethod(destroy_secret)
    is_live = staticmethod(is_readable)
    needs_delivery = False  # the secret is its own delivery

    def _parts(self, ident: str) -> tuple[str, ...]:
        return _split(ident)

    def units(self, spec: SystemSpec) -> list[str]:
        return [f"{kv.mount}/{kv.path}" for kv in spec.credentials.vault_kv]

    def rotate(self, job: RotationJob) -> Rotated | NotRotated:
        declared = job.unit.declared
        entry = next(
            kv for kv in job.spec.credentials.vault_kv if f"{kv.mount}/{kv.path}" == declared
        )
        if entry.on_rotation == "keep":
            return NotRotated("on_rotation is 'keep' (its value is set by another system)")
        names = field_names(entry.path, mount=entry.mount)
        values = {name: SecretStr(secrets.token_urlsafe(32)) for name in names}
        evidence = rotate_secret(entry.path, values, mount=entry.mount)
        del values
        previous = int(evidence.details["previous_version"])
        replaced = Pending(
            unit=job.unit.key,
            kind=KV_VERSION.kind,
            target=f"{declared}#{previous}",
            not_before=job.delete_after,
            params={"mount": entry.mount, "path": entry.path, "version": previous},
        )
        return Rotated(
            new=[declared],
            evidence=[evidence],
            replaced=[replaced],
            delivered=Delivered(path=declared, version=int(evidence.details["new_version"])),
            failure="the new version did not read back as written",
        )


class KvVersion(KindBase):
    """``vault_kv_version``: ``MOUNT/PATH#VERSION``, one version of a KV v2 secret replaced by a
    rotation (destroyed when its grace period ends)."""

    kind = "vault_kv_version"
    form = "MOUNT/PATH#VERSION"

    def _parts(self, ident: str) -> tuple[str, ...]:
        secret, sep, version = ident.rpartition("#")
        if not sep or not version.isdigit() or int(version) < 1:
            raise InputError(f"{ident!r} is not a KV secret version (MOUNT/PATH#VERSION)")
        return (*_split(secret), version)

    def revoke(self, ident: str, *, missing_ok: bool = False) -> list[CredentialEvidence]:
        mount, path, version = self.parse(ident)
        try:
            return [destroy_version(path, int(version), mount=mount)]
        except NotFoundError:  # the secret itself is gone (revoked or retired meanwhile)
            if not missing_ok:
                raise
            return [
                CredentialEvidence(
                    kind=KIND,
                    target=ident,
                    action="already absent",
                    at=now(),
                    checks={"read metadata": "404 not found: the secret is gone"},
                    verified=True,
                )
            ]

    def live(self, ident: str) -> bool:
        mount, path, version = self.parse(ident)
        return is_readable(path, mount=mount, version=int(version))


KV = KvSecret()
KV_VERSION = KvVersion()
