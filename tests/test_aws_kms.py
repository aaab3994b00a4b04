"""AWS KMS keys (``aws-kms://``) against moto's standalone server: create, envelope encryption
through the CLI with the artifact binding as EncryptionContext, signing that the ``model_signing``
CLI and the offline certificate verifier accept, scheduled destruction with honest evidence, and
Sundown's own refusal of disabled keys and keys pending deletion (moto still decrypts with them)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from connectors import aws_kms
from sundown import registry
from sundown.certificate import sign_certificate, verify_certificate
from sundown.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    KeyDestroyedError,
    NotFoundError,
)
from tests.certificate_sample import sample_certificate
from tests.cli_run import run
from tests.test_model_signing_interop import ms_verify
from tests.test_signing import make_model

pytestmark = pytest.mark.timeout(300)


def kms() -> object:
    return boto3.client("kms")


def alias_name() -> str:
    return f"alias/sundown-test-{secrets.token_hex(4)}"


def created(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    """``sundown keys create aws-kms://alias/NAME``: the printed key ARN URI."""
    code, out, err = run(capsys, "keys", "create", f"aws-kms://{alias_name()}", *extra)
    assert code == 0, err
    uri = out.split()[3]
    assert uri.startswith("aws-kms://arn:aws:kms:us-east-1:") and ":key/" in uri, out
    return uri


