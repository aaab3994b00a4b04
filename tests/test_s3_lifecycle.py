"""S3 lifecycle rewrite keeps the configuration's ``TransitionDefaultMinimumObjectSize``
(connectors/s3.py): PutBucketLifecycleConfiguration replaces the whole configuration, and a PUT
without the setting resets a bucket set to ``varies_by_storage_class`` to S3's default.

Emulator gap (docs/known-gaps.md): moto answers ``all_storage_classes_128K`` whatever was PUT, so
the guarantee is asserted on the requests the real client sends to moto: the PUT carries the
value the GET returned."""

from __future__ import annotations

from typing import Any

import boto3

import connectors.s3 as s3
from sundown.registry import open_store
from tests.conformance import unique
from tests.reliability.world import make_bucket

HEADER = "x-amz-transition-default-minimum-object-size"
FOREIGN = {
    "ID": "team",
    "Filter": {"Prefix": "logs/"},
    "Status": "Enabled",
    "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}],
}


class _Seen:
    """The value each GetBucketLifecycleConfiguration returned (parsed) and the header each
    PutBucketLifecycleConfiguration sent (after signing), on the store's own client."""

    def __init__(self, client: Any) -> None:
        self.read: list[str | None] = []
        self.sent: list[str | None] = []
        client.meta.events.register("after-call.s3.GetBucketLifecycleConfiguration", self._on_read)
        client.meta.events.register("before-send.s3.PutBucketLifecycleConfiguration", self._on_put)

    def _on_read(self, parsed: dict[str, Any], **_: Any) -> None:
        self.read.append(parsed.get("TransitionDefaultMinimumObjectSize"))

    def _on_put(self, request: Any, **_: Any) -> None:
        value = request.headers.get(HEADER)
        self.sent.append(value.decode() if isinstance(value, bytes) else value)


def test_gap_moto_answers_one_transition_minimum_whatever_was_put(moto_env: str) -> None:
    """The raw answer: moto keeps no TransitionDefaultMinimumObjectSize."""
    bucket = make_bucket(unique("s3lc"), versioned=True)
    admin = boto3.client("s3")
    admin.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": [FOREIGN]},  # type: ignore[list-item]
        TransitionDefaultMinimumObjectSize="varies_by_storage_class",
    )
    got = admin.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["ResponseMetadata"]["HTTPHeaders"][HEADER] == "all_storage_classes_128K"
    assert got["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"


def test_the_lifecycle_put_carries_the_transition_minimum_read(moto_env: str) -> None:
    bucket = make_bucket(unique("s3lc"), versioned=True)
    boto3.client("s3").put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": [FOREIGN]},  # type: ignore[list-item]
    )
    store = open_store(f"s3://{bucket}/models/a")
    assert isinstance(store, s3.S3Store)
    seen = _Seen(store.client)
    store.add_lifecycle_rule("sundown-x")
    store.remove_lifecycle_rule("sundown-x")
    assert len(seen.sent) == 2 and seen.read and None not in seen.read
    assert seen.sent == [seen.read[0]] * 2
