"""Sundown: decommissioning and key-lifecycle orchestrator for AI systems.

A tour of the core (no cloud SDK and no Prefect import lives here):

- :mod:`sundown.errors`: the one error hierarchy (tampering vs bad input vs missing vs transient).
- :mod:`sundown.keys`: the key-service (KEK) and signer protocols connectors implement.
- :mod:`sundown.store`: the object-store protocol, optional capabilities, path scoping.
- :mod:`sundown.registry`: URL scheme -> connector, imported lazily.
- :mod:`sundown.envelope`: streaming envelope encryption (Tink AES256_GCM_HKDF_1MB) and sidecars.
- :mod:`sundown.dsse`: DSSE envelopes signed through the signer protocol.
- :mod:`sundown.signing`: OpenSSF Model Signing v1.0 bundles.
- :mod:`sundown.canonical`: canonical JSON (RFC 8785 subset) for everything signed or hashed.
- :mod:`sundown.spec`: the system spec (YAML, validated, scoped, digested).
- :mod:`sundown.plan`: the retirement plan (streamed JSON Lines, digest, approval checks).
- :mod:`sundown.certificate`: the decommissioning certificate (NIST SP 800-88 fields, in-toto/DSSE).
- :mod:`sundown.ledger`: the append-only, hash-chained, signed evidence ledger.
- :mod:`sundown.render`: certificates as PDF and Markdown.

The ``sundown`` command lives above the flows, in the top-level package :mod:`cli`
(docs/architecture.md).
"""

__version__ = "0.1.0"
