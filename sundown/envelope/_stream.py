"""Tink's AES256_GCM_HKDF streaming AEAD, built on ``cryptography`` primitives.

Wire format (Tink ``AesGcmHkdfStreamingKey`` with derived_key_size 32, hkdf_hash_type SHA256;
the ``AES256_GCM_HKDF_1MB`` template uses a ciphertext segment size of 1 MiB)::

    ciphertext = header || segment_0 || segment_1 || ... || segment_(n-1)
    header     = 0x28 (its own length, 40) || salt (32 bytes) || nonce_prefix (7 bytes)
    key        = HKDF-SHA256(ikm=DEK, salt=salt, info=associated_data, length=32)
    segment_i  = AES-256-GCM(key, nonce_i, plaintext_i, aad="") (ciphertext || 16-byte tag)
    nonce_i    = nonce_prefix || uint32_be(i) || (0x01 if i == n-1 else 0x00)

Every segment holds ``segment_size`` ciphertext bytes except the first, which is shorter by the
header (so header plus first segment fill one segment) and the last, which may be shorter; the
last segment is never empty of its tag, and an empty plaintext is one segment of 16 bytes.

This module is the machinery only; :mod:`sundown.envelope` is the API to use.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sundown.errors import InputError, IntegrityError

KEY_SIZE = 32
"""Size of the data key and of the derived AES-256 key."""
SALT_SIZE = KEY_SIZE
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
HEADER_SIZE = 1 + SALT_SIZE + NONCE_PREFIX_SIZE  # 40
SEGMENT_SIZE = 1 << 20
"""Ciphertext segment size of the AES256_GCM_HKDF_1MB template."""
MIN_SEGMENT_SIZE = HEADER_SIZE + TAG_SIZE + 1  # the first segment must hold >= 1 byte
MAX_SEGMENT_SIZE = (1 << 31) - 1
MAX_SEGMENTS = (1 << 32) - 1  # segment indices 0 .. 2**32 - 2, as Tink allows

_NONCE_TAIL = struct.Struct(">IB")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _fill(source: Readable, buf: bytearray, size: int) -> int:
    """Read up to ``size`` bytes into ``buf[:size]``: stops early only at end of stream."""
    view = memoryview(buf)
    readinto = getattr(source, "readinto", None)
    got = 0
    while got < size:
        if readinto is not None:
            n = readinto(view[got:size])
            if n is None:
                raise InputError("non-blocking streams are not supported (read returned None)")
        else:
            chunk = source.read(size - got)
            n = len(chunk)
            view[got : got + n] = chunk
        if not n:
            break
        got += n
    return got


def ciphertext_size(plaintext_size: int, segment_size: int = SEGMENT_SIZE) -> int:
    """Exact ciphertext length for a plaintext of ``plaintext_size`` bytes."""
    first = segment_size - HEADER_SIZE - TAG_SIZE
    if plaintext_size <= first:
        segments = 1
    else:
        segments = 1 + -(-(plaintext_size - first) // (segment_size - TAG_SIZE))
    return HEADER_SIZE + plaintext_size + segments * TAG_SIZE


class StreamingAead:
    """AES256_GCM_HKDF streaming AEAD over one 32-byte data key (Tink wire format).

    ``encrypt_stream`` and ``decrypt_stream`` hold at most two segments in memory whatever the
    length of the stream. The key never appears in ``repr`` or in error messages.
    """

    __slots__ = ("_key", "segment_size")

    def __init__(self, key: bytes, segment_size: int = SEGMENT_SIZE) -> None:
        if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
            raise InputError(f"a data key must be {KEY_SIZE} bytes")
        if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
            raise InputError(
                f"segment size {segment_size} out of range [{MIN_SEGMENT_SIZE}, {MAX_SEGMENT_SIZE}]"
            )
        self._key = bytes(key)
        self.segment_size = segment_size

    def __repr__(self) -> str:
        return f"StreamingAead(segment_size={self.segment_size})"

    @property
    def first_plaintext_size(self) -> int:
        """Plaintext bytes in the first segment (and in a one-segment message at most)."""
        return self.segment_size - HEADER_SIZE - TAG_SIZE

    @property
    def plaintext_size(self) -> int:
        """Plaintext bytes in every later full segment."""
        return self.segment_size - TAG_SIZE

    def ciphertext_size(self, plaintext_size: int) -> int:
        """Exact ciphertext length for a plaintext of ``plaintext_size`` bytes."""
        return ciphertext_size(plaintext_size, self.segment_size)

    def _cipher(self, salt: bytes, associated_data: bytes) -> AESGCM:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=associated_data
        ).derive(self._key)
        return AESGCM(derived)

    def encrypt_stream(
        self,
        source: Readable,
        associated_data: bytes,
        *,
        salt: bytes | None = None,
        nonce_prefix: bytes | None = None,
    ) -> Iterator[bytes]:
        """Ciphertext chunks (the header, then one chunk per segment) of everything ``source``
        yields until end of stream. ``salt`` and ``nonce_prefix`` are random unless given, which
        only known-answer tests may do: reusing them with the same key and associated data
        reuses GCM nonces."""
        salt = os.urandom(SALT_SIZE) if salt is None else bytes(salt)
        prefix = os.urandom(NONCE_PREFIX_SIZE) if nonce_prefix is None else bytes(nonce_prefix)
        if len(salt) != SALT_SIZE or len(prefix) != NONCE_PREFIX_SIZE:
            raise InputError(f"salt must be {SALT_SIZE} bytes and nonce prefix {NONCE_PREFIX_SIZE}")
        return self._encrypt(source, bytes(associated_data), salt, prefix)

    def _encrypt(
        self, source: Readable, associated_data: bytes, salt: bytes, prefix: bytes
    ) -> Iterator[bytes]:
        aead = self._cipher(salt, associated_data)
        yield bytes((HEADER_SIZE,)) + salt + prefix
        full = self.plaintext_size
        cur, nxt = bytearray(full), bytearray(full)
        capacity = self.first_plaintext_size
        n = _fill(source, cur, capacity)
        index = 0
        while True:
            if n < capacity:
                last, m = True, 0
            else:  # a full segment: it is the last one only if nothing follows
                m = _fill(source, nxt, full)
                last = m == 0
            nonce = prefix + _NONCE_TAIL.pack(index, last)
            yield aead.encrypt(nonce, memoryview(cur)[:n], None)
            if last:
                return
            index += 1
            if index >= MAX_SEGMENTS:
                raise InputError("plaintext too long for the streaming format (2**32 segments)")
            cur, nxt, n, capacity = nxt, cur, m, full

    def decrypt_stream(
        self, source: Readable, associated_data: bytes
    ) -> Iterator[tuple[bytes, bool]]:
        """``(plaintext, is_last)`` per segment, each released only after its tag verified.
        Raises IntegrityError on any tampering, truncation, reordering, trailing data, wrong key
        or wrong associated data; then discard what was already released."""
        header = bytearray(HEADER_SIZE)
        if _fill(source, header, HEADER_SIZE) < HEADER_SIZE:
            raise IntegrityError("ciphertext truncated: shorter than the 40-byte header")
        if header[0] != HEADER_SIZE:
            raise IntegrityError(
                f"ciphertext header length byte is {header[0]}, expected {HEADER_SIZE} "
                "(not an AES256_GCM_HKDF stream, or tampered)"
            )
        salt = bytes(header[1 : 1 + SALT_SIZE])
        prefix = bytes(header[1 + SALT_SIZE :])
        aead = self._cipher(salt, bytes(associated_data))
        size = self.segment_size
        cur, nxt = bytearray(size), bytearray(size)
        capacity = size - HEADER_SIZE
        n = _fill(source, cur, capacity)
        index = 0
        while True:
            if n < capacity:
                last, m = True, 0
            else:
                m = _fill(source, nxt, size)
                last = m == 0
            if n < TAG_SIZE:
                raise IntegrityError(
                    f"ciphertext truncated: segment {index} is {n} bytes, shorter than its tag"
                )
            nonce = prefix + _NONCE_TAIL.pack(index, last)
            try:
                plaintext = aead.decrypt(nonce, memoryview(cur)[:n], None)
            except InvalidTag:
                raise IntegrityError(
                    f"ciphertext segment {index} failed authentication (tampered, truncated, "
                    "reordered, wrong key or wrong associated data)"
                ) from None
            yield plaintext, last
            if last:
                return
            index += 1
            if index >= MAX_SEGMENTS:
                raise IntegrityError("ciphertext has more segments than the format allows")
            cur, nxt, n, capacity = nxt, cur, m, size

    def encrypt(
        self,
        plaintext: bytes,
        associated_data: bytes,
        *,
        salt: bytes | None = None,
        nonce_prefix: bytes | None = None,
    ) -> bytes:
        """One-shot encryption of a small message (tests, vectors)."""
        import io

        return b"".join(
            self.encrypt_stream(
                io.BytesIO(plaintext), associated_data, salt=salt, nonce_prefix=nonce_prefix
            )
        )

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        """One-shot decryption of a small message (tests, vectors)."""
        import io

        chunks = self.decrypt_stream(io.BytesIO(ciphertext), associated_data)
        return b"".join(plaintext for plaintext, _ in chunks)
