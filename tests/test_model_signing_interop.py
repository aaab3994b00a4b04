"""Interoperability with the reference implementation: the ``model_signing`` CLI (package
``model-signing``, test dependency) run as a subprocess, in both directions.

- ``model_signing verify key`` accepts bundles Sundown signs (PEM key and keyring key);
- Sundown's verifier accepts bundles ``model_signing sign key`` makes;
- both make the same statement for the same model;
- after tampering (changed, renamed, added, removed file; altered payload or signature) both
  verifiers refuse, whoever signed.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sundown import registry, signing
from sundown.errors import IntegrityError
from tests.test_signing import make_model

pytestmark = pytest.mark.timeout(300)

MODEL_SIGNING = shutil.which("model_signing", path=str(Path(sys.executable).parent))


def model_signing(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert MODEL_SIGNING, "the model_signing CLI (dev dependency model-signing) is not installed"
    return subprocess.run(
        [MODEL_SIGNING, *map(str, args)], capture_output=True, text=True, timeout=120
    )


def ms_verify(model: Path, sig: Path, public_key: Path) -> subprocess.CompletedProcess[str]:
    return model_signing("verify", "key", model, "--signature", sig, "--public_key", public_key)


def ms_sign(model: Path, sig: Path, private_key: Path) -> None:
    done = model_signing("sign", "key", model, "--signature", sig, "--private_key", private_key)
    assert done.returncode == 0, done.stderr
    assert "Signing succeeded" in done.stdout


def _write_keys(directory: Path) -> tuple[Path, Path]:
    """A fresh P-256 key pair as PEM files (generated at run time, never committed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / "signing-key.pem"
    public = directory / "signing-key.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


class Signed:
    """One model signed once by each tool with the same key (the CLI is slow to start)."""

    def __init__(self, root: Path):
        self.root = root
        self.model = make_model(root)
        self.private, self.public = _write_keys(root)
        self.ours, self.theirs = root / "ours.sig", root / "theirs.sig"
        sundown_sign(self.model, self.ours, self.private)
        ms_sign(self.model, self.theirs, self.private)

    def copy_model(self, where: Path) -> Path:
        """A private copy of the model (same directory name, so the same subject name)."""
        target = where / "copy" / self.model.name
        shutil.copytree(self.model, target)
        return target


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Signed:
    return Signed(tmp_path_factory.mktemp("interop"))


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return _write_keys(tmp_path)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path)


def sundown_sign(model: Path, sig: Path, private: Path) -> None:
    bundle = signing.sign_model(model, signing.PemSigner.from_file(private), signature_path=sig)
    signing.write_bundle(sig, bundle)


def statement(sig: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(sig.read_bytes())["dsseEnvelope"]["payload"]))


def test_model_signing_verifies_sundown_bundle(model: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    sig = model / "model.sig"  # inside the model: left out of the signature by both tools
    sundown_sign(model, sig, private)
    done = ms_verify(model, sig, public)
    assert done.returncode == 0, done.stderr
    assert "Verification succeeded" in done.stdout


def test_model_signing_verifies_keyring_bundle(model: Path, tmp_path: Path) -> None:
    registry.create_key("local://interop", signing=True)
    signer = registry.open_signer("local://interop")
    public = tmp_path / "interop.pub"
    public.write_bytes(signer.public_key_pem())
    sig = tmp_path / "outside.sig"
    signing.write_bundle(sig, signing.sign_model(model, signer, signature_path=sig))
    done = ms_verify(model, sig, public)
    assert done.returncode == 0, done.stderr


def test_sundown_verifies_model_signing_bundle(model: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    sig = model / "model.sig"
    ms_sign(model, sig, private)
    signed = signing.verify_model(model, sig.read_bytes(), public.read_bytes(), signature_path=sig)
    assert signed.name == "model"
    assert "sub/deep/w.safetensors" in signed.resources
    assert ".gitignore" not in signed.resources


def test_both_make_the_same_statement(signed: Signed) -> None:
    a, b = statement(signed.ours), statement(signed.theirs)
    for st in (a, b):
        st["predicate"]["serialization"]["ignore_paths"].sort()
    assert a == b
    # The resource order is model_signing's (path components), which the subject digest follows.
    assert [r["name"] for r in a["predicate"]["resources"]][:2] == ["a/b", "a.txt"]
    # Same key, same hint.
    hints = [
        json.loads(p.read_bytes())["verificationMaterial"]["publicKey"]["hint"]
        for p in (signed.ours, signed.theirs)
    ]
    assert hints[0] == hints[1]


TAMPERS: dict[str, Callable[[Path], object]] = {
    "changed": lambda m: (m / "config.json").write_bytes(b'{"layers": 3}'),
    "renamed": lambda m: (m / "a.txt").rename(m / "a.md"),
    "added": lambda m: (m / "sub" / "extra.bin").write_bytes(b"extra"),
    "removed": lambda m: (m / "a" / "b").unlink(),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampered_model_fails_for_both_verifiers(
    signed: Signed, tmp_path: Path, tamper: str
) -> None:
    model = signed.copy_model(tmp_path)
    # untouched copy verifies with both bundles
    signing.verify_model(model, signed.ours.read_bytes(), signed.public.read_bytes())
    signing.verify_model(model, signed.theirs.read_bytes(), signed.public.read_bytes())
    TAMPERS[tamper](model)
    done = ms_verify(model, signed.ours, signed.public)
    assert done.returncode != 0 and "Verification failed" in done.stderr
    with pytest.raises(IntegrityError, match="does not match its signature"):
        signing.verify_model(model, signed.theirs.read_bytes(), signed.public.read_bytes())


def _alter_payload(sig: Path, out: Path) -> None:
    doc = json.loads(sig.read_bytes())
    st = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    st["predicate"]["resources"][0]["digest"] = "00" * 32
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
    out.write_text(json.dumps(doc))


def _alter_signature(sig: Path, out: Path) -> None:
    doc = json.loads(sig.read_bytes())
    raw = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[-1] ^= 0x01
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    out.write_text(json.dumps(doc))


@pytest.mark.parametrize("alter", [_alter_payload, _alter_signature], ids=["payload", "signature"])
def test_tampered_bundle_fails_for_both_verifiers(
    signed: Signed, tmp_path: Path, alter: Callable[[Path, Path], None]
) -> None:
    bad_ours, bad_theirs = tmp_path / "bad-ours.sig", tmp_path / "bad-theirs.sig"
    alter(signed.ours, bad_ours)
    alter(signed.theirs, bad_theirs)
    done = ms_verify(signed.model, bad_ours, signed.public)
    assert done.returncode != 0 and "Verification failed" in done.stderr
    with pytest.raises(IntegrityError):
        signing.verify_model(signed.model, bad_theirs.read_bytes(), signed.public.read_bytes())


def test_wrong_key_fails_for_both_verifiers(signed: Signed, tmp_path: Path) -> None:
    _, other = _write_keys(tmp_path)
    done = ms_verify(signed.model, signed.ours, other)
    assert done.returncode != 0 and "Key mismatch" in done.stderr
    with pytest.raises(IntegrityError, match="different public key"):
        signing.verify_model(signed.model, signed.theirs.read_bytes(), other.read_bytes())
