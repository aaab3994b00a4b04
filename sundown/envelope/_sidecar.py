"""The artifact identity bound as associated data, and the sidecar JSON next to a ciphertext."""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from dataclasses import dataclass, replace
from typing import Any

from sundown.errors import InputError, IntegrityError
from sundown.keys import WrappedKey

from ._stream import SEGMENT_SIZE, ciphertext_size

FORMAT_VERSION = 1
ALGORITHM = "AES256_GCM_HKDF_1MB"
SIDECAR_SUFFIX = ".sidecar.json"
AD_DOMAIN = b"sundown.envelope.ad.v1"
"""First bytes of every associated data: ties the encoding to this format version."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS = (
    "format_version",
    "algorithm",
    "key_uri",
    "key_version",
    "wrapped_dek",
    "associated_data",
    "plaintext_size",
    "plaintext_sha256",
    "ciphertext_size",
)
_AD_FIELDS = ("system", "path", "version")


@dataclass(frozen=True)
class Artifact:
    """What a ciphertext is bound to: its system, its path and its version.

    ``path`` is the artifact's logical path (e.g. ``weights/model.safetensors``), independent of
    where the ciphertext is stored; ``version`` is the artifact version (e.g. a model version or
    deployment id). A ciphertext decrypts only under exactly these three values.
    """

    system: str
    path: str
    version: str

    def __post_init__(self) -> None:
        for name in _AD_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise InputError(f"artifact {name} must be a non-empty string, got {value!r}")
            if "\x00" in value:
                raise InputError(f"artifact {name} {value!r} contains a NUL character")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(f"artifact {name} {value!r} is not valid Unicode") from exc

    def __str__(self) -> str:
        return f"system {self.system!r}, path {self.path!r}, version {self.version!r}"

    def associated_data(self) -> bytes:
        """Canonical encoding: ``AD_DOMAIN`` then, for system, path and version in this order,
        a 4-byte big-endian length and the UTF-8 bytes."""
        out = [AD_DOMAIN]
        for name in _AD_FIELDS:
            raw = getattr(self, name).encode("utf-8")
            out.append(struct.pack(">I", len(raw)))
            out.append(raw)
        return b"".join(out)

    def to_json(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in _AD_FIELDS}


def sidecar_key(key: str) -> str:
    """Where the sidecar of the ciphertext object ``key`` lives: ``<key>.sidecar.json``."""
    if not key or key.endswith("/"):
        raise InputError(f"{key!r} names no object")
    return key + SIDECAR_SUFFIX


@dataclass(frozen=True)
class Sidecar:
    """Everything needed to decrypt and check one ciphertext, except the KEK itself.

    The wrapped DEK is safe to store: only the key service can unwrap it. Rotation replaces
    ``key_version`` and ``wrapped_dek`` (:func:`sundown.envelope.rewrap`); the ciphertext never
    changes.
    """

    key_uri: str
    key_version: int
    wrapped_dek: bytes
    artifact: Artifact
    plaintext_size: int
    plaintext_sha256: str  # lowercase hex
    ciphertext_size: int
    algorithm: str = ALGORITHM
    format_version: int = FORMAT_VERSION

    def __repr__(self) -> str:
        return (
            f"Sidecar(key_uri={self.key_uri!r}, key_version={self.key_version}, "
            f"artifact={self.artifact!r}, plaintext_size={self.plaintext_size}, "
            f"plaintext_sha256={self.plaintext_sha256!r})"
        )

    @property
    def wrapped_key(self) -> WrappedKey:
        return WrappedKey(self.key_uri, self.key_version, self.wrapped_dek)

    @property
    def associated_data(self) -> bytes:
        return self.artifact.associated_data()

    def with_wrapped_key(self, wrapped: WrappedKey) -> Sidecar:
        """The same sidecar with a re-wrapped DEK (rotation)."""
        return replace(
            self,
            key_uri=wrapped.key_uri,
            key_version=wrapped.key_version,
            wrapped_dek=wrapped.ciphertext,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "algorithm": self.algorithm,
            "key_uri": self.key_uri,
            "key_version": self.key_version,
            "wrapped_dek": base64.b64encode(self.wrapped_dek).decode("ascii"),
            "associated_data": self.artifact.to_json(),
            "plaintext_size": self.plaintext_size,
            "plaintext_sha256": self.plaintext_sha256,
            "ciphertext_size": self.ciphertext_size,
        }

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys, 2-space indent, trailing newline)."""
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> Sidecar:
        """Parse and check a sidecar strictly. IntegrityError for anything malformed, missing,
        unknown or out of range: a sidecar that does not check out is treated as tampered."""
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"sidecar is not valid JSON: {exc}") from None
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, obj: Any) -> Sidecar:
        def bad(problem: str) -> IntegrityError:
            return IntegrityError(f"sidecar rejected: {problem}")

        if not isinstance(obj, dict):
            raise bad("not a JSON object")
        missing = [f for f in _FIELDS if f not in obj]
        extra = sorted(set(obj) - set(_FIELDS))
        if missing or extra:
            raise bad(f"missing fields {missing}, unknown fields {extra}")
        if obj["format_version"] != FORMAT_VERSION or isinstance(obj["format_version"], bool):
            raise bad(f"format_version {obj['format_version']!r} (this Sundown reads 1)")
        if obj["algorithm"] != ALGORITHM:
            raise bad(f"algorithm {obj['algorithm']!r} (supported: {ALGORITHM})")
        for name in ("key_version", "plaintext_size", "ciphertext_size"):
            value = obj[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise bad(f"{name} must be a non-negative integer, got {value!r}")
        if obj["key_version"] < 1:
            raise bad(f"key_version must be >= 1, got {obj['key_version']}")
        if not isinstance(obj["key_uri"], str) or "://" not in obj["key_uri"]:
            raise bad(f"key_uri {obj['key_uri']!r} is not a key URL")
        if not isinstance(obj["plaintext_sha256"], str) or not _HEX64.fullmatch(
            obj["plaintext_sha256"]
        ):
            raise bad("plaintext_sha256 must be 64 lowercase hex digits")
        try:
            wrapped = base64.b64decode(obj["wrapped_dek"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise bad("wrapped_dek is not base64") from None
        if not wrapped:
            raise bad("wrapped_dek is empty")
        ad = obj["associated_data"]
        if not isinstance(ad, dict) or set(ad) != set(_AD_FIELDS):
            raise bad(f"associated_data must have exactly the fields {list(_AD_FIELDS)}")
        try:
            artifact = Artifact(**{name: ad[name] for name in _AD_FIELDS})
        except InputError as exc:
            raise bad(f"associated_data: {exc}") from None
        sidecar = cls(
            key_uri=obj["key_uri"],
            key_version=obj["key_version"],
            wrapped_dek=wrapped,
            artifact=artifact,
            plaintext_size=obj["plaintext_size"],
            plaintext_sha256=obj["plaintext_sha256"],
            ciphertext_size=obj["ciphertext_size"],
        )
        expected = ciphertext_size(sidecar.plaintext_size, SEGMENT_SIZE)
        if sidecar.ciphertext_size != expected:
            raise bad(
                f"ciphertext_size {sidecar.ciphertext_size} does not match plaintext_size "
                f"{sidecar.plaintext_size} (expected {expected})"
            )
        return sidecar
