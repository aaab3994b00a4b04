"""The ``az://container/prefix`` object store (Azure Blob Storage, through azure-storage-blob).

``open_store("az://models/team-a")`` is rooted at that prefix of the container: keys are
relative to it and a listing never leaves it (``team-a`` never matches ``team-ab``). The account
comes from the environment of the moment, for each store object afresh (never cached across
credentials): ``AZURE_STORAGE_CONNECTION_STRING``, or ``AZURE_STORAGE_ACCOUNT_URL`` with
``DefaultAzureCredential`` (managed identity, workload identity, Azure CLI, ...).

What it does, in Azure terms:

- ``put`` streams: an object that fits in 8 MiB goes as one Put Blob, a larger one as 8 MiB
  staged blocks and a block-list commit; every request carries a Content-MD5 that the service
  checks. ``if_absent`` sends ``If-None-Match: *`` (on the commit for block uploads), so
  create-only is atomic on the service.
- ``open`` streams with the SDK's downloader, which pins every range read to the ETag of the
  first, so a concurrent overwrite fails the read rather than mixing two blobs.
- ``inventory`` lists blobs, versions, snapshots and soft-deleted blobs in one paginated listing
  (``include=versions,snapshots,deleted,legalhold,immutabilitypolicy``). A snapshot's
  ``version_id`` is ``snapshot:<time>``; a version's is its version id.
- ``purge`` deletes exactly the listed copies with Blob Batch (256 sub-requests per batch), each
  naming its version or snapshot, snapshots and previous versions before base blobs (a base blob
  with snapshots is refused, never deleted with them). Each sub-response is read: 2xx or 404
  (already gone) -> deleted; legal hold or immutability policy -> held; anything else -> failed;
  a batch failing as a whole fails its items and stops the purge (connectors/_purge.py).
  A current version on a versioned account is removed by deleting the base blob (which makes it a
  previous version) and then that version. Soft-deleted copies cannot be deleted before their
  window ends: reported held, no request sent.
- ``copy`` is a server-side Copy Blob within the account (optionally into a tier, ``Archive``),
  a streamed copy otherwise.

Retries are azure-core's (the storage SDK's ExponentialRetry policy); batch sub-requests are not
retried one by one: a failed item is reported and a re-run purge (idempotent) picks it up.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

from azure.core import exceptions as aexc
from azure.storage.blob import (
    BlobClient,
    BlobProperties,
    BlobServiceClient,
    ContainerClient,
    ExponentialRetry,
    StandardBlobTier,
)

from connectors import _copy, _env, _purge, _streams, azure_policy
from sundown import errors, store
from sundown.ranges import KeyRange
from sundown.store_url import parse_bucket_url

BATCH_LIMIT = 256  # Blob Batch: at most 256 sub-requests per batch
_CHUNK = 8 * 1024 * 1024  # single Put Blob limit used here, and block size
_PAGE = 5000  # List Blobs: at most 5,000 results per page
SNAPSHOT_PREFIX = "snapshot:"
TIERS = {
    t.value.lower(): t
    for t in (
        StandardBlobTier.HOT,
        StandardBlobTier.COOL,
        StandardBlobTier.COLD,
        StandardBlobTier.ARCHIVE,
    )
}
_HELD_CODES = {
    "BlobImmutableDueToLegalHold",
    "BlobImmutableDueToPolicy",
    "BlobImmutableDueToLegalHoldAndPolicy",  # (spelling seen in some service versions)
}
_COPY_WAIT_SECONDS = 600

T = TypeVar("T")


# -- errors -------------------------------------------------------------------------------------


def _map_error(exc: Exception, what: str) -> errors.SundownError:
    if isinstance(exc, errors.SundownError):
        return exc
    code = getattr(exc, "error_code", None) or ""
    if isinstance(exc, aexc.ResourceNotFoundError):
        return errors.NotFoundError(f"{what}: not found ({code or 404})")
    if isinstance(exc, aexc.ResourceExistsError | aexc.ResourceModifiedError):
        if code in _HELD_CODES:
            return errors.PermissionDeniedError(f"{what}: immutable ({code})")
        return errors.ConflictError(f"{what}: already exists or changed meanwhile ({code or 409})")
    if isinstance(exc, aexc.ClientAuthenticationError):
        return errors.PermissionDeniedError(
            f"{what}: refused by Azure ({code or 'authentication'})"
        )
    if code == "Md5Mismatch" or "md5" in code.lower():
        return errors.IntegrityError(f"{what}: MD5 mismatch between the data sent and Azure's copy")
    if isinstance(exc, aexc.ServiceRequestError | aexc.ServiceResponseError):
        return errors.TransientError(f"{what}: Azure unreachable ({type(exc).__name__})")
    if isinstance(exc, aexc.HttpResponseError):
        status = exc.status_code or 0
        if status == 403:
            return errors.PermissionDeniedError(f"{what}: refused by Azure ({code or 403})")
        if status in (408, 429) or status >= 500:
            return errors.TransientError(f"{what}: Azure unavailable ({code or status})")
        if status == 400:
            return errors.InputError(f"{what}: Azure rejected the request ({code or 400})")
        return errors.BackendError(f"{what}: Azure error {status} {code}".rstrip())
    if isinstance(exc, aexc.AzureError):
        return errors.BackendError(f"{what}: {type(exc).__name__}")
    return errors.BackendError(f"{what}: {type(exc).__name__}")


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except aexc.AzureError as exc:
        raise _map_error(exc, what) from exc


# -- URLs and clients ---------------------------------------------------------------------------


def new_service_client() -> BlobServiceClient:
    """A fresh client for the account the environment names right now."""
    options: dict[str, Any] = {
        # retry_read: a connection lost after the request was sent (the SDK's "read" errors)
        # gets the same budget as any other failure (its default, 3, ran out before the total)
        "retry_policy": ExponentialRetry(
            initial_backoff=2, increment_base=2, retry_total=4, retry_read=4
        ),
        "max_single_put_size": _CHUNK,
        "max_block_size": _CHUNK,
        "max_chunk_get_size": _CHUNK,
        "max_single_get_size": _CHUNK,
    }
    connection_string = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if connection_string:
        try:
            return BlobServiceClient.from_connection_string(connection_string, **options)
        except ValueError:
            # The SDK's message could quote the string, key included: never repeat it.
            raise errors.InputError("AZURE_STORAGE_CONNECTION_STRING is malformed") from None
    account_url = os.environ.get("AZURE_STORAGE_ACCOUNT_URL")
    if account_url:
        from azure.identity import DefaultAzureCredential

        return BlobServiceClient(account_url, credential=DefaultAzureCredential(), **options)
    raise errors.InputError(
        "no Azure storage account configured: set AZURE_STORAGE_CONNECTION_STRING, or "
        "AZURE_STORAGE_ACCOUNT_URL with credentials DefaultAzureCredential can find"
    )


def _split_version(version_id: str | None) -> tuple[str | None, str | None]:
    """A store ``version_id`` -> (version id, snapshot)."""
    if version_id is None:
        return None, None
    if version_id.startswith(SNAPSHOT_PREFIX):
        snapshot = version_id[len(SNAPSHOT_PREFIX) :]
        if not snapshot:
            raise errors.InputError(f"empty snapshot in version id {version_id!r}")
        return None, snapshot
    if not version_id:
        raise errors.InputError("empty version id")
    return version_id, None


# -- the store ----------------------------------------------------------------------------------


class AzureBlobStore(_copy.Copying):
    """A container prefix as an object store. See the module docstring."""

    def __init__(
        self, container: str, prefix: str, service: BlobServiceClient | None = None
    ) -> None:
        self._service = service if service is not None else new_service_client()
        self._container_name = container
        self._prefix = prefix
        self._container: ContainerClient = self._service.get_container_client(container)
        self._caps: frozenset[store.Capability] | None = None

    @property
    def url(self) -> str:
        base = f"az://{self._container_name}"
        return f"{base}/{self._prefix}" if self._prefix else base

    @property
    def container(self) -> str:
        return self._container_name

    @property
    def service(self) -> BlobServiceClient:
        return self._service

    @property
    def container_client(self) -> ContainerClient:
        return self._container

    def __repr__(self) -> str:
        return f"AzureBlobStore({self.url!r})"

    @property
    def capabilities(self) -> frozenset[store.Capability]:
        """From the account and container: soft delete from the service's delete retention
        policy; versioning and legal holds from version-level immutability on the container;
        the archive tier unless the account is premium. Blob versioning itself is an account
        setting the data plane does not show: inventory always asks for versions."""
        if self._caps is None:
            caps = {store.Capability.CONDITIONAL_CREATE, store.Capability.BATCH_DELETE}
            props = _call(
                f"container {self.url}", lambda: self._container.get_container_properties()
            )
            if props.get("immutable_storage_with_versioning_enabled"):
                caps |= {store.Capability.VERSIONING, store.Capability.OBJECT_LOCK}
            if props.get("has_immutability_policy") or props.get("has_legal_hold"):
                caps.add(store.Capability.OBJECT_LOCK)
            info = _call(f"account of {self.url}", self._service.get_account_information)
            if "premium" not in str(info.get("sku_name", "")).lower():
                caps.add(store.Capability.ARCHIVE_TIER)
            if self.soft_delete_policy().retention_seconds:
                caps.add(store.Capability.SOFT_DELETE)
            if azure_policy.configured():  # the management plane is reachable: lifecycle
                caps.add(store.Capability.LIFECYCLE)
            self._caps = frozenset(caps)
        return self._caps

    # -- lifecycle rules (LifecycleRules: the account's management policy) -----------------------

    def _policy(self) -> azure_policy.ManagementPolicy:
        return azure_policy.ManagementPolicy(self._service.account_name or "")

    def lifecycle_scope(self, prefix: str = "") -> str:
        """The rule's ``prefixMatch``: ``container/`` and the location's root with its trailing
        ``/`` (so that ``team-a/`` never matches ``team-ab``)."""
        return f"{self._container_name}/{self._list_prefix(prefix) or ''}"

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        return self._policy().read()[0]

    def own_lifecycle_rules(
        self, rules: Sequence[dict[str, Any]], rule_id: str
    ) -> list[dict[str, Any]]:
        name = azure_policy.rule_name(rule_id)
        return [dict(r) for r in rules if r.get("name") == name]

    def add_lifecycle_rule(
        self, rule_id: str, prefix: str = ""
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rule = azure_policy.policy_rule(
            azure_policy.rule_name(rule_id), self.lifecycle_scope(prefix)
        )
        return self._policy().change(lambda rules: azure_policy.merge(rules, rule))

    def remove_lifecycle_rule(
        self, rule_id: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        name = azure_policy.rule_name(rule_id)

        def remove(rules: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            kept = [r for r in rules if r.get("name") != name]
            return kept if len(kept) != len(rules) else None

        return self._policy().change(remove)

    # -- names ----------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return store.join_key(self._prefix, store.check_key(key))

    def _entry_name(self, key: str) -> str:
        return store.entry_name(self._prefix, key, self.url)

    def _what(self, key: str, version_id: str | None = None) -> str:
        return f"{self.url}/{key}" + (f" version {version_id}" if version_id else "")

    def _blob(self, key: str, version_id: str | None = None) -> BlobClient:
        version, snapshot = _split_version(version_id)
        if version is not None:
            return self._container.get_blob_client(self._entry_name(key), version_id=version)
        return self._container.get_blob_client(self._entry_name(key), snapshot=snapshot)

    def _info(self, key: str, props: BlobProperties) -> store.ObjectInfo:
        return store.ObjectInfo(
            key=key,
            size=int(props.size or 0),
            modified=_aware(props.last_modified),
            version_id=_version_of(props),
            etag=props.etag,
            storage_class=_tier(props),
            metadata=dict(props.metadata or {}),
        )

    # -- ObjectStore ----------------------------------------------------------------------------

    def put(
        self,
        key: str,
        data: store.PutData,
        *,
        if_absent: bool = False,
        metadata: store.Metadata | None = None,
    ) -> store.ObjectInfo:
        blob = self._blob(store.check_key(key))  # writes take plain keys only
        head, rest = _streams.peek(data, _CHUNK)
        what = self._what(key)
        # One Put Blob when it all fits in one request, else staged blocks and a commit.
        body: bytes | _streams.Counted = (
            head if len(head) < _CHUNK else _streams.Counted(itertools.chain([head], rest))
        )
        answer = _call(
            what,
            lambda: blob.upload_blob(
                body,
                overwrite=not if_absent,
                metadata=metadata or None,
                validate_content=True,  # per-request Content-MD5, checked by the service
                max_concurrency=1,
            ),
        )
        size = len(body) if isinstance(body, bytes) else body.size
        return store.ObjectInfo(
            key=key,
            size=size,
            modified=_aware(answer.get("last_modified")),
            version_id=answer.get("version_id"),
            etag=answer.get("etag"),
            metadata=dict(metadata or {}),
        )

    def open(self, key: str, version_id: str | None = None) -> BinaryIO:
        what = self._what(key, version_id)
        blob = self._blob(key, version_id)
        downloader = _call(what, lambda: blob.download_blob(max_concurrency=1))
        return _streams.reader(
            downloader.chunks(), guard=lambda read: _call(what, read), buffer=_CHUNK
        )

    def head(self, key: str, version_id: str | None = None) -> store.ObjectInfo:
        blob = self._blob(key, version_id)
        props = _call(self._what(key, version_id), blob.get_blob_properties)
        return self._info(key, props)

    def _list_prefix(self, prefix: str) -> str | None:
        prefix = store.check_prefix(prefix)
        full = store.join_key(self._prefix, prefix) if prefix else self._prefix
        return full + "/" if full else None

    def list(self, prefix: str = "") -> Iterator[store.ObjectInfo]:
        pages = self._container.list_blobs(
            name_starts_with=self._list_prefix(prefix),
            include=["metadata"],
            results_per_page=_PAGE,
        )
        for props in _iterate(f"listing {self.url}", pages):
            rel = store.relative_key(self._prefix, props.name)
            if rel is not None:
                yield self._info(rel, props)

    def delete(self, key: str, version_id: str | None = None) -> None:
        """Delete the blob (on a versioned account its current version becomes a previous
        version), or exactly one version or snapshot. A blob with snapshots is refused."""
        blob = self._blob(store.check_key(key), version_id)  # odd names: purge only
        _call(self._what(key, version_id), blob.delete_blob)

    # -- Inventory ------------------------------------------------------------------------------

    def inventory(self, prefix: str = "") -> Iterator[store.Entry]:
        return self._inventory(self._list_prefix(prefix), None)

    # Planning lists a location in key ranges here (sundown/ranges.py): List Blobs has no
    # start key (a range reads its bounds' common prefix whole) and Azurite lists names in
    # UTF-16 order.
    plans_in_ranges = False

    def inventory_range(
        self, key_range: KeyRange, *, encryption: bool = False
    ) -> Iterator[store.Entry]:
        """``inventory()`` of the keys in ``key_range`` (the listing carries each copy's
        encryption, whatever ``encryption`` says). List Blobs has no start key (its marker
        is an opaque token), so the listing is narrowed to the bounds' common prefix and every
        name is checked against the range; it never stops early on the listing's order
        (docs/stores.md, "Key ranges")."""
        narrowed = (self._list_prefix("") or "") + key_range.common_prefix()
        return self._inventory(narrowed or None, key_range)

    def key_prefixes(self) -> builtins.list[str]:
        """One level of a delimiter walk of the root (List Blobs with ``delimiter=/``)."""
        items = self._container.walk_blobs(name_starts_with=self._list_prefix(""), delimiter="/")
        names = [item.name for item in _iterate(f"walk of {self.url}", items)]
        return sorted({rel for rel in (store.relative_key(self._prefix, n) for n in names) if rel})

    def _inventory(
        self, starts_with: str | None, key_range: KeyRange | None
    ) -> Iterator[store.Entry]:
        pages = self._container.list_blobs(
            name_starts_with=starts_with,
            include=["versions", "snapshots", "deleted", "legalhold", "immutabilitypolicy"],
            results_per_page=_PAGE,
        )
        now = datetime.now(UTC)
        for props in _iterate(f"inventory of {self.url}", pages):
            rel = store.relative_key(self._prefix, props.name)
            if rel is None or (key_range is not None and not key_range.contains(rel)):
                continue
            if props.deleted:
                kind = store.EntryKind.SOFT_DELETED
            elif props.snapshot:
                kind = store.EntryKind.SNAPSHOT
            elif props.version_id and not props.is_current_version:
                kind = store.EntryKind.VERSION
            else:
                kind = store.EntryKind.OBJECT
            yield store.Entry(
                key=rel,
                version_id=_version_of(props),
                kind=kind,
                size=int(props.size or 0),
                modified=_aware(props.last_modified),
                is_latest=kind is store.EntryKind.OBJECT,
                storage_class=_tier(props),
                hold=_hold_state(props, now),
                hard_delete_at=_hard_delete_at(props, now) if props.deleted else None,
                encryption=_encryption(props),
            )

    def purge(
        self, entries: Sequence[store.Entry], *, bypass_governance: bool = False
    ) -> store.PurgeResult:
        """Delete exactly these copies with Blob Batch. ``bypass_governance`` has no Azure
        meaning (legal holds and immutability policies cannot be bypassed by a delete)."""
        first: list[tuple[store.Entry, dict[str, str]]] = []  # versions and snapshots
        bases: list[tuple[store.Entry, dict[str, str]]] = []  # base blobs
        then: list[tuple[store.Entry, dict[str, str]]] = []  # the version a base delete left behind
        held: list[store.Entry] = []
        for entry in entries:  # validate everything before deleting anything
            name = self._entry_name(entry.key)
            version, snapshot = _split_version(entry.version_id)
            if entry.kind is store.EntryKind.SOFT_DELETED:
                continue
            if entry.kind is store.EntryKind.SNAPSHOT and snapshot is None:
                raise errors.InputError(f"snapshot entry {entry.key!r} without a snapshot time")
            if entry.kind is store.EntryKind.VERSION and version is None:
                raise errors.InputError(f"version entry {entry.key!r} without a version id")
            if entry.kind not in (
                store.EntryKind.OBJECT,
                store.EntryKind.VERSION,
                store.EntryKind.SNAPSHOT,
            ):
                raise errors.InputError(f"{self.url} has no {entry.kind} entries: {entry.key!r}")
            if entry.kind is store.EntryKind.OBJECT and snapshot is not None:
                raise errors.InputError(f"current blob {entry.key!r} named with a snapshot time")
        for entry in entries:
            name = self._entry_name(entry.key)
            version, snapshot = _split_version(entry.version_id)
            if entry.kind is store.EntryKind.SOFT_DELETED:
                held.append(entry)  # expires with the delete retention window
            elif entry.kind is store.EntryKind.SNAPSHOT:
                first.append((entry, {"name": name, "snapshot": str(snapshot)}))
            elif entry.kind is store.EntryKind.VERSION:
                first.append((entry, {"name": name, "version_id": str(version)}))
            else:
                bases.append((entry, {"name": name}))
                if version is not None:
                    then.append((entry, {"name": name, "version_id": version}))
        run = _purge.PurgeRun[tuple[store.Entry, dict[str, str]]](lambda item: item[0])
        run.result.held += held
        run.run(first, BATCH_LIMIT, self._purge_batch)
        deleted = run.run(bases, BATCH_LIMIT, self._purge_batch).deleted
        # A versioned current blob: its base delete made it a previous version; delete that. Its
        # entry counts as deleted once, when that version is.
        ok = {id(e) for e in deleted if e.version_id is not None}
        run.result.deleted = [e for e in run.result.deleted if id(e) not in ok]
        run.run([item for item in then if id(item[0]) in ok], BATCH_LIMIT, self._purge_batch)
        return run.result

    def _purge_batch(
        self, items: Sequence[tuple[store.Entry, dict[str, str]]]
    ) -> store.PurgeResult:
        try:
            responses = list(
                self._container.delete_blobs(
                    *[spec for _, spec in items], raise_on_any_failure=False
                )
            )
        except aexc.AzureError as exc:
            # The batch as a whole failed: nothing is known about its items.
            message = f"batch request failed: {_map_error(exc, self.url)}"
            code = getattr(exc, "error_code", None) or type(exc).__name__
            raise _purge.BatchFailed(str(code), message) from exc
        if len(responses) != len(items):
            message = f"batch answered {len(responses)} of {len(items)} deletes"
            raise _purge.BatchFailed("BatchMismatch", message)
        result = store.PurgeResult(requests=1)
        for (entry, _), response in zip(items, responses, strict=True):
            code = response.headers.get("x-ms-error-code") or ""
            outcome = classify_delete(response.status_code, code)
            if outcome == "deleted":
                result.deleted.append(entry)
            elif outcome == "held":
                result.held.append(entry)
            else:
                message = str(getattr(response, "reason", "") or f"HTTP {response.status_code}")
                result.failed.append(
                    store.PurgeFailure(entry, code or str(response.status_code), message[:300])
                )
        return result

    def soft_delete_policy(self) -> store.SoftDeletePolicy:
        props = _call(f"service properties of {self.url}", self._service.get_service_properties)
        policy = props.get("delete_retention_policy")
        days = policy.days if policy is not None and policy.enabled else None
        return store.SoftDeletePolicy(
            int(days) * 86400 if days else None,
            "blob service properties delete_retention_policy",
        )

    def replication(self) -> store.Replication:
        """From Get Account Information's SKU (:func:`replication_of_sku`)."""
        try:
            info = _call(f"account of {self.url}", self._service.get_account_information)
        except errors.SundownError as exc:
            return store.Replication(note=f"Get Account Information not read: {exc}")
        return replication_of_sku(info.get("sku_name"), self._service.account_name)

    # -- Placed ---------------------------------------------------------------------------------

    def placement(self) -> store.Placement:
        """The storage account's name (from the account URL the client was made with: no
        request) as the account. The Blob data plane does not report the account's region:
        Get Account Information (one request, made here) gives only the SKU and the account
        kind, which the note repeats, since a geo-redundant SKU (``*GRS``, ``*GZRS``) also
        keeps a copy in the paired secondary region. Region: always ``None``."""
        account = self._service.account_name or None
        note = "the Blob data plane does not report the storage account's region"
        try:
            info = _call(f"account of {self.url}", self._service.get_account_information)
        except errors.SundownError as exc:
            note += f" (Get Account Information not read: {exc})"
        else:
            sku, kind = info.get("sku_name"), info.get("account_kind")
            note += f"; Get Account Information: SKU {sku}, kind {kind}"
            if "GRS" in str(sku).upper() or "GZRS" in str(sku).upper():
                note += ", geo-redundant: a copy is kept in the paired secondary region"
        return store.Placement("azure", account, None, note, "storage account")

    # -- Copier ---------------------------------------------------------------------------------

    def _check_class(self, name: str | None) -> str | None:
        _tier_of(name)
        return name

    def _server_copy(self, job: _copy.CopyJob) -> store.ObjectInfo | None:
        """Server-side Copy Blob within the same account (into the tier asked for: Hot, Cool,
        Cold, Archive)."""
        dest, key, version_id = job.dest, job.key, job.version_id
        source = self._blob(key, version_id)
        if not isinstance(dest, AzureBlobStore) or dest._service.url != self._service.url:
            return None
        tier = _tier_of(job.storage_class)
        target = dest._blob(store.check_key(job.dest_key))
        what = f"copy {self._what(key, version_id)} -> {dest._what(job.dest_key)}"
        _call(what, lambda: source.get_blob_properties())  # NotFoundError before copying
        _call(what, lambda: target.start_copy_from_url(source.url, standard_blob_tier=tier))
        props = _call(what, target.get_blob_properties)
        deadline = time.monotonic() + _COPY_WAIT_SECONDS
        while props.copy.status == "pending":  # waiting for the copy, not a retry
            if time.monotonic() > deadline:
                raise errors.TransientError(f"{what}: still pending after {_COPY_WAIT_SECONDS}s")
            time.sleep(1)
            props = _call(what, target.get_blob_properties)
        if props.copy.status not in (None, "success"):
            raise errors.BackendError(f"{what}: copy ended {props.copy.status}")
        return dest._info(job.dest_key, props)

    def _class_setter(self, job: _copy.CopyJob) -> Callable[[], store.ObjectInfo] | None:
        """To another Azure account, the tier is set on the blob written (Set Blob Tier)."""
        tier = _tier_of(job.storage_class)
        if tier is None or not isinstance(job.dest, AzureBlobStore):
            return None
        return functools.partial(job.dest._set_tier, job.dest_key, tier)

    def _set_tier(self, key: str, tier: StandardBlobTier) -> store.ObjectInfo:
        blob = self._blob(key)
        _call(self._what(key), lambda: blob.set_standard_blob_tier(tier))
        return self.head(key)


