"""Cloud KMS keys (``gcp-kms://``) at the request level, against a local server that answers as
the cloudkms.googleapis.com v1 REST API does (no emulator exists; tests/fixtures/fake_kms.py).

Each test drives the real CLI or connector through google-cloud-kms's REST transport and the
standard credentials chain, then asserts what was sent (method, path, body fields, the AAD) and
what Sundown refused. What the fake cannot prove is in docs/known-gaps.md ("Google Cloud KMS").
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import google_crc32c
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors import gcp_kms
from sundown import registry
from sundown.envelope import read_sidecar_file
from sundown.errors import (
    BackendError,
    ConflictError,
    InputError,
    IntegrityError,
    KeyDestroyedError,
)
from tests.cli_run import created_key, decrypt_moved, run
from tests.fixtures.fake_kms import FakeServer, gcp_key

pytestmark = pytest.mark.timeout(120)


def new_uri(ring: str = "sundown") -> str:
    return (
        f"gcp-kms://projects/sundown-test/locations/europe-west1/keyRings/{ring}"
        f"/cryptoKeys/k-{secrets.token_hex(4)}"
    )


def created(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    return created_key(capsys, new_uri(), *extra)


def test_create_sends_the_documented_requests(
    gcp_kms_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = f"ring-{secrets.token_hex(3)}"
    uri = new_uri(ring)
    name = uri.removeprefix("gcp-kms://")
    parent = name.rsplit("/cryptoKeys/", 1)[0]
    code, out, err = run(capsys, "keys", "create", uri)
    assert code == 0, err
    assert (
        f"created key-encryption key {uri} (gcp-kms-google-symmetric-encryption, version 1)" in out
    )
    # The key ring did not exist: created first (keyRings.create), then cryptoKeys.create.
    rings = gcp_kms_env.sent("POST", "/keyRings")
    assert any(r.query.get("keyRingId") == [ring] for r in rings if r.path.endswith("/keyRings"))
    create = [r for r in gcp_kms_env.sent("POST", f"/v1/{parent}/cryptoKeys") if r.query]
    assert len(create) == 1 and create[0].query["cryptoKeyId"] == [name.rsplit("/", 1)[1]]
    assert create[0].body["purpose"] in (1, "ENCRYPT_DECRYPT")
    assert create[0].body["versionTemplate"]["algorithm"] in (1, "GOOGLE_SYMMETRIC_ENCRYPTION")
    # Again: refused by KMS (ALREADY_EXISTS), named.
    code, _, err = run(capsys, "keys", "create", uri)
    assert code != 0 and "ALREADY_EXISTS" in err, err
    # Signing: ASYMMETRIC_SIGN / EC_SIGN_P256_SHA256; the public key is the version's.
    signing = created(capsys, "--signing")
    body = gcp_kms_env.sent("POST", "/cryptoKeys")[-1].body
    assert body["purpose"] in (5, "ASYMMETRIC_SIGN")
    assert body["versionTemplate"]["algorithm"] in (12, "EC_SIGN_P256_SHA256")
    code, pem, err = run(capsys, "keys", "public-key", signing)
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----"), err
    assert isinstance(serialization.load_pem_public_key(pem.encode()), ec.EllipticCurvePublicKey)
    assert gcp_kms_env.sent(
        "GET", f"{signing.removeprefix('gcp-kms://')}/cryptoKeyVersions/1/publicKey"
    )


def test_encrypt_sends_the_binding_as_aad_and_a_moved_sidecar_is_refused(
    gcp_kms_env: FakeServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    uri = created(capsys)
    name = uri.removeprefix("gcp-kms://")
    src, enc, out = tmp_path / "model.bin", tmp_path / "model.enc", tmp_path / "model.out"
    src.write_bytes(secrets.token_bytes(50_000))
    code, _, err = run(capsys, "encrypt", "--key", uri, str(src), str(enc))
    assert code == 0, err
    sidecar = read_sidecar_file(tmp_path / "model.enc.sidecar.json")
    assert sidecar.key_uri == uri and sidecar.wrapped_key.key_version == 1
    sent = gcp_kms_env.sent("POST", f"/v1/{name}:encrypt")[-1]
    aad = base64.b64encode(hashlib.sha256(sidecar.associated_data).digest()).decode()
    assert sent.body["additionalAuthenticatedData"] == aad
    code, _, err = run(capsys, "decrypt", str(enc), str(out))
    assert code == 0, err
    assert out.read_bytes() == src.read_bytes()
    assert (
        gcp_kms_env.sent("POST", f"/v1/{name}:decrypt")[-1].body["additionalAuthenticatedData"]
        == aad
    )

    # Moved onto another path with its binding rewritten: KMS decrypts with another AAD and
    # refuses (INVALID_ARGUMENT) -> IntegrityError; nothing written.
    code, err = decrypt_moved(capsys, enc)
    assert code == 3 and "IntegrityError" in err and "Decryption failed" in err, err
    assert not (tmp_path / "other.out").exists()
    moved = gcp_kms_env.sent("POST", f"/v1/{name}:decrypt")[-1]
    assert moved.body["additionalAuthenticatedData"] != aad
    with pytest.raises(IntegrityError):
        gcp_kms.GcpKmsKey(uri).bound_to(b"another artifact").unwrap(sidecar.wrapped_key)


def test_rotation_is_a_new_primary_version(
    gcp_kms_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Request level (what a rotation guarantees: the conformance suite)."""
    uri = created(capsys)
    name = uri.removeprefix("gcp-kms://")
    assert gcp_kms.GcpKmsKey(uri).rotate() == 2
    assert gcp_kms_env.sent("POST", f"/v1/{name}/cryptoKeyVersions")
    primary = gcp_kms_env.sent("POST", f"/v1/{name}:updatePrimaryVersion")[-1]
    assert primary.body == {"cryptoKeyVersionId": "2"}


