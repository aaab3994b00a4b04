"""The ``gs://bucket/prefix`` object store (Google Cloud Storage, through google-cloud-storage).

``open_store("gs://bucket/models/a")`` is rooted at that prefix: keys are relative to it and a
listing never leaves it (``models/a`` never matches ``models/ab``). The client is built afresh
for each store object from the environment of the moment: Application Default Credentials, or
anonymous credentials when ``STORAGE_EMULATOR_HOST`` points at an emulator. Nothing is cached
across credentials.

What it does, in GCS terms:

- ``put`` streams: an object that fits in one request (8 MiB) goes as one multipart upload, a
  larger one as a resumable upload in 8 MiB chunks; both carry a CRC32C checksum that the
  server's must match (``IntegrityError`` otherwise). ``if_absent`` sends
  ``ifGenerationMatch=0``, so create-only is atomic on the server.
- ``open`` reads one fixed generation (the current one at open time, or the one asked for), so a
  concurrent overwrite never mixes two generations in one stream.
- ``inventory`` lists every generation (``versions=true``: the live object is ``OBJECT``,
  noncurrent generations are ``VERSION``) and, when the bucket has a soft-delete policy, the
  soft-deleted generations (``softDeleted=true``), each with its holds (temporary, event-based)
  and retention (bucket retention policy, object retention).
- ``purge`` deletes exactly the listed generations (``generation=`` on every delete, so a
  generation written after the inventory is never touched) in JSON-API batches of 100, and reads
  each sub-response: 2xx or 404 (already gone) -> deleted; 403 for a hold or retention -> held;
  anything else -> failed; a batch failing as a whole fails its items and stops the purge
  (connectors/_purge.py). Soft-deleted generations cannot be deleted before their window ends:
  they are reported as held, with no request sent.
- ``copy`` is a server-side rewrite (any size, any bucket), optionally into another storage
  class (``ARCHIVE``).

Retries are google-api-core's: reads, listings and generation-exact deletes are idempotent and
retried by the SDK's default policy; a whole batch request that fails transiently is re-sent
under the same policy (its deletes are generation-exact, hence idempotent).
"""

from __future__ import annotations

import builtins
import hashlib
import heapq
import io
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, BinaryIO, TypeVar, cast

import requests
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.auth import exceptions as auth_exc
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.retry import DEFAULT_RETRY

from connectors import _copy, _env, _lifecycle, _purge, _streams
from sundown import errors, store
from sundown.ranges import KeyRange
from sundown.sse import key_name, writer_key
from sundown.store_url import parse_bucket_url

BATCH_LIMIT = 100  # the JSON API accepts up to 100 calls per batch request
_CHUNK = 8 * 1024 * 1024  # resumable chunk (a multiple of 256 KiB) and single-request limit
_PAGE = 1000
STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")

T = TypeVar("T")


# -- errors -------------------------------------------------------------------------------------


def _map_error(exc: Exception, what: str) -> errors.SundownError:
    """The Sundown error for a google-cloud-storage failure. ``what`` names the object."""
    if isinstance(exc, errors.SundownError):
        return exc
    if isinstance(exc, InvalidResponse) and getattr(exc, "response", None) is not None:
        # The resumable-upload layer's error (BlobWriter does not convert it): map its status.
        exc = gexc.from_http_response(exc.response)
    if isinstance(exc, gexc.NotFound):
        return errors.NotFoundError(f"{what}: not found")
    if isinstance(exc, gexc.PreconditionFailed):
        return errors.ConflictError(f"{what}: already exists (or changed meanwhile)")
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return errors.PermissionDeniedError(f"{what}: refused by GCS ({_code(exc)})")
    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return errors.PermissionDeniedError(
            f"{what}: no Google credentials found ({type(exc).__name__})"
        )
    if isinstance(exc, DataCorruption):
        return errors.IntegrityError(
            f"{what}: checksum mismatch between the data sent and GCS's copy"
        )
    if isinstance(
        exc,
        gexc.TooManyRequests
        | gexc.InternalServerError
        | gexc.BadGateway
        | gexc.ServiceUnavailable
        | gexc.GatewayTimeout
        | gexc.RetryError
        | requests.ConnectionError
        | requests.Timeout
        | auth_exc.TransportError,
    ):
        return errors.TransientError(f"{what}: GCS unavailable ({type(exc).__name__})")
    if isinstance(exc, gexc.BadRequest):
        return errors.InputError(f"{what}: GCS rejected the request ({_code(exc)})")
    if isinstance(exc, gexc.GoogleAPICallError):
        return errors.BackendError(f"{what}: GCS error {_code(exc)}")
    return errors.BackendError(f"{what}: {type(exc).__name__}")