def replication_of_sku(sku_name: object, account: str | None) -> store.Replication:
    """A geo-redundant SKU (``Standard_GRS``, ``Standard_RAGRS``, ``*_GZRS``, ``*_RAGZRS``)
    keeps a copy of every blob in the account's paired secondary region. The service replicates
    deletes there asynchronously and this retirement's verification reads only the primary: the
    secondary is a replica it does not reach, named as such."""
    sku = str(sku_name or "unknown")
    redundancy = f"azure SKU {sku}"
    if "GRS" in sku.upper() or "GZRS" in sku.upper():
        where = (
            f"{redundancy}: the paired secondary region of storage account {account} "
            "(deletes reach it by asynchronous geo-replication; not verified there)"
        )
        return store.Replication(targets=(store.ReplicaTarget(None, where),), redundancy=redundancy)
    return store.Replication(redundancy=redundancy)


def classify_delete(status: int, error_code: str) -> str:
    """One Blob Batch sub-response -> "deleted" | "held" | "failed". 404 counts as deleted (that
    copy is already gone; the re-listing is the proof)."""
    if 200 <= status < 300 or status == 404:
        return "deleted"
    if error_code in _HELD_CODES or error_code.startswith("BlobImmutable"):
        return "held"
    return "failed"


def _iterate(what: str, pages: Iterable[T]) -> Iterator[T]:
    """A paginated listing's items, with errors met while paging mapped (:func:`_call`)."""
    return _streams.guarded(pages, lambda step: _call(what, step))


