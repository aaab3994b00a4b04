"""HashiCorp Vault / OpenBao: the transit key service (``vault://MOUNT/KEY``).

Configuration and the client (fresh for every operation) come from :mod:`connectors._vault`;
``SUNDOWN_VAULT_KV_MOUNT`` (default ``secret``) names the KV v2 mount that holds Sundown's key
records (``sundown/keys/<transit mount>/<key>``): kind, creation time, the sentinel wrapped DEK
made at creation, and after destruction the destruction evidence.

Keys (``vault://transit/my-system``): key-encryption keys are ``aes256-gcm96`` with
``exportable=false`` and ``allow_plaintext_backup=false``; signing keys are ``ecdsa-p256``.
Data keys come from ``datakey/plaintext``: Vault draws the DEK and returns it with its wrapped
form in one TLS response, so the DEK exists only in this process's memory and is never sent
anywhere (see docs/vault.md).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import hvac
import hvac.exceptions as hvac_errors
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors._vault import VaultSettings, vault_client, vault_errors, vault_messages
from sundown import errors
from sundown.keys import KeyDestruction, KeyInfo, WrappedKey

KEK_TYPE = "aes256-gcm96"
SIGNING_TYPE = "ecdsa-p256"
REWRAP_BATCH = 256  # items per transit batch request
RECORD_PREFIX = "sundown/keys"

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CIPHERTEXT = re.compile(rb"^vault:v([1-9][0-9]{0,9}):[A-Za-z0-9+/]+={0,2}$")


# ---------------------------------------------------------------------------------------------
# URIs and key records


def parse_uri(uri: str) -> tuple[str, str]:
    """``vault://MOUNT/KEY`` -> (mount, key). The mount may have several segments."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "vault":
        raise errors.InputError(f"not a vault:// URI: {uri!r}")
    if parts.query or parts.fragment:
        raise errors.InputError(f"{uri!r}: a vault:// key URI takes no query or fragment")
    segments = [s for s in f"{parts.netloc}/{parts.path}".split("/") if s]
    if len(segments) < 2:
        raise errors.InputError(
            f"{uri!r} names no key (expected vault://MOUNT/KEY, e.g. vault://transit/x)"
        )
    for segment in segments:
        if not _SEGMENT.match(segment):
            raise errors.InputError(
                f"{uri!r}: {segment!r} is not a valid mount or key name "
                "(letters, digits, '.', '_', '-')"
            )
    return "/".join(segments[:-1]), segments[-1]


def _record_path(mount: str, key: str) -> str:
    return f"{RECORD_PREFIX}/{mount}/{key}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _now() -> datetime:
    return datetime.now(UTC)


def _version_of(ciphertext: bytes, what: str) -> int:
    match = _CIPHERTEXT.match(ciphertext)
    if match is None:
        raise errors.IntegrityError(f"{what}: not a Vault transit ciphertext (vault:vN:...)")
    return int(match.group(1))


# What deleting a transit key does not reach, stated on the evidence.
LIMITS = (
    "the transit key was deleted through Vault's API: snapshots and backups of Vault's storage "
    "taken before the deletion still hold it (sealed under Vault's root key), and any copy made "
    "by a key export or a plaintext backup is outside Vault; see docs/vault.md"
)


# ---------------------------------------------------------------------------------------------
# The key service


