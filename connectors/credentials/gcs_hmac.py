"""GCS HMAC keys (the S3-compatible XML API's credentials): rotate and revoke.

Rotation: create a new key for the service account, deactivate the old one, delete it after a
grace period (GCS deletes only inactive keys). Revocation: deactivate, then delete. The new
secret is returned once, as a :class:`pydantic.SecretStr`; evidence names keys by access id.

The client is built per operation from google-cloud-storage's standard configuration
(Application Default Credentials, ``GOOGLE_CLOUD_PROJECT``, ``STORAGE_EMULATOR_HOST``); the
library retries idempotent calls with bounded backoff. Neither GCS emulator implements HMAC keys
(docs/known-gaps.md): this module is tested against real GCS when credentials are provided.

The ``gcs_hmac_key`` credential kind (:data:`HMAC_KEY`, the access id): rotation makes a new key
for the declared service account, deactivates the old one at once and deletes it after the grace
period; ``{access_id, secret}`` is delivered.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import storage
from google.cloud.storage.hmac_key import HMACKeyMetadata
from pydantic import SecretStr

from connectors.credentials import _redact
from sundown import errors
from sundown.credentials import (
    Checks,
    KindBase,
    NewSecret,
    NotRotated,
    Pending,
    Rotation,
    key_to_replace,
    now,
)

if TYPE_CHECKING:
    from sundown.credentials import CredentialEvidence, Rotated, RotationJob, Unit
    from sundown.spec.model import CredentialRef, SystemSpec

_redact.install()

KIND = "gcs-hmac-key"
_EMAIL = re.compile(r"^[^@\s/]+@[^@\s/]+$")
_ACCESS_ID = re.compile(r"^[A-Za-z0-9]{8,128}$")


def _client(project: str | None) -> storage.Client:
    try:
        client = storage.Client(project=project or os.environ.get("GOOGLE_CLOUD_PROJECT"))
    except DefaultCredentialsError:
        raise errors.PermissionDeniedError(
            "no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS or run "
            "'gcloud auth application-default login'"
        ) from None
    if not client.project or client.project == "<none>":
        raise errors.InputError(
            "GCS HMAC keys belong to a project: set GOOGLE_CLOUD_PROJECT (none was found)"
        )
    return client


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except gexc.NotFound as exc:
        raise errors.NotFoundError(f"{what}: not found ({exc.message[:160]})") from None
    except (gexc.Forbidden, gexc.Unauthorized) as exc:
        raise errors.PermissionDeniedError(
            f"{what}: GCS refused the credentials ({exc.code})"
        ) from None
    except (gexc.MethodNotAllowed, gexc.MethodNotImplemented) as exc:
        raise errors.UnsupportedError(
            f"{what}: the endpoint has no HMAC key API ({exc.code})"
        ) from None
    except gexc.PreconditionFailed:
        raise errors.ConflictError(f"{what}: the key changed meanwhile; run again") from None
    except (gexc.TooManyRequests, gexc.ServerError) as exc:
        raise errors.TransientError(f"{what}: GCS failed after retries ({exc.code})") from None
    except gexc.GoogleAPICallError as exc:
        raise errors.BackendError(f"{what}: GCS error {exc.code}: {exc.message[:160]}") from None
    except (ConnectionError, OSError) as exc:
        raise errors.TransientError(f"{what}: cannot reach GCS ({type(exc).__name__})") from None


def _check(service_account: str | None = None, access_id: str | None = None) -> None:
    if service_account is not None and not _EMAIL.match(service_account):
        raise errors.InputError(f"{service_account!r} is not a service account e-mail")
    if access_id is not None and not _ACCESS_ID.match(access_id):
        raise errors.InputError(f"{access_id!r} is not an HMAC access id")


def _keys(client: storage.Client, service_account: str) -> dict[str, str]:
    """access id -> state, for the service account (deleted keys left out)."""
    keys = client.list_hmac_keys(service_account_email=service_account, show_deleted_keys=False)
    return {str(k.access_id): str(k.state) for k in keys}


def _state(client: storage.Client, access_id: str) -> str:
    try:
        return str(client.get_hmac_key_metadata(access_id).state)
    except gexc.NotFound:
        return "absent"


def _set_state(client: storage.Client, access_id: str, state: str) -> HMACKeyMetadata:
    key = client.get_hmac_key_metadata(access_id)
    if key.state != state:
        key.state = state
        key.update()
    return key


def _delete_checks(client: storage.Client, access_id: str, checks: Checks) -> None:
    state = _state(client, access_id)
    checks.expect("key state after", state in ("DELETED", "absent"), state)


def rotate_hmac_key(
    service_account: str,
    *,
    old_access_id: str | None = None,
    grace: timedelta = timedelta(days=7),
    project: str | None = None,
) -> Rotation:
    """Create a new HMAC key for ``service_account`` and deactivate the old one (its only active
    key, or ``old_access_id``); delete the old key now when ``grace`` is zero, otherwise call
    :func:`finish_rotation` after ``delete_old_after``."""
    _check(service_account, old_access_id)
    if grace < timedelta(0):
        raise errors.InputError("grace must not be negative")
    what = f"rotate HMAC key of {service_account}"
    client = _client(project)
    with _errors(what):
        keys = _keys(client, service_account)
        old_access_id = key_to_replace(
            what, keys, old_access_id, active="ACTIVE", noun="HMAC key", owner="account"
        )
        metadata, secret = client.create_hmac_key(service_account_email=service_account)
        new_id = str(metadata.access_id)
        _set_state(client, old_access_id, HMACKeyMetadata.INACTIVE_STATE)
        delete_after: datetime | None = now() + grace
        if grace == timedelta(0):
            client.get_hmac_key_metadata(old_access_id).delete()
            delete_after = None
        checks = Checks()
        checks.expect("new key active", _state(client, new_id) == "ACTIVE", _state(client, new_id))
        if delete_after is None:
            _delete_checks(client, old_access_id, checks)
        else:
            state = _state(client, old_access_id)
            checks.expect("old key inactive", state == "INACTIVE", state)
    details: dict[str, Any] = {
        "service_account": service_account,
        "old_key": old_access_id,
        "new_key": new_id,
        "old_key_state": "deleted" if delete_after is None else "inactive",
    }
    if delete_after is not None:
        details["delete_old_after"] = delete_after.isoformat()
    evidence = checks.evidence(
        KIND,
        f"{service_account}/{old_access_id}",
        "rotated",
        {k: str(v) for k, v in details.items()},
    )
    return Rotation(evidence, NewSecret(new_id, SecretStr(str(secret))), delete_after)


def finish_rotation(
    access_id: str, *, not_before: datetime, project: str | None = None
) -> CredentialEvidence:
    """Delete the old key of a rotation after its grace period; refuses a key that is active."""
    _check(access_id=access_id)
    what = f"delete rotated HMAC key {access_id}"
    if now() < not_before:
        raise errors.InputError(f"{what}: the grace period runs until {not_before.isoformat()}")
    client = _client(project)
    with _errors(what):
        key = client.get_hmac_key_metadata(access_id)
        if key.state != HMACKeyMetadata.INACTIVE_STATE:
            raise errors.ConflictError(
                f"{what}: the key is {key.state}, not INACTIVE; refusing to delete"
            )
        key.delete()
        checks = Checks()
        _delete_checks(client, access_id, checks)
    return checks.evidence(
        KIND, access_id, "deleted after grace period", {"grace_ended": not_before.isoformat()}
    )


def revoke_hmac_key(
    access_id: str, *, missing_ok: bool = False, project: str | None = None
) -> CredentialEvidence:
    """Deactivate, then delete, one HMAC key. Proof: its state reads DELETED (or it is gone)."""
    _check(access_id=access_id)
    what = f"revoke HMAC key {access_id}"
    client = _client(project)
    with _errors(what):
        before = _state(client, access_id)
        if before in ("absent", "DELETED") and not missing_ok:
            raise errors.NotFoundError(f"{what}: no such key (or already deleted)")
        if before not in ("absent", "DELETED"):
            _set_state(client, access_id, HMACKeyMetadata.INACTIVE_STATE).delete()
        checks = Checks()
        _delete_checks(client, access_id, checks)
    return checks.evidence(
        KIND,
        access_id,
        "revoked" if before not in ("absent", "DELETED") else "already absent",
        {"state_before": before},
    )


def hmac_key_is_active(access_id: str, *, project: str | None = None) -> bool:
    """Whether the key's state is ACTIVE (requests signed with it are accepted); no change."""
    _check(access_id=access_id)
    client = _client(project)
    with _errors(f"look up HMAC key {access_id}"):
        return _state(client, access_id) == "ACTIVE"


