"""CloudWatch Logs groups and streams as a record store (boto3): ``aws-logs://REGION/PREFIX``.

``PREFIX`` is the log group name prefix exactly as written after the region's ``/``,
percent-decoded: a group whose name starts with ``/`` (every AWS service's, e.g.
``/aws/sagemaker/Endpoints/support-bot``) is written with a double slash,
``aws-logs://us-east-1//aws/sagemaker/Endpoints/support-bot``.

**Boundary**: the prefix covers the group named exactly ``PREFIX`` and the groups under
``PREFIX/``; never ``PREFIX-v2`` nor ``PREFIXx``. A prefix ending with ``/`` is refused (write
it without). Every name the service returns is checked against the boundary before it counts
(``DescribeLogGroups``' ``logGroupNamePrefix`` is a plain string prefix).

Records: ``log-stream:GROUP:STREAM`` (neither name may hold ``:``) and ``log-group:GROUP``,
sized by the service's ``storedBytes``. Purge deletes each listed stream, then each group, each
read back. Findings: each group's retention setting (``never expire`` keeps the events until
deleted), its KMS key, its subscription filters (which copy every event elsewhere) and every
export task of a group in scope, whose S3 destination holds copies of the events that deleting
the group leaves: they are linked locations (:class:`sundown.linked.LinkedLocation`) the plan
must add. Retention (:meth:`LogGroups.apply_retention`): each covered group's retention policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from connectors._aws_records import aws_errors, client, error_code, location, parse_region_url
from connectors._staged import StagedRecords
from sundown.errors import InputError
from sundown.linked import LinkedLocation
from sundown.record_retention import RetentionAction, cloudwatch_days
from sundown.records import LOGS_SHAPE, Finding, RecordCapability, RecordEntry, parse_selector

SCHEME = "aws-logs"
SHAPE = "aws-logs://REGION/LOG_GROUP_PREFIX (aws-logs://REGION//aws/... for /aws/...)"
CAPABILITIES = frozenset(
    {RecordCapability.PREFIX, RecordCapability.LINKED, RecordCapability.RETENTION}
)


class LogGroups(StagedRecords):
    """The log groups (and their streams) under one name prefix in one region."""

    STAGES = ("log-stream", "log-group")
    capabilities = CAPABILITIES
    noun = "log group or stream"

    def __init__(self, url: str, selector: Mapping[str, object] | None = None) -> None:
        region, prefix = parse_region_url(url, SCHEME, SHAPE)
        LOGS_SHAPE.name_rule(url, prefix)
        super().__init__(
            location(url, SCHEME, region, prefix),
            parse_selector(selector, whole_word=None, where=False, where_of=url),
        )
        self.region = region
        self.prefix = prefix

    @property
    def where(self) -> str:
        return f"log groups {self.prefix} and {self.prefix}/... in {self.region}"

    def covers(self, group: str) -> bool:
        return group == self.prefix or group.startswith(self.prefix + "/")

    def _client(self) -> Any:
        return client("logs", self.region)

    def _groups(self, logs: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with aws_errors(f"DescribeLogGroups in {self.region}"):
            pages = logs.get_paginator("describe_log_groups").paginate(
                logGroupNamePrefix=self.prefix
            )
            for page in pages:
                out.extend(g for g in page.get("logGroups", []) if self.covers(g["logGroupName"]))
        return out

    def _streams(self, logs: Any, group: str) -> list[dict[str, Any]] | None:
        """The group's streams; None when the group is gone."""
        out: list[dict[str, Any]] = []
        with aws_errors(f"DescribeLogStreams of {group}"):
            try:
                for page in logs.get_paginator("describe_log_streams").paginate(logGroupName=group):
                    out.extend(page.get("logStreams", []))
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return None
                raise
        return out

    def _current(self) -> list[RecordEntry]:
        logs = self._client()
        out: list[RecordEntry] = []
        for group in self._groups(logs):
            name = group["logGroupName"]
            streams = [
                RecordEntry(
                    f"log-stream:{name}:{s['logStreamName']}", int(s.get("storedBytes") or 0)
                )
                for s in self._streams(logs, name) or []
            ]
            # the group's own size: what its streams do not account for (never counted twice)
            rest = int(group.get("storedBytes") or 0) - sum(e.size for e in streams)
            out.extend([*streams, RecordEntry(f"log-group:{name}", max(rest, 0))])
        return out

    @staticmethod
    def _split(kind: str, name: str) -> tuple[str, str | None]:
        if kind == "log-stream":
            group, sep, stream = name.partition(":")
            if not sep or not group or not stream:
                raise InputError(f"log-stream:{name!r} is not log-stream:GROUP:STREAM")
            return group, stream
        return name, None

    def _exists(self, kind: str, name: str) -> bool:
        if kind not in self.STAGES:
            return False
        group, stream = self._split(kind, name)
        logs = self._client()
        if stream is None:
            with aws_errors(f"DescribeLogGroups {group}"):
                pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group)
                return any(g["logGroupName"] == group for p in pages for g in p["logGroups"])
        streams = self._streams(logs, group)
        return streams is not None and any(s["logStreamName"] == stream for s in streams)

    def _delete(self, kind: str, name: str) -> bool:
        group, stream = self._split(kind, name)
        logs = self._client()
        with aws_errors(f"delete {kind}:{name}"):
            try:
                if stream is None:
                    logs.delete_log_group(logGroupName=group)
                else:
                    logs.delete_log_stream(logGroupName=group, logStreamName=stream)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return False
                raise
        return True

    def _precheck(self, listed: Sequence[RecordEntry], current: Sequence[RecordEntry]) -> None:
        for e in listed:  # a forged log-stream id names its group: it must be in scope too
            kind, _, name = e.id.partition(":")
            group, _ = self._split(kind, name)
            if not self.covers(group):
                self.refuse_outside([e.id], self.where)

    # -- retention (retention_sweep) ------------------------------------------------------------

    def _retention_of(self, logs: Any, group: str) -> str:
        with aws_errors(f"DescribeLogGroups {group}"):
            pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group)
            for g in (g for p in pages for g in p["logGroups"] if g["logGroupName"] == group):
                return _days(g.get("retentionInDays"))
        return "gone"

    def apply_retention(
        self, delete_after_days: int, as_of: datetime, *, dry_run: bool = False
    ) -> list[RetentionAction]:
        """Give each group the prefix covers (the ``/`` boundary: never ``PREFIX-v2``) a
        retention policy of the longest allowed CloudWatch value not longer than
        ``delete_after_days``, read back after it is set. A group already set as short or
        shorter is left as it is (lengthening it would keep events longer). ``as_of`` is
        unused: CloudWatch ages the events itself."""
        days = cloudwatch_days(delete_after_days)
        why = (
            f"delete_after_days {delete_after_days}: retention {days} days, the longest value "
            "CloudWatch allows that is not longer"
        )
        logs = self._client()
        out: list[RetentionAction] = []
        for group in self._groups(logs):
            name, current = group["logGroupName"], group.get("retentionInDays")
            target, before = f"log-group:{name}", _days(current)
            if current is not None and int(current) <= days:
                left = f"already {before}, not longer than {days} days"
                out.append(RetentionAction(target, "kept", before, before, left))
                continue
            if dry_run:
                out.append(RetentionAction(target, "would set", before, f"{days} days", why))
                continue
            with aws_errors(f"PutRetentionPolicy of {name}"):
                logs.put_retention_policy(logGroupName=name, retentionInDays=days)
            after = self._retention_of(logs, name)
            ok = after == f"{days} days"
            out.append(RetentionAction(target, "set" if ok else "failed", before, after,
                                       why if ok else f"{why}; read back: {after}"))  # fmt: skip
        return out

    # -- what keeps the events ------------------------------------------------------------------

    def _exports(self, logs: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with aws_errors(f"DescribeExportTasks in {self.region}"):
            token: str | None = None
            while True:
                page = logs.describe_export_tasks(**({"nextToken": token} if token else {}))
                out.extend(t for t in page.get("exportTasks", [])
                           if self.covers(str(t.get("logGroupName", ""))))  # fmt: skip
                token = page.get("nextToken")
                if not token:
                    return out

    def linked_locations(self) -> list[LinkedLocation]:
        out: list[LinkedLocation] = []
        for task in self._exports(self._client()):
            url = _export_url(task)
            out.append(LinkedLocation(url, "log export", f"log-group:{task['logGroupName']}"))
        return out

    def findings(self) -> list[Finding]:
        logs = self._client()
        out: list[Finding] = []
        for group in self._groups(logs):
            name = group["logGroupName"]
            days = group.get("retentionInDays")
            out.append(
                Finding(
                    f"retention of {name}",
                    f"{days} days" if days else "never expire",
                    None if days else True,
                    f"the events expire after {days} days"
                    if days
                    else "retention is 'never expire': the events stay until the group is deleted",
                )
            )
            if group.get("kmsKeyId"):
                out.append(
                    Finding(
                        f"encryption of {name}",
                        str(group["kmsKeyId"]),
                        None,
                        "the events are encrypted under this KMS key: destroying it is a "
                        "cryptographic erase only if the spec names and destroys it",
                    )
                )
            with aws_errors(f"DescribeSubscriptionFilters of {name}"):
                filters = logs.describe_subscription_filters(logGroupName=name)
            for f in filters.get("subscriptionFilters", []):
                out.append(
                    Finding(
                        f"subscription of {name}",
                        str(f.get("destinationArn")),
                        True,
                        f"subscription filter {f.get('filterName')!r} copies every event to "
                        f"{f.get('destinationArn')}: those copies stay there",
                    )
                )
        for task in self._exports(logs):
            status = (task.get("status") or {}).get("code", "?")
            url = _export_url(task)
            out.append(
                Finding(
                    f"export of {task['logGroupName']}",
                    f"{url} ({status})",
                    True,
                    f"export task {task.get('taskId')} copied events to {url}: the copies stay "
                    "in S3 after the group is deleted; the plan must purge that location",
                )
            )
        return out


def _days(value: object) -> str:
    return f"{value} days" if value else "never expire"


def _export_url(task: Mapping[str, Any]) -> str:
    """Where an export task wrote: ``s3://BUCKET/PREFIX`` (CloudWatch's default prefix is
    ``exportedlogs``)."""
    prefix = str(task.get("destinationPrefix") or "exportedlogs").strip("/")
    return f"s3://{task['destination']}/{prefix}"


def open_record_store(url: str, selector: Mapping[str, object] | None = None) -> LogGroups:
    return LogGroups(url, selector)
