"""Secrets: plant known secret values, run the lifecycle through the CLI, and look for them
everywhere they could end up.

Planted: the Vault token the flows use (a child of the root token), the token whose accessor the
spec revokes, the AWS secret access key in the environment and an IAM user's secret key, the
Azure account key, the KV secret's values, and every data key (DEK) the KEKs hand out or unwrap
(captured by wrapping the transit key service in this test). Then ``sundown deploy``,
``rotate``, ``plan``, ``decommission``, ``revoke`` and some failing commands run; afterwards no
spelling of any secret (raw, hex, base64) may appear in the Prefect server's logs, artifacts,
flow-run and task-run records, the CLI's output and error lines, the evidence folder (ledger,
receipts, journal, plan, manifest, certificate envelope and payload, PDF streams), the work
folder, or the flow results.
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import hvac
import pytest
from azure.storage.blob import AccessPolicy, BlobServiceClient, ContainerSasPermissions

from sundown import registry
from tests.fixtures.azurite import AZURITE_KEY
from tests.fixtures.openbao import OpenBao
from tests.reliability.conftest import CliRun, count
from tests.reliability.leaks import file_texts, find, prefect_texts
from tests.spec_builder import Flow, spec_yaml


def spec_text(
    name: str, *, bucket: str, container: str, accessor: str, key_id: str, root: Path
) -> str:
    """Weights (archived) on S3 and logs on Azure, Vault keys, one credential of each kind the
    secrets test plants, rotation into Vault KV."""
    return spec_yaml(
        name,
        owner="security@example.com",
        classification="restricted",
        assets={
            "weights": {"on_retirement": "archive", "locations": [f"s3://{bucket}/models/{name}"]},
            "logs": {"locations": [f"az://{container}/logs/{name}"]},
        },
        archive={
            "target": f"s3://{bucket}/archive/{name}",
            "key": f"vault://transit/{name}-archive",
        },
        keys={
            "kek": f"vault://transit/{name}-kek",
            "model_signing": f"vault://transit/{name}-signing",
            "certificate": f"local://{name}-certs",
        },
        credentials={
            "vault_kv": [{"path": f"{name}/db"}],
            "vault_token_accessors": [accessor],
            "aws_access_keys": [{"user": f"{name}-ci", "access_key_ids": [key_id]}],
            "azure_stored_policies": [{"container": container, "policy_id": "readers"}],
        },
        rotation={
            "deliver_to": Flow(mount="secret", path=f"{name}/rotated"),
            "grace_period_hours": 0,
        },
        evidence=f"file://{root}/evidence",
        approval={"roles": ["security-officer"]},
    )


class DekCapture:
    """Records every DEK the transit key service hands out or unwraps in this process."""

    def __init__(self) -> None:
        self.deks: list[bytes] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from connectors.vault import VaultTransitKey

        new, unwrap = VaultTransitKey.new_data_key, VaultTransitKey.unwrap

        def new_data_key(service: VaultTransitKey) -> Any:
            dek, wrapped = new(service)
            self.deks.append(bytes(dek))
            return dek, wrapped

        def unwrapped(service: VaultTransitKey, wrapped: Any) -> bytes:
            dek = unwrap(service, wrapped)
            self.deks.append(bytes(dek))
            return dek

        monkeypatch.setattr(VaultTransitKey, "new_data_key", new_data_key)
        monkeypatch.setattr(VaultTransitKey, "unwrap", unwrapped)


def test_no_secret_in_logs_artifacts_evidence_errors_or_output(
    tmp_path: Path,
    vault_env: OpenBao,
    moto_env: str,
    azure_env: str,
    prefect_api: str,
    cli: CliRun,
    monkeypatch: pytest.MonkeyPatch,
    sundown_home: Path,
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    name = "sec-" + uuid.uuid4().hex[:8]
    root = tmp_path / "world"
    root.mkdir()
    planted: dict[str, str | bytes] = {"Azure account key": AZURITE_KEY}

    # -- the servers' side: a token for the flows, credentials of the system ------------------
    admin = hvac.Client(url=vault_env.addr, token=vault_env.root_token)
    flow_token = admin.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    planted["Vault token used by the flows"] = flow_token
    planted["Vault root token"] = vault_env.root_token
    monkeypatch.setenv("VAULT_TOKEN", flow_token)
    victim = admin.auth.token.create(policies=["default"], ttl="1h")["auth"]
    planted["Vault token revoked by accessor"] = victim["client_token"]
    kv = {"password": "pw-" + secrets.token_urlsafe(24), "api_key": secrets.token_urlsafe(24)}
    admin.secrets.kv.v2.create_or_update_secret(f"{name}/db", secret=kv, mount_point="secret")
    planted |= {f"KV {k}": v for k, v in kv.items()}
    aws_secret = "plantedAwsSecret" + secrets.token_urlsafe(18)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws_secret)
    planted["AWS secret access key (environment)"] = aws_secret
    iam = boto3.client("iam")
    iam.create_user(UserName=f"{name}-ci")
    key = iam.create_access_key(UserName=f"{name}-ci")["AccessKey"]
    planted["IAM user's secret access key"] = key["SecretAccessKey"]
    bucket = f"{name}-bucket"
    boto3.client("s3").create_bucket(Bucket=bucket)
    boto3.client("s3").put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    container = BlobServiceClient.from_connection_string(azure_env).create_container(f"c{name}")
    for i in range(3):
        container.upload_blob(f"logs/{name}/{i}.log", os.urandom(200))
    policy = AccessPolicy(
        permission=ContainerSasPermissions(read=True), expiry=datetime.now(UTC) + timedelta(days=1)
    )
    container.set_container_access_policy({"readers": policy})
    for uri, signing in (
        (f"vault://transit/{name}-kek", False),
        (f"vault://transit/{name}-archive", False),
        (f"vault://transit/{name}-signing", True),
        (f"local://{name}-certs", True),
    ):
        registry.create_key(uri, signing=signing)
    spec = root / f"{name}.yaml"
    spec.write_text(
        spec_text(
            name,
            bucket=bucket,
            container=container.container_name,
            accessor=victim["accessor"],
            key_id=key["AccessKeyId"],
            root=root,
        )
    )
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_bytes(b'{"layers": 2}')
    (model / "model.safetensors").write_bytes(os.urandom(20_000))

    capture = DekCapture()
    capture.install(monkeypatch)
    outputs: list[tuple[str, bytes]] = []

    def run(*argv: Any, code: int = 0) -> str:
        got, out, err = cli(*argv)
        outputs.append((f"sundown {argv[0]} stdout", out.encode()))
        outputs.append((f"sundown {argv[0]} stderr", err.encode()))
        assert got == code, f"sundown {argv[0]}: exit {got}\n{err}\n{out}"
        return out + err

    # -- the lifecycle through the CLI --------------------------------------------------------
    run("deploy", spec, model, "--version", "v1")
    run("rotate", spec)
    admin_kv = admin.secrets.kv.v2.read_secret_version(
        f"{name}/db", mount_point="secret", raise_on_deleted_version=True
    )
    planted |= {f"KV {k} (rotated)": v for k, v in admin_kv["data"]["data"].items()}
    delivered = admin.secrets.kv.v2.read_secret_version(
        f"{name}/rotated/aws/{name}-ci", mount_point="secret", raise_on_deleted_version=True
    )["data"]["data"]
    planted["delivered AWS secret access key"] = delivered["aws_secret_access_key"]
    sas = admin.secrets.kv.v2.read_secret_version(
        f"{name}/rotated/azure/{container.container_name}/readers",
        mount_point="secret",
        raise_on_deleted_version=True,
    )["data"]["data"]["sas_token"]
    planted["delivered SAS signature"] = re.search(r"sig=([^&]+)", sas)[1]  # type: ignore[index]
    planted["delivered SAS token"] = sas
    plan = run("plan", spec)
    digest = re.search(r"Plan digest: (sha256:[0-9a-f]{64})", plan)
    assert digest, plan
    done = run(
        "decommission", spec, "--approve", digest[1], "--approver", "Lee Marchetti",
        "--approver-role", "security-officer",
    )  # fmt: skip
    assert f"{name}: complete" in done, done
    run("revoke", spec, "--reason", "drill")
    # failing commands: their error lines and the failed flow runs' logs and states
    run("keys", "info", f"vault://transit/{name}-kek", code=5)
    bogus = "hvs." + secrets.token_urlsafe(30)
    planted["bogus Vault token"] = bogus
    monkeypatch.setenv("VAULT_TOKEN", bogus)
    run("keys", "info", f"vault://transit/{name}-archive", code=6)
    run("deploy", spec, model, "--version", "v2", code=6)

    # -- where secrets could be ----------------------------------------------------------------
    assert len(capture.deks) >= 4, "no DEK was captured: the wrapper did not see the flows"
    for i, dek in enumerate(capture.deks):
        assert len(dek) == 32
        planted[f"DEK #{i}"] = dek
    from_prefect, seen = prefect_texts(since)
    haystack = (
        outputs
        + from_prefect
        + file_texts(root)  # evidence: ledger, receipts, journal, plan, certificate, PDF
        + file_texts(sundown_home, skip=[sundown_home / "keys"])  # work folder, plans
    )
    # the read-back works: what must be there is there
    texts = b"\n".join(t for _, t in haystack)
    assert seen["flow runs"] >= 6 and seen["logs"] >= 10 and seen["artifacts"] >= 4, seen
    assert b"decommission-certificate" in texts and digest[1].encode() in texts
    assert key["AccessKeyId"].encode() in texts  # public identifiers are recorded
    assert victim["accessor"].encode() in texts
    assert any(w.endswith("(stream)") for w, _ in haystack), "no PDF stream was read"
    assert any(w.endswith("(payload)") for w, _ in haystack), "no DSSE payload was read"
    assert b"permission denied" in texts.lower()
    assert find({"probe": key["AccessKeyId"]}, haystack), "the search cannot find anything"

    count("secrets planted", len(planted))
    count("places searched for secrets", len(haystack))
    leaks = find(planted, haystack)
    assert not leaks, "\n".join(leaks)