class VaultTransitKey:
    """A transit key as a :class:`sundown.keys.KeyService` (and the destroy operation for
    signing keys too). Every method opens its own client from the current environment."""

    def __init__(self, uri: str, settings: VaultSettings | None = None) -> None:
        self._mount, self._name = parse_uri(uri)
        self._settings = settings

    # -- plumbing

    @property
    def uri(self) -> str:
        return f"vault://{self._mount}/{self._name}"

    def _config(self) -> VaultSettings:
        return self._settings or VaultSettings.from_env()

    @contextlib.contextmanager
    def _client(self, what: str) -> Iterator[tuple[hvac.Client, VaultSettings]]:
        settings = self._config()
        with vault_errors(f"{what} {self.uri}", settings), vault_client(settings) as client:
            yield client, settings

    def _read(self, client: hvac.Client) -> dict[str, Any]:
        return dict(client.secrets.transit.read_key(self._name, mount_point=self._mount)["data"])

    def _read_or_missing(self, client: hvac.Client, settings: VaultSettings) -> dict[str, Any]:
        """The key's data; KeyDestroyedError when Sundown's record says it was destroyed."""
        try:
            return self._read(client)
        except hvac_errors.InvalidPath:
            record = self._record(client, settings)
            if record and record.get("status") in ("destroying", "destroyed"):
                raise errors.KeyDestroyedError(
                    f"{self.uri} was destroyed at {record.get('destroyed_at')}: nothing wrapped "
                    "under it can be recovered"
                ) from None
            raise errors.NotFoundError(
                f"no transit key {self.uri} at Vault {settings.addr}"
            ) from None

    def _record(self, client: hvac.Client, settings: VaultSettings) -> dict[str, Any] | None:
        try:
            answer = client.secrets.kv.v2.read_secret_version(
                path=_record_path(self._mount, self._name),
                mount_point=settings.kv_mount,
                raise_on_deleted_version=True,
            )
        except (hvac_errors.InvalidPath, hvac_errors.Forbidden):
            return None
        return dict(answer["data"]["data"])

    def _write_record(
        self, client: hvac.Client, settings: VaultSettings, record: dict[str, Any]
    ) -> None:
        client.secrets.kv.v2.create_or_update_secret(
            path=_record_path(self._mount, self._name),
            secret=record,
            mount_point=settings.kv_mount,
        )

    def _set_config(self, client: hvac.Client, **config: Any) -> None:
        # Through the adapter: hvac's own check wrongly refuses min_encryption_version equal to
        # min_decryption_version, which trim needs.
        client.adapter.post(f"/v1/{self._mount}/keys/{self._name}/config", json=config)

    @staticmethod
    def _info(uri: str, data: dict[str, Any]) -> KeyInfo:
        latest = int(data["latest_version"])
        first = max(int(data.get("min_available_version") or 0), 1)
        return KeyInfo(
            uri=uri,
            kind="signing" if data.get("supports_signing") else "kek",
            algorithm=str(data["type"]),
            latest_version=latest,
            min_decryption_version=int(data["min_decryption_version"]),
            versions=tuple(range(first, latest + 1)),
            exportable=bool(data.get("exportable")),
            allow_plaintext_backup=bool(data.get("allow_plaintext_backup")),
        )

    # -- creation

    def create(self, *, signing: bool) -> KeyInfo:
        """Create the key; a KEK gets a sentinel wrapped DEK, kept in its record for the
        destruction proof. ConflictError if the key exists, or if Sundown destroyed a key of
        that name (a certificate names it: the name is never reused). The record is written
        first, so a token that cannot write it fails before any key exists."""
        with self._client("create key") as (client, settings):
            transit = client.secrets.transit
            try:
                self._read(client)
            except hvac_errors.InvalidPath:
                pass
            else:
                raise errors.ConflictError(f"transit key {self.uri} already exists")
            previous = self._record(client, settings)
            if previous and previous.get("status") in ("destroying", "destroyed"):
                raise errors.ConflictError(
                    f"a key named {self.uri} was destroyed at {previous.get('destroyed_at')}; "
                    "names of destroyed keys are not reused: choose another name"
                )
            record: dict[str, Any] = {
                "uri": self.uri,
                "kind": "signing" if signing else "kek",
                "algorithm": SIGNING_TYPE if signing else KEK_TYPE,
                "created_at": _now().isoformat(),
                "status": "creating",
            }
            self._write_record(client, settings, record)
            transit.create_key(
                self._name,
                key_type=SIGNING_TYPE if signing else KEK_TYPE,
                exportable=False,
                allow_plaintext_backup=False,
                mount_point=self._mount,
            )
            data = self._read(client)
            if data.get("exportable") or data.get("allow_plaintext_backup"):
                raise errors.BackendError(f"{self.uri} was created exportable; refusing to use it")
            record["status"] = "active"
            if not signing:
                plaintext, ciphertext, version = self._datakey(client)
                record["sentinel_ciphertext"] = ciphertext.decode("ascii")
                record["sentinel_version"] = version
                record["sentinel_sha256"] = hashlib.sha256(plaintext).hexdigest()
            self._write_record(client, settings, record)
            return self._info(self.uri, data)

    # -- KeyService

    def info(self) -> KeyInfo:
        with self._client("read key") as (client, settings):
            return self._info(self.uri, self._read_or_missing(client, settings))

    def _datakey(self, client: hvac.Client) -> tuple[bytes, bytes, int]:
        answer = client.secrets.transit.generate_data_key(
            self._name, key_type="plaintext", bits=256, mount_point=self._mount
        )["data"]
        plaintext = base64.b64decode(answer["plaintext"])
        ciphertext = str(answer["ciphertext"]).encode("ascii")
        version = _version_of(ciphertext, f"data key from {self.uri}")
        if len(plaintext) != 32 or version != int(answer.get("key_version", version)):
            raise errors.BackendError(f"{self.uri}: Vault returned a malformed data key")
        return plaintext, ciphertext, version

    def new_data_key(self) -> tuple[bytes, WrappedKey]:
        with self._client("new data key from") as (client, settings):
            try:
                plaintext, ciphertext, version = self._datakey(client)
            except hvac_errors.InvalidRequest as exc:
                if "not found" in vault_messages(exc):
                    self._read_or_missing(client, settings)
                raise
        return plaintext, WrappedKey(self.uri, version, ciphertext)

    def _check_wrapped(self, wrapped: WrappedKey) -> None:
        if wrapped.key_uri.rstrip("/") != self.uri:
            raise errors.IntegrityError(
                f"the wrapped key belongs to {wrapped.key_uri}, not {self.uri}"
            )
        version = _version_of(wrapped.ciphertext, f"wrapped key for {self.uri}")
        if version != wrapped.key_version:
            raise errors.IntegrityError(
                f"wrapped key for {self.uri}: recorded version {wrapped.key_version} does not "
                f"match the ciphertext's version {version} (altered)"
            )

    def _decrypt_failure(
        self,
        exc: hvac_errors.InvalidRequest,
        version: int,
        client: hvac.Client,
        settings: VaultSettings,
    ) -> errors.SundownError:
        detail = vault_messages(exc).lower()
        if "not found" in detail:
            data = self._read_or_missing(client, settings)  # raises KeyDestroyed/NotFound
            return errors.BackendError(
                f"{self.uri}: Vault says the key is missing but it reads: {data}"
            )
        if "too old" in detail or "disallowed by policy" in detail:
            data = self._read_or_missing(client, settings)
            if version < int(data.get("min_available_version") or 0):
                return errors.KeyDestroyedError(
                    f"{self.uri} version {version} was retired and trimmed: it is destroyed"
                )
            return errors.NotFoundError(
                f"{self.uri} version {version} is retired (minimum decryption version "
                f"{data['min_decryption_version']})"
            )
        return errors.IntegrityError(
            f"wrapped key for {self.uri} version {version} does not unwrap: altered, "
            "or wrapped by another key"
        )

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        self._check_wrapped(wrapped)
        with self._client("unwrap with") as (client, settings):
            try:
                answer = client.secrets.transit.decrypt_data(
                    self._name,
                    ciphertext=wrapped.ciphertext.decode("ascii"),
                    mount_point=self._mount,
                )["data"]
            except hvac_errors.InvalidRequest as exc:
                raise self._decrypt_failure(exc, wrapped.key_version, client, settings) from None
        try:
            plaintext = base64.b64decode(answer["plaintext"], validate=True)
        except (binascii.Error, KeyError, TypeError):
            raise errors.IntegrityError(f"{self.uri}: unwrapped data key is malformed") from None
        if len(plaintext) != 32:
            raise errors.IntegrityError(f"{self.uri}: unwrapped data key is not 32 bytes")
        return plaintext

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey]:
        for item in wrapped:
            self._check_wrapped(item)
        result: list[WrappedKey] = []
        with self._client("rewrap with") as (client, settings):
            self._read_or_missing(client, settings)
            for start in range(0, len(wrapped), REWRAP_BATCH):
                batch = wrapped[start : start + REWRAP_BATCH]
                answer = client.secrets.transit.rewrap_data(
                    self._name,
                    ciphertext=None,
                    batch_input=[{"ciphertext": w.ciphertext.decode("ascii")} for w in batch],
                    mount_point=self._mount,
                )["data"]["batch_results"]
                if len(answer) != len(batch):
                    raise errors.BackendError(
                        f"{self.uri}: rewrap answered {len(answer)} of {len(batch)}"
                    )
                failed = [(start + i, r["error"]) for i, r in enumerate(answer) if r.get("error")]
                if failed:
                    index, error = failed[0]
                    raise errors.IntegrityError(
                        f"{self.uri}: {len(failed)} of {len(wrapped)} wrapped keys cannot be "
                        f"re-wrapped (first: item {index}: {str(error)[:120]}); nothing was "
                        "re-wrapped in this batch"
                    )
                for r in answer:
                    ciphertext = str(r["ciphertext"]).encode("ascii")
                    result.append(
                        WrappedKey(self.uri, _version_of(ciphertext, self.uri), ciphertext)
                    )
        return result

    def rotate(self) -> int:
        with self._client("rotate") as (client, settings):
            before = int(self._read_or_missing(client, settings)["latest_version"])
            client.secrets.transit.rotate_key(self._name, mount_point=self._mount)
            after = int(self._read(client)["latest_version"])
        if after <= before:
            raise errors.BackendError(
                f"{self.uri}: rotation did not add a version ({before} -> {after})"
            )
        return after

    def retire_versions_below(self, version: int) -> None:
        """Raise min_decryption_version (and min_encryption_version, which trim requires) to
        ``version``, re-wrap the creation sentinel so the destruction proof keeps working, then
        ``trim`` the older versions: keys wrapped under them can never be unwrapped again."""
        with self._client("retire versions of") as (client, settings):
            data = self._read_or_missing(client, settings)
            latest = int(data["latest_version"])
            if not 1 <= version <= latest:
                raise errors.InputError(
                    f"{self.uri}: cannot retire versions below {version}: versions are 1..{latest}"
                )
            record = self._record(client, settings)
            sentinel_version = int((record or {}).get("sentinel_version") or 0)
            if record and record.get("sentinel_ciphertext") and sentinel_version < version:
                rewrapped = client.secrets.transit.rewrap_data(
                    self._name,
                    ciphertext=record["sentinel_ciphertext"],
                    mount_point=self._mount,
                )["data"]["ciphertext"]
                record["sentinel_ciphertext"] = rewrapped
                record["sentinel_version"] = _version_of(rewrapped.encode("ascii"), self.uri)
                self._write_record(client, settings, record)
            config: dict[str, Any] = {}
            if int(data["min_decryption_version"]) < version:
                config["min_decryption_version"] = version
            if int(data.get("min_encryption_version") or 0) < version:
                config["min_encryption_version"] = version
            if config:
                self._set_config(client, **config)
            if int(data.get("min_available_version") or 0) < version:
                client.secrets.transit.trim_key(
                    self._name, min_version=version, mount_point=self._mount
                )

    # -- destruction

    def destroy(self) -> KeyDestruction:
        """Cryptographic erase, proved.

        Before deleting, every check must pass (the creation sentinel unwraps to its recorded
        digest; a fresh sentinel is wrapped under the latest version); anything unexpected stops
        before deletion. After ``deletion_allowed=true`` and the delete: the key must not read,
        must not be listed, and neither sentinel may unwrap. Running it again on a destroyed key
        re-checks and returns the same kind of evidence."""
        with self._client("destroy") as (client, settings):
            record = self._record(client, settings)
            try:
                data: dict[str, Any] | None = self._read(client)
            except hvac_errors.InvalidPath:
                data = None
            if data is None:
                if not record or record.get("status") not in ("destroying", "destroyed"):
                    raise errors.NotFoundError(
                        f"no transit key {self.uri} at Vault {settings.addr}, and no record "
                        "that Sundown destroyed it"
                    )
                if record.get("status") == "destroying":
                    # Interrupted after the delete, before the record said so: finish it.
                    record["status"] = "destroyed"
                    record.setdefault("destroyed_at", _now().isoformat())
                    self._write_record(client, settings, record)
                return self._verify_destroyed(client, settings, record, rerun=True)
            checks: dict[str, str] = {}
            kind = "signing" if data.get("supports_signing") else "kek"
            latest = int(data["latest_version"])
            sentinels: list[str] = []
            if kind == "kek":
                if record and record.get("sentinel_ciphertext"):
                    ciphertext = str(record["sentinel_ciphertext"])
                    plaintext = base64.b64decode(
                        client.secrets.transit.decrypt_data(
                            self._name, ciphertext=ciphertext, mount_point=self._mount
                        )["data"]["plaintext"]
                    )
                    if hashlib.sha256(plaintext).hexdigest() != record.get("sentinel_sha256"):
                        raise errors.IntegrityError(
                            f"{self.uri}: the creation sentinel unwraps to the wrong value; "
                            "refusing to destroy"
                        )
                    checks["creation sentinel before delete"] = "unwrapped, digest matches record"
                    sentinels.append(ciphertext)
                else:
                    checks["creation sentinel before delete"] = (
                        "absent: key not created by Sundown; a pre-delete sentinel is used"
                    )
                _, fresh, version = self._datakey(client)
                checks["pre-delete sentinel"] = f"wrapped under version {version}"
                sentinels.append(fresh.decode("ascii"))
            record = dict(record or {"uri": self.uri, "kind": kind, "algorithm": data["type"]})
            # Copies of the material Vault may have let out: fixed for the certificate before
            # the key is deleted (Vault never turns either switch off again).
            checks["exportable"] = str(bool(data.get("exportable"))).lower()
            checks["allow_plaintext_backup"] = str(bool(data.get("allow_plaintext_backup"))).lower()
            record.update(
                {
                    "status": "destroying",
                    "exportable": bool(data.get("exportable")),
                    "allow_plaintext_backup": bool(data.get("allow_plaintext_backup")),
                    "key_type": str(data.get("type")),
                    "latest_version": latest,
                    "min_available_version": int(data.get("min_available_version") or 0),
                    "destroy_sentinels": sentinels,
                    "pre_delete_checks": checks,
                }
            )
            self._write_record(client, settings, record)
            self._set_config(client, deletion_allowed=True)
            client.secrets.transit.delete_key(self._name, mount_point=self._mount)
            record["status"] = "destroyed"
            record["destroyed_at"] = _now().isoformat()
            evidence = self._verify_destroyed(client, settings, record, rerun=False)
            record["checks"] = evidence.checks
            record["verified"] = evidence.verified
            self._write_record(client, settings, record)
            return evidence

    def _verify_destroyed(
        self,
        client: hvac.Client,
        settings: VaultSettings,
        record: dict[str, Any],
        *,
        rerun: bool,
    ) -> KeyDestruction:
        checks: dict[str, str] = dict(record.get("pre_delete_checks") or {})
        ok = True
        try:
            self._read(client)
            checks["read key after delete"] = "FAILED: the key still reads"
            ok = False
        except hvac_errors.InvalidPath:
            checks["read key after delete"] = "404 not found"
        try:
            listed = client.secrets.transit.list_keys(mount_point=self._mount)["data"]["keys"]
        except hvac_errors.InvalidPath:
            listed = []
        if self._name in listed:
            checks["list keys after delete"] = "FAILED: the key is still listed"
            ok = False
        else:
            checks["list keys after delete"] = "not listed"
        sentinels = [str(s) for s in record.get("destroy_sentinels") or []]
        if record.get("kind") == "kek" and not sentinels:
            checks["sentinel after delete"] = "FAILED: no sentinel recorded"
            ok = False
        for index, ciphertext in enumerate(sentinels):
            name = "creation sentinel" if index == 0 and len(sentinels) == 2 else "sentinel"
            name = f"{name} #{index + 1} after delete"
            try:
                client.secrets.transit.decrypt_data(
                    self._name, ciphertext=ciphertext, mount_point=self._mount
                )
                checks[name] = "FAILED: still unwraps"
                ok = False
            except hvac_errors.InvalidRequest as exc:
                checks[name] = f"does not unwrap ({vault_messages(exc)})"
        if record.get("kind") == "signing":
            try:
                client.secrets.transit.sign_data(
                    self._name,
                    hash_input=_b64(hashlib.sha256(b"sundown destroy check").digest()),
                    hash_algorithm="sha2-256",
                    prehashed=True,
                    mount_point=self._mount,
                )
                checks["sign after delete"] = "FAILED: still signs"
                ok = False
            except (hvac_errors.InvalidRequest, hvac_errors.InvalidPath) as exc:
                checks["sign after delete"] = f"refused ({vault_messages(exc)})"
        if rerun:
            checks["re-run"] = "key already destroyed; checks repeated"
        latest = int(record.get("latest_version") or 0)
        trimmed = int(record.get("min_available_version") or 0)
        method = f"transit key deleted after deletion_allowed=true (type {record.get('algorithm')})"
        if trimmed > 1:
            method += f"; versions 1..{trimmed - 1} had been trimmed before"
        destroyed_at = record.get("destroyed_at")
        exportable = record.get("exportable")
        backup = record.get("allow_plaintext_backup")
        return KeyDestruction(
            uri=self.uri,
            versions_destroyed=tuple(range(1, latest + 1)),
            destroyed_at=datetime.fromisoformat(destroyed_at) if destroyed_at else _now(),
            method=method,
            checks=checks,
            verified=ok,
            exportable=bool(exportable) if exportable is not None else None,
            allow_plaintext_backup=bool(backup) if backup is not None else None,
            limits=LIMITS,
        )

    def verify_destroyed(self) -> KeyDestruction:
        """The proof again, from Vault (the key must not read, not be listed, and no recorded
        sentinel may decrypt), deleting nothing. Sundown's record only says which sentinels to
        try; it is never the proof."""
        with self._client("verify destruction of") as (client, settings):
            record = self._record(client, settings) or {}
            return self._verify_destroyed(client, settings, record, rerun=False)


