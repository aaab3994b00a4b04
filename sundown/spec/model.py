"""The system spec's model and its digest: locations and their retention rules, keys,
credentials, rotation, approval, and :class:`SystemSpec`, whose validators refuse a spec that
overlaps itself (a location inside another, evidence or the archive inside a location, a
rotation target that delivers into a path the spec reads). Immutable once validated;
:func:`spec_digest` is a SHA-256 over the canonical JSON of the validated model. The schema is
documented in ``docs/spec.md``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from sundown import canonical, credential_ids
from sundown.errors import InputError, ScopeError
from sundown.record_retention import refusal as record_retention_refusal
from sundown.spec.kms import kms_rules
from sundown.spec.records import (
    Declared,
    RecordLocation,
    RecordLocationRef,
    is_record_location,
    overlaps_within,
)
from sundown.spec.values import (
    KEY_SEGMENT,
    Accessor,
    AwsKeyId,
    Days,
    HmacAccessId,
    KeyURI,
    Label,
    LeasePrefix,
    Name,
    SigningKeyURI,
    SpecModel,
    StorageKeyURI,
    StoreURL,
    Text,
    VaultPath,
    container_name,
    overlap_note,
    paths_overlap,
    vault_path,
)
from sundown.store_url import (
    ParsedStoreURL,
    parse_store_url,
)

ASSET_CLASSES = ("weights", "training_data", "evaluation_data", "logs", "rag_indexes", "caches")

# --------------------------------------------------------------------------------------------
# The spec model


def _location_from_string(value: Any) -> Any:
    return {"url": value} if isinstance(value, str) else value


class StoreLocation(SpecModel):
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


Location = Annotated[
    Annotated[StoreLocation, Tag("store")] | Annotated[RecordLocation, Tag("record")],
    Discriminator(lambda v: "record" if is_record_location(v) else "store"),
    BeforeValidator(_location_from_string),
]


class RetentionRule(SpecModel):
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


class AssetClass(SpecModel):
    locations: list[Location] = Field(min_length=1)
    retention: RetentionRule | None = None
    on_retirement: Literal["purge", "archive"] = Field(
        default="purge",
        description="'archive': copy current objects to the archive target, then purge.",
    )
    classification: Label | None = Field(
        default=None, description="Overrides the system's classification for this asset class."
    )


class Assets(SpecModel):
    weights: AssetClass | None = None
    training_data: AssetClass | None = None
    evaluation_data: AssetClass | None = None
    logs: AssetClass | None = None
    rag_indexes: AssetClass | None = None
    caches: AssetClass | None = None


class Archive(SpecModel):
    target: StoreURL = Field(description="Where archived copies go (may be a whole bucket).")
    key: KeyURI = Field(description="KEK that archived copies are re-wrapped under; never the KEK.")
    storage_class: Annotated[str, Field(pattern=r"^[A-Za-z_]{1,32}$")] | None = None


class KmsGrant(SpecModel):
    """One AWS KMS grant on a key this system destroys (``key`` defaults to ``keys.kek``)."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
    key: KeyURI | None = None


class Keys(SpecModel):
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
    storage_cmk: StorageKeyURI | None = Field(
        default=None,
        description="The customer-managed key the system's stores encrypt under server-side "
        "(S3 SSE-KMS, GCS CMEK): destroyed at retirement like the KEK, so copies the store "
        "reports under exactly this key are covered by its cryptographic erase.",
    )
    pending_days: Annotated[int, Field(ge=7, le=30)] | None = Field(
        default=None,
        description="AWS KMS only: the ScheduleKeyDeletion pending window (7-30 days; default 7) "
        "of every key destroyed at retirement. Refused for key services whose window is not "
        "chosen at deletion (Cloud KMS, Key Vault) or that delete at once.",
    )
    grants: list[KmsGrant] = Field(
        default_factory=list,
        description="AWS KMS grants on the system's keys, revoked (RevokeGrant) at retirement "
        "before the key is destroyed; a named grant that does not exist stops planning.",
    )


class VaultKV(SpecModel):
    mount: VaultPath = "secret"
    path: VaultPath
    on_rotation: Literal["generate", "keep"] = Field(
        default="generate",
        description="What rotate_credentials does with this secret: 'generate' writes a new "
        "version with a fresh random value for each field; 'keep' leaves it (its value belongs "
        "to another system, e.g. a database password set elsewhere).",
    )


class VaultAppRole(SpecModel):
    mount: VaultPath = "approle"
    role: Annotated[str, AfterValidator(vault_path)]
    secret_id_accessors: list[Accessor] = Field(default_factory=list)
    delete_role: bool = Field(default=True, description="Delete the role itself at retirement.")


class AwsAccessKeys(SpecModel):
    user: Annotated[str, Field(pattern=r"^[\w+=,.@-]{1,64}$")]
    access_key_ids: list[AwsKeyId] = Field(min_length=1)


