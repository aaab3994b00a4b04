"""The envelope recipes: files, stores, sidecars, tampering, rotation, parallel encryption."""

from __future__ import annotations

import base64
import gc
import hashlib
import io
import json
import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from sundown import envelope
from sundown.envelope._stream import (
    HASH_THREAD_NAME,
    PIPELINE_DEPTH,
    StreamingAead,
    ciphertext_size,
)
from sundown.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    KeyDestroyedError,
    NotFoundError,
)
from sundown.keys import KeyService
from sundown.registry import open_store
from tests.memory_keys import MemoryKeyService

MIB = 1 << 20
ART = envelope.Artifact("fraud-detector", "weights/model.safetensors", "2025.06.1")


@pytest.fixture
def keys() -> MemoryKeyService:
    return MemoryKeyService()


def make_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_memory_key_service_implements_the_protocol(keys: MemoryKeyService) -> None:
    assert isinstance(keys, KeyService)


@pytest.mark.parametrize(
    "size", [0, 1, envelope.SEGMENT_SIZE - 56, envelope.SEGMENT_SIZE - 55, 3 * MIB + 7]
)
def test_file_round_trip_and_sidecar(tmp_path: Path, keys: MemoryKeyService, size: int) -> None:
    plaintext = make_file(tmp_path / "model", size)
    sidecar = envelope.encrypt_file(tmp_path / "model", tmp_path / "model.enc", keys, ART)

    assert sidecar.plaintext_sha256 == hashlib.sha256(plaintext).hexdigest()
    assert sidecar.plaintext_size == size
    assert sidecar.ciphertext_size == (tmp_path / "model.enc").stat().st_size
    assert sidecar.ciphertext_size == ciphertext_size(size)
    assert (sidecar.key_uri, sidecar.key_version, sidecar.artifact) == (keys.uri, 1, ART)
    on_disk = envelope.Sidecar.from_json((tmp_path / "model.enc.sidecar.json").read_bytes())
    assert on_disk == sidecar

    verified = envelope.decrypt_file(tmp_path / "model.enc", tmp_path / "out", keys, expect=ART)
    assert verified == sidecar
    assert (tmp_path / "out").read_bytes() == plaintext
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_sidecar_json_is_the_documented_schema(tmp_path: Path, keys: MemoryKeyService) -> None:
    make_file(tmp_path / "m", 10)
    envelope.encrypt_file(tmp_path / "m", tmp_path / "m.enc", keys, ART)
    obj = json.loads((tmp_path / "m.enc.sidecar.json").read_text())
    assert sorted(obj) == sorted(
        [
            "format_version",
            "algorithm",
            "key_uri",
            "key_version",
            "wrapped_dek",
            "associated_data",
            "plaintext_size",
            "plaintext_sha256",
            "ciphertext_size",
        ]
    )
    assert obj["format_version"] == 1
    assert obj["algorithm"] == "AES256_GCM_HKDF_1MB"
    assert obj["associated_data"] == {
        "system": "fraud-detector",
        "path": "weights/model.safetensors",
        "version": "2025.06.1",
    }
    assert envelope.sidecar_key("a/b.bin") == "a/b.bin.sidecar.json"


def test_each_artifact_gets_a_fresh_data_key(tmp_path: Path, keys: MemoryKeyService) -> None:
    make_file(tmp_path / "m", 1000)
    a = envelope.encrypt_file(tmp_path / "m", tmp_path / "a", keys, ART)
    b = envelope.encrypt_file(tmp_path / "m", tmp_path / "b", keys, ART)
    assert keys.calls.count("new_data_key") == 2
    assert keys.unwrap(a.wrapped_key) != keys.unwrap(b.wrapped_key)
    assert (tmp_path / "a").read_bytes() != (tmp_path / "b").read_bytes()
    assert a.plaintext_sha256 == b.plaintext_sha256


