"""The system spec: one YAML file per AI system, reviewed like code.

A spec declares everything Sundown may touch for one system: the locations of each asset class
(weights, training data, evaluation data, logs, RAG indexes, caches) with their retention rules,
the archive target and archive key, the key-encryption key (KEK) that is destroyed at retirement,
the model-signing and certificate-signing keys, the credentials revoked at retirement, and where
evidence goes. Every destructive operation is scoped by it.

- :func:`load_spec` reads a YAML file and returns a validated, immutable :class:`SystemSpec`, or
  raises :class:`~sundown.errors.InputError` with one message that names the file, the line, the
  field path and the problem of every error found (never a pydantic traceback, never a secret).
- :func:`spec_digest` is a SHA-256 over the canonical JSON of the validated model.
- :func:`check_no_overlap` refuses two specs that share a location, a key that one of them
  destroys, or a credential that one of them revokes.
- :func:`urls_overlap` is the path-boundary test: ``s3://b/models/a`` and ``s3://b/models/ab`` do
  not overlap; ``s3://b/models`` and ``s3://b/models/a`` do. The overlap rules compare both the
  text and, for ``file://``, the real paths (:func:`real_store_url`), so a symbolic link cannot
  hide an overlap; :func:`symlink_on_path` finds the link that planning refuses.

The schema is documented in ``docs/spec.md``.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sundown import canonical
from sundown.errors import InputError, ScopeError
from sundown.store_url import (
    BUCKET_RULES,
    CONTROL,
    ParsedStoreURL,
    parse_store_url,
    real_store_url,
    split_scheme,
    urls_overlap,
)

__all__ = [
    "ASSET_CLASSES",
    "AssetClass",
    "CredentialRef",
    "Delivery",
    "LocationRef",
    "Rotation",
    "StoreLocation",
    "SystemSpec",
    "check_no_overlap",
    "load_spec",
    "load_spec_dir",
    "parse_spec",
    "spec_digest",
]

ASSET_CLASSES = ("weights", "training_data", "evaluation_data", "logs", "rag_indexes", "caches")
MAX_SPEC_BYTES = 1024 * 1024
MAX_SPEC_NODES = 100_000

# --------------------------------------------------------------------------------------------
# Canonical encoding


def _overlap_note(a: str, b: str) -> str | None:
    """None when ``a`` and ``b`` do not overlap; "" when their text does; otherwise a note
    naming the resolved paths through which they do (file:// through symbolic links)."""
    if urls_overlap(a, b):
        return ""
    ra, rb = real_store_url(a), real_store_url(b)
    if urls_overlap(ra, rb):
        return f" (through symbolic links: {ra.url} and {rb.url})"
    return None


def _paths_overlap(a: str, b: str) -> bool:
    """Path-boundary overlap of two ``/``-separated paths (Vault lease prefixes, KV paths)."""
    pa, pb = a.strip("/").split("/"), b.strip("/").split("/")
    n = min(len(pa), len(pb))
    return pa[:n] == pb[:n]


def _store_url(value: str) -> str:
    return parse_store_url(value).url


_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _key_uri(value: str, *, signing: bool) -> str:
    what = "signing key URI" if signing else "key URI"
    schemes = ("vault", "local", "file") if signing else ("vault", "local")
    scheme, rest = split_scheme(value, schemes, what)
    if scheme == "file":
        return parse_store_url(value, what).url
    rest = rest.rstrip("/")
    segments = rest.split("/") if rest else []
    if scheme == "vault" and len(segments) < 2:
        raise ValueError(f"{what} {value!r} must be vault://MOUNT/KEY (a mount and a key name)")
    if not segments:
        raise ValueError(f"{what} {value!r} must be local://NAME")
    for seg in segments:
        if seg in ("", ".", "..") or not _KEY_SEGMENT.match(seg):
            raise ValueError(
                f"{what} {value!r}: segment {seg!r} is invalid (letters, digits, '_', '.', '-'; "
                "no empty, '.' or '..' segments)"
            )
    return f"{scheme}://{'/'.join(segments)}"


# --------------------------------------------------------------------------------------------
# Field types

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")


def _safe_name(value: str) -> str:
    if not _NAME.match(value) or "--" in value:
        raise ValueError(
            f"{value!r} is not a safe identifier: 2-63 characters, lowercase letters, digits and "
            "single '-', starting with a letter and ending with a letter or digit"
        )
    return value


def _one_line(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if CONTROL.search(value.replace("\\", "")) or "\n" in value:
        raise ValueError("must be one line of text without control characters")
    return value


def _vault_path(value: str) -> str:
    if value != value.strip() or not value.strip("/"):
        raise ValueError("must be a non-empty Vault path without surrounding spaces")
    if value.startswith("/"):
        raise ValueError(f"{value!r} must be relative (no leading '/')")
    for seg in value.rstrip("/").split("/"):
        if seg in ("", ".", "..") or not _KEY_SEGMENT.match(seg):
            raise ValueError(
                f"{value!r}: segment {seg!r} is invalid (letters, digits, '_', '.', '-'; no "
                "empty, '.' or '..' segments)"
            )
    return value.rstrip("/")


def _lease_prefix(value: str) -> str:
    value = _vault_path(value)
    if len(value.split("/")) < 2:
        raise ValueError(
            f"lease prefix {value!r} would revoke every lease of the mount; name at least "
            "MOUNT/PATH (e.g. aws/creds/ROLE)"
        )
    return value


_VAULT_TOKEN = re.compile(r"^(hv[sbr]|[sbr])\.")
_ACCESSOR = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


def _accessor(value: str) -> str:
    # Never echo the value: someone may have pasted a token instead of its accessor.
    if _VAULT_TOKEN.match(value):
        raise ValueError(
            "looks like a Vault token, not an accessor (it starts like 'hvs.'); never put a "
            "token in a spec: revoke it and use its accessor (vault token lookup -accessor)"
        )
    if not _ACCESSOR.match(value):
        raise ValueError("is not an accessor (8-128 letters, digits, '.', '_' or '-')")
    return value


_AWS_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
_HMAC_ACCESS_ID = re.compile(r"^[A-Za-z0-9]{8,128}$")


def _aws_key_id(value: str) -> str:
    if not _AWS_KEY_ID.match(value):
        raise ValueError(
            "is not an AWS access key id (16-128 uppercase letters and digits, e.g. AKIA...); "
            "never put a secret access key in a spec"
        )
    return value


def _hmac_access_id(value: str) -> str:
    if not _HMAC_ACCESS_ID.match(value):
        raise ValueError(
            "is not a GCS HMAC access id (letters and digits, e.g. GOOG1E...); never put an "
            "HMAC secret in a spec"
        )
    return value


def _container_name(value: str) -> str:
    rule, text = BUCKET_RULES["az"]
    if not rule.match(value):
        raise ValueError(f"container name {value!r} is invalid ({text})")
    return value


Name = Annotated[str, AfterValidator(_safe_name)]
Text = Annotated[str, Field(max_length=200), AfterValidator(_one_line)]
Label = Annotated[str, Field(max_length=64), AfterValidator(_one_line)]
StoreURL = Annotated[str, AfterValidator(_store_url)]
KeyURI = Annotated[str, AfterValidator(lambda v: _key_uri(v, signing=False))]
SigningKeyURI = Annotated[str, AfterValidator(lambda v: _key_uri(v, signing=True))]
VaultPath = Annotated[str, AfterValidator(_vault_path)]
LeasePrefix = Annotated[str, AfterValidator(_lease_prefix)]
Accessor = Annotated[str, AfterValidator(_accessor)]
AwsKeyId = Annotated[str, AfterValidator(_aws_key_id)]
HmacAccessId = Annotated[str, AfterValidator(_hmac_access_id)]
Days = Annotated[int, Field(ge=1, le=36500)]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# The spec model


def _location_from_string(value: Any) -> Any:
    return {"url": value} if isinstance(value, str) else value


class StoreLocation(_Model):
    """One location of an asset class. A plain string in YAML means ``{url: ...}``."""

    url: StoreURL = Field(description="file:///path, s3://bucket/prefix, gs://..., az://...")
    whole_bucket: bool = Field(
        default=False,
        description="Must be true when the URL names a whole bucket or container (no prefix).",
    )
    may_be_absent: bool = Field(
        default=False,
        description="A missing root (file:// folder, bucket or container) is 'nothing found' "
        "instead of an error at planning.",
    )
    purge_by: Literal["batch", "lifecycle"] = Field(
        default="batch",
        description="'batch': Sundown deletes every copy itself. 'lifecycle': after approval "
        "Sundown adds one bucket lifecycle rule scoped to the location's prefix and waits for "
        "the provider to expire every copy (re-runs re-verify), then removes its rule, destroys "
        "the keys and certifies. Only on stores that declare the lifecycle capability.",
    )

    @model_validator(mode="after")
    def _whole_bucket_is_explicit(self) -> StoreLocation:
        parsed = parse_store_url(self.url)
        kind = "container" if parsed.scheme == "az" else "bucket"
        if parsed.scheme == "file" and self.whole_bucket:
            raise ValueError("whole_bucket applies to s3://, gs:// and az:// locations only")
        if parsed.whole_bucket and not self.whole_bucket:
            raise ValueError(
                f"{self.url} scopes the whole {kind} {parsed.bucket!r}: every object in it "
                f"would be purged; if that is intended write "
                f"{{url: {self.url}, whole_bucket: true}}, otherwise add a prefix"
            )
        if self.purge_by == "lifecycle" and parsed.scheme == "file":
            raise ValueError(
                f"{self.url}: purge_by: lifecycle needs an object store with lifecycle rules; "
                "a file:// location is purged by batch"
            )
        if self.whole_bucket and not parsed.whole_bucket:
            raise ValueError(
                f"{self.url} has a prefix, so it is not a whole {kind}: remove whole_bucket"
            )
        return self

    @property
    def parsed(self) -> ParsedStoreURL:
        return parse_store_url(self.url)


Location = Annotated[StoreLocation, BeforeValidator(_location_from_string)]


class RetentionRule(_Model):
    """Age rules, in days since an entry was written. Archiving copies current objects to the
    archive target; deleting purges every version. Equal values mean: archive, then purge, in the
    same sweep."""

    archive_after_days: Days | None = None
    delete_after_days: Days | None = None

    @model_validator(mode="after")
    def _delete_after_archive(self) -> RetentionRule:
        a, d = self.archive_after_days, self.delete_after_days
        if a is None and d is None:
            raise ValueError(
                "a retention rule needs archive_after_days, delete_after_days or both; "
                "remove 'retention' to keep data until retirement"
            )
        if a is not None and d is not None and d < a:
            raise ValueError(
                f"delete_after_days ({d}) is before archive_after_days ({a}): data would be "
                "deleted before it is archived"
            )
        return self


class AssetClass(_Model):
    locations: list[Location] = Field(min_length=1)
    retention: RetentionRule | None = None
    on_retirement: Literal["purge", "archive"] = Field(
        default="purge",
        description="'archive': copy current objects to the archive target, then purge.",
    )
    classification: Label | None = Field(
        default=None, description="Overrides the system's classification for this asset class."
    )


class Assets(_Model):
    weights: AssetClass | None = None
    training_data: AssetClass | None = None
    evaluation_data: AssetClass | None = None
    logs: AssetClass | None = None
    rag_indexes: AssetClass | None = None
    caches: AssetClass | None = None


class Archive(_Model):
    target: StoreURL = Field(description="Where archived copies go (may be a whole bucket).")
    key: KeyURI = Field(description="KEK that archived copies are re-wrapped under; never the KEK.")
    storage_class: Annotated[str, Field(pattern=r"^[A-Za-z_]{1,32}$")] | None = None


class Keys(_Model):
    kek: KeyURI = Field(description="The system's key-encryption key, destroyed at retirement.")
    model_signing: SigningKeyURI | None = Field(
        default=None, description="ECDSA P-256 key that signs model bundles at deployment."
    )
    certificate: SigningKeyURI = Field(
        description="Key that signs the decommissioning certificate; never destroyed with the "
        "system."
    )
    destroy_model_signing_key: bool = Field(
        default=False, description="Also destroy the model-signing key at retirement."
    )


class VaultKV(_Model):
    mount: VaultPath = "secret"
    path: VaultPath
    on_rotation: Literal["generate", "keep"] = Field(
        default="generate",
        description="What rotate_credentials does with this secret: 'generate' writes a new "
        "version with a fresh random value for each field; 'keep' leaves it (its value belongs "
        "to another system, e.g. a database password set elsewhere).",
    )


class VaultAppRole(_Model):
    mount: VaultPath = "approle"
    role: Annotated[str, AfterValidator(_vault_path)]
    secret_id_accessors: list[Accessor] = Field(default_factory=list)
    delete_role: bool = Field(default=True, description="Delete the role itself at retirement.")


class AwsAccessKeys(_Model):
    user: Annotated[str, Field(pattern=r"^[\w+=,.@-]{1,64}$")]
    access_key_ids: list[AwsKeyId] = Field(min_length=1)


class AzureStoredPolicy(_Model):
    container: Annotated[str, AfterValidator(_container_name)]
    policy_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.-]+$")]


class GcsHmacKey(_Model):
    access_id: HmacAccessId
    service_account: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None


class Credentials(_Model):
    vault_kv: list[VaultKV] = Field(default_factory=list)
    vault_token_accessors: list[Accessor] = Field(default_factory=list)
    vault_lease_prefixes: list[LeasePrefix] = Field(default_factory=list)
    vault_approles: list[VaultAppRole] = Field(default_factory=list)
    aws_access_keys: list[AwsAccessKeys] = Field(default_factory=list)
    azure_stored_policies: list[AzureStoredPolicy] = Field(default_factory=list)
    gcs_hmac_keys: list[GcsHmacKey] = Field(default_factory=list)


class VaultKVLocation(_Model):
    """A KV v2 mount and a path in it."""

    mount: VaultPath = "secret"
    path: VaultPath


_DELIVERY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _delivery_segment(value: str) -> str:
    """A credential name as one KV path segment (IAM user names may hold ``+=,@``)."""
    out = _DELIVERY_UNSAFE.sub("_", value)
    return out if _KEY_SEGMENT.match(out) else "_" + out


class Rotation(_Model):
    """How ``rotate_credentials`` rotates the system's credentials. Without this section it
    rotates the KEK only and reports every credential as not rotated."""

    deliver_to: VaultKVLocation | None = Field(
        default=None,
        description="KV v2 prefix where new secret material goes, one secret per credential "
        "(aws/USER, azure/CONTAINER/POLICY, gcs/ACCESS_ID, approle/MOUNT/ROLE). Required to "
        "rotate cloud access keys, SAS policies, HMAC keys and AppRole secret-ids.",
    )
    grace_period_hours: Annotated[float, Field(ge=0, le=24 * 90)] = Field(
        default=168,
        description="How long a replaced credential is kept (inactive, or alive for SAS and "
        "secret-ids) before a later run deletes it; 0 deletes it at once.",
    )
    azure_policy_days: Annotated[int, Field(ge=1, le=365)] = Field(
        default=30, description="Lifetime of a new Azure stored access policy (and its SAS)."
    )


class ApprovalPolicy(_Model):
    roles: list[Label] = Field(
        default_factory=list, description="Roles allowed to approve a retirement (empty: any)."
    )
    max_age_hours: Annotated[int, Field(ge=1, le=24 * 30)] = Field(
        default=24, description="An approval older than this is refused."
    )
    allow_self_approval: bool = Field(
        default=False,
        description="Allow the performer of a retirement to approve it too (default: the "
        "approver must be another person; names compare ignoring case and whitespace).",
    )


@dataclass(frozen=True)
class LocationRef:
    """A location of the spec with where it is declared."""

    asset_class: str
    index: int
    location: StoreLocation

    @property
    def url(self) -> str:
        return self.location.url

    @property
    def field(self) -> str:
        return f"assets.{self.asset_class}.locations[{self.index}]"


CREDENTIAL_ACTIONS = {
    "vault_kv": "destroy every version and the metadata",
    "vault_token": "revoke the token by accessor",
    "vault_lease_prefix": "revoke every lease under the prefix",
    "vault_approle_secret_id": "destroy the secret-id by accessor",
    "vault_approle_role": "delete the role",
    "aws_access_key": "deactivate and delete the access key",
    "azure_stored_policy": "remove the stored access policy",
    "gcs_hmac_key": "deactivate and delete the HMAC key",
}


@dataclass(frozen=True, order=True)
class CredentialRef:
    """One credential revoked at retirement. ``id`` is never a secret (paths, accessors,
    access key ids, policy ids)."""

    kind: str
    id: str

    @property
    def action(self) -> str:
        return CREDENTIAL_ACTIONS[self.kind]


@dataclass(frozen=True)
class Delivery:
    """Where ``rotate_credentials`` writes the new secret of one rotated credential: a KV v2
    secret under ``rotation.deliver_to``. ``source`` names the credential (its kind and the
    identifier the spec declares); the delivered secret is destroyed with the system."""

    source: CredentialRef
    mount: str
    path: str

    @property
    def ref(self) -> CredentialRef:
        return CredentialRef("vault_kv", f"{self.mount}/{self.path}")


class _Problems(ValueError):
    """Several cross-field problems, each with its field path (carried through pydantic)."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(msg for _, msg in problems))
        self.problems = problems


def _fmt_loc(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _loc_of(field: str) -> tuple[str | int, ...]:
    loc: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", field):
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(loc)


class SystemSpec(_Model):
    """One AI system. See docs/spec.md."""

    spec_version: Literal[1] = 1
    name: Name
    owner: Text
    classification: Label
    description: Annotated[str, Field(max_length=2000)] | None = None
    assets: Assets
    archive: Archive | None = None
    keys: Keys
    credentials: Credentials = Field(default_factory=Credentials)
    evidence: StoreURL | None = Field(
        default=None, description="Evidence ledger location (default: the local ledger folder)."
    )
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    rotation: Rotation | None = Field(
        default=None, description="Credential rotation: where new secrets are delivered."
    )
    allow_governance_bypass: bool = Field(
        default=False,
        description="Purge objects under GOVERNANCE (S3) / unlocked retention by bypassing it.",
    )

    # -- views ---------------------------------------------------------------------------

    def asset_classes(self) -> Iterator[tuple[str, AssetClass]]:
        for name in ASSET_CLASSES:
            cls = getattr(self.assets, name)
            if cls is not None:
                yield name, cls

    def locations(self) -> list[LocationRef]:
        return [
            LocationRef(name, i, loc)
            for name, cls in self.asset_classes()
            for i, loc in enumerate(cls.locations)
        ]

    def location(self, url: str) -> LocationRef:
        """The declared location with this URL (normalized); ScopeError when undeclared."""
        try:
            norm = parse_store_url(url).url
        except ValueError as exc:
            raise InputError(str(exc)) from None
        for ref in self.locations():
            if ref.url == norm:
                return ref
        raise ScopeError(f"{norm} is not a location of system {self.name!r}")

    def classification_of(self, asset_class: str) -> str:
        cls = getattr(self.assets, asset_class)
        return (cls.classification if cls is not None else None) or self.classification

    def keys_to_destroy(self) -> list[tuple[str, str]]:
        """(URI, role) of every key destroyed at retirement."""
        out = [(self.keys.kek, "kek")]
        if self.keys.destroy_model_signing_key and self.keys.model_signing:
            out.append((self.keys.model_signing, "model_signing"))
        return out

    def credential_refs(self) -> list[CredentialRef]:
        """Every credential revoked at retirement, in a stable order."""
        c = self.credentials
        refs = [CredentialRef("vault_kv", f"{kv.mount}/{kv.path}") for kv in c.vault_kv]
        refs += [CredentialRef("vault_token", a) for a in c.vault_token_accessors]
        refs += [CredentialRef("vault_lease_prefix", p) for p in c.vault_lease_prefixes]
        for ar in c.vault_approles:
            refs += [
                CredentialRef("vault_approle_secret_id", f"{ar.mount}/{ar.role}/{acc}")
                for acc in ar.secret_id_accessors
            ]
            if ar.delete_role:
                refs.append(CredentialRef("vault_approle_role", f"{ar.mount}/{ar.role}"))
        for ak in c.aws_access_keys:
            refs += [CredentialRef("aws_access_key", f"{ak.user}/{k}") for k in ak.access_key_ids]
        refs += [
            CredentialRef("azure_stored_policy", f"{p.container}/{p.policy_id}")
            for p in c.azure_stored_policies
        ]
        refs += [CredentialRef("gcs_hmac_key", h.access_id) for h in c.gcs_hmac_keys]
        refs += list(dict.fromkeys(d.ref for d in self.deliveries()))
        return refs

    def deliveries(self) -> list[Delivery]:
        """The KV secrets that credential rotation delivers new secrets to (none without
        ``rotation.deliver_to``): one per IAM user, stored access policy, HMAC key and AppRole
        role."""
        if self.rotation is None or self.rotation.deliver_to is None:
            return []
        to, c, seg = self.rotation.deliver_to, self.credentials, _delivery_segment
        out = [
            Delivery(CredentialRef("aws_access_key", ak.user), to.mount, f"aws/{seg(ak.user)}")
            for ak in c.aws_access_keys
        ]
        out += [
            Delivery(
                CredentialRef("azure_stored_policy", f"{p.container}/{p.policy_id}"),
                to.mount,
                f"azure/{p.container}/{seg(p.policy_id)}",
            )
            for p in c.azure_stored_policies
        ]
        out += [
            Delivery(CredentialRef("gcs_hmac_key", h.access_id), to.mount, f"gcs/{h.access_id}")
            for h in c.gcs_hmac_keys
        ]
        out += [
            Delivery(
                CredentialRef("vault_approle_role", f"{ar.mount}/{ar.role}"),
                to.mount,
                f"approle/{seg(ar.mount)}/{seg(ar.role)}",
            )
            for ar in c.vault_approles
        ]
        # one user with several entries has one delivery
        unique = dict.fromkeys(Delivery(d.source, d.mount, f"{to.path}/{d.path}") for d in out)
        return list(unique)

    def delivery(self, kind: str, ident: str) -> Delivery | None:
        """The delivery of the credential declared as ``kind`` ``ident`` (see
        :meth:`deliveries`: AWS keys by user, AppRoles by ``MOUNT/ROLE``)."""
        for d in self.deliveries():
            if d.source == CredentialRef(kind, ident):
                return d
        return None

    def digest(self) -> str:
        return spec_digest(self)

    # -- cross-field rules ---------------------------------------------------------------

    @model_validator(mode="after")
    def _cross_field_rules(self) -> SystemSpec:
        problems: list[tuple[tuple[str | int, ...], str]] = []

        def problem(field: str, message: str) -> None:
            problems.append((_loc_of(field), message))

        refs = self.locations()
        if not refs:
            problem("assets", "declares no asset class: a system has at least one location")
        for i, a in enumerate(refs):
            for b in refs[i + 1 :]:
                note = _overlap_note(a.url, b.url)
                if note is not None:
                    same = "is the same location as" if a.url == b.url else "overlaps"
                    problem(
                        b.field,
                        f"{b.url} {same} {a.url} ({a.field}){note}: locations of one spec must "
                        "not overlap (path-boundary: s3://b/m overlaps s3://b/m/a, not s3://b/ma)",
                    )

        needs_archive = [
            name
            for name, cls in self.asset_classes()
            if cls.on_retirement == "archive"
            or (cls.retention is not None and cls.retention.archive_after_days is not None)
        ]
        if needs_archive and self.archive is None:
            problem(
                "archive",
                f"is missing, but {', '.join(needs_archive)} archive data "
                "(on_retirement: archive or retention.archive_after_days)",
            )
        if self.archive is not None:
            for ref in refs:
                note = _overlap_note(self.archive.target, ref.url)
                if note is not None:
                    problem(
                        "archive.target",
                        f"{self.archive.target} overlaps {ref.url} ({ref.field}){note}: the "
                        "archive would be purged with the data it archives",
                    )
        if self.evidence is not None:
            for ref in refs:
                note = _overlap_note(self.evidence, ref.url)
                if note is not None:
                    problem(
                        "evidence",
                        f"{self.evidence} overlaps {ref.url} ({ref.field}){note}: evidence would "
                        "be purged with the system",
                    )
            if (
                self.archive is not None
                and _overlap_note(self.evidence, self.archive.target) is not None
            ):
                problem(
                    "evidence",
                    f"{self.evidence} overlaps the archive target {self.archive.target}: keep "
                    "evidence and archive apart",
                )

        keys: list[tuple[str, str | None]] = [
            ("keys.kek", self.keys.kek),
            ("keys.model_signing", self.keys.model_signing),
            ("archive.key", self.archive.key if self.archive else None),
            ("keys.certificate", self.keys.certificate),
        ]
        destroyed = {uri for uri, _ in self.keys_to_destroy()}
        for i, (fa, ua) in enumerate(keys):
            for fb, ub in keys[i + 1 :]:
                if ua is None or ub is None or ua != ub:
                    continue
                if fb == "keys.certificate":
                    why = (
                        "the certificate-signing key must outlive the keys destroyed at retirement"
                        if ua in destroyed
                        else "one key, one purpose"
                    )
                    problem(fb, f"{ub} is also {fa}: {why}")
                elif fb == "archive.key" and fa == "keys.kek":
                    problem(
                        fb,
                        f"{ub} is also keys.kek, which is destroyed at retirement: the archive "
                        "would become unreadable",
                    )
                else:
                    problem(fb, f"{ub} is also {fa}: one key, one purpose")
        if self.keys.destroy_model_signing_key and self.keys.model_signing is None:
            problem("keys.destroy_model_signing_key", "is true but keys.model_signing is not set")

        if self.rotation is not None and self.rotation.deliver_to is not None:
            to = self.rotation.deliver_to
            for i, kv in enumerate(self.credentials.vault_kv):
                if kv.mount == to.mount and _paths_overlap(kv.path, to.path):
                    problem(
                        "rotation.deliver_to",
                        f"{to.mount}/{to.path} overlaps credentials.vault_kv[{i}] "
                        f"{kv.mount}/{kv.path}: delivered secrets would overwrite a rotated "
                        "secret; deliver elsewhere",
                    )
            if _paths_overlap(to.path, "sundown/keys"):
                problem(
                    "rotation.deliver_to",
                    f"{to.mount}/{to.path} overlaps sundown/keys, where Sundown keeps its key "
                    "records",
                )
            paths: dict[str, CredentialRef] = {}
            for d in self.deliveries():
                other = paths.setdefault(d.path, d.source)
                if other != d.source:
                    problem(
                        "rotation.deliver_to",
                        f"{other.kind} {other.id} and {d.source.kind} {d.source.id} would both "
                        f"be delivered to {d.mount}/{d.path} (names differ only in characters "
                        "a KV path cannot hold)",
                    )

        seen: dict[CredentialRef, int] = {}
        for cred in self.credential_refs():
            seen[cred] = seen.get(cred, 0) + 1
        for cred, n in seen.items():
            if n > 1:
                problem("credentials", f"{cred.kind} {cred.id} is declared {n} times")
        if problems:
            raise _Problems(problems)
        return self


# --------------------------------------------------------------------------------------------
# Digest and cross-system checks


def spec_digest(spec: SystemSpec) -> str:
    """``sha256:<hex>`` over the canonical JSON of the validated model (defaults filled in,
    locations normalized), so formatting, comments and key order in the YAML do not matter."""
    data = _floats_as_text(spec.model_dump(mode="json"))
    return "sha256:" + hashlib.sha256(canonical.dumps(data)).hexdigest()


def _floats_as_text(value: Any) -> Any:
    """Canonical JSON has integers only; the few fractional spec fields (e.g.
    ``rotation.grace_period_hours``) enter the digest as their shortest decimal text."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _floats_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats_as_text(v) for v in value]
    return value


def _cross_conflicts(a: SystemSpec, b: SystemSpec) -> list[str]:
    """Ways in which retiring ``a`` would touch ``b``."""
    out: list[str] = []
    b_urls = [(r.url, f"{r.field}") for r in b.locations()]
    if b.archive is not None:
        b_urls.append((b.archive.target, "archive.target"))
    if b.evidence is not None:
        b_urls.append((b.evidence, "evidence"))
    for ref in a.locations():
        for url, field in b_urls:
            note = _overlap_note(ref.url, url)
            if note is not None:
                out.append(
                    f"{a.name}: {ref.field} {ref.url} overlaps {b.name}'s {field} {url}{note} "
                    "(purging one would purge the other)"
                )
    b_keys = {
        b.keys.kek: "keys.kek",
        b.keys.certificate: "keys.certificate",
        **({b.archive.key: "archive.key"} if b.archive else {}),
        **({b.keys.model_signing: "keys.model_signing"} if b.keys.model_signing else {}),
    }
    for uri, role in a.keys_to_destroy():
        if uri in b_keys:
            out.append(
                f"{a.name}: keys.{role} {uri} is also {b.name}'s {b_keys[uri]}; destroying it "
                f"at {a.name}'s retirement would break {b.name}"
            )
    if a.rotation is not None and a.rotation.deliver_to is not None:
        to = a.rotation.deliver_to
        b_kv = [(kv.mount, kv.path, "credentials.vault_kv") for kv in b.credentials.vault_kv]
        if b.rotation is not None and b.rotation.deliver_to is not None:
            b_to = b.rotation.deliver_to
            b_kv.append((b_to.mount, b_to.path, "rotation.deliver_to"))
        for mount, path, field in b_kv:
            if mount == to.mount and _paths_overlap(path, to.path):
                out.append(
                    f"{a.name}: rotation.deliver_to {to.mount}/{to.path} overlaps {b.name}'s "
                    f"{field} {mount}/{path}; retiring one would destroy the other's secrets"
                )
    b_refs = b.credential_refs()
    for cred in a.credential_refs():
        for other in b_refs:
            same = cred == other
            if cred.kind == other.kind == "vault_lease_prefix":
                same = _paths_overlap(cred.id, other.id)
            elif {cred.kind, other.kind} == {"vault_approle_role", "vault_approle_secret_id"}:
                role_ref = cred if cred.kind == "vault_approle_role" else other
                sid = other if role_ref is cred else cred
                same = sid.id.startswith(role_ref.id + "/")
            if same:
                out.append(
                    f"{a.name}: credential {cred.kind} {cred.id} is also {b.name}'s "
                    f"({other.kind} {other.id}); revoking it would break {b.name}"
                )
    return out


def check_no_overlap(spec: SystemSpec, others: Iterable[SystemSpec]) -> None:
    """InputError listing every way ``spec`` and another system overlap: a location (or archive
    target or evidence location) in common, a key one destroys that the other uses, a credential
    one revokes that the other declares, or the same name."""
    problems: list[str] = []
    for other in others:
        if other is spec:
            continue
        if other.name == spec.name:
            problems.append(f"two specs declare the system name {spec.name!r}")
        problems += _cross_conflicts(spec, other)
        problems += _cross_conflicts(other, spec)
    if problems:
        body = "\n".join(f"  - {p}" for p in dict.fromkeys(problems))
        raise InputError(f"system {spec.name!r} overlaps other systems:\n{body}")


# --------------------------------------------------------------------------------------------
# Loading YAML with line numbers, duplicate keys refused, ${VAR} placeholders


class _Loader(yaml.SafeLoader):
    pass


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _walk_nodes(
    node: yaml.Node,
    loc: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    problems: list[tuple[tuple[str | int, ...], str]],
) -> None:
    if len(lines) > MAX_SPEC_NODES:
        # Aliases can make a small file expand to billions of values ("billion laughs").
        raise InputError(f"more than {MAX_SPEC_NODES} values (YAML aliases expanding?)")
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first:
                problems.append(
                    (
                        (*loc, key),
                        f"duplicate key {key!r} at line {line} (first at line "
                        f"{first[key]}): YAML would silently keep only the last one",
                    )
                )
                continue
            first[key] = line
            lines[(*loc, key)] = line
            _walk_nodes(value_node, (*loc, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*loc, i)] = item.start_mark.line + 1
            _walk_nodes(item, (*loc, i), lines, problems)


def _substitute(
    value: Any,
    loc: tuple[str | int, ...],
    variables: Mapping[str, str],
    problems: list[tuple[tuple[str | int, ...], str]],
) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, (*loc, k), variables, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*loc, i), variables, problems) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def repl(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                given = ", ".join(sorted(variables)) or "none"
                problems.append(
                    (loc, f"placeholder ${{{m.group(1)}}} has no value (values given: {given})")
                )
                return m.group(0)
            return variables[m.group(1)]

        return _PLACEHOLDER.sub(repl, value)
    return value


def _unwrap(tp: Any) -> list[Any]:
    """The candidate types inside Annotated / Optional / list / Union."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (for 'did you mean')."""
    current: list[Any] = [SystemSpec]
    for part in loc:
        nxt: list[Any] = []
        for tp in current:
            if isinstance(part, int) and typing.get_origin(tp) is list:
                nxt += _unwrap(typing.get_args(tp)[0])
            elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
                field = tp.model_fields.get(part)
                if field is not None:
                    nxt += _unwrap(field.annotation)
        current = [t for tp in nxt for t in _unwrap(tp)]
    for tp in current:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
    return None


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_YAML_TYPES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "a mapping",
    type(None): "empty (null)",
}


