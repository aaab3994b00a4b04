"""Certificates: model rules, canonical encoding, signing, offline verification, every tamper."""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sundown import canonical, dsse
from sundown.certificate import (
    MANIFEST_NAME,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    CertificateException,
    KeyDestroyed,
    ManifestEntry,
    ManifestWriter,
    Status,
    VerificationResult,
    check_manifest,
    read_manifest_reference,
    sign_certificate,
    statement,
    unverified_certificate,
    verify_certificate,
    write_manifest,
)
from sundown.errors import InputError, IntegrityError
from sundown.keys import KeyDestruction, Signer
from sundown.signing import PemSigner
from tests.certificate_sample import sample_certificate

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


class LocalSigner(PemSigner):
    """A P-256 signer over a key generated at run time (tests only; never stored)."""

    def __init__(self, key_id: str = "local://certificate-signing#1", pem: bytes | None = None):
        key = (
            serialization.load_pem_private_key(pem, None)
            if pem
            else ec.generate_private_key(ec.SECP256R1())
        )
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        super().__init__(key, key_id)

    def private_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner()


def test_signer_satisfies_protocol(signer: LocalSigner) -> None:
    assert isinstance(signer, Signer)


# --- round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("with_exceptions", [False, True])
def test_sign_and_verify_round_trip(signer: LocalSigner, with_exceptions: bool) -> None:
    sample = sample_certificate(now=NOW, with_exceptions=with_exceptions)
    signed = sign_certificate(sample.certificate, signer)
    verified = verify_certificate(signed.data, signer.public_key_pem())
    assert verified.certificate == signed.certificate
    assert verified.certificate.signing is not None
    assert verified.key_id == signer.key_id
    assert verified.envelope_digest == "sha256:" + hashlib.sha256(signed.data).hexdigest()
    expected = Status.COMPLETE_WITH_EXCEPTIONS if with_exceptions else Status.COMPLETE
    assert verified.certificate.status is expected
    assert f"status {expected.value}" in verified.summary()
    # the signed certificate equals the input apart from the signing block
    assert verified.certificate.model_copy(update={"signing": None}) == sample.certificate


def test_certificate_file_is_canonical_dsse_in_toto(signer: LocalSigner) -> None:
    signed = sign_certificate(sample_certificate(now=NOW).certificate, signer)
    envelope = json.loads(signed.data)
    assert canonical.is_canonical(signed.data)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert envelope["signatures"][0]["keyid"] == signer.key_id
    payload = base64.b64decode(envelope["payload"])
    stmt = json.loads(payload)
    assert stmt["_type"] == STATEMENT_TYPE
    assert stmt["predicateType"] == PREDICATE_TYPE
    assert stmt["subject"] == [
        {
            "name": MANIFEST_NAME,
            "digest": {"sha256": signed.certificate.deletion_manifest.digest[7:]},
        }
    ]
    # an independent RFC 8785 implementation gives the same bytes
    assert rfc8785.dumps(stmt) == payload
    assert rfc8785.dumps(envelope) == signed.data
    # and a bare DSSE check with `cryptography` alone accepts the signature
    key = serialization.load_pem_public_key(signer.public_key_pem())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    pae = b"DSSEv1 %d %s %d %s" % (
        len(envelope["payloadType"]),
        envelope["payloadType"].encode(),
        len(payload),
        payload,
    )
    key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))


def test_canonical_matches_rfc8785_on_awkward_strings() -> None:
    value = {
        "\u20ac": 1,
        "\U0001f600": [True, None, -(2**53) + 1],
        "\ufb33": 'tab\tnl\ncr\rff\fbs\bnul\x00 \x1f \x7f quote" back\\ /',
        "a": {"b": "", "é": "日本"},
        "10": 2,
        "1": 3,
    }
    assert canonical.dumps(value) == rfc8785.dumps(value)


def test_canonical_refuses_what_it_cannot_encode_exactly() -> None:
    with pytest.raises(InputError, match="float"):
        canonical.dumps({"x": 1.5})
    with pytest.raises(InputError, match="integer"):
        canonical.dumps([2**53])
    with pytest.raises(InputError, match="surrogate"):
        canonical.dumps("\ud800")
    with pytest.raises(InputError, match="duplicate key"):
        canonical.loads(b'{"a":1,"a":2}')
    with pytest.raises(InputError, match="non-integer"):
        canonical.loads(b'{"a":1.0}')
    with pytest.raises(InputError, match="not JSON"):
        canonical.loads(b"{")