def test_associated_data_encoding_is_canonical_and_unambiguous() -> None:
    ad = envelope.Artifact("s", "p/q", "1").associated_data()
    assert ad == b"sundown.envelope.ad.v1" + b"\0\0\0\1s" + b"\0\0\0\3p/q" + b"\0\0\0\0011"
    # Moving a character from one field to the next changes the encoding.
    assert (
        envelope.Artifact("ab", "c", "1").associated_data()
        != envelope.Artifact("a", "bc", "1").associated_data()
    )
    for bad in [("", "p", "1"), ("s", "", "1"), ("s", "p", ""), ("s", "p\x00", "1")]:
        with pytest.raises(InputError):
            envelope.Artifact(*bad)


# --- tampering ---------------------------------------------------------------------------


@pytest.fixture
def encrypted(tmp_path: Path, keys: MemoryKeyService) -> tuple[Path, envelope.Sidecar, bytes]:
    plaintext = make_file(tmp_path / "model", 3 * MIB + 4321)  # four 1 MiB segments
    sidecar = envelope.encrypt_file(tmp_path / "model", tmp_path / "model.enc", keys, ART)
    return tmp_path / "model.enc", sidecar, plaintext


def _expect_integrity_error(enc: Path, keys: KeyService, **kwargs: Any) -> None:
    out = enc.parent / "plain.out"
    with pytest.raises(IntegrityError):
        envelope.decrypt_file(enc, out, keys, **kwargs)
    assert not out.exists(), "no plaintext may be left behind after a failed decryption"
    assert not [p for p in enc.parent.iterdir() if p.name.endswith(".tmp")]


def _segments(ciphertext: bytes) -> list[tuple[int, int]]:
    bounds, pos, size = [], 40, envelope.SEGMENT_SIZE - 40
    while pos < len(ciphertext):
        bounds.append((pos, min(pos + size, len(ciphertext))))
        pos, size = pos + size, envelope.SEGMENT_SIZE
    return bounds


@pytest.mark.parametrize(
    "position", [0, 1, 39, 40, 1000, envelope.SEGMENT_SIZE - 1, envelope.SEGMENT_SIZE + 17, -17, -1]
)
def test_any_flipped_bit_fails(
    encrypted: tuple[Path, envelope.Sidecar, bytes], keys: MemoryKeyService, position: int
) -> None:
    enc, _, _ = encrypted
    data = bytearray(enc.read_bytes())
    data[position] ^= 0x10
    enc.write_bytes(bytes(data))
    _expect_integrity_error(enc, keys)


@pytest.mark.parametrize(
    "mutation",
    [
        "drop-last-segment",
        "drop-last-byte",
        "header-only",
        "empty",
        "swap-segments",
        "repeat-segment",
        "append-byte",
    ],
)
def test_truncation_reordering_and_extension_fail(
    encrypted: tuple[Path, envelope.Sidecar, bytes], keys: MemoryKeyService, mutation: str
) -> None:
    enc, _, _ = encrypted
    ct = enc.read_bytes()
    seg = _segments(ct)
    (a1, b1), (a2, b2) = seg[1], seg[2]
    mutated = {
        "drop-last-segment": ct[: seg[-1][0]],
        "drop-last-byte": ct[:-1],
        "header-only": ct[:40],
        "empty": b"",
        "swap-segments": ct[:a1] + ct[a2:b2] + ct[a1:b1] + ct[b2:],
        "repeat-segment": ct[:b1] + ct[a1:b1] + ct[b1:],
        "append-byte": ct + b"\0",
    }[mutation]
    enc.write_bytes(mutated)
    _expect_integrity_error(enc, keys)


def _rewrite_sidecar(enc: Path, change: dict[str, Any]) -> None:
    path = Path(envelope.sidecar_key(str(enc)))
    obj = json.loads(path.read_text())
    for field, value in change.items():
        if field.startswith("ad."):
            obj["associated_data"][field[3:]] = value
        elif value is None:
            del obj[field]
        else:
            obj[field] = value
    path.write_text(json.dumps(obj))


