"""The s3:// store in the conformance suite, on moto's server: a fresh bucket per location."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from connectors.s3 import PURGE_CONCURRENCY, S3Store, new_client
from sundown.store import ObjectStore, join_key
from tests.backend_modules import BackendSpec
from tests.conformance import Refusal, StoreBackend, unique
from tests.reliability.faultproxy import Answer, Request

_OBJECT_TAG = re.compile(rb"<Object>")
DENIED = Answer(
    403,
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>refused</RequestId></Error>",
    {"Content-Type": "application/xml"},
)


def _is_delete_objects(request: Request) -> bool:
    """DeleteObjects: ``POST /<bucket>?delete``."""
    return request.method == "POST" and "delete" in request.query.split("&")


def count_delete_objects(store: S3Store, sink: list[int]) -> Any:
    """Hook ``store``'s client: append the number of ``<Object>`` items of every DeleteObjects
    request as it is sent (each retry counts). Returns the handler (to unregister)."""

    def on_send(request: Any, **_: Any) -> None:
        body = request.body
        if hasattr(body, "read"):  # never the case for DeleteObjects, whose body is bytes
            raise AssertionError("unexpected streaming DeleteObjects body")
        sink.append(len(_OBJECT_TAG.findall(body or b"")))

    store.client.meta.events.register("before-send.s3.DeleteObjects", on_send)
    return on_send


class S3Backend(StoreBackend):
    name = "s3"
    batch_limit = 1000
    purge_concurrency = PURGE_CONCURRENCY
    refusal = Refusal("s3", _is_delete_objects, DENIED, "AccessDenied")
    endpoint_variable = "AWS_ENDPOINT_URL"
    archive_class = "DEEP_ARCHIVE"

    def __init__(self) -> None:
        self.admin = new_client()  # the operator's client: same environment, not the store's

    def new_location(
        self, *, versioning: bool = False, object_lock: bool = False, soft_delete: bool = False
    ) -> str:
        bucket = unique("sd")
        if object_lock:
            self.admin.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        else:
            self.admin.create_bucket(Bucket=bucket)
        if versioning or object_lock:
            self.admin.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        return f"s3://{bucket}"

    def _ids(self, store: ObjectStore, key: str, version_id: str | None) -> dict[str, Any]:
        assert isinstance(store, S3Store)
        ids: dict[str, Any] = {"Bucket": store.bucket, "Key": join_key(store.root, key)}
        if version_id:
            ids["VersionId"] = version_id
        return ids

    def set_legal_hold(
        self, store: ObjectStore, key: str, version_id: str | None, on: bool
    ) -> None:
        self.admin.put_object_legal_hold(
            **self._ids(store, key, version_id), LegalHold={"Status": "ON" if on else "OFF"}
        )

    def set_retention(
        self, store: ObjectStore, key: str, version_id: str | None, mode: str, days: int
    ) -> None:
        until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
        self.admin.put_object_retention(
            **self._ids(store, key, version_id),
            Retention=cast(Any, {"Mode": mode, "RetainUntilDate": until}),
        )

    def seed(self, store: ObjectStore, keys: Sequence[str]) -> None:
        """One small object per key, written by the operator's client in parallel. (A delete
        marker per key, 1000 per DeleteObjects, would be cheaper, but moto adds no delete marker
        for a key that has no version.)"""
        assert isinstance(store, S3Store)
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda k: self.admin.put_object(
                        Bucket=store.bucket, Key=join_key(store.root, k), Body=b"."
                    ),
                    keys,
                )
            )

    def put_raw(self, url: str, name: str, data: bytes) -> None:
        self.admin.put_object(Bucket=url.removeprefix("s3://").split("/")[0], Key=name, Body=data)

    @contextlib.contextmanager
    def record_deletes(self, store: ObjectStore) -> Iterator[list[int]]:
        assert isinstance(store, S3Store)
        sink: list[int] = []
        handler = count_delete_objects(store, sink)
        try:
            yield sink
        finally:
            store.client.meta.events.unregister("before-send.s3.DeleteObjects", handler)


def _factory(fixtures: Mapping[str, Any], tmp_path: Path) -> StoreBackend:
    return S3Backend()


BACKENDS = [BackendSpec("s3", ("moto_env",), _factory)]
