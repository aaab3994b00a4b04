"""``sundown.linked.split_by_scope``: a location a platform names (untrusted, read back from it)
is purged only when a spec location covers it with path-boundary semantics; anything else is an
exception with its reason, never guessed at."""

from __future__ import annotations

import pytest

from sundown.linked import LinkedLocation, split_by_scope

SPEC = ["s3://ml-bucket/mlflow/1", "gs://other-bucket/capture"]


def _one(url: str) -> tuple[bool, str]:
    result = split_by_scope([LinkedLocation(url, "run artifacts", "run:abc")], SPEC)
    if result.covered:
        return True, result.covered[0][1]
    return False, result.outside[0][1]


@pytest.mark.parametrize(
    "url",
    [
        "s3://ml-bucket/mlflow/1",
        "s3://ml-bucket/mlflow/1/",
        "s3://ml-bucket/mlflow/1/abc/artifacts",
        "gs://other-bucket/capture/support-bot/2026",
    ],
)
def test_a_location_under_a_spec_location_is_covered(url: str) -> None:
    covered, owner = _one(url)
    assert covered and owner in SPEC


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("s3://ml-bucket/mlflow/12/abc/artifacts", "no location of the system spec covers it"),
        ("s3://ml-bucket/mlflow", "no location of the system spec covers it"),  # wider than spec
        ("s3://ml-bucket", "no location of the system spec covers it"),
        ("s3://ml-bucket2/mlflow/1/x", "no location of the system spec covers it"),
        ("gs://ml-bucket/mlflow/1/x", "no location of the system spec covers it"),
        ("s3://ml-bucket/mlflow/1/../../2/x", "not an object-store location"),
        ("s3://ml-bucket/mlflow/1//x", "not an object-store location"),
        ("mlflow-artifacts:/1/abc/artifacts", "not an object-store location"),
        ("/var/mlruns/1/abc/artifacts", "not an object-store location"),
        ("dbfs:/databricks/mlflow/1", "not an object-store location"),
    ],
)
def test_anything_else_is_outside_with_its_reason(url: str, reason: str) -> None:
    covered, why = _one(url)
    assert not covered and why.startswith(reason)


def test_every_location_is_answered_once_and_the_scope_must_be_valid() -> None:
    links = [LinkedLocation(f"s3://ml-bucket/mlflow/{i}/x", "run artifacts", f"run:{i}")
             for i in range(3)]  # fmt: skip
    result = split_by_scope(links, SPEC)
    assert [x.source for x, _ in result.covered] == ["run:1"]
    assert [x.source for x, _ in result.outside] == ["run:0", "run:2"]
    assert split_by_scope(links, []).covered == ()
    with pytest.raises(ValueError):
        split_by_scope(links, ["s3://ml-bucket/../x"])
