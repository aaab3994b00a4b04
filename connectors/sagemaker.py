"""SageMaker serving resources as a record store (boto3): ``sagemaker://REGION/NAME`` or
``sagemaker://REGION/NAME-*``.

**Which names a location covers.** SageMaker names are letters, digits and hyphens, so no
character marks a boundary the way ``/`` does in a path or ``:`` in a Redis key: ``support-bot``
and ``support-bot-v2`` differ only after a hyphen, and both hyphens look alike. So:

- ``sagemaker://us-east-1/support-bot`` covers the endpoint, the endpoint configuration and the
  model named exactly ``support-bot``, and what a covered endpoint serves: its endpoint
  configuration and that configuration's models, whatever their names. Never
  ``support-bot-v2``.
- ``sagemaker://us-east-1/support-bot-*`` covers ``support-bot`` and every name that starts
  with ``support-bot-``, **including** ``support-bot-v2``: the spec says so explicitly, as it
  must to scope a whole bucket.

Records: ``endpoint:NAME``, ``endpoint-config:NAME``, ``model:NAME``; the size of each is the
length of its description as the API returns it. Purge deletes endpoints first (stop serving;
each one waited for until ``DescribeEndpoint`` no longer finds it), then endpoint
configurations, then models, each read back after its delete. Before any delete it stops
(ScopeError) when an endpoint outside the location serves a listed configuration, or a
configuration outside it names a listed model: deleting them would break another system.

Linked object-store locations (:class:`sundown.linked.LinkedLocation`): each model's
``ModelDataUrl`` (the weights), each configuration's data-capture prefix (request and response
payloads) and asynchronous-inference output paths. Deleting the SageMaker resources leaves them
all in S3: the retirement adds them to its plan. Findings: each endpoint's CloudWatch Logs group
and what this connector does not inventory (model packages, feature groups).

Credentials: the standard AWS chain (environment, profile, role), a client per call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from connectors._aws_records import (
    aws_errors,
    client,
    error_code,
    error_text,
    location,
    parse_region_url,
)
from connectors._staged import StagedRecords
from sundown.errors import BackendError, ScopeError
from sundown.linked import LinkedLocation
from sundown.records import SAGEMAKER_SHAPE, Finding, RecordCapability, RecordEntry, parse_selector

SCHEME = "sagemaker"
SHAPE = "sagemaker://REGION/NAME or sagemaker://REGION/NAME-*"
CAPABILITIES = frozenset({RecordCapability.PREFIX, RecordCapability.LINKED})
ENDPOINT_DELETE_WAIT = (5, 120)  # (seconds between polls, polls): up to 10 minutes
LOG_GROUP = "/aws/sagemaker/Endpoints/{name}"
UNCOVERED = (
    "model packages and model package groups (the model registry), feature groups, training "
    "and processing jobs, and their S3 outputs"
)


# record kind -> (its describe call; its delete is delete_...), the name parameter
_OPS = {
    "endpoint": ("describe_endpoint", "EndpointName"),
    "endpoint-config": ("describe_endpoint_config", "EndpointConfigName"),
    "model": ("describe_model", "ModelName"),
}


def _missing(exc: ClientError) -> bool:
    """SageMaker answers a describe of a missing resource with ValidationException 'Could not
    find ...'."""
    return error_code(exc) == "ValidationException" and "Could not find" in error_text(exc)


