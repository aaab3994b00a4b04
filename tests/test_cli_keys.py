"""The CLI of keys and signatures: ``sundown keys ...``, ``sundown sign``,
``sundown verify-signature``. Exit codes and one-line errors come from ``cli.main``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.cli_run import one_error_line, run
from tests.test_signing import make_model, write_pem_key


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def test_key_lifecycle(capsys: pytest.CaptureFixture[str], sundown_home: Path) -> None:
    code, out, _ = run(capsys, "keys", "create", "local://kek")
    assert code == 0 and "created key-encryption key local://kek" in out
    code, out, _ = run(capsys, "keys", "rotate", "local://kek")
    assert code == 0 and "version 2" in out
    code, out, _ = run(capsys, "keys", "rotate", "local://kek")
    code, out, _ = run(capsys, "keys", "info", "local://kek")
    assert code == 0
    assert "kind: kek" in out and "latest version: 3" in out and "versions present: 1..3" in out
    code, out, _ = run(capsys, "keys", "retire", "local://kek", "--below", "3", "--yes")
    assert code == 0 and "versions present: 3" in out
    code, out, _ = run(capsys, "keys", "info", "local://kek")
    assert "minimum decryption version: 3" in out

    code, out, err = run(capsys, "keys", "destroy", "local://kek", "--yes")
    assert code == 0, err
    assert out.startswith("destroyed local://kek (versions 3) at ")
    assert "check key files remaining: none" in out
    assert "check sentinel unwrap: KeyDestroyedError" in out
    assert out.rstrip().endswith("verified: yes")
    # key material never printed
    assert not any(len(word) >= 43 and word.isalnum() for word in out.split())

    code, _, err = run(capsys, "keys", "info", "local://kek")
    assert code == 5 and "destroyed" in one_error_line(err)
    code, _, err = run(capsys, "keys", "rotate", "local://kek")
    assert code == 5 and "KeyDestroyedError" in one_error_line(err)
    code, _, err = run(capsys, "keys", "create", "local://kek")
    assert code == 6 and "never reused" in one_error_line(err)


def test_destructive_commands_need_confirmation(
    capsys: pytest.CaptureFixture[str], sundown_home: Path, no_terminal: None
) -> None:
    run(capsys, "keys", "create", "local://kek")
    run(capsys, "keys", "rotate", "local://kek")
    code, _, err = run(capsys, "keys", "destroy", "local://kek")
    assert code == 2 and "pass --yes" in one_error_line(err)
    code, _, err = run(capsys, "keys", "retire", "local://kek", "--below", "2")
    assert code == 2 and "pass --yes" in one_error_line(err)
    code, out, _ = run(capsys, "keys", "info", "local://kek")
    assert code == 0 and "versions present: 1..2" in out  # nothing happened


def test_destroy_confirmation_on_a_terminal(
    capsys: pytest.CaptureFixture[str], sundown_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    run(capsys, "keys", "create", "local://kek")
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, _, err = run(capsys, "keys", "destroy", "local://kek")
    assert code == 1 and "aborted" in err
    assert (sundown_home / "keys" / "kek" / "v1.key").exists()
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, _ = run(capsys, "keys", "destroy", "local://kek")
    assert code == 0 and "verified: yes" in out


def test_signing_key_and_public_key(capsys: pytest.CaptureFixture[str], sundown_home: Path) -> None:
    code, out, _ = run(capsys, "keys", "create", "local://signer", "--signing")
    assert code == 0 and "key id: local://signer#sha256:" in out
    code, out, _ = run(capsys, "keys", "public-key", "local://signer")
    assert code == 0
    key = serialization.load_pem_public_key(out.encode())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    code, out, _ = run(capsys, "keys", "info", "local://signer")
    assert "kind: signing" in out and "key id: local://signer#sha256:" in out
    code, _, err = run(capsys, "keys", "rotate", "local://signer")
    assert code == 6 and "signing key" in one_error_line(err)
    run(capsys, "keys", "create", "local://kek")
    code, _, err = run(capsys, "keys", "public-key", "local://kek")
    assert code == 2 and "not a signing key" in one_error_line(err)


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["keys", "info", "local://missing"], 4, "no key local://missing"),
        (["keys", "create", "local://a/b"], 2, "bad key name"),
        (["keys", "create", "nope"], 2, "not a URL"),
        (["keys", "info", "gopher://x"], 2, "unknown URL scheme"),
    ],
)
def test_key_errors(
    capsys: pytest.CaptureFixture[str], sundown_home: Path, args: list[str], code: int, text: str
) -> None:
    got, _, err = run(capsys, *args)
    assert got == code and text in one_error_line(err)


def test_create_twice_is_a_conflict(capsys: pytest.CaptureFixture[str], sundown_home: Path) -> None:
    run(capsys, "keys", "create", "local://kek")
    code, _, err = run(capsys, "keys", "create", "local://kek")
    assert code == 6 and "already exists" in one_error_line(err)


@pytest.fixture
def signed_model(
    capsys: pytest.CaptureFixture[str], sundown_home: Path, tmp_path: Path
) -> tuple[Path, Path, Path]:
    model = make_model(tmp_path)
    run(capsys, "keys", "create", "local://signer", "--signing")
    _, pem, _ = run(capsys, "keys", "public-key", "local://signer")
    public = tmp_path / "signer.pub"
    public.write_text(pem)
    sig = tmp_path / "model.sig"
    code, out, err = run(
        capsys, "sign", "--key", "local://signer", str(model), "--signature", str(sig)
    )
    assert code == 0, err
    assert out.startswith(f"signed {model} (6 files, model digest sha256:")
    return model, sig, public


def test_sign_and_verify(capsys: pytest.CaptureFixture[str], signed_model) -> None:
    model, sig, public = signed_model
    code, out, err = run(
        capsys, "verify-signature", "--public-key", str(public), str(model), "--signature", str(sig)
    )
    assert code == 0, err
    assert out.startswith(f"verified {model}: 6 files match {sig}")
    # the public key may also be named by the signing key's URI
    code, _, _ = run(
        capsys, "verify-signature", "--public-key", "local://signer", str(model), "--signature",
        str(sig),
    )  # fmt: skip
    assert code == 0


@pytest.mark.parametrize(
    ("tamper", "text"),
    [
        (lambda m: (m / "config.json").write_text("{}"), "1 changed (config.json)"),
        (lambda m: (m / "a.txt").rename(m / "b.txt"), "1 missing (a.txt); 1 not signed (b.txt)"),
        (lambda m: (m / "new.bin").write_text("x"), "1 not signed (new.bin)"),
    ],
    ids=["changed", "renamed", "added"],
)
def test_verify_tampered_model(
    capsys: pytest.CaptureFixture[str], signed_model, tamper, text: str
) -> None:
    model, sig, public = signed_model
    tamper(model)
    code, _, err = run(
        capsys, "verify-signature", "--public-key", str(public), str(model), "--signature", str(sig)
    )
    line = one_error_line(err)
    assert code == 3 and "IntegrityError" in line and text in line


def test_verify_failures(capsys: pytest.CaptureFixture[str], signed_model, tmp_path: Path) -> None:
    model, sig, public = signed_model
    other = tmp_path / "other.pub"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def verify(pub: Path | str, m: Path, s: Path) -> tuple[int, str]:
        code, _, err = run(
            capsys, "verify-signature", "--public-key", str(pub), str(m), "--signature", str(s)
        )
        return code, one_error_line(err)

    code, line = verify(other, model, sig)
    assert code == 3 and "different public key" in line
    code, line = verify(public, model, tmp_path / "missing.sig")
    assert code == 4 and "missing.sig" in line
    code, line = verify(public, tmp_path / "no-model", sig)
    assert code == 4 and "no-model" in line
    code, line = verify(tmp_path / "missing.pub", model, sig)
    assert code == 4 and "missing.pub" in line
    not_a_key = tmp_path / "not-a-key.pub"
    not_a_key.write_text("hello")
    code, line = verify(not_a_key, model, sig)
    assert code == 2 and "PEM public key" in line
    bad = tmp_path / "bad.sig"
    bad.write_bytes(sig.read_bytes().replace(b'"sig":"M', b'"sig":"N'))
    code, line = verify(public, model, bad)
    assert code == 3 and "IntegrityError" in line
    bad.write_text("not json")
    code, line = verify(public, model, bad)
    assert code == 3 and "not JSON" in line


def test_sign_with_pem_file_and_destroyed_key(
    capsys: pytest.CaptureFixture[str], sundown_home: Path, tmp_path: Path
) -> None:
    model = make_model(tmp_path)
    pem = tmp_path / "key.pem"
    key = write_pem_key(pem)
    public = tmp_path / "key.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    sig = model / "model.sig"
    code, _, err = run(capsys, "sign", "--key", str(pem), str(model), "--signature", str(sig))
    assert code == 0, err
    code, _, err = run(
        capsys, "verify-signature", "--public-key", str(public), str(model), "--signature", str(sig)
    )
    assert code == 0, err

    run(capsys, "keys", "create", "local://gone", "--signing")
    run(capsys, "keys", "destroy", "local://gone", "--yes")
    code, _, err = run(
        capsys, "sign", "--key", "local://gone", str(model), "--signature", str(tmp_path / "x.sig")
    )
    assert code == 5 and "destroyed" in one_error_line(err)
    assert not (tmp_path / "x.sig").exists()
    code, _, err = run(
        capsys, "sign", "--key", "local://kek-missing", str(model), "--signature", str(sig)
    )
    assert code == 4
    code, _, err = run(
        capsys, "sign", "--key", str(pem), str(tmp_path / "nothing"), "--signature", str(sig)
    )
    assert code == 4 and "nothing" in one_error_line(err)


def test_console_script_end_to_end(sundown_home: Path, tmp_path: Path) -> None:
    """The installed ``sundown`` command, as a user runs it."""
    exe = Path(sys.executable).parent / "sundown"
    env = {**os.environ, "SUNDOWN_HOME": str(sundown_home)}
    model = make_model(tmp_path)

    def sd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(exe), *args], capture_output=True, text=True, env=env, timeout=120
        )

    assert sd("keys", "create", "local://e2e", "--signing").returncode == 0
    pub = sd("keys", "public-key", "local://e2e")
    (tmp_path / "e2e.pub").write_text(pub.stdout)
    sig = str(tmp_path / "e2e.sig")
    assert sd("sign", "--key", "local://e2e", str(model), "--signature", sig).returncode == 0
    ok = sd("verify-signature", "--public-key", str(tmp_path / "e2e.pub"), str(model),
            "--signature", sig)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    (model / "config.json").write_text("tampered")
    bad = sd("verify-signature", "--public-key", str(tmp_path / "e2e.pub"), str(model),
             "--signature", sig)  # fmt: skip
    assert bad.returncode == 3
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "1 changed (config.json)" in bad.stderr
