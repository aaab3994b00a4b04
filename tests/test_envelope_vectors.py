"""Known-answer vectors of the envelope stream, run in both directions; must-fail vectors raise."""

from __future__ import annotations

import io
import json
import runpy
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

from sundown.envelope import Artifact
from sundown.envelope._stream import StreamingAead
from sundown.errors import IntegrityError

VECTORS = Path(__file__).parent / "vectors" / "envelope"


def _load(prefix: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(p.stem, json.loads(p.read_text(encoding="utf-8"))) for p in VECTORS.glob("*.json")]
    return sorted((name, v) for name, v in found if name.startswith(prefix))


OK = _load("ok-")
FAIL = _load("fail-")


class TrickleReader:
    """Returns at most ``step`` bytes per call: a stream that never fills a segment in one read."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(self._step, size) if size >= 0 else self._step)


def test_the_set_is_complete_and_up_to_date() -> None:
    names = {name for name, _ in OK + FAIL}
    for required in (
        "ok-empty",
        "ok-one-byte",
        "ok-exactly-one-segment",
        "ok-first-segment-minus-1",
        "ok-first-segment-plus-1",
        "ok-several-segments",
        "fail-truncated-last-segment",
        "fail-reordered-segments",
        "fail-flipped-bit-middle-segment",
        "fail-wrong-associated-data",
        "fail-header-length-24",
    ):
        assert required in names
    generator = runpy.run_path(str(VECTORS / "generate.py"))
    assert generator["main"](["--check"]) == 0, "vectors differ from generate.py's output"


@pytest.mark.parametrize(("name", "vector"), OK, ids=[n for n, _ in OK])
def test_encrypt_matches_vector(name: str, vector: dict[str, Any]) -> None:
    aead = StreamingAead(bytes.fromhex(vector["dek_hex"]), vector["segment_size"])
    ciphertext = aead.encrypt(
        bytes.fromhex(vector["plaintext_hex"]),
        bytes.fromhex(vector["associated_data_hex"]),
        salt=bytes.fromhex(vector["salt_hex"]),
        nonce_prefix=bytes.fromhex(vector["nonce_prefix_hex"]),
    )
    assert ciphertext.hex() == vector["ciphertext_hex"]
    assert len(ciphertext) == aead.ciphertext_size(len(vector["plaintext_hex"]) // 2)


@pytest.mark.parametrize(("name", "vector"), OK, ids=[n for n, _ in OK])
def test_decrypt_matches_vector(name: str, vector: dict[str, Any]) -> None:
    aead = StreamingAead(bytes.fromhex(vector["dek_hex"]), vector["segment_size"])
    ciphertext = bytes.fromhex(vector["ciphertext_hex"])
    ad = bytes.fromhex(vector["associated_data_hex"])
    assert aead.decrypt(ciphertext, ad).hex() == vector["plaintext_hex"]
    # The same through a stream that hands out a few bytes per read.
    chunks = list(aead.decrypt_stream(TrickleReader(ciphertext), ad))
    assert b"".join(pt for pt, _ in chunks).hex() == vector["plaintext_hex"]
    assert [last for _, last in chunks] == [False] * (len(chunks) - 1) + [True]


@pytest.mark.parametrize(("name", "vector"), OK, ids=[n for n, _ in OK])
def test_encrypt_from_trickling_source(name: str, vector: dict[str, Any]) -> None:
    aead = StreamingAead(bytes.fromhex(vector["dek_hex"]), vector["segment_size"])
    chunks = aead.encrypt_stream(
        TrickleReader(bytes.fromhex(vector["plaintext_hex"]), step=5),
        bytes.fromhex(vector["associated_data_hex"]),
        salt=bytes.fromhex(vector["salt_hex"]),
        nonce_prefix=bytes.fromhex(vector["nonce_prefix_hex"]),
    )
    assert b"".join(chunks).hex() == vector["ciphertext_hex"]


@pytest.mark.parametrize(("name", "vector"), FAIL, ids=[n for n, _ in FAIL])
def test_must_fail_vector_raises_integrity_error(name: str, vector: dict[str, Any]) -> None:
    assert vector["expected"] == "IntegrityError"
    aead = StreamingAead(bytes.fromhex(vector["dek_hex"]), vector["segment_size"])
    with pytest.raises(IntegrityError):
        aead.decrypt(
            bytes.fromhex(vector["ciphertext_hex"]), bytes.fromhex(vector["associated_data_hex"])
        )


def test_associated_data_encoding_matches_the_independent_generator() -> None:
    vector = dict(OK)["ok-sundown-associated-data"]
    artifact = Artifact("demo", "weights/modèle.safetensors", "v1")
    assert artifact.associated_data().hex() == vector["associated_data_hex"]


def test_the_documented_decryptor_sketch_passes_every_vector() -> None:
    """docs/formats/envelope.md section 8 is enough to decrypt: its sketch passes the vectors."""
    import re

    doc = (Path(__file__).parents[1] / "docs" / "formats" / "envelope.md").read_text()
    match = re.search(r"## 8\..*?```python\n(.*?)```", doc, re.S)
    assert match, "the decryptor sketch is missing from docs/formats/envelope.md"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)
    decrypt = namespace["decrypt"]
    for name, vector in OK + FAIL:
        args = (
            bytes.fromhex(vector["dek_hex"]),
            bytes.fromhex(vector["associated_data_hex"]),
            bytes.fromhex(vector["ciphertext_hex"]),
            vector["segment_size"],
        )
        if vector["expected"] == "ok":
            assert decrypt(*args).hex() == vector["plaintext_hex"], name
        else:
            with pytest.raises((ValueError, InvalidTag)):
                decrypt(*args)