class SageMakerServing(StagedRecords):
    """The endpoints, endpoint configurations and models a location covers."""

    STAGES = ("endpoint", "endpoint-config", "model")
    capabilities = CAPABILITIES
    noun = "resource"

    def __init__(self, url: str, selector: Mapping[str, object] | None = None) -> None:
        region, rest = parse_region_url(url, SCHEME, SHAPE)
        self.wildcard = rest.endswith("-*")
        self.name = rest[:-2] if self.wildcard else rest
        SAGEMAKER_SHAPE.name_rule(url, rest)
        super().__init__(
            location(url, SCHEME, region, rest),
            parse_selector(selector, whole_word=None, where=False, where_of=url),
        )
        self.region = region

    @property
    def where(self) -> str:
        names = f"{self.name} and {self.name}-*" if self.wildcard else f"named {self.name}"
        return f"SageMaker resources {names} in {self.region}"

    def covers(self, name: str) -> bool:
        """The name rule alone (without what a covered endpoint serves)."""
        if name == self.name:
            return True
        return self.wildcard and name.startswith(self.name + "-")

    # -- reading --------------------------------------------------------------------------------

    def _client(self) -> Any:
        return client("sagemaker", self.region)

    def _list(self, sm: Any, op: str, key: str, *, contains: str | None) -> list[str]:
        args = {"NameContains": contains} if contains else {}
        names: list[str] = []
        with aws_errors(f"{op} in {self.region}"):
            for page in sm.get_paginator(op).paginate(**args):
                names.extend(item[key] for item in page.get(key.replace("Name", "s"), []))
        return names

    def _names(self, sm: Any, op: str, key: str) -> list[str]:
        return [n for n in self._list(sm, op, key, contains=self.name) if self.covers(n)]

    def _describe(self, sm: Any, kind: str, name: str) -> dict[str, Any] | None:
        op, arg = _OPS[kind]
        with aws_errors(f"describe {kind} {name}"):
            try:
                answer: dict[str, Any] = getattr(sm, op)(**{arg: name})
            except ClientError as exc:
                if _missing(exc):
                    return None
                raise
        answer.pop("ResponseMetadata", None)
        return answer

    def _walk(self) -> dict[str, dict[str, Any]]:
        """record id -> description, for every resource in scope."""
        sm = self._client()
        found: dict[str, dict[str, Any]] = {}

        def add(kind: str, name: str) -> dict[str, Any] | None:
            ident = f"{kind}:{name}"
            if ident not in found:
                described = self._describe(sm, kind, name)
                if described is None:
                    return None
                found[ident] = described
            return found[ident]

        for name in self._names(sm, "list_endpoints", "EndpointName"):
            endpoint = add("endpoint", name)
            if endpoint and endpoint.get("EndpointConfigName"):
                add("endpoint-config", endpoint["EndpointConfigName"])
        for name in self._names(sm, "list_endpoint_configs", "EndpointConfigName"):
            add("endpoint-config", name)
        for ident in [i for i in found if i.startswith("endpoint-config:")]:
            for model in _models_of(found[ident]):
                add("model", model)
        for name in self._names(sm, "list_models", "ModelName"):
            add("model", name)
        return found

    def _current(self) -> list[RecordEntry]:
        return [
            RecordEntry(ident, len(json.dumps(body, default=str, sort_keys=True)))
            for ident, body in sorted(self._walk().items())
        ]

    def _exists(self, kind: str, name: str) -> bool:
        if kind not in self.STAGES:
            return False
        return self._describe(self._client(), kind, name) is not None

    def users_outside(self, listed: set[str]) -> list[str]:
        """Resources outside ``listed`` that use a listed one: ``endpoint X serves
        endpoint-config:Y``, ``endpoint-config X names model:Y``."""
        sm = self._client()
        out: list[str] = []
        for name in self._list(sm, "list_endpoints", "EndpointName", contains=None):
            if f"endpoint:{name}" in listed:
                continue
            body = self._describe(sm, "endpoint", name) or {}
            if f"endpoint-config:{body.get('EndpointConfigName')}" in listed:
                out.append(f"endpoint {name} serves endpoint-config:{body['EndpointConfigName']}")
        for name in self._list(sm, "list_endpoint_configs", "EndpointConfigName", contains=None):
            if f"endpoint-config:{name}" in listed:
                continue
            body = self._describe(sm, "endpoint-config", name) or {}
            out.extend(
                f"endpoint-config {name} names model:{m}"
                for m in _models_of(body)
                if f"model:{m}" in listed
            )
        return out

    # -- deleting -------------------------------------------------------------------------------

    def _precheck(self, listed: Sequence[RecordEntry], current: Sequence[RecordEntry]) -> None:
        users = self.users_outside({e.id for e in listed})
        if users:
            raise ScopeError(
                f"purge of {self.where}: resources outside it use listed ones ({'; '.join(users)}"
                "): deleting them would break another system; nothing deleted"
            )

    def _delete(self, kind: str, name: str) -> bool:
        sm = self._client()
        op, arg = _OPS[kind]
        with aws_errors(f"delete {kind} {name}"):
            try:
                getattr(sm, op.replace("describe_", "delete_"))(**{arg: name})
            except ClientError as exc:
                if _missing(exc):
                    return False
                raise
            if kind == "endpoint":  # stops serving only once SageMaker reports it gone
                delay, attempts = ENDPOINT_DELETE_WAIT
                try:
                    sm.get_waiter("endpoint_deleted").wait(
                        EndpointName=name, WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
                    )
                except WaiterError as exc:
                    raise BackendError(
                        f"endpoint {name} still exists after its delete: {exc}"
                    ) from None
        return True

    # -- what stays elsewhere -------------------------------------------------------------------

    def linked_locations(self) -> list[LinkedLocation]:
        out: list[LinkedLocation] = []
        for ident, body in sorted(self._walk().items()):
            for kind, url in _object_urls(ident, body):
                out.append(LinkedLocation(url, kind, ident))
        return out

    def findings(self) -> list[Finding]:
        walked = self._walk()
        out: list[Finding] = []
        for ident in sorted(walked):
            kind, _, name = ident.partition(":")
            if kind == "endpoint":
                group = LOG_GROUP.format(name=name)
                out.append(
                    Finding(
                        "inference logs",
                        group,
                        True,
                        f"endpoint {name} writes its container logs to the CloudWatch Logs group "
                        f"{group}: deleting the endpoint leaves them; retire them with "
                        f"aws-logs://{self.region}/{group}",
                    )
                )
            for what, url in _object_urls(ident, walked[ident]):
                out.append(
                    Finding(
                        what,
                        url,
                        True,
                        f"{ident} names {url} ({what}): deleting it leaves the objects in S3; the "
                        "plan must purge that location with the object-store connector",
                    )
                )
        out.append(
            Finding(
                "not inventoried",
                None,
                None,
                f"this connector does not inventory {UNCOVERED}; a system that has them must "
                "retire them separately (docs/known-gaps.md)",
                note="outside this connector's scope",
            )
        )
        return out


def _models_of(config: Mapping[str, Any]) -> list[str]:
    variants = [*config.get("ProductionVariants", []), *config.get("ShadowProductionVariants", [])]
    return [str(v["ModelName"]) for v in variants if v.get("ModelName")]


def _object_urls(ident: str, body: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    kind = ident.partition(":")[0]
    if kind == "model":
        containers = [body.get("PrimaryContainer") or {}, *body.get("Containers", [])]
        for c in containers:
            if c.get("ModelDataUrl"):
                yield "model data", str(c["ModelDataUrl"])
            source = (c.get("ModelDataSource") or {}).get("S3DataSource") or {}
            if source.get("S3Uri"):
                yield "model data", str(source["S3Uri"])
    elif kind == "endpoint-config":
        capture = body.get("DataCaptureConfig") or {}
        if capture.get("DestinationS3Uri"):
            yield "data capture", str(capture["DestinationS3Uri"])
        output = (body.get("AsyncInferenceConfig") or {}).get("OutputConfig") or {}
        for key in ("S3OutputPath", "S3FailurePath"):
            if output.get(key):
                yield "async inference output", str(output[key])


def open_record_store(url: str, selector: Mapping[str, object] | None = None) -> SageMakerServing:
    return SageMakerServing(url, selector)
