"""Vault KV v2 secrets: rotate (write a new version) and destroy (every version, then metadata).

Paths are relative to the KV v2 mount (``mount``, default ``secret``). The values written are
never returned, logged or put in evidence: a rotation's check compares the SHA-256 of what was
written with the SHA-256 of what reads back.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

import hvac.exceptions as hvac_errors
from pydantic import SecretStr

from connectors.credentials import Checks, CredentialEvidence, now
from connectors.vault import VaultSettings, vault_client, vault_errors
from sundown.errors import ConflictError, InputError, NotFoundError

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
    settings = VaultSettings.from_env()
    with vault_errors(f"rotate KV secret {target}", settings), vault_client(settings) as client:
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
    settings = VaultSettings.from_env()
    details: dict[str, str] = {}
    with vault_errors(f"destroy KV secret {target}", settings), vault_client(settings) as client:
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
    return CredentialEvidence(
        kind=KIND,
        target=target,
        action="destroyed" if meta is not None else "already absent",
        at=now(),
        details=details,
        checks=checks.results,
        verified=checks.ok,
    )
