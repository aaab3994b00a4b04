"""Credential kinds: one module per backend, one object per kind implementing
:class:`sundown.credentials.CredentialKind` (found through
:func:`sundown.credentials.credential_kind`), over a few small typed module operations:

- :mod:`.vault_kv` - KV v2 secrets (``KV``): rotate (new version), destroy every version and
  the metadata; delivery of rotated secrets; one replaced version (``KV_VERSION``).
- :mod:`.vault_tokens` - tokens (``TOKEN``): revoke by accessor.
- :mod:`.vault_leases` - leases (``LEASE_PREFIX``): revoke by id and by prefix.
- :mod:`.vault_approle` - AppRole (``ROLE``, ``SECRET_ID``): issue and destroy secret-ids by
  accessor, delete a role.
- :mod:`.aws_iam` - IAM access keys (``ACCESS_KEY``): rotate (create, deactivate, delete after a
  grace period), revoke.
- :mod:`.azure_sas` - Azure Blob stored access policies (``STORED_POLICY``): rotate and revoke
  (every SAS bound to a removed policy stops working).
- :mod:`.gcs_hmac` - GCS HMAC keys (``HMAC_KEY``): rotate and revoke.
- :mod:`.postgres_role` - PostgreSQL roles (``ROLE``): DROP ROLE after ending sessions and
  revoking memberships and privileges (refused when it owns anything); rotate the password.
- :mod:`.redis_acl` - Redis ACL users (``ACL_USER``): ACL DELUSER; rotate with an overlap window.

Every operation returns :class:`sundown.credentials.CredentialEvidence`: what was done, to which
credential (named by a non-secret identifier: an accessor, a key id, a policy id, a lease id, a
path) and the checks that prove it, each with the result observed. Evidence never holds a secret
value; a rotation that creates a new secret returns it separately, wrapped in
:class:`pydantic.SecretStr` so that it does not print.

Operations that remove a credential raise :class:`sundown.errors.NotFoundError` when it does not
exist, unless ``missing_ok=True`` (a re-run after a crash): then the evidence records that it was
already absent, with the same checks. Clients are made per operation (Vault through
:mod:`connectors._vault`, AWS through :mod:`connectors._aws`); none is cached across credentials.
"""