class HmacKey(KindBase):
    """``gcs_hmac_key``: the key's access id; rotated for its declared service account."""

    kind = "gcs_hmac_key"
    form = "an HMAC access id"
    delivery_field = "access_id"
    revoke_one = staticmethod(revoke_hmac_key)
    is_live = staticmethod(hmac_key_is_active)

    def _parts(self, ident: str) -> tuple[str, ...]:
        _check(access_id=ident)
        return (ident,)

    def units(self, spec: SystemSpec) -> list[str]:
        return [h.access_id for h in spec.credentials.gcs_hmac_keys]

    def rotate(self, job: RotationJob) -> Rotated | NotRotated:
        keys = job.spec.credentials.gcs_hmac_keys
        entry = next(h for h in keys if h.access_id == job.unit.declared)
        if entry.service_account is None:
            return NotRotated(
                "a new HMAC key is created for a service account: declare service_account"
            )
        return self.successor(
            job,
            rotate_hmac_key(entry.service_account, old_access_id=job.ids[0], grace=job.grace),
            lambda new: {"access_id": new.identifier, "secret": new.secret},
            revoke_hmac_key,
        )

    def replaced(self, unit: Unit, old: str, not_before: datetime) -> Pending:
        return self.pending(unit, old, not_before, access_id=old)

    def finish(self, pending: Pending) -> list[CredentialEvidence]:
        access_id = str(pending.params["access_id"])
        try:
            return [finish_rotation(access_id, not_before=pending.not_before)]
        except errors.NotFoundError:
            return [revoke_hmac_key(access_id, missing_ok=True)]

    def references(self, declared: str, ids: Sequence[str]) -> list[CredentialRef]:
        from sundown.spec.model import CredentialRef

        return [CredentialRef(self.kind, i) for i in ids]


HMAC_KEY = HmacKey()
