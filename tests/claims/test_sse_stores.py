"""Claims suite: what GCS and Azure listings report of server-side encryption, and what
Sundown makes of it. Neither emulator keeps it (shown raw here, listed in docs/known-gaps.md):
fake-gcs-server accepts an upload with ``kmsKeyName`` and lists the object without it; Azurite
accepts a blob with an encryption scope and lists it without one. So on the emulators such
copies read as provider-managed (GCS) or of unknown account encryption (Azure), that is logical
deletion: the safe direction. The connectors' reading of the documented answers (GCS object
resource ``kmsKeyName``, ``customerEncryption``; Azure ``x-ms-encryption-scope``,
``x-ms-encryption-key-sha256``) is checked on those answers' documented shapes.
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime

from azure.storage.blob import BlobProperties
from google.cloud import storage

from connectors import azure_blob as az
from connectors import gcs
from sundown.certificate import Protection
from sundown.plan import CopyProtection
from sundown.registry import open_store
from sundown.sse import ServerSideVerdict, storage_key
from sundown.store import ServerSideEncryption

_counter = itertools.count()
KEY = "projects/p/locations/europe-west1/keyRings/r/cryptoKeys/k"
UNKNOWN = CopyProtection(Protection.UNKNOWN, note="no sidecar")


def _name() -> str:
    return f"sd-{os.getpid()}-{next(_counter)}-{datetime.now(UTC):%H%M%S%f}"


def test_fake_gcs_server_drops_kms_key_name_so_the_copy_is_not_claimed(fake_gcs_env: str) -> None:
    client = gcs.new_client()
    bucket = _name()
    client.create_bucket(client.bucket(bucket))
    client.bucket(bucket).blob("logs/a.log", kms_key_name=KEY).upload_from_string(b"x")
    (raw,) = list(client.list_blobs(bucket))
    assert "kmsKeyName" not in raw._properties  # the gap: real GCS lists the key version
    (entry,) = list(open_store(f"gs://{bucket}/logs").inventory())  # type: ignore[attr-defined]
    assert entry.encryption == ServerSideEncryption("google-managed")
    verdict = ServerSideVerdict(storage_key(f"gcp-kms://{KEY}"))(entry.encryption, UNKNOWN)
    assert verdict.protection is Protection.PROVIDER_MANAGED  # logical deletion, not erase


def test_gcs_object_resources_are_read_as_documented() -> None:
    bucket = storage.Bucket(client=None, name="b")  # type: ignore[arg-type]
    cmek = storage.Blob("a", bucket)
    cmek._set_properties({"name": "a", "kmsKeyName": KEY + "/cryptoKeyVersions/2"})
    csek = storage.Blob("b", bucket)
    csek._set_properties(
        {"name": "b", "customerEncryption": {"encryptionAlgorithm": "AES256", "keySha256": "aGk="}}
    )
    verdict = ServerSideVerdict(storage_key(f"gcp-kms://{KEY}"))
    assert gcs._encryption(cmek) == ServerSideEncryption("cmek", KEY + "/cryptoKeyVersions/2")
    assert verdict(gcs._encryption(cmek), UNKNOWN).protection is Protection.SSE_KMS
    assert gcs._encryption(csek) == ServerSideEncryption("csek", "aGk=")
    assert verdict(gcs._encryption(csek), UNKNOWN).protection is Protection.SSE_TENANT_KEY


def test_azurite_drops_the_encryption_scope_so_the_copy_is_not_claimed(azure_env: str) -> None:
    container = _name()
    client = az.new_service_client().create_container(container)
    client.upload_blob("logs/a.log", b"x", encryption_scope="system-scope")
    (raw,) = list(client.list_blobs())
    assert raw.encryption_scope is None and raw.server_encrypted  # the gap
    (entry,) = list(open_store(f"az://{container}/logs").inventory())  # type: ignore[attr-defined]
    assert entry.encryption == ServerSideEncryption("azure-account-encryption")
    verdict = ServerSideVerdict(storage_key(f"gcp-kms://{KEY}"))(entry.encryption, UNKNOWN)
    assert verdict.protection is Protection.UNKNOWN


def test_azure_scopes_and_customer_keys_are_never_the_storage_key() -> None:
    scoped = BlobProperties(**{"x-ms-encryption-scope": KEY, "x-ms-server-encrypted": True})
    cpk = BlobProperties(**{"x-ms-encryption-key-sha256": "aGk=", "x-ms-server-encrypted": True})
    verdict = ServerSideVerdict(storage_key(f"gcp-kms://{KEY}"))
    for props in (scoped, cpk):
        found = az._encryption(props)
        assert found.key in (KEY, "aGk=")
        assert verdict(found, UNKNOWN).protection is Protection.SSE_TENANT_KEY