@pytest.mark.parametrize(
    "change",
    [
        {"plaintext_sha256": "0" * 64},
        {"plaintext_size": 3 * MIB + 4320, "ciphertext_size": ciphertext_size(3 * MIB + 4320)},
        {"plaintext_size": 3 * MIB + 4322, "ciphertext_size": ciphertext_size(3 * MIB + 4322)},
        {"plaintext_size": 12},  # inconsistent with ciphertext_size
        {"ciphertext_size": 99},
        {"ad.system": "other-system"},
        {"ad.path": "weights/model.safetensors2"},
        {"ad.version": "2025.06.2"},
        {"format_version": 2},
        {"algorithm": "AES128_GCM_HKDF_1MB"},
        {"key_uri": "memory://another"},
        {"extra_field": 1},
        {"plaintext_sha256": None},
        {"wrapped_dek": "not base64!"},
        {"key_version": 0},
        {"key_version": True},
    ],
    ids=lambda c: ",".join(c),
)
def test_any_sidecar_change_fails(
    encrypted: tuple[Path, envelope.Sidecar, bytes], keys: MemoryKeyService, change: dict[str, Any]
) -> None:
    enc, _, _ = encrypted
    _rewrite_sidecar(enc, change)
    _expect_integrity_error(enc, keys)


def test_altered_wrapped_dek_or_key_version_fails(
    encrypted: tuple[Path, envelope.Sidecar, bytes], keys: MemoryKeyService
) -> None:
    enc, sidecar, _ = encrypted
    flipped = bytearray(sidecar.wrapped_dek)
    flipped[-1] ^= 1

    _rewrite_sidecar(enc, {"wrapped_dek": base64.b64encode(bytes(flipped)).decode()})
    _expect_integrity_error(enc, keys)
    _rewrite_sidecar(enc, {"wrapped_dek": base64.b64encode(sidecar.wrapped_dek).decode()})
    keys.rotate()
    _rewrite_sidecar(enc, {"key_version": 2})  # a version that exists but did not wrap it
    _expect_integrity_error(enc, keys)


def test_malformed_sidecar_fails(
    encrypted: tuple[Path, envelope.Sidecar, bytes], keys: MemoryKeyService
) -> None:
    enc, _, _ = encrypted
    Path(envelope.sidecar_key(str(enc))).write_text("{not json")
    _expect_integrity_error(enc, keys)
    Path(envelope.sidecar_key(str(enc))).write_text("[]")
    _expect_integrity_error(enc, keys)


def test_wrong_expected_artifact_fails(
    encrypted: tuple[Path, envelope.Sidecar, bytes], keys: MemoryKeyService
) -> None:
    enc, _, _ = encrypted
    _expect_integrity_error(enc, keys, expect=envelope.Artifact(ART.system, ART.path, "other"))


def test_wrong_key_fails(encrypted: tuple[Path, envelope.Sidecar, bytes]) -> None:
    enc, _, _ = encrypted
    impostor = MemoryKeyService()  # same URI, different key material
    _expect_integrity_error(enc, impostor)


def test_destroyed_key_fails_with_key_destroyed(
    encrypted: tuple[Path, envelope.Sidecar, bytes], keys: MemoryKeyService
) -> None:
    enc, _, _ = encrypted
    keys.destroy()
    with pytest.raises(KeyDestroyedError):
        envelope.decrypt_file(enc, enc.parent / "out", keys)
    assert not (enc.parent / "out").exists()


def test_wrong_associated_data_at_the_stream_level(keys: MemoryKeyService) -> None:
    dek = os.urandom(32)
    ct = StreamingAead(dek).encrypt(b"weights", ART.associated_data())
    other = envelope.Artifact(ART.system, ART.path, "2025.06.2").associated_data()
    with pytest.raises(IntegrityError):
        StreamingAead(dek).decrypt(ct, other)


def test_no_secret_in_reprs_or_errors(
    encrypted: tuple[Path, envelope.Sidecar, bytes], keys: MemoryKeyService
) -> None:
    enc, sidecar, _ = encrypted
    dek = keys.unwrap(sidecar.wrapped_key)
    aead = StreamingAead(dek)
    assert dek.hex() not in repr(aead) and repr(dek) not in repr(aead)
    assert sidecar.wrapped_dek.hex() not in repr(sidecar)
    data = bytearray(enc.read_bytes())
    data[100] ^= 1
    with pytest.raises(IntegrityError) as info:
        aead.decrypt(bytes(data), sidecar.associated_data)
    assert dek.hex() not in str(info.value)
    with pytest.raises(InputError) as bad:
        StreamingAead(dek[:31])
    assert dek[:31].hex() not in str(bad.value)


