"""Fault injection: connectors and a decommission flow behind a faulty proxy still do the right
thing; a permanent error stops the flow before anything more is deleted.

Each backend (moto's S3, gcp-storage-emulator, Azurite, OpenBao) is reached through a
:class:`~tests.reliability.faultproxy.FaultProxy` that answers 10% of requests with a 5xx, the
service's own throttling answer (S3 SlowDown, GCS 429, Azure ServerBusy, Vault 429), a dropped
connection (before forwarding, or after: the server acted and the answer was lost) or a slow
answer. The seed is printed (``-s`` shows it; a failure shows it in the captured output) and
``SUNDOWN_FAULT_SEED`` replays one. The figures (requests, faults injected by kind) go to the
session's reliability figures.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sundown import registry
from sundown.envelope import Artifact, decrypt_stream, encrypt_to_store, read_sidecar
from sundown.errors import PermissionDeniedError
from sundown.store import EntryKind, Inventory
from tests.fixtures.azurite import connection_string
from tests.fixtures.openbao import OpenBao
from tests.reliability.conftest import count
from tests.reliability.faultproxy import Answer, FaultProxy, Flavour, Request
from tests.reliability.world import unique
from tests.spec_builder import spec_yaml

RATE = float(os.environ.get("SUNDOWN_FAULT_RATE", "0.1"))


def _seed() -> int | None:
    value = os.environ.get("SUNDOWN_FAULT_SEED")
    return int(value) if value else None


def record(proxy: FaultProxy) -> None:
    print(proxy.summary())
    if os.environ.get("SUNDOWN_FAULT_LOG"):
        for entry in proxy.log:
            print("   ", *entry)
    count("fault-injected requests", proxy.requests)
    count("faults injected", sum(v for k, v in proxy.injected.items() if "rule" not in k))
    for kind, n in proxy.injected.items():
        count(f"faults injected: {kind}", n)


@pytest.fixture
def faulty() -> Iterator[list[FaultProxy]]:
    """The proxies a test starts; stopped and recorded at the end."""
    proxies: list[FaultProxy] = []
    yield proxies
    for proxy in proxies:
        proxy.stop()
        record(proxy)


def start(proxies: list[FaultProxy], upstream: str, flavour: Flavour, **kw: object) -> FaultProxy:
    """A proxy at the suite's rate; besides the random faults, requests 3, 6, 9, 12 and 15 get a
    throttling answer, a 5xx, a dropped connection, a lost answer and a slow answer, so every
    kind is met whatever the seed."""
    proxy = FaultProxy(upstream, flavour, rate=RATE, seed=_seed(), **kw)  # type: ignore[arg-type]
    proxy.guaranteed = {3: "throttle", 6: "error", 9: "drop", 12: "lost", 15: "slow"}
    proxies.append(proxy.start())
    return proxy


@pytest.fixture
def s3_proxy(
    moto_env: str, monkeypatch: pytest.MonkeyPatch, faulty: list[FaultProxy]
) -> FaultProxy:
    proxy = start(faulty, moto_env, "s3", name="s3 (moto)")
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    return proxy


@pytest.fixture
def vault_proxy(
    vault_env: OpenBao, monkeypatch: pytest.MonkeyPatch, faulty: list[FaultProxy]
) -> FaultProxy:
    proxy = start(faulty, vault_env.addr, "vault", name="vault (OpenBao)")
    monkeypatch.setenv("VAULT_ADDR", proxy.url)
    return proxy


# --------------------------------------------------------------------------------------------
# The store operations every connector has, through the proxy


def _direct(proxy: FaultProxy) -> object:
    """A context in which the proxy passes everything (setup and checks by the test)."""

    class Off:
        def __enter__(self) -> None:
            proxy.enabled = False

        def __exit__(self, *exc: object) -> None:
            proxy.enabled = True

    return Off()


def exercise_store(proxy: FaultProxy, base: str, *, objects: int, versions: int) -> None:
    """put, list, open, inventory, purge and verify on ``base/<unique>`` through the proxy,
    with canaries beside it (checked with faults off). Results must be exact."""
    prefix = unique("data")
    with _direct(proxy):
        canaries = registry.open_store(f"{base}/{prefix}x")
        for i in range(3):
            canaries.put(f"c{i}.bin", [b"canary %d" % i])
        before = sorted((o.key, o.etag) for o in canaries.list())
    store = registry.open_store(f"{base}/{prefix}")
    assert isinstance(store, Inventory)
    written: dict[str, bytes] = {}
    for i in range(objects):
        for v in range(versions if i % 3 == 0 else 1):
            data = os.urandom(64 + i) + bytes([v])
            store.put(f"dir{i % 4}/obj{i}.bin", [data])
            written[f"dir{i % 4}/obj{i}.bin"] = data
    assert sorted(o.key for o in store.list()) == sorted(written)
    for key, data in written.items():
        with store.open(key) as f:
            assert f.read() == data, key
    entries = list(store.inventory())
    current = [e for e in entries if e.kind is EntryKind.OBJECT]
    assert sorted(e.key for e in current) == sorted(written)
    result = store.purge(entries)
    assert not result.failed, result.failed
    assert len(result.deleted) == len(entries)
    assert list(store.inventory()) == []
    with _direct(proxy):
        after = sorted((o.key, o.etag) for o in canaries.list())
        assert after == before
        for i in range(3):
            with canaries.open(f"c{i}.bin") as f:
                assert f.read() == b"canary %d" % i


def test_s3_store_under_faults(s3_proxy: FaultProxy) -> None:
    import boto3

    bucket = unique("faults")
    with _direct(s3_proxy):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    exercise_store(s3_proxy, f"s3://{bucket}", objects=24, versions=2)
    assert sum(s3_proxy.injected.values()) > 0, s3_proxy.summary()


def test_gcs_store_under_faults(
    gcs_emulator_env: str, monkeypatch: pytest.MonkeyPatch, faulty: list[FaultProxy]
) -> None:
    from connectors.gcs import new_client

    proxy = start(faulty, gcs_emulator_env, "gcs", name="gcs (gcp-storage-emulator)")
    bucket = unique("faults")
    created = new_client().create_bucket(bucket)
    created.soft_delete_policy.retention_duration_seconds = 0  # no soft-deleted copies left
    created.patch()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
    exercise_store(proxy, f"gs://{bucket}", objects=20, versions=1)
    assert sum(proxy.injected.values()) > 0, proxy.summary()


def test_azure_store_under_faults(
    azure_env: str, monkeypatch: pytest.MonkeyPatch, faulty: list[FaultProxy]
) -> None:
    from connectors.azure_blob import new_service_client

    endpoint = re.search(r"BlobEndpoint=(http://[^/;]+)", azure_env)
    assert endpoint
    proxy = start(faulty, endpoint[1], "azure", name="azure (Azurite)")
    container = unique("faults")
    new_service_client().create_container(container)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string(proxy.url))
    exercise_store(proxy, f"az://{container}", objects=10, versions=1)
    assert sum(proxy.injected.values()) > 0, proxy.summary()


def test_vault_wrap_unwrap_rewrap_under_faults(
    vault_proxy: FaultProxy, tmp_path: Path, vault_name: str
) -> None:
    """Transit data keys, unwrap, rewrap and rotation through the proxy; envelopes written on
    the file store decrypt to the same bytes."""
    uri = f"vault://transit/{vault_name}"
    with _direct(vault_proxy):
        registry.create_key(uri)
    kek = registry.open_key_service(uri)
    store = registry.open_store(tmp_path.as_uri())
    plain: dict[str, bytes] = {}
    for i in range(12):
        data = os.urandom(1000 + i)
        name = f"a{i}.bin"
        encrypt_to_store(io.BytesIO(data), store, name, kek, Artifact("sys", name, "v1"))
        plain[name] = data
        dek, wrapped = kek.new_data_key()
        assert kek.unwrap(wrapped) == dek
    version = kek.rotate()
    sidecars = [read_sidecar(store, n) for n in plain]
    rewrapped = kek.rewrap([s.wrapped_key for s in sidecars])
    assert {w.key_version for w in rewrapped} == {version}
    for name, data in plain.items():
        sidecar = read_sidecar(store, name)
        with store.open(name) as f:
            assert b"".join(decrypt_stream(f, sidecar, kek)) == data
    assert kek.info().latest_version == version
    assert sum(vault_proxy.injected.values()) > 0, vault_proxy.summary()


# --------------------------------------------------------------------------------------------
# A decommission flow on S3 (and its KEK on OpenBao) through the proxies


def s3_spec(name: str, bucket: str, evidence: Path) -> str:
    """Weights (archived) and logs in one S3 bucket, the KEK on OpenBao."""
    return spec_yaml(
        name,
        classification="confidential",
        assets={
            "weights": {"on_retirement": "archive", "locations": [f"s3://{bucket}/models/{name}"]},
            "logs": {"locations": [f"s3://{bucket}/logs/{name}"]},
        },
        archive={"target": f"s3://{bucket}/archive/{name}", "key": f"local://{name}-archive"},
        keys={"kek": f"vault://transit/{name}-kek", "certificate": f"local://{name}-certs"},
        evidence=f"file://{evidence}",
        approval={"roles": ["security-officer"]},
    )


def _s3_system(
    tmp_path: Path, proxy: FaultProxy
) -> tuple[str, str, dict[str, str], dict[str, bytes]]:
    """(spec yaml, bucket, canaries key -> etag, weights plaintext by name), set up with faults
    off."""
    import boto3

    name = unique("flt")
    bucket = f"{name}-b"
    with _direct(proxy):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        registry.create_key(f"vault://transit/{name}-kek")
        registry.create_key(f"local://{name}-archive")
        registry.create_key(f"local://{name}-certs", signing=True)
        weights = registry.open_store(f"s3://{bucket}/models/{name}")
        kek = registry.open_key_service(f"vault://transit/{name}-kek")
        plain = {f"shard-{i}.bin": os.urandom(3000 + i) for i in range(3)}
        for fname, data in plain.items():
            encrypt_to_store(io.BytesIO(data), weights, fname, kek, Artifact(name, fname, "v1"))
        for i in range(12):
            for v in range(2):
                s3.put_object(Bucket=bucket, Key=f"logs/{name}/{i}.log", Body=os.urandom(50 + v))
        s3.delete_object(Bucket=bucket, Key=f"logs/{name}/0.log")
        canaries = {}
        for key in (f"models/{name}x/c", f"logs/{name}-old/c", f"logs/{name}.bin", "other/c"):
            canaries[key] = s3.put_object(Bucket=bucket, Key=key, Body=key.encode())["ETag"]
    spec = s3_spec(name, bucket, tmp_path / "evidence")
    return spec, bucket, canaries, plain


def _canaries_intact(bucket: str, canaries: dict[str, str]) -> None:
    import boto3

    s3 = boto3.client("s3")
    for key, etag in canaries.items():
        versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
        assert [v["ETag"] for v in versions if v["Key"] == key] == [etag], key


def test_decommission_on_s3_completes_under_faults(
    s3_proxy: FaultProxy, vault_proxy: FaultProxy, tmp_path: Path, prefect_api: str
) -> None:
    import boto3

    from flows.decommission import decommission_system
    from flows.models import DecommissionParameters
    from sundown.certificate import verify_certificate

    spec, bucket, canaries, plain = _s3_system(tmp_path, s3_proxy)
    name = spec.split("name: ", 1)[1].split("\n", 1)[0]
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    assert [loc.found for loc in plan.locations] == [6, 12 * 2 + 1]
    result = _approved_run(spec, plan.plan_digest)
    assert result.status == "complete", result.exceptions
    with _direct(s3_proxy), _direct(vault_proxy):
        s3 = boto3.client("s3")
        for prefix in (f"models/{name}/", f"logs/{name}/"):
            left = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
            assert not left.get("Versions") and not left.get("DeleteMarkers"), prefix
        _canaries_intact(bucket, canaries)
        # nothing lost: the archive decrypts to the original weights under the archive key
        archive = registry.open_store(f"s3://{bucket}/archive/{name}")
        restored = {}
        for info in archive.list():
            if info.key.endswith(".sidecar.json"):
                continue
            sidecar = read_sidecar(archive, info.key)
            with archive.open(info.key) as f:
                restored[info.key.rsplit("/", 1)[-1]] = b"".join(decrypt_stream(f, sidecar))
        assert restored == plain
        pub = registry.open_signer(f"local://{name}-certs").public_key_pem()
        cert_path = Path(str(result.certificate_url).removeprefix("file://"))
        cert = verify_certificate(cert_path.read_bytes(), pub).certificate
        assert cert.status.value == "complete"
        assert [k.verified for k in cert.keys_destroyed] == [True]
    assert sum(s3_proxy.injected.values()) > 0, s3_proxy.summary()
    count("decommissions under faults")


def _approved_run(spec: str, plan_digest: str) -> Any:
    """The approved retirement of ``spec``'s plan, in batches of five."""
    from flows.decommission import decommission_system
    from flows.models import DecommissionParameters, Party

    return decommission_system(
        DecommissionParameters(
            spec_yaml=spec,
            approve_digest=plan_digest,
            approver=Party(name="Lee", role="security-officer"),
            batch_size=5,
        )
    )