def _describe(value: Any, secret: bool) -> str:
    kind = _YAML_TYPES.get(type(value), type(value).__name__)
    if secret or isinstance(value, dict | list) or value is None:
        return kind
    text = repr(value)
    return f"{kind} {text[:60] + '...' if len(text) > 60 else text}"


def _translate(exc: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        kind = err["type"]
        secret = bool(loc) and loc[0] == "credentials"
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, _Problems):
            out += [(loc + p_loc, msg) for p_loc, msg in cause.problems]
            continue
        if kind == "missing":
            msg = "required field is missing"
        elif kind == "extra_forbidden":
            model = _model_at(loc[:-1])
            known = list(model.model_fields) if model else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(known)}"
            msg = f"unknown field ({hint})"
        elif kind == "value_error" and cause is not None:
            msg = str(cause)
        elif kind in _TYPE_NAMES:
            msg = f"must be {_TYPE_NAMES[kind]}, found {_describe(err.get('input'), secret)}"
        elif kind in ("literal_error", "enum"):
            msg = f"must be {ctx.get('expected')}, found {_describe(err.get('input'), secret)}"
        elif kind == "string_pattern_mismatch":
            shown = "" if secret else f" ({_describe(err.get('input'), False)})"
            msg = f"has an invalid format{shown}: must match {ctx.get('pattern')}"
        elif kind == "union_tag_invalid" or kind.startswith("model_"):
            msg = err["msg"]
        else:
            msg = err["msg"]
            if not secret and "input" in err and not isinstance(err["input"], dict | list):
                msg += f", found {_describe(err['input'], False)}"
        out.append((loc, msg))
    return out


