"""Azure Key Vault keys as Sundown key services and signers (``azure-kv://`` URIs).

``azure-kv://VAULT.vault.azure.net/keys/NAME`` names one key (every version of it) in a vault;
the sovereign-cloud suffixes ``vault.azure.cn`` and ``vault.usgovcloudapi.net`` are accepted too.
Clients (azure-keyvault-keys) are made per operation with ``DefaultAzureCredential`` and closed
after it; nothing is cached. ``SUNDOWN_AZURE_KEYVAULT_ENDPOINT`` sends every vault's requests to
one endpoint instead (tests: a local HTTPS server that answers as the REST API does).

KEK use: a standard vault has no symmetric keys, so the KEK is an RSA 3072 key and a fresh
32-byte DEK is wrapped with RSA-OAEP-256. Key Vault's wrapKey takes no additional authenticated
data, so Sundown binds by what it wraps: SHA-256(artifact binding) || DEK, checked on unwrap
(``IntegrityError`` when a wrapped key is moved to another artifact). RSA-OAEP is
non-malleable, so the binding cannot be changed without the private key; but wrapping is a
public-key operation (the SDK does it locally with the public key), so anyone with the public
key can wrap a DEK of their own for any binding: this KEK gives confidentiality, not origin
(docs/kms.md). The envelope's stream key is also derived with the binding (HKDF info), as for
every key service.

Before every use, Sundown reads the key version concerned and refuses unless it is enabled and
inside its validity dates (``KeyDestroyedError``); a deleted key is refused naming its scheduled
purge date.

Destruction: DeleteKey (soft delete). Key Vault keeps the deleted key until its scheduled purge
date (the vault's retention, 7-90 days; ``recover`` restores it until then) and purges it then;
``destroy`` run again after that date purges it itself when it is still there. The evidence says
deletion is pending until the scheduled purge date, which is ``irrecoverable_after``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from connectors import _kms
from sundown import errors
from sundown.keys import KeyInfo, WrappedKey

_kms.require_sdk("azure.keyvault.keys", "azure.identity")  # the azure extra

SCHEME = "azure-kv://"
ENDPOINT_ENV = "SUNDOWN_AZURE_KEYVAULT_ENDPOINT"
RSA_SIZE = 3072
WRAP_ALGORITHM = "RSA-OAEP-256"
SENTINEL_BINDING = b"sundown:destroy-sentinel"
LIMITS = (
    "Key Vault keeps a deleted key until its scheduled purge date; recover restores it until "
    "then. A backup taken with BackupKey (restorable into a vault of the same subscription and "
    "geography) is not reached. Data keys unwrapped before destruction and held elsewhere are "
    "not reached."
)
_URI = re.compile(
    r"(?P<vault>[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9])\."
    r"(?P<suffix>vault\.azure\.net|vault\.azure\.cn|vault\.usgovcloudapi\.net)"
    r"/keys/(?P<name>[A-Za-z0-9-]{1,127})"
)


def _now() -> datetime:
    return datetime.now(UTC)


class AzureKeyDestruction(_kms.PendingKeyDestruction):
    """The key is deleted (soft delete) and purged on ``pending_until`` (None once purged)."""

    PENDING = "deleted; purge pending until {date}"
    GONE = "key purged by Key Vault"


def parse_uri(uri: str) -> tuple[str, str]:
    """(vault URL, key name)."""
    if not uri.startswith(SCHEME):
        raise errors.InputError(
            f"not an Azure Key Vault key URI: {uri!r} "
            f"(expected {SCHEME}VAULT.vault.azure.net/keys/NAME)"
        )
    match = _URI.fullmatch(uri[len(SCHEME) :])
    if match is None:
        rest = uri[len(SCHEME) :]
        host, _, path = rest.partition("/")
        if not re.fullmatch(
            r"[A-Za-z0-9-]+\.(vault\.azure\.net|vault\.azure\.cn|"
            r"vault\.usgovcloudapi\.net)",
            host,
        ):
            problem = f"host {host!r} is not a key vault (VAULT.vault.azure.net)"
        elif not path.startswith("keys/"):
            problem = "the path is not keys/NAME"
        elif path.count("/") > 1:
            problem = "it names a key version; name the key (Sundown picks versions itself)"
        else:
            problem = "the vault or key name has characters Key Vault does not allow"
        raise errors.InputError(
            f"bad Azure Key Vault key URI {uri!r}: {problem} "
            f"(expected {SCHEME}VAULT.vault.azure.net/keys/NAME)"
        )
    return f"https://{match['vault']}.{match['suffix']}", match["name"]


def _key_client(vault_url: str) -> AbstractContextManager[Any]:
    from azure.keyvault.keys import KeyClient

    endpoint = _kms.endpoint_override(ENDPOINT_ENV)
    options: dict[str, Any] = {}
    if endpoint:
        # Every vault is served from one endpoint whose host is not the vault's: Key Vault's
        # challenge names the vault's resource domain, which cannot match it.
        vault_url = endpoint.rstrip("/")
        options["verify_challenge_resource"] = False
    return _authenticated(KeyClient, vault_url, options)


def _crypto_client(key: Any) -> AbstractContextManager[Any]:
    """A CryptographyClient on the key version ``key`` (a KeyVaultKey already read and
    checked): public-key operations (wrap) run locally, private-key ones (unwrap, sign) in
    Key Vault."""
    from azure.keyvault.keys.crypto import CryptographyClient

    options: dict[str, Any] = {}
    if _kms.endpoint_override(ENDPOINT_ENV):
        options["verify_challenge_resource"] = False
    return _authenticated(CryptographyClient, key, options)


@contextmanager
def _authenticated(client_class: Any, target: Any, options: dict[str, Any]) -> Iterator[Any]:
    """``client_class(target, credential, **options)`` on a DefaultAzureCredential made for this
    call (never cached across credentials); both closed when the block ends."""
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    client = client_class(target, credential, **options)
    try:
        yield client
    finally:
        client.close()
        credential.close()


def _translate(exc: Exception, what: str) -> errors.SundownError:
    from azure.core import exceptions as aexc

    code = ""
    error = getattr(exc, "error", None)
    if error is not None:
        code = str(getattr(error, "code", "") or "")
        inner = getattr(error, "innererror", None) or {}
        if isinstance(inner, dict) and inner.get("code"):
            code = str(inner["code"])
    message = str(getattr(exc, "message", "") or type(exc).__name__).splitlines()[0]
    text = f"{what}: {code or type(exc).__name__}: {message}"
    if code == "KeyDisabled":
        return errors.KeyDestroyedError(text)
    if isinstance(exc, aexc.ResourceNotFoundError):
        return errors.NotFoundError(text)
    if isinstance(exc, aexc.ClientAuthenticationError):
        return errors.PermissionDeniedError(text)
    if isinstance(exc, aexc.ResourceExistsError):
        return errors.ConflictError(text)
    if isinstance(exc, aexc.HttpResponseError) and exc.status_code == 400:
        # Sundown's own unwrapKey request is well formed: a 400 means the wrapped bytes.
        return errors.IntegrityError(text) if what.startswith("unwrap") else errors.InputError(text)
    return errors.BackendError(text)


def _errors(what: str) -> AbstractContextManager[None]:
    from azure.core.exceptions import AzureError

    return _kms.translated(what, (AzureError,), _translate)


def _unless_absent(what: str, call: Callable[[], Any]) -> Any:
    """``call()``'s answer, or None when Key Vault answers that the key (or deleted key) is not
    found; every other failure translated (:func:`_errors`)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        with _errors(what):
            return call()
    except errors.NotFoundError as exc:
        if not isinstance(exc.__cause__, ResourceNotFoundError):
            raise
        return None


