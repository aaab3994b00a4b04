"""Certificates whose key deletion is pending (cloud KMS windows): the model refuses a
cryptographic erase claim that says the copies are irrecoverable before the key is deleted, a
"complete" status while the key can still be restored, and certificates without the field keep
their exact bytes (older v2 certificates verify unchanged)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sundown.certificate import Certificate, sign_certificate, verify_certificate
from sundown.certificate._signing import parse_envelope
from tests.certificate_sample import sample_certificate
from tests.test_certificate import LocalSigner

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
CE = "Purge (cryptographic erase)"
KEK = "vault://transit/fraud-scorer-v3"
PENDING = NOW + timedelta(days=7)


def _cert_json() -> dict[str, Any]:
    return sample_certificate(now=NOW).certificate.model_dump(mode="json")


def _validate(obj: dict[str, Any]) -> Certificate:
    return Certificate.model_validate_json(json.dumps(obj))


def _ce(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["locations"][0]["sanitization"] if c["category"] == CE)


def _pending(obj: dict[str, Any], at: datetime = PENDING) -> dict[str, Any]:
    obj["keys_destroyed"][0]["pending_until"] = at.isoformat()
    return obj


def _honest(obj: dict[str, Any]) -> dict[str, Any]:
    """The pending date on the claim, and exceptions naming the key and the location."""
    _ce(obj)["irrecoverable_after"]["at"] = PENDING.isoformat()
    obj["status"] = "complete with exceptions"
    obj["exceptions"] = [
        {
            "subject": subject,
            "kind": "key deletion pending",
            "description": f"complete; key deletion pending until {PENDING.isoformat()}",
            "until": PENDING.isoformat(),
        }
        for subject in (KEK, obj["locations"][0]["uri"])
    ]
    return obj


def test_a_ce_claim_under_a_pending_key_must_carry_the_pending_date() -> None:
    obj = _pending(_cert_json())
    obj["status"] = "complete with exceptions"
    obj["exceptions"] = [{"subject": KEK, "kind": "key deletion pending", "description": "x"}]
    # irrecoverable_after still says the destruction time: earlier than the pending date
    with pytest.raises(ValueError, match=r"deletion is pending until .* irrecoverable_after is"):
        _validate(obj)
    cert = _validate(_honest(_pending(_cert_json())))
    assert cert.keys_destroyed[0].pending_until == PENDING
    assert cert.locations[0].sanitization[0].irrecoverable_after.at == PENDING


def test_complete_is_refused_while_the_key_can_be_restored() -> None:
    obj = _honest(_pending(_cert_json()))
    obj["status"] = "complete"
    obj["exceptions"] = []
    with pytest.raises(ValueError, match="status 'complete' but"):
        _validate(obj)
    obj = _honest(_pending(_cert_json()))
    obj["exceptions"] = obj["exceptions"][1:]  # the key's own exception left out
    with pytest.raises(ValueError, match=r"key deletion pending.*no exception names it"):
        _validate(obj)


def _payload(data: bytes) -> bytes:
    return parse_envelope(data).payload


def test_a_certificate_without_a_pending_key_has_no_pending_field() -> None:
    signer = LocalSigner()
    plain = sample_certificate(now=NOW).certificate
    assert "pending_until" not in plain.model_dump(mode="json")["keys_destroyed"][0]
    signed = sign_certificate(plain, signer)
    assert b'"verified":true' in _payload(signed.data)  # the payload is what is searched
    assert b"pending_until" not in _payload(signed.data)
    back = verify_certificate(signed.data, signer.public_key_pem()).certificate
    assert back.keys_destroyed == plain.keys_destroyed
    pending = _validate(_honest(_pending(_cert_json())))
    data = sign_certificate(pending, signer).data
    assert b'"pending_until":"2025-07-07T12:00:00Z"' in _payload(data)
    again = verify_certificate(data, signer.public_key_pem()).certificate
    assert again.keys_destroyed[0].pending_until == PENDING
