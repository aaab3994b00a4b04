"""The local keyring (local://NAME): lifecycle, file modes, error kinds, destruction proofs."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors import keyring
from sundown import registry
from sundown.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    KeyDestroyedError,
    NotFoundError,
    UnsupportedError,
)
from sundown.keys import KeyService, Signer, WrappedKey


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1 :]


@pytest.fixture
def kek(sundown_home: Path) -> keyring.LocalKey:
    registry.create_key("local://kek")
    return keyring.open_key_service("local://kek")


def test_create_through_registry_and_protocols(sundown_home: Path) -> None:
    info = registry.create_key("local://alpha")
    assert (info.uri, info.kind, info.algorithm) == ("local://alpha", "kek", "aes256-gcm96")
    assert (info.latest_version, info.min_decryption_version, info.versions) == (1, 1, (1,))
    service = registry.open_key_service("local://alpha")
    assert isinstance(service, KeyService)

    sinfo = registry.create_key("local://signer", signing=True)
    assert (sinfo.kind, sinfo.algorithm) == ("signing", "ecdsa-p256")
    signer = registry.open_signer("local://signer")
    assert isinstance(signer, Signer)


def test_layout_and_permissions(kek: keyring.LocalKey, sundown_home: Path) -> None:
    registry.create_key("local://sig", signing=True)
    keys = sundown_home / "keys"
    assert _mode(keys) == 0o700
    assert _mode(keys / "kek") == 0o700
    assert _mode(keys / "sig") == 0o700
    for f in ("key.json", "v1.key", "sentinel.json"):
        assert _mode(keys / "kek" / f) == 0o600, f
    assert _mode(keys / "sig" / "signing.pem") == 0o600
    assert (keys / "kek" / "v1.key").stat().st_size == 32
    # nothing but the key itself: no temporary files left behind
    assert sorted(p.name for p in (keys / "kek").iterdir()) == [
        "key.json",
        "sentinel.json",
        "v1.key",
    ]
    assert not [p for p in keys.iterdir() if p.name.startswith(".")]
    kek.rotate()
    assert _mode(keys / "kek" / "v2.key") == 0o600
    assert _mode(keys / "kek" / "key.json") == 0o600


def test_sundown_home_default_is_home_dot_sundown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUNDOWN_HOME")
    monkeypatch.setenv("HOME", "/nonexistent-home-for-test")
    assert keyring.home() == Path("/nonexistent-home-for-test/.sundown")


def test_wrap_unwrap_round_trip(kek: keyring.LocalKey) -> None:
    dek, wrapped = kek.new_data_key()
    assert len(dek) == 32
    assert (wrapped.key_uri, wrapped.key_version) == ("local://kek", 1)
    assert dek not in wrapped.ciphertext
    assert kek.unwrap(wrapped) == dek
    dek2, wrapped2 = kek.new_data_key()
    assert dek2 != dek and wrapped2.ciphertext != wrapped.ciphertext


def test_altered_wrapped_key_is_integrity_error(kek: keyring.LocalKey) -> None:
    _, wrapped = kek.new_data_key()
    for i in range(len(wrapped.ciphertext)):
        bad = dataclasses.replace(wrapped, ciphertext=_flip(wrapped.ciphertext, i))
        with pytest.raises(IntegrityError):
            kek.unwrap(bad)
    with pytest.raises(IntegrityError):
        kek.unwrap(dataclasses.replace(wrapped, ciphertext=wrapped.ciphertext[:-1]))


def test_wrapped_key_is_bound_to_uri_and_version(kek: keyring.LocalKey) -> None:
    registry.create_key("local://other")
    other = keyring.open_key_service("local://other")
    _, wrapped = kek.new_data_key()
    # Presented to another key, or relabelled as belonging to it: refused.
    with pytest.raises(IntegrityError, match="belongs to"):
        other.unwrap(wrapped)
    with pytest.raises(IntegrityError):
        other.unwrap(dataclasses.replace(wrapped, key_uri="local://other"))
    # Relabelled with another version of the same key: the AAD no longer matches.
    kek.rotate()
    with pytest.raises(IntegrityError):
        kek.unwrap(dataclasses.replace(wrapped, key_version=2))
    with pytest.raises(IntegrityError, match="no version 7"):
        kek.unwrap(dataclasses.replace(wrapped, key_version=7))


def test_rotate_rewrap_and_retire(kek: keyring.LocalKey, sundown_home: Path) -> None:
    dek1, w1 = kek.new_data_key()
    assert kek.rotate() == 2
    dek2, w2 = kek.new_data_key()
    assert w2.key_version == 2
    # old versions still unwrap after rotation
    assert kek.unwrap(w1) == dek1
    assert kek.unwrap(w2) == dek2
    assert kek.rotate() == 3
    info = kek.info()
    assert (info.latest_version, info.min_decryption_version, info.versions) == (3, 1, (1, 2, 3))

    rewrapped = kek.rewrap([w1, w2])
    assert [w.key_version for w in rewrapped] == [3, 3]
    assert [kek.unwrap(w) for w in rewrapped] == [dek1, dek2]

    kek.retire_versions_below(3)
    info = kek.info()
    assert (info.min_decryption_version, info.versions) == (3, (3,))
    assert not (sundown_home / "keys" / "kek" / "v1.key").exists()
    assert not (sundown_home / "keys" / "kek" / "v2.key").exists()
    with pytest.raises(NotFoundError, match="retired"):
        kek.unwrap(w1)
    with pytest.raises(NotFoundError, match="retired"):
        kek.unwrap(w2)
    assert [kek.unwrap(w) for w in rewrapped] == [dek1, dek2]
    # idempotent; cannot go down, cannot retire the latest version
    kek.retire_versions_below(2)
    assert kek.info().min_decryption_version == 3
    with pytest.raises(InputError):
        kek.retire_versions_below(4)
    with pytest.raises(InputError):
        kek.retire_versions_below(0)


def test_concurrent_rotations_do_not_lose_versions(kek: keyring.LocalKey) -> None:
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(kek.rotate())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(2, 10))
    assert kek.info().latest_version == 9


def test_destroy_kek_with_evidence(kek: keyring.LocalKey, sundown_home: Path) -> None:
    kek.new_data_key()
    kek.rotate()
    kek.rotate()
    kek.retire_versions_below(2)
    _, w3 = kek.new_data_key()
    key_dir = sundown_home / "keys" / "kek"
    before = {p.name: p.read_bytes() for p in key_dir.iterdir() if p.name.endswith(".key")}

    evidence = kek.destroy()

    assert evidence.uri == "local://kek"
    assert evidence.versions_destroyed == (2, 3)
    assert evidence.verified is True
    assert evidence.checks["key files remaining"] == "none"
    assert evidence.checks["info()"] == "KeyDestroyedError"
    assert evidence.checks["sentinel unwrap"] == "KeyDestroyedError"
    assert evidence.checks["sentinel unwrap from key file"] == "v3 key file absent"
    assert "versions 1 retired" in evidence.method
    assert sorted(p.name for p in key_dir.iterdir()) == [".lock", "DESTROYED.json"]
    tomb = (key_dir / "DESTROYED.json").read_bytes()
    for material in before.values():
        assert material not in tomb
    for material in before.values():
        assert material.hex() not in repr(evidence)

    with pytest.raises(KeyDestroyedError):
        kek.info()
    with pytest.raises(KeyDestroyedError):
        kek.unwrap(w3)
    with pytest.raises(KeyDestroyedError):
        kek.new_data_key()
    with pytest.raises(KeyDestroyedError):
        keyring.open_key_service("local://kek")
    with pytest.raises(KeyDestroyedError):
        registry.open_key_service("local://kek")
    # destroyed is told apart from never-existed
    with pytest.raises(NotFoundError) as missing:
        keyring.open_key_service("local://never")
    assert not isinstance(missing.value, KeyDestroyedError)
    # names are never reused
    with pytest.raises(ConflictError, match="destroyed"):
        registry.create_key("local://kek")
    # re-running destroy is idempotent and reports the same evidence
    again = kek.destroy()
    assert again.verified and again.destroyed_at == evidence.destroyed_at
    assert again.versions_destroyed == (2, 3)


def test_destroy_finishes_after_a_crash_halfway(kek: keyring.LocalKey, sundown_home: Path) -> None:
    key_dir = sundown_home / "keys" / "kek"
    kek._begin_destroy()  # the tombstone is written, then the process "dies"
    assert (key_dir / "v1.key").exists()
    with pytest.raises(KeyDestroyedError):  # fails closed meanwhile
        kek.new_data_key()
    evidence = kek.destroy()
    assert evidence.verified
    assert not (key_dir / "v1.key").exists()


def test_destroy_stops_before_deleting_when_the_sentinel_does_not_unwrap(
    kek: keyring.LocalKey, sundown_home: Path
) -> None:
    key_dir = sundown_home / "keys" / "kek"
    sentinel = json.loads((key_dir / "sentinel.json").read_text())
    sentinel["ciphertext"] = sentinel["ciphertext"][:-4] + "AAAA"
    (key_dir / "sentinel.json").write_text(json.dumps(sentinel))
    with pytest.raises(IntegrityError, match="nothing was deleted"):
        kek.destroy()
    assert (key_dir / "v1.key").exists()
    assert not (key_dir / "DESTROYED.json").exists()


def test_destroy_evidence_is_not_verified_when_a_key_file_survives(
    kek: keyring.LocalKey, sundown_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate a filesystem that refuses the unlink of one version file.
    real_shred = keyring._shred

    def stubborn(path: Path) -> bool:
        if path.name == "v1.key":
            return True
        return real_shred(path)

    monkeypatch.setattr(keyring, "_shred", stubborn)
    evidence = kek.destroy()
    assert evidence.verified is False
    assert evidence.checks["key files remaining"] == "v1.key"
    assert evidence.checks["sentinel unwrap from key file"].startswith("succeeded")


def test_signing_key(sundown_home: Path) -> None:
    registry.create_key("local://signer", signing=True)
    signer = keyring.open_signer("local://signer")
    pem = signer.public_key_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    signature = signer.sign(b"message")
    public.verify(signature, b"message", ec.ECDSA(hashes.SHA256()))
    # key id: URI plus the fingerprint of the public key, stable across opens
    assert signer.key_id.startswith("local://signer#sha256:")
    assert keyring.open_signer("local://signer").key_id == signer.key_id
    assert "PRIVATE" not in repr(signer)
    with pytest.raises(InputError, match="signing key"):
        keyring.open_key_service("local://signer").new_data_key()
    with pytest.raises(UnsupportedError):
        keyring.open_key_service("local://signer").rotate()

    evidence = keyring.open_key_service("local://signer").destroy()
    assert evidence.verified and evidence.versions_destroyed == (1,)
    assert evidence.checks["sign"] == "KeyDestroyedError"
    with pytest.raises(KeyDestroyedError):
        signer.sign(b"message")
    with pytest.raises(KeyDestroyedError):
        keyring.open_signer("local://signer")


def test_error_kinds(kek: keyring.LocalKey, sundown_home: Path) -> None:
    with pytest.raises(ConflictError):
        registry.create_key("local://kek")
    with pytest.raises(ConflictError):
        registry.create_key("local://kek", signing=True)
    with pytest.raises(NotFoundError):
        registry.open_key_service("local://missing")
    with pytest.raises(NotFoundError):
        registry.open_signer("local://missing")
    with pytest.raises(InputError, match="not a signing key"):
        registry.open_signer("local://kek")
    with pytest.raises(InputError, match="no public key"):
        kek.public_key_pem()
    for bad in ("local://", "local://a/b", "local://../x", "local://.hidden", "local://a b", "x"):
        with pytest.raises(InputError):
            keyring.create_key(bad)


def test_key_file_readable_by_others_is_refused(kek: keyring.LocalKey, sundown_home: Path) -> None:
    path = sundown_home / "keys" / "kek" / "v1.key"
    os.chmod(path, 0o644)
    with pytest.raises(InputError, match="chmod 600"):
        kek.new_data_key()
    os.chmod(path, 0o600)
    kek.new_data_key()


def test_messages_and_reprs_hold_no_key_material(kek: keyring.LocalKey, sundown_home: Path) -> None:
    material = (sundown_home / "keys" / "kek" / "v1.key").read_bytes()
    dek, wrapped = kek.new_data_key()
    texts = [repr(kek), repr(kek.info()), str(kek.info())]
    try:
        kek.unwrap(dataclasses.replace(wrapped, ciphertext=_flip(wrapped.ciphertext, 20)))
    except IntegrityError as exc:
        texts.append(str(exc))
    for text in texts:
        for secret in (material, dek):
            assert secret.hex() not in text
            assert repr(secret) not in text


def test_wrapped_key_of_another_service_type_is_refused(kek: keyring.LocalKey) -> None:
    foreign = WrappedKey("local://kek", 1, b"vault:v1:abcdef")
    with pytest.raises(IntegrityError, match="malformed"):
        kek.unwrap(foreign)


# --------------------------------------------------------------------------------------------
# A destruction killed at each point finishes on the re-run, proved from the key files

_KILL_AT = """
import os, sys
from connectors import keyring
real = keyring._shred
calls = [0]
stop = int(sys.argv[1])
def dying(path):
    if calls[0] == stop:
        os._exit(9)  # the process dies here: no cleanup, no exception handler runs
    calls[0] += 1
    return real(path)
