"""An in-memory KeyService for tests of the envelope format (not a connector: never shipped).

KEK versions are random AES-256 keys held in a dict; a wrapped DEK is ``nonce || AES-GCM(DEK)``
with the key URI and version as associated data, so a wrapped key altered, moved to another key
or to another version fails to unwrap with IntegrityError, as the protocol demands.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sundown.errors import IntegrityError, KeyDestroyedError, NotFoundError
from sundown.keys import KeyDestruction, KeyInfo, KeyService, WrappedKey


class MemoryKeyService:
    def __init__(self, uri: str = "memory://test-kek") -> None:
        self._uri = uri
        self._versions: dict[int, bytes] = {1: AESGCM.generate_key(256)}
        self._min_version = 1
        self._destroyed = False
        self._lock = threading.Lock()
        self.calls: list[str] = []  # operation names, for tests that count requests

    @property
    def uri(self) -> str:
        return self._uri

    def _alive(self) -> None:
        if self._destroyed:
            raise KeyDestroyedError(f"key {self._uri} was destroyed")

    @property
    def latest(self) -> int:
        return max(self._versions)

    def info(self) -> KeyInfo:
        self._alive()
        return KeyInfo(
            uri=self._uri,
            kind="kek",
            algorithm="aes256-gcm96",
            latest_version=self.latest,
            min_decryption_version=self._min_version,
            versions=tuple(sorted(self._versions)),
        )

    def _wrap(self, dek: bytes, version: int) -> WrappedKey:
        nonce = os.urandom(12)
        aad = f"{self._uri}#{version}".encode()
        ct = AESGCM(self._versions[version]).encrypt(nonce, dek, aad)
        return WrappedKey(self._uri, version, nonce + ct)

    def new_data_key(self) -> tuple[bytes, WrappedKey]:
        with self._lock:
            self._alive()
            self.calls.append("new_data_key")
            dek = AESGCM.generate_key(256)
            return dek, self._wrap(dek, self.latest)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        with self._lock:
            self._alive()
            self.calls.append("unwrap")
            if wrapped.key_uri != self._uri:
                raise IntegrityError(f"wrapped key belongs to {wrapped.key_uri}, not {self._uri}")
            kek = self._versions.get(wrapped.key_version)
            if kek is None or wrapped.key_version < self._min_version:
                raise NotFoundError(f"{self._uri} has no version {wrapped.key_version}")
            aad = f"{self._uri}#{wrapped.key_version}".encode()
            try:
                return AESGCM(kek).decrypt(wrapped.ciphertext[:12], wrapped.ciphertext[12:], aad)
            except (InvalidTag, ValueError):
                raise IntegrityError(f"wrapped key for {self._uri} failed to unwrap") from None

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey]:
        deks = [self.unwrap(w) for w in wrapped]
        with self._lock:
            self.calls.append("rewrap")
            return [self._wrap(dek, self.latest) for dek in deks]

    def rotate(self) -> int:
        with self._lock:
            self._alive()
            version = self.latest + 1
            self._versions[version] = AESGCM.generate_key(256)
            return version

    def retire_versions_below(self, version: int) -> None:
        with self._lock:
            self._alive()
            self._min_version = version
            for v in [v for v in self._versions if v < version]:
                del self._versions[v]

    def destroy(self) -> KeyDestruction:
        with self._lock:
            versions = tuple(sorted(self._versions))
            self._versions.clear()
            self._destroyed = True
        return KeyDestruction(
            uri=self._uri,
            versions_destroyed=versions,
            destroyed_at=datetime.now(UTC),
            method="in-memory key dropped",
            verified=True,
        )

    def verify_destroyed(self) -> KeyDestruction:
        with self._lock:
            gone = self._destroyed and not self._versions
        return KeyDestruction(
            uri=self._uri,
            versions_destroyed=(),
            destroyed_at=datetime.now(UTC),
            method="in-memory key dropped",
            checks={"versions in memory": "none" if gone else "still held"},
            verified=gone,
        )


def _check_protocol() -> KeyService:
    return MemoryKeyService()
