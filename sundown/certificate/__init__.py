"""Decommissioning certificates: the model, the deletion manifest, signing and verification.

A certificate records one retirement the way NIST SP 800-88 (Rev. 1 section 4.8 and Appendix G;
Rev. 2) asks for a certificate of sanitization, adapted to cloud object storage: what was found at
each location, what protected each copy, what was purged, archived or held, what may be claimed
for it (SP 800-88 Rev. 2: "Purge (cryptographic erase)" only for copies proven encrypted under a
key that was destroyed and verified gone; "logical deletion" for the rest, with the retention the
store reports), how each step was verified and whether the outcome was accepted (validation), which
keys were destroyed and which credentials revoked, who did it and who approved it, and whether it
is complete.

Encoding (specified in ``docs/formats/certificate.md``)::

    DSSE envelope (payloadType application/vnd.in-toto+json), canonical JSON (RFC 8785)
      payload = canonical JSON of an in-toto Statement v1
        subject       = [the deletion manifest: name and sha256]
        predicateType = https://sundown.dev/decommission-certificate/v2
        predicate     = Certificate.model_dump(mode="json")

The signing key is a certificate-signing key reached through :class:`sundown.keys.Signer`; it is
never a key the certificate says was destroyed. Its key id and public-key fingerprint are inside the
signed predicate; trust comes only from a public key the verifier supplies or has pinned (the
evidence ledger's first record), never from the certificate alone.

The deletion manifest (one JSON line per purged copy) is evidence kept beside the certificate and
bound by its SHA-256. :class:`ManifestWriter` streams it: memory does not grow with its length.

The package does no I/O: callers pass bytes, streams and iterators. Its parts:

- :mod:`sundown.certificate._model`: the certificate model and what may be claimed
  (:func:`ce_claimable`);
- :mod:`sundown.certificate._manifest`: the deletion manifest (:class:`ManifestWriter`,
  :func:`check_manifest`);
- :mod:`sundown.certificate._signing`: the in-toto statement, signing and verification
  (:func:`sign_certificate`, :func:`verify_certificate`).

Import from ``sundown.certificate``; the private modules may move. A sample certificate for tests
and the docs is ``tests/certificate_sample.py``.
"""

from __future__ import annotations

from ._manifest import (
    ManifestEntry,
    ManifestWriter,
    check_manifest,
    read_manifest_reference,
    write_manifest,
)
from ._model import (
    CERTIFICATE_NAME,
    ERASABLE,
    MANIFEST_NAME,
    MEDIA_TYPE_CLOUD,
    Certificate,
    CertificateException,
    CopyDisposition,
    Counts,
    CredentialRevoked,
    Execution,
    IrrecoverableAfter,
    KeyDestroyed,
    LocationRecord,
    ManifestRef,
    Party,
    Protection,
    ProtectionCount,
    Sanitization,
    SanitizationCategory,
    SigningKeyRef,
    Status,
    StorageSettings,
    SystemRef,
    Tool,
    Validation,
    ValidationResult,
    Verification,
    VerificationResult,
    ce_basis,
    ce_claimable,
)
from ._signing import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    SignedCertificate,
    VerifiedCertificate,
    envelope_digest,
    key_id_fingerprints,
    new_certificate_id,
    parse_envelope,
    public_key_fingerprint,
    sign_certificate,
    statement,
    unverified_certificate,
    verify_certificate,
)

__all__ = [
    "CERTIFICATE_NAME",
    "ERASABLE",
    "MANIFEST_NAME",
    "MEDIA_TYPE_CLOUD",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Certificate",
    "CertificateException",
    "CopyDisposition",
    "Counts",
    "CredentialRevoked",
    "Execution",
    "IrrecoverableAfter",
    "KeyDestroyed",
    "LocationRecord",
    "ManifestEntry",
    "ManifestRef",
    "ManifestWriter",
    "Party",
    "Protection",
    "ProtectionCount",
    "Sanitization",
    "SanitizationCategory",
    "SignedCertificate",
    "SigningKeyRef",
    "Status",
    "StorageSettings",
    "SystemRef",
    "Tool",
    "Validation",
    "ValidationResult",
    "Verification",
    "VerificationResult",
    "VerifiedCertificate",
    "ce_basis",
    "ce_claimable",
    "check_manifest",
    "envelope_digest",
    "key_id_fingerprints",
    "new_certificate_id",
    "parse_envelope",
    "public_key_fingerprint",
    "read_manifest_reference",
    "sign_certificate",
    "statement",
    "unverified_certificate",
    "verify_certificate",
    "write_manifest",
]