def _refuse_unusable(uri: str, properties: Any) -> None:
    now = _now()
    version = properties.version
    if not properties.enabled:
        raise errors.KeyDestroyedError(
            f"{uri}: version {version} is disabled (enabled=false); Sundown does not use it"
        )
    if properties.expires_on is not None and properties.expires_on <= now:
        raise errors.KeyDestroyedError(
            f"{uri}: version {version} expired on {properties.expires_on.isoformat()}; "
            "Sundown does not use it"
        )
    if properties.not_before is not None and properties.not_before > now:
        raise errors.KeyDestroyedError(
            f"{uri}: version {version} is not valid before {properties.not_before.isoformat()}"
        )


def _value(enum: Any) -> str:
    """An SDK enum's wire value ("Recoverable+Purgeable", "EC"), not its Python name."""
    return str(getattr(enum, "value", enum) or "")


def _is_ec(key: Any) -> bool:
    return _value(key.key_type).upper().startswith("EC")


def _ciphertext(version: str, wrapped: bytes) -> bytes:
    return version.encode("ascii") + b"." + wrapped


def _split(ciphertext: bytes, uri: str) -> tuple[str, bytes]:
    version, dot, wrapped = ciphertext.partition(b".")
    if not dot or not re.fullmatch(rb"[0-9a-f]{32}", version):
        raise errors.IntegrityError(f"{uri}: the wrapped key does not name a Key Vault key version")
    return version.decode("ascii"), wrapped


