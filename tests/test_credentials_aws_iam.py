"""IAM access-key rotation and revocation against moto's standalone server."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import boto3
import botocore.exceptions
import pytest

from connectors.credentials import aws_iam
from sundown.errors import ConflictError, InputError, NotFoundError


def iam() -> Any:
    return boto3.client("iam")


@pytest.fixture
def user(moto_env: str) -> str:
    name = "sys-" + uuid.uuid4().hex[:10]
    iam().create_user(UserName=name)
    return name


def statuses(user: str) -> dict[str, str]:
    keys = iam().list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in keys}


def test_rotate_with_grace_then_finish(user: str) -> None:
    old = iam().create_access_key(UserName=user)["AccessKey"]
    rotation = aws_iam.rotate_access_key(user, grace=timedelta(days=7))
    new_id = rotation.new.identifier if rotation.new else ""
    assert rotation.evidence.verified
    assert rotation.evidence.details["old_key"] == old["AccessKeyId"]
    assert rotation.evidence.details["new_key"] == new_id
    assert rotation.evidence.checks == {"new key active": "Active", "old key inactive": "Inactive"}
    assert statuses(user) == {old["AccessKeyId"]: "Inactive", new_id: "Active"}
    # The new secret is returned, hidden; evidence holds no secret.
    assert rotation.new is not None
    assert "**" in repr(rotation.new.secret)
    assert len(rotation.new.secret.get_secret_value()) >= 20
    text = json.dumps(rotation.evidence.to_dict())
    assert rotation.new.secret.get_secret_value() not in text
    assert old["SecretAccessKey"] not in text
    # Too early: refused, nothing deleted.
    assert rotation.delete_old_after is not None
    with pytest.raises(InputError, match="grace period runs until"):
        aws_iam.finish_rotation(user, old["AccessKeyId"], not_before=rotation.delete_old_after)
    assert old["AccessKeyId"] in statuses(user)
    # A third key cannot be created while the old one waits: rotation stops before changing.
    with pytest.raises(ConflictError, match="already has 2 keys"):
        aws_iam.rotate_access_key(user, old_key_id=new_id)
    # After the grace period (here: not_before in the past).
    done = aws_iam.finish_rotation(
        user, old["AccessKeyId"], not_before=rotation.evidence.at - timedelta(seconds=1)
    )
    assert done.verified
    assert done.checks["listed after"] == "not listed"
    assert done.checks["last-used lookup after"] in ("NoSuchEntity", "AccessDenied")
    assert statuses(user) == {new_id: "Active"}


def test_rotate_without_grace_deletes_the_old_key(user: str) -> None:
    old_id = iam().create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    rotation = aws_iam.rotate_access_key(user, grace=timedelta(0))
    assert rotation.evidence.verified
    assert rotation.delete_old_after is None
    assert rotation.evidence.details["old_key_state"] == "deleted"
    assert old_id not in statuses(user)


def test_finish_refuses_a_key_that_was_reactivated(user: str) -> None:
    old_id = iam().create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    rotation = aws_iam.rotate_access_key(user)
    iam().update_access_key(UserName=user, AccessKeyId=old_id, Status="Active")
    with pytest.raises(ConflictError, match="not Inactive; refusing"):
        aws_iam.finish_rotation(user, old_id, not_before=rotation.evidence.at)
    assert statuses(user)[old_id] == "Active"


def test_rotate_needs_exactly_one_active_key_or_a_name(user: str) -> None:
    with pytest.raises(InputError, match="0 active keys"):
        aws_iam.rotate_access_key(user)
    with pytest.raises(NotFoundError):
        aws_iam.rotate_access_key(user, old_key_id="AKIAEXAMPLEEXAMPLE01")
    with pytest.raises(InputError):
        aws_iam.rotate_access_key("bad user name!")


def test_revoke_one_and_all(user: str) -> None:
    a = iam().create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    b = iam().create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    evidence = aws_iam.revoke_access_key(user, a)
    assert evidence.verified
    assert (evidence.action, evidence.details["state_before"]) == ("revoked", "Active")
    assert statuses(user) == {b: "Active"}
    with pytest.raises(NotFoundError):
        aws_iam.revoke_access_key(user, a)
    assert aws_iam.revoke_access_key(user, a, missing_ok=True).action == "already absent"
    rest = aws_iam.revoke_all_access_keys(user)
    assert [e.target for e in rest] == [f"{user}/{b}"]
    assert statuses(user) == {}


def test_missing_user_is_not_found(moto_env: str) -> None:
    with pytest.raises(NotFoundError):
        aws_iam.rotate_access_key("no-such-user-" + uuid.uuid4().hex[:6])


def test_an_inactive_key_no_longer_authenticates(user: str, moto_env: str) -> None:
    """On AWS an inactive key is refused at once. moto's server does not check credentials (and,
    with its IAM authentication switched on, still accepts inactive keys): known gap."""
    old = iam().create_access_key(UserName=user)["AccessKey"]
    aws_iam.rotate_access_key(user)
    session = boto3.session.Session(
        aws_access_key_id=old["AccessKeyId"], aws_secret_access_key=old["SecretAccessKey"]
    )
    try:
        session.client("sts").get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] in ("InvalidClientTokenId", "AccessDenied")
        return
    pytest.xfail(
        "moto still authenticates an inactive access key (docs/known-gaps.md: AWS IAM); the "
        "rotation's proof therefore rests on IAM's own key status, checked above"
    )


def test_revoke_missing_ok_when_the_user_is_gone(moto_env: str) -> None:
    name = "gone-" + uuid.uuid4().hex[:8]
    iam().create_user(UserName=name)
    key_id = iam().create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    iam().delete_access_key(UserName=name, AccessKeyId=key_id)
    iam().delete_user(UserName=name)
    with pytest.raises(NotFoundError):
        aws_iam.revoke_access_key(name, key_id)
    evidence = aws_iam.revoke_access_key(name, key_id, missing_ok=True)
    assert (evidence.action, evidence.verified) == ("already absent", True)
    assert evidence.checks["last-used lookup after"] == "NoSuchEntity"