# --- the model's rules -----------------------------------------------------------------------


def _cert_json(with_exceptions: bool = False) -> dict[str, Any]:
    return sample_certificate(now=NOW, with_exceptions=with_exceptions).certificate.model_dump(
        mode="json"
    )


def _validate(obj: dict[str, Any]) -> Any:
    from sundown.certificate import Certificate

    return Certificate.model_validate_json(json.dumps(obj))


def test_complete_requires_passed_verification() -> None:
    obj = _cert_json()
    obj["locations"][1]["verification"]["result"] = VerificationResult.FAILED.value
    with pytest.raises(ValueError, match="outcome accepted although verification failed"):
        _validate(obj)
    obj["locations"][1]["validation"]["result"] = "rejected"
    with pytest.raises(ValueError, match="status 'complete' but gs://"):
        _validate(obj)


def test_verification_and_validation_are_recorded_apart() -> None:
    """A passed re-listing does not make a rejected outcome acceptable, and copies that remain
    cannot be accepted."""
    obj = _cert_json()
    obj["locations"][1]["validation"]["result"] = "rejected"
    with pytest.raises(ValueError, match=r"gs://.*validation rejected"):
        _validate(obj)
    obj = _cert_json()
    obj["locations"][1]["remaining"] = 2
    with pytest.raises(ValueError, match="copies remain"):
        _validate(obj)


# --- what may be claimed (SP 800-88 Rev. 2) ---------------------------------------------------


def _claim(obj: dict[str, Any], loc: int, category: str) -> dict[str, Any]:
    return next(c for c in obj["locations"][loc]["sanitization"] if c["category"] == category)


CE = "Purge (cryptographic erase)"
LOGICAL = "logical deletion (not an SP 800-88 sanitization method)"


def test_sample_states_both_categories_for_a_mixed_location_and_nothing_for_an_empty_one() -> None:
    cert = sample_certificate(now=NOW).certificate
    weights, data, logs = cert.locations
    assert [c.category.value for c in weights.sanitization] == [CE, LOGICAL]
    assert weights.claims == f"{CE}: 3 copies; {LOGICAL}: 2 copies"
    assert [c.category.value for c in data.sanitization] == [LOGICAL]
    assert logs.found.versions == 0 and logs.sanitization == [] and logs.claims == "nothing found"
    assert weights.sanitization[1].irrecoverable_after.at is None
    assert "provider retention" in (weights.sanitization[1].irrecoverable_after.unknown or "")


def test_cryptographic_erase_needs_a_destroyed_verified_key() -> None:
    obj = _cert_json()
    obj["keys_destroyed"][0]["verified"] = False
    obj["exceptions"] = [
        {"subject": "vault://transit/fraud-scorer-v3", "kind": "key", "description": "answers"}
    ]
    obj["status"] = "failed"
    with pytest.raises(ValueError, match="cryptographic erase of vault://transit/fraud-scorer-v3, "
                       "whose destruction is not verified"):  # fmt: skip
        _validate(obj)
    _without_erase(obj)
    assert _validate(obj).locations[0].ce_covered.versions == 0
    obj = _cert_json()
    obj["keys_destroyed"] = []
    with pytest.raises(ValueError, match=r"cryptographic erase of vault://.*not destroyed"):
        _validate(obj)
    obj = _cert_json()
    _claim(obj, 0, CE)["keys"] = []
    with pytest.raises(ValueError, match="names no destroyed key"):
        _validate(obj)


def test_cryptographic_erase_covers_only_copies_found_under_the_key() -> None:
    """Claiming CE for more copies than were found under an envelope of a destroyed key, or
    for a location whose copies were plaintext, is refused by the model itself."""
    obj = _cert_json()
    loc = obj["locations"][1]  # training data: protection unknown
    moved = copy.deepcopy(loc["logically_deleted"])
    loc["ce_covered"], loc["logically_deleted"] = moved, {"objects": 0, "versions": 0, "bytes": 0}
    claim = loc["sanitization"][0]
    claim.update(category=CE, keys=["vault://transit/fraud-scorer-v3"])
    claim["irrecoverable_after"] = {"at": "2025-06-30T11:58:00Z", "unknown": None, "basis": "x"}
    with pytest.raises(ValueError, match="only 0 were found under an envelope"):
        _validate(obj)


