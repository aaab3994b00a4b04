"""AWS KMS keys as Sundown key services and signers (``aws-kms://`` URIs, Tink's conventions).

- ``aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID``: a key by ARN (what sidecars record);
- ``aws-kms://arn:aws:kms:REGION:ACCOUNT:alias/NAME`` or ``aws-kms://alias/NAME``: resolved to
  the key ARN once, when opened (DescribeKey); the service's :attr:`uri` is the key ARN URI, so
  a sidecar, a plan or a certificate never records an alias that may later point elsewhere.

KEK use: GenerateDataKey (AES_256) makes the DEK, Decrypt unwraps it. The artifact binding (the
envelope's associated data) goes into the KMS EncryptionContext, so a wrapped DEK moved to
another artifact does not unwrap. KMS rotation (EnableKeyRotation, RotateKeyOnDemand) is
transparent: Decrypt picks the backing key itself. Sundown's ``versions`` for a KMS key are
1 + the number of rotations KMS lists; all of them decrypt, none can be retired on its own.

Before every use (GenerateDataKey, Decrypt, Sign, GetPublicKey), DescribeKey must say
``Enabled``: a disabled key or one pending deletion is refused by Sundown itself (moto, unlike
AWS, still decrypts with a key pending deletion).

Destruction: DisableKey, then ScheduleKeyDeletion with a pending window (7-30 days, default 7).
The evidence states that deletion is pending until the date KMS returns; ``irrecoverable_after``
is that date (until then CancelKeyDeletion restores the key: ``sundown keys cancel-deletion``).
See docs/kms.md.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization

from connectors._aws import new_client
from connectors._kms import KmsSigner, PendingKeyDestruction, refused, translated
from sundown.errors import (
    BackendError,
    ConflictError,
    InputError,
    IntegrityError,
    KeyDestroyedError,
    NotFoundError,
    PermissionDeniedError,
    SundownError,
)
from sundown.keys import KeyInfo, WrappedKey

SCHEME = "aws-kms://"
DEFAULT_PENDING_DAYS = 7
SENTINEL_TAG = "sundown:destroy-sentinel"
BINDING_CONTEXT = "sundown:binding"  # EncryptionContext key: SHA-256 of the associated data
LIMITS = (
    "KMS keeps the key until the end of the pending window; CancelKeyDeletion restores it "
    "until then. Data keys unwrapped before destruction and held elsewhere are not reached."
)
_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10)
LONGEST_WINDOW = timedelta(days=30)  # ScheduleKeyDeletion's longest PendingWindowInDays
# A DeletionDate is "now + window", rounded by KMS: one day beyond the longest window is allowed.
_DATE_SLACK = timedelta(days=1)


class KmsKeyDestruction(PendingKeyDestruction):
    """KMS destruction evidence: the key is disabled and scheduled for deletion on
    ``pending_until`` (None once KMS reports it gone)."""


def pending_date_problem(date: object, now: datetime, longest: timedelta) -> str | None:
    """Why ``date``, the date a KMS reports a key pending deletion until, cannot be taken as the
    date it becomes irrecoverable (None: it can). A KMS answer is untrusted: a pending key with
    no date, a date already passed (the key is still restorable), or one beyond the service's
    longest window is refused."""
    if not isinstance(date, datetime) or date.tzinfo is None:
        return "no deletion date reported: when the key becomes irrecoverable is unknown"
    if date <= now:
        return (
            f"the deletion date {date.isoformat()} has passed, yet the key is still pending "
            "deletion: it can be restored until the key service deletes it"
        )
    if date > now + longest + _DATE_SLACK:
        return (
            f"the deletion date {date.isoformat()} is beyond the longest window the key service "
            f"sets ({longest.days} days from now): not taken"
        )
    return None


def multi_region(metadata: dict[str, Any]) -> str | None:
    """What makes a multi-region key unfit for cryptographic erase (None for a single-region
    key): its related multi-region keys in other regions share its key material."""
    if not metadata.get("MultiRegion"):
        return None
    config = metadata.get("MultiRegionConfiguration") or {}
    arns = [(config.get("PrimaryKey") or {}).get("Arn")]
    arns += [r.get("Arn") for r in config.get("ReplicaKeys") or [] if isinstance(r, dict)]
    related = [str(a)[:200] for a in dict.fromkeys(arns) if a and a != metadata.get("Arn")]
    more = f" and {len(related) - 20} more" if len(related) > 20 else ""
    names = ", ".join(related[:20]) + more
    return (
        f"a multi-region KMS key (MultiRegionKeyType {str(config.get('MultiRegionKeyType'))[:20]})"
        f"; its related multi-region keys ({names or 'not listed by KMS'}) hold the same key "
        "material and decrypt whatever it wrapped, so deleting this one erases nothing"
    )


def parse_uri(uri: str) -> tuple[str | None, str]:
    """(region or None, key id for the KMS API: key ARN, alias ARN or ``alias/NAME``)."""
    if not uri.startswith(SCHEME):
        raise InputError(f"not an AWS KMS key URI: {uri!r} (expected {SCHEME}arn:aws:kms:...)")
    rest = uri[len(SCHEME) :]
    if rest.startswith("alias/") and len(rest) > len("alias/"):
        return None, rest
    parts = rest.split(":", 5)
    if (
        len(parts) == 6
        and parts[0] == "arn"
        and parts[1].startswith("aws")
        and parts[2] == "kms"
        and parts[3]
        and parts[4]
        and (parts[5].startswith("key/") or parts[5].startswith("alias/"))
        and len(parts[5].split("/", 1)[1]) > 0
    ):
        return parts[3], rest
    raise InputError(
        f"bad AWS KMS key URI {uri!r}: expected {SCHEME}arn:aws:kms:REGION:ACCOUNT:key/ID, "
        f"{SCHEME}arn:aws:kms:REGION:ACCOUNT:alias/NAME or {SCHEME}alias/NAME"
    )


def _client(region: str | None, service: str = "kms") -> Any:
    config = _CONFIG.merge(Config(region_name=region)) if region else _CONFIG
    return new_client(service, config)


def _translate(exc: Exception, what: str) -> SundownError:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", ""))
        text = f"{what}: {code}: {message}"
        if code == "NotFoundException":
            return NotFoundError(text)
        if code in ("AccessDeniedException", "UnrecognizedClientException"):
            return PermissionDeniedError(text)
        if code in ("InvalidCiphertextException", "IncorrectKeyException"):
            return IntegrityError(text)
        if code in ("DisabledException", "KMSInvalidStateException"):
            return KeyDestroyedError(text)
        if code in ("AlreadyExistsException",):
            return ConflictError(text)
        if code in ("ValidationException", "InvalidParameterValue"):
            return InputError(text)
        return BackendError(text)
    return BackendError(f"{what}: {type(exc).__name__}: {exc}")


def _errors(what: str) -> AbstractContextManager[None]:
    return translated(what, (ClientError, BotoCoreError), _translate)


def _refuse_unusable(uri: str, metadata: dict[str, Any]) -> None:
    state = str(metadata.get("KeyState"))
    if state == "Enabled":
        return
    if state == "PendingDeletion":
        date = metadata.get("DeletionDate")
        when = date.isoformat() if isinstance(date, datetime) else "an unknown date"
        raise KeyDestroyedError(
            f"{uri}: the KMS key is pending deletion until {when} (KeyState PendingDeletion); "
            "Sundown does not use it"
        )
    if state == "Disabled":
        raise KeyDestroyedError(
            f"{uri}: the KMS key is disabled (KeyState Disabled); Sundown does not use it"
        )
    raise KeyDestroyedError(f"{uri}: the KMS key is not usable (KeyState {state})")


class AwsKmsKey:
    """One KMS key: a KEK (SYMMETRIC_DEFAULT) or, for signing, ECC_NIST_P256 SIGN_VERIFY."""

    def __init__(self, uri: str, *, check: bool = True, single_region: bool = False) -> None:
        self._region, key_id = parse_uri(uri)
        self._associated_data = b""
        self._gone = False
        try:
            with _errors(f"describe {uri}"):
                metadata = _client(self._region).describe_key(KeyId=key_id)["KeyMetadata"]
        except NotFoundError:
            if check or ":key/" not in key_id:
                raise
            # A key ARN KMS no longer knows, opened for destruction: after ScheduleKeyDeletion
            # this is how KMS answers once the window ended. ``verify_destroyed`` says "gone";
            # the ARN is the only name left (an alias would name nothing).
            self._gone = True
            self._arn = key_id
            self._id = key_id.rsplit("/", 1)[1]
            self._metadata: dict[str, Any] = {}
            return
        self._arn = str(metadata["Arn"])
        if ":key/" in key_id and key_id != self._arn:
            # The URI names a key ARN (account, region): KMS answered with another key (moto
            # resolves a key id in any account). Never act on a key the URI did not name.
            raise InputError(
                f"{uri}: KMS answered for key {self._arn}, another account or region than the "
                "URI names; Sundown acts only on the exact key ARN"
            )
        # The bare key id for the API calls: AWS takes the ARN everywhere, moto 5 does not for
        # DisableKey / ScheduleKeyDeletion / EnableKey (docs/known-gaps.md).
        self._id = str(metadata["KeyId"])
        self._region = self._arn.split(":")[3]
        self._metadata = metadata
        shared = multi_region(metadata) if single_region else None
        if shared is not None:
            # Before the state: a disabled or pending multi-region key is refused as well,
            # rather than taken as destroyed already.
            raise InputError(
                f"{self.uri} is {shared}. Sundown does not use a multi-region key as a KEK: "
                "name a single-region key"
            )
        if check:
            _refuse_unusable(self.uri, metadata)

    @property
    def uri(self) -> str:
        return SCHEME + self._arn

    @property
    def arn(self) -> str:
        return self._arn

    def bound_to(self, associated_data: bytes) -> AwsKmsKey:
        """The same key, wrapping and unwrapping with ``associated_data`` as the KMS
        EncryptionContext (the envelope calls this with the artifact binding)."""
        bound = object.__new__(AwsKmsKey)
        bound.__dict__.update(self.__dict__)
        bound._associated_data = associated_data
        return bound

    def _context(self) -> dict[str, str]:
        return {BINDING_CONTEXT: hashlib.sha256(self._associated_data).hexdigest()}

    def _kms(self) -> Any:
        return _client(self._region)

    def _usable(self, client: Any, what: str) -> dict[str, Any]:
        """DescribeKey now (never a cached state): refuses a disabled or pending key."""
        with _errors(f"{what} {self.uri}"):
            metadata: dict[str, Any] = client.describe_key(KeyId=self._arn)["KeyMetadata"]
        _refuse_unusable(self.uri, metadata)
        return metadata

    def _rotations(self, client: Any) -> int:
        try:
            pages = client.get_paginator("list_key_rotations").paginate(KeyId=self._id)
            return sum(len(page.get("Rotations", [])) for page in pages)
        except ClientError as exc:
            raise _translate(exc, f"list rotations of {self.uri}") from exc

    def info(self) -> KeyInfo:
        client = self._kms()
        metadata = self._usable(client, "describe")
        signing = metadata.get("KeyUsage") == "SIGN_VERIFY"
        latest = 1 if signing else 1 + self._rotations(client)
        return KeyInfo(
            uri=self.uri,
            kind="signing" if signing else "kek",
            algorithm="ecdsa-p256" if signing else "aws-kms-symmetric-default",
            latest_version=latest,
            min_decryption_version=1,
            versions=tuple(range(1, latest + 1)),
            # KMS never exports symmetric or private key material.
            exportable=False,
            allow_plaintext_backup=False,
        )

    def new_data_key(self) -> tuple[bytes, WrappedKey]:
        client = self._kms()
        self._usable(client, "wrap a data key with")
        with _errors(f"generate a data key with {self.uri}"):
            answer = client.generate_data_key(
                KeyId=self._arn, KeySpec="AES_256", EncryptionContext=self._context()
            )
        version = 1 + self._rotations(client)
        return bytes(answer["Plaintext"]), WrappedKey(
            key_uri=self.uri, key_version=version, ciphertext=bytes(answer["CiphertextBlob"])
        )

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        if wrapped.key_uri != self.uri:
            raise IntegrityError(f"wrapped key belongs to {wrapped.key_uri!r}, not {self.uri!r}")
        client = self._kms()
        self._usable(client, "unwrap a data key with")
        with _errors(f"unwrap a data key with {self.uri}"):
            answer = client.decrypt(
                KeyId=self._arn,
                CiphertextBlob=wrapped.ciphertext,
                EncryptionContext=self._context(),
            )
        if answer.get("KeyId") != self._arn:
            raise IntegrityError(f"{self.uri}: KMS decrypted the data key with another key")
        return bytes(answer["Plaintext"])

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey]:
        """KMS decrypts under every backing key of a rotated key: wrapped keys stay as they are
        (a ReEncrypt would need each artifact's EncryptionContext, which only sidecars hold)."""
        self._usable(self._kms(), "re-wrap with")
        for item in wrapped:
            if item.key_uri != self.uri:
                raise InputError(f"wrapped key belongs to {item.key_uri!r}, not {self.uri!r}")
        return list(wrapped)

    def rotate(self) -> int:
        client = self._kms()
        self._usable(client, "rotate")
        with _errors(f"rotate {self.uri}"):
            client.enable_key_rotation(KeyId=self._id)
            client.rotate_key_on_demand(KeyId=self._id)
        return 1 + self._rotations(client)

    def retire_versions_below(self, version: int) -> None:
        from sundown.errors import UnsupportedError

        raise UnsupportedError(
            f"{self.uri}: AWS KMS does not delete the backing keys of a rotated key; destroy "
            "the whole key instead"
        )

    # -- destruction

    def destroy(self, pending_days: int = DEFAULT_PENDING_DAYS) -> KmsKeyDestruction:
        """DisableKey, then ScheduleKeyDeletion (``pending_days``, 7-30). Before disabling, a
        sentinel is encrypted and kept as a tag on the key; anything unexpected stops before."""
        if not 7 <= pending_days <= 30:
            raise InputError(f"pending window must be 7-30 days, not {pending_days}")
        client = self._kms()
        versions: tuple[int, ...] = ()
        with _errors(f"destroy {self.uri}"):
            metadata = client.describe_key(KeyId=self._arn)["KeyMetadata"]
            state = str(metadata["KeyState"])
            shared = multi_region(metadata)
            if shared is not None and state in ("Enabled", "Disabled"):
                raise ConflictError(
                    f"{self.uri} is {shared}: Sundown does not destroy it (nothing was disabled "
                    "or scheduled); retire the data under a single-region key"
                )
            checks: dict[str, str] = {"key state before": state}
            if state == "Enabled" and metadata.get("KeyUsage") == "ENCRYPT_DECRYPT":
                plaintext = secrets.token_bytes(16)
                blob = client.encrypt(
                    KeyId=self._arn,
                    Plaintext=plaintext,
                    EncryptionContext={BINDING_CONTEXT: "destroy-sentinel"},
                )["CiphertextBlob"]
                if (
                    client.decrypt(
                        KeyId=self._arn,
                        CiphertextBlob=blob,
                        EncryptionContext={BINDING_CONTEXT: "destroy-sentinel"},
                    )["Plaintext"]
                    != plaintext
                ):
                    raise IntegrityError(f"{self.uri}: sentinel round trip failed; not destroying")
                client.tag_resource(
                    KeyId=self._arn,
                    Tags=[{"TagKey": SENTINEL_TAG, "TagValue": base64.b64encode(blob).decode()}],
                )
                checks["sentinel before"] = "encrypted and decrypted; kept as a key tag"
            if state in ("Enabled", "Disabled"):
                if metadata.get("KeyUsage") == "ENCRYPT_DECRYPT":
                    # Deletion takes every backing key: Sundown's versions 1..1+rotations.
                    versions = tuple(range(1, 2 + self._rotations(client)))
                    checks["versions before"] = f"{len(versions)} (1 + rotations listed)"
                client.disable_key(KeyId=self._id)
                client.schedule_key_deletion(KeyId=self._id, PendingWindowInDays=pending_days)
                checks["scheduled"] = f"DisableKey; ScheduleKeyDeletion {pending_days} days"
            elif state != "PendingDeletion":
                raise ConflictError(f"{self.uri}: cannot destroy a key in state {state}")
        evidence = self.verify_destroyed()
        return KmsKeyDestruction(
            **{
                **evidence.__dict__,
                "checks": {**checks, **evidence.checks},
                "versions_destroyed": versions or evidence.versions_destroyed,
            }
        )

    def destroy_after(self, pending_days: int) -> KmsKeyDestruction:
        return self.destroy(pending_days)

    def grant_ids(self) -> list[str]:
        if self._gone:
            return []  # a deleted key has no grants left
        with _errors(f"list the grants of {self.uri}"):
            pages = self._kms().get_paginator("list_grants").paginate(KeyId=self._id)
            return [str(g["GrantId"]) for page in pages for g in page.get("Grants", [])]

    def revoke_grants(self, ids: Sequence[str]) -> dict[str, str]:
        """RevokeGrant each (the key administrator's call; RetireGrant is the grantee's), then
        ListGrants: none of them may still be listed."""
        checks: dict[str, str] = {}
        client = self._kms()
        present = set(self.grant_ids())
        for grant in ids:
            if grant not in present:
                checks[f"grant {grant}"] = "absent before revocation (revoked already)"
                continue
            with _errors(f"revoke grant {grant} on {self.uri}"):
                client.revoke_grant(KeyId=self._id, GrantId=grant)
            checks[f"grant {grant}"] = "RevokeGrant"
        left = set(ids) & set(self.grant_ids())
        if left:
            raise IntegrityError(
                f"{self.uri}: grants {sorted(left)} are still listed after RevokeGrant; the key "
                "was not destroyed"
            )
        for grant in ids:
            checks[f"grant {grant}"] += "; ListGrants no longer lists it"
        return checks

    def verify_destroyed(self) -> KmsKeyDestruction:
        """Proof from KMS: the key reports PendingDeletion (or is gone), and the sentinel no
        longer decrypts through Sundown. What KMS itself answers to a raw Decrypt is recorded."""
        client = self._kms()
        checks: dict[str, str] = {}
        ok = True
        pending: datetime | None = None
        state = "gone"
        tags: list[dict[str, str]] = []
        kek = True
        date_problem: str | None = None
        now = datetime.now(UTC)
        try:
            metadata = client.describe_key(KeyId=self._arn)["KeyMetadata"]
            state = str(metadata["KeyState"])
            kek = metadata.get("KeyUsage") == "ENCRYPT_DECRYPT"
            if isinstance(metadata.get("DeletionDate"), datetime):
                pending = metadata["DeletionDate"]
            if state == "PendingDeletion":
                date_problem = pending_date_problem(
                    metadata.get("DeletionDate"), now, LONGEST_WINDOW
                )
            shared = multi_region(metadata)
            if shared is not None:
                checks["multi-region"] = f"FAILED: {shared}"
                ok = False
            tags = client.list_resource_tags(KeyId=self._id).get("Tags", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                raise _translate(exc, f"verify destruction of {self.uri}") from exc
        checks["key state"] = state + (f" until {pending.isoformat()}" if pending else "")
        if state not in ("PendingDeletion", "gone"):
            ok = False
        if date_problem is not None:
            checks["deletion date"] = f"FAILED: {date_problem}"
        sentinel = next((t["TagValue"] for t in tags if t["TagKey"] == SENTINEL_TAG), None)
        if sentinel is not None:
            wrapped = WrappedKey(self.uri, 1, base64.b64decode(sentinel))
            checks["sentinel through Sundown"] = refused(
                lambda: self.bound_to(b"").unwrap_sentinel(wrapped), "still decrypts"
            )
            ok = ok and checks["sentinel through Sundown"].startswith("refused")
            try:
                client.decrypt(
                    KeyId=self._arn,
                    CiphertextBlob=wrapped.ciphertext,
                    EncryptionContext={BINDING_CONTEXT: "destroy-sentinel"},
                )
                checks["raw KMS decrypt"] = "still decrypts (AWS refuses; moto does not)"
            except ClientError as exc:
                checks["raw KMS decrypt"] = f"refused ({exc.response['Error'].get('Code')})"
        elif state != "gone" and kek:
            # No proof that data keys stop unwrapping (the tag was removed, or the key was
            # already disabled when Sundown destroyed it): not verified.
            checks["sentinel through Sundown"] = "FAILED: no sentinel recorded on the key"
            ok = False
        elif state != "gone":
            checks["sign through Sundown"] = refused(lambda: AwsKmsSigner(self.uri), "still signs")
            ok = ok and checks["sign through Sundown"].startswith("refused")
        return KmsKeyDestruction.now(
            self.uri,
            versions=(1,),
            method="AWS KMS DisableKey, then ScheduleKeyDeletion",
            pending=pending,
            pending_what="deletion",
            checks=checks,
            verified=ok and date_problem is None,
            limits=LIMITS,
            key_state=state,
            overdue=ok and pending is not None and date_problem is not None and pending <= now,
        )

    def unwrap_sentinel(self, wrapped: WrappedKey) -> bytes:
        client = self._kms()
        self._usable(client, "unwrap the sentinel with")
        with _errors(f"unwrap the sentinel with {self.uri}"):
            return bytes(
                client.decrypt(
                    KeyId=self._arn,
                    CiphertextBlob=wrapped.ciphertext,
                    EncryptionContext={BINDING_CONTEXT: "destroy-sentinel"},
                )["Plaintext"]
            )

    def cancel_deletion(self) -> KeyInfo:
        """CancelKeyDeletion, then EnableKey (within the pending window)."""
        client = self._kms()
        with _errors(f"cancel deletion of {self.uri}"):
            client.cancel_key_deletion(KeyId=self._id)
            client.enable_key(KeyId=self._id)
        return self.info()


class AwsKmsSigner(KmsSigner):
    """ECDSA_SHA_256 over a SHA-256 digest (MessageType DIGEST); KMS returns DER signatures."""

    def __init__(self, uri: str) -> None:
        self._key = AwsKmsKey(uri)
        if self._key._metadata.get("KeyUsage") != "SIGN_VERIFY":
            raise InputError(f"{self._key.uri} is not a signing key (KeyUsage SIGN_VERIFY)")

    @property
    def uri(self) -> str:
        return self._key.uri

    def _public_key(self) -> Any:
        client = self._key._kms()
        self._key._usable(client, "read the public key of")
        with _errors(f"read the public key of {self.uri}"):
            der = client.get_public_key(KeyId=self._key.arn)["PublicKey"]
        return serialization.load_der_public_key(bytes(der))

    def sign(self, message: bytes) -> bytes:
        client = self._key._kms()
        self._key._usable(client, "sign with")
        with _errors(f"sign with {self.uri}"):
            answer = client.sign(
                KeyId=self._key.arn,
                Message=hashlib.sha256(message).digest(),
                MessageType="DIGEST",
                SigningAlgorithm="ECDSA_SHA_256",
            )
        return bytes(answer["Signature"])


def open_key_service(uri: str) -> AwsKmsKey:
    """The key as a KEK: refused (InputError) when it is a multi-region key, whose replicas in
    other regions would still unwrap every data key after this key is destroyed."""
    return AwsKmsKey(uri, single_region=True)


def key_for_destruction(uri: str) -> AwsKmsKey:
    return AwsKmsKey(uri, check=False)


def open_signer(uri: str) -> AwsKmsSigner:
    return AwsKmsSigner(uri)


def create_key(uri: str, *, signing: bool = False) -> KeyInfo:
    """``aws-kms://alias/NAME`` (or an alias ARN): a new key with that alias, in the region of
    the SDK's usual chain (or the ARN's); account from STS GetCallerIdentity."""
    region, key_id = parse_uri(uri)
    if ":key/" in key_id:
        raise InputError(f"{uri}: KMS chooses key ids; create with {SCHEME}alias/NAME")
    alias = key_id if key_id.startswith("alias/") else key_id.split(":", 5)[5]
    if alias.startswith("alias/aws/"):
        raise InputError(f"{uri}: alias/aws/ is reserved for AWS managed keys")
    client = _client(region)
    with _errors(f"create {uri}"):
        account = _client(region, "sts").get_caller_identity()["Account"]
        if region and key_id.startswith("arn:") and key_id.split(":")[4] != account:
            raise InputError(f"{uri}: account {key_id.split(':')[4]} is not the caller's")
        try:
            client.describe_key(KeyId=alias)
            raise ConflictError(f"{uri}: the alias already exists")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                raise
        spec = (
            {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
            if signing
            else {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}
        )
        metadata = client.create_key(Description=f"sundown {alias}", **spec)["KeyMetadata"]
        client.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
    return AwsKmsKey(SCHEME + str(metadata["Arn"])).info()
