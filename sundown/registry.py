"""URL scheme -> connector module, imported lazily (no cloud SDK is imported by the core).

A connector module implements some of these module-level functions:

- ``open_store(url: str) -> ObjectStore`` (``file``, ``s3``, ``gs``, ``az``)
- ``account_of(url: str) -> str``: the cloud account a store URL belongs to, as the environment
  names it (no request; ``file``, ``s3``, ``gs``, ``az``)
- ``open_key_service(uri: str) -> KeyService``, ``open_signer(uri: str) -> Signer`` and
  ``create_key(uri: str, *, signing: bool) -> KeyInfo`` (``local``, ``vault``, ``aws-kms``,
  ``gcp-kms``, ``azure-kv``; the CLI also takes a PEM file path as a signer)
- ``open_record_store(url: str, selector: Mapping | None) -> RecordStore`` (``postgresql``,
  ``redis``, ``chroma``; docs/records.md; ``mlflow``, ``sagemaker``, ``aws-logs``:
  docs/ml-platforms.md)

What each scheme is and whether its package is installed: :mod:`sundown.catalog`.

Clients are created per call from the environment's current credentials and never cached across
credentials: a rotated or revoked credential must not live on in a cache.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sundown.errors import InputError, UnsupportedError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sundown.keys import KeyInfo, KeyService, Signer
    from sundown.records import RecordStore
    from sundown.store import ObjectStore

# scheme -> module (what to install when its import fails: sundown.catalog.install_target)
_CONNECTORS: dict[str, str] = {
    "file": "connectors.local",
    "local": "connectors.keyring",
    "s3": "connectors.s3",
    "gs": "connectors.gcs",
    "az": "connectors.azure_blob",
    "vault": "connectors.vault",
    "aws-kms": "connectors.aws_kms",
    "gcp-kms": "connectors.gcp_kms",
    "azure-kv": "connectors.azure_keyvault",
    "postgresql": "connectors.postgres",
    "redis": "connectors.redis_kv",
    "chroma": "connectors.chroma",
    "mlflow": "connectors.mlflow_registry",
    "sagemaker": "connectors.sagemaker",
    "aws-logs": "connectors.aws_logs",
}


def schemes() -> list[str]:
    """Every URL scheme a connector is registered for."""
    return sorted(_CONNECTORS)


def scheme_of(url: str) -> str:
    if "://" not in url:
        raise InputError(f"not a URL: {url!r} (expected scheme://..., e.g. file:///path)")
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _CONNECTORS:
        known = ", ".join(sorted(_CONNECTORS))
        raise InputError(f"unknown URL scheme {scheme!r} in {url!r} (known: {known})")
    return scheme


def _module(url: str, function: str) -> ModuleType:
    scheme = scheme_of(url)
    from sundown.catalog import import_connector

    module = import_connector(_CONNECTORS[scheme], scheme, f"the {scheme}:// connector")
    if not hasattr(module, function):
        raise UnsupportedError(f"{scheme}:// does not support {function.replace('_', ' ')}")
    return module


def open_store(url: str) -> ObjectStore:
    """The object store rooted at ``url``."""
    return _module(url, "open_store").open_store(url)


def open_record_store(url: str, selector: Mapping[str, object] | None = None) -> RecordStore:
    """The records ``selector`` matches at ``url`` (docs/records.md)."""
    return _module(url, "open_record_store").open_record_store(url, selector)


def open_key_service(uri: str) -> KeyService:
    """The key-encryption key at ``uri``."""
    return _module(uri, "open_key_service").open_key_service(uri)


def key_for_destruction(uri: str) -> KeyService:
    """The key at ``uri`` for :meth:`~sundown.keys.KeyService.destroy` and
    ``verify_destroyed``, without first checking that it is alive: a destruction that stopped
    halfway must be finished, and a destroyed key proved gone from its material."""
    return _module(uri, "key_for_destruction").key_for_destruction(uri)


def open_signer(uri: str) -> Signer:
    """The signing key at ``uri``."""
    return _module(uri, "open_signer").open_signer(uri)


def create_key(uri: str, *, signing: bool = False) -> KeyInfo:
    """Create a key-encryption key (or, with ``signing``, an ECDSA P-256 signing key)."""
    return _module(uri, "create_key").create_key(uri, signing=signing)


def split_object_url(url: str) -> tuple[str, str]:
    """Split an object URL into (store root URL, key): ``s3://b/p/x`` -> ``s3://b/p``, ``x``.

    The root is the parent "folder" of the object, so the store opened on it is scoped to it."""
    scheme_of(url)
    head, _, key = url.rstrip("/").rpartition("/")
    if not key or head.endswith(":/") or head.endswith("://"):
        raise InputError(f"{url!r} names no object (expected scheme://.../name)")
    return head, key


def account_of(url: str) -> str:
    """The cloud account the store at ``url`` belongs to, as this environment's configuration
    names it (``s3-<endpoint>``, ``gs-google``, ``az-<storage account>``, ``file-local``): read
    from the environment by the connector, no request."""
    return _module(url, "account_of").account_of(url)
