"""The az:// store in the conformance suite, on Azurite: a fresh container per location.

Azurite has no blob versioning, soft delete (it stores the delete retention setting but keeps
nothing), immutability or legal holds: the store declares none of them there, and the tests
that need them meet the declared gaps. docs/known-gaps.md lists them; tests/test_azure_specific.py
asserts on the requests the connector sends where a behaviour cannot be shown on Azurite.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.storage.blob import RetentionPolicy

from connectors.azure_blob import BATCH_LIMIT, new_service_client
from sundown.store import has_dot_segment
from tests.backend_modules import BackendSpec
from tests.conformance import (
    Refusal,
    Refusing,
    StoreBackend,
    batch_deletes_on_the_wire,
    refusing,
    unique,
)
from tests.fixtures.azurite import connection_string
from tests.reliability.faultproxy import Answer, Request

_NO_IMMUTABILITY = "Azurite has no legal holds or immutability policies"
SOFT_DELETE_DAYS = 7
MISMATCH = "AuthorizationPermissionMismatch"
REFUSED = Answer(
    403,
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>' + MISMATCH.encode() + b"</Code>"
    b"<Message>This request is not authorized to perform this operation using this "
    b"permission.</Message></Error>",
    {"Content-Type": "application/xml", "x-ms-error-code": MISMATCH},
)


def _is_batch(request: Request) -> bool:
    return request.method == "POST" and "comp=batch" in request.query.split("&")


class AzuriteBackend(StoreBackend):
    name = "az"
    batch_limit = BATCH_LIMIT
    refusal = Refusal("azure", _is_batch, REFUSED, MISMATCH)
    archive_class = "Archive"
    soft_delete_seconds = SOFT_DELETE_DAYS * 86400
    gaps = {
        "versioning": "Azurite has no blob versioning",
        "object_lock": _NO_IMMUTABILITY,
        "retention": _NO_IMMUTABILITY,
        "soft_delete_listing": "Azurite keeps the delete retention setting but no soft-deleted "
        "blobs",
    }

    def new_location(
        self, *, versioning: bool = False, object_lock: bool = False, soft_delete: bool = False
    ) -> str:
        service = new_service_client()
        name = unique("sd")
        service.create_container(name)
        # Soft delete is an account setting: the operator switches it as the test asks.
        policy = RetentionPolicy(enabled=True, days=SOFT_DELETE_DAYS)
        service.set_service_properties(
            delete_retention_policy=policy if soft_delete else RetentionPolicy(enabled=False)
        )
        return f"az://{name}"

    def put_raw(self, url: str, name: str, data: bytes) -> None:
        if has_dot_segment(name):
            # The request path is normalized on the way (urllib3 resolves dot segments) while
            # the signature covers the name as given: Azurite answers AuthorizationFailure.
            # Azure's own rule: a blob name's "." and ".." segments are resolved.
            raise NotImplementedError(f"{self.name}: no blob name with a '.' or '..' segment")
        container = new_service_client().get_container_client(
            url.removeprefix("az://").split("/")[0]
        )
        container.upload_blob(name, data)

    record_deletes = batch_deletes_on_the_wire

    def refusing_batches(self, url: str) -> contextlib.AbstractContextManager[Refusing]:
        endpoint = re.search(
            r"BlobEndpoint=(https?://[^/;]+)", os.environ["AZURE_STORAGE_CONNECTION_STRING"]
        )
        assert endpoint, "the Azurite connection string names no BlobEndpoint"
        assert self.refusal is not None

        def through(proxy: str) -> dict[str, str]:
            return {"AZURE_STORAGE_CONNECTION_STRING": connection_string(proxy)}

        return refusing(url, endpoint[1], through, self.refusal)

    def cleanup(self) -> None:
        new_service_client().set_service_properties(
            delete_retention_policy=RetentionPolicy(enabled=False)
        )


def _factory(fixtures: Mapping[str, Any], tmp_path: Path) -> StoreBackend:
    return AzuriteBackend()


BACKENDS = [BackendSpec("az", ("azure_env",), _factory)]
