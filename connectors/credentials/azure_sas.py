"""Azure Blob stored access policies: rotate and revoke.

A service SAS bound to a stored access policy (``si=<policy id>``) works only while that policy
exists on the container, so removing the policy revokes every SAS issued under it at once, without
rotating the account key. Rotation adds a new policy, issues a SAS under it (returned hidden, as a
:class:`pydantic.SecretStr`) and removes the old one (``keep_old=True`` leaves it for a grace
period; revoke it later).

The account comes from ``AZURE_STORAGE_CONNECTION_STRING``, which must carry the account key:
stored access policies back shared-key SAS only. Proof of revocation is a probe: a SAS bound to
the policy, minted before the change, is refused afterwards (Azure applies policy changes within
30 seconds, so the probe is repeated for up to ``settle``).

The ``azure_stored_policy`` credential kind (:data:`STORED_POLICY`, ``CONTAINER/POLICY_ID``):
rotation makes a new stored access policy (``<declared id>-r<UTC time>``, same permissions,
``rotation.azure_policy_days`` long) and a SAS bound to it; the old policy is removed after the
grace period (every SAS under it is then refused); ``{container, policy_id, sas_token, expires}``
is delivered.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import (
    AccessPolicy,
    BlobClient,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_container_sas,
)
from pydantic import SecretStr

from connectors.credentials import _redact
from sundown import errors
from sundown.credentials import (
    Checks,
    CredentialEvidence,
    NewSecret,
    Rotated,
    Rotation,
    ScopedKind,
    now,
)

if TYPE_CHECKING:
    from sundown.credentials import NotRotated, RotationJob
    from sundown.spec.model import SystemSpec

_redact.install()

KIND = "azure-stored-access-policy"
MAX_POLICIES = 5  # Azure's limit per container
_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_REFUSED = {"AuthenticationFailed", "AuthorizationFailure"}


def _service() -> BlobServiceClient:
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if not conn or "AccountKey=" not in conn:
        raise errors.InputError(
            "stored access policies need AZURE_STORAGE_CONNECTION_STRING with the AccountKey "
            "(shared-key SAS); none is set"
        )
    return BlobServiceClient.from_connection_string(conn, retry_total=3)


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except ResourceNotFoundError:
        raise errors.NotFoundError(f"{what}: the container does not exist") from None
    except ClientAuthenticationError as exc:
        code = _code(exc)
        raise errors.PermissionDeniedError(
            f"{what}: Azure refused the credentials ({code})"
        ) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise errors.TransientError(
            f"{what}: cannot reach Azure Blob ({type(exc).__name__})"
        ) from None
    except HttpResponseError as exc:
        code = _code(exc)
        if exc.status_code == 403:
            raise errors.PermissionDeniedError(
                f"{what}: Azure refused the request ({code})"
            ) from None
        if exc.status_code and exc.status_code >= 500:
            raise errors.TransientError(f"{what}: Azure failed after retries ({code})") from None
        raise errors.BackendError(f"{what}: Azure error {code}") from None


def _code(exc: HttpResponseError) -> str:
    """The storage error code as Azure spells it (the SDK gives an enum or a string)."""
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or exc.status_code)


def _check(container: str, *policy_ids: str) -> None:
    if not _CONTAINER.match(container):
        raise errors.InputError(f"{container!r} is not an Azure container name")
    for policy_id in policy_ids:
        if not _ID.match(policy_id):
            raise errors.InputError(
                f"{policy_id!r} is not a stored access policy id (1-64 characters)"
            )


def _policies(client: ContainerClient) -> tuple[str | None, dict[str, AccessPolicy]]:
    answer = client.get_container_access_policy()
    found: dict[str, AccessPolicy] = {}
    for identifier in answer["signed_identifiers"]:
        found[identifier.id] = identifier.access_policy or AccessPolicy()
    return answer.get("public_access"), found


def _set(client: ContainerClient, public_access: str | None, policies: dict[str, Any]) -> None:
    # The public access level must be sent again, or the call would make the container private.
    client.set_container_access_policy(signed_identifiers=policies, public_access=public_access)


def _sas(service: BlobServiceClient, container: str, policy_id: str) -> str:
    return generate_container_sas(
        str(service.account_name),
        container,
        account_key=service.credential.account_key,
        policy_id=policy_id,
    )


def _probe(service: BlobServiceClient, container: str, sas: str) -> str:
    """'accepted' or 'refused (code)': reads the properties of a blob that does not exist with
    the SAS; 404 means the SAS authenticated, 403 AuthenticationFailed means it did not."""
    url = f"{service.url.rstrip('/')}/{container}/sundown-sas-probe-{uuid.uuid4().hex}"
    try:
        BlobClient.from_blob_url(url, credential=sas, retry_total=0).get_blob_properties()
    except ResourceNotFoundError:
        return "accepted"
    except HttpResponseError as exc:
        code = _code(exc)
        if exc.status_code == 403 and code in _REFUSED:
            return f"refused ({code})"
        return "accepted" if exc.status_code == 403 else f"error ({code})"
    return "accepted"


def _await_refusal(
    service: BlobServiceClient, container: str, sas: str, settle: timedelta
) -> tuple[str, float]:
    started = time.monotonic()
    deadline = started + settle.total_seconds()
    while True:
        result = _probe(service, container, sas)
        if result.startswith("refused") or time.monotonic() >= deadline:
            return result, time.monotonic() - started
        time.sleep(2)


def _prove_refused(
    service: BlobServiceClient,
    container: str,
    sas: str,
    settle: timedelta,
    public_access: str | None,
    checks: Checks,
    label: str,
) -> None:
    name = f"{label}SAS bound to the policy"
    if public_access:
        # Anonymous reads succeed with or without a valid SAS: a probe proves nothing.
        checks.failed(
            name,
            f"not provable: the container allows anonymous public read ({public_access})",
        )
        return
    result, waited = _await_refusal(service, container, sas, settle)
    checks.expect(name, result.startswith("refused"), result)
    if result.startswith("refused"):
        checks.passed(f"{label}SAS refused after", f"{waited:.1f}s")


def rotate_access_policy(
    container: str,
    policy_id: str,
    new_policy_id: str,
    *,
    expiry: datetime,
    permission: str | None = None,
    keep_old: bool = False,
    settle: timedelta = timedelta(seconds=45),
) -> Rotation:
    """Replace stored access policy ``policy_id`` by ``new_policy_id`` (same permissions unless
    ``permission`` is given, e.g. ``"rl"``) expiring at ``expiry``; return a SAS under the new
    policy. The old policy is removed unless ``keep_old``."""
    _check(container, policy_id, new_policy_id)
    if policy_id == new_policy_id:
        raise errors.InputError("the new policy id must differ from the old one")
    if expiry <= now():
        raise errors.InputError(f"expiry {expiry.isoformat()} is in the past")
    what = f"rotate stored access policy {policy_id} of container {container}"
    service = _service()
    client = service.get_container_client(container)
    with _errors(what):
        public_access, policies = _policies(client)
        if policy_id not in policies:
            raise errors.NotFoundError(f"{what}: no such policy on the container")
        if new_policy_id in policies:
            raise errors.ConflictError(f"{what}: policy {new_policy_id} already exists")
        if len(policies) + (0 if not keep_old else 1) > MAX_POLICIES:
            raise errors.ConflictError(
                f"{what}: the container already has {len(policies)} policies"
            )
        old = policies[policy_id]
        perms = permission if permission is not None else str(old.permission or "")
        try:
            parsed = ContainerSasPermissions.from_string(perms)
        except (ValueError, KeyError):
            raise errors.InputError(f"{perms!r} is not a container SAS permission string") from None
        if not str(parsed):
            raise errors.InputError(f"{what}: the new policy would grant no permission")
        old_sas = _sas(service, container, policy_id)
        policies[new_policy_id] = AccessPolicy(permission=parsed, expiry=expiry, start=old.start)
        if not keep_old:
            del policies[policy_id]
        _set(client, public_access, policies)
        new_sas = _sas(service, container, new_policy_id)
        checks = Checks()
        _, after = _policies(client)
        checks.expect("new policy listed", new_policy_id in after, str(sorted(after)))
        new_result, _ = _await_refusal(service, container, new_sas, timedelta(0))
        checks.expect("SAS under new policy", new_result == "accepted", new_result)
        if not keep_old:
            checks.expect("old policy listed", policy_id not in after, "not listed")
            _prove_refused(service, container, old_sas, settle, public_access, checks, "old ")
    details = {"container": container, "old_policy": policy_id, "new_policy": new_policy_id}
    details["new_expiry"] = expiry.isoformat()
    details["new_permission"] = str(parsed)
    details["old_policy_state"] = "kept" if keep_old else "removed"
    evidence = checks.evidence(KIND, f"{container}/{policy_id}", "rotated", details)
    return Rotation(evidence, NewSecret(new_policy_id, SecretStr(new_sas), expiry), None)


def revoke_access_policy(
    container: str,
    policy_id: str,
    *,
    missing_ok: bool = False,
    settle: timedelta = timedelta(seconds=45),
) -> CredentialEvidence:
    """Remove stored access policy ``policy_id``: every SAS issued under it stops working.
    Proof: the policy is no longer listed, and a SAS bound to it is refused."""
    _check(container, policy_id)
    what = f"revoke stored access policy {policy_id} of container {container}"
    service = _service()
    client = service.get_container_client(container)
    with _errors(what):
        if missing_ok and not client.exists():
            # A deleted container takes its policies (and every SAS bound to them) with it.
            return CredentialEvidence(
                kind=KIND,
                target=f"{container}/{policy_id}",
                action="already absent",
                at=now(),
                details={"container": container},
                checks={"container lookup": "not found: the container and its policies are gone"},
                verified=True,
            )
        public_access, policies = _policies(client)
        present = policy_id in policies
        if not present and not missing_ok:
            raise errors.NotFoundError(f"{what}: no such policy on the container")
        probe_sas = _sas(service, container, policy_id)
        if present:
            del policies[policy_id]
            _set(client, public_access, policies)
        checks = Checks()
        _, after = _policies(client)
        checks.expect("policy listed after", policy_id not in after, "not listed")
        _prove_refused(service, container, probe_sas, settle, public_access, checks, "")
    return checks.evidence(
        KIND,
        f"{container}/{policy_id}",
        "revoked" if present else "already absent",
        {"container": container, "remaining_policies": ",".join(sorted(after))},
    )


def policy_is_live(container: str, policy_id: str) -> bool:
    """Whether a SAS bound to the policy would be accepted now: the policy is listed on the
    container and a probe with a SAS under it authenticates. Changes nothing."""
    _check(container, policy_id)
    service = _service()
    client = service.get_container_client(container)
    with _errors(f"look up stored access policy {policy_id} of container {container}"):
        if not client.exists():
            return False
        public_access, policies = _policies(client)
        if policy_id not in policies:
            return False
        if public_access:  # a probe proves nothing; the listed policy is taken as live
            return True
        return _probe(service, container, _sas(service, container, policy_id)) == "accepted"


class StoredPolicy(ScopedKind):
    """``azure_stored_policy``: ``CONTAINER/POLICY_ID``."""

    kind = "azure_stored_policy"
    form = "CONTAINER/POLICY_ID"
    delivery_field = "policy_id"
    params = ("container", "policy_id")
    revoke_one = staticmethod(revoke_access_policy)
    is_live = staticmethod(policy_is_live)

    def check(self, scope: str, name: str) -> None:
        _check(scope, name)

    def units(self, spec: SystemSpec) -> list[str]:
        return [f"{p.container}/{p.policy_id}" for p in spec.credentials.azure_stored_policies]

    def rotate(self, job: RotationJob) -> Rotated | NotRotated:
        assert job.spec.rotation is not None
        container, root = job.unit.declared.split("/", 1)
        old = job.ids[0]
        new_id = f"{root[:46]}-r{job.stamp:%Y%m%d%H%M%S}"
        expiry = job.stamp + timedelta(days=job.spec.rotation.azure_policy_days)
        keep_old = job.grace > timedelta(0)
        rotation = rotate_access_policy(container, old, new_id, expiry=expiry, keep_old=keep_old)
        assert rotation.new is not None
        return Rotated(
            new=[new_id],
            evidence=[rotation.evidence],
            replaced=[self.replaced(job.unit, old, job.delete_after)] if keep_old else [],
            deliver={
                "container": container,
                "policy_id": new_id,
                "sas_token": rotation.new.secret,
                "expires": expiry.isoformat(),
            },
            undo=lambda: revoke_access_policy(container, new_id),
        )


STORED_POLICY = StoredPolicy()