# --- streaming, memory -------------------------------------------------------------------


class Endless:
    """``size`` bytes of a repeating 1 MiB pattern, produced on demand (never held in full)."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.read_total = 0
        self.pattern = os.urandom(MIB)
        self.sha256 = hashlib.sha256()

    def readinto(self, buf: memoryview) -> int:
        n = min(len(buf), self.left, MIB)
        buf[:n] = self.pattern[:n]
        self.sha256.update(buf[:n])
        self.left -= n
        self.read_total += n
        return n

    def read(self, size: int = -1) -> bytes:
        buf = bytearray(min(size, MIB) if size >= 0 else MIB)
        n = self.readinto(memoryview(buf))
        return bytes(buf[:n])


def test_streaming_memory_is_constant(keys: MemoryKeyService) -> None:
    size = 96 * MIB
    source = Endless(size)
    tracemalloc.start()
    try:
        stream = envelope.encrypt_stream(source, keys, ART)
        total = sum(len(chunk) for chunk in stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == ciphertext_size(size)
    assert stream.sidecar.plaintext_sha256 == source.sha256.hexdigest()
    assert peak < 6 * MIB, f"peak {peak / MIB:.1f} MiB while encrypting {size // MIB} MiB"


def test_non_blocking_source_is_refused_not_truncated(keys: MemoryKeyService) -> None:
    class Stalling(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buf: Any) -> int | None:
            return None  # a non-blocking stream with no data right now

    with pytest.raises(InputError):
        list(envelope.encrypt_stream(Stalling(), keys, ART))


def test_sidecar_needs_the_stream_consumed(keys: MemoryKeyService) -> None:
    stream = envelope.encrypt_stream(io.BytesIO(b"x" * 10), keys, ART)
    with pytest.raises(InputError):
        _ = stream.sidecar
    assert list(stream)
    assert stream.sidecar.plaintext_size == 10


def test_decrypt_stream_holds_back_the_last_chunk_until_checked(keys: MemoryKeyService) -> None:
    stream = envelope.encrypt_stream(io.BytesIO(b"a" * (2 * MIB)), keys, ART)
    ciphertext = b"".join(stream)
    lying = envelope.Sidecar.from_dict(
        {**stream.sidecar.to_dict(), "plaintext_sha256": hashlib.sha256(b"b").hexdigest()}
    )
    received = []
    with pytest.raises(IntegrityError):
        for chunk in envelope.decrypt_stream(io.BytesIO(ciphertext), lying, keys):
            received.append(chunk)
    assert sum(map(len, received)) < 2 * MIB  # the final chunk was never released


# --- the hashing thread (plaintext SHA-256 pipelined with AES-GCM) ----------------------


def hash_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == HASH_THREAD_NAME]


class Recording:
    """A digest that records where and in what order it was fed; optionally slow, or failing
    at the ``fail_at``-th update."""

    def __init__(
        self, source: Endless | None = None, delay: float = 0.0, fail_at: int | None = None
    ) -> None:
        self.sha256 = hashlib.sha256()
        self.threads: set[str] = set()
        self.calls = 0
        self.hashed = 0
        self.max_lag = 0  # plaintext read from the source but not yet hashed, in bytes
        self.source, self.delay, self.fail_at = source, delay, fail_at

    def update(self, data: memoryview, /) -> None:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError("digest failed")
        if self.source is not None:
            self.max_lag = max(self.max_lag, self.source.read_total - self.hashed)
        time.sleep(self.delay)
        self.sha256.update(data)
        self.hashed += len(data)


class Failing(Endless):
    """Raises OSError once ``fail_after`` bytes were read."""

    def __init__(self, size: int, fail_after: int) -> None:
        super().__init__(size)
        self.fail_after = fail_after

    def readinto(self, buf: memoryview) -> int:
        if self.read_total >= self.fail_after:
            raise OSError("disk read error")
        return super().readinto(buf)


@pytest.mark.parametrize("segment_size", [MIB, 4096, 97])
def test_hashing_thread_changes_no_ciphertext_byte(segment_size: int) -> None:
    """With and without the pipelined digest, the same salt and nonce prefix give the same
    bytes (the known-answer vectors cover the path without), and the digest is the plaintext's,
    fed in order, across every boundary case of the segmentation."""
    aead = StreamingAead(os.urandom(32), segment_size)
    first, full = aead.first_plaintext_size, aead.plaintext_size
    salt, prefix = os.urandom(32), os.urandom(7)
    sizes = {
        0,
        1,
        first - 1,
        first,
        first + 1,
        first + full,
        first + 2 * full,
        first + 5 * full + 3,
    }
    for size in sorted(sizes):
        plaintext = os.urandom(size)
        digest = Recording()
        with_digest = b"".join(
            aead.encrypt_stream(
                io.BytesIO(plaintext), b"ad", salt=salt, nonce_prefix=prefix, digest=digest
            )
        )
        without = aead.encrypt(plaintext, b"ad", salt=salt, nonce_prefix=prefix)
        assert with_digest == without, size
        assert digest.sha256.digest() == hashlib.sha256(plaintext).digest(), size
        assert aead.decrypt(with_digest, b"ad") == plaintext
        assert hash_threads() == []
        # One segment is hashed inline; more go to the worker thread.
        assert digest.threads <= ({"MainThread"} if size < first else {HASH_THREAD_NAME}), size


def test_hashing_thread_order_and_memory_bound_with_a_slow_digest() -> None:
    """The reader never runs more than PIPELINE_DEPTH segments ahead of a slow hasher (bounded
    memory), and the digest still sees the segments in order."""
    segment = 64 * 1024
    aead = StreamingAead(os.urandom(32), segment)
    source = Endless(40 * segment + 123)
    digest = Recording(source, delay=0.003)
    ciphertext = b"".join(aead.encrypt_stream(source, b"ad", digest=digest))
    assert digest.sha256.hexdigest() == source.sha256.hexdigest()
    assert digest.threads == {HASH_THREAD_NAME}
    assert 0 < digest.max_lag <= PIPELINE_DEPTH * aead.plaintext_size
    assert len(ciphertext) == aead.ciphertext_size(40 * segment + 123)
    assert hash_threads() == []


def test_hashing_thread_error_propagates_and_the_thread_ends() -> None:
    aead = StreamingAead(os.urandom(32))
    digest = Recording(fail_at=3)
    chunks = []
    with pytest.raises(RuntimeError, match="digest failed"):
        for chunk in aead.encrypt_stream(Endless(8 * MIB), b"ad", digest=digest):
            chunks.append(chunk)
    # The error surfaces at the latest when the failed segment's buffer is due to be refilled,
    # PIPELINE_DEPTH segments later: long before the end of the 8-segment stream.
    segments_out = len(chunks) - 1
    assert segments_out < (3 - 1) + PIPELINE_DEPTH < 8
    assert hash_threads() == []


def test_reader_error_stops_the_hashing_thread_and_writes_nothing(
    tmp_path: Path, keys: MemoryKeyService
) -> None:
    store = open_store((tmp_path / "bucket").as_uri())
    with pytest.raises(OSError, match="disk read error"):
        envelope.encrypt_to_store(Failing(8 * MIB, fail_after=3 * MIB), store, "m.enc", keys, ART)
    assert hash_threads() == []
    assert not (tmp_path / "bucket" / "m.enc").exists()
    assert not (tmp_path / "bucket" / envelope.sidecar_key("m.enc")).exists()


def test_consumer_error_stops_the_hashing_thread(tmp_path: Path, keys: MemoryKeyService) -> None:
    """encrypt_file to a destination that fails mid-write (a full file system, here a write
    error on the second chunk): the error surfaces, nothing is left, no thread keeps running."""

    class Full(Exception):
        pass

    def chunks_then_fail(stream: envelope.EncryptingStream) -> None:
        for i, _ in enumerate(stream):
            if i == 2:
                raise Full

    make_file(tmp_path / "m", 5 * MIB)
    with (
        open(tmp_path / "m", "rb") as f,
        pytest.raises(Full),
        envelope.encrypt_stream(f, keys, ART) as stream,
    ):
        chunks_then_fail(stream)
    assert hash_threads() == []


def test_closing_or_dropping_a_stream_early_ends_the_hashing_thread(
    keys: MemoryKeyService,
) -> None:
    stream = envelope.encrypt_stream(Endless(16 * MIB), keys, ART)
    next(stream), next(stream), next(stream)
    assert len(hash_threads()) == 1
    stream.close()
    assert hash_threads() == []
    stream.close()  # idempotent
    with pytest.raises(InputError):
        _ = stream.sidecar  # never complete: no digest is claimed

    with envelope.encrypt_stream(Endless(16 * MIB), keys, ART) as stream:
        next(stream), next(stream)
        assert len(hash_threads()) == 1
    assert hash_threads() == []

    abandoned = envelope.encrypt_stream(Endless(16 * MIB), keys, ART)
    next(abandoned), next(abandoned)
    assert len(hash_threads()) == 1
    del abandoned
    gc.collect()
    assert hash_threads() == []


def test_hash_thread_false_hashes_inline(keys: MemoryKeyService) -> None:
    """What encrypt_files uses when its workers already fill the cores: same result, no thread."""
    source = Endless(5 * MIB + 3)
    stream = envelope.encrypt_stream(source, keys, ART, hash_thread=False)
    next(stream), next(stream), next(stream)
    assert hash_threads() == []
    for _ in stream:
        pass
    assert stream.sidecar.plaintext_sha256 == source.sha256.hexdigest()


def test_completed_stream_leaves_no_thread_and_matches_hashlib(
    tmp_path: Path, keys: MemoryKeyService
) -> None:
    data = make_file(tmp_path / "m", 7 * MIB + 11)
    sidecar = envelope.encrypt_file(tmp_path / "m", tmp_path / "m.enc", keys, ART)
    assert sidecar.plaintext_sha256 == hashlib.sha256(data).hexdigest()
    assert sidecar.plaintext_size == len(data)
    assert hash_threads() == []
    envelope.decrypt_file(tmp_path / "m.enc", tmp_path / "out", keys, expect=ART)
    assert (tmp_path / "out").read_bytes() == data


# --- overwrite protection ----------------------------------------------------------------


def test_existing_destinations_are_not_overwritten(tmp_path: Path, keys: MemoryKeyService) -> None:
    make_file(tmp_path / "m", 10)
    envelope.encrypt_file(tmp_path / "m", tmp_path / "m.enc", keys, ART)
    with pytest.raises(ConflictError):
        envelope.encrypt_file(tmp_path / "m", tmp_path / "m.enc", keys, ART)
    envelope.encrypt_file(tmp_path / "m", tmp_path / "m.enc", keys, ART, overwrite=True)
    (tmp_path / "out").write_bytes(b"keep")
    with pytest.raises(ConflictError):
        envelope.decrypt_file(tmp_path / "m.enc", tmp_path / "out", keys)
    assert (tmp_path / "out").read_bytes() == b"keep"
    with pytest.raises(FileNotFoundError):
        envelope.encrypt_file(tmp_path / "missing", tmp_path / "x.enc", keys, ART)
    with pytest.raises(NotFoundError):
        envelope.encrypt_file(tmp_path / "m", tmp_path / "no-dir" / "x.enc", keys, ART)


# --- stores ------------------------------------------------------------------------------


def test_store_round_trip_and_tamper(tmp_path: Path, keys: MemoryKeyService) -> None:
    store = open_store((tmp_path / "bucket").as_uri())
    plaintext = os.urandom(MIB + 5)
    sidecar = envelope.encrypt_to_store(io.BytesIO(plaintext), store, "models/m.enc", keys, ART)
    assert envelope.read_sidecar(store, "models/m.enc") == sidecar
    assert store.head("models/m.enc").size == sidecar.ciphertext_size

    out = open_store((tmp_path / "out").as_uri())
    envelope.decrypt_to_store(store, "models/m.enc", out, "m.bin", keys, expect=ART)
    with out.open("m.bin") as f:
        assert f.read() == plaintext
    with pytest.raises(ConflictError):
        envelope.encrypt_to_store(io.BytesIO(plaintext), store, "models/m.enc", keys, ART)

    path = tmp_path / "bucket" / "models" / "m.enc"
    data = bytearray(path.read_bytes())
    data[-3] ^= 4
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        envelope.decrypt_to_store(store, "models/m.enc", out, "tampered.bin", keys)
    with pytest.raises(NotFoundError):
        out.head("tampered.bin")


# --- rotation ------------------------------------------------------------------------------


def test_rewrap_touches_sidecars_only(tmp_path: Path, keys: MemoryKeyService) -> None:
    store = open_store((tmp_path / "bucket").as_uri())
    names = [f"w/{i}.enc" for i in range(5)]
    plaintexts = {n: os.urandom(1000 + i) for i, n in enumerate(names)}
    for n in names:
        envelope.encrypt_to_store(io.BytesIO(plaintexts[n]), store, n, keys, ART)
    before = {n: (tmp_path / "bucket" / n).read_bytes() for n in names}

    keys.rotate()
    result = envelope.rewrap_store(store, names, keys, batch_size=2)
    assert [s.key_version for s in result] == [2] * 5
    assert keys.calls.count("rewrap") == 3  # batches of 2, 2, 1
    assert {n: (tmp_path / "bucket" / n).read_bytes() for n in names} == before

    again = envelope.rewrap_store(store, names, keys)  # idempotent: nothing left to do
    assert keys.calls.count("rewrap") == 3
    assert again == result

    keys.retire_versions_below(2)  # version 1 is gone: only re-wrapped sidecars still open
    out = open_store((tmp_path / "out").as_uri())
    for n in names:
        envelope.decrypt_to_store(store, n, out, n + ".plain", keys)
        with out.open(n + ".plain") as f:
            assert f.read() == plaintexts[n]


def test_rewrap_refuses_foreign_sidecars(keys: MemoryKeyService) -> None:
    stream = envelope.encrypt_stream(io.BytesIO(b"x"), MemoryKeyService("memory://other"), ART)
    list(stream)
    with pytest.raises(InputError):
        envelope.rewrap([stream.sidecar], keys)
    assert envelope.rewrap([], keys) == []


def test_old_sidecar_stops_working_after_retirement(tmp_path: Path, keys: MemoryKeyService) -> None:
    make_file(tmp_path / "m", 100)
    old = envelope.encrypt_file(tmp_path / "m", tmp_path / "m.enc", keys, ART)
    keys.rotate()
    (new,) = envelope.rewrap([old], keys)
    keys.retire_versions_below(2)
    with pytest.raises(NotFoundError):
        envelope.decrypt_file(tmp_path / "m.enc", tmp_path / "a", keys, sidecar=old)
    envelope.decrypt_file(tmp_path / "m.enc", tmp_path / "b", keys, sidecar=new)
    assert (tmp_path / "b").read_bytes() == (tmp_path / "m").read_bytes()


# --- several files on all cores ----------------------------------------------------------


def test_encrypt_files_in_parallel(tmp_path: Path, keys: MemoryKeyService) -> None:
    jobs, data = [], {}
    for i in range(6):
        src = tmp_path / f"shard-{i}.bin"
        data[i] = make_file(src, (i + 1) * 300_000)
        art = envelope.Artifact(ART.system, f"weights/shard-{i}.bin", ART.version)
        jobs.append(envelope.FileJob(src, tmp_path / f"shard-{i}.enc", art))
    sidecars = envelope.encrypt_files(jobs, keys, workers=2)
    assert [s.artifact for s in sidecars] == [j.artifact for j in jobs]
    for i, (job, sidecar) in enumerate(zip(jobs, sidecars, strict=True)):
        assert sidecar.plaintext_sha256 == hashlib.sha256(data[i]).hexdigest()
        envelope.decrypt_file(job.dst, tmp_path / f"plain-{i}", keys, expect=job.artifact)
        assert (tmp_path / f"plain-{i}").read_bytes() == data[i]
    with pytest.raises(InputError):
        envelope.encrypt_files([jobs[0], jobs[0]], keys)


def test_digests_from_encryption_feed_model_signing(tmp_path: Path, keys: MemoryKeyService) -> None:
    from sundown.signing import hash_model

    model = tmp_path / "model"
    model.mkdir()
    (model / "weights").mkdir()
    jobs = []
    for name in ("config.json", "weights/a.bin", "weights/b.bin"):
        make_file(model / name, 5000)
        enc = tmp_path / (name.replace("/", "_") + ".enc")
        jobs.append(envelope.FileJob(model / name, enc, envelope.Artifact("demo", name, "1")))
    sidecars = envelope.encrypt_files(jobs, keys)
    digests = envelope.plaintext_digests(sidecars)
    assert digests == {
        name: hashlib.sha256((model / name).read_bytes()).hexdigest()
        for name in ("config.json", "weights/a.bin", "weights/b.bin")
    }
    # What signing would compute itself, file by file:
    assert {k: v.hex() for k, v in hash_model(model).items()} == digests
    with pytest.raises(InputError):
        envelope.plaintext_digests([sidecars[0], sidecars[0]])


# --- a real remote store (moto's S3 server) ----------------------------------------------


def test_s3_round_trip_multipart_and_tamper(
    moto_env: str, tmp_path: Path, keys: MemoryKeyService
) -> None:
    """Through the S3 connector against moto: a multipart-sized ciphertext round-trips, and a
    tampered one leaves neither a plaintext object nor an unfinished multipart upload."""
    import boto3

    bucket = "envelope-" + os.urandom(4).hex()
    admin = boto3.client("s3", endpoint_url=moto_env)
    admin.create_bucket(Bucket=bucket)
    store = open_store(f"s3://{bucket}/models/fraud")
    plaintext = os.urandom(20 * MIB + 123)  # more than two 8 MiB parts
    sidecar = envelope.encrypt_to_store(io.BytesIO(plaintext), store, "model.enc", keys, ART)
    assert store.head("model.enc").size == sidecar.ciphertext_size
    assert envelope.read_sidecar(store, "model.enc") == sidecar

    envelope.decrypt_to_store(store, "model.enc", store, "model.plain", keys, expect=ART)
    with store.open("model.plain") as f:
        assert hashlib.sha256(f.read()).hexdigest() == sidecar.plaintext_sha256

    full = "models/fraud/model.enc"
    body = bytearray(admin.get_object(Bucket=bucket, Key=full)["Body"].read())
    body[-100] ^= 0x01  # in the last segment: every earlier chunk was already released
    admin.put_object(Bucket=bucket, Key=full, Body=bytes(body))
    with pytest.raises(IntegrityError):
        envelope.decrypt_to_store(store, "model.enc", store, "tampered.plain", keys)
    with pytest.raises(NotFoundError):
        store.head("tampered.plain")
    assert not admin.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_cli_with_s3_urls(
    moto_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from cli import main
    from sundown.registry import create_key

    bucket = "envelope-cli-" + os.urandom(4).hex()
    boto3.client("s3", endpoint_url=moto_env).create_bucket(Bucket=bucket)
    create_key("local://s3-cli")
    plaintext = make_file(tmp_path / "model.bin", 3 * MIB)
    url = f"s3://{bucket}/models/model.enc"
    assert main(["encrypt", "--key", "local://s3-cli", str(tmp_path / "model.bin"), url]) == 0
    assert main(["decrypt", url, str(tmp_path / "back.bin")]) == 0
    assert (tmp_path / "back.bin").read_bytes() == plaintext
    assert main(["decrypt", f"s3://{bucket}/models/missing.enc", str(tmp_path / "x")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.enc" in err[0]