def test_create_symmetric_and_alias_uri_resolves_to_arn(
    moto_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    alias = alias_name()
    code, out, err = run(capsys, "keys", "create", f"aws-kms://{alias}")
    assert code == 0, err
    uri = out.split()[3]
    account = boto3.client("sts").get_caller_identity()["Account"]
    assert uri.startswith(f"aws-kms://arn:aws:kms:us-east-1:{account}:key/")
    meta = boto3.client("kms").describe_key(KeyId=alias)["KeyMetadata"]
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT" and uri == "aws-kms://" + meta["Arn"]
    alias_arn = f"aws-kms://arn:aws:kms:us-east-1:{account}:{alias}"
    assert registry.open_key_service(alias_arn).uri == uri
    assert registry.open_key_service(f"aws-kms://{alias}").uri == uri
    code, out, _ = run(capsys, "keys", "info", alias_arn)
    assert code == 0 and f"uri: {uri}" in out and "kind: kek" in out
    # The same alias twice is refused, and a bad URI names the problem.
    code, _, err = run(capsys, "keys", "create", f"aws-kms://{alias}")
    assert code != 0 and "already exists" in err
    with pytest.raises(InputError, match="bad AWS KMS key URI"):
        registry.open_key_service("aws-kms://arn:aws:s3:::bucket")


def test_encrypt_decrypt_through_the_cli_with_encryption_context(
    moto_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    uri = created(capsys)
    src, enc, out = tmp_path / "model.bin", tmp_path / "model.enc", tmp_path / "model.out"
    src.write_bytes(secrets.token_bytes(100_000))
    code, _, err = run(capsys, "encrypt", "--key", uri, str(src), str(enc))
    assert code == 0, err
    sidecar = json.loads((tmp_path / "model.enc.sidecar.json").read_text())
    assert sidecar["key_uri"] == uri  # the key ARN, never an alias
    code, _, err = run(capsys, "decrypt", str(enc), str(out))
    assert code == 0, err
    assert out.read_bytes() == src.read_bytes()

    # The sidecar and ciphertext moved onto another path: the associated data in the sidecar
    # says model.enc, so the sidecar is rewritten to claim other.enc -- KMS then refuses the
    # wrapped DEK, whose EncryptionContext was the original binding.
    other = tmp_path / "other.enc"
    shutil.copy(enc, other)
    forged = dict(sidecar, associated_data=dict(sidecar["associated_data"], path="other.enc"))
    (tmp_path / "other.enc.sidecar.json").write_text(json.dumps(forged))
    code, _, err = run(capsys, "decrypt", str(other), str(tmp_path / "other.out"))
    assert code == 3 and "IntegrityError" in err and "InvalidCiphertextException" in err, err
    assert not (tmp_path / "other.out").exists()
    # Raw KMS proof that the context is what refuses: the same blob with the right context works.
    from sundown.envelope import read_sidecar_file

    real = read_sidecar_file(tmp_path / "model.enc.sidecar.json")
    bound = aws_kms.AwsKmsKey(uri).bound_to(real.associated_data)
    assert len(bound.unwrap(real.wrapped_key)) == 32
    with pytest.raises(IntegrityError):
        aws_kms.AwsKmsKey(uri).bound_to(b"another artifact").unwrap(real.wrapped_key)


def test_rewrap_after_rotation_changes_nothing(
    moto_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """KMS keeps every backing key of a rotated key and picks the right one from the
    ciphertext: a re-wrap leaves the wrapped key as it is (rotation itself: the conformance
    suite, tests/conformance_keys)."""
    uri = created(capsys)
    key = aws_kms.AwsKmsKey(uri).bound_to(b"ad")
    _, wrapped = key.new_data_key()
    assert aws_kms.AwsKmsKey(uri).rotate() == 2
    assert key.rewrap([wrapped]) == [wrapped]


MOTO_DIGEST_GAP = (
    "moto 5 does not implement Sign with MessageType DIGEST: it hashes the 32-byte digest again "
    "(docs/known-gaps.md: AWS KMS); on AWS the signature is over SHA-256(message)"
)


def test_sign_sends_a_digest_and_moto_hashes_it_again(
    moto_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Request level: Sundown sends SHA-256(message) as a DIGEST with ECDSA_SHA_256 and gets a
    DER signature. moto's answer is over SHA-256(digest): the gap, shown explicitly."""
    uri = created(capsys, "--signing")
    meta = boto3.client("kms").describe_key(KeyId=uri.removeprefix("aws-kms://"))["KeyMetadata"]
    assert meta["KeySpec"] == "ECC_NIST_P256" and meta["KeyUsage"] == "SIGN_VERIFY"
    code, pem, err = run(capsys, "keys", "public-key", uri)
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----"), err
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    sent: list[dict[str, object]] = []
    original = aws_kms.new_client

    def recording(service: str, config: object) -> object:
        client = original(service, config)  # type: ignore[arg-type]
        client.meta.events.register(
            "provide-client-params.kms.Sign", lambda params, **_: sent.append(dict(params))
        )
        return client

    signer = registry.open_signer(uri)
    message = b"the statement to sign" * 1000  # longer than KMS's 4096-byte RAW limit
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aws_kms, "new_client", recording)
        signature = signer.sign(message)
    digest = hashlib.sha256(message).digest()
    assert sent and sent[0]["MessageType"] == "DIGEST" and sent[0]["Message"] == digest
    assert sent[0]["SigningAlgorithm"] == "ECDSA_SHA_256"
    # moto signed SHA-256(digest), not the digest (AWS: the digest; cryptography's Prehashed).
    public.verify(signature, digest, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


@pytest.mark.xfail(strict=True, reason=MOTO_DIGEST_GAP)
def test_sign_model_verified_by_model_signing(
    moto_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    uri = created(capsys, "--signing")
    public = tmp_path / "kms.pub"
    public.write_bytes(registry.open_signer(uri).public_key_pem())
    model = make_model(tmp_path)
    sig = model / "model.sig"
    # ``sundown sign`` verifies its own bundle before writing it: on moto it already stops there
    # (IntegrityError: the DSSE signature does not verify), which is the gap this xfail names.
    code, out, err = run(capsys, "sign", "--key", uri, str(model), "--signature", str(sig))
    assert code == 0 and out.startswith(f"signed {model}"), err
    done = ms_verify(model, sig, public)
    assert done.returncode == 0, done.stderr


@pytest.mark.xfail(strict=True, reason=MOTO_DIGEST_GAP)
def test_certificate_signed_with_kms_verifies_offline(
    moto_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = created(capsys, "--signing")
    signer = registry.open_signer(uri)
    signed = sign_certificate(sample_certificate().certificate, signer)
    verify_certificate(signed.data, signer.public_key_pem())


def test_moto_decrypts_while_pending_deletion_and_sundown_refuses(
    moto_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The known gap (docs/known-gaps.md): AWS refuses Decrypt with a key pending deletion
    (KMSInvalidStateException); moto answers it. Sundown's DescribeKey check refuses."""
    uri = created(capsys)
    src, enc = tmp_path / "w.bin", tmp_path / "w.enc"
    src.write_bytes(b"weights" * 1000)
    assert run(capsys, "encrypt", "--key", uri, str(src), str(enc))[0] == 0

    code, out, err = run(capsys, "keys", "destroy", uri, "--yes", "--pending-days", "10")
    assert code == 0, err
    arn = uri.removeprefix("aws-kms://")
    meta = boto3.client("kms").describe_key(KeyId=arn)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and not meta["Enabled"]
    date = meta["DeletionDate"].astimezone(UTC)
    assert timedelta(days=9) < date - datetime.now(UTC) <= timedelta(days=10, minutes=5)
    assert f"deletion pending until {meta['DeletionDate'].isoformat()}" in out
    assert f"ce: claimable: pending deletion until {date.date().isoformat()}" in out
    assert "verified: yes" in out

    # moto's raw answer: the sentinel still decrypts through KMS itself.
    evidence = aws_kms.key_for_destruction(uri).verify_destroyed()
    assert evidence.checks["raw KMS decrypt"].startswith("still decrypts"), evidence.checks
    assert evidence.verified and evidence.ce_claimable
    assert evidence.irrecoverable_after == meta["DeletionDate"]
    # Sundown refuses before Decrypt, GenerateDataKey and Sign.
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "out"))
    assert code == 5 and "pending deletion until" in err and "PendingDeletion" in err, err
    assert not (tmp_path / "out").exists()
    with pytest.raises(KeyDestroyedError, match="PendingDeletion"):
        aws_kms.AwsKmsKey(uri)
    # Destroy again: proved again, nothing else changes.
    code, out, _ = run(capsys, "keys", "destroy", uri, "--yes")
    assert code == 0 and "verified: yes" in out

    # cancel-deletion restores use within the window.
    code, out, err = run(capsys, "keys", "cancel-deletion", uri)
    assert code == 0, err
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "out"))
    assert code == 0, err
    assert (tmp_path / "out").read_bytes() == src.read_bytes()


def test_pending_window_out_of_range_refused_before_anything(
    moto_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = created(capsys)
    with pytest.raises(InputError, match="7-30"):
        aws_kms.key_for_destruction(uri).destroy(pending_days=3)
    meta = boto3.client("kms").describe_key(KeyId=uri.removeprefix("aws-kms://"))["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"


def test_disabled_key_refused(moto_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    uri = created(capsys)
    key = aws_kms.AwsKmsKey(uri).bound_to(b"ad")
    _, wrapped = key.new_data_key()
    boto3.client("kms").disable_key(KeyId=uri.rsplit("/", 1)[1])
    with pytest.raises(KeyDestroyedError, match="disabled"):
        key.unwrap(wrapped)
    with pytest.raises(KeyDestroyedError, match="disabled"):
        key.new_data_key()


def test_signing_refused_while_pending(moto_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    uri = created(capsys, "--signing")
    signer = registry.open_signer(uri)
    assert signer.sign(b"x")
    evidence = aws_kms.key_for_destruction(uri).destroy()
    assert evidence.verified and evidence.pending_until is not None
    with pytest.raises(KeyDestroyedError, match="pending deletion"):
        signer.sign(b"x")


def test_alias_repointed_after_encryption_sidecar_keeps_the_key_arn(
    moto_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """What holds: the sidecar (and so the plan reading it) records the key ARN, not the
    alias; repointing the alias to another key changes neither what decrypts nor what a
    destruction of the recorded key reaches."""
    alias = alias_name()
    code, out, _ = run(capsys, "keys", "create", f"aws-kms://{alias}")
    first = out.split()[3]
    second = created(capsys)
    src, enc = tmp_path / "a.bin", tmp_path / "a.enc"
    src.write_bytes(b"a" * 5000)
    assert run(capsys, "encrypt", "--key", f"aws-kms://{alias}", str(src), str(enc))[0] == 0
    assert json.loads((tmp_path / "a.enc.sidecar.json").read_text())["key_uri"] == first
    boto3.client("kms").update_alias(AliasName=alias, TargetKeyId=second.removeprefix("aws-kms://"))
    assert registry.open_key_service(f"aws-kms://{alias}").uri == second
    code, _, err = run(capsys, "decrypt", str(enc), str(tmp_path / "a.out"))
    assert code == 0, err
    # Pinning decryption to the alias now names another key: refused as tampering.
    from sundown.envelope import decrypt_file

    with pytest.raises(IntegrityError, match="pinned"):
        decrypt_file(enc, tmp_path / "b.out", registry.open_key_service(f"aws-kms://{alias}"))


def test_a_live_key_is_not_proved_destroyed(
    moto_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """verify_destroyed deletes nothing and proves nothing for an enabled key."""
    uri = created(capsys)
    evidence = aws_kms.key_for_destruction(uri).verify_destroyed()
    assert not evidence.verified and not evidence.ce_claimable
    assert evidence.checks["key state"] == "Enabled"
    assert aws_kms.AwsKmsKey(uri).info().kind == "kek"


def test_removed_sentinel_tag_leaves_the_destruction_unverified(
    moto_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A writer with kms:UntagResource removes the sentinel: the proof fails rather than
    passing on the key state alone."""
    uri = created(capsys)
    assert aws_kms.key_for_destruction(uri).destroy().verified
    key_id = uri.rsplit("/", 1)[1]
    boto3.client("kms").untag_resource(KeyId=key_id, TagKeys=[aws_kms.SENTINEL_TAG])
    evidence = aws_kms.key_for_destruction(uri).verify_destroyed()
    assert not evidence.verified and not evidence.ce_claimable
    assert evidence.checks["sentinel through Sundown"].startswith("FAILED")
    code, out, _ = run(capsys, "keys", "destroy", uri, "--yes")
    assert code != 0 and "verified: NO" in out and "ce: NOT claimable" in out


def test_a_sidecar_copied_unchanged_onto_another_path(
    moto_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    uri = created(capsys)
    src, enc = tmp_path / "m.bin", tmp_path / "m.enc"
    src.write_bytes(b"m" * 3000)
    assert run(capsys, "encrypt", "--key", uri, str(src), str(enc))[0] == 0
    other = tmp_path / "n.enc"
    shutil.copy(enc, other)
    shutil.copy(tmp_path / "m.enc.sidecar.json", tmp_path / "n.enc.sidecar.json")
    code, _, err = run(capsys, "decrypt", str(other), str(tmp_path / "n.out"))
    assert code == 3 and "IntegrityError" in err, err
    assert not (tmp_path / "n.out").exists()


def multi_region_key(regions: tuple[str, ...] = ("eu-west-1",)) -> tuple[str, list[str]]:
    """A multi-region KEK made outside Sundown (CreateKey MultiRegion, ReplicateKey): the
    primary's URI and its replicas' URIs."""
    client = boto3.client("kms", region_name="us-east-1")
    meta = client.create_key(MultiRegion=True, Description="shared")["KeyMetadata"]
    assert meta["MultiRegion"] and meta["KeyId"].startswith("mrk-")
    replicas = [
        "aws-kms://"
        + client.replicate_key(KeyId=meta["KeyId"], ReplicaRegion=region)["ReplicaKeyMetadata"][
            "Arn"
        ]
        for region in regions
    ]
    return "aws-kms://" + meta["Arn"], replicas


def test_a_multi_region_key_is_refused_as_a_kek_and_never_destroyed(moto_env: str) -> None:
    """A replica in another region holds the same key material and still decrypts every data
    key: Sundown neither wraps under such a key nor destroys it (nothing disabled first)."""
    uri, (replica,) = multi_region_key()
    replica_arn = replica.removeprefix("aws-kms://")
    with pytest.raises(InputError, match="multi-region") as refused:
        registry.open_key_service(uri)
    assert replica_arn in str(refused.value)
    with pytest.raises(InputError, match="multi-region") as refused:
        registry.open_key_service(replica)  # the replica names the primary
    assert uri.removeprefix("aws-kms://") in str(refused.value)
    with pytest.raises(ConflictError, match="multi-region") as stopped:
        aws_kms.key_for_destruction(uri).destroy()
    assert replica_arn in str(stopped.value) and "nothing was disabled" in str(stopped.value)
    meta = boto3.client("kms").describe_key(KeyId=uri.removeprefix("aws-kms://"))["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"
    tags = boto3.client("kms").list_resource_tags(KeyId=meta["KeyId"])["Tags"]
    assert not [t for t in tags if t["TagKey"] == aws_kms.SENTINEL_TAG]  # not even a sentinel


def test_a_multi_region_key_scheduled_for_deletion_is_not_proved_erased(moto_env: str) -> None:
    """The key scheduled for deletion as Sundown did before it refused multi-region keys (a
    sentinel tag, DisableKey, ScheduleKeyDeletion): everything else proves, but the replica
    still holds the material (on AWS it decrypts the sentinel; moto cannot decrypt under any
    multi-region key: docs/known-gaps.md), so the proof fails and says why."""
    uri, (replica,) = multi_region_key()
    client = boto3.client("kms")
    key_id = uri.rsplit("/", 1)[1]
    context = {aws_kms.BINDING_CONTEXT: "destroy-sentinel"}
    blob = client.encrypt(KeyId=key_id, Plaintext=b"s" * 16, EncryptionContext=context)
    tag = base64.b64encode(blob["CiphertextBlob"]).decode()
    client.tag_resource(KeyId=key_id, Tags=[{"TagKey": aws_kms.SENTINEL_TAG, "TagValue": tag}])
    client.disable_key(KeyId=key_id)
    client.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    evidence = aws_kms.key_for_destruction(uri).verify_destroyed()
    assert evidence.checks["sentinel through Sundown"].startswith("refused")
    assert evidence.checks["multi-region"].startswith("FAILED: a multi-region KMS key")
    assert replica.removeprefix("aws-kms://") in evidence.checks["multi-region"]
    assert not evidence.verified and not evidence.ce_claimable
    assert evidence.ce_reason == "destruction not verified"


def test_a_key_kms_no_longer_knows_is_gone_for_destruction(moto_env: str) -> None:
    """After its window AWS deletes the key: DescribeKey answers NotFoundException. moto never
    ends a window, so a well-formed ARN of a key never created stands for it. Opened for
    destruction it is "gone" (verified, nothing pending, no grants left); opened for use, or
    named by an alias, it is still NotFoundError (a typo in a spec stops planning)."""
    account = boto3.client("sts").get_caller_identity()["Account"]
    uri = f"aws-kms://arn:aws:kms:us-east-1:{account}:key/{uuid.uuid4()}"
    key = registry.key_for_destruction(uri)
    assert key.uri == uri
    evidence = key.verify_destroyed()
    assert evidence.verified and evidence.ce_claimable and evidence.pending_until is None
    assert evidence.checks["key state"] == "gone" and evidence.ce_reason == "key deleted by KMS"
    assert aws_kms.key_for_destruction(uri).grant_ids() == []
    with pytest.raises(NotFoundError):
        registry.open_key_service(uri)
    with pytest.raises(NotFoundError):
        registry.key_for_destruction(f"aws-kms://{alias_name()}")


NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("described", "problem"),
    [
        ({"KeyState": "PendingDeletion"}, "no deletion date"),
        ({"KeyState": "PendingDeletion", "DeletionDate": NOW - timedelta(hours=1)}, "has passed"),
        ({"KeyState": "PendingDeletion", "DeletionDate": NOW}, "has passed"),
        ({"KeyState": "PendingDeletion", "DeletionDate": NOW + timedelta(days=32)}, "beyond"),
        ({"KeyState": "PendingDeletion", "DeletionDate": datetime(2026, 3, 9)}, "no deletion"),
        ({"KeyState": "PendingDeletion", "DeletionDate": "2026-03-09"}, "no deletion date"),
        ({"KeyState": "PendingDeletion", "DeletionDate": NOW + timedelta(days=7)}, None),
        ({"KeyState": "PendingDeletion", "DeletionDate": NOW + timedelta(days=30)}, None),
    ],
)
def test_a_pending_deletion_date_must_be_one_kms_can_set(
    described: dict[str, object], problem: str | None
) -> None:
    """The judge of DescribeKey's DeletionDate, on KeyMetadata-shaped answers moto cannot
    give (it always sets now + window): a pending key without a date, with a date already
    passed (still restorable) or beyond the 30-day window is not proof of deletion.
    verify_destroyed applies it to every PendingDeletion answer."""
    found = aws_kms.pending_date_problem(described.get("DeletionDate"), NOW, timedelta(days=30))
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
