"""The ``s3://bucket/prefix`` object store (Amazon S3 and S3-compatible endpoints).

``open_store("s3://bucket/models/a")`` is rooted at the prefix ``models/a``: keys are relative to
it and every listing asks S3 for ``Prefix="models/a/"``, so ``models/ab/...`` is never seen or
touched (path-boundary scoping). Credentials, region and endpoint come from boto3's standard
chain, read when the store is opened (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, profiles,
instance roles, ...): each store object builds its own session and client; nothing is cached
across stores, so a rotated or revoked credential never lives on here.

Retries are botocore's ``standard`` mode (bounded attempts; ``AWS_RETRY_MODE`` and
``AWS_MAX_ATTEMPTS`` override it). Errors are mapped to :mod:`sundown.errors`.

Capabilities are read from the bucket on first use, conservatively: versioning "Enabled" or
"Suspended" (old versions may exist) gives ``VERSIONING``; an object lock configuration (or
being refused permission to read it) gives ``OBJECT_LOCK``. S3 has batch delete, create-only
writes (``If-None-Match: *``) and archive storage classes; it has no soft delete.

Inventory lists every version and delete marker (``ListObjectVersions``) and every incomplete
multipart upload (``ListMultipartUploads``), page by page. On a bucket with object lock it reads
each version's legal hold and retention (``GetObjectLegalHold``, ``GetObjectRetention``). Purge
sends ``DeleteObjects`` with exact key and version id, 1000 per request, reads every per-item
result, and aborts the multipart uploads listed; nothing is ever deleted by prefix and no
version is deleted that the caller did not list. A request refused or failed as a whole stops
the purge, its versions failed and the rest not sent (connectors/_purge.py). ``DeleteObjects``
reports a missing version as deleted, so the purge result is not the proof: inventory again.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import functools
import heapq
import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

import botocore.exceptions
from botocore.config import Config

from connectors import _aws, _copy, _env, _purge, _streams
from sundown.errors import (
    BackendError,
    ConflictError,
    InputError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    SundownError,
    TransientError,
    UnsupportedError,
)
from sundown.ranges import KeyRange, entry_order, key_ordered
from sundown.sse import writer_key
from sundown.store import (
    Capability,
    Entry,
    EntryKind,
    HoldState,
    Metadata,
    ObjectInfo,
    Placement,
    PurgeFailure,
    PurgeResult,
    PutData,
    ReplicaTarget,
    Replication,
    ServerSideEncryption,
    SoftDeletePolicy,
    addressable_entry_key,
    check_key,
    check_prefix,
    entry_name,
    join_entry_key,
    join_key,
    relative_key,
)
from sundown.store_url import parse_bucket_url

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

log = logging.getLogger(__name__)
T = TypeVar("T")

DELETE_BATCH = 1000  # DeleteObjects' limit per request
PAGE_SIZE = 1000  # keys per listing page (S3's maximum)
PART_SIZE = 8 * 1024 * 1024  # first multipart part size; S3's minimum is 5 MiB
MAX_PARTS = 10_000
MAX_COPY_OBJECT = 5 * 1024**3  # CopyObject's limit; larger objects use a multipart copy
UPLOAD_CONCURRENCY = 4  # parts in flight (memory: about (UPLOAD_CONCURRENCY + 1) parts)
HOLD_PROBE_CONCURRENCY = 8
ENCRYPTION_PROBE_CONCURRENCY = 16  # HeadObject requests in flight to read SSE (per inventory)
PURGE_CONCURRENCY = 4  # DeleteObjects requests in flight
DEFAULT_MAX_ATTEMPTS = 5

STORAGE_CLASSES = frozenset(
    {
        "STANDARD",
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "REDUCED_REDUNDANCY",
        "GLACIER",
        "GLACIER_IR",
        "DEEP_ARCHIVE",
    }
)


_NOT_FOUND = {"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "NoSuchUpload", "NotFound", "404"}
_DENIED = {
    "AccessDenied",
    "403",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AccountProblem",
}
_CONFLICT = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
_TRANSIENT = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "InternalError",
    "OperationAborted",
}


#: One listed page: its versions, their encryption probes (None: not probed), its markers.
_Page = tuple[list[Entry], "list[Future[ServerSideEncryption]] | None", list[Entry]]


class _RangeListing:
    """One listing's scope: where it starts (``KeyMarker`` after the range's lower bound), which
    keys it passes on (under the root, in the range), and when a page shows it may stop."""

    def __init__(self, root: str, key_range: KeyRange | None) -> None:
        self.root, self.key_range = root, key_range
        self.start: dict[str, Any] = {}
        if key_range is not None and key_range.after is not None:
            self.start["KeyMarker"] = join_entry_key(root, key_range.after)

    def wanted(self, full: str) -> str | None:
        rel = relative_key(self.root, full)
        if rel is None or (self.key_range is not None and not self.key_range.contains(rel)):
            return None
        return rel

    def past(self, page: Any, *lists: str) -> bool:
        if self.key_range is None:
            return False
        keys = [item["Key"] for name in lists for item in page.get(name, [])]
        last = relative_key(self.root, max(keys)) if keys else None
        return last is not None and self.key_range.past(last)


# -- errors --------------------------------------------------------------------------------------


def _error_code(exc: botocore.exceptions.ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return str(error.get("Code", "") or status), status


def _map_error(exc: Exception, what: str) -> Exception:
    """The sundown error for a botocore failure while doing ``what`` (names the object, never
    a credential)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code, status = _error_code(exc)
        message = f"{what}: {code}"
        if code in _NOT_FOUND or status == 404:
            return NotFoundError(message)
        if code in _DENIED or status == 403:
            return PermissionDeniedError(message)
        if code in _CONFLICT or status in (409, 412):
            return ConflictError(message)
        if code in _TRANSIENT or status >= 500 or status == 429:
            return TransientError(f"{message} (after retries)")
        return BackendError(message)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return PermissionDeniedError(f"{what}: no AWS credentials found in the environment")
    if isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectionError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectTimeoutError,
    ):
        return TransientError(f"{what}: {type(exc).__name__} (after retries)")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return BackendError(f"{what}: {type(exc).__name__}: {exc}")
    return exc


