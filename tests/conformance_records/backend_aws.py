"""sagemaker:// and aws-logs:// in the record conformance suite, on the session's moto_server.

- ``sagemaker://us-east-1/P-*``: an endpoint ``P-e`` serving the configuration ``P-c`` and its
  model ``P-m0``, plus models ``P-m1``...; canaries: the endpoint ``Px-e`` serving the model
  ``Px-m0`` (same region, a name that shares the prefix without the ``-`` boundary).
- ``aws-logs://us-east-1//sundown-test/P``: the group ``/sundown-test/P`` and its streams, each
  with the canary in its events; canaries: the groups ``/sundown-test/P-v2`` and
  ``/sundown-test/Px`` with their events.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from tests.backend_modules import BackendSpec
from tests.conformance_records import RecordBackend, Seeded, unique
from tests.fixtures.moto import MOTO_REGION

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/support-bot:latest"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"


def sagemaker() -> Any:
    return boto3.client("sagemaker", region_name=MOTO_REGION)


def logs() -> Any:
    return boto3.client("logs", region_name=MOTO_REGION)


def make_model(name: str, text: str, data_url: str | None = None) -> None:
    container: dict[str, Any] = {"Image": IMAGE, "Environment": {"NOTE": text}}
    if data_url:
        container["ModelDataUrl"] = data_url
    sagemaker().create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)


def make_endpoint(name: str, config: str, models: list[str], capture: str | None = None) -> None:
    extra: dict[str, Any] = {}
    if capture:
        extra["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": capture,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
    sagemaker().create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": f"v{i}",
                "ModelName": m,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
            for i, m in enumerate(models)
        ],
        **extra,
    )
    sagemaker().create_endpoint(EndpointName=name, EndpointConfigName=config)


def describe_all(idents: list[str]) -> dict[str, Any]:
    sm = sagemaker()
    out: dict[str, Any] = {}
    for ident in idents:
        kind, _, name = ident.partition(":")
        body = {
            "endpoint": lambda n: sm.describe_endpoint(EndpointName=n),
            "endpoint-config": lambda n: sm.describe_endpoint_config(EndpointConfigName=n),
            "model": lambda n: sm.describe_model(ModelName=n),
        }[kind](name)
        body.pop("ResponseMetadata", None)
        out[ident] = body
    return out


class SageMakerBackend(RecordBackend):
    name = "sagemaker"

    def seed(self, n: int, *, whole: bool = False) -> Seeded:
        prefix = unique("support-bot-")
        canary = unique("CANARY-")
        ids: list[str] = []
        models = max(n - 2, 1) if n >= 3 else n
        for i in range(models):
            make_model(f"{prefix}-m{i}", f"{canary} {i}", f"s3://models/{prefix}/m{i}.tar.gz")
            ids.append(f"model:{prefix}-m{i}")
        if n >= 3:
            make_endpoint(f"{prefix}-e", f"{prefix}-c", [f"{prefix}-m0"])
            ids += [f"endpoint:{prefix}-e", f"endpoint-config:{prefix}-c"]
        make_model(f"{prefix}x-m0", "foreign")
        make_endpoint(f"{prefix}x-e", f"{prefix}x-c", [f"{prefix}x-m0"])
        foreign = [f"model:{prefix}x-m0", f"endpoint-config:{prefix}x-c", f"endpoint:{prefix}x-e"]
        seeded = Seeded(f"sagemaker://{MOTO_REGION}/{prefix}-*", None, ids, foreign, canary)
        seeded.names["prefix"] = prefix
        return seeded

    def add_in_scope(self, seeded: Seeded) -> str:
        name = f"{seeded.names['prefix']}-late{time.monotonic_ns()}"
        make_model(name, "written late")
        return f"model:{name}"

    def outside(self, seeded: Seeded) -> object:
        return describe_all(seeded.foreign_ids)


def put_events(group: str, stream: str, texts: list[str]) -> None:
    client = logs()
    client.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    client.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": t} for i, t in enumerate(texts)],
    )


def group_events(group: str) -> dict[str, list[str]]:
    client = logs()
    out: dict[str, list[str]] = {}
    for s in client.describe_log_streams(logGroupName=group)["logStreams"]:
        events = client.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])
        out[s["logStreamName"]] = [e["message"] for e in events["events"]]
    return out


class LogsBackend(RecordBackend):
    name = "aws-logs"

    def seed(self, n: int, *, whole: bool = False) -> Seeded:
        group = "/sundown-test/" + unique("support-bot-")
        canary = unique("CANARY-")
        client = logs()
        client.create_log_group(logGroupName=group)
        ids = []
        for i in range(n - 1):
            put_events(group, f"stream-{i}", [f"{canary} {i}", f"{canary} again"])
            ids.append(f"log-stream:{group}:stream-{i}")
        ids.append(f"log-group:{group}")
        foreign = []
        for other in (f"{group}-v2", f"{group}x"):
            client.create_log_group(logGroupName=other)
            put_events(other, "stream-0", [f"foreign {other}"])
            foreign.append(f"log-group:{other}")
        seeded = Seeded(f"aws-logs://{MOTO_REGION}/{group}", None, ids, foreign, canary)
        seeded.names["group"] = group
        return seeded

    def add_in_scope(self, seeded: Seeded) -> str:
        name = f"{seeded.names['group']}/late{time.monotonic_ns()}"
        logs().create_log_group(logGroupName=name)
        return f"log-group:{name}"

    def outside(self, seeded: Seeded) -> object:
        return {ident: group_events(ident.partition(":")[2]) for ident in seeded.foreign_ids}


def _sagemaker(fixtures: Mapping[str, Any], tmp_path: Path) -> RecordBackend:
    return SageMakerBackend()


def _logs(fixtures: Mapping[str, Any], tmp_path: Path) -> RecordBackend:
    return LogsBackend()


BACKENDS = [
    BackendSpec("sagemaker", ("moto_env",), _sagemaker),
    BackendSpec("aws-logs", ("moto_env",), _logs),
]
