"""Key-service and signer protocols, implemented by connectors.

A *key service* holds one key-encryption key (KEK) with numbered versions and wraps fresh
256-bit data keys (DEKs) for the envelope format. Implementations: the local keyring
(``local://NAME``, ``connectors.keyring``) and Vault/OpenBao transit (``vault://MOUNT/KEY``,
``connectors.vault``).

A *signer* holds an ECDSA P-256 private key and signs messages with ECDSA over SHA-256, returning
a DER (ASN.1) signature, which is what DSSE, the OpenSSF model signing format and Sundown's
certificates use.

Neither protocol ever exposes key material of the KEK or of the signing key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class WrappedKey:
    """A DEK wrapped by a KEK version. ``ciphertext`` is opaque to everyone but the key service
    that made it (Vault: the ``vault:vN:...`` string as bytes)."""

    key_uri: str
    key_version: int
    ciphertext: bytes


@dataclass(frozen=True)
class KeyInfo:
    """Public facts about a key: never key material."""

    uri: str
    kind: str  # "kek" or "signing"
    algorithm: str  # e.g. "aes256-gcm96", "ecdsa-p256"
    latest_version: int
    min_decryption_version: int
    versions: tuple[int, ...]  # versions that still exist (not trimmed)
    # Copies of the key material the key service itself may have let out (Vault transit's
    # ``exportable`` and ``allow_plaintext_backup``); None where the service has no such switch.
    exportable: bool | None = None
    allow_plaintext_backup: bool | None = None


@dataclass(frozen=True)
class KeyDestruction:
    """Evidence that a key was destroyed (cryptographic erase), for the certificate."""

    uri: str
    versions_destroyed: tuple[int, ...]
    destroyed_at: datetime
    method: str  # what was done, e.g. "transit key deleted after deletion_allowed=true"
    checks: dict[str, str] = field(default_factory=dict)  # check name -> observed result
    verified: bool = False  # True only when every check proved the key material gone
    # Seen on the key before it was deleted (None: the service has no such switch, or the key
    # was already gone when this run looked).
    exportable: bool | None = None
    allow_plaintext_backup: bool | None = None
    # What deleting the key through this service does not reach (e.g. unlinked files on a
    # journaling filesystem, snapshots, backups): stated on the certificate, never hidden.
    limits: str = ""
    # A key service that destroys at the end of a window (cloud KMS: AWS ScheduleKeyDeletion,
    # Cloud KMS DESTROY_SCHEDULED, Key Vault soft delete): the date the service itself reported,
    # until which the key can still be restored. None: destroyed at once, or reported gone.
    pending_until: datetime | None = None

    @property
    def ce_claimable(self) -> bool:
        """Whether cryptographic erase may be claimed for data under this key: the destruction
        was verified from the key material, and the key service never allowed the material out
        (an exportable key or a plaintext backup may survive anywhere)."""
        return self.verified and not self.exportable and not self.allow_plaintext_backup


@runtime_checkable
class KeyService(Protocol):
    """A key-encryption key with versions."""

    @property
    def uri(self) -> str: ...

    def info(self) -> KeyInfo:
        """Public facts; raises NotFoundError / KeyDestroyedError when the key is gone."""
        ...

    def new_data_key(self) -> tuple[bytes, WrappedKey]:
        """A fresh random 32-byte DEK and the same DEK wrapped under the latest KEK version."""
        ...

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        """The DEK. IntegrityError if the wrapped key was altered or belongs to another key;
        KeyDestroyedError if the key was destroyed; NotFoundError / IntegrityError for a version
        below the minimum decryption version."""
        ...

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey]:
        """The same DEKs wrapped under the latest version, in order, without exposing them."""
        ...

    def rotate(self) -> int:
        """Add a new version that wraps from now on; returns its number."""
        ...

    def retire_versions_below(self, version: int) -> None:
        """Raise the minimum decryption version to ``version`` and delete the older versions,
        so keys wrapped under them stop unwrapping."""
        ...

    def destroy(self) -> KeyDestruction:
        """Cryptographic erase: delete every version, then prove it (read fails, a sentinel
        made at creation no longer unwraps). Idempotent: on a key whose destruction was
        interrupted it finishes the deletion; on a destroyed key it proves it again."""
        ...

    def verify_destroyed(self) -> KeyDestruction:
        """Prove, from the key material itself and deleting nothing, that the key is gone: no
        key material remains where the service keeps it (files, the transit key) and no
        recorded sentinel unwraps. A tombstone or a record saying "destroyed" is never the
        proof. ``verified`` is False when anything of the key still answers."""
        ...


@runtime_checkable
class ChosenPendingWindow(Protocol):
    """Capability of a key service whose deletion waits a window the caller chooses (AWS KMS
    ScheduleKeyDeletion, 7-30 days): :meth:`KeyService.destroy` with that window."""

    def destroy_after(self, pending_days: int) -> KeyDestruction: ...


@runtime_checkable
class KeyGrants(Protocol):
    """Capability of a key service with grants (AWS KMS): list them and revoke some, each
    revocation proved by the grant no longer being listed."""

    def grant_ids(self) -> list[str]:
        """Ids of the grants on the key now."""
        ...

    def revoke_grants(self, ids: Sequence[str]) -> dict[str, str]:
        """Revoke each grant (one absent already is recorded as such); check name -> observed.
        Raises when a grant is still listed afterwards."""
        ...


@runtime_checkable
class Signer(Protocol):
    """An ECDSA P-256 signing key."""

    @property
    def key_id(self) -> str:
        """Stable identifier of the public key (URI plus version, or a key fingerprint)."""
        ...

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 over SHA-256(message), DER-encoded signature."""
        ...

    def public_key_pem(self) -> bytes:
        """The public key, SubjectPublicKeyInfo PEM."""
        ...
