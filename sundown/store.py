"""The object-store protocol, its optional capabilities, and scoping.

A store is opened on a URL (``file:///path``, ``s3://bucket/prefix``, ``gs://bucket/prefix``,
``az://container/prefix``) and is *rooted* there: every key a caller passes is relative to the
root and joined with ``/``. A store rooted at ``s3://b/models/a`` therefore sees
``models/a/x`` but never ``models/ab/x``: path-boundary scoping is built in, not checked after the
fact. Keys a caller writes are validated by :func:`check_key`: no empty segments, no ``.`` or
``..``, no leading ``/``. Keys an inventory reports are what the store holds (folder markers
``dir/``, ``a//b``) and pass the looser :func:`check_entry_key`; see docs/stores.md.

Every store implements :class:`ObjectStore` (put a stream, open a stream, head, list, delete) and
:class:`Inventory` (every copy: versions, delete markers, snapshots, soft-deleted objects,
incomplete uploads; purge exact versions; report the soft-delete window). Optional abilities are
declared in ``capabilities`` and callers test for a :class:`Capability`, never for a backend type.
Optional interfaces (:class:`Copier`, :class:`Placed`) are tested for with ``isinstance``.
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

from sundown.errors import ConflictError, InputError, NotFoundError

#: What :meth:`ObjectStore.put` writes: bytes, a readable binary stream or an iterable of byte
#: chunks.
PutData = bytes | BinaryIO | Iterable[bytes]
#: An object's user metadata, name -> value.
Metadata = dict[str, str]


class Capability(enum.StrEnum):
    VERSIONING = "versioning"  # keeps old versions; inventory reports them
    OBJECT_LOCK = "object_lock"  # legal holds / retention that block deletion
    SOFT_DELETE = "soft_delete"  # deleted data recoverable for a window
    ARCHIVE_TIER = "archive_tier"  # copy() can target an archive storage class
    BATCH_DELETE = "batch_delete"  # purge() sends many versions per request
    CONDITIONAL_CREATE = "conditional_create"  # put(if_absent=True) is atomic
    LIFECYCLE = "lifecycle"  # bucket lifecycle rules can expire a prefix (LifecycleRules)


class EntryKind(enum.StrEnum):
    OBJECT = "object"  # current version (or the only version on an unversioned store)
    VERSION = "version"  # a non-current version
    DELETE_MARKER = "delete_marker"
    SNAPSHOT = "snapshot"  # Azure blob snapshot
    SOFT_DELETED = "soft_deleted"  # GCS soft-deleted generation, Azure soft-deleted blob
    MULTIPART_UPLOAD = "multipart_upload"  # incomplete multipart upload (version_id: upload id)
    # Not data a store can purge: reported so that they are never skipped silently (file://)
    SYMLINK = "symlink"  # a symbolic link inside the location: never followed, never deleted
    FIFO = "fifo"  # a named pipe: never opened
    SOCKET = "socket"
    DEVICE = "device"  # a character or block device
    HARDLINK = "hardlink"  # a file with other names (links > 1): unlinking one keeps the data


#: Kinds that an inventory reports but a retirement neither follows nor deletes: they remain,
#: and the plan and the certificate say so (docs/spec.md, "Locations").
SPECIAL_KINDS = frozenset(
    {EntryKind.SYMLINK, EntryKind.FIFO, EntryKind.SOCKET, EntryKind.DEVICE, EntryKind.HARDLINK}
)


@dataclass(frozen=True)
class HoldState:
    """Why a copy cannot be deleted now, as far as the backend reports it."""

    legal_hold: bool = False
    retention_mode: str | None = None  # "GOVERNANCE", "COMPLIANCE", "LOCKED", "UNLOCKED", ...
    retain_until: datetime | None = None
    event_based_hold: bool = False  # GCS
    temporary_hold: bool = False  # GCS

    @property
    def held(self) -> bool:
        return bool(
            self.legal_hold
            or self.event_based_hold
            or self.temporary_hold
            or self.retention_mode is not None
        )


@dataclass(frozen=True)
class ObjectInfo:
    """One object as ``head``/``list``/``put`` report it. ``key`` is relative to the store root."""

    key: str
    size: int
    modified: datetime
    version_id: str | None = None
    etag: str | None = None
    storage_class: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """One copy found by inventory. ``key`` is relative to the store root."""

    key: str
    version_id: str | None
    kind: EntryKind
    size: int
    modified: datetime
    is_latest: bool = False
    storage_class: str | None = None
    hold: HoldState = field(default_factory=HoldState)
    # SOFT_DELETED only: when the provider deletes it for good, as the store reports it (GCS
    # ``hardDeleteTime``; Azure deleted time + remaining retention days), else None (unknown).
    hard_delete_at: datetime | None = None
    # The server-side encryption the store reported for this copy (None: not read). Untrusted:
    # it is what a store says, compared exactly with the key a retirement destroys.
    encryption: ServerSideEncryption | None = None


#: What the Azure connector reports for a blob under an encryption scope (key: the scope name).
AZURE_SCOPE = "azure-encryption-scope"


@dataclass(frozen=True)
class ServerSideEncryption:
    """How a store says it encrypted one copy at rest, as it said it (never resolved or
    normalized here): ``algorithm`` as the provider names it (S3 ``aws:kms``,
    ``aws:kms:dsse``, ``AES256``; GCS ``cmek`` or ``google-managed``; Azure ``scope``, or
    ``none`` when the store reported no encryption), ``key`` the key the store named (S3
    ``SSEKMSKeyId``, GCS ``kmsKeyName``, the Azure encryption scope's name), or None."""

    algorithm: str
    key: str | None = None


@dataclass(frozen=True)
class PurgeFailure:
    entry: Entry
    code: str  # backend error code, e.g. "AccessDenied"
    message: str  # no secrets


@dataclass
class PurgeResult:
    deleted: list[Entry] = field(default_factory=list)
    held: list[Entry] = field(default_factory=list)  # refused by lock, hold or retention
    failed: list[PurgeFailure] = field(default_factory=list)
    requests: int = 0  # delete requests sent

    def merge(self, other: PurgeResult) -> None:
        self.deleted.extend(other.deleted)
        self.held.extend(other.held)
        self.failed.extend(other.failed)
        self.requests += other.requests


@dataclass(frozen=True)
class SoftDeletePolicy:
    """The soft-delete window found on the location (``None``: no soft delete)."""

    retention_seconds: int | None
    source: str  # where it was read, e.g. "bucket soft_delete_policy"

    def irrecoverable_after(self, purged_at: datetime) -> datetime:
        from datetime import timedelta

        return purged_at + timedelta(seconds=self.retention_seconds or 0)


@runtime_checkable
class ObjectStore(Protocol):
    """The few operations every store has."""

    @property
    def url(self) -> str:
        """The root URL this store is scoped to."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    def put(
        self, key: str, data: PutData, *, if_absent: bool = False, metadata: Metadata | None = None
    ) -> ObjectInfo:
        """Write a stream. Atomic: readers see the old object or the whole new one.
        ``if_absent``: ConflictError if the key exists (create-only)."""
        ...

    def open(self, key: str, version_id: str | None = None) -> BinaryIO:
        """A readable stream of the object (use as a context manager). NotFoundError if absent."""
        ...

    def head(self, key: str, version_id: str | None = None) -> ObjectInfo:
        """Facts about one object. NotFoundError if absent."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Current objects under the root (and under ``prefix`` as a path, with path-boundary
        semantics), in key order, paginated: memory does not grow with the number of objects."""
        ...

    def delete(self, key: str, version_id: str | None = None) -> None:
        """Delete one object (or one version). NotFoundError if absent."""
        ...


@runtime_checkable
class Inventory(Protocol):
    """Every copy in scope, and exact purge of the copies listed."""

    def inventory(self, prefix: str = "") -> Iterator[Entry]:
        """Every copy under the root (and ``prefix``): versions, delete markers, snapshots,
        soft-deleted objects, incomplete multipart uploads. Paginated."""
        ...

    def purge(self, entries: Sequence[Entry], *, bypass_governance: bool = False) -> PurgeResult:
        """Delete exactly these copies, in batches at the API's limit; read every per-item result.
        Never deletes a copy not listed, never by prefix. Governance retention is bypassed only
        when ``bypass_governance`` is true. Every entry is checked before the first request (a
        bad one raises, nothing deleted); after it, no backend failure raises: each copy is in
        exactly one of deleted, held and failed, and a batch failing as a whole fails its copies
        and stops the purge (the rest failed ``NotSent``; connectors/_purge.py)."""
        ...

    def soft_delete_policy(self) -> SoftDeletePolicy: ...


@runtime_checkable
class EncryptionInventory(Protocol):
    """A store that can tell each copy's server-side encryption, at a cost per copy (S3: one
    HeadObject per version, in parallel). Stores whose listing carries it (GCS ``kmsKeyName``,
    Azure encryption scope) fill :attr:`Entry.encryption` in :meth:`Inventory.inventory` and
    need not implement this."""

    #: Requests sent to read encryption by the last :meth:`encrypted_inventory` (counted).
    encryption_requests: int

    def encrypted_inventory(self, prefix: str = "") -> Iterator[Entry]:
        """:meth:`Inventory.inventory`, each version's :attr:`Entry.encryption` read."""
        ...