def _code(exc: gexc.GoogleAPICallError) -> str:
    message = str(getattr(exc, "message", "") or "").strip()
    return f"{exc.code} {message[:200]}".strip()


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, requests.RequestException) as exc:
        raise _map_error(exc, what) from exc
    except (DataCorruption, InvalidResponse) as exc:
        raise _map_error(exc, what) from exc


# -- URLs ---------------------------------------------------------------------------------------


def new_client() -> storage.Client:
    """A fresh client from the current environment: anonymous credentials against an emulator
    (``STORAGE_EMULATOR_HOST``), Application Default Credentials otherwise."""
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=project or "emulator", credentials=AnonymousCredentials())
    return _call("GCS client", lambda: storage.Client(project=project))


# -- the store ----------------------------------------------------------------------------------


def _time(value: datetime | None) -> datetime:
    return value if value is not None else datetime.fromtimestamp(0, UTC)


class GcsStore(_copy.Copying):
    """A bucket prefix as an object store. See the module docstring."""

    def __init__(self, bucket: str, prefix: str, client: storage.Client | None = None) -> None:
        self._client = client if client is not None else new_client()
        self._bucket_name = bucket
        self._prefix = prefix
        self._bucket = self._client.bucket(bucket)
        self._settings: storage.Bucket | None = None
        self._kms_key: str | None = None  # CMEK of every write (under_server_side_key)

    @property
    def url(self) -> str:
        return (
            f"gs://{self._bucket_name}/{self._prefix}"
            if self._prefix
            else (f"gs://{self._bucket_name}")
        )

    @property
    def bucket(self) -> str:
        return self._bucket_name

    @property
    def client(self) -> storage.Client:
        return self._client

    def __repr__(self) -> str:
        return f"GcsStore({self.url!r})"

    def _bucket_settings(self) -> storage.Bucket:
        if self._settings is None:
            self._settings = _call(
                f"bucket {self._bucket_name}",
                lambda: self._client.get_bucket(self._bucket_name, retry=DEFAULT_RETRY),
            )
        return self._settings

    @property
    def capabilities(self) -> frozenset[store.Capability]:
        """From the bucket's settings: versioning and soft delete as configured; holds, archive
        storage class, batch delete and create-only writes exist on every bucket."""
        bucket = self._bucket_settings()
        caps = {
            store.Capability.OBJECT_LOCK,
            store.Capability.ARCHIVE_TIER,
            store.Capability.BATCH_DELETE,
            store.Capability.CONDITIONAL_CREATE,
            store.Capability.LIFECYCLE,
        }
        if bucket.versioning_enabled:
            caps.add(store.Capability.VERSIONING)
        if _soft_delete_seconds(bucket):
            caps.add(store.Capability.SOFT_DELETE)
        return frozenset(caps)

    # -- lifecycle rules (LifecycleRules) -------------------------------------------------------

    def lifecycle_scope(self, prefix: str = "") -> str:
        """The rules' ``matchesPrefix``: the location's root with its trailing ``/`` (so that
        ``models/a/`` never matches ``models/ab``), ``""`` for a whole bucket."""
        return self._list_prefix(prefix)

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        return self._lifecycle()[0]

    def own_lifecycle_rules(
        self, rules: Sequence[dict[str, Any]], rule_id: str
    ) -> list[dict[str, Any]]:
        """Sundown's rules for this scope found in ``rules`` (GCS rules carry no ID: by
        content)."""
        return _lifecycle.occurrences(rules, lifecycle_rules(self.lifecycle_scope()))

    def _lifecycle(self) -> tuple[list[dict[str, Any]], storage.Bucket]:
        """The bucket's rules as the JSON API returns them (unknown rule types included: the
        SDK's ``lifecycle_rules`` would drop them, and a write would lose them), and the bucket
        read (its metageneration and labels)."""
        name = self._bucket_name
        bucket = _call(
            f"read the lifecycle rules of gs://{name}",
            lambda: self._client.get_bucket(name, retry=DEFAULT_RETRY),
        )
        rules = (bucket._properties.get("lifecycle") or {}).get("rule") or []
        return [dict(r) for r in rules], bucket

    def add_lifecycle_rule(
        self, rule_id: str, prefix: str = ""
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        mine = lifecycle_rules(self.lifecycle_scope(prefix))
        label = lifecycle_label(rule_id)

        def add(rules: list[dict[str, Any]], bucket: storage.Bucket) -> list[dict[str, Any]] | None:
            if _labelled(bucket, label):
                if _lifecycle.count(_lifecycle.occurrences(rules, mine)) != _lifecycle.count(mine):
                    raise errors.ConflictError(
                        f"gs://{self._bucket_name}: the label {label} says Sundown's lifecycle "
                        "rules were added, and they are not all there (changed by someone "
                        "else); nothing was changed"
                    )
                return None  # already added (a re-run)
            if len(rules) + len(mine) > MAX_LIFECYCLE_RULES:
                raise errors.ConflictError(
                    f"gs://{self._bucket_name} has {len(rules)} lifecycle rules: adding "
                    f"Sundown's {len(mine)} would pass GCS's {MAX_LIFECYCLE_RULES}"
                )
            return [*rules, *mine]

        return self._change_rules(add, label, present=True)

    def remove_lifecycle_rule(
        self, rule_id: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        mine = lifecycle_rules(self.lifecycle_scope())
        label = lifecycle_label(rule_id)

        def remove(
            rules: list[dict[str, Any]], bucket: storage.Bucket
        ) -> list[dict[str, Any]] | None:
            if not _labelled(bucket, label):
                return None  # never added, or removed already
            return _lifecycle.without(rules, mine)

        return self._change_rules(remove, label, present=False)

    def _change_rules(
        self, change: Any, label: str, *, present: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One PATCH of the bucket's ``lifecycle`` and the label naming Sundown's rules, guarded
        by ``ifMetagenerationMatch`` on the metageneration read with the rules: a concurrent
        change of the bucket's metadata makes GCS refuse it (412), and Sundown starts over from
        a fresh read. The configuration is read back after the write (connectors/_lifecycle)."""
        where = f"gs://{self._bucket_name}"

        def write(rules: list[dict[str, Any]], bucket: storage.Bucket) -> bool:
            labels = dict(bucket.labels or {})
            if present:
                labels[label] = "1"
            else:
                labels.pop(label, None)
            bucket.lifecycle_rules = rules
            bucket.labels = labels
            try:
                bucket.patch(if_metageneration_match=bucket.metageneration, retry=DEFAULT_RETRY)
            except gexc.PreconditionFailed:
                return False
            except (gexc.GoogleAPIError, requests.RequestException) as exc:
                raise _map_error(exc, f"write the lifecycle rules of {where}") from exc
            return True

        return _lifecycle.change_rules(where, self._lifecycle, write, change)

    # -- names ----------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return store.join_key(self._prefix, store.check_key(key))

    def _entry_name(self, key: str) -> str:
        return store.entry_name(self._prefix, key, self.url)

    def _what(self, key: str, version_id: str | None = None) -> str:
        suffix = f" generation {version_id}" if version_id else ""
        return f"{self.url}/{key}{suffix}"

    def _blob(self, key: str, version_id: str | None = None) -> storage.Blob:
        return self._bucket.blob(self._entry_name(key), generation=_generation(version_id))

    def _info(self, key: str, blob: storage.Blob) -> store.ObjectInfo:
        return store.ObjectInfo(
            key=key,
            size=int(blob.size or 0),
            modified=_time(blob.updated),
            version_id=str(blob.generation) if blob.generation is not None else None,
            etag=blob.etag,
            storage_class=blob.storage_class,
            metadata=dict(blob.metadata or {}),
        )

    # -- ObjectStore ----------------------------------------------------------------------------

    def under_server_side_key(self, key: str) -> GcsStore:
        """This store, every write under the Cloud KMS key ``key`` (``gcp-kms://projects/...``,
        CMEK): each upload names it (``kmsKeyName``), and a write GCS reports under another key
        or none (its ``kmsKeyName`` without the ``/cryptoKeyVersions/N`` suffix) raises
        IntegrityError."""
        name = writer_key(self.url, key, "gcp")
        other = GcsStore(self._bucket_name, self._prefix, self._client)
        other._kms_key = name
        return other

    def _check_cmek(self, what: str, blob: storage.Blob) -> None:
        if self._kms_key is None:
            return
        reported = blob.kms_key_name
        if reported is None or key_name(str(reported), "gcp") != self._kms_key:
            raise errors.IntegrityError(
                f"put {what}: asked for CMEK under {self._kms_key}, GCS reports "
                + (f"{str(reported)[:300]!r}" if reported else "no kmsKeyName (Google-managed)")
            )

    def put(
        self,
        key: str,
        data: store.PutData,
        *,
        if_absent: bool = False,
        metadata: store.Metadata | None = None,
    ) -> store.ObjectInfo:
        blob = self._bucket.blob(self._name(key), chunk_size=_CHUNK, kms_key_name=self._kms_key)
        if metadata:
            blob.metadata = dict(metadata)
        head, rest = _streams.peek(data, _CHUNK)
        conditions: dict[str, Any] = {"if_generation_match": 0} if if_absent else {}
        what = self._what(key)
        if len(head) < _CHUNK:
            # The whole object is in hand: one multipart request with its CRC32C.
            retry = {} if if_absent else {"retry": DEFAULT_RETRY}
            _call(
                what,
                lambda: blob.upload_from_file(
                    io.BytesIO(head),
                    size=len(head),
                    checksum="crc32c",
                    content_type="application/octet-stream",
                    **conditions,
                    **retry,
                ),
            )
        else:
            # A resumable upload in 8 MiB chunks through the SDK's BlobWriter (it keeps the
            # current chunk to resend on a retry); the final CRC32C is checked against the
            # server's. On an error the upload session is cancelled, never finalized.
            def upload() -> None:
                with blob.open(
                    "wb",
                    chunk_size=_CHUNK,
                    ignore_flush=True,
                    checksum="crc32c",
                    content_type="application/octet-stream",
                    **conditions,
                ) as out:
                    out.write(head)
                    for chunk in rest:
                        out.write(chunk)

            _call(what, upload)
            _call(what, lambda: blob.reload(retry=DEFAULT_RETRY))
        self._check_cmek(what, blob)
        return self._info(key, blob)

    def _found(self, key: str, version_id: str | None) -> storage.Blob:
        """The blob of ``key`` (the current generation, or ``version_id``); NotFoundError."""
        what = self._what(key, version_id)
        found = _call(
            what,
            lambda: self._bucket.get_blob(
                self._entry_name(key), generation=_generation(version_id), retry=DEFAULT_RETRY
            ),
        )
        if found is None:
            raise errors.NotFoundError(f"{what}: not found")
        return found

    def open(self, key: str, version_id: str | None = None) -> BinaryIO:
        what = self._what(key, version_id)
        found = self._found(key, version_id)
        # A fresh Blob pinned to the generation found (no mediaLink: the URL carries it).
        pinned = self._bucket.blob(self._entry_name(key), generation=found.generation)
        sdk = pinned.open("rb", chunk_size=_CHUNK, retry=DEFAULT_RETRY)
        return _streams.reader(
            _streams.read_chunks(sdk, _CHUNK),
            guard=lambda read: _call(what, read),
            on_close=sdk.close,
        )

    def head(self, key: str, version_id: str | None = None) -> store.ObjectInfo:
        return self._info(key, self._found(key, version_id))

    def _list_prefix(self, prefix: str) -> str:
        prefix = store.check_prefix(prefix)
        full = store.join_key(self._prefix, prefix) if prefix else self._prefix
        return full + "/" if full else ""

    def _listing(
        self, prefix: str, what: str, key_range: KeyRange | None = None, **flags: str
    ) -> Iterator[tuple[str, storage.Blob]]:
        """(key relative to the root, blob) of a paginated listing under ``prefix``. ``flags``:
        the JSON API's listing switches (``versions``, ``soft_deleted``), as ``"true"``, not
        True: the API's boolean spelling (some servers ignore "True"). ``key_range``: only its
        keys, from ``startOffset`` (inclusive: its lower bound itself is dropped here) to the
        first name past it (the JSON API lists in name order)."""
        full = self._list_prefix(prefix)
        start: dict[str, str] = {}
        if key_range is not None and key_range.after is not None:
            start["start_offset"] = store.join_entry_key(self._prefix, key_range.after)
        pages = self._client.list_blobs(
            self._bucket_name,
            prefix=full or None,
            page_size=_PAGE,
            retry=DEFAULT_RETRY,
            **start,
            **flags,
        )
        for blob in _iterate(f"{what} {self.url}", pages):
            rel = store.relative_key(self._prefix, blob.name)
            if rel is None:  # (the server filtered by prefix)
                continue
            if key_range is not None and key_range.past(rel):
                break
            if key_range is None or key_range.contains(rel):
                yield rel, blob

    def list(self, prefix: str = "") -> Iterator[store.ObjectInfo]:
        for rel, blob in self._listing(prefix, "listing"):
            yield self._info(rel, blob)

    def delete(self, key: str, version_id: str | None = None) -> None:
        """Delete the live object (on a versioned bucket it becomes noncurrent), or exactly one
        generation when ``version_id`` is given."""
        blob = self._blob(store.check_key(key), version_id)  # odd names: purge only
        _call(
            self._what(key, version_id),
            lambda: blob.delete(retry=DEFAULT_RETRY if version_id else None),
        )

    # -- Inventory ------------------------------------------------------------------------------

    def inventory(self, prefix: str = "") -> Iterator[store.Entry]:
        """Every generation under the root, then every soft-deleted generation (when the bucket
        has a soft-delete policy). Paginated."""
        return self._inventory(prefix, None)

    # Planning lists a location in key ranges here (sundown/ranges.py): both listings in name
    # order, merged; each starts at its range (startOffset).
    plans_in_ranges = True

    def inventory_range(
        self, key_range: KeyRange, *, encryption: bool = False
    ) -> Iterator[store.Entry]:
        """``inventory()`` of the keys in ``key_range`` (docs/stores.md, "Key ranges"; the
        listing carries each copy's encryption, whatever ``encryption`` says)."""
        return self._inventory("", key_range)

    def key_prefixes(self) -> builtins.list[str]:
        """One level of a delimiter walk of the root (``delimiter=/``)."""
        full = self._list_prefix("")
        pages = self._client.list_blobs(
            self._bucket_name, prefix=full or None, delimiter="/", page_size=_PAGE,
            retry=DEFAULT_RETRY,
        )  # fmt: skip
        names = [blob.name for blob in _iterate(f"walk of {self.url}", pages)]
        names += list(pages.prefixes)  # known once every page was read
        return sorted({rel for rel in (store.relative_key(self._prefix, n) for n in names) if rel})

    def _inventory(self, prefix: str, key_range: KeyRange | None) -> Iterator[store.Entry]:
        """Generations and soft-deleted generations merged in name order (each listing is in
        name order): one order, so that a location listed in key ranges makes the same plan
        as a plain listing (sundown/ranges.py)."""
        live, deleted = self._live(prefix, key_range), self._soft_deleted(prefix, key_range)
        return heapq.merge(live, deleted, key=attrgetter("key"))

    def _live(self, prefix: str, key_range: KeyRange | None) -> Iterator[store.Entry]:
        now = datetime.now(UTC)
        for rel, blob in self._listing(prefix, "inventory of", key_range, versions="true"):
            live = blob.time_deleted is None
            yield self._entry(
                rel, blob, store.EntryKind.OBJECT if live else store.EntryKind.VERSION, now
            )

    def _soft_deleted(self, prefix: str, key_range: KeyRange | None) -> Iterator[store.Entry]:
        # Whatever the bucket's current policy: a policy switched off (or shortened) after a
        # delete leaves the copies soft-deleted under it restorable until their hardDeleteTime.
        now = datetime.now(UTC)
        deleted = self._listing(prefix, "soft-deleted inventory of", key_range, soft_deleted="true")
        for rel, blob in deleted:
            # Only what the server marks soft-deleted: a server that ignores the parameter and
            # returns live objects must not make them look soft-deleted.
            if blob.soft_delete_time is not None:
                yield self._entry(rel, blob, store.EntryKind.SOFT_DELETED, now)

    def _entry(
        self, key: str, blob: storage.Blob, kind: store.EntryKind, now: datetime
    ) -> store.Entry:
        hard = blob.hard_delete_time if kind is store.EntryKind.SOFT_DELETED else None
        return store.Entry(
            hard_delete_at=hard,
            key=key,
            version_id=str(blob.generation),
            kind=kind,
            size=int(blob.size or 0),
            modified=_time(blob.updated or blob.time_created),
            is_latest=kind is store.EntryKind.OBJECT,
            storage_class=blob.storage_class,
            hold=_hold_state(blob, self._bucket_settings(), now),
            encryption=_encryption(blob),
        )

    def purge(
        self, entries: Sequence[store.Entry], *, bypass_governance: bool = False
    ) -> store.PurgeResult:
        """Delete exactly these generations, 100 per batch request. ``bypass_governance`` has no
        GCS meaning (holds and retention policies cannot be bypassed by a delete)."""
        names: list[tuple[store.Entry, str, int]] = []
        for entry in entries:  # validate everything before deleting anything
            if entry.kind not in (
                store.EntryKind.OBJECT,
                store.EntryKind.VERSION,
                store.EntryKind.SOFT_DELETED,
            ):
                raise errors.InputError(f"{self.url} has no {entry.kind} entries: {entry.key!r}")
            generation = _generation(entry.version_id)
            if generation is None:
                raise errors.InputError(
                    f"purge needs the generation of every entry; {entry.key!r} in {self.url} "
                    "has none (take it from inventory())"
                )
            names.append((entry, self._entry_name(entry.key), generation))
        run = _purge.PurgeRun[tuple[store.Entry, str, int]](lambda item: item[0])
        pending: list[tuple[store.Entry, str, int]] = []
        for item in names:
            if item[0].kind is store.EntryKind.SOFT_DELETED:
                # A soft-deleted generation cannot be deleted; it expires with the window.
                run.result.held.append(item[0])
            else:
                pending.append(item)
        run.run(pending, BATCH_LIMIT, self._purge_batch)
        return run.result

    def _purge_batch(self, items: Sequence[tuple[store.Entry, str, int]]) -> store.PurgeResult:
        def send() -> list[requests.Response]:
            batch = self._client.batch(raise_exception=False)
            with batch:
                for _entry, name, generation in items:
                    self._bucket.delete_blob(name, generation=generation)
            return list(batch._responses)

        try:
            responses = gretry.Retry(predicate=gretry.if_transient_error, timeout=120)(send)()
        except (
            gexc.GoogleAPIError,
            auth_exc.GoogleAuthError,  # credentials that cannot be refreshed mid-purge
            requests.RequestException,
            ValueError,
        ) as exc:
            # The batch as a whole failed (or its answer could not be read): nothing is known
            # about its items; the re-listing is the proof anyway.
            message = f"batch request failed: {_map_error(exc, self.url)}"
            raise _purge.BatchFailed(type(exc).__name__, message) from exc
        if len(responses) != len(items):
            message = f"batch answered {len(responses)} of {len(items)} deletes"
            raise _purge.BatchFailed("BatchMismatch", message)
        result = store.PurgeResult(requests=1)
        for (entry, _name, _generation), response in zip(items, responses, strict=True):
            outcome, code, message = classify_delete(response.status_code, _response_text(response))
            if outcome == "deleted":
                result.deleted.append(entry)
            elif outcome == "held":
                result.held.append(entry)
            else:
                result.failed.append(store.PurgeFailure(entry, code, message))
        return result

    def soft_delete_policy(self) -> store.SoftDeletePolicy:
        seconds = _soft_delete_seconds(self._bucket_settings())
        return store.SoftDeletePolicy(
            seconds or None,
            f"bucket {self._bucket_name} soft_delete_policy.retention_duration_seconds",
        )

    def replication(self) -> store.Replication:
        """From the bucket resource (shared with ``capabilities``): a dual- or multi-region
        bucket keeps each object in more than one region. GCS's object namespace is one and
        strongly consistent across them: a delete removes the object in every region, and the
        re-listing that verifies a retirement reads that one namespace. So no replica is out of
        the retirement's reach; the redundancy is recorded (the media in each region are
        Google's, as in a single region)."""
        try:
            bucket = self._bucket_settings()
        except errors.SundownError as exc:
            return store.Replication(note=f"bucket resource not read: {exc}")
        kind = str(bucket.location_type or "region").lower()
        where = str(bucket.location or "?")
        regions = bucket.data_locations or []
        text = f"gcp {kind} {where}" + (f" ({', '.join(regions)})" if regions else "")
        if kind in ("dual-region", "multi-region"):
            text += ": one namespace across regions; deletes and listings cover every region"
        return store.Replication(redundancy=text)

    # -- Placed ---------------------------------------------------------------------------------

    def placement(self) -> store.Placement:
        """From the bucket resource (one ``GET`` of the bucket, shared with ``capabilities``):
        its project number as the account (the project that owns the bucket) and its
        ``location`` as the region (lower case, with the location type when it is not a
        single region: ``"eu (multi-region)"``). Without a project number the client's
        project is given instead, named as such. If the bucket cannot be read (refused, gone,
        unreachable): account and region ``None``, the reason in the note."""
        try:
            bucket = self._bucket_settings()
        except errors.SundownError as exc:  # refused, gone, unreachable: say so, do not fail
            return store.Placement("gcp", None, None, f"bucket resource not read: {exc}", "project")
        number = str(bucket.project_number or "")
        if number and number != "0":
            account, kind, note = number, "project number", None
        else:
            account, kind = self._client.project, "client project"
            note = f"the bucket resource of {self._bucket_name} gave no project number"
        region: str | None = None
        if bucket.location:
            region = str(bucket.location).lower()
            kind_of_location = str(bucket.location_type or "region")
            if kind_of_location != "region":
                region += f" ({kind_of_location})"
        else:
            note = "; ".join(
                filter(None, [note, f"the bucket resource of {self._bucket_name} gave no location"])
            )
        return store.Placement("gcp", account or None, region, note or None, kind)

    # -- Copier ---------------------------------------------------------------------------------

    def _check_class(self, name: str | None) -> str | None:
        return _storage_class(name)

    def _server_copy(self, job: _copy.CopyJob) -> store.ObjectInfo | None:
        """Server-side rewrite into another GCS location (optionally another storage class)."""
        dest = job.dest
        if not isinstance(dest, GcsStore):
            return None
        source = self._blob(job.key, job.version_id)
        target = dest._bucket.blob(dest._name(job.dest_key))
        if job.storage_class is not None:
            target.storage_class = job.storage_class
        what = f"copy {self._what(job.key, job.version_id)} -> {dest._what(job.dest_key)}"
        token: str | None = None

        def step() -> str | None:
            answer = target.rewrite(source, token=token, retry=DEFAULT_RETRY)
            return cast("str | None", answer[0])

        while True:  # a rewrite of a large object answers in steps, each with a token
            token = _call(what, step)
            if token is None:
                break
        return dest._info(job.dest_key, target)


def _response_text(response: requests.Response) -> str:
    try:
        return response.text or ""
    except Exception:  # pragma: no cover - undecodable body
        return ""


def classify_delete(status: int, body: str) -> tuple[str, str, str]:
    """One batch sub-response -> ("deleted" | "held" | "failed", code, message).

    404 counts as deleted (that generation is already gone; the re-listing is the proof). A 403
    that names a hold or a retention period is "held": GCS answers so for temporary and
    event-based holds, bucket retention policies and object retention."""
    if 200 <= status < 300 or status == 404:
        return "deleted", str(status), ""
    message = _error_message(body)
    if status == 403 and re.search(r"hold|retention|retain", message, re.IGNORECASE):
        return "held", str(status), message
    return "failed", str(status), message or f"HTTP {status}"


def _error_message(body: str) -> str:
    import json

    try:
        error = json.loads(body).get("error", {})
        return str(error.get("message", ""))[:300]
    except (ValueError, AttributeError):
        return body[:300]


def _iterate(what: str, pages: Iterable[T]) -> Iterator[T]:
    """A paginated listing's items, with errors met while paging mapped (:func:`_call`)."""
    return _streams.guarded(pages, lambda step: _call(what, step))


MAX_LIFECYCLE_RULES = 100  # GCS's limit of lifecycle rules per bucket


def lifecycle_rules(scope: str) -> list[dict[str, Any]]:
    """Sundown's rules expiring every copy under ``scope`` (``matchesPrefix``; none for a whole
    bucket): every object at age 0 (the live generation is deleted, becoming noncurrent on a
    versioned bucket), every noncurrent generation from the day it became noncurrent, and
    incomplete XML multipart uploads after a day. GCS runs lifecycle actions asynchronously,
    typically within a day; soft-deleted generations then wait out the soft-delete window."""
    where = {"matchesPrefix": [scope]} if scope else {}
    return [
        {"action": {"type": "Delete"}, "condition": {"age": 0, **where}},
        {
            "action": {"type": "Delete"},
            "condition": {"isLive": False, "daysSinceNoncurrentTime": 0, **where},
        },
        {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 1, **where}},
    ]


def lifecycle_label(rule_id: str) -> str:
    """The bucket label that names Sundown's rules (GCS lifecycle rules have no ID; a label
    key is at most 63 lowercase characters): ``sundown-lc-`` and a digest of the rule ID."""
    return "sundown-lc-" + hashlib.sha256(rule_id.encode()).hexdigest()[:40]


def _labelled(bucket: storage.Bucket, label: str) -> bool:
    """The bucket carries the label (a label patched to null is removed on GCS; an emulator
    may keep it with a null value: absent as well)."""
    return bool((bucket.labels or {}).get(label))


def _generation(version_id: str | None) -> int | None:
    if version_id is None:
        return None
    try:
        value = int(version_id)
    except ValueError:
        raise errors.InputError(f"not a GCS generation: {version_id!r} (expected digits)") from None
    if value <= 0:
        raise errors.InputError(f"not a GCS generation: {version_id!r}")
    return value


def _storage_class(name: str | None) -> str | None:
    if name is None:
        return None
    upper = name.upper()
    if upper not in STORAGE_CLASSES:
        raise errors.InputError(
            f"unknown GCS storage class {name!r} (one of {', '.join(STORAGE_CLASSES)})"
        )
    return upper


def _soft_delete_seconds(bucket: storage.Bucket) -> int:
    policy = bucket.soft_delete_policy
    seconds = policy.retention_duration_seconds if policy is not None else None
    return int(seconds or 0)


def _hold_state(blob: storage.Blob, bucket: storage.Bucket, now: datetime) -> store.HoldState:
    mode: str | None = None
    until: datetime | None = None
    expiry = blob.retention_expiration_time  # from the bucket's retention policy
    if expiry is not None and expiry > now:
        mode = "LOCKED" if bucket.retention_policy_locked else "UNLOCKED"
        until = expiry
    retention = blob.retention  # object retention (mode "Locked" / "Unlocked")
    own_until = retention.retain_until_time if retention is not None else None
    if own_until is not None and own_until > now and (until is None or own_until > until):
        mode = str(retention.mode or "UNLOCKED").upper()
        until = own_until
    return store.HoldState(
        retention_mode=mode,
        retain_until=until,
        event_based_hold=bool(blob.event_based_hold),
        temporary_hold=bool(blob.temporary_hold),
    )


def account_of(url: str) -> str:
    """The account ``url`` belongs to as this environment names it, without a request:
    ``gs-<emulator host>`` (``STORAGE_EMULATOR_HOST``), ``gs-google`` for Google itself."""
    return f"gs-{_env.endpoint_host('STORAGE_EMULATOR_HOST') or 'google'}"


def _encryption(blob: storage.Blob) -> store.ServerSideEncryption:
    """A generation's encryption as the listing reports it: ``kmsKeyName`` (CMEK, with its
    ``/cryptoKeyVersions/N``), ``customerEncryption`` (a key the caller supplied: its SHA-256),
    else a Google-managed key."""
    if blob.kms_key_name:
        return store.ServerSideEncryption("cmek", str(blob.kms_key_name))
    supplied = blob._properties.get("customerEncryption")
    if isinstance(supplied, dict):
        return store.ServerSideEncryption("csek", str(supplied.get("keySha256") or "") or None)
    return store.ServerSideEncryption("google-managed")


def open_store(url: str) -> GcsStore:
    bucket, prefix = parse_bucket_url(url, "gs")
    return GcsStore(bucket, prefix)
