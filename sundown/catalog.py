"""What connectors Sundown has: every URL scheme and credential kind, what it is, what it can
do, which package provides it, whether that package is installed here, and how to install it
(``sundown connectors``, like ``rclone help backends``).

Nothing here imports a connector or an SDK: "installed" is asked of the import system
(:func:`importlib.util.find_spec`), so listing is cheap and works where an SDK is missing.
Capabilities are what the connector can do at most; an object store reports per location
which of them its bucket has switched on (``ObjectStore.capabilities``).
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from sundown import registry
from sundown.errors import UnsupportedError


class Kind(enum.StrEnum):
    OBJECT_STORE = "object store"
    RECORD_STORE = "record store"
    KEY_SERVICE = "key service"
    CREDENTIAL = "credential"


@dataclass(frozen=True)
class _Provider:
    modules: tuple[str, ...]  # import names that must be importable
    package: str  # the distribution(s) a user installs, as pip names them
    extra: str | None  # the sundown extra that installs it (None: a core dependency)


_CORE = "sundown"
_PROVIDERS: dict[str, _Provider] = {
    "sundown": _Provider((), _CORE, None),
    "boto3": _Provider(("boto3",), "boto3", "aws"),
    "gcs": _Provider(("google.cloud.storage",), "google-cloud-storage", "gcp"),
    "azure": _Provider(
        ("azure.storage.blob", "azure.identity"), "azure-storage-blob azure-identity", "azure"
    ),
    "hvac": _Provider(("hvac",), "hvac", "vault"),
    "gcp-kms": _Provider(("google.cloud.kms", "google_crc32c"), "google-cloud-kms", "gcp"),
    "azure-kv": _Provider(
        ("azure.keyvault.keys", "azure.identity"), "azure-keyvault-keys azure-identity", "azure"
    ),
    "postgres": _Provider(("psycopg",), "psycopg[binary]", "postgres"),
    "redis": _Provider(("redis",), "redis", "redis"),
    "chroma": _Provider(("chromadb",), "chromadb", "chroma"),
    "mlflow": _Provider(("mlflow",), "mlflow", "mlflow"),
}

_OBJECT = (
    "versioning",
    "object_lock",
    "soft_delete",
    "archive_tier",
    "batch_delete",
    "conditional_create",
)
_KEYS = ("wrap", "sign", "create", "destroy")

# scheme -> (kind, provider, capabilities, description)
_SCHEMES: dict[str, tuple[Kind, str, tuple[str, ...], str]] = {
    "file": (Kind.OBJECT_STORE, "sundown", ("conditional_create",), "a local folder"),
    "s3": (
        Kind.OBJECT_STORE,
        "boto3",
        (
            "versioning",
            "object_lock",
            "archive_tier",
            "batch_delete",
            "conditional_create",
            "lifecycle",
        ),
        "Amazon S3 and S3-compatible stores",
    ),
    "gs": (Kind.OBJECT_STORE, "gcs", _OBJECT, "Google Cloud Storage"),
    "az": (Kind.OBJECT_STORE, "azure", _OBJECT, "Azure Blob Storage"),
    "local": (Kind.KEY_SERVICE, "sundown", _KEYS, "the local keyring"),
    "vault": (Kind.KEY_SERVICE, "hvac", _KEYS, "HashiCorp Vault / OpenBao transit"),
    "aws-kms": (Kind.KEY_SERVICE, "boto3", _KEYS, "AWS KMS"),
    # listed once the registry has them (issue #13's connectors)
    "gcp-kms": (Kind.KEY_SERVICE, "gcp-kms", _KEYS, "Google Cloud KMS"),
    "azure-kv": (Kind.KEY_SERVICE, "azure-kv", _KEYS, "Azure Key Vault keys"),
    "postgresql": (
        Kind.RECORD_STORE,
        "postgres",
        ("where", "whole", "batch_delete", "compact"),
        "PostgreSQL table rows (psycopg 3)",
    ),
    "redis": (
        Kind.RECORD_STORE,
        "redis",
        ("prefix", "batch_delete", "compact"),
        "Redis keys under a prefix",
    ),
    "chroma": (
        Kind.RECORD_STORE,
        "chroma",
        ("where", "whole", "batch_delete"),
        "Chroma collection documents",
    ),
    # ML platforms (docs/ml-platforms.md): records that name object-store locations
    "mlflow": (
        Kind.RECORD_STORE,
        "mlflow",
        ("whole", "linked_locations", "retention"),
        "MLflow registered models and experiments (runs purged as mlflow gc does)",
    ),
    "sagemaker": (
        Kind.RECORD_STORE,
        "boto3",
        ("prefix", "linked_locations"),
        "SageMaker endpoints, endpoint configurations and models",
    ),
    "aws-logs": (
        Kind.RECORD_STORE,
        "boto3",
        ("prefix", "linked_locations", "retention"),
        "CloudWatch Logs groups and streams",
    ),
}

# credential kind (as a system spec names it) -> (provider, capabilities)
_CREDENTIALS: dict[str, tuple[str, tuple[str, ...]]] = {
    "vault_kv": ("hvac", ("rotate", "revoke")),
    "vault_token": ("hvac", ("revoke",)),
    "vault_lease_prefix": ("hvac", ("revoke",)),
    "vault_approle_secret_id": ("hvac", ("revoke",)),
    "vault_kv_version": ("hvac", ("revoke",)),  # a rotation's old KV version (not in specs)
    "vault_approle_role": ("hvac", ("revoke",)),
    "aws_access_key": ("boto3", ("rotate", "revoke")),
    "azure_stored_policy": ("azure", ("rotate", "revoke")),
    "gcs_hmac_key": ("gcs", ("rotate", "revoke")),
    "postgres_role": ("postgres", ("rotate", "revoke")),
    "redis_acl_user": ("redis", ("rotate", "revoke")),
}


@dataclass(frozen=True)
class ConnectorInfo:
    """One line of ``sundown connectors``."""

    name: str  # a URL scheme (``s3``) or a credential kind (``vault_token``)
    kind: str  # a Kind
    description: str
    capabilities: tuple[str, ...]
    package: str
    installed: bool
    extra: str | None

    @property
    def install_hint(self) -> str | None:
        """What to run when it is not installed (``None`` when it is)."""
        if self.installed:
            return None
        if self.extra:
            return f"pip install {install_target(self.name)}"
        return f"pip install {self.package}"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": str(self.kind),
            "description": self.description,
            "capabilities": list(self.capabilities),
            "package": self.package,
            "installed": self.installed,
            "extra": self.extra,
            "install_hint": self.install_hint,
        }


def install_target(name: str) -> str:
    """What ``pip install`` takes for a URL scheme or credential kind (``'sundown[aws]'``;
    ``sundown`` for the core): the one table the registry's and the credential registry's
    errors, and ``sundown connectors``, all read."""
    entry = _SCHEMES.get(name)
    provider = entry[1] if entry is not None else _CREDENTIALS.get(name, (_CORE, ()))[0]
    extra = _PROVIDERS[provider].extra
    return f"'sundown[{extra}]'" if extra else _CORE


def import_connector(module: str, name: str, what: str) -> ModuleType:
    """Import a connector's module (``name``: its URL scheme or credential kind, ``what`` as
    the message says it); UnsupportedError naming the extra to install when an SDK is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = install_target(name)
        raise UnsupportedError(
            f"{what} needs {hint}: install it (pip install {hint}) ({exc})"
        ) from exc