# ---------------------------------------------------------------------------------------------
# The signer


class VaultSigner:
    """A transit ``ecdsa-p256`` key as a :class:`sundown.keys.Signer`, pinned to the version that
    was latest when opened, so the signature and the exported public key always match."""

    def __init__(self, uri: str, settings: VaultSettings | None = None) -> None:
        self._key = VaultTransitKey(uri, settings)
        with self._key._client("open signing key") as (client, settings_):
            data = self._key._read_or_missing(client, settings_)
        if data.get("type") != SIGNING_TYPE:
            raise errors.InputError(
                f"{self._key.uri} is a {data.get('type')} key, not an {SIGNING_TYPE} signing key"
            )
        self._version = int(data["latest_version"])
        pem = str(data["keys"][str(self._version)]["public_key"]).encode("ascii")
        public = serialization.load_pem_public_key(pem)
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise errors.BackendError(f"{self._key.uri}: Vault returned a non-EC public key")
        self._public = public
        self._pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def uri(self) -> str:
        return self._key.uri

    @property
    def version(self) -> int:
        return self._version

    @property
    def key_id(self) -> str:
        return f"{self._key.uri}#v{self._version}"

    def public_key_pem(self) -> bytes:
        return self._pem

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 over SHA-256(message): the digest is sent (``prehashed``), never the
        message; the DER signature is checked against the public key before it is returned."""
        digest = hashlib.sha256(message).digest()
        with self._key._client("sign with") as (client, settings):
            try:
                answer = client.secrets.transit.sign_data(
                    self._key._name,
                    hash_input=_b64(digest),
                    key_version=self._version,
                    hash_algorithm="sha2-256",
                    prehashed=True,
                    marshaling_algorithm="asn1",
                    mount_point=self._key._mount,
                )["data"]
            except hvac_errors.InvalidRequest as exc:
                if "not found" in vault_messages(exc):
                    self._key._read_or_missing(client, settings)
                raise
        text = str(answer["signature"])
        prefix = f"vault:v{self._version}:"
        if not text.startswith(prefix):
            raise errors.BackendError(
                f"{self.uri}: signature made with another version than {prefix}"
            )
        signature = base64.b64decode(text[len(prefix) :])
        try:
            self._public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise errors.IntegrityError(
                f"{self.uri}: Vault's signature does not verify with its public key"
            ) from None
        return signature


# ---------------------------------------------------------------------------------------------
# Module functions for sundown.registry


def open_key_service(uri: str) -> VaultTransitKey:
    return VaultTransitKey(uri)


def key_for_destruction(uri: str) -> VaultTransitKey:
    return VaultTransitKey(uri)


def open_signer(uri: str) -> VaultSigner:
    return VaultSigner(uri)


def create_key(uri: str, *, signing: bool = False) -> KeyInfo:
    return VaultTransitKey(uri).create(signing=signing)
