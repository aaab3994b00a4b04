"""``sundown encrypt`` / ``sundown decrypt`` against the local keyring and the file store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sundown.registry import create_key, open_key_service
from tests.cli_run import one_error_line, run


@pytest.fixture
def model(tmp_path: Path) -> tuple[Path, bytes]:
    create_key("local://cli-test")
    data = os.urandom(2 * 1024 * 1024 + 333)
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    return path, data


@pytest.fixture
def encrypted(
    tmp_path: Path, model: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> Path:
    """The model encrypted under local://cli-test by ``sundown encrypt``: ``m.enc``."""
    enc = tmp_path / "m.enc"
    assert run(capsys, "encrypt", "--key", "local://cli-test", str(model[0]), str(enc))[0] == 0
    return enc


def test_round_trip_with_paths(
    tmp_path: Path, model: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    src, data = model
    enc, out = tmp_path / "model.enc", tmp_path / "model.out"
    code, stdout, _ = run(capsys, "encrypt", "--key", "local://cli-test", str(src), str(enc))
    assert code == 0
    assert "sha256" in stdout
    sidecar = json.loads((tmp_path / "model.enc.sidecar.json").read_text())
    assert sidecar["key_uri"] == "local://cli-test"
    assert sidecar["associated_data"] == {"system": "default", "path": "model.enc", "version": "1"}

    code, stdout, _ = run(capsys, "decrypt", str(enc), str(out))
    assert code == 0, stdout
    assert out.read_bytes() == data


# The key and the artifact binding of the bound round trip.
BINDING = ("--key", "local://cli-test", "--system", "fraud",
           "--artifact-path", "weights/model.safetensors", "--artifact-version", "7")  # fmt: skip


def test_round_trip_with_urls_and_bound_artifact(
    tmp_path: Path, model: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    src, data = model
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    enc_url = (bucket / "models").as_uri() + "/m.enc"
    (bucket / "models").mkdir()
    code, _, err = run(
        capsys,
        "encrypt",
        *BINDING,
        src.as_uri(),
        enc_url,
    )
    assert code == 0, err
    assert (bucket / "models" / "m.enc.sidecar.json").exists()

    code, _, err = run(
        capsys, "decrypt", "--artifact-version", "8", enc_url, str(tmp_path / "wrong")
    )
    assert code == 3
    assert "version '8'" in one_error_line(err)
    assert not (tmp_path / "wrong").exists()

    code, _, err = run(
        capsys,
        "decrypt",
        *BINDING,
        enc_url,
        str(tmp_path / "plain"),
    )
    assert code == 0, err
    assert (tmp_path / "plain").read_bytes() == data


def test_tampered_ciphertext_exits_3_without_output(
    tmp_path: Path, encrypted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enc = encrypted
    raw = bytearray(enc.read_bytes())
    raw[1_500_000] ^= 0x01
    enc.write_bytes(bytes(raw))
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "out"))
    assert code == 3
    line = one_error_line(err)
    assert "IntegrityError" in line and str(enc) in line
    assert not (tmp_path / "out").exists()


def test_tampered_sidecar_and_wrong_key_exit_3(
    tmp_path: Path, encrypted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enc = encrypted
    side = tmp_path / "m.enc.sidecar.json"
    original = side.read_text()

    side.write_text(original.replace('"version": "1"', '"version": "2"'))
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "a"))
    assert code == 3, err
    one_error_line(err)

    create_key("local://other-key")  # a real key, but not the one that wrapped the DEK
    side.write_text(original.replace("local://cli-test", "local://other-key"))
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "b"))
    assert code == 3, err
    one_error_line(err)

    side.write_text(original)
    code, _, err = run(
        capsys, "decrypt", "--key", "local://other-key", str(enc), str(tmp_path / "c")
    )
    assert code == 3
    assert "local://cli-test" in one_error_line(err)
    assert not any((tmp_path / n).exists() for n in "abc")


def test_missing_files_exit_4(
    tmp_path: Path, model: tuple[Path, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    src, _ = model
    code, _, err = run(
        capsys, "encrypt", "--key", "local://cli-test", str(tmp_path / "nope"), str(tmp_path / "x")
    )
    assert code == 4
    assert "nope" in one_error_line(err)

    code, _, err = run(capsys, "decrypt", str(tmp_path / "nope.enc"), str(tmp_path / "x"))
    assert code == 4
    assert "nope.enc" in one_error_line(err)

    (tmp_path / "lonely.enc").write_bytes(b"\x28" + bytes(60))
    code, _, err = run(capsys, "decrypt", str(tmp_path / "lonely.enc"), str(tmp_path / "x"))
    assert code == 4
    assert "sidecar" in one_error_line(err)

    code, _, err = run(
        capsys, "encrypt", "--key", "local://no-such-key", str(src), str(tmp_path / "y")
    )
    assert code == 4
    one_error_line(err)


def test_destroyed_key_exits_5(
    tmp_path: Path, encrypted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enc = encrypted
    open_key_service("local://cli-test").destroy()
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "out"))
    assert code == 5
    assert "KeyDestroyedError" in one_error_line(err)
    assert not (tmp_path / "out").exists()


def test_existing_destination_needs_overwrite(
    tmp_path: Path,
    model: tuple[Path, bytes],
    encrypted: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src, data = model
    enc = encrypted
    code, _, err = run(capsys, "encrypt", "--key", "local://cli-test", str(src), str(enc))
    assert code == 6
    assert "already exists" in one_error_line(err)
    args = ["encrypt", "--key", "local://cli-test", "--overwrite", str(src), str(enc)]
    assert run(capsys, *args)[0] == 0
    (tmp_path / "out").write_bytes(b"old")
    assert run(capsys, "decrypt", str(enc), str(tmp_path / "out"))[0] == 6
    assert run(capsys, "decrypt", "--overwrite", str(enc), str(tmp_path / "out"))[0] == 0
    assert (tmp_path / "out").read_bytes() == data


def test_console_entry_point(tmp_path: Path, model: tuple[Path, bytes]) -> None:
    src, data = model
    enc, out = tmp_path / "s.enc", tmp_path / "s.out"
    for argv in (
        ["encrypt", "--key", "local://cli-test", str(src), str(enc)],
        ["decrypt", str(enc), str(out)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "cli", *argv], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    assert out.read_bytes() == data
    enc.write_bytes(enc.read_bytes()[:-1])
    done = subprocess.run(
        [sys.executable, "-m", "cli", "decrypt", str(enc), str(tmp_path / "t")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3
    assert len(done.stderr.strip().splitlines()) == 1
