"""A system whose weights live on moto's S3 and are envelope-encrypted under a cloud KMS KEK
(AWS KMS on moto_server, or Cloud KMS / Key Vault on the fake REST servers), deployed through
``deploy_model``; certificate and model-signing keys on the local keyring; evidence on a local
folder. For tests/flows/test_kms_retirement.py."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from flows.deploy import deploy_model
from flows.models import DecommissionParameters, DeployParameters, Party
from sundown import registry
from tests.spec_builder import spec_yaml

APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")
MODEL = {"config.json": 700, "model.safetensors": 40_000}


@dataclass
class KmsSystem:
    name: str
    root: Path
    spec_path: Path
    bucket: str
    kek: str

    @property
    def weights(self) -> str:
        return f"s3://{self.bucket}/models/{self.name}"

    def params(self, **kw: Any) -> DecommissionParameters:
        return DecommissionParameters(spec_path=str(self.spec_path), variables={}, **kw)


def kms_spec(
    name: str,
    root: Path,
    bucket: str,
    kek: str,
    keys: dict[str, Any] | None = None,
    archive_key: str | None = None,
) -> str:
    weights: dict[str, Any] = {"locations": [f"s3://{bucket}/models/{name}"]}
    if archive_key is not None:
        weights["on_retirement"] = "archive"
    return spec_yaml(
        name,
        assets={"weights": weights},
        archive=None
        if archive_key is None
        else {"target": f"s3://{bucket}/archive/{name}", "key": archive_key},
        keys={
            "kek": kek,
            "model_signing": f"local://{name}-signing",
            "certificate": f"local://{name}-certificates",
            **(keys or {}),
        },
        evidence=(root / "evidence").as_uri(),
    )


def build(
    root: Path,
    kek: str | None = None,
    keys: dict[str, Any] | None = None,
    archive_key: str | None = None,
) -> KmsSystem:
    """Create the bucket, the keys (a new AWS KMS key unless ``kek`` is given) and the spec,
    then deploy a two-file model with ``deploy_model``."""
    name = "kms-" + uuid.uuid4().hex[:8]
    bucket = "kms-" + uuid.uuid4().hex[:12]
    boto3.client("s3").create_bucket(Bucket=bucket)
    if kek is None:
        kek = registry.create_key(f"aws-kms://alias/{name}").uri
    registry.create_key(f"local://{name}-signing", signing=True)
    registry.create_key(f"local://{name}-certificates", signing=True)
    root.mkdir(parents=True, exist_ok=True)
    spec_path = root / f"{name}.yaml"
    spec_path.write_text(kms_spec(name, root, bucket, kek, keys, archive_key))
    model = root / "model"
    model.mkdir()
    for fname, size in MODEL.items():
        (model / fname).write_bytes(os.urandom(size))
    deploy_model(DeployParameters(spec_path=str(spec_path), model_dir=str(model), version="v1"))
    return KmsSystem(name, root, spec_path, bucket, kek)


def download(system: KmsSystem, key: str, dest: Path) -> Path:
    """Copy one object (ciphertext or sidecar) out of the bucket, as an operator who kept a
    copy would."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    boto3.client("s3").download_file(system.bucket, f"models/{system.name}/{key}", str(dest))
    return dest
