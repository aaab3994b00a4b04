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

Encryption can hash the plaintext in the same pass (``encrypt_stream(digest=...)``): segment
``i`` is hashed on a worker thread while the caller's thread encrypts it and reads segment
``i + 1``. SHA-256 (``hashlib``) and AES-GCM (``cryptography``) both release the GIL on large
buffers, so on two free cores encrypt-and-hash runs about as fast as hashing alone. Three
plaintext buffers (``PIPELINE_DEPTH``) are all the pipeline holds: a buffer is refilled only after
the segment it held was hashed. A plaintext of one short segment is hashed inline.

This module is the machinery only; :mod:`sundown.envelope` is the API to use.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Generator, Iterator
from queue import SimpleQueue
from threading import Thread
from types import TracebackType
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

HASH_THREAD_NAME = "sundown-digest"
"""Name of the thread that hashes the plaintext while ``encrypt_stream`` encrypts it."""
PIPELINE_DEPTH = 3
"""Plaintext buffers of an encryption that hashes on a worker thread: the reader may run up to
two segments ahead of the hasher, which absorbs scheduling jitter on a busy machine."""

_NONCE_TAIL = struct.Struct(">IB")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Digest(Protocol):
    """What ``encrypt_stream`` feeds the plaintext to, e.g. ``hashlib.sha256()``."""

    def update(self, data: memoryview, /) -> None: ...


class _SegmentHasher:
    """Feeds plaintext segments to ``digest.update`` in order, on one worker thread when
    ``background`` (else inline, as for a message of one short segment: no thread is worth it).

    ``add(buf, n)`` queues ``buf[:n]``; ``wait(buf)`` returns once the segment last queued from
    ``buf`` is hashed, so that ``buf`` may be refilled; ``join()`` waits for every queued
    segment. Both raise the worker's error, if any. Leaving the ``with`` block, normally or not,
    drops what is still queued and joins the thread, so none outlives the stream.
    """

    __slots__ = ("_digest", "_done", "_hashed", "_queued", "_stop", "_thread", "_ticket", "_todo")

    def __init__(self, digest: Digest | None, *, background: bool) -> None:
        self._digest = digest
        self._todo: SimpleQueue[memoryview | None] = SimpleQueue()
        self._done: SimpleQueue[BaseException | None] = SimpleQueue()  # one per segment queued
        self._queued = self._hashed = 0
        self._ticket: dict[int, int] = {}  # id(buffer) -> number of its last queued segment
        self._stop = False
        self._thread: Thread | None = None
        if background and digest is not None:
            self._thread = Thread(
                target=self._work, args=(digest,), name=HASH_THREAD_NAME, daemon=True
            )
            self._thread.start()

    def _work(self, digest: Digest) -> None:
        error: BaseException | None = None
        while (view := self._todo.get()) is not None:
            if error is None and not self._stop:  # after an error or a stop, only acknowledge
                try:
                    digest.update(view)
                except BaseException as exc:  # handed to the caller's thread
                    error = exc
            self._done.put(error)

    def __enter__(self) -> _SegmentHasher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is not None:
            self._stop = True
            self._todo.put(None)
            self._thread.join()

    def add(self, buf: bytearray, n: int) -> None:
        if self._digest is None or not n:
            return
        if self._thread is None:
            self._digest.update(memoryview(buf)[:n])
            return
        self._queued += 1
        self._ticket[id(buf)] = self._queued
        self._todo.put(memoryview(buf)[:n])

    def _wait_for(self, ticket: int) -> None:
        while self._hashed < ticket:
            error = self._done.get()
            self._hashed += 1
            if error is not None:
                raise error

    def wait(self, buf: bytearray) -> None:
        self._wait_for(self._ticket.pop(id(buf), 0))

    def join(self) -> None:
        self._wait_for(self._queued)


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

    ``encrypt_stream`` and ``decrypt_stream`` hold at most two plaintext segments in memory
    whatever the length of the stream, three when ``encrypt_stream`` hashes on a worker thread
    (plus the chunk being handed out). The key never appears in ``repr`` or in error messages.
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
        digest: Digest | None = None,
        hash_thread: bool = True,
    ) -> Generator[bytes, None, None]:
        """Ciphertext chunks (the header, then one chunk per segment) of everything ``source``
        yields until end of stream. ``salt`` and ``nonce_prefix`` are random unless given, which
        only known-answer tests may do: reusing them with the same key and associated data
        reuses GCM nonces.

        ``digest`` (e.g. ``hashlib.sha256()``) is updated with the plaintext, in order, on a
        worker thread overlapping the encryption (inline if not ``hash_thread``: for callers
        that already keep every core busy); it is complete when the iteration ends. An error of
        either thread ends the iteration with that error, and closing the iterator early (or an
        error) leaves no thread running."""
        salt = os.urandom(SALT_SIZE) if salt is None else bytes(salt)
        prefix = os.urandom(NONCE_PREFIX_SIZE) if nonce_prefix is None else bytes(nonce_prefix)
        if len(salt) != SALT_SIZE or len(prefix) != NONCE_PREFIX_SIZE:
            raise InputError(f"salt must be {SALT_SIZE} bytes and nonce prefix {NONCE_PREFIX_SIZE}")
        return self._encrypt(source, bytes(associated_data), salt, prefix, digest, hash_thread)

    def _encrypt(
        self,
        source: Readable,
        associated_data: bytes,
        salt: bytes,
        prefix: bytes,
        digest: Digest | None,
        hash_thread: bool,
    ) -> Generator[bytes, None, None]:
        aead = self._cipher(salt, associated_data)
        yield bytes((HEADER_SIZE,)) + salt + prefix
        full = self.plaintext_size
        buffers = [bytearray(full)]
        capacity = self.first_plaintext_size
        n = _fill(source, buffers[0], capacity)
        # Only when more may follow is a thread worth it.
        background = hash_thread and digest is not None and n == capacity
        buffers += [bytearray(full) for _ in range((PIPELINE_DEPTH if background else 2) - 1)]
        with _SegmentHasher(digest, background=background) as hasher:
            cur = buffers[0]
            hasher.add(cur, n)
            index = 0
            while True:
                if n < capacity:
                    last, m = True, 0
                else:  # a full segment: it is the last one only if nothing follows
                    nxt = buffers[(index + 1) % len(buffers)]
                    hasher.wait(nxt)  # its previous segment is hashed: it may be refilled
                    m = _fill(source, nxt, full)
                    last = m == 0
                    hasher.add(nxt, m)
                nonce = prefix + _NONCE_TAIL.pack(index, last)
                yield aead.encrypt(nonce, memoryview(cur)[:n], None)
                if last:
                    hasher.join()
                    return
                index += 1
                if index >= MAX_SEGMENTS:
                    raise InputError("plaintext too long for the streaming format (2**32 segments)")
                cur, n, capacity = nxt, m, full

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
