"""Interoperability with Google's Tink (the ``tink`` package), in both directions.

A Tink keyset is built whose only key is an AesGcmHkdfStreamingKey (derived key size 32,
HKDF-SHA256) with the DEK as its key value; Tink then decrypts what Sundown encrypted and Sundown
decrypts what Tink encrypted, with the real 1 MiB segment size and with the vectors' sizes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
import tink
from tink import cleartext_keyset_handle, streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2, common_pb2, tink_pb2

from sundown.envelope import Artifact, Sidecar, decrypt_stream, encrypt_file
from sundown.envelope._stream import SEGMENT_SIZE, StreamingAead
from tests.memory_keys import MemoryKeyService

VECTORS = Path(__file__).parent / "vectors" / "envelope"
MIB = 1 << 20
FIRST = SEGMENT_SIZE - 40 - 16  # plaintext bytes in the first 1 MiB segment

streaming_aead.register()


def tink_primitive(dek: bytes, segment_size: int = SEGMENT_SIZE) -> streaming_aead.StreamingAead:
    key = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(
        version=0,
        key_value=dek,
        params=aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
            ciphertext_segment_size=segment_size,
            derived_key_size=32,
            hkdf_hash_type=common_pb2.SHA256,
        ),
    )
    keyset = tink_pb2.Keyset(
        primary_key_id=7,
        key=[
            tink_pb2.Keyset.Key(
                key_data=tink_pb2.KeyData(
                    type_url="type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey",
                    value=key.SerializeToString(),
                    key_material_type=tink_pb2.KeyData.SYMMETRIC,
                ),
                status=tink_pb2.ENABLED,
                key_id=7,
                output_prefix_type=tink_pb2.RAW,
            )
        ],
    )
    handle = cleartext_keyset_handle.from_keyset(keyset)
    return handle.primitive(streaming_aead.StreamingAead)


def tink_encrypt(primitive: streaming_aead.StreamingAead, plaintext: bytes, ad: bytes) -> bytes:
    class Sink(io.BytesIO):
        value = b""

        def close(self) -> None:  # Tink closes the destination; keep what it wrote
            self.value = self.getvalue()
            super().close()

    sink = Sink()
    with primitive.new_encrypting_stream(sink, ad) as stream:
        for i in range(0, len(plaintext), 300_000):  # several writes, not aligned to segments
            stream.write(plaintext[i : i + 300_000])
    return sink.value


def tink_decrypt(primitive: streaming_aead.StreamingAead, ciphertext: bytes, ad: bytes) -> bytes:
    with primitive.new_decrypting_stream(io.BytesIO(ciphertext), ad) as stream:
        return stream.read()


SIZES = [0, 1, FIRST - 1, FIRST, FIRST + 1, MIB, 2 * MIB - 72, 3 * MIB + 12345]


@pytest.mark.parametrize("size", SIZES)
def test_tink_decrypts_sundown_and_sundown_decrypts_tink(size: int) -> None:
    dek, ad, plaintext = os.urandom(32), os.urandom(30), os.urandom(size)
    ours = StreamingAead(dek)
    theirs = tink_primitive(dek)

    ciphertext = ours.encrypt(plaintext, ad)
    assert tink_decrypt(theirs, ciphertext, ad) == plaintext

    from_tink = tink_encrypt(theirs, plaintext, ad)
    assert len(from_tink) == len(ciphertext) == ours.ciphertext_size(size)
    assert ours.decrypt(from_tink, ad) == plaintext


def test_tink_rejects_what_sundown_rejects() -> None:
    dek, ad = os.urandom(32), b"ad"
    ciphertext = bytearray(StreamingAead(dek).encrypt(os.urandom(MIB + 100), ad))
    ciphertext[SEGMENT_SIZE + 5] ^= 1  # inside the second segment
    with pytest.raises(tink.TinkError):
        tink_decrypt(tink_primitive(dek), bytes(ciphertext), ad)
    truncated = bytes(ciphertext[:SEGMENT_SIZE])  # the first segment alone, not marked last
    with pytest.raises(tink.TinkError):
        tink_decrypt(tink_primitive(dek), truncated, ad)


def _vectors(prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return sorted(
        (p.stem, json.loads(p.read_text(encoding="utf-8"))) for p in VECTORS.glob(f"{prefix}*.json")
    )


OK = _vectors("ok-")
FAIL = _vectors("fail-")


@pytest.mark.parametrize(("name", "vector"), OK, ids=[n for n, _ in OK])
def test_tink_decrypts_every_vector(name: str, vector: dict[str, Any]) -> None:
    primitive = tink_primitive(bytes.fromhex(vector["dek_hex"]), vector["segment_size"])
    plaintext = tink_decrypt(
        primitive,
        bytes.fromhex(vector["ciphertext_hex"]),
        bytes.fromhex(vector["associated_data_hex"]),
    )
    assert plaintext.hex() == vector["plaintext_hex"], name


@pytest.mark.parametrize(("name", "vector"), FAIL, ids=[n for n, _ in FAIL])
def test_tink_rejects_every_must_fail_vector(name: str, vector: dict[str, Any]) -> None:
    primitive = tink_primitive(bytes.fromhex(vector["dek_hex"]), vector["segment_size"])
    with pytest.raises(tink.TinkError):
        tink_decrypt(
            primitive,
            bytes.fromhex(vector["ciphertext_hex"]),
            bytes.fromhex(vector["associated_data_hex"]),
        )


def test_whole_envelope_interoperates(tmp_path: Path) -> None:
    """An outsider holding the unwrapped DEK and the sidecar's associated data decrypts a
    Sundown artifact with Tink; and Sundown decrypts a Tink stream under a Sundown sidecar."""
    keys = MemoryKeyService()
    artifact = Artifact("demo", "weights/model.safetensors", "v7")
    plaintext = os.urandom(2 * MIB + 999)
    (tmp_path / "model").write_bytes(plaintext)
    sidecar = encrypt_file(tmp_path / "model", tmp_path / "model.enc", keys, artifact)
    dek = keys.unwrap(sidecar.wrapped_key)
    ciphertext = (tmp_path / "model.enc").read_bytes()
    assert tink_decrypt(tink_primitive(dek), ciphertext, sidecar.associated_data) == plaintext

    dek, wrapped = keys.new_data_key()
    from_tink = tink_encrypt(tink_primitive(dek), plaintext, artifact.associated_data())
    tink_sidecar = Sidecar(
        key_uri=wrapped.key_uri,
        key_version=wrapped.key_version,
        wrapped_dek=wrapped.ciphertext,
        artifact=artifact,
        plaintext_size=len(plaintext),
        plaintext_sha256=hashlib.sha256(plaintext).hexdigest(),
        ciphertext_size=len(from_tink),
    )
    out = b"".join(decrypt_stream(io.BytesIO(from_tink), tink_sidecar, keys))
    assert out == plaintext