def test_claims_must_match_the_counts_and_never_merge_categories() -> None:
    obj = _cert_json()
    _claim(obj, 0, LOGICAL)["copies"]["versions"] += 1
    with pytest.raises(ValueError, match="claim covers other copies than counted"):
        _validate(obj)
    obj = _cert_json()
    obj["locations"][0]["sanitization"] = obj["locations"][0]["sanitization"][:1]
    with pytest.raises(ValueError, match="2 copies with no 'logical deletion"):
        _validate(obj)
    obj = _cert_json()
    obj["locations"][0]["sanitization"].append(obj["locations"][0]["sanitization"][0])
    with pytest.raises(ValueError, match="category appears twice"):
        _validate(obj)
    obj = _cert_json()
    obj["locations"][2]["sanitization"] = [copy.deepcopy(_claim(obj, 1, LOGICAL))]
    with pytest.raises(ValueError, match="claim covers other copies than counted"):
        _validate(obj)  # an empty location claims nothing
    obj = _cert_json()
    obj["locations"][0]["protection"][0]["copies"] -= 1
    with pytest.raises(ValueError, match="does not add up"):
        _validate(obj)


def test_irrecoverable_after_is_a_time_or_unknown_with_a_reason() -> None:
    obj = _cert_json()
    when = _claim(obj, 0, LOGICAL)["irrecoverable_after"]
    when["at"] = "2025-06-30T11:00:00Z"
    with pytest.raises(ValueError, match="exactly one of a time or an unknown reason"):
        _validate(obj)
    when["at"] = when["unknown"] = None
    with pytest.raises(ValueError, match="exactly one of a time or an unknown reason"):
        _validate(obj)
    when["unknown"] = ""
    with pytest.raises(ValueError, match="at least 1 character"):
        _validate(obj)


def test_complete_refuses_exceptions_held_copies_and_open_soft_delete_windows() -> None:
    obj = _cert_json()
    obj["exceptions"] = [{"subject": "x", "kind": "other", "description": "something"}]
    with pytest.raises(ValueError, match="'complete' with exceptions"):
        _validate(obj)
    obj = _cert_json()
    obj["locations"][0]["held"] = {"objects": 0, "versions": 0, "bytes": 1}
    obj["locations"][0]["purged"]["bytes"] -= 1
    obj["deletion_manifest"]["purged_bytes"] -= 1
    obj["locations"][0]["logically_deleted"]["bytes"] -= 1
    _claim(obj, 0, LOGICAL)["copies"]["bytes"] -= 1
    with pytest.raises(ValueError, match="copies are held"):
        _validate(obj)
    obj = _cert_json()
    _claim(obj, 0, LOGICAL)["irrecoverable_after"] = {
        "at": "2025-07-07T12:00:00Z",
        "unknown": None,
        "basis": "end of a soft-delete window",
    }
    with pytest.raises(ValueError, match="recoverable until"):
        _validate(obj)


def test_complete_refuses_unverified_key_or_credential() -> None:
    obj = _cert_json()
    obj["keys_destroyed"][0]["verified"] = False
    with pytest.raises(ValueError, match="key destruction not verified"):
        _validate(obj)
    obj = _cert_json()
    obj["credentials_revoked"][1]["verified"] = False
    with pytest.raises(ValueError, match="credential revocation not verified"):
        _validate(obj)


def test_exceptions_must_name_every_problem() -> None:
    obj = _cert_json(with_exceptions=True)
    obj["exceptions"] = obj["exceptions"][:0]
    with pytest.raises(ValueError, match="needs at least one exception"):
        _validate(obj)
    obj = _cert_json(with_exceptions=True)
    obj["keys_destroyed"][0]["verified"] = False
    with pytest.raises(ValueError, match="no exception names it"):
        _validate(obj)
    obj["exceptions"].append(
        {"subject": "vault://transit/fraud-scorer-v3", "kind": "key", "description": "read ok"}
    )
    obj["status"] = "failed"
    with pytest.raises(ValueError, match="whose destruction is not verified"):
        _validate(obj)  # and no cryptographic erase may rest on that key
    _without_erase(obj)
    cert = _validate(obj)
    assert cert.status is Status.FAILED
    assert [c.category.value for c in cert.locations[0].sanitization] == [LOGICAL]


