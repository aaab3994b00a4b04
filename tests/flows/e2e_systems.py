"""A system spread over moto's S3/IAM, a GCS emulator, Azurite and OpenBao, for the end-to-end
test (tests/flows/test_end_to_end.py).

:func:`build_system` creates unique buckets and a container, the system's Vault keys and
credentials (transit keys, a KV secret, a token, an AppRole with a secret id, an IAM access key,
an Azure stored access policy, and a ``rotation`` section delivering rotated secrets into Vault
KV) and writes the spec. :func:`seed` adds what a deployment does not make by itself: a delete
marker, an incomplete multipart upload, log objects with several versions, a legally held
version, and canaries beside every prefix (string-prefix siblings ``models/NAMEx``,
``models/NAME-old``, ``models/NAME.bin`` and a sibling system), with versions, a delete marker,
an upload and a snapshot of their own. Beside every Vault object of
the system, and beside its IAM user and stored policy, there is one of a sibling name that
must survive too.

:func:`copies` lists every copy of every cloud with its SHA-256 (S3 versions and delete markers,
multipart uploads, GCS generations, Azure blobs and snapshots), so a test can compare what is
outside the system's scope before and after, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import hvac
from azure.storage.blob import AccessPolicy, BlobServiceClient, ContainerSasPermissions

from connectors.gcs import new_client as gcs_client
from sundown import registry
from tests.fixtures.openbao import OpenBao
from tests.spec_builder import Block, Flow, spec_yaml


def spec_text(system: MultiCloudSystem) -> str:
    """Weights in the three clouds, logs on S3, keys in OpenBao transit, one credential of
    every kind, rotated secrets delivered into Vault KV, evidence on S3."""
    name = system.name
    return spec_yaml(
        name,
        classification="confidential",
        description="End-to-end system with weights in three clouds and keys in OpenBao.",
        assets={
            "weights": {
                "classification": "restricted",
                "locations": [
                    f"s3://{system.s3_bucket}/models/{name}",
                    f"gs://{system.gcs_bucket}/models/{name}",
                    f"az://{system.container}/models/{name}",
                ],
            },
            "logs": {"locations": [f"s3://{system.s3_bucket}/logs/{name}"]},
        },
        keys={
            "kek": system.kek,
            "model_signing": f"vault://transit/{name}-signing",
            "certificate": system.certificate_key,
        },
        credentials={
            "vault_kv": [{"mount": "secret", "path": f"systems/{name}/db"}],
            "vault_token_accessors": [system.accessor],
            "vault_approles": [
                Block(role=f"{name}-serving", secret_id_accessors=[system.secret_id_accessor])
            ],
            "aws_access_keys": [
                {"user": system.iam_user, "access_key_ids": [system.access_key_id]}
            ],
            "azure_stored_policies": [
                {"container": system.container, "policy_id": system.policy_id}
            ],
        },
        rotation={"deliver_to": Flow(mount="secret", path=f"systems/{name}/rotated")},
        evidence=f"s3://{system.evidence_bucket}/sundown",
        approval={"roles": ["security-officer"]},
    )


MODEL = {"config.json": 700, "model.safetensors": 150_000}


@dataclass
class MultiCloudSystem:
    name: str
    root: Path
    s3_bucket: str
    evidence_bucket: str
    gcs_bucket: str
    container: str
    access_key_id: str = ""
    other_access_key_id: str = ""  # of the sibling user NAMEx-ci
    accessor: str = ""
    other_accessor: str = ""
    secret_id_accessor: str = ""
    spec_path: Path = field(default_factory=Path)
    held: tuple[str, str] = ("", "")  # (S3 key, version id) under legal hold

    @property
    def kek(self) -> str:
        return f"vault://transit/{self.name}-kek"

    @property
    def certificate_key(self) -> str:
        return f"vault://transit/{self.name}-certificates"

    @property
    def sibling_kek(self) -> str:
        return f"vault://transit/{self.name}x-kek"

    @property
    def iam_user(self) -> str:
        return f"{self.name}-ci"

    @property
    def other_iam_user(self) -> str:
        return f"{self.name}x-ci"

    @property
    def policy_id(self) -> str:
        return f"{self.name}-read"

    def scopes(self) -> dict[str, list[str]]:
        """Each cloud's container -> the prefixes in the system's scope (path boundaries)."""
        return {
            f"s3://{self.s3_bucket}": [f"models/{self.name}/", f"logs/{self.name}/"],
            f"gs://{self.gcs_bucket}": [f"models/{self.name}/"],
            f"az://{self.container}": [f"models/{self.name}/"],
        }

    def in_scope(self, where: str, key: str) -> bool:
        return any(key.startswith(p) for p in self.scopes()[where])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def azure() -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])


def build_system(root: Path, openbao: OpenBao) -> MultiCloudSystem:
    """Buckets, container, keys and credentials of a fresh system; writes its spec file."""
    name = "e2e-" + uuid.uuid4().hex[:10]
    root.mkdir(parents=True, exist_ok=True)
    system = MultiCloudSystem(
        name=name,
        root=root,
        s3_bucket=f"{name}-models",
        evidence_bucket=f"{name}-evidence",
        gcs_bucket=f"{name}-models",
        container=f"{name}-models",
    )
    s3 = boto3.client("s3")
    # Object Lock (which turns versioning on) so that a version can be put under legal hold.
    s3.create_bucket(Bucket=system.s3_bucket, ObjectLockEnabledForBucket=True)
    s3.create_bucket(Bucket=system.evidence_bucket)
    # GCS's default for new buckets: a 7-day soft-delete window, kept (gcp-storage-emulator
    # keeps the soft-deleted generations; the certificate states the window).
    gcs_client().create_bucket(system.gcs_bucket)
    container = azure().create_container(system.container)
    policy = AccessPolicy(
        permission=ContainerSasPermissions(read=True, list=True),
        start=None,
        expiry="2099-01-01T00:00:00Z",
    )
    container.set_container_access_policy({system.policy_id: policy, "other-read": policy})

    for uri, signing in (
        (system.kek, False),
        (f"vault://transit/{name}-signing", True),
        (system.certificate_key, True),
        (system.sibling_kek, False),
    ):
        registry.create_key(uri, signing=signing)

    vault = hvac.Client(url=openbao.addr, token=openbao.root_token)
    for path in (f"systems/{name}/db", f"systems/{name}x/db"):
        vault.secrets.kv.v2.create_or_update_secret(path, secret={"password": uuid.uuid4().hex})
    vault.secrets.kv.v2.create_or_update_secret(
        f"systems/{name}/db", secret={"password": uuid.uuid4().hex}
    )  # a second KV version
    system.accessor = vault.auth.token.create(policies=["default"], ttl="1h")["auth"]["accessor"]
    system.other_accessor = vault.auth.token.create(policies=["default"], ttl="1h")["auth"][
        "accessor"
    ]
    for role in (f"{name}-serving", f"{name}x-serving"):
        vault.auth.approle.create_or_update_approle(role, token_policies=["default"])
    secret_id = vault.auth.approle.generate_secret_id(f"{name}-serving")["data"]
    system.secret_id_accessor = secret_id["secret_id_accessor"]

    iam = boto3.client("iam")
    for user in (system.iam_user, system.other_iam_user):
        iam.create_user(UserName=user)
    system.access_key_id = iam.create_access_key(UserName=system.iam_user)["AccessKey"][
        "AccessKeyId"
    ]
    system.other_access_key_id = iam.create_access_key(UserName=system.other_iam_user)["AccessKey"][
        "AccessKeyId"
    ]

    system.spec_path = root / f"{name}.yaml"
    system.spec_path.write_text(spec_text(system))
    return system


def make_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in MODEL.items():
        (folder / name).write_bytes(os.urandom(size))
    return folder


def seed(system: MultiCloudSystem) -> None:
    """What a deployment does not make by itself, in scope and beside it. Call after the
    deployments: the legal hold goes on the first deployment's ``config.json``, a noncurrent
    version (the model in production when an incident happened)."""
    s3 = boto3.client("s3")
    bucket = system.s3_bucket
    weights, logs = f"models/{system.name}", f"logs/{system.name}"
    # in scope: a delete marker, an incomplete multipart upload, versioned logs, a held version
    s3.put_object(Bucket=bucket, Key=f"{weights}/tokenizer.json", Body=b'{"vocab": 3}')
    s3.delete_object(Bucket=bucket, Key=f"{weights}/tokenizer.json")
    upload = s3.create_multipart_upload(Bucket=bucket, Key=f"{weights}/shard-00002.bin")
    s3.upload_part(
        Bucket=bucket,
        Key=f"{weights}/shard-00002.bin",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=os.urandom(1000),
    )
    for day in ("2025-01-01", "2025-01-02"):
        for _ in range(2):
            s3.put_object(Bucket=bucket, Key=f"{logs}/{day}.log", Body=os.urandom(300))
    versions = s3.list_object_versions(Bucket=bucket, Prefix=f"{weights}/config.json")
    # LastModified has one-second resolution: two deployments within one second tie, so the
    # noncurrent version is found by IsLatest, not by time
    noncurrent = [
        v
        for v in versions["Versions"]
        if v["Key"] == f"{weights}/config.json" and not v["IsLatest"]
    ]
    assert len(noncurrent) == 1, versions["Versions"]
    oldest = noncurrent[0]
    s3.put_object_legal_hold(
        Bucket=bucket,
        Key=f"{weights}/config.json",
        VersionId=oldest["VersionId"],
        LegalHold={"Status": "ON"},
    )
    system.held = (f"{weights}/config.json", oldest["VersionId"])

    # canaries beside every prefix of every cloud
    for prefix in (weights, logs):
        parent = prefix.rsplit("/", 1)[0]
        for key in (
            f"{prefix}x/canary.bin",
            f"{prefix}-old/canary.bin",
            f"{prefix}.bin",
            f"{parent}/other-system/weights.bin",
        ):
            for _ in range(2):  # two versions each
                s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(64))
        s3.put_object(Bucket=bucket, Key=f"{prefix}-old/deleted.bin", Body=b"old")
        s3.delete_object(Bucket=bucket, Key=f"{prefix}-old/deleted.bin")
        s3.create_multipart_upload(Bucket=bucket, Key=f"{prefix}x/upload.bin")
    s3.put_object(Bucket=bucket, Key="unrelated.bin", Body=os.urandom(16))

    gcs = gcs_client().bucket(system.gcs_bucket)
    azc = azure().get_container_client(system.container)
    for key in (
        f"{weights}x/canary.bin",
        f"{weights}-old/canary.bin",
        f"{weights}.bin",
        "models/other-system/weights.bin",
    ):
        gcs.blob(key).upload_from_string(os.urandom(64))
        azc.upload_blob(key, os.urandom(64))
    azc.get_blob_client(f"{weights}x/canary.bin").create_snapshot()


def copies(system: MultiCloudSystem) -> dict[tuple[str, str, str, str], str]:
    """Every copy in the system's buckets and container, in scope or not:
    (container URL, key, kind, version) -> sha256 of its bytes (or "" for a marker/upload)."""
    out: dict[tuple[str, str, str, str], str] = {}
    s3 = boto3.client("s3")
    where = f"s3://{system.s3_bucket}"
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=system.s3_bucket):
        for v in page.get("Versions", []):
            body = s3.get_object(Bucket=system.s3_bucket, Key=v["Key"], VersionId=v["VersionId"])
            out[(where, v["Key"], "version", v["VersionId"])] = _sha(body["Body"].read())
        for m in page.get("DeleteMarkers", []):
            out[(where, m["Key"], "delete_marker", m["VersionId"])] = ""
    for u in s3.list_multipart_uploads(Bucket=system.s3_bucket).get("Uploads", []):
        out[(where, u["Key"], "multipart_upload", u["UploadId"])] = ""

    where = f"gs://{system.gcs_bucket}"
    client = gcs_client()
    for blob in client.list_blobs(system.gcs_bucket, versions=True):
        out[(where, blob.name, "generation", str(blob.generation))] = _sha(blob.download_as_bytes())

    out.update(azure_copies(system.container))
    return out


def azure_copies(container: str) -> dict[tuple[str, str, str, str], str]:
    """Every blob and snapshot of an Azure container -> sha256 of its bytes."""
    out: dict[tuple[str, str, str, str], str] = {}
    client = azure().get_container_client(container)
    for props in client.list_blobs(include=["snapshots"]):
        data = client.get_blob_client(props.name, snapshot=props.snapshot).download_blob()
        kind = "snapshot" if props.snapshot else "blob"
        out[(f"az://{container}", props.name, kind, props.snapshot or "")] = _sha(data.readall())
    return out


def split(
    system: MultiCloudSystem, found: dict[tuple[str, str, str, str], str]
) -> tuple[dict[Any, str], dict[Any, str]]:
    """(copies in the system's scope, copies outside it)."""
    inside = {k: v for k, v in found.items() if system.in_scope(k[0], k[1])}
    outside = {k: v for k, v in found.items() if not system.in_scope(k[0], k[1])}
    return inside, outside