def _format_problems(
    source: str,
    problems: list[tuple[tuple[str | int, ...], str]],
    lines: Mapping[tuple[str | int, ...], int],
) -> str:
    def line_of(loc: tuple[str | int, ...]) -> int | None:
        while True:
            if loc in lines:
                return lines[loc]
            if not loc:
                return None
            loc = loc[:-1]

    ranked = []
    for loc, msg in problems:
        line = None if msg.startswith("duplicate key") else line_of(loc)
        where = f"line {line}: " if line else ""
        ranked.append((line or 0, f"  - {where}{_fmt_loc(loc)}: {msg}"))
    ranked.sort(key=lambda r: r[0])  # stable: same line keeps the validator's order
    rows = list(dict.fromkeys(row for _, row in ranked))
    noun = "problem" if len(rows) == 1 else "problems"
    return f"invalid system spec {source} ({len(rows)} {noun}):\n" + "\n".join(rows)


def parse_spec(
    text: str, source: str = "<spec>", *, variables: Mapping[str, str] | None = None
) -> SystemSpec:
    """Validate YAML text as a system spec. ``${NAME}`` placeholders in string values are
    replaced from ``variables`` (only there: never from the environment, so the scope a reviewer
    reads is the scope that runs). InputError names the source, line, field and problem."""
    lines: dict[tuple[str | int, ...], int] = {}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                try:
                    _walk_nodes(node, (), lines, problems)
                except InputError as exc:
                    raise InputError(f"invalid system spec {source}: {exc}") from None
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(
            f"invalid system spec {source}: not valid YAML{where}: {problem}"
        ) from None
    if problems:
        raise InputError(_format_problems(source, problems, lines))
    if not isinstance(data, dict):
        found = _YAML_TYPES.get(type(data), type(data).__name__)
        raise InputError(
            f"invalid system spec {source}: the document must be a mapping of fields "
            f"(name, owner, ...), found {found}"
        )
    data = _substitute(data, (), variables or {}, problems)
    if problems:
        raise InputError(_format_problems(source, problems, lines))
    try:
        return SystemSpec.model_validate(data)
    except ValidationError as exc:
        raise InputError(_format_problems(source, _translate(exc), lines)) from None


def load_spec(path: str | Path, *, variables: Mapping[str, str] | None = None) -> SystemSpec:
    """Read and validate a system spec file. See :func:`parse_spec`."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"system spec {p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"system spec {p}: is a directory, expected a YAML file") from None
    except OSError as exc:
        raise InputError(f"system spec {p}: cannot read it ({exc.strerror})") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise InputError(f"invalid system spec {p}: larger than {MAX_SPEC_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid system spec {p}: not UTF-8 (byte {exc.start})") from None
    return parse_spec(text, str(p), variables=variables)


def load_spec_dir(
    directory: str | Path, *, variables: Mapping[str, str] | None = None
) -> list[SystemSpec]:
    """Every ``*.yaml`` / ``*.yml`` spec in a folder, checked pairwise with
    :func:`check_no_overlap`. The first invalid file raises."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"systems folder {d}: not a directory")
    files = sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    specs = [load_spec(p, variables=variables) for p in files]
    problems: list[str] = []
    for i, spec in enumerate(specs):
        try:
            check_no_overlap(spec, specs[i + 1 :])
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        raise InputError(f"systems folder {d}:\n" + "\n".join(problems))
    return specs