@runtime_checkable
class ServerSideKeyWriter(Protocol):
    """A store that can write under a customer-managed server-side key."""

    def under_server_side_key(self, key: str) -> ObjectStore:
        """This store, its writes server-side encrypted under ``key`` (a KMS key ARN or
        resource name); a write the store reports under another key raises IntegrityError."""
        ...


@dataclass(frozen=True)
class Placement:
    """Where a store's data lives, as far as the backend tells (NIST SP 800-88 "location").

    ``provider`` is a short name (``"aws"``, ``"gcp"``, ``"azure"``, ``"local"``); ``account``
    the account, project or host the data belongs to, of the kind ``account_kind`` names
    (``None`` for AWS's plain account id; ``"project"``, ``"storage account"``, ``"host"``);
    ``region`` the provider's own name of the region (``"eu-west-1"``, ``"europe-west4"``).
    ``None`` means not learned; ``note`` then says why (refused, not reported by the API, ...).
    A store that has no region at all (a local folder) gives ``None`` and no note.
    """

    provider: str
    account: str | None
    region: str | None
    note: str | None = None
    account_kind: str | None = None

    @property
    def account_label(self) -> str:
        """``"aws 123456789012"``, ``"gcp project acme"``, ``"azure storage account foo"``, or
        ``"aws account unknown (why)"``."""
        if self.account is None:
            why = f" ({self.note})" if self.note else ""
            return f"{self.provider} {self.account_kind or 'account'} unknown{why}"
        return " ".join(p for p in (self.provider, self.account_kind, self.account) if p)

    @property
    def region_label(self) -> str | None:
        """``"aws eu-west-1"``, ``"azure region unknown for storage account foo (why)"``, or
        ``None`` when there is nothing to say (no region, no note)."""
        if self.region is not None:
            return f"{self.provider} {self.region}"
        if self.note is None:
            return None
        of = f" for {self.account_kind or 'account'} {self.account}" if self.account else ""
        return f"{self.provider} region unknown{of} ({self.note})"


