"""The system spec: one YAML file per AI system, reviewed like code.

A spec declares everything Sundown may touch for one system: the locations of each asset class
(weights, training data, evaluation data, logs, RAG indexes, caches) with their retention rules,
the archive target and archive key, the key-encryption key (KEK) that is destroyed at retirement,
the model-signing and certificate-signing keys, the credentials revoked at retirement, and where
evidence goes. Every destructive operation is scoped by it.

A tour of the package (each name is imported from its module; this file re-exports nothing):

- :mod:`sundown.spec.loader`: :func:`~sundown.spec.loader.load_spec` reads a YAML file and returns
  a validated, immutable :class:`~sundown.spec.model.SystemSpec`, or raises
  :class:`~sundown.errors.InputError` with one message that names the file, the line, the field
  path and the problem of every error found (never a pydantic traceback, never a secret);
  ``parse_spec`` takes YAML text and ``load_spec_dir`` a folder of specs.
- :mod:`sundown.spec.model`: the model (``SystemSpec``, ``StoreLocation``, ``CredentialRef``,
  ``LocationRef``, ...) and ``spec_digest``, a SHA-256 over the canonical JSON of the validated
  model.
- :mod:`sundown.spec.values`: the value checks the model's fields apply (names, key URIs, Vault
  paths, access-key ids).
- :mod:`sundown.spec.overlap`: ``check_no_overlap`` refuses two specs that share a location, a
  key that one of them destroys, or a credential that one of them revokes.
- Store URLs and their path-boundary overlap live in :mod:`sundown.store_url` (the connectors
  parse with it too): ``s3://b/models/a`` and ``s3://b/models/ab`` do not overlap;
  ``s3://b/models`` and ``s3://b/models/a`` do, and for ``file://`` the real paths are compared
  too, so a symbolic link cannot hide an overlap.

The schema is documented in ``docs/spec.md``.
"""
