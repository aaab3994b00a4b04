"""Credential revocation as the flows need it: one spec credential -> the connector operation.

Maps each :class:`~sundown.spec.model.CredentialRef` kind to its operation in
``connectors/credentials`` (imported lazily: a system without Vault credentials never imports
hvac) and turns the
connector's :class:`~connectors.credentials.CredentialEvidence` into the certificate's
:class:`~sundown.certificate.CredentialRevoked`. Every removal runs with ``missing_ok=True``, so a
re-run after a crash records "already absent" with the same checks instead of failing.

A kind with no operation yet, or an operation that fails, is reported as *not* revoked
(``verified`` false) with the reason: the certificate lists it as an exception instead of
pretending. Nothing here ever returns or logs a secret.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sundown.certificate import CredentialRevoked
from sundown.errors import SundownError
from sundown.spec.model import CredentialRef


def _module(name: str) -> Any:
    return importlib.import_module(f"connectors.credentials.{name}")


def _kv(ident: str) -> list[Any]:
    mount, _, path = ident.partition("/")
    return [_module("vault_kv").destroy_secret(path, mount=mount, missing_ok=True)]


def _token(ident: str) -> list[Any]:
    return [_module("vault_tokens").revoke_token_accessor(ident, missing_ok=True)]


def _leases(ident: str) -> list[Any]:
    return [_module("vault_leases").revoke_lease_prefix(ident, missing_ok=True)]


def _secret_id(ident: str) -> list[Any]:
    mount, role, accessor = ident.rsplit("/", 2)
    return list(
        _module("vault_approle").destroy_secret_ids(role, [accessor], mount=mount, missing_ok=True)
    )


def _approle(ident: str) -> list[Any]:
    mount, role = ident.rsplit("/", 1)
    return [_module("vault_approle").delete_role(role, mount=mount, missing_ok=True)]


def _aws_key(ident: str) -> list[Any]:
    user, _, key_id = ident.rpartition("/")
    return [_module("aws_iam").revoke_access_key(user, key_id, missing_ok=True)]


def _azure_policy(ident: str) -> list[Any]:
    container, _, policy_id = ident.partition("/")
    return [_module("azure_sas").revoke_access_policy(container, policy_id, missing_ok=True)]


def _gcs_hmac(ident: str) -> list[Any]:
    module = _module("gcs_hmac")
    return [module.revoke_hmac_key(ident, missing_ok=True)]


_REVOKERS: dict[str, Callable[[str], list[Any]]] = {
    "vault_kv": _kv,
    "vault_token": _token,
    "vault_lease_prefix": _leases,
    "vault_approle_secret_id": _secret_id,
    "vault_approle_role": _approle,
    "aws_access_key": _aws_key,
    "azure_stored_policy": _azure_policy,
    "gcs_hmac_key": _gcs_hmac,
}


def _unrevoked(ref: CredentialRef, why: str) -> CredentialRevoked:
    return CredentialRevoked(
        kind=ref.kind,
        identifier=ref.id,
        revoked_at=datetime.now(UTC),
        method=f"not revoked: {why}"[:4000],
        checks={"revocation": why[:4000]},
        verified=False,
    )


def revoke(ref: CredentialRef) -> CredentialRevoked:
    """Revoke one credential and prove it dead; expected failures become an unverified record."""
    revoker = _REVOKERS.get(ref.kind)
    if revoker is None:
        return _unrevoked(ref, f"no credential connector operation for {ref.kind} yet")
    try:
        evidence = revoker(ref.id)
    except ImportError as exc:
        return _unrevoked(ref, f"the {ref.kind} connector is not available ({exc.name})")
    except (SundownError, ValueError) as exc:
        return _unrevoked(ref, f"{type(exc).__name__}: {exc}")
    checks: dict[str, str] = {}
    for ev in evidence:
        for name, observed in ev.checks.items():
            checks[f"{ev.target}: {name}" if len(evidence) > 1 else name] = observed
    return CredentialRevoked(
        kind=ref.kind,
        identifier=ref.id,
        revoked_at=max((ev.at for ev in evidence), default=datetime.now(UTC)),
        method="; ".join(f"{ev.action} ({ev.kind})" for ev in evidence) or ref.action,
        checks=checks,
        verified=bool(evidence) and all(ev.verified for ev in evidence),
    )


def exists(ref: CredentialRef) -> bool | None:
    """Whether the credential still exists; None: not known without changing it (the plan then
    says "unknown"). The connectors have no side-effect-free lookup for every kind yet."""
    return None


_LIVENESS: dict[str, Callable[[str], bool]] = {
    "vault_token": lambda ident: bool(_module("vault_tokens").token_is_live(ident)),
}


def live(ref: CredentialRef) -> bool | None:
    """Whether the credential still works, looked up without changing it, for the
    post-retirement verification; None where no side-effect-free lookup exists for the kind."""
    check = _LIVENESS.get(ref.kind)
    return None if check is None else check(ref.id)