def _without_erase(obj: dict[str, Any]) -> None:
    """What an honest certificate says when the key was not verified gone: every purged copy of
    the weights was logically deleted, none cryptographically erased."""
    loc = obj["locations"][0]
    loc["ce_covered"] = {"objects": 0, "versions": 0, "bytes": 0}
    loc["logically_deleted"] = copy.deepcopy(loc["purged"])
    claim = _claim(obj, 0, LOGICAL)
    claim["copies"] = copy.deepcopy(loc["purged"])
    loc["sanitization"] = [claim]


def test_counts_and_manifest_must_agree() -> None:
    obj = _cert_json()
    obj["deletion_manifest"]["entries"] += 1
    with pytest.raises(ValueError, match=r"deletion_manifest\.entries"):
        _validate(obj)
    obj = _cert_json()
    obj["locations"][0]["purged"]["versions"] += 1
    with pytest.raises(ValueError, match="purged \\+ held versions exceed"):
        _validate(obj)


def test_times_must_be_in_order_and_zoned() -> None:
    obj = _cert_json()
    obj["approved_at"] = obj["issued_at"]
    with pytest.raises(ValueError, match="approval comes first"):
        _validate(obj)
    obj = _cert_json()
    obj["issued_at"] = "2025-06-30T12:00:00"
    with pytest.raises(ValueError, match="timezone"):
        _validate(obj)


def test_key_destruction_evidence_converts() -> None:
    evidence = KeyDestruction(
        uri="vault://transit/k",
        versions_destroyed=(1, 2),
        destroyed_at=NOW,
        method="deleted",
        checks={"read": "404"},
        verified=True,
    )
    record = KeyDestroyed.from_destruction(evidence)
    assert record.versions_destroyed == [1, 2]
    assert record.checks == {"read": "404"}
    assert record.verified


@pytest.mark.parametrize(
    "key_id",
    [
        "vault://transit/fraud-scorer-v3",
        "vault://transit/fraud-scorer-v3:v3",
        "vault://transit/fraud-scorer-v3#2",
        "vault://transit/fraud-scorer-v3/",
    ],
)
def test_signing_key_is_never_the_destroyed_key(key_id: str) -> None:
    cert = sample_certificate(now=NOW).certificate
    with pytest.raises(InputError, match="is a key this certificate destroys"):
        sign_certificate(cert, LocalSigner(key_id=key_id))


def test_a_similarly_named_key_may_sign() -> None:
    cert = sample_certificate(now=NOW).certificate
    signer = LocalSigner(key_id="vault://transit/fraud-scorer-v3-certificates")
    verify_certificate(sign_certificate(cert, signer).data, signer.public_key_pem())


# --- tampering -------------------------------------------------------------------------------


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None:
        return "2025-01-01T00:00:00Z"
    assert isinstance(value, str)
    if value.startswith("sha256:"):
        return "sha256:" + ("0" if value[7] != "0" else "1") + value[8:]
    if value.endswith("Z") and value[:4].isdigit():
        return value.replace(value[:4], str(int(value[:4]) - 1), 1)
    return value + "x"


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


def _envelope_with(payload: bytes, signatures: list[dict[str, str]]) -> bytes:
    return json.dumps(
        {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": signatures,
        }
    ).encode()


@pytest.mark.parametrize("with_exceptions", [False, True])
def test_every_field_tampered_fails(signer: LocalSigner, with_exceptions: bool) -> None:
    signed = sign_certificate(
        sample_certificate(now=NOW, with_exceptions=with_exceptions).certificate, signer
    )
    envelope = json.loads(signed.data)
    stmt = json.loads(base64.b64decode(envelope["payload"]))
    attacker = LocalSigner(key_id=signer.key_id)
    leaves = list(_leaves(stmt))
    assert len(leaves) > 100  # the whole statement, predicate and subject included
    for path, value in leaves:
        tampered = copy.deepcopy(stmt)
        _set(tampered, path, _changed(value))
        payload = canonical.dumps(tampered)
        assert payload != base64.b64decode(envelope["payload"]), path
        # 1. the original signature over changed content
        data = _envelope_with(payload, envelope["signatures"])
        with pytest.raises(IntegrityError, match=r"^(signature|key mismatch)"):
            verify_certificate(data, signer.public_key_pem())
        # 2. re-signed by someone else who claims the same key id
        forged = dsse.sign(dsse.INTOTO_PAYLOAD_TYPE, payload, attacker)
        data = canonical.dumps(forged.to_json())
        with pytest.raises(IntegrityError, match=r"^(signature|key mismatch)"):
            verify_certificate(data, signer.public_key_pem())


