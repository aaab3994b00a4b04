"""AWS IAM access keys: rotate (create new, deactivate old, delete old after a grace period) and
revoke (deactivate, delete).

Credentials, region and endpoint come from boto3's standard chain when each operation starts
(``AWS_ENDPOINT_URL`` for moto or another IAM-compatible endpoint). botocore's ``standard``
retry mode retries throttling and 5xx a bounded number of times. The new secret access key is
returned once, as a :class:`pydantic.SecretStr`; evidence names keys by their access key id only.

The ``aws_access_key`` credential kind (:data:`ACCESS_KEY`, ``USER/ACCESS_KEY_ID``): rotation makes
a new key for the user, deactivates the old one at once and deletes it after the grace period;
``{aws_access_key_id, aws_secret_access_key}`` is delivered. One key per user is rotated (IAM
allows two, and a rotation needs the second slot).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import botocore.exceptions
from botocore.config import Config
from pydantic import SecretStr

from connectors import _aws
from connectors.credentials import _redact
from sundown import errors
from sundown.credentials import Checks, NewSecret, Rotation, ScopedKind, key_to_replace, now

if TYPE_CHECKING:
    from sundown.credentials import CredentialEvidence, NotRotated, Pending, Rotated, RotationJob
    from sundown.spec.model import Delivery, SystemSpec

_redact.install()

KIND = "aws-iam-access-key"
MAX_KEYS_PER_USER = 2  # IAM's limit
_USER = re.compile(r"^[\w+=,.@-]{1,64}$")
_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
_DENIED = {"AccessDenied", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClient"}
_TRANSIENT = {"Throttling", "ThrottlingException", "ServiceFailure", "RequestLimitExceeded"}


def _iam() -> Any:
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10)
    return _aws.new_client("iam", config)


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", ""))[:200]
        if code == "NoSuchEntity":
            raise errors.NotFoundError(f"{what}: {message or 'not found'}") from None
        if code in _DENIED:
            raise errors.PermissionDeniedError(
                f"{what}: IAM refused the credentials ({code})"
            ) from None
        if code == "LimitExceeded":
            raise errors.ConflictError(f"{what}: {message}") from None
        if code in _TRANSIENT:
            raise errors.TransientError(f"{what}: IAM failed after retries ({code})") from None
        raise errors.BackendError(f"{what}: IAM error {code}: {message}") from None
    except botocore.exceptions.NoCredentialsError:
        raise errors.PermissionDeniedError(f"{what}: no AWS credentials configured") from None
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
        botocore.exceptions.ReadTimeoutError,
    ) as exc:
        raise errors.TransientError(f"{what}: cannot reach IAM ({type(exc).__name__})") from None


def _check_user(user: str) -> None:
    if not _USER.match(user):
        raise errors.InputError(f"{user!r} is not an IAM user name")


def _check_key_id(key_id: str) -> None:
    if not _KEY_ID.match(key_id):
        raise errors.InputError(f"{key_id!r} is not an access key id")


def _keys(iam: Any, user: str) -> dict[str, str]:
    """access key id -> status, for the user."""
    pages = iam.get_paginator("list_access_keys").paginate(UserName=user)
    return {k["AccessKeyId"]: k["Status"] for page in pages for k in page["AccessKeyMetadata"]}


def _delete_checks(
    iam: Any, user: str, key_id: str, checks: Checks, *, user_gone: bool = False
) -> None:
    if user_gone:
        checks.passed("listed after", "the user does not exist")
    else:
        listed = key_id in _keys(iam, user)
        checks.expect("listed after", not listed, "still listed" if listed else "not listed")
    try:
        iam.get_access_key_last_used(AccessKeyId=key_id)
        checks.failed("last-used lookup after", "the key is still known to IAM")
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        checks.expect("last-used lookup after", code in ("NoSuchEntity", "AccessDenied"), code)


def _deleted(
    iam: Any,
    user: str,
    key_id: str,
    action: str,
    details: dict[str, str],
    *,
    user_gone: bool = False,
) -> CredentialEvidence:
    """The evidence of a deleted access key: IAM no longer lists it nor knows it."""
    checks = Checks()
    _delete_checks(iam, user, key_id, checks, user_gone=user_gone)
    return checks.evidence(KIND, f"{user}/{key_id}", action, {"user": user, **details})


def rotate_access_key(
    user: str, *, old_key_id: str | None = None, grace: timedelta = timedelta(days=7)
) -> Rotation:
    """Create a new access key for ``user`` and deactivate the old one (the user's only key,
    or ``old_key_id``); delete the old key now when ``grace`` is zero, otherwise call
    :func:`finish_rotation` after ``delete_old_after``. Stops before changing anything when the
    user already has two keys or the old key is not what was expected."""
    _check_user(user)
    if old_key_id is not None:
        _check_key_id(old_key_id)
    if grace < timedelta(0):
        raise errors.InputError("grace must not be negative")
    what = f"rotate access key of IAM user {user}"
    iam = _iam()
    with _errors(what):
        keys = _keys(iam, user)
        old_key_id = key_to_replace(
            what, keys, old_key_id, active="Active", noun="access key", owner="user"
        )
        if len(keys) >= MAX_KEYS_PER_USER:
            others = sorted(k for k in keys if k != old_key_id)
            raise errors.ConflictError(
                f"{what}: the user already has {len(keys)} keys (IAM allows "
                f"{MAX_KEYS_PER_USER}); delete {', '.join(others)} first"
            )
        created = iam.create_access_key(UserName=user)["AccessKey"]
        new_id = str(created["AccessKeyId"])
        secret = SecretStr(str(created["SecretAccessKey"]))
        iam.update_access_key(UserName=user, AccessKeyId=old_key_id, Status="Inactive")
        delete_after: datetime | None = now() + grace
        if grace == timedelta(0):
            iam.delete_access_key(UserName=user, AccessKeyId=old_key_id)
            delete_after = None
        checks = Checks()
        after = _keys(iam, user)
        checks.expect("new key active", after.get(new_id) == "Active", str(after.get(new_id)))
        if delete_after is None:
            _delete_checks(iam, user, old_key_id, checks)
        else:
            status = after.get(old_key_id)
            checks.expect("old key inactive", status == "Inactive", str(status))
    details = {"user": user, "old_key": old_key_id, "new_key": new_id}
    details["old_key_state"] = "deleted" if delete_after is None else "inactive"
    if delete_after is not None:
        details["delete_old_after"] = delete_after.isoformat()
    evidence = checks.evidence(KIND, f"{user}/{old_key_id}", "rotated", details)
    return Rotation(evidence, NewSecret(new_id, secret), delete_after)


def finish_rotation(user: str, old_key_id: str, *, not_before: datetime) -> CredentialEvidence:
    """Delete the old key of a rotation once its grace period is over. Refuses before
    ``not_before``, and refuses a key that is still active (someone re-enabled it)."""
    _check_user(user)
    _check_key_id(old_key_id)
    what = f"delete rotated access key {old_key_id} of IAM user {user}"
    if now() < not_before:
        raise errors.InputError(f"{what}: the grace period runs until {not_before.isoformat()}")
    iam = _iam()
    with _errors(what):
        status = _keys(iam, user).get(old_key_id)
        if status is None:
            raise errors.NotFoundError(f"{what}: no such key on this user")
        if status != "Inactive":
            raise errors.ConflictError(
                f"{what}: the key is {status}, not Inactive; refusing to delete"
            )
        iam.delete_access_key(UserName=user, AccessKeyId=old_key_id)
        return _deleted(
            iam, user, old_key_id, "deleted after grace period",
            {"grace_ended": not_before.isoformat()},
        )  # fmt: skip


def revoke_access_key(user: str, key_id: str, *, missing_ok: bool = False) -> CredentialEvidence:
    """Deactivate, then delete, one access key. Proof: IAM no longer lists or knows it."""
    _check_user(user)
    _check_key_id(key_id)
    what = f"revoke access key {key_id} of IAM user {user}"
    iam = _iam()
    with _errors(what):
        try:
            status = _keys(iam, user).get(key_id)
        except botocore.exceptions.ClientError as exc:
            if not missing_ok or exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
            # A deleted user takes its access keys with it (a resumed retirement).
            return _deleted(
                iam, user, key_id, "already absent", {"state_before": "user does not exist"},
                user_gone=True,
            )  # fmt: skip
        if status is None and not missing_ok:
            raise errors.NotFoundError(f"{what}: no such key on this user")
        if status is not None:
            if status == "Active":
                iam.update_access_key(UserName=user, AccessKeyId=key_id, Status="Inactive")
            iam.delete_access_key(UserName=user, AccessKeyId=key_id)
        return _deleted(
            iam, user, key_id, "revoked" if status is not None else "already absent",
            {"state_before": status or "absent"},
        )  # fmt: skip


def revoke_all_access_keys(user: str) -> list[CredentialEvidence]:
    """Revoke every access key of ``user`` (retirement of a system's IAM user)."""
    _check_user(user)
    with _errors(f"list access keys of IAM user {user}"):
        keys = sorted(_keys(_iam(), user))
    return [revoke_access_key(user, key_id) for key_id in keys]


def key_is_active(user: str, key_id: str) -> bool:
    """Whether the key is listed on the user as Active (a request signed with it would be
    accepted); changes nothing. A user that does not exist has no live key."""
    _check_user(user)
    _check_key_id(key_id)
    try:
        with _errors(f"look up access key {key_id} of IAM user {user}"):
            return _keys(_iam(), user).get(key_id) == "Active"
    except errors.NotFoundError:
        return False


class AccessKey(ScopedKind):
    """``aws_access_key``: ``USER/ACCESS_KEY_ID``; rotated per user, delivered by user."""

    kind = "aws_access_key"
    form = "USER/ACCESS_KEY_ID"
    delivery_field = "aws_access_key_id"
    params = ("user", "key_id")
    revoke_one = staticmethod(revoke_access_key)
    is_live = staticmethod(key_is_active)

    def check(self, scope: str, name: str) -> None:
        _check_user(scope)
        _check_key_id(name)

    def units(self, spec: SystemSpec) -> list[str]:
        return [
            f"{ak.user}/{k}" for ak in spec.credentials.aws_access_keys for k in ak.access_key_ids
        ]

    def delivery(self, spec: SystemSpec, declared: str) -> Delivery | None:
        return spec.delivery(self.kind, self.scope(declared))

    def refusal(self, spec: SystemSpec, declared: str) -> str | None:
        user = self.scope(declared)
        declared_keys = [
            k
            for ak in spec.credentials.aws_access_keys
            if ak.user == user
            for k in ak.access_key_ids
        ]
        if len(declared_keys) > 1:
            return (
                f"{len(declared_keys)} access keys are declared for IAM user {user}; rotation "
                "keeps one key per user (IAM allows two, and a rotation needs the second slot)"
            )
        return None

    def rotate(self, job: RotationJob) -> Rotated | NotRotated:
        user = self.scope(job.unit.declared)
        return self.successor(
            job,
            rotate_access_key(user, old_key_id=job.ids[0], grace=job.grace),
            lambda new: {"aws_access_key_id": new.identifier, "aws_secret_access_key": new.secret},
            lambda new_id: revoke_access_key(user, new_id),
        )

    def finish(self, pending: Pending) -> list[CredentialEvidence]:
        user, key_id = str(pending.params["user"]), str(pending.params["key_id"])
        try:
            return [finish_rotation(user, key_id, not_before=pending.not_before)]
        except errors.NotFoundError:  # deleted by hand meanwhile: prove it is gone
            return [revoke_access_key(user, key_id, missing_ok=True)]


ACCESS_KEY = AccessKey()