@runtime_checkable
class Placed(Protocol):
    """Optional: a store that can say where its data lives. Asked only when needed (a request
    or two), never when the store is opened. A part it cannot learn (refused, not reported,
    unreachable) is ``None`` with the reason in :attr:`Placement.note`: ``placement()`` is
    evidence gathering and does not raise for backend failures."""

    def placement(self) -> Placement: ...


@dataclass(frozen=True)
class ReplicaTarget:
    """A place the provider copies this location's objects to, as the store's settings say.

    ``url``: the destination as a store URL when Sundown could address it (an S3 replication
    rule's destination bucket with the same prefix), so a plan can check it is a location of the
    spec; ``None`` for a provider-managed replica no API of the tenant reaches on its own (a GCS
    dual- or multi-region's other region, an Azure GRS account's paired secondary region).
    ``where``: what names it, for the certificate."""

    url: str | None
    where: str


@dataclass(frozen=True)
class Replication:
    """What a location's replication and redundancy settings say, read at inventory time.
    ``note``: what could not be read (refused, not reported by this endpoint)."""

    targets: tuple[ReplicaTarget, ...] = ()
    redundancy: str | None = None  # e.g. "gcp dual-region NAM4", "azure SKU Standard_RAGRS"
    note: str | None = None


@runtime_checkable
class Replicated(Protocol):
    """Optional: a store that can report where its provider replicates it (a request or two,
    asked at inventory time). Never raises for a refusal: the note says what was not read."""

    def replication(self) -> Replication: ...