class AzureKeyVaultKey:
    """One Key Vault key: an RSA 3072 KEK (wrapKey/unwrapKey) or an EC P-256 signing key."""

    def __init__(self, uri: str, *, check: bool = True) -> None:
        self._vault, self._key_name = parse_uri(uri)
        self._uri = SCHEME + uri[len(SCHEME) :]
        self._associated_data = b""
        self._signing: bool | None = None
        if check:
            self._usable("open")

    @property
    def uri(self) -> str:
        return self._uri

    def bound_to(self, associated_data: bytes) -> AzureKeyVaultKey:
        """The same key, binding wrapped data keys to SHA-256(``associated_data``) inside the
        RSA-OAEP plaintext (Key Vault's wrapKey has no AAD)."""
        bound = object.__new__(AzureKeyVaultKey)
        bound.__dict__.update(self.__dict__)
        bound._associated_data = associated_data
        return bound

    def _binding(self) -> bytes:
        return hashlib.sha256(b"sundown-azure-kv-binding\0" + self._associated_data).digest()

    def _deleted_refusal(self, client: Any) -> errors.SundownError:
        deleted = _unless_absent(
            f"read the deleted key {self.uri}", lambda: client.get_deleted_key(self._key_name)
        )
        if deleted is None:
            return errors.NotFoundError(f"{self.uri}: no such key in the vault (nor deleted)")
        when = deleted.scheduled_purge_date
        return errors.KeyDestroyedError(
            f"{self.uri}: the key is deleted, purge scheduled for "
            f"{when.isoformat() if when else 'an unknown date'}; Sundown does not use it"
        )

    def _get(self, client: Any, what: str, version: str | None = None) -> Any:
        key = _unless_absent(
            f"{what} {self.uri}", lambda: client.get_key(self._key_name, version=version)
        )
        if key is None:
            raise self._deleted_refusal(client)
        return key

    def _usable(self, what: str, version: str | None = None) -> Any:
        """Read the key (the given version, or the latest) now; refuse it unless usable."""
        with _key_client(self._vault) as client:
            key = self._get(client, what, version)
        _refuse_unusable(self.uri, key.properties)
        self._signing = _is_ec(key)
        return key

    @property
    def signing(self) -> bool:
        if self._signing is None:
            with _key_client(self._vault) as client:
                key = self._get(client, "read")
            self._signing = _is_ec(key)
        return self._signing

    def _versions(self, client: Any, latest: str) -> list[Any]:
        """Oldest first. Creation times have one-second resolution: among versions created in
        the same second, ``latest`` (the key's current version) sorts last, the others keep
        the service's order."""
        with _errors(f"list the versions of {self.uri}"):
            listed = list(client.list_properties_of_key_versions(self._key_name))
        return sorted(listed, key=lambda p: (p.created_on or _now(), p.version == latest))

    def _index(self, latest: str) -> int:
        """Sundown's number of the key's current version (informational: a wrapped key names
        the Key Vault version itself)."""
        with _key_client(self._vault) as client:
            versions = [p.version for p in self._versions(client, latest)]
        return versions.index(latest) + 1 if latest in versions else len(versions)

    def info(self) -> KeyInfo:
        key = self._usable("read")
        with _key_client(self._vault) as client:
            versions = self._versions(client, str(key.properties.version))
        live = tuple(i for i, p in enumerate(versions, 1) if p.enabled)
        latest = [p.version for p in versions].index(key.properties.version) + 1
        exportable = getattr(key.properties, "exportable", None)
        return KeyInfo(
            uri=self.uri,
            kind="signing" if self._signing else "kek",
            algorithm="ecdsa-p256" if self._signing else f"azure-kv-rsa-oaep-256-{RSA_SIZE}",
            latest_version=latest,
            min_decryption_version=live[0] if live else latest,
            versions=live,
            exportable=bool(exportable) if exportable is not None else False,
            allow_plaintext_backup=False,
        )

    def new_data_key(self) -> tuple[bytes, WrappedKey]:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        key = self._usable("wrap a data key with")
        if self._signing:
            raise errors.InputError(f"{self.uri} is a signing key, not a key-encryption key")
        dek = secrets.token_bytes(32)
        with _crypto_client(key) as crypto, _errors(f"wrap a data key with {self.uri}"):
            result = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, self._binding() + dek)
        version = str(key.properties.version)
        return dek, WrappedKey(
            key_uri=self.uri,
            key_version=self._index(version),
            ciphertext=_ciphertext(version, bytes(result.encrypted_key)),
        )

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        from azure.keyvault.keys.crypto import KeyWrapAlgorithm

        if wrapped.key_uri != self.uri:
            raise errors.IntegrityError(
                f"wrapped key belongs to {wrapped.key_uri!r}, not {self.uri!r}"
            )
        version, blob = _split(wrapped.ciphertext, self.uri)
        self._usable("unwrap a data key with")  # the key itself (not deleted, latest enabled)
        try:
            key = self._usable("unwrap a data key with", version)
        except errors.NotFoundError as exc:
            # The key answered a moment ago: the version named is not one of its own.
            raise errors.IntegrityError(
                f"{self.uri}: the wrapped data key names version {version}, which this key "
                "does not have"
            ) from exc
        with _crypto_client(key) as crypto, _errors(f"unwrap a data key with {self.uri}"):
            plain = bytes(crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, blob).key)
        if len(plain) != 64 or not hmac.compare_digest(plain[:32], self._binding()):
            raise errors.IntegrityError(
                f"{self.uri}: the wrapped data key is bound to another artifact"
            )
        return plain[32:]

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey]:
        """Older enabled versions still unwrap: wrapped keys stay as they are."""
        self._usable("re-wrap with")
        return _kms.own_wrapped(self.uri, wrapped)

    def rotate(self) -> int:
        """Key Vault's own rotation (RotateKey): a new version, used from now on."""
        self._usable("rotate")
        with _key_client(self._vault) as client, _errors(f"rotate {self.uri}"):
            key = client.rotate_key(self._key_name)
        return self._index(str(key.properties.version))

    def retire_versions_below(self, version: int) -> None:
        raise errors.UnsupportedError(
            f"{self.uri}: Key Vault cannot delete single key versions; destroy the whole key"
        )

    # -- destruction

    def destroy(self) -> AzureKeyDestruction:
        """DeleteKey (soft delete); after the scheduled purge date, PurgeDeletedKey if the key
        is still there. A KEK's sentinel is wrapped and unwrapped first and must be refused
        afterwards. Anything unexpected stops before the delete."""
        from azure.core.exceptions import ResourceNotFoundError

        checks: dict[str, str] = {}
        sentinel: WrappedKey | None = None
        exportable: bool | None = None
        versions: tuple[int, ...] = ()
        with _key_client(self._vault) as client:
            key = _unless_absent(f"destroy {self.uri}", lambda: client.get_key(self._key_name))
            if key is not None:
                self._signing = _is_ec(key)
                exportable = bool(getattr(key.properties, "exportable", False))
                checks["key before"] = f"enabled={key.properties.enabled}, exportable={exportable}"
                if not self._signing and key.properties.enabled:
                    sentinel = self._sentinel()
                    checks["sentinel before"] = "wrapped and unwrapped"
                with _errors(f"list the versions of {self.uri}"):
                    listed = list(client.list_properties_of_key_versions(self._key_name))
                # DeleteKey deletes every version: Sundown's numbers 1..N of those listed.
                versions = tuple(range(1, len(listed) + 1))
                checks["versions before"] = f"{len(listed)} listed; DeleteKey covers them all"
                with _errors(f"delete {self.uri}"):
                    client.begin_delete_key(self._key_name).wait()
                checks["deleted"] = "DeleteKey (soft delete)"
            else:
                with _errors(f"destroy {self.uri}"):
                    try:
                        deleted = client.get_deleted_key(self._key_name)
                    except ResourceNotFoundError:
                        deleted = None
                when = deleted.scheduled_purge_date if deleted is not None else None
                level = _value(deleted.properties.recovery_level) if deleted else ""
                if when is not None and when <= _now():
                    if "Purgeable" in level:
                        with _errors(f"purge {self.uri}"):
                            client.purge_deleted_key(self._key_name)
                        checks["purged"] = "PurgeDeletedKey after the scheduled purge date"
                    else:
                        # Purge protection: only Key Vault purges, at the date; nothing to ask.
                        checks["purged"] = f"left to Key Vault (recovery level {level})"
        evidence = self.verify_destroyed(sentinel)
        # An exportable key (a release policy let its material out) is not claimable: a copy
        # may survive anywhere (KeyDestruction.ce_claimable).
        return AzureKeyDestruction(
            **{
                **evidence.__dict__,
                "checks": {**checks, **evidence.checks},
                "exportable": exportable if exportable is not None else evidence.exportable,
                "versions_destroyed": versions or evidence.versions_destroyed,
            }
        )

    def _sentinel(self) -> WrappedKey:
        bound = self.bound_to(SENTINEL_BINDING)
        dek, wrapped = bound.new_data_key()
        if bound.unwrap(wrapped) != dek:
            raise errors.IntegrityError(f"{self.uri}: sentinel round trip failed; not destroying")
        return wrapped

    def verify_destroyed(self, sentinel: WrappedKey | None = None) -> AzureKeyDestruction:
        """Proof from Key Vault: GetKey answers KeyNotFound, and the deleted key is either
        listed with its scheduled purge date or gone (purged); the sentinel (when this run made
        one) is refused through Sundown and by a raw UnwrapKey."""
        from azure.core.exceptions import ResourceNotFoundError

        checks: dict[str, str] = {}
        ok = True
        pending: datetime | None = None
        state = "purged"
        with _key_client(self._vault) as client:
            live = _unless_absent(
                f"verify destruction of {self.uri}", lambda: client.get_key(self._key_name)
            )
            if live is None:
                checks["get key"] = "refused (KeyNotFound)"
            else:
                checks["get key"] = f"FAILED: the key answers (enabled={live.properties.enabled})"
                ok, state = False, "live"
            if state != "live":
                with _errors(f"verify destruction of {self.uri}"):
                    try:
                        deleted = client.get_deleted_key(self._key_name)
                    except ResourceNotFoundError:
                        deleted = None
                if deleted is not None:
                    pending, state = deleted.scheduled_purge_date, "deleted"
                    checks["deleted key"] = (
                        f"listed; purge scheduled for "
                        f"{pending.isoformat() if pending else 'no date'} "
                        f"(recovery level {_value(deleted.properties.recovery_level)})"
                    )
                    if pending is None:
                        ok = False
                else:
                    checks["deleted key"] = "gone (purged)"
        if sentinel is not None:
            checks["sentinel through Sundown"] = _kms.refused(
                lambda: self.bound_to(SENTINEL_BINDING).unwrap(sentinel), "still unwraps"
            )
            ok = ok and checks["sentinel through Sundown"].startswith("refused")
        return AzureKeyDestruction.now(
            self.uri,
            versions=(),
            method="Azure Key Vault DeleteKey (soft delete), purged at the scheduled purge date",
            pending=pending,
            pending_what="purge",
            checks=checks,
            verified=ok,
            limits=LIMITS,
            key_state=state,
        )

    def cancel_deletion(self) -> KeyInfo:
        """RecoverDeletedKey, within the retention window."""
        with _key_client(self._vault) as client, _errors(f"recover {self.uri}"):
            client.begin_recover_deleted_key(self._key_name).wait()
        return self.info()