def test_sign_sends_the_digest_to_the_latest_version(
    gcp_kms_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Request level (the signature itself is verified by the conformance suite)."""
    uri = created(capsys, "--signing")
    message = b"statement" * 1000
    signature = registry.open_signer(uri).sign(message)
    sent = gcp_kms_env.sent("POST", ":asymmetricSign")[-1]
    assert sent.path == f"/v1/{uri.removeprefix('gcp-kms://')}/cryptoKeyVersions/1:asymmetricSign"
    raw = hashlib.sha256(message).digest()
    assert sent.body["digest"] == {"sha256": base64.b64encode(raw).decode()}
    assert int(sent.body["digestCrc32c"]) == google_crc32c.value(raw)
    assert signature[0] == 0x30  # DER


def test_destroy_schedules_every_version_and_states_the_window(
    gcp_kms_env: FakeServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    uri = created(capsys)
    name = uri.removeprefix("gcp-kms://")
    assert run(capsys, "keys", "rotate", uri)[0] == 0
    src, enc = tmp_path / "w.bin", tmp_path / "w.enc"
    src.write_bytes(b"weights" * 1000)
    assert run(capsys, "encrypt", "--key", uri, str(src), str(enc))[0] == 0
    # A pending window is the key's own (destroyScheduledDuration): asking for one is refused
    # before anything is destroyed.
    code, _, err = run(capsys, "keys", "destroy", uri, "--yes", "--pending-days", "10")
    assert code == 2 and "--pending-days applies to aws-kms:// keys only" in err, err
    assert not [r for r in gcp_kms_env.sent("POST", ":destroy") if name in r.path]
    code, out, err = run(capsys, "keys", "destroy", uri, "--yes")
    assert code == 0, err
    destroyed = gcp_kms_env.sent("POST", ":destroy")
    assert {r.path for r in destroyed if name in r.path} == {
        f"/v1/{name}/cryptoKeyVersions/1:destroy",
        f"/v1/{name}/cryptoKeyVersions/2:destroy",
    }
    record = gcp_key(gcp_kms_env, uri)
    assert {v.state for v in record.versions.values()} == {"DESTROY_SCHEDULED"}
    until = max(v.destroy_time for v in record.versions.values() if v.destroy_time)
    assert timedelta(days=29) < until - datetime.now(UTC) <= timedelta(days=30, minutes=5)
    assert "verified: yes" in out and f"pending until {until.date().isoformat()}" in out
    assert "ce: claimable: destruction scheduled" in out
    evidence = gcp_kms.key_for_destruction(uri).verify_destroyed()
    assert evidence.verified and evidence.irrecoverable_after == until.replace(
        microsecond=until.microsecond
    )
    assert evidence.checks["raw KMS encrypt"].startswith("refused")
    # Use is refused by Sundown with the state and the date; nothing written.
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "out"))
    assert code == 5 and "pending destruction until" in err and "DESTROY_SCHEDULED" in err, err
    assert not (tmp_path / "out").exists()
    # Again: proved again, nothing more scheduled.
    before = len(gcp_kms_env.sent("POST", ":destroy"))
    code, out, _ = run(capsys, "keys", "destroy", uri, "--yes")
    assert code == 0 and "verified: yes" in out
    assert len(gcp_kms_env.sent("POST", ":destroy")) == before
    # cancel-deletion within the window: restore + enable, decrypts again.
    code, _, err = run(capsys, "keys", "cancel-deletion", uri)
    assert code == 0, err
    assert gcp_kms_env.sent("POST", f"/v1/{name}/cryptoKeyVersions/1:restore")
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out").read_bytes() == src.read_bytes(), err


def test_sundown_refuses_a_disabled_version_the_server_would_still_serve(
    gcp_kms_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fake is told to answer for a disabled version (as moto does for AWS): the refusal
    is Sundown's own, before any decrypt is sent."""
    uri = created(capsys)
    name = uri.removeprefix("gcp-kms://")
    key = gcp_kms.GcpKmsKey(uri).bound_to(b"ad")
    _, wrapped = key.new_data_key()
    record = gcp_key(gcp_kms_env, uri)
    record.lenient = True
    record.versions[1].state = "DISABLED"
    before = len(gcp_kms_env.sent("POST", f"/v1/{name}:decrypt"))
    with pytest.raises(KeyDestroyedError, match=r"version 1 is disabled \(state DISABLED\)"):
        key.unwrap(wrapped)
    with pytest.raises(KeyDestroyedError, match="disabled"):
        key.new_data_key()
    assert len(gcp_kms_env.sent("POST", f"/v1/{name}:decrypt")) == before


def test_destroy_stops_before_destroying_on_an_unexpected_version_state(
    gcp_kms_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = created(capsys)
    assert run(capsys, "keys", "rotate", uri)[0] == 0
    record = gcp_key(gcp_kms_env, uri)
    record.versions[2].state = "PENDING_GENERATION"
    with pytest.raises(ConflictError, match="version 2 is in state PENDING_GENERATION; nothing"):
        gcp_kms.key_for_destruction(uri).destroy()
    assert not [
        r for r in gcp_kms_env.sent("POST", ":destroy") if uri.removeprefix("gcp-kms://") in r.path
    ]
    assert record.versions[1].state == "ENABLED"


def test_crc32c_is_sent_and_a_corrupted_answer_is_refused(
    gcp_kms_env: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cloud KMS's documented integrity check: CRC32C of what is sent (KMS verifies) and of
    what comes back (Sundown verifies). An answer whose CRC does not match is refused and no
    data key is returned."""
    uri = created(capsys)
    key = gcp_kms.GcpKmsKey(uri).bound_to(b"ad")
    dek, wrapped = key.new_data_key()
    sent = gcp_kms_env.sent("POST", ":encrypt")[-1].body
    assert int(sent["plaintextCrc32c"]) == google_crc32c.value(dek)
    assert int(sent["additionalAuthenticatedDataCrc32c"]) == google_crc32c.value(
        hashlib.sha256(b"ad").digest()
    )
    gcp_kms_env.state.corrupt_crc = 1
    try:
        with pytest.raises(BackendError, match="CRC32C"):
            key.unwrap(wrapped)
        with pytest.raises(BackendError, match="CRC32C"):
            key.new_data_key()
    finally:
        gcp_kms_env.state.corrupt_crc = 0
    assert key.unwrap(wrapped) == dek


def test_an_endpoint_override_off_loopback_is_refused_before_any_request(
    gcp_kms_env: FakeServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer to the environment cannot send the access token to a host of their choosing:
    only loopback or *.googleapis.com (Private Service Connect) is accepted."""
    uri = created(capsys)
    before = len(gcp_kms_env.requests)
    monkeypatch.setenv("SUNDOWN_GCP_KMS_ENDPOINT", "https://kms.attacker.example")
    with pytest.raises(InputError, match=r"SUNDOWN_GCP_KMS_ENDPOINT names host 'kms\.attacker"):
        registry.open_key_service(uri)
    assert len(gcp_kms_env.requests) == before


@pytest.mark.parametrize(
    ("destroy_time", "problem", "overdue"),
    [
        (None, "without a destroyTime", False),
        (datetime.now(UTC) - timedelta(hours=1), "has passed", True),
        (datetime.now(UTC) + timedelta(days=200), "beyond the longest window", False),
    ],
)
def test_a_scheduled_version_needs_a_destroy_time_cloud_kms_can_set(
    gcp_kms_env: FakeServer,
    capsys: pytest.CaptureFixture[str],
    destroy_time: datetime | None,
    problem: str,
    overdue: bool,
) -> None:
    """A DESTROY_SCHEDULED version without a destroyTime, with one already passed (still
    restorable until Cloud KMS destroys it) or beyond the longest window (120 days) is no proof
    and no date: not verified, the check says why (the fake is told to answer so)."""
    uri = created(capsys)
    assert gcp_kms.key_for_destruction(uri).destroy().verified
    (version,) = gcp_key(gcp_kms_env, uri).versions.values()
    version.destroy_time = destroy_time
    evidence = gcp_kms.key_for_destruction(uri).verify_destroyed()
    assert not evidence.verified and not evidence.ce_claimable
    assert evidence.checks["version 1 destroyTime"].startswith("FAILED: ")
    assert problem in evidence.checks["version 1 destroyTime"]
    assert evidence.overdue is overdue
    assert evidence.key_state == "DESTROY_SCHEDULED"
    # Every other check still proves: the date alone is what fails.
    assert evidence.checks["raw KMS encrypt"].startswith("refused")
