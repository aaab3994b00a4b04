"""The gs:// store in the conformance suite, on both GCS emulators: a fresh bucket per location.

- ``gs-fake`` (fake-gcs-server): keeps generations, so it is the faithful one for versioning
  and reads of old generations; it cannot delete a chosen generation and fails every batch
  request, so purge-related tests meet declared gaps there.
- ``gs-emu`` (gcp-storage-emulator): answers batch requests item by item and keeps soft-deleted
  objects, so it is the one for purge and soft delete; it keeps no generations and ignores
  ``generation=`` on deletes.

Neither has holds, retention, storage classes or create-only resumable uploads. Every gap is in
docs/known-gaps.md; where a behaviour can be shown only on the wire, tests/test_gcs_specific.py
asserts on the request the connector sends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors.gcs import BATCH_LIMIT, new_client
from sundown.store import has_dot_segment
from tests.backend_modules import BackendSpec
from tests.conformance import Refusal, StoreBackend, batch_deletes_on_the_wire, unique
from tests.reliability.faultproxy import Answer, Request

_NO_HOLDS = "no object holds or retention: the hold fields are ignored and never reported"
_NO_CLASSES = "every object stays STANDARD: the storage class of a rewrite is ignored"
_NO_RESUMABLE_PRECONDITION = "ifGenerationMatch=0 is not enforced on resumable uploads"
SOFT_DELETE_SECONDS = 7 * 24 * 3600
FORBIDDEN = Answer(
    403,
    json.dumps(
        {"error": {"code": 403, "message": "caller does not have storage.objects.delete access",
                   "errors": [{"reason": "forbidden", "message": "refused"}]}}
    ).encode(),
    {"Content-Type": "application/json"},
)  # fmt: skip


def _is_batch(request: Request) -> bool:
    return request.method == "POST" and urlsplit(request.path).path.endswith("/batch/storage/v1")


class GcsBackend(StoreBackend):
    batch_limit = BATCH_LIMIT
    refusal = Refusal("gcs", _is_batch, FORBIDDEN, "Forbidden")
    endpoint_variable = "STORAGE_EMULATOR_HOST"
    archive_class = "ARCHIVE"

    def new_location(
        self, *, versioning: bool = False, object_lock: bool = False, soft_delete: bool = False
    ) -> str:
        client = new_client()
        bucket = client.bucket(unique("sd"))
        bucket.versioning_enabled = versioning or object_lock
        client.create_bucket(bucket)
        if not soft_delete:
            self.disable_soft_delete(bucket.name)
        return f"gs://{bucket.name}"

    def disable_soft_delete(self, name: str) -> None:
        """What an operator does for a bucket without soft delete: retention 0."""

    def put_raw(self, url: str, name: str, data: bytes) -> None:
        bucket = new_client().bucket(url.removeprefix("gs://").split("/")[0])
        bucket.blob(name).upload_from_string(data)

    record_deletes = batch_deletes_on_the_wire


class FakeGcsBackend(GcsBackend):
    name = "gs-fake"
    soft_delete_seconds = None
    gaps = {
        "delete_version": "fake-gcs-server cannot delete a chosen generation",
        "batch_delete": "fake-gcs-server fails batch requests (answers without a multipart body)",
        "object_lock": _NO_HOLDS,
        "retention": _NO_HOLDS,
        "soft_delete": "fake-gcs-server has no soft delete",
        "archive_tier": _NO_CLASSES,
        "conditional_create_large": _NO_RESUMABLE_PRECONDITION,
    }


class EmulatorGcsBackend(GcsBackend):
    name = "gs-emu"
    soft_delete_seconds = SOFT_DELETE_SECONDS  # the emulator's (and GCS's) default window
    gaps = {
        "versioning": "gcp-storage-emulator keeps no generations",
        "delete_version": "gcp-storage-emulator ignores generation= on deletes",
        "object_lock": _NO_HOLDS,
        "retention": _NO_HOLDS,
        "archive_tier": _NO_CLASSES,
        "conditional_create": "gcp-storage-emulator does not enforce ifGenerationMatch=0",
        "conditional_create_large": _NO_RESUMABLE_PRECONDITION,
    }

    def put_raw(self, url: str, name: str, data: bytes) -> None:
        if has_dot_segment(name):  # the emulator drops the connection on such an upload
            raise NotImplementedError(f"{self.name}: no object name with a '.' or '..' segment")
        super().put_raw(url, name, data)

    def disable_soft_delete(self, name: str) -> None:
        client = new_client()
        bucket = client.get_bucket(name)
        bucket.soft_delete_policy.retention_duration_seconds = 0
        bucket.patch()


def _fake(fixtures: Mapping[str, Any], tmp_path: Path) -> StoreBackend:
    return FakeGcsBackend()


def _emulator(fixtures: Mapping[str, Any], tmp_path: Path) -> StoreBackend:
    return EmulatorGcsBackend()


BACKENDS = [
    BackendSpec("gs-fake", ("fake_gcs_env",), _fake),
    BackendSpec("gs-emu", ("gcs_emulator_env",), _emulator),
]
