"""Claims suite: server-side encryption under the system's storage key (``keys.storage_cmk``).

A copy counts as covered by the storage key's cryptographic erase only when its store reports
it under exactly the key's resolved ARN (resource name on GCS) when the plan is made. Each test
here tries to get erase claimed for a copy that is not under that key: another key, an alias of
the very key, its bare key id, the same key id in another account or region, SSE-S3, a key
destroyed without proof, an alias re-pointed before destruction. moto's S3 and KMS through
``moto_server`` (it returns ``SSEKMSKeyId`` on HeadObject), fake-gcs-server and Azurite for
what their listings carry (raw answers shown).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from flows._certify import _claims, copy_breakdown
from flows._steps import Protector, sidecar_keys, storage_key_of
from sundown import registry
from sundown.certificate import KeyDestroyed, Protection, SanitizationCategory
from sundown.errors import InputError, IntegrityError, UnsupportedError
from sundown.plan import CopyProtection, PlanEntry
from sundown.spec.loader import parse_spec
from sundown.spec.overlap import check_no_overlap
from sundown.sse import ServerSideVerdict, storage_key
from sundown.store import EntryKind, HoldState, ServerSideEncryption
from tests.conformance import unique
from tests.spec_builder import spec_yaml

CE = SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE
LOGICAL = SanitizationCategory.LOGICAL_DELETION
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _kms_key(alias: str | None = None) -> dict[str, Any]:
    kms = boto3.client("kms")
    meta: dict[str, Any] = kms.create_key()["KeyMetadata"]
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    return meta


def _bucket(default_key_arn: str | None = None) -> str:
    s3 = boto3.client("s3")
    name = unique("sse")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if default_key_arn:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": default_key_arn,
                        }
                    }
                ]
            },
        )
    return name


def _spec(bucket: str, storage_cmk: str | None, tmp_path: Path, name: str = "sys-sse") -> Any:
    keys = {"kek": f"local://{name}-kek", "certificate": f"local://{name}-certificates"}
    if storage_cmk:
        keys["storage_cmk"] = storage_cmk
    return parse_spec(
        spec_yaml(
            name,
            assets={"logs": {"locations": [f"s3://{bucket}/logs/{name}"]}},
            keys=keys,
            evidence=(tmp_path / "evidence").as_uri(),
        )
    )


# --------------------------------------------------------------------------------------------
# the spec


def test_the_storage_key_is_destroyed_with_the_kek_and_never_another_systems_key(
    tmp_path: Path,
) -> None:
    arn = "aws-kms://arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    spec = _spec("b-sse", arn, tmp_path)
    assert spec.keys_to_destroy() == [("local://sys-sse-kek", "kek"), (arn, "storage_cmk")]
    other = _spec("b-other", arn, tmp_path, name="sys-other")
    with pytest.raises(InputError, match=r"storage_cmk .* is also sys-other's keys.storage_cmk"):
        check_no_overlap(spec, [other])
    gcp = "gcp-kms://projects/p/locations/europe-west1/keyRings/r/cryptoKeys/k"
    assert _spec("b-sse", gcp, tmp_path).keys.storage_cmk == gcp


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("aws-kms://alias/sys-storage", "is an alias"),
        ("aws-kms://arn:aws:kms:us-east-1:123456789012:alias/sys-storage", "is an alias"),
        ("aws-kms://1234abcd-12ab-34cd-56ef-1234567890ab", "not a server-side storage key"),
        ("local://sys-storage", "not a server-side storage key"),
        ("vault://transit/sys-storage", "not a server-side storage key"),
        ("aws-kms://arn:aws:s3:::bucket", "not a server-side storage key"),
    ],
)
def test_a_storage_key_that_could_name_something_else_is_refused(
    value: str, why: str, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=why):
        _spec("b-sse", value, tmp_path)


# --------------------------------------------------------------------------------------------
# S3 inventory: each version's SSE key, read by HEAD, counted


def test_s3_inventory_reads_every_versions_key_by_head_and_counts_the_requests(
    moto_env: str,
) -> None:
    system = _kms_key()
    bucket = _bucket(system["Arn"])
    s3 = boto3.client("s3")
    for i in range(3):
        s3.put_object(Bucket=bucket, Key="logs/sys-sse/app.log", Body=b"v%d" % i)
    s3.put_object(
        Bucket=bucket, Key="logs/sys-sse/plain.log", Body=b"x", ServerSideEncryption="AES256"
    )
    s3.delete_object(Bucket=bucket, Key="logs/sys-sse/plain.log")
    store = registry.open_store(f"s3://{bucket}/logs/sys-sse")
    plain = list(store.inventory())  # type: ignore[attr-defined]
    assert all(e.encryption is None for e in plain)
    got = list(store.encrypted_inventory())  # type: ignore[attr-defined]
    assert [(e.key, e.kind) for e in got] == [(e.key, e.kind) for e in plain]
    versions = [e for e in got if e.kind is not EntryKind.DELETE_MARKER]
    assert store.encryption_requests == len(versions) == 4  # type: ignore[attr-defined]
    by = {(e.key, e.version_id): e.encryption for e in versions}
    assert sum(1 for f in by.values() if f == ServerSideEncryption("aws:kms", system["Arn"])) == 3
    assert ServerSideEncryption("AES256", None) in by.values()
    marker = next(e for e in got if e.kind is EntryKind.DELETE_MARKER)
    assert marker.encryption is None  # no content, no HEAD


def _verdicts(store: Any, spec: Any) -> dict[str, CopyProtection]:
    facts = {uri: registry.open_key_service(uri).info() for uri, _ in spec.keys_to_destroy()}
    protector = Protector(store, dict(facts), sidecar_keys(store), storage_key_of(spec, facts))
    return {
        e.key: protector(e)
        for e in store.encrypted_inventory()
        if e.kind is not EntryKind.DELETE_MARKER
    }


def test_only_copies_under_exactly_the_storage_keys_arn_are_covered(
    moto_env: str, tmp_path: Path
) -> None:
    """The attacker (a writer to the bucket, or a careless pipeline) makes copies that look
    like they are under the system's key: its alias, its bare key id, the same key id under
    another account or region, another key of the account, SSE-S3. None is covered."""
    registry.create_key("local://sys-sse-kek")
    alias = f"alias/{unique('sys-storage')}"
    system = _kms_key(alias)
    other = _kms_key()
    bucket = _bucket(system["Arn"])
    arn: str = system["Arn"]
    s3 = boto3.client("s3")
    put = {
        "default.log": {},
        "by-arn.log": {"SSEKMSKeyId": arn},
        "by-alias.log": {"SSEKMSKeyId": alias},
        "by-key-id.log": {"SSEKMSKeyId": system["KeyId"]},
        "other-account.log": {"SSEKMSKeyId": arn.replace(":123456789012:", ":210987654321:")},
        "other-region.log": {"SSEKMSKeyId": arn.replace(":us-east-1:", ":eu-west-1:")},
        "other-key.log": {"SSEKMSKeyId": other["Arn"]},
        "sse-s3.log": {"ServerSideEncryption": "AES256"},
    }
    for key, extra in put.items():
        if "SSEKMSKeyId" in extra:
            extra = {"ServerSideEncryption": "aws:kms", **extra}
        s3.put_object(Bucket=bucket, Key=f"logs/sys-sse/{key}", Body=b"secret", **extra)
    spec = _spec(bucket, f"aws-kms://{arn}", tmp_path)
    store = registry.open_store(f"s3://{bucket}/logs/sys-sse")
    got = _verdicts(store, spec)
    covered = {k for k, v in got.items() if v.protection is Protection.SSE_KMS}
    assert covered == {"default.log", "by-arn.log"}
    assert got["default.log"].key == f"aws-kms://{arn}"
    for key in ("by-alias.log", "by-key-id.log", "other-account.log", "other-region.log"):
        assert got[key].protection is Protection.SSE_TENANT_KEY, key
        assert "not exactly the storage key" in (got[key].note or "")
    assert got["other-key.log"].key == other["Arn"]
    assert got["sse-s3.log"].protection is Protection.PROVIDER_MANAGED
    assert "SSE-S3" in (got["sse-s3.log"].note or "")


def test_without_a_storage_key_nothing_is_headed_and_nothing_is_sse_kms(
    moto_env: str, tmp_path: Path
) -> None:
    registry.create_key("local://sys-sse-kek")
    system = _kms_key()
    bucket = _bucket(system["Arn"])
    boto3.client("s3").put_object(Bucket=bucket, Key="logs/sys-sse/a.log", Body=b"x")
    spec = _spec(bucket, None, tmp_path)
    store = registry.open_store(f"s3://{bucket}/logs/sys-sse")
    facts = {uri: registry.open_key_service(uri).info() for uri, _ in spec.keys_to_destroy()}
    assert storage_key_of(spec, facts) is None
    protector = Protector(store, dict(facts), sidecar_keys(store), None)
    (entry,) = list(store.encrypted_inventory())  # type: ignore[attr-defined]
    verdict = protector(entry)
    assert verdict.protection is Protection.SSE_TENANT_KEY  # a tenant key, not this retirement's


# --------------------------------------------------------------------------------------------
# the verdict on other providers' reports (pure)


GCP = "projects/p/locations/l/keyRings/r/cryptoKeys/k"


@pytest.mark.parametrize(
    ("found", "covered"),
    [
        (ServerSideEncryption("cmek", GCP + "/cryptoKeyVersions/3"), True),
        (ServerSideEncryption("cmek", GCP), True),
        (ServerSideEncryption("cmek", GCP + "2/cryptoKeyVersions/1"), False),
        (ServerSideEncryption("cmek", GCP + "/cryptoKeyVersions/1/cryptoKeyVersions/2"), False),
        (ServerSideEncryption("cmek", "projects/q/locations/l/keyRings/r/cryptoKeys/k"), False),
        (ServerSideEncryption("aws:kms", GCP), False),  # the right name, the wrong provider
        (ServerSideEncryption("google-managed"), False),
        (ServerSideEncryption("csek", "c2hhMjU2"), False),
    ],
)
def test_gcs_kms_key_names_are_compared_exactly_less_their_version(
    found: ServerSideEncryption, covered: bool
) -> None:
    verdict = ServerSideVerdict(storage_key(f"gcp-kms://{GCP}"))
    got = verdict(found, CopyProtection(Protection.UNKNOWN, note="no sidecar"))
    assert (got.protection is Protection.SSE_KMS) is covered


def test_an_azure_scope_is_never_the_storage_key_and_names_are_bounded() -> None:
    verdict = ServerSideVerdict(storage_key(f"gcp-kms://{GCP}"))
    scope = verdict(ServerSideEncryption("azure-encryption-scope", GCP), CopyProtection(
        Protection.UNKNOWN, note="no sidecar"
    ))  # fmt: skip
    assert scope.protection is Protection.SSE_TENANT_KEY and "scope" in (scope.key or "")
    keys = {
        verdict(ServerSideEncryption("aws:kms", f"evil-{i}"), CopyProtection(Protection.NONE)).key
        for i in range(40)
    }
    assert len(keys) == 17 and None in keys  # 16 named, the rest together
    # an envelope verdict that says something is kept; only the storage key overrides it
    other = CopyProtection(Protection.ENVELOPE_OTHER_KEY, key="local://x")
    assert verdict(ServerSideEncryption("google-managed"), other) is other


# --------------------------------------------------------------------------------------------
# the certificate builder (pure)


def _entry(key: str, guard: CopyProtection) -> PlanEntry:
    return PlanEntry(
        loc=0, key=key, version_id="v1", kind=EntryKind.OBJECT, size=100, modified=NOW,
        is_latest=True, storage_class=None, hold=HoldState(), disposition="purge",
        protection=guard,
    )  # fmt: skip


ARN_URI = "aws-kms://arn:aws:kms:us-east-1:123456789012:key/k1"


def _destroyed(uri: str = ARN_URI, **kw: Any) -> KeyDestroyed:
    base: dict[str, Any] = {
        "uri": uri,
        "versions_destroyed": [1],
        "destroyed_at": NOW,
        "method": "AWS KMS DisableKey, then ScheduleKeyDeletion",
        "verified": True,
        "ce_claimable": True,
    }
    return KeyDestroyed(**{**base, **kw})


def test_sse_copies_are_erased_only_under_the_destroyed_verified_storage_key() -> None:
    entries = [
        _entry("a.log", CopyProtection(Protection.SSE_KMS, key=ARN_URI)),
        _entry("b.log", CopyProtection(Protection.SSE_KMS, key=ARN_URI)),
        _entry("c.log", CopyProtection(Protection.PROVIDER_MANAGED, note="SSE-S3")),
    ]
    got = copy_breakdown(entries, [_destroyed()])
    assert (got.ce.versions, got.logical.versions) == (2, 1)
    claims = _claims("s3", got, [_destroyed()], "none", None)
    assert [c.category for c in claims] == [CE, LOGICAL]
    assert "under exactly the storage key's ARN" in claims[0].method
    assert "sidecar" not in claims[0].method
    # not verified, not claimable, or another key destroyed (an alias re-pointed between
    # planning and destruction destroys another ARN): nothing erased
    for keys in (
        [_destroyed(verified=False, ce_claimable=False)],
        [_destroyed(ce_claimable=False)],
        [_destroyed(uri=ARN_URI.replace("k1", "k2"))],
        [],
    ):
        again = copy_breakdown(entries, keys)
        assert (again.ce.versions, again.logical.versions) == (0, 3)


def test_the_certificate_refuses_more_erased_copies_than_found_under_destroyed_keys() -> None:
    from tests.certificate_sample import sample_certificate

    cert = sample_certificate().certificate
    loc = next(x for x in cert.locations if x.ce_covered.versions)
    data = loc.model_dump()
    total = loc.found.versions
    data["protection"] = [
        {"protection": "sse-tenant-key", "key": "arn:other", "copies": total,
         "bytes": loc.found.bytes, "notes": []},
    ]  # fmt: skip
    with pytest.raises(ValueError, match="found under an envelope or the server-side"):
        type(loc).model_validate(data)
    data["protection"][0]["protection"] = "sse-kms"
    type(loc).model_validate(data)  # the same counts under the storage key are consistent


# --------------------------------------------------------------------------------------------
# deploy: written under the storage key as well as the envelope


def test_s3_writes_under_the_storage_key_and_refuses_another_kind_of_key(moto_env: str) -> None:
    system = _kms_key()
    bucket = _bucket()
    store = registry.open_store(f"s3://{bucket}/models/sys")
    under = store.under_server_side_key(f"aws-kms://{system['Arn']}")  # type: ignore[attr-defined]
    under.put("small.bin", [b"x" * 10])
    under.put("large.bin", [b"y" * (9 * 1024 * 1024)])  # multipart
    s3 = boto3.client("s3")
    for key in ("small.bin", "large.bin"):
        head = s3.head_object(Bucket=bucket, Key=f"models/sys/{key}")
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", system["Arn"])
    store.put("plain.bin", [b"z"])  # the original store is unchanged
    assert "SSEKMSKeyId" not in s3.head_object(Bucket=bucket, Key="models/sys/plain.bin")
    with pytest.raises(UnsupportedError, match="named by ARN"):
        store.under_server_side_key("gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k")  # type: ignore[attr-defined]


def test_a_write_the_store_reports_under_another_key_is_refused(moto_env: str) -> None:
    """An endpoint that ignores the requested key (or answers without one) is not taken for
    having written under it: the write raises, and deploy stops."""
    store = registry.open_store(f"s3://{_bucket()}/models/sys")
    under = store.under_server_side_key(ARN_URI)  # type: ignore[attr-defined]
    arn = ARN_URI.removeprefix("aws-kms://")
    for response in (
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": arn + "x"},
        {"ServerSideEncryption": "AES256"},
        {},
    ):
        with pytest.raises(IntegrityError, match="S3 reports"):
            under._check_sse("s3://b/k", response)
    under._check_sse("s3://b/k", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": arn})


def test_the_coverage_benchmark_runs_on_a_small_set() -> None:
    """benchmarks/sse_coverage.py end to end on its own moto server: it fails unless every
    version comes back with the key it was written under and one HEAD per version is counted
    (the ratio it prints is a measurement, not asserted here)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "sse_coverage.py"
    done = subprocess.run(
        [sys.executable, str(script), "--versions", "41", "--trials", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(41 HeadObject)" in done.stdout and "ratio:" in done.stdout
