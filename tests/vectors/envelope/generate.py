"""Generate the envelope known-answer vectors in this folder.

    uv run python tests/vectors/envelope/generate.py          # rewrite the JSON files
    uv run python tests/vectors/envelope/generate.py --check  # fail if any file is stale

This is a second, deliberately separate implementation of Tink's AES256_GCM_HKDF streaming
format written from the specification (docs/formats/envelope.md) with nothing but
``cryptography`` primitives; it imports nothing from ``sundown``. The tests check Sundown against
these files in both directions, and tests/test_tink_interop.py checks them against Tink itself.

Every input is derived from a fixed label, so the files are reproducible byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE = Path(__file__).resolve().parent
HEADER_LEN = 40
TAG = 16


def det(label: str, n: int) -> bytes:
    """``n`` deterministic bytes from a label (SHA-256 in counter mode)."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return out[:n]


def sundown_ad(system: str, path: str, version: str) -> bytes:
    """The associated-data encoding of docs/formats/envelope.md, independently written."""
    out = b"sundown.envelope.ad.v1"
    for field in (system, path, version):
        raw = field.encode("utf-8")
        out += len(raw).to_bytes(4, "big") + raw
    return out


def split(plaintext: bytes, segment_size: int) -> list[bytes]:
    first = segment_size - HEADER_LEN - TAG
    rest = segment_size - TAG
    segments = [plaintext[:first]]
    pos = first
    while pos < len(plaintext):
        segments.append(plaintext[pos : pos + rest])
        pos += rest
    return segments


def encrypt(
    dek: bytes,
    ad: bytes,
    plaintext: bytes,
    segment_size: int,
    salt: bytes,
    prefix: bytes,
    *,
    mark_last: bool = True,
) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=ad).derive(dek)
    gcm = AESGCM(key)
    segments = split(plaintext, segment_size)
    out = [bytes([HEADER_LEN]), salt, prefix]
    for i, segment in enumerate(segments):
        last = mark_last and i == len(segments) - 1
        out.append(gcm.encrypt(prefix + struct.pack(">IB", i, last), segment, None))
    return b"".join(out)