class AzureStoredPolicy(SpecModel):
    container: Annotated[str, AfterValidator(container_name)]
    policy_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.-]+$")]


class GcsHmacKey(SpecModel):
    access_id: HmacAccessId
    service_account: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None


def _checked(check: Any) -> Any:
    return AfterValidator(lambda v: (check(v), v)[1])


class _ServerCredential(SpecModel):
    """A role or user on a record store's server (docs/records.md, "Credentials of the
    servers"); ``ident`` is its credential identifier."""

    @property
    def ident(self) -> str:
        raise NotImplementedError

    @model_validator(mode="after")
    def _not_the_admin(self) -> Any:
        assert self.ident  # refuses a name that is the admin user of the URL
        return self


class PostgresRole(_ServerCredential):
    database: Annotated[str, _checked(credential_ids.pg_database)] = Field(
        description="postgresql://[ADMIN@]HOST:PORT/DB: where Sundown connects to revoke or "
        "rotate the role (password from libpq's PGPASSWORD or password file)."
    )
    role: Annotated[str, _checked(credential_ids.check_role)]

    @property
    def ident(self) -> str:
        return credential_ids.pg_role_ident(self.database, self.role)


class RedisAclUser(_ServerCredential):
    server: Annotated[str, _checked(credential_ids.redis_server)] = Field(
        description="redis://[ADMIN@]HOST:PORT (admin password from REDISCLI_AUTH)."
    )
    user: Annotated[str, _checked(credential_ids.check_acl_user)]

    @property
    def ident(self) -> str:
        return credential_ids.redis_user_ident(self.server, self.user)


class Credentials(SpecModel):
    vault_kv: list[VaultKV] = Field(default_factory=list)
    vault_token_accessors: list[Accessor] = Field(default_factory=list)
    vault_lease_prefixes: list[LeasePrefix] = Field(default_factory=list)
    vault_approles: list[VaultAppRole] = Field(default_factory=list)
    aws_access_keys: list[AwsAccessKeys] = Field(default_factory=list)
    azure_stored_policies: list[AzureStoredPolicy] = Field(default_factory=list)
    gcs_hmac_keys: list[GcsHmacKey] = Field(default_factory=list)
    postgres_roles: list[PostgresRole] = Field(default_factory=list)
    redis_acl_users: list[RedisAclUser] = Field(default_factory=list)


class VaultKVLocation(SpecModel):
    """A KV v2 mount and a path in it."""

    mount: VaultPath = "secret"
    path: VaultPath


_DELIVERY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _delivery_segment(value: str) -> str:
    """A credential name as one KV path segment (IAM user names may hold ``+=,@``)."""
    out = _DELIVERY_UNSAFE.sub("_", value)
    return out if KEY_SEGMENT.match(out) else "_" + out


class Rotation(SpecModel):
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


class ApprovalPolicy(SpecModel):
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


_L = TypeVar("_L", StoreLocation, RecordLocation)


@dataclass(frozen=True)
class LocationRef(Declared[StoreLocation]):
    """A location of the spec with where it is declared."""


