"""Sundown: decommissioning and key-lifecycle orchestrator for AI systems.

A tour of the core (no cloud SDK and no Prefect import lives here):

- :mod:`sundown.errors`: the one error hierarchy (tampering vs bad input vs missing vs transient).
- :mod:`sundown.keys`: the key-service (KEK) and signer protocols connectors implement.
- :mod:`sundown.store`: the object-store protocol, optional capabilities, path scoping.
- :mod:`sundown.registry`: URL scheme -> connector, imported lazily.
- :mod:`sundown.envelope`: streaming envelope encryption (Tink AES256_GCM_HKDF_1MB) and sidecars.
- :mod:`sundown.signing`: OpenSSF Model Signing v1.0 bundles.
- :mod:`sundown.cli`: the ``sundown`` command.
"""

__version__ = "0.1.0"