def _batch_failed(exc: Exception, what: str) -> _purge.BatchFailed:
    """A whole purge request's failure as the purge contract reports it (connectors/_purge.py)."""
    code = _error_code(exc)[0] if isinstance(exc, botocore.exceptions.ClientError) else ""
    return _purge.BatchFailed(code or type(exc).__name__, str(_map_error(exc, what)))


def _guarded(what: str, read: Callable[[], T]) -> T:
    with _errors(what):
        return read()


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise _map_error(exc, what) from exc


# -- lifecycle rules (purge_by: lifecycle) -------------------------------------------------------

LIFECYCLE_RETRIES = 3
# PutBucketLifecycleConfiguration's TransitionDefaultMinimumObjectSize values (the API reference)
TRANSITION_MINIMUMS = ("varies_by_storage_class", "all_storage_classes_128K")


def lifecycle_rule(rule_id: str, scope: str) -> dict[str, Any]:
    """The rule that expires every copy under ``scope`` (a prefix ending in ``/``, or ``""`` for
    a whole bucket): current versions after 1 day (with ``Days``, S3 also removes expired object
    delete markers; the API refuses ``ExpiredObjectDeleteMarker`` beside ``Days`` in one rule),
    noncurrent versions 1 day after they become noncurrent (the API minimum), and incomplete
    multipart uploads 1 day after initiation."""
    if scope and not scope.endswith("/"):
        raise InputError(f"lifecycle scope {scope!r} must end with '/' (a path boundary)")
    return {
        "ID": rule_id,
        "Filter": {"Prefix": scope},
        "Status": "Enabled",
        "Expiration": {"Days": 1},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def merge_rule(rules: Sequence[dict[str, Any]], rule: dict[str, Any]) -> list[dict[str, Any]]:
    """``rules`` with ``rule`` added; every other rule kept as it is. The same rule already there
    is kept once (a re-run adds nothing); another rule under the same ID is a ConflictError
    (never overwritten: it may be someone else's)."""
    out = [dict(r) for r in rules]
    same = [r for r in out if r.get("ID") == rule["ID"]]
    if same:
        if all(_same_rule(r, rule) for r in same) and len(same) == 1:
            return out
        raise ConflictError(
            f"a lifecycle rule with ID {rule['ID']!r} already exists with other content; "
            "nothing was changed"
        )
    if len(out) >= 1000:
        raise ConflictError("the bucket already has 1000 lifecycle rules (the S3 maximum)")
    return [*out, dict(rule)]


def without_rule(rules: Sequence[dict[str, Any]], rule_id: str) -> list[dict[str, Any]]:
    """``rules`` without the rule(s) of ID ``rule_id``; every other rule kept as it is."""
    return [dict(r) for r in rules if r.get("ID") != rule_id]


def _same_rule(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("ID", "Filter", "Status", "Expiration", "NoncurrentVersionExpiration")
    return all(
        _norm(a.get(k)) == _norm(b.get(k)) for k in (*keys, "AbortIncompleteMultipartUpload")
    )


def _norm(value: Any) -> Any:
    """A rule part as read back (S3 may add ``Prefix: ""`` or drop defaults) made comparable."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items() if v not in (None, {}, [])}
    return value


def _foreign_lost(
    before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]], own: str
) -> list[str]:
    """IDs of rules other than ``own`` that were in ``before`` and are not, unchanged, in
    ``after``."""
    kept = [r for r in after if r.get("ID") != own]
    return [
        str(r.get("ID"))
        for r in before
        if r.get("ID") != own and not any(_same_rule(r, k) for k in kept)
    ]


# -- URLs ----------------------------------------------------------------------------------------


# -- the store -----------------------------------------------------------------------------------


def _retry_config() -> Config:
    if os.environ.get("AWS_RETRY_MODE") or os.environ.get("AWS_MAX_ATTEMPTS"):
        return Config()  # botocore reads both from the environment
    return Config(retries={"mode": "standard", "total_max_attempts": DEFAULT_MAX_ATTEMPTS})


def new_client() -> S3Client:
    """A fresh S3 client from the standard boto3 chain as the environment is now."""
    config = _retry_config().merge(
        Config(
            max_pool_connections=max(
                UPLOAD_CONCURRENCY, HOLD_PROBE_CONCURRENCY, ENCRYPTION_PROBE_CONCURRENCY
            )
            + 2
        )
    )
    return cast("S3Client", _aws.new_client("s3", config))


class S3Store(_copy.Copying):
    """A bucket prefix as an object store. See the module docstring."""

    def __init__(self, bucket: str, root: str, client: S3Client) -> None:
        self.bucket = bucket
        self.root = root
        self.client = client  # public so that callers (tests, benchmarks) can hook its events
        self.notes: list[str] = []  # gaps met at this endpoint (e.g. an API it lacks)
        self._capabilities: frozenset[Capability] | None = None
        self._retention_via_head = False
        self._lock = threading.Lock()
        self._sse_key: str | None = None  # writes: SSE-KMS under this key ARN (None: default)
        self.encryption_requests = 0  # HeadObject requests of the last encrypted_inventory

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.root}" if self.root else f"s3://{self.bucket}"

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    def _key(self, key: str) -> str:
        return join_key(self.root, check_key(key))

    def _read_key(self, key: str) -> str:
        return entry_name(self.root, key, self.url)

    def _where(self, key: str, version_id: str | None = None) -> str:
        where = f"s3://{self.bucket}/{join_entry_key(self.root, key)}"
        return f"{where} version {version_id}" if version_id else where

    def _scan_prefix(self, prefix: str) -> str:
        full = join_key(self.root, check_prefix(prefix)) if prefix else self.root
        return full + "/" if full else ""

    def _note(self, note: str) -> None:
        with self._lock:
            if note not in self.notes:
                self.notes.append(note)
                log.warning("%s: %s", self.url, note)

    # -- capabilities ---------------------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[Capability]:
        if self._capabilities is None:
            self._capabilities = self._read_capabilities()
        return self._capabilities

    def _read_capabilities(self) -> frozenset[Capability]:
        caps = {
            Capability.BATCH_DELETE,
            Capability.CONDITIONAL_CREATE,
            Capability.ARCHIVE_TIER,
            Capability.LIFECYCLE,
        }
        where = f"s3://{self.bucket}"
        try:
            status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
            if status in ("Enabled", "Suspended"):
                caps.add(Capability.VERSIONING)
        except botocore.exceptions.ClientError as exc:
            mapped = _map_error(exc, f"read versioning of {where}")
            if not isinstance(mapped, PermissionDeniedError):
                raise mapped from exc
            caps.add(Capability.VERSIONING)  # cannot tell: assume old versions may exist
            self._note("not allowed to read bucket versioning; assuming versions may exist")
        except botocore.exceptions.BotoCoreError as exc:
            raise _map_error(exc, f"read versioning of {where}") from exc
        try:
            config = self.client.get_object_lock_configuration(Bucket=self.bucket)
            if config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled":
                caps.add(Capability.OBJECT_LOCK)
        except botocore.exceptions.ClientError as exc:
            code, _ = _error_code(exc)
            if code != "ObjectLockConfigurationNotFoundError":
                mapped = _map_error(exc, f"read object lock configuration of {where}")
                if not isinstance(mapped, PermissionDeniedError):
                    raise mapped from exc
                caps.add(Capability.OBJECT_LOCK)  # cannot tell: assume locks may exist
                self._note("not allowed to read object lock configuration; assuming locks")
        except botocore.exceptions.BotoCoreError as exc:
            raise _map_error(exc, f"read object lock configuration of {where}") from exc
        return frozenset(caps)

    # -- lifecycle rules (LifecycleRules) -------------------------------------------------------

    def lifecycle_scope(self, prefix: str = "") -> str:
        """The rule's prefix filter: the location's root with its trailing ``/`` (so that
        ``models/a/`` never matches ``models/ab``), ``""`` for a whole bucket."""
        return self._scan_prefix(prefix)

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        return self._lifecycle_configuration()[0]

    def _lifecycle_configuration(self) -> tuple[list[dict[str, Any]], str | None]:
        """(the rules, the configuration's ``TransitionDefaultMinimumObjectSize`` or None).
        The setting belongs to the configuration the PUT replaces, so it is read with the rules
        and written back unchanged; a value S3 does not document is untrusted: BackendError."""
        where = f"read the lifecycle configuration of s3://{self.bucket}"
        try:
            got = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc)[0] == "NoSuchLifecycleConfiguration":
                return [], None
            raise _map_error(exc, where) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise _map_error(exc, where) from exc
        minimum = got.get("TransitionDefaultMinimumObjectSize")
        if minimum is not None and minimum not in TRANSITION_MINIMUMS:
            raise BackendError(
                f"{where}: unknown TransitionDefaultMinimumObjectSize {str(minimum)[:80]!r}; "
                "nothing was changed"
            )
        return [dict(r) for r in got.get("Rules", [])], minimum

    def own_lifecycle_rules(
        self, rules: Sequence[dict[str, Any]], rule_id: str
    ) -> list[dict[str, Any]]:
        """The rule(s) of ID ``rule_id``: its ID, filter, status and expiration (what decides
        what it expires)."""
        keys = ("ID", "Filter", "Status", "Expiration")
        return [{k: _norm(r.get(k)) for k in keys} for r in rules if r.get("ID") == rule_id]

    def _put_lifecycle_rules(self, rules: list[dict[str, Any]], minimum: str | None) -> None:
        """PUT ``rules`` with the ``TransitionDefaultMinimumObjectSize`` read (else S3 resets
        it to its default); DELETE when no rule is left (S3 needs one; the setting goes too)."""
        with _errors(f"write the lifecycle configuration of s3://{self.bucket}"):
            if rules:
                extra: dict[str, Any] = {}
                if minimum is not None:
                    extra["TransitionDefaultMinimumObjectSize"] = minimum
                self.client.put_bucket_lifecycle_configuration(
                    Bucket=self.bucket,
                    LifecycleConfiguration={"Rules": rules},  # type: ignore[typeddict-item]
                    **extra,
                )
            else:
                self.client.delete_bucket_lifecycle(Bucket=self.bucket)

    def add_lifecycle_rule(
        self, rule_id: str, prefix: str = ""
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rule = lifecycle_rule(rule_id, self.lifecycle_scope(prefix))
        return self._change_rules(rule_id, lambda rules: merge_rule(rules, rule), present=True)

    def remove_lifecycle_rule(
        self, rule_id: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return self._change_rules(
            rule_id, lambda rules: without_rule(rules, rule_id), present=False
        )

    def _change_rules(
        self, rule_id: str, change: Any, *, present: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Read, change, write, read back. S3 has no precondition on the lifecycle PUT, so the
        guard is as far as the API allows: the configuration is read twice before the write
        (a change in between starts over), and read back after it; a rule of someone else's
        that was there before and is gone after stops the run (ConflictError naming it), and a
        read-back where our change is undone (a concurrent writer's configuration won) retries.
        A foreign write landing between the last read and our PUT is lost undetectably: see
        docs/stores.md."""
        where = f"s3://{self.bucket}"
        for _ in range(LIFECYCLE_RETRIES):
            before, minimum = self._lifecycle_configuration()
            wanted = change(before)
            if _norm(wanted) == _norm(before):
                return before, before  # nothing to change (already added / already removed)
            if _norm(self._lifecycle_configuration()) != _norm((before, minimum)):
                continue  # changed while we computed: start over from a fresh read
            self._put_lifecycle_rules(wanted, minimum)
            after = self.lifecycle_rules()
            lost = _foreign_lost(before, after, rule_id)
            if lost:
                raise ConflictError(
                    f"lifecycle configuration of {where}: rule(s) {', '.join(lost)} written by "
                    "someone else were there before Sundown's write and are gone after it (a "
                    "concurrent change); Sundown stops and changes nothing more: check the "
                    "bucket's lifecycle rules with their owner, then re-run"
                )
            mine = [r for r in after if r.get("ID") == rule_id]
            if bool(mine) == present:
                return before, after
        raise ConflictError(
            f"lifecycle configuration of {where} kept changing under Sundown's write "
            f"({LIFECYCLE_RETRIES} attempts); nothing more was changed: re-run"
        )

    # -- ObjectStore ----------------------------------------------------------------------------

    def put(
        self, key: str, data: PutData, *, if_absent: bool = False, metadata: Metadata | None = None
    ) -> ObjectInfo:
        """Write a stream: one ``PutObject`` up to 8 MiB, else a multipart upload (parts in
        parallel, memory bounded). Every request carries a SHA-256 checksum that S3 verifies.
        ``if_absent``: ``If-None-Match: *`` on the put or on the multipart completion. The
        ``modified`` time returned is this machine's clock at completion (S3 does not return
        one; ``head`` gives S3's)."""
        full = self._key(key)
        where = self._where(key)
        extra: dict[str, Any] = {"Metadata": dict(metadata or {})}
        if self._sse_key is not None:
            extra |= {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._sse_key}
        blocks = _streams.blocks(data, PART_SIZE, double_every=2000)
        first = next(blocks)
        second = next(blocks, None)
        if second is None:
            args: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": full,
                "Body": first,
                "ChecksumAlgorithm": "SHA256",
                **extra,
            }
            if if_absent:
                args["IfNoneMatch"] = "*"
            with _errors(f"put {where}"):
                response = self.client.put_object(**args)
            self._check_sse(where, response)
            return ObjectInfo(
                key=key,
                size=len(first),
                modified=datetime.now(UTC),
                version_id=response.get("VersionId"),
                etag=response.get("ETag"),
                metadata=dict(metadata or {}),
            )
        if if_absent and self._exists(full):  # early answer; the completion decides
            raise ConflictError(f"put {where}: already exists (create-only)")
        return self._multipart(key, full, [first, second], blocks, if_absent, extra)

    def under_server_side_key(self, key: str) -> S3Store:
        """This store, every write SSE-KMS under ``key`` (``aws-kms://<key ARN>``): PutObject
        and CreateMultipartUpload carry ``ServerSideEncryption=aws:kms`` and ``SSEKMSKeyId``,
        and a write S3 reports under anything else raises IntegrityError."""
        name = writer_key(self.url, key, "aws")
        other = S3Store(self.bucket, self.root, self.client)
        other._sse_key = name
        return other

    def _check_sse(self, where: str, response: Any) -> None:
        if self._sse_key is None:
            return
        algorithm, reported = response.get("ServerSideEncryption"), response.get("SSEKMSKeyId")
        if algorithm != "aws:kms" or reported != self._sse_key:
            raise IntegrityError(
                f"put {where}: asked for SSE-KMS under {self._sse_key}, S3 reports "
                f"{algorithm} under {reported}"
            )

    def _exists(self, full: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=full)
        except botocore.exceptions.ClientError as exc:
            if isinstance(_map_error(exc, ""), NotFoundError):
                return False
            raise _map_error(exc, f"head s3://{self.bucket}/{full}") from exc
        return True

    def _multipart(
        self,
        key: str,
        full: str,
        head: list[bytes],
        rest: Iterator[bytes],
        if_absent: bool,
        extra: dict[str, Any],
    ) -> ObjectInfo:
        where = self._where(key)
        with _errors(f"start multipart upload of {where}"):
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=full, ChecksumAlgorithm="SHA256", **extra
            )["UploadId"]
        size = 0
        parts: list[dict[str, Any]] = []
        try:
            with ThreadPoolExecutor(UPLOAD_CONCURRENCY, thread_name_prefix="s3-part") as pool:
                pending: deque[Future[dict[str, Any]]] = deque()
                for number, block in enumerate(itertools.chain(head, rest), start=1):
                    if number > MAX_PARTS:
                        raise InputError(f"put {where}: stream too large for {MAX_PARTS} parts")
                    size += len(block)
                    pending.append(pool.submit(self._part, full, upload_id, number, block))
                    del block
                    while len(pending) >= UPLOAD_CONCURRENCY:
                        parts.append(pending.popleft().result())
                while pending:
                    parts.append(pending.popleft().result())
            complete: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": full,
                "UploadId": upload_id,
                "MultipartUpload": {"Parts": parts},
            }
            if if_absent:
                complete["IfNoneMatch"] = "*"
            with _errors(f"complete multipart upload of {where}"):
                response = self.client.complete_multipart_upload(**complete)
            self._check_sse(where, response)
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            raise
        return ObjectInfo(
            key=key,
            size=size,
            modified=datetime.now(UTC),
            version_id=response.get("VersionId"),
            etag=response.get("ETag"),
            metadata=dict(extra["Metadata"]),
        )

    def _part(self, full: str, upload_id: str, number: int, block: bytes) -> dict[str, Any]:
        with _errors(f"upload part {number} of s3://{self.bucket}/{full}"):
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                PartNumber=number,
                Body=block,
                ChecksumAlgorithm="SHA256",
            )
        part: dict[str, Any] = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumSHA256" in response:
            part["ChecksumSHA256"] = response["ChecksumSHA256"]
        return part

    def open(self, key: str, version_id: str | None = None) -> BinaryIO:
        """A stream of the object; S3's stored checksum is verified by botocore where S3 has a
        full-object checksum (``ChecksumMode=ENABLED``)."""
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._read_key(key),
            "ChecksumMode": "ENABLED",
        }
        if version_id is not None:
            args["VersionId"] = version_id
        with _errors(f"open {self._where(key, version_id)}"):
            response = self.client.get_object(**args)
        body = response["Body"]
        return _streams.reader(
            _streams.read_chunks(body),
            guard=functools.partial(_guarded, f"read {self._where(key, version_id)}"),
            on_close=body.close,
        )

    def head(self, key: str, version_id: str | None = None) -> ObjectInfo:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._read_key(key)}
        if version_id is not None:
            args["VersionId"] = version_id
        with _errors(f"head {self._where(key, version_id)}"):
            response = self.client.head_object(**args)
        return ObjectInfo(
            key=key,
            size=int(response.get("ContentLength", 0)),
            modified=response["LastModified"],
            version_id=response.get("VersionId"),
            etag=response.get("ETag"),
            storage_class=response.get("StorageClass", "STANDARD"),
            metadata=dict(response.get("Metadata", {})),
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        scan = self._scan_prefix(prefix)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=scan, PaginationConfig={"PageSize": PAGE_SIZE}
        )
        with _errors(f"list s3://{self.bucket}/{scan}"):
            for page in pages:
                for item in page.get("Contents", []):
                    rel = relative_key(self.root, item["Key"])
                    if not rel:  # outside the prefix asked (never passed on), or the root's
                        continue  # own folder marker "<root>/" (inventory reports it)
                    yield ObjectInfo(
                        key=rel,
                        size=int(item.get("Size", 0)),
                        modified=item["LastModified"],
                        etag=item.get("ETag"),
                        storage_class=item.get("StorageClass"),
                    )

    def delete(self, key: str, version_id: str | None = None) -> None:
        """Delete the object (on a versioned bucket: add a delete marker) or one version."""
        check_key(key)  # odd names (folder markers, a//b) are purged by inventory entry only
        try:  # S3 reports success for absent keys: NotFoundError here
            self.head(key, version_id)
        except BackendError as exc:  # HEAD of a delete marker's version id answers 405
            if "MethodNotAllowed" not in str(exc) and "405" not in str(exc):
                raise
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if version_id is not None:
            args["VersionId"] = version_id
        with _errors(f"delete {self._where(key, version_id)}"):
            self.client.delete_object(**args)

    # -- Inventory ------------------------------------------------------------------------------

    def inventory(self, prefix: str = "") -> Iterator[Entry]:
        """Every version, delete marker and incomplete multipart upload under the root, page by
        page. On an object-lock bucket each version carries its legal hold and retention."""
        return self._inventory(self._scan_prefix(prefix), None, encryption=False)

    def encrypted_inventory(self, prefix: str = "") -> Iterator[Entry]:
        """:meth:`inventory`, each version's server-side encryption read by ``HeadObject``
        (``ServerSideEncryption``, ``SSEKMSKeyId``: ListObjectVersions does not carry them),
        ``ENCRYPTION_PROBE_CONCURRENCY`` requests in flight per page; the requests are counted
        in :attr:`encryption_requests`. A version that vanished between the listing and its
        HEAD is reported with encryption ``unknown``, never dropped."""
        self.encryption_requests = 0
        return self._inventory(self._scan_prefix(prefix), None, encryption=True)

    # Planning lists a location in key ranges here (sundown/ranges.py): versions, markers and
    # uploads merged in key order, each listing starts at its range.
    plans_in_ranges = True

    def inventory_range(self, key_range: KeyRange, *, encryption: bool = False) -> Iterator[Entry]:
        """``inventory()`` (``encrypted_inventory()`` with ``encryption``) of the keys in
        ``key_range``: both listings start after its lower bound (``KeyMarker``, exclusive, so
        every version of that key is left to the range below) and stop at the first page past
        its upper bound; each key is checked against the range as well (docs/stores.md, "Key
        ranges")."""
        return self._inventory(self._scan_prefix(""), key_range, encryption=encryption)

    def key_prefixes(self) -> builtins.list[str]:
        """One level of a delimiter walk of the root (``ListObjectsV2`` with ``Delimiter``)."""
        scan = self._scan_prefix("")
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=scan, Delimiter="/", PaginationConfig={"PageSize": PAGE_SIZE}
        )
        out: set[str] = set()
        with _errors(f"list s3://{self.bucket}/{scan}"):
            for page in pages:
                names = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
                names += [item["Key"] for item in page.get("Contents", [])]
                for name in names:
                    rel = relative_key(self.root, name)
                    if rel:
                        out.add(rel)
        return sorted(out)

    def _inventory(
        self, scan: str, key_range: KeyRange | None, *, encryption: bool
    ) -> Iterator[Entry]:
        """Versions, delete markers and uploads in key order (sundown/ranges.py: one order
        whatever the page size, so that a location listed in key ranges makes the same plan)."""
        listing = _RangeListing(self.root, key_range)
        return heapq.merge(
            key_ordered(self._version_pages(scan, listing, encryption=encryption)),
            key_ordered(self._upload_pages(scan, listing)),
            key=entry_order,
        )

    def _version_pages(
        self, scan: str, listing: _RangeListing, *, encryption: bool
    ) -> Iterator[builtins.list[Entry]]:
        locked = Capability.OBJECT_LOCK in self.capabilities
        start, wanted, past = listing.start, listing.wanted, listing.past
        pages = self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=scan, PaginationConfig={"PageSize": PAGE_SIZE}, **start
        )
        # With ``encryption``, a page's HEADs run while the next page is listed (at most two
        # pages of entries and futures held): the listing and the probes overlap.
        pool = (
            ThreadPoolExecutor(ENCRYPTION_PROBE_CONCURRENCY, thread_name_prefix="s3-sse")
            if encryption
            else None
        )
        pending: deque[_Page] = deque()
        try:
            with _errors(f"list versions of s3://{self.bucket}/{scan}"):
                for page in pages:
                    versions: list[Entry] = []
                    for item in page.get("Versions", []):
                        rel = wanted(item["Key"])
                        if rel is None:
                            continue
                        latest = bool(item.get("IsLatest", False))
                        versions.append(
                            Entry(
                                key=rel,
                                version_id=item.get("VersionId"),
                                kind=EntryKind.OBJECT if latest else EntryKind.VERSION,
                                size=int(item.get("Size", 0)),
                                modified=item["LastModified"],
                                is_latest=latest,
                                storage_class=item.get("StorageClass"),
                            )
                        )
                    if locked and versions:
                        versions = builtins.list(self._with_holds(versions))
                    markers = [
                        Entry(
                            key=rel,
                            version_id=marker.get("VersionId"),
                            kind=EntryKind.DELETE_MARKER,
                            size=0,
                            modified=marker["LastModified"],
                            is_latest=bool(marker.get("IsLatest", False)),
                        )
                        for marker in page.get("DeleteMarkers", [])
                        if (rel := wanted(marker["Key"])) is not None
                    ]
                    probes = [pool.submit(self._encryption, v) for v in versions] if pool else None
                    pending.append((versions, probes, markers))
                    while len(pending) > (1 if pool else 0):
                        yield builtins.list(self._settled(pending.popleft()))
                    if past(page, "Versions", "DeleteMarkers"):
                        break
                while pending:
                    yield builtins.list(self._settled(pending.popleft()))
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _upload_pages(self, scan: str, listing: _RangeListing) -> Iterator[builtins.list[Entry]]:
        start, wanted, past = listing.start, listing.wanted, listing.past
        uploads = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=scan, PaginationConfig={"PageSize": PAGE_SIZE}, **start
        )
        with _errors(f"list multipart uploads of s3://{self.bucket}/{scan}"):
            for upload_page in uploads:
                yield [
                    Entry(
                        key=rel,
                        version_id=upload["UploadId"],
                        kind=EntryKind.MULTIPART_UPLOAD,
                        size=0,
                        modified=upload["Initiated"],
                        storage_class=upload.get("StorageClass"),
                    )
                    for upload in upload_page.get("Uploads", [])
                    if (rel := wanted(upload["Key"])) is not None
                ]
                if past(upload_page, "Uploads"):
                    break

    def _with_holds(self, versions: builtins.list[Entry]) -> Iterator[Entry]:
        with ThreadPoolExecutor(HOLD_PROBE_CONCURRENCY, thread_name_prefix="s3-hold") as pool:
            holds = list(pool.map(self._hold, versions))
        for entry, hold in zip(versions, holds, strict=True):
            yield dataclasses.replace(entry, hold=hold)

    def _settled(self, page: _Page) -> Iterator[Entry]:
        """A listed page's versions (with their probed encryption, once every probe answered)
        and delete markers."""
        versions, probes, markers = page
        if probes is not None:
            found = [p.result() for p in probes]
            with self._lock:
                self.encryption_requests += len(probes)
            versions = [
                dataclasses.replace(e, encryption=f) for e, f in zip(versions, found, strict=True)
            ]
        yield from versions
        yield from markers

    def _encryption(self, entry: Entry) -> ServerSideEncryption:
        """What HeadObject says of one version's server-side encryption, as it says it."""
        ids: dict[str, Any] = {"Bucket": self.bucket, "Key": join_entry_key(self.root, entry.key)}
        # The current copy of an unversioned bucket is version "null": S3 takes that id, moto
        # answers 400 to it (docs/known-gaps.md); the plain HEAD names the same copy.
        if entry.version_id and not (entry.version_id == "null" and entry.is_latest):
            ids["VersionId"] = entry.version_id
        try:
            response = self.client.head_object(**ids)
        except botocore.exceptions.ClientError as exc:
            if isinstance(_map_error(exc, ""), NotFoundError):
                return ServerSideEncryption("unknown: gone before its HEAD")
            raise _map_error(exc, f"head {self._where(entry.key, entry.version_id)}") from exc
        algorithm = response.get("ServerSideEncryption")
        key = response.get("SSEKMSKeyId")
        return ServerSideEncryption(
            str(algorithm) if algorithm else "none", str(key) if key else None
        )

    def _hold(self, entry: Entry) -> HoldState:
        """Legal hold and retention of one version (GetObjectLegalHold, GetObjectRetention).
        Where the endpoint lacks GetObjectRetention (moto answers 500), retention is read from
        HeadObject's ``x-amz-object-lock-*`` headers instead, and the store notes it."""
        full = join_entry_key(self.root, entry.key)
        where = self._where(entry.key, entry.version_id)
        ids: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        if entry.version_id:
            ids["VersionId"] = entry.version_id
        legal = False
        try:
            status = self.client.get_object_legal_hold(**ids).get("LegalHold", {}).get("Status")
            legal = status == "ON"
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc)[0] != "NoSuchObjectLockConfiguration":
                raise _map_error(exc, f"read legal hold of {where}") from exc
        mode: str | None = None
        until: datetime | None = None
        if not self._retention_via_head:
            try:
                retention = self.client.get_object_retention(**ids).get("Retention", {})
                mode, until = retention.get("Mode"), retention.get("RetainUntilDate")
            except botocore.exceptions.ClientError as exc:
                code, status_code = _error_code(exc)
                if code == "NoSuchObjectLockConfiguration":
                    pass
                elif status_code >= 500 or code in ("NotImplemented", "MethodNotAllowed"):
                    self._retention_via_head = True
                    self._note(
                        f"GetObjectRetention failed here ({code}); reading retention from "
                        "HeadObject's object-lock headers instead"
                    )
                else:
                    raise _map_error(exc, f"read retention of {where}") from exc
        if self._retention_via_head:
            with _errors(f"head {where}"):
                response = self.client.head_object(**ids)
            mode = response.get("ObjectLockMode")
            until = response.get("ObjectLockRetainUntilDate")
            legal = legal or response.get("ObjectLockLegalHoldStatus") == "ON"
        if until is not None and until <= datetime.now(UTC):
            mode = None  # retention expired: it no longer blocks deletion
        return HoldState(legal_hold=legal, retention_mode=mode, retain_until=until)

    def purge(self, entries: Sequence[Entry], *, bypass_governance: bool = False) -> PurgeResult:
        """Delete exactly these copies: versions and delete markers by ``DeleteObjects`` (1000
        per request, exact key and version id, every per-item result read), multipart uploads by
        ``AbortMultipartUpload``. Refused per item by object lock -> ``held``; other per-item
        errors -> ``failed``. Everything is checked before the first request; a request failing
        as a whole stops the purge (the purge contract of connectors/_purge.py)."""
        objects: list[Entry] = []
        uploads: list[Entry] = []
        seen: set[tuple[str, str | None, EntryKind]] = set()
        for entry in entries:
            addressable_entry_key(entry.key, self.root, self.url)
            if entry.version_id is None or entry.version_id == "":
                raise InputError(
                    f"purge {self._where(entry.key)}: no version id; S3 purge deletes exact "
                    "versions only (inventory gives them)"
                )
            ident = (entry.key, entry.version_id, entry.kind)
            if ident in seen:
                raise InputError(f"purge: {self._where(entry.key, entry.version_id)} listed twice")
            seen.add(ident)
            if entry.kind is EntryKind.MULTIPART_UPLOAD:
                uploads.append(entry)
            elif entry.kind in (EntryKind.OBJECT, EntryKind.VERSION, EntryKind.DELETE_MARKER):
                objects.append(entry)
            else:
                raise UnsupportedError(
                    f"purge {self._where(entry.key)}: S3 has no {entry.kind.value} copies"
                )
        run = _purge.PurgeRun[Entry](
            lambda e: e, concurrency=PURGE_CONCURRENCY, thread_name="s3-purge"
        )
        run.run(objects, DELETE_BATCH, lambda b: self._delete_batch(b, bypass_governance))
        run.run(uploads, 1, lambda u: self._abort(u[0]))
        return run.result

    def _locked(self) -> bool:
        """Whether an AccessDenied on a version may be a lock (the bucket has object lock, or
        Sundown may not read whether it has): read only when a refusal needs telling apart, not
        before each batch (every purge batch opens its own store, and probing each cost two
        requests per 1,000 versions). A probe that fails makes the refusal a failure, never a
        hold: nothing unproven is called held."""
        try:
            return Capability.OBJECT_LOCK in self.capabilities
        except SundownError as exc:
            self._note(f"could not read the bucket's object lock configuration: {exc}")
            return False

    def _delete_batch(self, batch: Sequence[Entry], bypass: bool) -> PurgeResult:
        by_id: dict[tuple[str, str], Entry] = {}
        for entry in batch:
            by_id[(join_entry_key(self.root, entry.key), str(entry.version_id))] = entry
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Delete": {
                "Objects": [{"Key": full, "VersionId": vid} for full, vid in by_id],
                "Quiet": False,
            },
        }
        if bypass:
            args["BypassGovernanceRetention"] = True
        try:
            response = self.client.delete_objects(**args)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            what = f"delete {len(batch)} versions in s3://{self.bucket}/{self.root}"
            raise _batch_failed(exc, what) from exc
        result = PurgeResult(requests=1)
        pending = dict(by_id)
        for item in response.get("Deleted", []):
            done = pending.pop((item.get("Key", ""), str(item.get("VersionId"))), None)
            if done is not None:
                result.deleted.append(done)
        for error in response.get("Errors", []):
            key, code = error.get("Key", ""), error.get("Code", "")
            message = error.get("Message", "")
            if error.get("VersionId"):
                matched = [(key, str(error["VersionId"]))]
            else:  # moto omits VersionId from per-item errors: every unanswered version of key
                matched = [ident for ident in pending if ident[0] == key]
            for ident in matched:
                refused = pending.pop(ident, None)
                if refused is None:
                    continue
                if code == "AccessDenied" and (refused.hold.held or self._locked()):
                    result.held.append(refused)
                else:
                    result.failed.append(PurgeFailure(refused, code or "Error", message))
        for entry in pending.values():  # S3 said nothing about it: never count it as deleted
            result.failed.append(PurgeFailure(entry, "NoResult", "no per-item result returned"))
        return result

    def _abort(self, upload: Entry) -> PurgeResult:
        result = PurgeResult(requests=1)
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket,
                Key=join_entry_key(self.root, upload.key),
                UploadId=str(upload.version_id),
            )
        except botocore.exceptions.ClientError as exc:
            code, _ = _error_code(exc)
            if code != "NoSuchUpload":  # already gone counts as done (the re-listing proves it)
                result.failed.append(PurgeFailure(upload, code or "Error", "abort failed"))
                return result
        except botocore.exceptions.BotoCoreError as exc:
            raise _batch_failed(exc, f"abort {self._where(upload.key)}") from exc
        result.deleted.append(upload)
        return result

    def soft_delete_policy(self) -> SoftDeletePolicy:
        return SoftDeletePolicy(
            None, "S3 has no soft delete: old versions and delete markers are inventoried"
        )

    def replication(self) -> Replication:
        """``GetBucketReplication``: every enabled rule whose filter can match a key under the
        root, with its destination bucket as ``s3://<bucket>/<root>`` (replication keeps the
        key), so a plan can check that the destination is a location of the spec. No
        configuration: no targets. Refused or failed: a note, no targets."""
        where = f"s3://{self.bucket}"
        try:
            config = self.client.get_bucket_replication(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            code, _ = _error_code(exc)
            if code == "ReplicationConfigurationNotFoundError":
                return Replication(redundancy="aws single region")
            return Replication(note=f"replication of {where} not read: {_why(exc)}")
        except botocore.exceptions.BotoCoreError as exc:
            return Replication(note=f"replication of {where} not read: {_why(exc)}")
        targets: builtins.list[ReplicaTarget] = []
        for rule in config.get("ReplicationConfiguration", {}).get("Rules", []):
            if rule.get("Status") != "Enabled" or not _rule_matches(rule, self.root):
                continue
            arn = str(rule.get("Destination", {}).get("Bucket", ""))
            bucket = arn.rsplit(":", 1)[-1]
            url = f"s3://{bucket}/{self.root}" if self.root else f"s3://{bucket}"
            ident = rule.get("ID") or "(no id)"
            targets.append(ReplicaTarget(url, f"S3 replication rule {ident} of {where} to {arn}"))
        return Replication(targets=tuple(targets), redundancy="aws replication rules")

    # -- Placed ---------------------------------------------------------------------------------

    def placement(self) -> Placement:
        """The account of the caller's credentials (STS ``GetCallerIdentity``, a client made
        like the S3 one, credentials resolved afresh) and the bucket's region
        (``GetBucketLocation``; none or ``""`` is us-east-1, ``EU`` is eu-west-1). A refusal, or
        an endpoint without STS, leaves that part ``None`` with the reason in the note."""
        notes: builtins.list[str] = []
        account: str | None = None
        try:
            sts = _aws.new_client("sts", _retry_config())
            account = str(sts.get_caller_identity()["Account"]) or None
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            notes.append(f"account not learned: sts:GetCallerIdentity {_why(exc)}")
        except KeyError:
            notes.append("account not learned: sts:GetCallerIdentity gave no Account")
        region: str | None = None
        try:
            answer = self.client.get_bucket_location(Bucket=self.bucket)
            constraint = str(answer.get("LocationConstraint") or "")
            region = _LEGACY_REGIONS.get(constraint, constraint)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            notes.append(f"region not learned: s3:GetBucketLocation {_why(exc)}")
        return Placement("aws", account, region, "; ".join(notes) or None)

    # -- Copier ---------------------------------------------------------------------------------

    def _check_class(self, name: str | None) -> str | None:
        if name is not None and name not in STORAGE_CLASSES:
            known = ", ".join(sorted(STORAGE_CLASSES))
            raise InputError(f"unknown S3 storage class {name!r} (known: {known})")
        return name

    def _server_copy(self, job: _copy.CopyJob) -> ObjectInfo | None:
        """Server-side copy to another S3 location (same endpoint), optionally into another
        storage class (``GLACIER``, ``DEEP_ARCHIVE``, ...)."""
        dest = job.dest
        if not isinstance(dest, S3Store):
            return None
        source = self.head(job.key, job.version_id)
        source_ref: dict[str, Any] = {"Bucket": self.bucket, "Key": self._read_key(job.key)}
        if job.version_id is not None:
            source_ref["VersionId"] = job.version_id
        target = dest._key(job.dest_key)
        extra: dict[str, Any] = {}
        if job.storage_class is not None:
            extra["StorageClass"] = job.storage_class
        what = f"copy {self._where(job.key, job.version_id)} to {dest._where(job.dest_key)}"
        if source.size <= MAX_COPY_OBJECT:
            with _errors(what):
                response = dest.client.copy_object(
                    Bucket=dest.bucket,
                    Key=target,
                    CopySource=cast(Any, source_ref),
                    ChecksumAlgorithm="SHA256",
                    **extra,
                )
            new_version = response.get("VersionId")
        else:
            with _errors(what):
                dest.client.copy(
                    cast(Any, source_ref), dest.bucket, target, ExtraArgs=extra or None
                )
            new_version = None
        return dest.head(job.dest_key, new_version)


def _rule_matches(rule: Any, root: str) -> bool:
    """Whether a replication rule's prefix filter can match a key under ``root`` (a tag filter
    is taken to match: tags are per object and not read here)."""
    filt = rule.get("Filter", {})
    prefix = rule.get("Prefix")
    if prefix is None:
        prefix = filt.get("Prefix", filt.get("And", {}).get("Prefix", ""))
    prefix = str(prefix or "")
    scope = root + "/" if root else ""
    return scope.startswith(prefix) or prefix.startswith(scope)


# GetBucketLocation's answers that are not region names.
_LEGACY_REGIONS = {"": "us-east-1", "EU": "eu-west-1"}


def _why(exc: Exception) -> str:
    """Why a placement request failed, in a few words (an error code, never a credential)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code, status = _error_code(exc)
        return f"refused ({code})" if code in _DENIED or status == 403 else f"failed ({code})"
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "failed (no AWS credentials found)"
    return f"failed ({type(exc).__name__})"


def account_of(url: str) -> str:
    """The account ``url`` belongs to as this environment names it, without a request: the S3
    endpoint's host (``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``), ``s3-aws`` for AWS
    itself. It names the Prefect concurrency limit of purge batches (flows/shards.py)."""
    host = _env.endpoint_host("AWS_ENDPOINT_URL_S3") or _env.endpoint_host("AWS_ENDPOINT_URL")
    return f"s3-{host or 'aws'}"


def open_store(url: str) -> S3Store:
    """The store rooted at ``s3://bucket/prefix``, with a fresh client from the environment."""
    bucket, root = parse_bucket_url(url, "s3")
    return S3Store(bucket, root, new_client())