@runtime_checkable
class LifecycleRules(Protocol):
    """Bucket lifecycle rules that expire every copy under a prefix (``purge_by: lifecycle``).

    A store declaring :attr:`Capability.LIFECYCLE` implements this. Rules are the provider's own
    JSON-able dicts; ``add`` and ``remove`` merge with the rules already there (a provider's
    lifecycle write replaces the whole configuration) and return (configuration before,
    configuration after), both as read back from the store."""

    def lifecycle_scope(self, prefix: str = "") -> str: ...

    def lifecycle_rules(self) -> list[dict[str, object]]: ...

    def own_lifecycle_rules(
        self, rules: Sequence[dict[str, object]], rule_id: str
    ) -> list[dict[str, object]]:
        """Sundown's rule(s) of ID ``rule_id`` found in ``rules`` (as read back, or as
        journaled), in a form that compares equal when the rule is unchanged."""
        ...

    def add_lifecycle_rule(
        self, rule_id: str, prefix: str = ""
    ) -> tuple[list[dict[str, object]], list[dict[str, object]]]: ...

    def remove_lifecycle_rule(
        self, rule_id: str
    ) -> tuple[list[dict[str, object]], list[dict[str, object]]]: ...


@runtime_checkable
class Copier(Protocol):
    """Server-side copy, optionally into another storage class (ARCHIVE_TIER)."""

    def copy(
        self,
        key: str,
        dest: ObjectStore,
        dest_key: str,
        *,
        version_id: str | None = None,
        storage_class: str | None = None,
    ) -> ObjectInfo: ...


def put_once(store: ObjectStore, key: str, data: bytes) -> bool:
    """Create-only write of ``data`` at ``key`` that survives a lost answer. True when ``key``
    holds exactly ``data`` afterwards: written now, or written by this same write whose answer
    was lost (the client's retry then meets the object as a conflict). False when other bytes
    hold it (another writer won)."""
    try:
        store.put(key, [data], if_absent=True)
    except ConflictError:
        with store.open(key) as f:
            return bool(f.read() == data)
    return True


def exists(store: ObjectStore, key: str) -> bool:
    """Whether ``store`` holds an object at ``key`` (a ``head`` that did not find it: False)."""
    try:
        store.head(key)
    except NotFoundError:
        return False
    return True


