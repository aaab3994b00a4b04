"""DSSE (Dead Simple Signing Envelope) v1: pre-authentication encoding, sign, verify.

Used by OpenSSF model signing bundles (``sundown.signing``) and by decommissioning certificates
and ledger records. Signatures are ECDSA P-256 over SHA-256 of the PAE, DER encoded, made through
the :class:`sundown.keys.Signer` protocol so that the private key may live in Vault.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sundown.errors import InputError, IntegrityError
from sundown.keys import Signer

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSEv1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, DER signature)

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": keyid, "sig": base64.b64encode(sig).decode("ascii")}
                for keyid, sig in self.signatures
            ],
        }

    @classmethod
    def from_json(cls, obj: Any) -> Envelope:
        try:
            if not isinstance(obj, dict):
                raise TypeError("not a JSON object")
            sigs = tuple(
                (str(s.get("keyid", "")), base64.b64decode(s["sig"], validate=True))
                for s in obj["signatures"]
            )
            return cls(
                payload_type=str(obj["payloadType"]),
                payload=base64.b64decode(obj["payload"], validate=True),
                signatures=sigs,
            )
        except (KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise IntegrityError(f"malformed DSSE envelope: {exc}") from exc

    @classmethod
    def loads(cls, text: str | bytes) -> Envelope:
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise IntegrityError(f"malformed DSSE envelope: not JSON ({exc.msg})") from exc


def sign(payload_type: str, payload: bytes, signer: Signer) -> Envelope:
    """An envelope with one signature by ``signer``."""
    signature = signer.sign(pae(payload_type, payload))
    return Envelope(payload_type, payload, ((signer.key_id, signature),))


def load_public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise InputError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise InputError("public key is not an ECDSA P-256 key")
    return key


def verify(envelope: Envelope, public_key_pem: bytes) -> bytes:
    """The payload if the envelope's one signature verifies under the key; IntegrityError
    otherwise.

    Every envelope Sundown reads (certificates, ledger records, OMS model-signing bundles) carries
    exactly one signature: a second one, even a junk one next to a good one, is refused. It would
    verify under "any signature suffices" rules while changing the envelope's bytes, and so the
    envelope digest that the ledger binds (DSSE malleability)."""
    key = load_public_key(public_key_pem)
    if len(envelope.signatures) != 1:
        raise IntegrityError(
            f"DSSE envelope carries {len(envelope.signatures)} signatures; exactly one is allowed"
        )
    ((_keyid, signature),) = envelope.signatures
    try:
        key.verify(
            signature, pae(envelope.payload_type, envelope.payload), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        raise IntegrityError("DSSE signature does not verify with the given public key") from None
    return envelope.payload