keyring._shred = dying
keyring.LocalKey("local://kek").destroy()
os._exit(0)
"""


def _kill_destroy_at(point: int, home: Path) -> int:
    import subprocess
    import sys

    env = {**os.environ, "SUNDOWN_HOME": str(home)}
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_AT, str(point)], env=env, cwd=root, timeout=60
    )
    return proc.returncode


@pytest.mark.parametrize("point", [0, 1, 2, 3])
def test_destroy_killed_at_each_point_is_finished_by_the_rerun(
    kek: keyring.LocalKey, sundown_home: Path, point: int
) -> None:
    """Files are shredded in name order (key.json, sentinel.json, v1.key, v2.key) after the
    tombstone: the process is killed before the shred number ``point``."""
    kek.rotate()  # two version files, so the kill can land between them
    _, wrapped = kek.new_data_key()
    key_dir = sundown_home / "keys" / "kek"
    assert _kill_destroy_at(point, sundown_home) == 9
    assert (key_dir / "DESTROYED.json").exists()
    left = sorted(p.name for p in key_dir.iterdir() if p.name.endswith(".key"))
    assert left, "the kill must leave key material behind for this test to mean anything"
    # The tombstone is not the proof: the leftover files are found.
    half = kek.verify_destroyed()
    assert half.verified is False
    assert half.checks["key files remaining"] != "none"
    assert not dataclasses.replace(half).ce_claimable
    # The re-run (through the flows' entry point, which does no liveness check) finishes it.
    evidence = registry.key_for_destruction("local://kek").destroy()
    assert evidence.verified is True, evidence.checks
    assert sorted(p.name for p in key_dir.iterdir()) == [".lock", "DESTROYED.json"]
    assert evidence.checks["sentinel unwrap from key file"] == "v2 key file absent"
    assert evidence.ce_claimable
    assert "not a media sanitization" in evidence.limits
    with pytest.raises(KeyDestroyedError):
        kek.unwrap(wrapped)
    assert kek.verify_destroyed().verified


def test_material_that_cannot_be_removed_is_not_verified(
    kek: keyring.LocalKey, sundown_home: Path
) -> None:
    """An immutable key file (chattr +i: even root cannot write or unlink it) survives the
    destroy: the evidence names it, is not verified, and the sentinel still unwraps from it."""
    import shutil
    import subprocess

    if shutil.which("chattr") is None:
        pytest.fail("chattr is needed to make a file the destroy cannot remove")
    key_dir = sundown_home / "keys" / "kek"
    victim = key_dir / "v1.key"
    if subprocess.run(["chattr", "+i", str(victim)], capture_output=True).returncode != 0:
        pytest.xfail("this filesystem has no immutable attribute (chattr +i refused)")
    try:
        evidence = kek.destroy()
        assert evidence.verified is False
        assert "v1.key" in evidence.checks["key files remaining"]
        assert "v1.key" in evidence.checks["removal errors"]
        assert evidence.checks["sentinel unwrap from key file"].startswith("succeeded")
        assert not evidence.ce_claimable
        assert kek.verify_destroyed().verified is False
    finally:
        subprocess.run(["chattr", "-i", str(victim)], check=True)
    # Once the obstacle is gone, the re-run finishes and proves it.
    assert kek.destroy().verified


def test_key_files_restored_from_a_backup_are_found(
    kek: keyring.LocalKey, sundown_home: Path
) -> None:
    """The tombstone stays, the key files come back from a backup: the key is usable again from
    its files, and verify_destroyed says so."""
    key_dir = sundown_home / "keys" / "kek"
    backup = {p.name: p.read_bytes() for p in key_dir.iterdir() if p.name != ".lock"}
    _, wrapped = kek.new_data_key()
    assert kek.destroy().verified
    for name, data in backup.items():
        (key_dir / name).write_bytes(data)
        (key_dir / name).chmod(0o600)
    evidence = kek.verify_destroyed()
    assert evidence.verified is False
    assert "v1.key" in evidence.checks["key files remaining"]
    assert evidence.checks["sentinel unwrap from key file"].startswith("succeeded")
    # whole directory restored, tombstone gone: the key simply answers
    (key_dir / "DESTROYED.json").unlink()
    assert kek.unwrap(wrapped)
    again = kek.verify_destroyed()
    assert again.verified is False and again.checks["info()"].startswith("succeeded")


def test_cli_destroy_finishes_a_destroy_interrupted_after_the_tombstone(
    kek: keyring.LocalKey, sundown_home: Path
) -> None:
    """`sundown keys destroy` on a half-destroyed key finishes it (it does not stop at the
    tombstone with KeyDestroyedError)."""
    import subprocess
    import sys

    kek._begin_destroy()
    key_dir = sundown_home / "keys" / "kek"
    assert (key_dir / "v1.key").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "keys", "destroy", "local://kek", "--yes"],
        env={**os.environ, "SUNDOWN_HOME": str(sundown_home)},
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "check key files remaining: none" in proc.stdout
    assert proc.stdout.rstrip().endswith("verified: yes")
    assert not (key_dir / "v1.key").exists()