def check_key(key: str) -> str:
    """Validate a store-relative key: non-empty, relative, no empty, ``.`` or ``..`` segments."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise InputError(f"invalid object key {key!r}: must be a relative path, not empty")
    if "\x00" in key or "\\" in key:
        raise InputError(f"invalid object key {key!r}: NUL or backslash")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise InputError(f"invalid object key {key!r}: empty, '.' or '..' segment")
    return key


def check_entry_key(key: str, root: str) -> str:
    """Validate a key that a store's inventory reported (relative to ``root``), before a plan
    or a purge uses it. Looser than :func:`check_key`, because object stores have flat
    namespaces and real buckets hold keys no file system could: S3's folder markers (``dir/``,
    and ``""``, the marker ``<root>/`` of the root itself, what the AWS console's "Create
    folder" writes), empty segments (``a//b``), a leading ``/`` (the full key ``<root>//x``),
    backslashes. All of them lie under ``<root>/`` and are addressed by their exact name, so they
    are in scope and purged. Refused: NUL, and ``""`` on a store without a root (no such key).
    Keys with ``.`` or ``..`` segments pass here; see :func:`has_dot_segment` (a plan holds
    them instead of deleting them by name)."""
    if "\x00" in key:
        raise InputError(f"invalid object key {key!r}: NUL")
    if key == "" and not root.strip("/"):
        raise InputError("invalid object key '': empty, and the store has no root prefix")
    return key


def has_dot_segment(key: str) -> bool:
    """Whether ``key`` has a ``.`` or ``..`` segment. An HTTP client or a service may resolve
    such a segment in a request path (``models/a/../b`` -> ``models/b``), so a delete by that
    name could reach outside the location: Sundown never sends one (docs/stores.md)."""
    return any(part in (".", "..") for part in key.split("/"))


def addressable_entry_key(key: str, root: str, where: str) -> str:
    """A key inventory reported (:func:`check_entry_key`) that a connector may name in a read or
    a delete: anything but a ``.``/``..`` segment, which a plan holds and no request ever names
    (docs/stores.md). ``where`` names the location in the error."""
    check_entry_key(key, root)
    if has_dot_segment(key):
        raise InputError(
            f"object key {key!r} in {where} has a '.' or '..' segment: never read or deleted by "
            "name (an HTTP path could resolve it outside the location)"
        )
    return key


def entry_name(root: str, key: str, where: str) -> str:
    """The full name to read or purge a key by: a key :func:`check_key` accepts, joined to the
    root (:func:`join_key`), or a key inventory reported (a folder marker ``dir/``, ``""`` for
    ``<root>/``, ``a//b``) joined verbatim (:func:`join_entry_key`); never one with a
    ``.``/``..`` segment (:func:`addressable_entry_key`: a plan holds those, docs/stores.md).
    ``where`` names the location in the error."""
    try:
        return join_key(root, check_key(key))
    except InputError:
        return join_entry_key(root, addressable_entry_key(key, root, where))


def join_entry_key(root: str, key: str) -> str:
    """The full key of an inventory key (:func:`check_entry_key`): ``<root>/<key>`` verbatim
    (``""`` -> ``<root>/``, ``"/x"`` -> ``<root>//x``; never ``posixpath.join``, which would
    drop the root before a leading ``/``)."""
    root = root.strip("/")
    return f"{root}/{key}" if root else key


def check_prefix(prefix: str) -> str:
    """Validate a store-relative prefix: ``""`` (the whole root) or a key-like path."""
    prefix = prefix.strip("/") if prefix else ""
    return check_key(prefix) if prefix else ""


def join_key(root: str, key: str) -> str:
    """Join a root prefix (may be empty) and a relative key with ``/``."""
    root = root.strip("/")
    return posixpath.join(root, key) if root else key


def relative_key(root: str, full_key: str) -> str | None:
    """``full_key`` relative to ``root`` when it lies under ``root`` as a path, else ``None``.

    ``relative_key("models/a", "models/ab/x")`` is ``None``: path-boundary semantics."""
    root = root.strip("/")
    if not root:
        return full_key
    if full_key.startswith(root + "/"):
        return full_key[len(root) + 1 :]
    return None