def _aware(value: datetime | None) -> datetime:
    if value is None:
        return datetime.fromtimestamp(0, UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _version_of(props: BlobProperties) -> str | None:
    if props.snapshot:
        return SNAPSHOT_PREFIX + str(props.snapshot)
    return str(props.version_id) if props.version_id else None


def _tier(props: BlobProperties) -> str | None:
    tier = props.blob_tier
    return str(getattr(tier, "value", tier)) if tier else None


def _tier_of(name: str | None) -> StandardBlobTier | None:
    if name is None:
        return None
    tier = TIERS.get(name.lower())
    if tier is None:
        known = ", ".join(t.value for t in TIERS.values())
        raise errors.InputError(f"unknown Azure access tier {name!r} (one of {known})")
    return tier


def _hard_delete_at(props: BlobProperties, now: datetime) -> datetime | None:
    """An upper bound of when a soft-deleted blob goes for good: the service reports only whole
    ``RemainingRetentionDays`` (the retention in force when the blob was deleted), so the end of
    that UTC day. Stable within a day, so a plan's digest does not move by the second."""
    from datetime import timedelta

    days = props.remaining_retention_days
    if days is None:
        return None
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(days=int(days) + 1)


def _hold_state(props: BlobProperties, now: datetime) -> store.HoldState:
    policy = props.immutability_policy
    mode: str | None = None
    until: datetime | None = None
    expiry = getattr(policy, "expiry_time", None) if policy is not None else None
    policy_mode = getattr(policy, "policy_mode", None) if policy is not None else None
    if expiry is not None and _aware(expiry) > now and policy_mode:
        mode = str(getattr(policy_mode, "value", policy_mode)).upper()
        until = _aware(expiry)
    return store.HoldState(
        legal_hold=bool(props.has_legal_hold), retention_mode=mode, retain_until=until
    )


def account_of(url: str) -> str:
    """The storage account ``url`` belongs to as this environment names it, without a request:
    ``AccountName`` of ``AZURE_STORAGE_CONNECTION_STRING``, else its ``BlobEndpoint`` (host and
    path), else the host of ``AZURE_STORAGE_ACCOUNT_URL``: ``az-<account>``. Never the key."""
    account = _env.endpoint_host("AZURE_STORAGE_ACCOUNT_URL")
    text = os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
    if match := re.search(r"AccountName=([^;]+)", text):
        account = match[1]
    elif match := re.search(r"BlobEndpoint=([^;]+)", text):
        endpoint = urlsplit(match[1])
        account = endpoint.netloc + endpoint.path
    return f"az-{account or 'default'}"


def _encryption(props: BlobProperties) -> store.ServerSideEncryption:
    """A blob's encryption as the listing reports it: its encryption scope (whose key the blob
    API does not show), else the account's encryption (Microsoft- or customer-managed: the blob
    API does not say which), or none."""
    if props.encryption_scope:
        return store.ServerSideEncryption(store.AZURE_SCOPE, str(props.encryption_scope))
    if props.encryption_key_sha256:  # a key the writer supplied (CPK): not the tenant's KMS key
        return store.ServerSideEncryption(
            "azure-customer-provided", str(props.encryption_key_sha256)
        )
    if props.server_encrypted:
        return store.ServerSideEncryption("azure-account-encryption")
    return store.ServerSideEncryption("none")


def open_store(url: str) -> AzureBlobStore:
    container, prefix = parse_bucket_url(url, "az")
    return AzureBlobStore(container, prefix)