def segment_bounds(ciphertext: bytes, segment_size: int) -> list[tuple[int, int]]:
    bounds = []
    pos, size = HEADER_LEN, segment_size - HEADER_LEN
    while pos < len(ciphertext):
        bounds.append((pos, min(pos + size, len(ciphertext))))
        pos, size = pos + size, segment_size
    return bounds


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def vectors() -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    seg = 64  # first segment holds 8 plaintext bytes, later ones 48

    def ok(
        name: str,
        description: str,
        size: int,
        segment_size: int = seg,
        ad: bytes | None = None,
    ) -> bytes:
        dek = det(f"{name}/dek", 32)
        ad = det(f"{name}/ad", 21) if ad is None else ad
        plaintext = det(f"{name}/plaintext", size)
        salt, prefix = det(f"{name}/salt", 32), det(f"{name}/nonce_prefix", 7)
        ciphertext = encrypt(dek, ad, plaintext, segment_size, salt, prefix)
        out[f"ok-{name}"] = {
            "description": description,
            "expected": "ok",
            "segment_size": segment_size,
            "dek_hex": dek.hex(),
            "associated_data_hex": ad.hex(),
            "salt_hex": salt.hex(),
            "nonce_prefix_hex": prefix.hex(),
            "plaintext_hex": plaintext.hex(),
            "ciphertext_hex": ciphertext.hex(),
        }
        return ciphertext

    ok("empty", "empty plaintext: one segment holding only its tag", 0)
    ok("one-byte", "one plaintext byte", 1)
    ok("first-segment-minus-1", "one byte short of filling the first segment", 7)
    ok("exactly-one-segment", "plaintext fills the first segment exactly (it is the last)", 8)
    ok("first-segment-plus-1", "one byte into the second segment", 9)
    ok("second-segment-minus-1", "one byte short of filling two segments", 55)
    ok("exactly-two-segments", "plaintext fills two segments exactly", 56)
    ok("second-segment-plus-1", "one byte into the third segment", 57)
    ok("several-segments", "five segments, the last one full", 200)
    ok("several-segments-partial", "six segments, the last one partial", 250)
    ok("minimal-segment-size", "segment size 57: one plaintext byte in the first segment", 5, 57)
    ok("template-1mb", "the AES256_GCM_HKDF_1MB segment size with a short plaintext", 300, 1 << 20)
    ok("empty-associated-data", "empty associated data", 60, ad=b"")
    ok(
        "sundown-associated-data",
        "associated data in Sundown's encoding for system 'demo', path "
        "'weights/modèle.safetensors', version 'v1'",
        100,
        ad=sundown_ad("demo", "weights/modèle.safetensors", "v1"),
    )

    base = out["ok-several-segments-partial"]
    base_ct = bytes.fromhex(str(base["ciphertext_hex"]))
    bounds = segment_bounds(base_ct, seg)

    def fail(name: str, description: str, ciphertext: bytes, **override: object) -> None:
        vector: dict[str, object] = {
            "description": description,
            "expected": "IntegrityError",
            "segment_size": seg,
            "dek_hex": base["dek_hex"],
            "associated_data_hex": base["associated_data_hex"],
            "ciphertext_hex": ciphertext.hex(),
        }
        vector.update(override)
        out[f"fail-{name}"] = vector

    (s1a, s1b), (s2a, s2b) = bounds[1], bounds[2]
    fail("empty-ciphertext", "no bytes at all", b"")
    fail("truncated-in-header", "cut inside the header", base_ct[:20])
    fail("truncated-after-header", "header only, no segment", base_ct[:HEADER_LEN])
    fail("truncated-last-byte", "last byte of the last tag removed", base_ct[:-1])
    fail(
        "truncated-last-segment",
        "last segment removed: the previous, full segment was not marked last",
        base_ct[: bounds[-1][0]],
    )
    fail(
        "truncated-inside-tag",
        "last segment cut to fewer bytes than a tag",
        base_ct[: bounds[-1][0] + 5],
    )
    fail(
        "reordered-segments",
        "segments 1 and 2 swapped",
        base_ct[:s1a] + base_ct[s2a:s2b] + base_ct[s1a:s1b] + base_ct[s2b:],
    )
    fail(
        "duplicated-segment",
        "segment 1 repeated",
        base_ct[:s1b] + base_ct[s1a:s1b] + base_ct[s1b:],
    )
    fail("trailing-byte", "one byte appended", base_ct + b"\x00")
    fail("trailing-block", "sixteen bytes appended", base_ct + bytes(16))
    fail("flipped-bit-salt", "bit flipped in the salt", flip(base_ct, 1))
    fail("flipped-bit-nonce-prefix", "bit flipped in the nonce prefix", flip(base_ct, 39, 7))
    fail("flipped-bit-first-segment", "bit flipped in segment 0", flip(base_ct, HEADER_LEN + 3))
    fail("flipped-bit-middle-segment", "bit flipped in segment 2", flip(base_ct, s2a + 10, 4))
    fail("flipped-bit-last-tag", "bit flipped in the last tag", flip(base_ct, len(base_ct) - 1))
    fail(
        "header-length-24",
        "header length byte 24 (the AES-128 variant's)",
        bytes([24]) + base_ct[1:],
    )
    fail("header-length-0", "header length byte 0", bytes([0]) + base_ct[1:])
    ad = bytes.fromhex(str(base["associated_data_hex"]))
    fail(
        "wrong-associated-data",
        "associated data with one bit flipped",
        base_ct,
        associated_data_hex=flip(ad, 0).hex(),
    )
    fail("empty-associated-data", "associated data empty", base_ct, associated_data_hex="")
    fail(
        "wrong-key",
        "a different data key",
        base_ct,
        dek_hex=det("wrong-key/dek", 32).hex(),
    )
    fail(
        "wrong-segment-size",
        "decrypted with segment size 80 though made with 64",
        base_ct,
        segment_size=80,
    )
    dek = bytes.fromhex(str(base["dek_hex"]))
    fail(
        "no-last-segment-flag",
        "every segment encrypted with the last-segment flag 0 (an endless-stream forgery)",
        encrypt(
            dek,
            ad,
            bytes.fromhex(str(base["plaintext_hex"])),
            seg,
            bytes.fromhex(str(base["salt_hex"])),
            bytes.fromhex(str(base["nonce_prefix_hex"])),
            mark_last=False,
        ),
    )
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    wanted = vectors()
    for name, vector in wanted.items():
        path = HERE / f"{name}.json"
        text = json.dumps(vector, indent=2, ensure_ascii=False) + "\n"
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    extra = sorted(p.name for p in HERE.glob("*.json") if p.stem not in wanted)
    if check and (stale or extra):
        print(f"stale: {stale}; unexpected: {extra}", file=sys.stderr)
        return 1
    print(f"{len(wanted)} vectors {'checked' if check else 'written'} in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
