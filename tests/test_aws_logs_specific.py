"""CloudWatch Logs specifics on moto_server: the ``/`` boundary
(``/aws/sagemaker/Endpoints/support-bot`` never covers ``.../support-bot-v2``), the double
slash of ``/aws/...`` groups, retention and export tasks (exported copies are named, and stay)."""

from __future__ import annotations

import time

import boto3
import pytest

from connectors.aws_logs import LogGroups
from sundown import registry
from sundown.errors import InputError, ScopeError
from sundown.linked import LinksLocations, split_by_scope
from sundown.records import RecordEntry
from tests.conformance_records import unique
from tests.conformance_records.backend_aws import group_events, put_events
from tests.fixtures.moto import MOTO_REGION


def _groups(*names: str) -> None:
    for name in names:
        boto3.client("logs").create_log_group(logGroupName=name)
        put_events(name, "AllTraffic/i-0abc", [f"request to {name}"])


def test_an_endpoint_group_never_covers_the_v2_endpoints_group(moto_env: str) -> None:
    bot = unique("support-bot-")
    base = f"/aws/sagemaker/Endpoints/{bot}"
    _groups(base, f"{base}/data-capture", f"{base}-v2", f"{base}x")
    store = registry.open_record_store(f"aws-logs://{MOTO_REGION}/{base}", None)
    entries = list(store.inventory())
    assert sorted(e.id for e in entries) == sorted([
        f"log-group:{base}", f"log-stream:{base}:AllTraffic/i-0abc",
        f"log-group:{base}/data-capture", f"log-stream:{base}/data-capture:AllTraffic/i-0abc",
    ])  # fmt: skip
    before = {g: group_events(g) for g in (f"{base}-v2", f"{base}x")}
    result = store.purge(entries)
    assert [i.partition(":")[0] for i in result.deleted] == ["log-stream"] * 2 + ["log-group"] * 2
    assert store.verify(entries).clean
    assert {g: group_events(g) for g in before} == before


def test_a_single_slash_names_a_group_without_the_leading_slash(moto_env: str) -> None:
    """``aws-logs://REGION/aws/...`` is the prefix ``aws/...``: it does not reach the group
    ``/aws/...`` (written ``aws-logs://REGION//aws/...``)."""
    bot = unique("support-bot-")
    _groups(f"/aws/sagemaker/Endpoints/{bot}")
    assert (
        list(LogGroups(f"aws-logs://{MOTO_REGION}/aws/sagemaker/Endpoints/{bot}").inventory()) == []
    )
    assert (
        len(list(LogGroups(f"aws-logs://{MOTO_REGION}//aws/sagemaker/Endpoints/{bot}").inventory()))
        == 2
    )


def test_a_forged_stream_of_another_group_deletes_nothing(moto_env: str) -> None:
    bot = unique("/sundown-test/bot-")
    _groups(bot, f"{bot}-v2")
    store = registry.open_record_store(f"aws-logs://{MOTO_REGION}/{bot}", None)
    entries = list(store.inventory())
    forged = [*entries, RecordEntry(f"log-stream:{bot}-v2:AllTraffic/i-0abc", 1)]
    with pytest.raises(ScopeError):
        store.purge(forged)
    assert group_events(bot) and group_events(f"{bot}-v2")


def test_a_stream_written_after_the_plan_stops_the_purge(moto_env: str) -> None:
    from sundown.errors import ConflictError

    bot = unique("/sundown-test/bot-")
    _groups(bot)
    store = registry.open_record_store(f"aws-logs://{MOTO_REGION}/{bot}", None)
    entries = list(store.inventory())
    put_events(bot, "AllTraffic/i-late", ["a request after the plan"])
    with pytest.raises(ConflictError):
        store.purge(entries)
    assert len(group_events(bot)) == 2


def test_retention_and_export_tasks_are_reported_and_the_exported_copies_named(
    moto_env: str,
) -> None:
    bot = unique("support-bot-")
    base = f"/aws/sagemaker/Endpoints/{bot}"
    _groups(base, f"{base}/kept-30-days", f"{base}-v2")
    logs, s3 = boto3.client("logs"), boto3.client("s3")
    logs.put_retention_policy(logGroupName=f"{base}/kept-30-days", retentionInDays=30)
    bucket = unique("log-exports-")
    s3.create_bucket(Bucket=bucket)
    now = int(time.time() * 1000)
    for group in (base, f"{base}-v2"):
        logs.create_export_task(
            logGroupName=group,
            fromTime=now - 3_600_000,
            to=now + 60_000,
            destination=bucket,
            destinationPrefix=f"exports/{group.strip('/')}",
        )
    store = registry.open_record_store(f"aws-logs://{MOTO_REGION}/{base}", None)
    assert isinstance(store, LinksLocations)
    [link] = store.linked_locations()  # not the v2 group's export
    assert (link.url, link.kind, link.source) == (
        f"s3://{bucket}/exports/{base.strip('/')}",
        "log export",
        f"log-group:{base}",
    )
    found = {f.setting: f for f in store.findings()}
    assert found[f"retention of {base}"].value == "never expire"
    assert found[f"retention of {base}"].keeps_deleted_data is True
    assert found[f"retention of {base}/kept-30-days"].value == "30 days"
    assert found[f"export of {base}"].keeps_deleted_data is True
    assert f"export of {base}-v2" not in found
    exported = s3.list_objects_v2(Bucket=bucket, Prefix=f"exports/{base.strip('/')}/")
    assert exported["KeyCount"] >= 1
    store.purge(list(store.inventory()))
    # deleting the groups leaves the exported copies: that is why they are named
    again = s3.list_objects_v2(Bucket=bucket, Prefix=f"exports/{base.strip('/')}/")
    assert again["KeyCount"] == exported["KeyCount"]
    scope = split_by_scope([link], [f"s3://{bucket}/exports"])
    assert scope.covered and not scope.outside


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("aws-logs://us-east-1//aws/x/", "trailing '/'"),
        ("aws-logs://us-east-1/a:b", "no ':'"),
        ("aws-logs://us-east-1/a*", "no ':' or '\\*'"),
        ("aws-logs://user:pw@us-east-1/a", "names a region"),
        ("aws-logs://us-east-1", "names nothing"),
    ],
)
def test_bad_locations_are_refused_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        LogGroups(url)
    assert "pw" not in str(caught.value)