class AzureKeyVaultSigner(_kms.KmsSigner):
    """ES256 (ECDSA P-256 over a SHA-256 digest) with the latest version; Key Vault returns the
    raw r||s signature, converted here to DER."""

    def __init__(self, uri: str) -> None:
        self._key = AzureKeyVaultKey(uri, check=False)
        self._key._usable("open the signer")
        if not self._key._signing:
            raise errors.InputError(f"{self._key.uri} is not a signing key (an EC P-256 key)")

    @property
    def uri(self) -> str:
        return self._key.uri

    def _public_key(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric import ec

        jwk = self._key._usable("read the public key of").key
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(bytes(jwk.x), "big"), int.from_bytes(bytes(jwk.y), "big"), ec.SECP256R1()
        ).public_key()

    def sign(self, message: bytes) -> bytes:
        from azure.keyvault.keys.crypto import SignatureAlgorithm
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        key = self._key._usable("sign with")
        with _crypto_client(key) as crypto, _errors(f"sign with {self.uri}"):
            raw = bytes(
                crypto.sign(SignatureAlgorithm.es256, hashlib.sha256(message).digest()).signature
            )
        if len(raw) != 64:
            raise errors.BackendError(
                f"{self.uri}: Key Vault returned a {len(raw)}-byte ES256 signature"
            )
        return encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )


def open_key_service(uri: str) -> AzureKeyVaultKey:
    return _kms.key_encryption_key(AzureKeyVaultKey(uri), uri, "EC")


key_for_destruction = functools.partial(AzureKeyVaultKey, check=False)
open_signer = AzureKeyVaultSigner


def create_key(uri: str, *, signing: bool = False) -> KeyInfo:
    """A new key NAME in the vault: RSA 3072 (wrapKey, unwrapKey) or, with ``signing``, EC
    P-256 (sign, verify). Refused when the name exists, live or deleted (Key Vault would add a
    version to a live key)."""
    from azure.core.exceptions import ResourceNotFoundError

    vault, name = parse_uri(uri)
    with _key_client(vault) as client, _errors(f"create {uri}"):
        try:
            client.get_key(name)
            raise errors.ConflictError(f"{uri}: the key already exists")
        except ResourceNotFoundError:
            pass
        if signing:
            client.create_ec_key(name, curve="P-256", key_operations=["sign", "verify"])
        else:
            client.create_rsa_key(name, size=RSA_SIZE, key_operations=["wrapKey", "unwrapKey"])
    return AzureKeyVaultKey(uri).info()