def _delete_request(request: Request) -> bool:
    """DeleteObjects (POST ?delete) or DeleteObject (DELETE ...?versionId=...)."""
    query = request.query
    return (request.method == "POST" and re.search(r"(^|&)delete(=|&|$)", query) is not None) or (
        request.method == "DELETE" and "uploadId" not in query
    )


DENIED = Answer(
    403,
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>fault</RequestId></Error>",
    {"Content-Type": "application/xml"},
)


def test_permanent_403_on_delete_stops_the_flow_before_further_deletes(
    s3_proxy: FaultProxy, vault_proxy: FaultProxy, tmp_path: Path, prefect_api: str
) -> None:
    """Every delete is refused (403 AccessDenied on the whole request, as a bucket policy
    denying s3:DeleteObject does). The flow fails with a message naming the location and the
    refusal; no delete is attempted after the first refusal (beyond the requests already in
    flight with it), the KEK is not destroyed and no certificate says complete."""
    from flows.decommission import decommission_system
    from flows.models import DecommissionParameters

    spec, bucket, canaries, _ = _s3_system(tmp_path, s3_proxy)
    name = spec.split("name: ", 1)[1].split("\n", 1)[0]
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    s3_proxy.enabled = False  # only the rule: a deterministic refusal
    s3_proxy.rules.append(lambda r: DENIED if _delete_request(r) else None)
    with pytest.raises(Exception) as err:
        _approved_run(spec, plan.plan_digest)
    message = str(err.value)
    print(f"refusal: {type(err.value).__name__}: {message}")
    assert "AccessDenied" in message or "permission denied" in message.lower(), message
    assert f"s3://{bucket}/" in message, message
    deletes = [entry for entry in s3_proxy.log if entry[3] == "rule"]
    # DeleteObjects sends up to 4 requests in flight: at most those, never another batch
    assert 1 <= len(deletes) <= 4, deletes
    registry.open_key_service(f"vault://transit/{name}-kek").info()  # not destroyed
    certificates = list((tmp_path / "evidence").rglob("certificate.dsse.json"))
    assert certificates == []
    s3_proxy.rules.clear()
    _canaries_intact(bucket, canaries)
    count("permanent-error stops checked")