def installed(modules: tuple[str, ...]) -> bool:
    """Whether every module can be imported, asked without importing them."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):  # a parent package missing
            return False
    return True


def _info(name: str, kind: Kind, provider: str, caps: tuple[str, ...], what: str) -> ConnectorInfo:
    p = _PROVIDERS[provider]
    return ConnectorInfo(name, kind, what, caps, p.package, installed(p.modules), p.extra)


def list_connectors() -> list[ConnectorInfo]:
    """Every URL scheme the registry knows, then every credential kind a spec may declare.
    A scheme the registry has and this catalog does not is listed with what is known of it."""
    from sundown.spec.model import CREDENTIAL_ACTIONS

    out: list[ConnectorInfo] = []
    for scheme in sorted(registry.schemes(), key=lambda s: (_order(s), s)):
        entry = _SCHEMES.get(scheme)
        if entry is None:  # tests/test_catalog.py keeps this from happening
            out.append(
                ConnectorInfo(scheme, "?", "(not in sundown/catalog.py)", (), "?", True, None)
            )
            continue
        kind, provider, caps, what = entry
        out.append(_info(scheme, kind, provider, caps, what))
    for kind_name in sorted(CREDENTIAL_ACTIONS):
        provider, caps = _CREDENTIALS.get(kind_name, ("sundown", ("revoke",)))
        out.append(_info(kind_name, Kind.CREDENTIAL, provider, caps, CREDENTIAL_ACTIONS[kind_name]))
    return out


def _order(scheme: str) -> int:
    entry = _SCHEMES.get(scheme)
    kinds = list(Kind)
    return kinds.index(entry[0]) if entry else len(kinds)
