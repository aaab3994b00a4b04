"""``purge_by: lifecycle`` through the retirement flow on GCS and Azure, as on S3
(test_lifecycle_purge.py): the retirement adds Sundown's rule beside the foreign ones, waits
while the prefix holds copies (no key destroyed, nothing certified), and once it is empty removes
only its own rule, destroys the keys and certifies.

- GCS on gcp-storage-emulator (it stores lifecycle rules and labels; it runs no rule).
- Azure on Azurite (blobs) with the management policy on tests/fixtures/fake_arm.py (Azurite has
  no management plane).

Emulator gap (docs/known-gaps.md): no emulator executes lifecycle rules, so the tests delete the
prefix's objects themselves, as the provider would under the rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors import azure_blob, azure_policy, gcs
from flows.decommission import decommission_system
from flows.models import DecommissionParameters
from sundown import registry
from sundown.errors import KeyDestroyedError
from tests.fixtures.fake_kms import FakeServer
from tests.flows.test_lifecycle_purge import APPROVER, lc_spec

GCS_FOREIGN = [
    {"action": {"type": "Delete"}, "condition": {"age": 365, "matchesPrefix": ["logs/"]}}
]
AZ_FOREIGN = {
    "enabled": True,
    "name": "teamlogs",
    "type": "Lifecycle",
    "definition": {
        "filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["logs/"]},
        "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": 365}}},
    },
}


def _retire_in_two_runs(spec: str, rules: Any, expire: Any, canary: Any) -> Any:
    """Retire ``spec`` through its lifecycle rule: the first run waits for expiry, the second
    (after ``expire``) ends complete with exceptions, each emulator's own (checked by the
    caller)."""
    registry.create_key("local://lc-sys-kek")
    registry.create_key("local://lc-sys-certificates", signing=True)
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    approve = DecommissionParameters(
        spec_yaml=spec, approve_digest=plan.plan_digest, approver=APPROVER
    )
    first = decommission_system(approve)
    assert first.status == "waiting for lifecycle expiry", first
    foreign, mine = rules()
    assert foreign and mine  # Sundown's rule added beside the foreign ones
    registry.open_key_service("local://lc-sys-kek").info()
    expire()  # the emulator gap: the provider would expire them under the rule
    done = decommission_system(DecommissionParameters(spec_yaml=spec))
    assert done.status == "complete with exceptions", done
    left_foreign, left_mine = rules()
    assert left_foreign == foreign and not left_mine
    with pytest.raises(KeyDestroyedError):
        registry.open_key_service("local://lc-sys-kek")
    assert canary()
    return done


def test_gcs_lifecycle_retirement(tmp_path: Path, prefect_api: str, gcs_emulator_env: str) -> None:
    from tests.test_gcs_specific import _new_bucket

    name = _new_bucket()
    client = gcs.new_client()
    bucket = client.get_bucket(name)
    bucket.lifecycle_rules = GCS_FOREIGN
    bucket.patch()
    for key in ("models/a/model.bin", "models/a/cfg.json", "models/ab/canary"):
        bucket.blob(key).upload_from_string(b"w")
    spec = lc_spec(f"gs://{name}", tmp_path / "evidence")
    mine = gcs.lifecycle_rules("models/a/")

    def rules() -> tuple[list[Any], list[Any]]:
        got = gcs.GcsStore(name, "").lifecycle_rules()
        return [r for r in got if r not in mine], [r for r in got if r in mine]

    def expire() -> None:
        for blob in client.list_blobs(name, prefix="models/a/"):
            blob.delete()

    # The emulator keeps GCS's default 7-day soft delete: the expired objects are soft-deleted
    # copies, past the rule; the certificate states when each is hard-deleted.
    canary = bucket.blob("models/ab/canary")
    done = _retire_in_two_runs(spec, rules, expire, canary.exists)
    assert done.exceptions and all("hard delete" in e for e in done.exceptions), done.exceptions


def test_azure_lifecycle_retirement(
    tmp_path: Path, prefect_api: str, azure_env: str, azure_arm_env: FakeServer
) -> None:
    from tests.test_azure_specific import _container

    name = _container()
    account = azure_blob.new_service_client().account_name
    azure_arm_env.state[account] = {"rules": [AZ_FOREIGN], "lastModifiedTime": "2026-01-01T00:00Z"}
    container = azure_blob.new_service_client().get_container_client(name)
    for key in ("models/a/model.bin", "models/a/cfg.json", "models/ab/canary"):
        container.upload_blob(key, b"w")
    spec = lc_spec(f"az://{name}", tmp_path / "evidence")

    def rules() -> tuple[list[Any], list[Any]]:
        got = azure_arm_env.state.get(account, {"rules": []})["rules"]
        ours = [r for r in got if r["name"].startswith("sundownretirelcsys")]
        for r in ours:
            assert r["definition"]["filters"]["prefixMatch"] == [f"{name}/models/a/"]
        return [r for r in got if r not in ours], ours

    def expire() -> None:
        for blob in container.list_blobs(name_starts_with="models/a/"):
            container.delete_blob(blob.name)

    # Azurite's account is geo-redundant: the secondary copy is stated as an exception.
    canary = container.get_blob_client("models/ab/canary")
    done = _retire_in_two_runs(spec, rules, expire, canary.exists)
    assert done.exceptions and all("geo-replication" in e for e in done.exceptions)
    assert azure_arm_env.sent("PUT", "managementPolicies")
    assert azure_policy.API_VERSION == "2023-05-01"