def test_per_object_access_denied_stops_before_further_batches(
    s3_proxy: FaultProxy, vault_proxy: FaultProxy, tmp_path: Path, prefect_api: str
) -> None:
    """DeleteObjects answers 200 with an AccessDenied <Error> for every key (what S3 does when a
    policy denies deleting those objects). The first batch reports them failed; the flow must
    not go on deleting batch after batch, nor destroy the key, nor certify 'complete'.
    Regression (was a strict xfail): the run now stops at the first refused batch, naming it."""
    from flows.decommission import decommission_system
    from flows.models import DecommissionParameters

    spec, bucket, canaries, _ = _s3_system(tmp_path, s3_proxy)
    name = spec.split("name: ", 1)[1].split("\n", 1)[0]
    plan = decommission_system(DecommissionParameters(spec_yaml=spec, dry_run=True))
    s3_proxy.enabled = False

    def per_key_denied(request: Request) -> Answer | None:
        if not _delete_request(request) or request.method != "POST":
            return None
        keys = re.findall(rb"<Key>(.*?)</Key>.*?<VersionId>(.*?)</VersionId>", request.body, re.S)
        errors = b"".join(
            b"<Error><Key>%s</Key><VersionId>%s</VersionId><Code>AccessDenied</Code>"
            b"<Message>Access Denied</Message></Error>" % (k, v)
            for k, v in keys
        )
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns='
            b'"http://s3.amazonaws.com/doc/2006-03-01/">' + errors + b"</DeleteResult>"
        )
        return Answer(200, body, {"Content-Type": "application/xml"})

    s3_proxy.rules.append(per_key_denied)
    outcome: Any
    try:
        outcome = _approved_run(spec, plan.plan_digest)
    except Exception as exc:
        outcome = exc
    refused = [entry for entry in s3_proxy.log if entry[3] == "rule"]
    print(f"outcome: {outcome!r}; {len(refused)} refused delete requests")
    s3_proxy.rules.clear()
    _canaries_intact(bucket, canaries)
    assert getattr(outcome, "status", None) != "complete"
    with _direct(vault_proxy):
        registry.open_key_service(f"vault://transit/{name}-kek").info()  # not destroyed
    assert len(refused) == 1, f"{len(refused)} delete requests after the first refusal"
    assert isinstance(outcome, PermissionDeniedError), outcome
    assert "AccessDenied" in str(outcome) and "no key was destroyed" in str(outcome)
    assert f"s3://{bucket}/" in str(outcome) and "stopped at batch 0" in str(outcome)
    assert list((tmp_path / "evidence").rglob("certificate.dsse.json")) == []


