"""Spec rules for the cloud KMS keys a retirement destroys: the pending window
(``keys.pending_days``) and the KMS grants (``keys.grants``). They apply to every key in
:meth:`SystemSpec.keys_to_destroy`, whatever its role (KEK, model-signing key, a server-side
storage key), so a key added to that list is covered without a change here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .values import PENDING_DAYS_SCHEMES

if TYPE_CHECKING:
    from .model import SystemSpec

GRANT_SCHEMES = ("aws-kms",)


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0]


def kms_rules(spec: SystemSpec) -> list[tuple[str, str]]:
    """(field, problem) for ``keys.pending_days`` and ``keys.grants``."""
    out: list[tuple[str, str]] = []
    destroyed = spec.keys_to_destroy()
    if spec.keys.pending_days is not None:
        for uri, role in destroyed:
            if _scheme(uri) not in PENDING_DAYS_SCHEMES:
                out.append(
                    (
                        "keys.pending_days",
                        f"is set, but keys.{role} {uri} is a {_scheme(uri)}:// key, whose "
                        "deletion has no pending window chosen at deletion (Cloud KMS: the "
                        "key's own destroy_scheduled_duration; Key Vault: the vault's "
                        "soft-delete retention; Vault and the local keyring: deleted at once); "
                        "remove keys.pending_days",
                    )
                )
    roles = dict(destroyed)
    seen: set[tuple[str, str]] = set()
    for i, grant in enumerate(spec.keys.grants):
        uri = grant.key or spec.keys.kek
        if uri not in roles:
            out.append(
                (
                    f"keys.grants[{i}].key",
                    f"{uri} is not a key this system destroys at retirement "
                    f"({', '.join(u for u, _ in destroyed)}): only those keys' grants are "
                    "revoked with the system",
                )
            )
        elif _scheme(uri) not in GRANT_SCHEMES:
            out.append(
                (
                    f"keys.grants[{i}]",
                    f"{uri} is a {_scheme(uri)}:// key: grants are an AWS KMS feature (Cloud KMS "
                    "and Key Vault give access through IAM / access policies)",
                )
            )
        if (uri, grant.id) in seen:
            out.append((f"keys.grants[{i}].id", f"grant {grant.id} on {uri} is named twice"))
        seen.add((uri, grant.id))
    return out


def grants_by_key(spec: SystemSpec) -> dict[str, list[str]]:
    """Key URI -> the grant ids the spec names on it, in spec order."""
    out: dict[str, list[str]] = {}
    for grant in spec.keys.grants:
        out.setdefault(grant.key or spec.keys.kek, []).append(grant.id)
    return out
