"""Server-side encryption coverage: which copies a store reports under the system's storage key.

A spec may name ``keys.storage_cmk``, the customer-managed key its stores encrypt under
server-side (S3 SSE-KMS, GCS CMEK). A retirement destroys it with the KEK, so a copy the store
encrypted under exactly that key is covered by its cryptographic erase (protection
``sse-kms``). What a store reports is untrusted input: it is compared, as reported, with the
key's canonical name as its key service resolved it when the plan was made (AWS: the key ARN
DescribeKey returns; GCP: the crypto key's resource name), never normalized towards it. An
alias, a bare key id, the same key id under another account or region, or another key is not
the storage key, and such copies are logical deletion with that reason.

Nothing here performs I/O: the connectors report (:class:`sundown.store.ServerSideEncryption`),
the flow resolves the key (:func:`storage_key` from its :class:`sundown.keys.KeyInfo`), and
:class:`ServerSideVerdict` decides per copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sundown.certificate import Protection
from sundown.errors import InputError, UnsupportedError
from sundown.plan import CopyProtection
from sundown.store import AZURE_SCOPE, ServerSideEncryption

__all__ = [
    "AZURE_SCOPE",
    "KMS_ALGORITHMS",
    "ServerSideVerdict",
    "StorageKey",
    "key_name",
    "storage_key",
    "writer_key",
]

#: What each provider reports for encryption under a customer-managed KMS key.
KMS_ALGORITHMS = {"aws": frozenset({"aws:kms", "aws:kms:dsse"}), "gcp": frozenset({"cmek"})}
#: Provider-managed keys: the tenant cannot destroy them.
_PROVIDER_MANAGED = {
    "AES256": "SSE-S3 (AES256): an S3-managed key the tenant cannot destroy",
    "google-managed": "Google-managed encryption key: the tenant cannot destroy it",
}
_GCP_VERSION = re.compile(r"/cryptoKeyVersions/[0-9]{1,20}$")
_NAMED = 16  # distinct foreign keys named per location; the rest counted without a name


@dataclass(frozen=True)
class StorageKey:
    """The storage key as its key service resolved it: ``uri`` (``aws-kms://<ARN>``,
    ``gcp-kms://<resource name>``), ``provider`` (``aws``/``gcp``), ``name`` (ARN or resource
    name: what a store's report must equal)."""

    uri: str
    provider: str
    name: str


def storage_key(resolved_uri: str) -> StorageKey:
    """The :class:`StorageKey` of a key URI as its key service reports it (``KeyInfo.uri``)."""
    for scheme, provider in (("aws-kms://", "aws"), ("gcp-kms://", "gcp")):
        if resolved_uri.startswith(scheme) and len(resolved_uri) > len(scheme):
            return StorageKey(resolved_uri, provider, resolved_uri[len(scheme) :])
    raise InputError(
        f"{resolved_uri!r} is not a key stores can encrypt under server-side "
        "(aws-kms://arn:... or gcp-kms://projects/...)"
    )


_WRITER_FORMS = {
    "aws": ("aws-kms://arn:", "S3 encrypts server-side under AWS KMS keys named by ARN "
            "(aws-kms://arn:aws:kms:...)"),
    "gcp": ("gcp-kms://projects/", "GCS encrypts server-side under Cloud KMS crypto keys "
            "(gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K)"),
}  # fmt: skip


def writer_key(store_url: str, key: str, provider: str) -> str:
    """The name a ``provider`` store writes under for the storage key ``key`` (the URI without
    its scheme); UnsupportedError naming the store when that store cannot encrypt under it."""
    prefix, form = _WRITER_FORMS[provider]
    if not key.startswith(prefix) or "/cryptoKeyVersions/" in key:
        raise UnsupportedError(f"{store_url}: {form}, not {key[:200]!r}")
    return key.split("://", 1)[1]


def key_name(reported: str, provider: str) -> str:
    """A key name as a store reports it, made comparable with a :class:`StorageKey`'s name:
    GCS reports the key version (``/cryptoKeyVersions/N``), which is removed; nothing else is
    normalized."""
    return _GCP_VERSION.sub("", reported) if provider == "gcp" else reported


def _shown(text: str, limit: int = 200) -> str:
    clean = "".join(c if c.isprintable() and c not in "|<>`" else "?" for c in text)
    return clean if len(clean) <= limit else clean[:limit] + "..."


class ServerSideVerdict:
    """Per copy: what its server-side encryption, as its store reported it, proves.

    - reported under a KMS algorithm with exactly the storage key's name (GCS: the key name
      with its ``/cryptoKeyVersions/N`` suffix removed, the one form GCS reports): ``sse-kms``
      under the storage key's URI, whatever the envelope check said (the copy dies with the
      key either way);
    - otherwise the envelope verdict stands when it said something (``envelope (key not in
      this retirement)``, or a sidecar problem); where it said only "unknown" or "none", the
      report replaces it: another KMS key, an alias or a key id (``sse-tenant-key``, the key
      named as reported, the first 16 per location), a provider-managed key
      (``provider-managed``), no encryption reported (``none``), anything else (``unknown``).
    """

    def __init__(self, key: StorageKey | None) -> None:
        self._key = key
        self._named: set[str] = set()

    def _is_storage_key(self, found: ServerSideEncryption) -> bool:
        key = self._key
        if key is None or found.key is None:
            return False
        if found.algorithm not in KMS_ALGORITHMS.get(key.provider, frozenset()):
            return False
        return key_name(found.key, key.provider) == key.name

    def __call__(self, found: ServerSideEncryption, verdict: CopyProtection) -> CopyProtection:
        said = f"store reports {_shown(found.algorithm, 40)}" + (
            f" under {_shown(found.key)}" if found.key else ""
        )
        if self._is_storage_key(found):
            assert self._key is not None
            return CopyProtection(
                Protection.SSE_KMS,
                key=self._key.uri,
                note=f"{said}: the storage key this retirement destroys (compared exactly with "
                "its resolved name when planned)",
            )
        if verdict.protection not in (Protection.UNKNOWN, Protection.NONE):
            return verdict
        why = verdict.note or ""
        if found.algorithm in _PROVIDER_MANAGED:
            return CopyProtection(
                Protection.PROVIDER_MANAGED, note=f"{why}; {_PROVIDER_MANAGED[found.algorithm]}"
            )
        if found.algorithm == AZURE_SCOPE:
            return CopyProtection(
                Protection.SSE_TENANT_KEY,
                key=f"encryption scope {_shown(found.key or '?', 64)}",
                note=f"{why}; {said}: an Azure encryption scope's key is not visible through the "
                "blob API, so it is never taken for the storage key (docs/known-gaps.md)",
            )
        if found.algorithm == "none":
            return CopyProtection(
                Protection.NONE, note=f"{why}; the store reports no server-side encryption"
            )
        if found.key is not None and not found.algorithm.startswith("unknown"):
            shown: str | None = _shown(found.key)
            if shown not in self._named and len(self._named) >= _NAMED:
                shown = None
            elif shown is not None:
                self._named.add(shown)
            target = "the storage key" if self._key else "a key"
            return CopyProtection(
                Protection.SSE_TENANT_KEY,
                key=shown,
                note=f"{why}; {said}: not exactly {target} this retirement destroys (an alias, "
                "a key id, or a key of another account, region or name is not)",
            )
        return CopyProtection(Protection.UNKNOWN, note=f"{why}; {said}")