CREDENTIAL_ACTIONS = {
    "vault_kv": "destroy every version and the metadata",
    "vault_token": "revoke the token by accessor",
    "vault_lease_prefix": "revoke every lease under the prefix",
    "vault_approle_secret_id": "destroy the secret-id by accessor",
    "vault_approle_role": "delete the role",
    "aws_access_key": "deactivate and delete the access key",
    "azure_stored_policy": "remove the stored access policy",
    "gcs_hmac_key": "deactivate and delete the HMAC key",
    "postgres_role": "end its sessions, revoke its privileges and memberships, drop the role",
    "redis_acl_user": "end its connections and delete the ACL user",
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


def _service_credentials(
    c: Credentials,
) -> list[tuple[str, credential_ids.ServiceCredential]]:
    return [("postgres_role", credential_ids.pg_role(r.ident)) for r in c.postgres_roles] + [
        ("redis_acl_user", credential_ids.redis_user(u.ident)) for u in c.redis_acl_users
    ]


class Problems(ValueError):
    """Several cross-field problems, each with its field path (carried through pydantic)."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(msg for _, msg in problems))
        self.problems = problems


def fmt_loc(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _loc_of(field: str) -> tuple[str | int, ...]:
    loc: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", field):
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(loc)


class SystemSpec(SpecModel):
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

    def _declared(self, of_type: type[_L]) -> Iterator[tuple[str, int, _L]]:
        """(asset class, index, location) of each location of type ``of_type``, in order."""
        for name, cls in self.asset_classes():
            for i, loc in enumerate(cls.locations):
                if isinstance(loc, of_type):
                    yield name, i, loc

    def locations(self) -> list[LocationRef]:
        """The object-store locations (record stores: :meth:`record_locations`)."""
        return [LocationRef(*found) for found in self._declared(StoreLocation)]

    def record_locations(self) -> list[RecordLocationRef]:
        """The record-store locations (docs/spec.md, "Record stores"), in declaration order."""
        return [RecordLocationRef(*found) for found in self._declared(RecordLocation)]

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
        if self.keys.storage_cmk:
            out.append((self.keys.storage_cmk, "storage_cmk"))
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
        refs += [CredentialRef("postgres_role", r.ident) for r in c.postgres_roles]
        refs += [CredentialRef("redis_acl_user", u.ident) for u in c.redis_acl_users]
        refs += list(dict.fromkeys(d.ref for d in self.deliveries()))
        return refs

    def deliveries(self) -> list[Delivery]:
        """The KV secrets that credential rotation delivers new secrets to (none without
        ``rotation.deliver_to``): one per IAM user, stored access policy, HMAC key and AppRole
        role."""
        if self.rotation is None or self.rotation.deliver_to is None:
            return []
        to, c, seg = self.rotation.deliver_to, self.credentials, _delivery_segment
        # (kind, identifier, path under deliver_to.path) of each delivered credential
        found = [("aws_access_key", ak.user, f"aws/{seg(ak.user)}") for ak in c.aws_access_keys]
        found += [
            (
                "azure_stored_policy",
                f"{p.container}/{p.policy_id}",
                f"azure/{p.container}/{seg(p.policy_id)}",
            )
            for p in c.azure_stored_policies
        ]
        found += [("gcs_hmac_key", h.access_id, f"gcs/{h.access_id}") for h in c.gcs_hmac_keys]
        found += [
            (
                "vault_approle_role",
                f"{ar.mount}/{ar.role}",
                f"approle/{seg(ar.mount)}/{seg(ar.role)}",
            )
            for ar in c.vault_approles
        ]
        found += [
            (
                kind,
                e.ident,
                f"{kind.split('_')[0]}/{seg(f'{e.server.host}_{e.server.port}')}/{seg(e.name)}",
            )
            for kind, e in _service_credentials(c)
        ]
        # one user with several entries has one delivery
        unique = dict.fromkeys(
            Delivery(CredentialRef(kind, ident), to.mount, f"{to.path}/{path}")
            for kind, ident, path in found
        )
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
        records = self.record_locations()
        if not refs and not records:
            problem("assets", "declares no asset class: a system has at least one location")
        for field, message in overlaps_within(records):
            problem(field, message)
        for rec in records:  # retention only where the connector applies it
            cls = getattr(self.assets, rec.asset_class)
            rule = cls.retention
            why = record_retention_refusal(
                rec.url,
                rule.delete_after_days if rule else None,
                rule.archive_after_days if rule else None,
                cls.on_retirement,
            )
            if why is not None:
                problem(rec.field, why)
        for i, a in enumerate(refs):
            for b in refs[i + 1 :]:
                note = overlap_note(a.url, b.url)
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
                note = overlap_note(self.archive.target, ref.url)
                if note is not None:
                    problem(
                        "archive.target",
                        f"{self.archive.target} overlaps {ref.url} ({ref.field}){note}: the "
                        "archive would be purged with the data it archives",
                    )
        if self.evidence is not None:
            for ref in refs:
                note = overlap_note(self.evidence, ref.url)
                if note is not None:
                    problem(
                        "evidence",
                        f"{self.evidence} overlaps {ref.url} ({ref.field}){note}: evidence would "
                        "be purged with the system",
                    )
            if (
                self.archive is not None
                and overlap_note(self.evidence, self.archive.target) is not None
            ):
                problem(
                    "evidence",
                    f"{self.evidence} overlaps the archive target {self.archive.target}: keep "
                    "evidence and archive apart",
                )

        keys: list[tuple[str, str | None]] = [
            ("keys.kek", self.keys.kek),
            ("keys.storage_cmk", self.keys.storage_cmk),
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
                elif fb == "archive.key" and fa in ("keys.kek", "keys.storage_cmk"):
                    problem(
                        fb,
                        f"{ub} is also {fa}, which is destroyed at retirement: the archive "
                        "would become unreadable",
                    )
                else:
                    problem(fb, f"{ub} is also {fa}: one key, one purpose")
        if self.keys.destroy_model_signing_key and self.keys.model_signing is None:
            problem("keys.destroy_model_signing_key", "is true but keys.model_signing is not set")
        for field, message in kms_rules(self):
            problem(field, message)

        if self.rotation is not None and self.rotation.deliver_to is not None:
            to = self.rotation.deliver_to
            for i, kv in enumerate(self.credentials.vault_kv):
                if kv.mount == to.mount and paths_overlap(kv.path, to.path):
                    problem(
                        "rotation.deliver_to",
                        f"{to.mount}/{to.path} overlaps credentials.vault_kv[{i}] "
                        f"{kv.mount}/{kv.path}: delivered secrets would overwrite a rotated "
                        "secret; deliver elsewhere",
                    )
            if paths_overlap(to.path, "sundown/keys"):
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
            raise Problems(problems)
        return self


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