# --------------------------------------------------------------------------------------------
# A create-only write whose answer is lost: the server wrote it, the client retried


def _first_put_of(suffix: str) -> Any:
    state = {"done": False}

    def rule(request: Request) -> str | None:
        path = request.path.split("?")[0]
        if request.method == "PUT" and path.endswith(suffix) and not state["done"]:
            state["done"] = True
            return "lost"
        return None

    return rule


def test_lost_answer_of_a_create_only_put_is_not_a_conflict(s3_proxy: FaultProxy) -> None:
    """The journal's and the ledger's create-only writes on an S3 evidence location: the first
    PUT reaches S3 but its answer is lost; botocore retries, S3 answers 412 (it exists now)."""
    import boto3

    from flows.journal import Journal

    bucket = unique("evidence")
    with _direct(s3_proxy):
        boto3.client("s3").create_bucket(Bucket=bucket)
    s3_proxy.enabled = False
    store = registry.open_store(f"s3://{bucket}/sundown")
    registry.create_key("local://sys-l-certificates", signing=True)
    journal = Journal(store, "sys-l", "sha256:" + "1" * 64, "local://sys-l-certificates")
    s3_proxy.rules.append(_first_put_of("/journal/step-a.json"))
    record = journal.record("step-a", {"n": 1})
    assert record.data == {"n": 1}
    assert s3_proxy.injected["rule lost"] == 1


def test_lost_answer_of_a_ledger_append_does_not_duplicate_the_record(
    s3_proxy: FaultProxy,
) -> None:
    """Regression (was a strict xfail): the retried create-only write meets its own record and
    returns it instead of appending the same event again at the next number."""
    import boto3

    from sundown.ledger import Ledger

    bucket = unique("ledger")
    with _direct(s3_proxy):
        boto3.client("s3").create_bucket(Bucket=bucket)
        registry.create_key("local://ledger-lost-signer", signing=True)
    s3_proxy.enabled = False
    signer = registry.open_signer("local://ledger-lost-signer")
    ledger = Ledger(registry.open_store(f"s3://{bucket}/sundown"))
    ledger.initialise(signer)
    s3_proxy.rules.append(_first_put_of("/records/000000000001.json"))
    ledger.append("decommission", "decommissioned sys-l", "sha256:" + "2" * 64, "s3://x/y", signer)
    assert s3_proxy.injected["rule lost"] == 1
    kinds = [r.record.kind.value for r in ledger.records()]
    assert kinds == ["genesis", "decommission"], kinds
