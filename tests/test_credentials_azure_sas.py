"""Stored access policy rotation and revocation against Azurite (which enforces SAS, including
stored-policy revocation)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import (
    AccessPolicy,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    PublicAccess,
    generate_container_sas,
)

from connectors.credentials import azure_sas
from sundown.errors import ConflictError, InputError, NotFoundError


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


@pytest.fixture
def container(azure_env: str) -> ContainerClient:
    service = BlobServiceClient.from_connection_string(azure_env)
    client = service.create_container("c" + uuid.uuid4().hex[:12])
    client.upload_blob("model.bin", b"weights")
    policy = AccessPolicy(permission=ContainerSasPermissions(read=True, list=True), expiry=soon())
    client.set_container_access_policy({"readers": policy, "other": policy})
    return client


def sas_for(client: ContainerClient, policy_id: str) -> str:
    return generate_container_sas(
        str(client.account_name),
        client.container_name,
        account_key=client.credential.account_key,
        policy_id=policy_id,
    )


def reads(client: ContainerClient, sas: str) -> bool:
    """Whether a SAS can read the container's blob (the way its holder would use it)."""
    try:
        with_sas = ContainerClient.from_container_url(client.url, credential=sas, retry_total=0)
        return with_sas.download_blob("model.bin").readall() == b"weights"
    except HttpResponseError as exc:
        assert exc.status_code == 403
        return False


def policy_ids(client: ContainerClient) -> list[str]:
    return sorted(i.id for i in client.get_container_access_policy()["signed_identifiers"])


def test_revoke_refuses_every_sas_bound_to_the_policy(container: ContainerClient) -> None:
    issued = sas_for(container, "readers")
    assert reads(container, issued)
    evidence = azure_sas.revoke_access_policy(container.container_name, "readers")
    assert evidence.verified
    assert evidence.action == "revoked"
    assert evidence.checks["policy listed after"] == "not listed"
    assert evidence.checks["SAS bound to the policy"] == "refused (AuthorizationFailure)"
    assert evidence.details["remaining_policies"] == "other"
    assert not reads(container, issued)
    assert reads(container, sas_for(container, "other"))  # the other policy is untouched
    assert policy_ids(container) == ["other"]
    with pytest.raises(NotFoundError):
        azure_sas.revoke_access_policy(container.container_name, "readers")
    again = azure_sas.revoke_access_policy(container.container_name, "readers", missing_ok=True)
    assert (again.action, again.verified) == ("already absent", True)


def test_rotate_issues_a_new_sas_and_kills_the_old(container: ContainerClient) -> None:
    old_sas = sas_for(container, "readers")
    rotation = azure_sas.rotate_access_policy(
        container.container_name, "readers", "readers-2", expiry=soon()
    )
    assert rotation.evidence.verified, rotation.evidence.checks
    assert rotation.new is not None and rotation.new.identifier == "readers-2"
    new_sas = rotation.new.secret.get_secret_value()
    assert "si=readers-2" in new_sas
    assert reads(container, new_sas)
    assert not reads(container, old_sas)
    assert policy_ids(container) == ["other", "readers-2"]
    assert rotation.evidence.details["new_permission"] == "rl"
    text = json.dumps(rotation.evidence.to_dict())
    assert "sig=" not in text and new_sas not in text


def test_rotate_keep_old_then_revoke(container: ContainerClient) -> None:
    old_sas = sas_for(container, "readers")
    rotation = azure_sas.rotate_access_policy(
        container.container_name, "readers", "readers-2", expiry=soon(), keep_old=True
    )
    assert rotation.evidence.details["old_policy_state"] == "kept"
    assert reads(container, old_sas)
    azure_sas.revoke_access_policy(container.container_name, "readers")
    assert not reads(container, old_sas)


def test_rotation_keeps_the_public_access_level(container: ContainerClient) -> None:
    policies = {
        i.id: i.access_policy for i in container.get_container_access_policy()["signed_identifiers"]
    }
    container.set_container_access_policy(policies, public_access=PublicAccess.BLOB)
    rotation = azure_sas.rotate_access_policy(
        container.container_name, "readers", "r2", expiry=soon()
    )
    assert container.get_container_access_policy()["public_access"] == "blob"
    # A publicly readable container makes a revocation unprovable: the evidence says so.
    assert not rotation.evidence.verified
    assert rotation.evidence.checks["old SAS bound to the policy"] == (
        "FAILED: not provable: the container allows anonymous public read (blob)"
    )


def test_bad_rotations_change_nothing(container: ContainerClient) -> None:
    name = container.container_name
    with pytest.raises(NotFoundError):
        azure_sas.rotate_access_policy(name, "nope", "n2", expiry=soon())
    with pytest.raises(ConflictError):
        azure_sas.rotate_access_policy(name, "readers", "other", expiry=soon())
    with pytest.raises(InputError, match="in the past"):
        azure_sas.rotate_access_policy(name, "readers", "r3", expiry=datetime.now(UTC))
    with pytest.raises(InputError):
        azure_sas.rotate_access_policy(name, "readers", "r3", expiry=soon(), permission="zz")
    with pytest.raises(InputError):
        azure_sas.revoke_access_policy("Bad_Name", "readers")
    with pytest.raises(NotFoundError, match="container does not exist"):
        azure_sas.revoke_access_policy("missing-" + uuid.uuid4().hex[:8], "readers")
    assert policy_ids(container) == ["other", "readers"]


def test_needs_the_account_key(azure_env: str, monkeypatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    with pytest.raises(InputError, match="AccountKey"):
        azure_sas.revoke_access_policy("somecontainer", "readers")


def test_revoke_missing_ok_when_the_container_is_gone(container: ContainerClient) -> None:
    name = container.container_name
    container.delete_container()
    with pytest.raises(NotFoundError):
        azure_sas.revoke_access_policy(name, "readers")
    evidence = azure_sas.revoke_access_policy(name, "readers", missing_ok=True)
    assert (evidence.action, evidence.verified) == ("already absent", True)
