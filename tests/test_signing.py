"""OMS v1.0 model signatures: round trip, format details, tampering of files and of the bundle."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sundown import registry, signing
from sundown.errors import InputError, IntegrityError, UnsupportedError


def make_model(root: Path) -> Path:
    """A small model whose names sort differently by path components than as strings."""
    model = root / "model"
    (model / "a").mkdir(parents=True)
    (model / "sub" / "deep").mkdir(parents=True)
    (model / ".git").mkdir()
    (model / "a" / "b").write_bytes(b"weights-b")
    (model / "a.txt").write_bytes(b"readme")
    (model / "config.json").write_bytes(b'{"layers": 2}')
    (model / "empty.bin").write_bytes(b"")
    (model / "sub" / "deep" / "w.safetensors").write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    (model / "sub" / "caf\u00e9.bin").write_bytes(b"unicode name")
    (model / ".git" / "HEAD").write_bytes(b"ref: refs/heads/main\n")
    (model / ".gitignore").write_bytes(b"*.tmp\n")
    return model


def write_pem_key(
    path: Path, form: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8
) -> ec.EllipticCurvePrivateKey:
    """A new P-256 key written unencrypted to ``path`` as PEM in ``form``; the key."""
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())
    )
    return key


@pytest.fixture
def signer() -> signing.PemSigner:
    return signing.PemSigner(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path)


def payload_of(bundle: bytes) -> dict:
    return json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))


def test_round_trip_and_statement(model: Path, signer: signing.PemSigner) -> None:
    sig = model / "model.sig"
    bundle = signing.sign_model(model, signer, signature_path=sig)
    signing.write_bundle(sig, bundle)
    signed = signing.verify_model(
        model, sig.read_bytes(), signer.public_key_pem(), signature_path=sig
    )
    assert signed.name == "model"
    names = list(signed.resources)
    # sorted by path components, as model_signing does: "a/b" before "a.txt"
    assert names == [
        "a/b",
        "a.txt",
        "config.json",
        "empty.bin",
        "sub/caf\u00e9.bin",
        "sub/deep/w.safetensors",
    ]
    assert signed.resources["empty.bin"] == hashlib.sha256(b"").digest()
    assert signed.resources["a/b"] == hashlib.sha256(b"weights-b").digest()

    doc = json.loads(bundle)
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert doc["verificationMaterial"] == {
        "publicKey": {"hint": hashlib.sha256(signer.public_key_pem()).hexdigest()},
        "tlogEntries": [],
    }
    assert doc["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    st = payload_of(bundle)
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://model_signing/signature/v1.0"
    assert st["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore", "model.sig"],
    }
    resources = st["predicate"]["resources"]
    assert [r["name"] for r in resources] == names
    assert all(r["algorithm"] == "sha256" for r in resources)
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    assert st["subject"] == [{"name": "model", "digest": {"sha256": root}}]


def test_signing_only_calls_signer_sign_with_the_pae(
    model: Path, signer: signing.PemSigner
) -> None:
    seen: list[bytes] = []

    class Recording:
        key_id = "recording"

        def sign(self, message: bytes) -> bytes:
            seen.append(message)
            return signer.sign(message)

        def public_key_pem(self) -> bytes:
            return signer.public_key_pem()

    bundle = signing.sign_model(model, Recording())
    payload = base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"])
    assert seen == [b"DSSEv1 28 application/vnd.in-toto+json %d " % len(payload) + payload]
    assert json.loads(bundle)["dsseEnvelope"]["signatures"][0]["keyid"] == "recording"
    signing.verify_model(model, bundle, signer.public_key_pem())


def test_keyring_signer(model: Path) -> None:
    registry.create_key("local://model-signing", signing=True)
    signer = registry.open_signer("local://model-signing")
    bundle = signing.sign_model(model, signer)
    signed = signing.verify_model(model, bundle, signer.public_key_pem())
    assert signed.keyid == signer.key_id


def test_precomputed_digests_are_used_not_recomputed(
    model: Path, signer: signing.PemSigner
) -> None:
    big = "sub/deep/w.safetensors"
    real = signing.hash_model(model, ignore_paths=signing.GIT_PATHS)
    # A deliberately wrong precomputed digest shows up in the bundle: the file was not re-read.
    fake = b"\x11" * 32
    bundle = signing.sign_model(model, signer, digests={big: fake.hex()})
    st = payload_of(bundle)
    by_name = {r["name"]: r["digest"] for r in st["predicate"]["resources"]}
    assert by_name[big] == fake.hex()
    assert by_name["config.json"] == real["config.json"].hex()
    with pytest.raises(IntegrityError, match=r"1 changed \(sub/deep/w.safetensors\)"):
        signing.verify_model(model, bundle, signer.public_key_pem())
    # sign_digests over all digests gives the same statement as hashing the directory
    from_digests = signing.sign_digests(
        "model", real, signer, ignore_paths=signing.default_ignores(model)
    )
    assert payload_of(from_digests) == payload_of(signing.sign_model(model, signer))
    with pytest.raises(InputError, match="not in the model"):
        signing.sign_model(model, signer, digests={"nope.bin": fake})
    with pytest.raises(InputError, match="SHA-256"):
        signing.sign_digests("m", {"x": b"short"}, signer)
    with pytest.raises(InputError, match="relative path"):
        signing.sign_digests("m", {"../x": fake}, signer)
    with pytest.raises(InputError, match="no files"):
        signing.sign_digests("m", {}, signer)


def test_verify_with_precomputed_digests(model: Path, signer: signing.PemSigner) -> None:
    bundle = signing.sign_model(model, signer)
    digests = {"config.json": hashlib.sha256(b'{"layers": 2}').digest()}
    signing.verify_model(model, bundle, signer.public_key_pem(), digests=digests)
    with pytest.raises(IntegrityError, match=r"config\.json"):
        signing.verify_model(
            model, bundle, signer.public_key_pem(), digests={"config.json": b"\0" * 32}
        )


def test_single_file_model(tmp_path: Path, signer: signing.PemSigner) -> None:
    f = tmp_path / "model.gguf"
    f.write_bytes(b"gguf")
    bundle = signing.sign_model(f, signer)
    signed = signing.verify_model(f, bundle, signer.public_key_pem())
    assert list(signed.resources) == ["."] and signed.name == "model.gguf"
    f.write_bytes(b"ggu!")
    with pytest.raises(IntegrityError):
        signing.verify_model(f, bundle, signer.public_key_pem())


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda m: (m / "config.json").write_bytes(b'{"layers": 3}'), r"1 changed \(config.json\)"),
        (lambda m: (m / "empty.bin").write_bytes(b"\0"), r"1 changed \(empty.bin\)"),
        (
            lambda m: (m / "a.txt").rename(m / "b.txt"),
            r"1 missing \(a.txt\); 1 not signed \(b.txt\)",
        ),
        (lambda m: (m / "extra.bin").write_bytes(b"x"), r"1 not signed \(extra.bin\)"),
        (lambda m: (m / "sub" / "deep" / "w.safetensors").unlink(), r"1 missing"),
        (lambda m: (m / "a" / "c").write_bytes(b""), r"1 not signed \(a/c\)"),
    ],
    ids=["changed", "emptied-file-filled", "renamed", "added", "removed", "added-empty"],
)
def test_tampered_model_fails(model: Path, signer: signing.PemSigner, tamper, message) -> None:
    bundle = signing.sign_model(model, signer)
    tamper(model)
    with pytest.raises(IntegrityError, match=message):
        signing.verify_model(model, bundle, signer.public_key_pem())


def test_ignored_paths_may_change(model: Path, signer: signing.PemSigner) -> None:
    bundle = signing.sign_model(model, signer)
    (model / ".git" / "HEAD").write_bytes(b"changed")
    (model / ".gitattributes").write_bytes(b"new")
    signing.verify_model(model, bundle, signer.public_key_pem())


def test_truncated_file_fails(model: Path, signer: signing.PemSigner) -> None:
    bundle = signing.sign_model(model, signer)
    path = model / "sub" / "deep" / "w.safetensors"
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 1)
    with pytest.raises(IntegrityError, match=r"w\.safetensors"):
        signing.verify_model(model, bundle, signer.public_key_pem())


def test_wrong_key_fails(model: Path, signer: signing.PemSigner) -> None:
    bundle = signing.sign_model(model, signer)
    other = signing.PemSigner(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(IntegrityError, match="different public key"):
        signing.verify_model(model, bundle, other.public_key_pem())
    # without the hint, the signature check itself refuses the wrong key
    doc = json.loads(bundle)
    del doc["verificationMaterial"]["publicKey"]["hint"]
    with pytest.raises(IntegrityError, match="does not verify"):
        signing.verify_model(model, json.dumps(doc), other.public_key_pem())
    # a P-384 key is not accepted as a verification key
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    pem = p384.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InputError):
        signing.verify_model(model, bundle, pem)


def test_every_byte_of_the_bundle_is_protected(model: Path, signer: signing.PemSigner) -> None:
    bundle = signing.sign_model(model, signer)
    signing.verify_bundle(bundle, signer.public_key_pem())
    # The DSSE keyid is the only field neither signed nor checked: skip its value.
    keyid = json.dumps(signer.key_id).encode()
    start = bundle.index(keyid) + 1
    skip = range(start, start + len(keyid) - 2)
    failures = 0
    for i in range(len(bundle)):
        if i in skip:
            continue
        for bit in (0x01, 0x20):
            altered = bundle[:i] + bytes([bundle[i] ^ bit]) + bundle[i + 1 :]
            with pytest.raises((IntegrityError, UnsupportedError)):
                signing.verify_bundle(altered, signer.public_key_pem())
            failures += 1
    assert failures == 2 * (len(bundle) - len(skip))


def _resign_payload(bundle: bytes, edit, signer=None) -> bytes:
    doc = json.loads(bundle)
    st = payload_of(bundle)
    edit(st)
    payload = json.dumps(st).encode()
    doc["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    if signer is not None:
        from sundown import dsse

        env = dsse.sign(dsse.INTOTO_PAYLOAD_TYPE, payload, signer)
        doc["dsseEnvelope"]["signatures"] = env.to_json()["signatures"]
    return json.dumps(doc).encode()


def test_altered_payload_fails(model: Path, signer: signing.PemSigner) -> None:
    bundle = signing.sign_model(model, signer)
    pem = signer.public_key_pem()

    def change_digest(st: dict) -> None:
        st["predicate"]["resources"][0]["digest"] = "00" * 32

    def drop_resource(st: dict) -> None:
        del st["predicate"]["resources"][0]

    for edit in (change_digest, drop_resource):
        with pytest.raises(IntegrityError, match="does not verify"):
            signing.verify_bundle(_resign_payload(bundle, edit), pem)
        # Even re-signed by the right key, resources that do not match the subject digest fail.
        with pytest.raises(IntegrityError, match="subject digest"):
            signing.verify_bundle(_resign_payload(bundle, edit, signer), pem)


def test_altered_signature_and_structure_fail(model: Path, signer: signing.PemSigner) -> None:
    bundle = signing.sign_model(model, signer)
    pem = signer.public_key_pem()
    doc = json.loads(bundle)

    def variant(change) -> bytes:
        d = json.loads(json.dumps(doc))
        change(d)
        return json.dumps(d).encode()

    sig = base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"])
    other_sig = signer.sign(b"something else")
    cases = {
        "sig": lambda d: d["dsseEnvelope"]["signatures"][0].update(
            sig=base64.b64encode(sig[:-1] + bytes([sig[-1] ^ 1])).decode()
        ),
        "other sig": lambda d: d["dsseEnvelope"]["signatures"][0].update(
            sig=base64.b64encode(other_sig).decode()
        ),
        "no sig": lambda d: d["dsseEnvelope"].update(signatures=[]),
        "two sigs": lambda d: d["dsseEnvelope"]["signatures"].append(
            d["dsseEnvelope"]["signatures"][0]
        ),
        "payload type": lambda d: d["dsseEnvelope"].update(payloadType="application/json"),
        "media type": lambda d: d.update(mediaType="application/vnd.dev.sigstore.bundle+json"),
        "extra field": lambda d: d.update(extra=1),
        "no envelope": lambda d: d.pop("dsseEnvelope"),
        "hint": lambda d: d["verificationMaterial"]["publicKey"].update(hint="00" * 32),
    }
    for name, change in cases.items():
        with pytest.raises(IntegrityError):
            signing.verify_bundle(variant(change), pem)
        assert name
    for junk in (b"", b"not json", b"[]", bundle[:-1], bundle[: len(bundle) // 2]):
        with pytest.raises(IntegrityError):
            signing.verify_bundle(junk, pem)


def test_unsupported_bundles_are_named(model: Path, signer: signing.PemSigner) -> None:
    bundle = signing.sign_model(model, signer)
    pem = signer.public_key_pem()

    def shards(st: dict) -> None:
        st["predicate"]["serialization"]["method"] = "shards"

    with pytest.raises(UnsupportedError, match="shards"):
        signing.verify_bundle(_resign_payload(bundle, shards, signer), pem)

    def compat(st: dict) -> None:
        st["predicateType"] = "https://model_signing/Digests/v0.1"

    with pytest.raises(UnsupportedError, match=r"pre-1\.0"):
        signing.verify_bundle(_resign_payload(bundle, compat, signer), pem)

    def other(st: dict) -> None:
        st["predicateType"] = "https://slsa.dev/provenance/v1"

    with pytest.raises(InputError, match="not a model signature"):
        signing.verify_bundle(_resign_payload(bundle, other, signer), pem)
    doc = json.loads(bundle)
    doc["verificationMaterial"] = {"certificate": {"rawBytes": "AAAA"}, "tlogEntries": []}
    with pytest.raises(UnsupportedError, match="certificate"):
        signing.verify_bundle(json.dumps(doc), pem)


def test_symlinks_and_special_files_are_refused(model: Path, signer: signing.PemSigner) -> None:
    (model / "link.bin").symlink_to(model / "config.json")
    with pytest.raises(InputError, match="symbolic link"):
        signing.sign_model(model, signer)
    (model / "link.bin").unlink()
    os.mkfifo(model / "pipe")
    with pytest.raises(InputError, match="not a regular file"):
        signing.sign_model(model, signer)


def test_missing_model_is_not_found(tmp_path: Path, signer: signing.PemSigner) -> None:
    with pytest.raises(FileNotFoundError):
        signing.sign_model(tmp_path / "nope", signer)


def test_pem_signer(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    write_pem_key(path, serialization.PrivateFormat.TraditionalOpenSSL)
    s = signing.PemSigner.from_file(path)
    assert s.key_id.startswith("sha256:") and len(s.key_id) == 7 + 64
    assert "BEGIN" not in repr(s)
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InputError, match="not a usable PEM private key"):
        signing.PemSigner.from_file(path)
    with pytest.raises(InputError, match="P-256"):
        signing.PemSigner(ec.generate_private_key(ec.SECP384R1()))


def test_many_files_in_parallel(tmp_path: Path, signer: signing.PemSigner) -> None:
    model = tmp_path / "many"
    model.mkdir()
    for i in range(200):
        (model / f"shard-{i:03d}.bin").write_bytes(i.to_bytes(2, "big") * 100)
    bundle = signing.sign_model(model, signer)
    signed = signing.verify_model(model, bundle, signer.public_key_pem())
    assert len(signed.resources) == 200
    assert signing.hash_model(model, workers=1) == signing.hash_model(model, workers=4)
