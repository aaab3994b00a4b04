"""Google Cloud KMS keys as Sundown key services and signers (``gcp-kms://`` URIs, Tink's form).

``gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K`` names one CryptoKey. The client is
google-cloud-kms over its REST transport, made per operation from Application Default
Credentials (never cached); ``SUNDOWN_GCP_KMS_ENDPOINT`` redirects it (tests: a local server that
answers as the REST API does; no emulator exists).

KEK use: a fresh 32-byte DEK is made locally and wrapped with ``cryptoKeys.encrypt`` under the
primary version, with SHA-256 of the artifact binding as ``additionalAuthenticatedData``; a DEK
moved to another artifact does not unwrap (KMS refuses: ``IntegrityError``). Rotation is the
KMS's own: a new CryptoKeyVersion made primary; older versions still decrypt (KMS picks the
version from the ciphertext).

Before every use, Sundown reads the key and the version concerned and refuses unless the
version is ``ENABLED`` (``KeyDestroyedError`` naming the state and, when scheduled, the date).

Destruction: ``cryptoKeyVersions.destroy`` on every version. Cloud KMS destroys the material
after the key's ``destroyScheduledDuration`` (default 30 days); until then ``restore`` brings a
version back, so the evidence says deletion is pending until the latest ``destroyTime``, which is
``irrecoverable_after``. See docs/kms.md.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors import _kms
from sundown import errors
from sundown.keys import KeyInfo, WrappedKey

_kms.require_sdk("google.cloud.kms", "google.api_core", "google_crc32c")  # the gcp extra

SCHEME = "gcp-kms://"
ENDPOINT_ENV = "SUNDOWN_GCP_KMS_ENDPOINT"
SENTINEL_AAD = b"sundown:destroy-sentinel"
LIMITS = (
    "Cloud KMS keeps each version's material until its destroyTime; RestoreCryptoKeyVersion "
    "brings it back until then. The CryptoKey resource and its name stay (GCP never deletes "
    "them). Data keys unwrapped before destruction and held elsewhere are not reached."
)
_URI = re.compile(
    r"projects/(?P<project>[a-z0-9][a-z0-9.:-]{0,62})/locations/(?P<location>[a-z0-9-]{1,63})"
    r"/keyRings/(?P<ring>[A-Za-z0-9_-]{1,63})/cryptoKeys/(?P<key>[A-Za-z0-9_-]{1,63})"
)
_LIVE = "ENABLED"
_DECRYPT = "unwrap"  # what every Decrypt's error context starts with
_GONE_STATES = ("DESTROY_SCHEDULED", "DESTROYED")
# The longest destroyScheduledDuration Cloud KMS allows (24 hours to 120 days), and one day of
# slack: a destroyTime further away is not one Cloud KMS sets.
LONGEST_WINDOW = timedelta(days=120)
_DATE_SLACK = timedelta(days=1)


class GcpKmsKeyDestruction(_kms.PendingKeyDestruction):
    """Every version scheduled for destruction (or destroyed); ``pending_until`` is the latest
    ``destroyTime`` (None once every version is DESTROYED)."""

    PENDING = "destruction scheduled; pending until {date}"
    GONE = "every key version destroyed by Cloud KMS"


def destroy_time_problem(when: datetime | None, now: datetime) -> str | None:
    """Why a DESTROY_SCHEDULED version's ``destroyTime`` cannot be taken as the date it becomes
    irrecoverable (None: it can): absent, already passed (still restorable), or beyond the
    longest window Cloud KMS sets."""
    if when is None:
        return "DESTROY_SCHEDULED without a destroyTime: when it becomes irrecoverable is unknown"
    if when <= now:
        return (
            f"destroyTime {when.isoformat()} has passed, yet the version is still "
            "DESTROY_SCHEDULED: it can be restored until Cloud KMS destroys it"
        )
    if when > now + LONGEST_WINDOW + _DATE_SLACK:
        return (
            f"destroyTime {when.isoformat()} is beyond the longest window Cloud KMS sets "
            f"({LONGEST_WINDOW.days} days from now): not taken"
        )
    return None


def parse_uri(uri: str) -> str:
    """The CryptoKey resource name (``projects/P/locations/L/keyRings/R/cryptoKeys/K``)."""
    if not uri.startswith(SCHEME):
        raise errors.InputError(f"not a Cloud KMS key URI: {uri!r} (expected {SCHEME}projects/...)")
    name = uri[len(SCHEME) :]
    if _URI.fullmatch(name) is None:
        if "/cryptoKeyVersions/" in name:
            problem = "names a key version; name the key (Sundown picks versions itself)"
        elif "/cryptoKeys/" not in name:
            problem = "names no crypto key"
        else:
            problem = "has a malformed project, location, key ring or key name"
        raise errors.InputError(
            f"bad Cloud KMS key URI {uri!r}: it {problem} "
            f"(expected {SCHEME}projects/P/locations/L/keyRings/R/cryptoKeys/K)"
        )
    return name


def _client() -> Any:
    from google.api_core.client_options import ClientOptions

    # Imported by name: google-cloud-kms's py.typed would make mypy treat the whole
    # ``google.cloud`` namespace as typed, and the untyped google-cloud-storage as missing.
    kms = importlib.import_module("google.cloud.kms")

    # Private Service Connect endpoints are under googleapis.com too.
    endpoint = _kms.endpoint_override(ENDPOINT_ENV, (".googleapis.com",))
    options = ClientOptions(api_endpoint=endpoint) if endpoint else None
    return kms.KeyManagementServiceClient(transport="rest", client_options=options)


def _status(exc: Exception) -> str:
    """The google.rpc status name of an API error (FAILED_PRECONDITION, ...), if known."""
    response = getattr(exc, "response", None)
    try:
        return str(response.json()["error"]["status"])  # type: ignore[union-attr]
    except Exception:
        code = getattr(exc, "grpc_status_code", None)
        return str(getattr(code, "name", "") or "")


def _translate(exc: Exception, what: str) -> errors.SundownError:
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import GoogleAuthError

    if isinstance(exc, GoogleAuthError):  # never its text: it may quote a credential
        return errors.PermissionDeniedError(f"{what}: credentials: {type(exc).__name__}")

    message = getattr(exc, "message", None) or type(exc).__name__
    status = _status(exc)
    text = f"{what}: {status or type(exc).__name__}: {message}"
    if isinstance(exc, gexc.NotFound):
        return errors.NotFoundError(text)
    if isinstance(exc, gexc.Unauthenticated | gexc.PermissionDenied | gexc.Forbidden):
        return errors.PermissionDeniedError(text)
    if isinstance(exc, gexc.AlreadyExists | gexc.Conflict):
        return errors.ConflictError(text)
    if status == "FAILED_PRECONDITION":
        return errors.KeyDestroyedError(text)
    if status == "INVALID_ARGUMENT" and what.startswith(_DECRYPT):
        # Sundown's own Decrypt request is well formed: what KMS finds invalid is the
        # ciphertext or its AAD ("Decryption failed: the ciphertext is invalid.").
        return errors.IntegrityError(text)
    if isinstance(exc, gexc.InvalidArgument | gexc.BadRequest):
        return errors.InputError(text)
    return errors.BackendError(text)


def _errors(what: str) -> AbstractContextManager[None]:
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    return _kms.translated(what, (GoogleAPIError, GoogleAuthError), _translate)


def _state_name(version: Any) -> str:
    return str(getattr(version.state, "name", version.state))


def _when(value: Any) -> datetime | None:
    if value is None or not hasattr(value, "timestamp"):
        return None
    when = datetime.fromtimestamp(value.timestamp(), UTC)
    return None if when.year <= 1970 else when


def _number(version_name: str) -> int:
    return int(version_name.rsplit("/", 1)[1])


def _refuse_unusable(uri: str, version: Any) -> None:
    state = _state_name(version)
    if state == _LIVE:
        return
    number = _number(version.name)
    if state == "DESTROY_SCHEDULED":
        when = _when(version.destroy_time)
        raise errors.KeyDestroyedError(
            f"{uri}: version {number} is pending destruction until "
            f"{when.isoformat() if when else 'an unknown date'} (state DESTROY_SCHEDULED); "
            "Sundown does not use it"
        )
    if state == "DISABLED":
        raise errors.KeyDestroyedError(
            f"{uri}: version {number} is disabled (state DISABLED); Sundown does not use it"
        )
    raise errors.KeyDestroyedError(f"{uri}: version {number} is not usable (state {state})")


def _crc(data: bytes) -> int:
    import google_crc32c

    return int(google_crc32c.value(data))


def _checksummed(name: str, field: str, data: bytes, aad: bytes) -> dict[str, Any]:
    """A request on key ``name`` carrying ``data`` as ``field`` and the associated data, each
    with its CRC32C (``<field>_crc32c``) for Cloud KMS to verify."""
    return {
        "name": name,
        field: data,
        f"{field}_crc32c": _crc(data),
        "additional_authenticated_data": aad,
        "additional_authenticated_data_crc32c": _crc(aad),
    }


def _encrypt(client: Any, name: str, plaintext: bytes, aad: bytes, what: str) -> tuple[str, bytes]:
    """Encrypt with CRC32C both ways (Cloud KMS's documented integrity check): KMS verifies
    what it received, Sundown what it got back. Returns (version name, ciphertext)."""
    with _errors(what):
        answer = client.encrypt(request=_checksummed(name, "plaintext", plaintext, aad))
    ciphertext = bytes(answer.ciphertext)
    if (
        not answer.verified_plaintext_crc32c
        or not answer.verified_additional_authenticated_data_crc32c
        or answer.ciphertext_crc32c != _crc(ciphertext)
    ):
        raise errors.BackendError(
            f"{what}: the request or its answer was corrupted in transit (CRC32C)"
        )
    if not answer.name.startswith(name + "/cryptoKeyVersions/"):
        raise errors.IntegrityError(f"{what}: Cloud KMS encrypted with another key")
    return str(answer.name), ciphertext


def _decrypt(client: Any, name: str, ciphertext: bytes, aad: bytes, what: str) -> bytes:
    """Decrypt with CRC32C both ways (see :func:`_encrypt`)."""
    with _errors(what):
        answer = client.decrypt(request=_checksummed(name, "ciphertext", ciphertext, aad))
    plaintext = bytes(answer.plaintext)
    if answer.plaintext_crc32c != _crc(plaintext):
        raise errors.BackendError(f"{what}: the answer was corrupted in transit (CRC32C)")
    return plaintext


def _probe(call: Callable[[], object]) -> str:
    """What KMS answers to a raw call on a destroyed key: refused because the key version is
    not enabled (FAILED_PRECONDITION) or gone, or anything else (not a proof)."""
    try:
        call()
    except (errors.KeyDestroyedError, errors.NotFoundError) as exc:
        return f"refused ({type(exc).__name__})"
    except errors.SundownError as exc:
        return f"FAILED: unexpected answer ({type(exc).__name__})"
    return "FAILED: still answers"


class GcpKmsKey:
    """One CryptoKey: ENCRYPT_DECRYPT (GOOGLE_SYMMETRIC_ENCRYPTION) or, for signing,
    ASYMMETRIC_SIGN EC_SIGN_P256_SHA256."""

    def __init__(self, uri: str, *, check: bool = True) -> None:
        self._name = parse_uri(uri)
        with _errors(f"read {uri}"):
            key = _client().get_crypto_key(name=self._name)
        self._purpose = str(getattr(key.purpose, "name", key.purpose))
        self._associated_data = b""
        if check:
            self._primary(key)

    @property
    def uri(self) -> str:
        return SCHEME + self._name

    @property
    def name(self) -> str:
        return self._name

    @property
    def signing(self) -> bool:
        return self._purpose == "ASYMMETRIC_SIGN"

    def bound_to(self, associated_data: bytes) -> GcpKmsKey:
        """The same key, wrapping and unwrapping with SHA-256(``associated_data``) as the KMS
        additional authenticated data (the envelope calls this with the artifact binding)."""
        bound = object.__new__(GcpKmsKey)
        bound.__dict__.update(self.__dict__)
        bound._associated_data = associated_data
        return bound

    def _aad(self) -> bytes:
        return hashlib.sha256(self._associated_data).digest()

    def _versions(self, client: Any) -> list[Any]:
        with _errors(f"list the versions of {self.uri}"):
            return list(client.list_crypto_key_versions(parent=self._name))

    def _primary(self, key: Any, client: Any = None) -> Any:
        """The version new data keys (or signatures) are made with, refused unless ENABLED."""
        if not self.signing:
            if not key.primary.name:
                raise errors.KeyDestroyedError(f"{self.uri}: the key has no primary version")
            _refuse_unusable(self.uri, key.primary)
            return key.primary
        versions = self._versions(client or _client())
        if not versions:
            raise errors.KeyDestroyedError(f"{self.uri}: the key has no versions")
        latest = max(versions, key=lambda v: _number(v.name))
        _refuse_unusable(self.uri, latest)
        return latest

    def _usable(self, client: Any, what: str) -> Any:
        """Read the key now (never a cached state); its primary version must be ENABLED."""
        with _errors(f"{what} {self.uri}"):
            key = client.get_crypto_key(name=self._name)
        return self._primary(key, client)

    def info(self) -> KeyInfo:
        client = _client()
        primary = self._usable(client, "read")
        live = tuple(
            sorted(_number(v.name) for v in self._versions(client) if _state_name(v) == _LIVE)
        )
        return KeyInfo(
            uri=self.uri,
            kind="signing" if self.signing else "kek",
            algorithm="ecdsa-p256" if self.signing else "gcp-kms-google-symmetric-encryption",
            latest_version=_number(primary.name),
            min_decryption_version=live[0] if live else _number(primary.name),
            versions=live,
            exportable=False,  # Cloud KMS never exports key material
            allow_plaintext_backup=False,
        )

    def new_data_key(self) -> tuple[bytes, WrappedKey]:
        if self.signing:
            raise errors.InputError(f"{self.uri} is a signing key, not a key-encryption key")
        client = _client()
        self._usable(client, "wrap a data key with")
        dek = secrets.token_bytes(32)
        version, ciphertext = _encrypt(
            client, self._name, dek, self._aad(), f"wrap a data key with {self.uri}"
        )
        return dek, WrappedKey(
            key_uri=self.uri, key_version=_number(version), ciphertext=ciphertext
        )

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        if wrapped.key_uri != self.uri:
            raise errors.IntegrityError(
                f"wrapped key belongs to {wrapped.key_uri!r}, not {self.uri!r}"
            )
        client = _client()
        self._usable(client, "unwrap a data key with")
        # The version is chosen by KMS from the ciphertext; the recorded one must be usable too
        # (a sidecar is untrusted: KMS's own refusal still applies to the real version).
        with _errors(f"unwrap a data key with {self.uri}"):
            version = client.get_crypto_key_version(
                name=f"{self._name}/cryptoKeyVersions/{int(wrapped.key_version)}"
            )
        _refuse_unusable(self.uri, version)
        return _decrypt(
            client,
            self._name,
            wrapped.ciphertext,
            self._aad(),
            f"unwrap a data key with {self.uri}",
        )

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey]:
        """Every enabled version decrypts: wrapped keys stay as they are (re-encrypting needs
        each artifact's binding, which only sidecars hold)."""
        self._usable(_client(), "re-wrap with")
        return _kms.own_wrapped(self.uri, wrapped)

    def rotate(self) -> int:
        """The KMS's own rotation: a new version, made primary (for a signing key, the new
        version signs from now on)."""
        client = _client()
        self._usable(client, "rotate")
        with _errors(f"rotate {self.uri}"):
            version = client.create_crypto_key_version(
                request={"parent": self._name, "crypto_key_version": {}}
            )
            number = _number(version.name)
            if not self.signing:
                client.update_crypto_key_primary_version(
                    request={"name": self._name, "crypto_key_version_id": str(number)}
                )
        return number

    def retire_versions_below(self, version: int) -> None:
        raise errors.UnsupportedError(
            f"{self.uri}: Sundown does not destroy single Cloud KMS versions (sidecars are not "
            "re-wrapped for this service); destroy the whole key instead"
        )

    # -- destruction

    def destroy(self) -> GcpKmsKeyDestruction:
        """``cryptoKeyVersions.destroy`` on every version not already scheduled or destroyed.
        Every version's state is checked first: anything unexpected stops before any destroy.
        A KEK's sentinel is wrapped and unwrapped first, and must be refused afterwards."""
        client = _client()
        versions = self._versions(client)
        checks: dict[str, str] = {
            "versions before": ", ".join(f"{_number(v.name)}:{_state_name(v)}" for v in versions)
            or "none"
        }
        odd = [v for v in versions if _state_name(v) not in (_LIVE, "DISABLED", *_GONE_STATES)]
        if odd:
            raise errors.ConflictError(
                f"{self.uri}: version {_number(odd[0].name)} is in state {_state_name(odd[0])}; "
                "nothing destroyed"
            )
        sentinel: WrappedKey | None = None
        if not self.signing and any(_state_name(v) == _LIVE for v in versions):
            try:
                sentinel = self._sentinel(client)
                checks["sentinel before"] = "wrapped and unwrapped"
            except errors.KeyDestroyedError as exc:
                checks["sentinel before"] = f"not made ({exc})"
        with _errors(f"destroy {self.uri}"):
            for version in versions:
                if _state_name(version) in (_LIVE, "DISABLED"):
                    client.destroy_crypto_key_version(name=version.name)
        checks["scheduled"] = "DestroyCryptoKeyVersion for every enabled or disabled version"
        evidence = self.verify_destroyed(sentinel)
        return GcpKmsKeyDestruction(
            **{**evidence.__dict__, "checks": {**checks, **evidence.checks}}
        )

    def _sentinel(self, client: Any) -> WrappedKey:
        plaintext = secrets.token_bytes(32)
        bound = self.bound_to(SENTINEL_AAD)
        with _errors(f"sentinel for {self.uri}"):
            primary = client.get_crypto_key(name=self._name).primary
            _refuse_unusable(self.uri, primary)
        version, ciphertext = _encrypt(
            client, self._name, plaintext, bound._aad(), f"sentinel for {self.uri}"
        )
        wrapped = WrappedKey(self.uri, _number(version), ciphertext)
        if bound.unwrap(wrapped) != plaintext:
            raise errors.IntegrityError(f"{self.uri}: sentinel round trip failed; not destroying")
        return wrapped

    def verify_destroyed(self, sentinel: WrappedKey | None = None) -> GcpKmsKeyDestruction:
        """Proof from Cloud KMS: every version is DESTROY_SCHEDULED or DESTROYED, a raw Encrypt
        (KEK) is refused by KMS, and the sentinel (when this run made one) no longer unwraps,
        through Sundown nor through a raw Decrypt."""
        client = _client()
        versions = self._versions(client)
        checks: dict[str, str] = {}
        states = [_state_name(v) for v in versions]
        checks["versions"] = ", ".join(
            f"{_number(v.name)}:{s}" for v, s in zip(versions, states, strict=True)
        )
        ok = bool(versions) and all(s in _GONE_STATES for s in states)
        now = datetime.now(UTC)
        scheduled = [
            (_number(v.name), _when(v.destroy_time))
            for v, s in zip(versions, states, strict=True)
            if s == "DESTROY_SCHEDULED"
        ]
        late = [
            (n, t, problem)
            for n, t in scheduled
            if (problem := destroy_time_problem(t, now)) is not None
        ]
        for number, _, problem in late:
            checks[f"version {number} destroyTime"] = f"FAILED: {problem}"
        times = [t for _, t in scheduled if t is not None]
        pending = max(times) if times else None
        if not self.signing:
            checks["raw KMS encrypt"] = _probe(
                lambda: _encrypt(client, self._name, b"\0", b"", "probe")
            )
            ok = ok and checks["raw KMS encrypt"].startswith("refused")
        if sentinel is not None:
            bound = self.bound_to(SENTINEL_AAD)
            checks["sentinel through Sundown"] = _kms.refused(
                lambda: bound.unwrap(sentinel), "still decrypts"
            )
            ok = ok and checks["sentinel through Sundown"].startswith("refused")
            checks["raw KMS decrypt"] = _probe(
                lambda: _decrypt(client, self._name, sentinel.ciphertext, bound._aad(), "probe")
            )
            ok = ok and checks["raw KMS decrypt"].startswith("refused")
        elif self.signing:
            checks["sign through Sundown"] = _kms.refused(
                lambda: GcpKmsSigner(self.uri), "still signs"
            )
            ok = ok and checks["sign through Sundown"].startswith("refused")
        return GcpKmsKeyDestruction.now(
            self.uri,
            versions=tuple(_number(v.name) for v in versions),
            method="Cloud KMS DestroyCryptoKeyVersion for every version",
            pending=pending,
            pending_what="destruction",
            checks=checks,
            verified=ok and not late,
            limits=LIMITS,
            key_state="DESTROY_SCHEDULED"
            if scheduled
            else ("DESTROYED" if ok and not late else "live"),
            overdue=ok and bool(late) and all(t is not None and t <= now for _, t, _ in late),
        )

    def cancel_deletion(self) -> KeyInfo:
        """RestoreCryptoKeyVersion for every scheduled version, then enable it again."""
        client = _client()
        with _errors(f"cancel destruction of {self.uri}"):
            for version in self._versions(client):
                if _state_name(version) == "DESTROY_SCHEDULED":
                    client.restore_crypto_key_version(name=version.name)
                    client.update_crypto_key_version(
                        request={
                            "crypto_key_version": {"name": version.name, "state": "ENABLED"},
                            "update_mask": {"paths": ["state"]},
                        }
                    )
        return self.info()


class GcpKmsSigner(_kms.KmsSigner):
    """EC_SIGN_P256_SHA256 over a SHA-256 digest with the latest version; DER signatures."""

    def __init__(self, uri: str) -> None:
        self._key = GcpKmsKey(uri, check=False)
        if not self._key.signing:
            raise errors.InputError(
                f"{self._key.uri} is not a signing key (purpose ASYMMETRIC_SIGN)"
            )
        self._key._usable(_client(), "open the signer")

    @property
    def uri(self) -> str:
        return self._key.uri

    def _public_key(self) -> Any:
        from cryptography.hazmat.primitives import serialization

        client = _client()
        version = self._key._usable(client, "read the public key of")
        with _errors(f"read the public key of {self.uri}"):
            pem = client.get_public_key(name=version.name).pem
        return serialization.load_pem_public_key(pem.encode())

    def sign(self, message: bytes) -> bytes:
        client = _client()
        version = self._key._usable(client, "sign with")
        with _errors(f"sign with {self.uri}"):
            digest = hashlib.sha256(message).digest()
            answer = client.asymmetric_sign(
                request={
                    "name": version.name,
                    "digest": {"sha256": digest},
                    "digest_crc32c": _crc(digest),
                }
            )
        signature = bytes(answer.signature)
        if not answer.verified_digest_crc32c or answer.signature_crc32c != _crc(signature):
            raise errors.BackendError(f"sign with {self.uri}: corrupted in transit (CRC32C)")
        return signature


def open_key_service(uri: str) -> GcpKmsKey:
    return _kms.key_encryption_key(GcpKmsKey(uri), uri, "purpose ASYMMETRIC_SIGN")


key_for_destruction = functools.partial(GcpKmsKey, check=False)
open_signer = GcpKmsSigner


def create_key(uri: str, *, signing: bool = False) -> KeyInfo:
    """A new CryptoKey at the URI's name (the key ring is created when missing):
    GOOGLE_SYMMETRIC_ENCRYPTION, or with ``signing`` EC_SIGN_P256_SHA256."""
    name = parse_uri(uri)
    ring, _, key_id = name.rpartition("/cryptoKeys/")
    location, _, ring_id = ring.rpartition("/keyRings/")
    client = _client()
    with _errors(f"create {uri}"):
        from google.api_core.exceptions import NotFound

        try:
            client.get_key_ring(name=ring)
        except NotFound:
            client.create_key_ring(
                request={"parent": location, "key_ring_id": ring_id, "key_ring": {}}
            )
        template = (
            {"purpose": "ASYMMETRIC_SIGN", "version_template": {"algorithm": "EC_SIGN_P256_SHA256"}}
            if signing
            else {
                "purpose": "ENCRYPT_DECRYPT",
                "version_template": {"algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION"},
            }
        )
        client.create_crypto_key(
            request={"parent": ring, "crypto_key_id": key_id, "crypto_key": template}
        )
    return GcpKmsKey(uri).info()