def test_envelope_tampering_fails(signer: LocalSigner) -> None:
    signed = sign_certificate(sample_certificate(now=NOW).certificate, signer)
    good = json.loads(signed.data)

    def check(mutate: Any, match: str, error: type[Exception] = IntegrityError) -> None:
        env = copy.deepcopy(good)
        mutate(env)
        with pytest.raises(error, match=match):
            verify_certificate(json.dumps(env).encode(), signer.public_key_pem())

    check(lambda e: e.update(payloadType="application/json"), "payloadType")
    check(lambda e: e.update(signatures=[]), "no signature")
    check(lambda e: e["signatures"][0].update(keyid="local://other"), "key mismatch: envelope")
    sig = bytearray(base64.b64decode(good["signatures"][0]["sig"]))
    sig[-1] ^= 1
    check(lambda e: e["signatures"][0].update(sig=base64.b64encode(sig).decode()), "signature")
    check(lambda e: e.update(payload=e["payload"][:-4]), "signature|malformed")
    check(lambda e: e.pop("payload"), "malformed DSSE envelope")
    with pytest.raises(IntegrityError, match=r"not a complete certificate.*not JSON"):
        verify_certificate(signed.data[:-1], signer.public_key_pem())  # truncated


def test_wrong_key_is_a_key_mismatch(signer: LocalSigner) -> None:
    signed = sign_certificate(sample_certificate(now=NOW).certificate, signer)
    other = LocalSigner()
    with pytest.raises(IntegrityError, match=r"^key mismatch"):
        verify_certificate(signed.data, other.public_key_pem())
    rsa_pem = (
        rsa.generate_private_key(65537, 2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InputError, match="P-256"):
        verify_certificate(signed.data, rsa_pem)


def _signed_statement(stmt: Any, signer: LocalSigner, *, canonical_form: bool = True) -> bytes:
    payload = canonical.dumps(stmt) if canonical_form else json.dumps(stmt, indent=1).encode()
    return canonical.dumps(dsse.sign(dsse.INTOTO_PAYLOAD_TYPE, payload, signer).to_json())


def test_validly_signed_but_invalid_fields_fail(signer: LocalSigner) -> None:
    """The trusted key signed something that breaks the certificate's rules: still refused,
    naming the field."""
    signed = sign_certificate(sample_certificate(now=NOW).certificate, signer)
    stmt = statement(signed.certificate)

    bad = copy.deepcopy(stmt)
    bad["predicate"]["locations"][0]["verification"]["result"] = "failed"
    with pytest.raises(IntegrityError, match=r"certificate field locations\[0\]: .*accepted"):
        verify_certificate(_signed_statement(bad, signer), signer.public_key_pem())
    bad["predicate"]["locations"][0]["validation"]["result"] = "rejected"
    with pytest.raises(IntegrityError, match=r"certificate field .*status 'complete' but s3://"):
        verify_certificate(_signed_statement(bad, signer), signer.public_key_pem())

    bad = copy.deepcopy(stmt)
    bad["predicate"]["locations"][0]["found"]["bytes"] = "12"
    with pytest.raises(IntegrityError, match=r"certificate field locations\[0\].found.bytes"):
        verify_certificate(_signed_statement(bad, signer), signer.public_key_pem())

    bad = copy.deepcopy(stmt)
    bad["predicate"]["remarks"] = "unexpected"
    with pytest.raises(IntegrityError, match="certificate field remarks"):
        verify_certificate(_signed_statement(bad, signer), signer.public_key_pem())

    bad = copy.deepcopy(stmt)
    bad["subject"][0]["digest"]["sha256"] = "0" * 64
    with pytest.raises(IntegrityError, match="subject"):
        verify_certificate(_signed_statement(bad, signer), signer.public_key_pem())

    bad = copy.deepcopy(stmt)
    bad["predicateType"] = "https://sundown.dev/decommission-certificate/v1"  # the old model
    with pytest.raises(IntegrityError, match="predicateType"):
        verify_certificate(_signed_statement(bad, signer), signer.public_key_pem())

    with pytest.raises(IntegrityError, match="canonical"):
        verify_certificate(
            _signed_statement(stmt, signer, canonical_form=False), signer.public_key_pem()
        )

    bad = copy.deepcopy(stmt)
    bad["predicate"]["signing"]["key_id"] = "vault://transit/fraud-scorer-v3"
    with pytest.raises(IntegrityError, match="is a key this certificate destroys"):
        verify_certificate(_signed_statement(bad, signer), signer.public_key_pem())


def test_unverified_read_is_for_display_only(signer: LocalSigner) -> None:
    signed = sign_certificate(sample_certificate(now=NOW).certificate, signer)
    assert unverified_certificate(signed.data) == signed.certificate


# --- the deletion manifest -------------------------------------------------------------------


def _entries(n: int) -> Iterator[ManifestEntry]:
    for i in range(n):
        yield ManifestEntry(f"s3://b/p/obj-{i:08d}.bin", f"v{i}", i % 4096, NOW)


def test_manifest_streams_and_binds_its_digest(signer: LocalSigner) -> None:
    out = io.BytesIO()
    ref = write_manifest(_entries(1000), out)
    data = out.getvalue()
    assert ref.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert ref.entries == 1000 == data.count(b"\n")
    assert ref.purged_bytes == sum(i % 4096 for i in range(1000))
    first = json.loads(data.splitlines()[0])
    assert first == {
        "uri": "s3://b/p/obj-00000000.bin",
        "version_id": "v0",
        "kind": "version",
        "size": 0,
        "deleted_at": "2025-06-30T12:00:00Z",
    }
    for line in data.splitlines(keepends=True)[:50]:
        assert rfc8785.dumps(json.loads(line)) + b"\n" == line
    unicode = write_manifest(
        [ManifestEntry('gs://b/\u00e9t\u00e9/\U0001f600 "q"\n', None, 1, NOW)], out := io.BytesIO()
    )
    assert unicode.entries == 1
    assert rfc8785.dumps(json.loads(out.getvalue())) + b"\n" == out.getvalue()
    chunks = [data[i : i + 777] for i in range(0, len(data), 777)]
    assert read_manifest_reference(chunks) == ref
    assert check_manifest(chunks, ref) == ref

    tampered = bytearray(data)
    tampered[100] ^= 1
    with pytest.raises(IntegrityError, match="manifest"):
        check_manifest([bytes(tampered)], ref)
    with pytest.raises(IntegrityError, match="truncated"):
        check_manifest([data[:-1]], ref)
    with pytest.raises(IntegrityError, match="digest mismatch"):
        check_manifest([data + data.splitlines(keepends=True)[0]], ref)


def test_manifest_reference_is_checked_by_verify(signer: LocalSigner) -> None:
    sample = sample_certificate(now=NOW)
    out = io.BytesIO()
    ref = write_manifest(sample.manifest_entries, out)
    assert ref == sample.certificate.deletion_manifest
    signed = sign_certificate(sample.certificate, signer)
    verified = verify_certificate(signed.data, signer.public_key_pem(), manifest=ref)
    assert verified.manifest_checked
    other = write_manifest(sample.manifest_entries[:-1], io.BytesIO())
    with pytest.raises(IntegrityError, match="deletion manifest digest mismatch"):
        verify_certificate(signed.data, signer.public_key_pem(), manifest=other)


def test_manifest_writer_memory_does_not_grow() -> None:
    writer = ManifestWriter()
    sink = hashlib.sha256()
    tracemalloc.start()
    try:
        for chunk in writer.chunks(_entries(50_000)):
            sink.update(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ref = writer.reference()
    assert ref.entries == 50_000
    assert ref.digest == "sha256:" + sink.hexdigest()
    assert peak < 1024 * 1024, f"peak {peak} bytes for 50k lines (~5 MB of manifest)"


def test_manifest_refuses_naive_times_and_partial_use() -> None:
    writer = ManifestWriter()
    with pytest.raises(InputError, match="not written to the end"):
        writer.reference()
    naive = ManifestEntry("s3://b/x", None, 1, datetime(2025, 1, 1))
    with pytest.raises(InputError, match="time zone"):
        write_manifest([naive], io.BytesIO())


def test_exception_model_is_strict() -> None:
    with pytest.raises(ValueError):
        CertificateException(subject="", kind="held", description="x")
    assert (
        CertificateException(
            subject="s3://b/p", kind="held", description="x", until=NOW + timedelta(days=1)
        ).objects
        == 0
    )
