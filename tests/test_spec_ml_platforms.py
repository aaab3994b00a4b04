"""ML-platform locations in the system spec (docs/ml-platforms.md, "How the retirement will use
these"): ``mlflow://``, ``sagemaker://`` and ``aws-logs://`` are record-store locations checked by
the core's shapes (no connector, no SDK, no server), and two systems never share one:
``support-bot`` does not cover ``support-bot-v2`` unless the spec writes ``support-bot-*``, and a
log group prefix stops at the ``/`` boundary."""

from __future__ import annotations

from typing import Any

import pytest

from sundown.errors import InputError
from sundown.records import parse_record_location, records_overlap
from sundown.registry import open_record_store
from sundown.spec.loader import parse_spec
from sundown.spec.overlap import check_no_overlap
from tests.spec_builder import spec_yaml

ML = "mlflow://mlflow.internal:5000"
SM = "sagemaker://us-east-1"
LOGS = "aws-logs://us-east-1//aws/sagemaker/Endpoints"


def spec(name: str, *locations: Any) -> str:
    return spec_yaml(
        name,
        assets={
            "weights": {"locations": [f"s3://acme-models/models/{name}"]},
            "logs": {"locations": list(locations)},
        },
        keys={"kek": f"local://{name}-kek", "certificate": f"local://{name}-cert"},
        evidence="file:///tmp/evidence",
    )


def test_ml_platform_locations_load_and_enter_the_digest() -> None:
    s = parse_spec(
        spec(
            "support-bot",
            f"{ML}/models/support-bot",
            {"url": f"{ML}/experiments/support-bot-training", "whole_experiment": True},
            f"{SM}/support-bot",
            f"{LOGS}/support-bot",
        )
    )
    refs = s.record_locations()
    assert [r.url for r in refs] == [
        f"{ML}/models/support-bot",
        f"{ML}/experiments/support-bot-training",
        f"{SM}/support-bot",
        f"{LOGS}/support-bot",
    ]
    assert refs[1].location.selector.whole
    assert refs[1].location.describe().endswith("[whole experiment]")
    assert s.locations()[0].url == "s3://acme-models/models/support-bot"  # object stores apart
    wider = parse_spec(spec("support-bot", f"{SM}/support-bot-*", f"{LOGS}/support-bot"))
    assert wider.digest() != parse_spec(spec("support-bot", f"{SM}/support-bot",
                                             f"{LOGS}/support-bot")).digest()  # fmt: skip


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        (f"{ML}/runs/abc", "expected mlflow://HOST:PORT/models/NAME or /experiments/NAME"),
        (f"{ML}/models", "expected mlflow://HOST:PORT/KIND/NAME"),
        ({"url": f"{ML}/models/m", "whole_experiment": True}, "unknown key(s)"),
        ({"url": f"{ML}/experiments/e", "where": {"a": "b"}}, "unknown key(s) ['where']"),
        ({"url": f"{ML}/experiments/e", "whole_table": True}, "unknown key(s) ['whole_table']"),
        ("mlflow://u:hunter2@mlflow:5000/models/m", "must not hold a password"),
        ("mlflow://mlflow:5000/models/it's", "quote"),
        ("sagemaker://us-east-1", "names nothing after the region"),
        ("sagemaker://not_a_region/support-bot", "is not an AWS region"),
        ("sagemaker://us-east-1:443/support-bot", "names a region, not a host"),
        ("sagemaker://k:hunter2@us-east-1/support-bot", "names a region, not a host"),
        ("sagemaker://us-east-1/support_bot", "is not a SageMaker name"),
        ("sagemaker://us-east-1/support-bot*", "is not a SageMaker name"),
        ("sagemaker://us-east-1/-x", "is not a SageMaker name"),
        ("sagemaker://us-east-1/" + "a" * 64, "is not a SageMaker name"),
        ("sagemaker://us-east-1/support-bot?x=1", "no query or fragment"),
        ({"url": f"{SM}/support-bot", "where": {"a": "b"}}, "unknown key(s) ['where']"),
        (f'"{LOGS}/support-bot/"', "without the trailing '/'"),
        (f"{LOGS}/support-bot*", "no ':' or '*'"),
        ("aws-logs://us-east-1", "names nothing after the region"),
    ],
)  # fmt: skip
def test_bad_ml_platform_locations_are_refused_naming_the_field(
    location: Any, problem: str
) -> None:
    with pytest.raises(InputError) as err:
        parse_spec(spec("sys", location))
    msg = str(err.value)
    assert "assets.logs.locations[0]" in msg and problem in msg, msg
    assert "hunter2" not in msg


@pytest.mark.parametrize(
    "url",
    [
        f"{ML}/models/support-bot",
        f"{ML}/experiments/support-bot",
        f"{SM}/support-bot",
        f"{SM}/support-bot-*",
        f"{LOGS}/support-bot",
        "sagemaker://us-east-1/bad_name",
        "aws-logs://us-east-1//aws/x/",
        "sagemaker://xx/support-bot",
    ],
)
def test_the_spec_and_the_connector_agree_on_every_url(url: str) -> None:
    """The core's shape and the connector that opens the location accept and refuse the same
    URLs (the rules moved into the core; the connector applies them again)."""
    try:
        parse_record_location(url, None)
        spec_ok = True
    except InputError:
        spec_ok = False
    try:
        open_record_store(url, None).close()
        connector_ok = True
    except InputError:
        connector_ok = False
    assert spec_ok is connector_ok


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        (f"{SM}/support-bot", f"{SM}/support-bot-v2", False),
        (f"{SM}/support-bot", f"{SM}/support-bot", True),
        (f"{SM}/support-bot-*", f"{SM}/support-bot-v2", True),  # NAME-* covers NAME-v2
        (f"{SM}/support-bot-*", f"{SM}/support-bot", True),
        (f"{SM}/support-bot-*", f"{SM}/support-bot-v2-*", True),
        (f"{SM}/support-bot-*", f"{SM}/support-botx", False),  # not at the '-' boundary
        (f"{SM}/support-bot-*", "sagemaker://eu-west-1/support-bot", False),  # another region
        (f"{LOGS}/support-bot", f"{LOGS}/support-bot-v2", False),
        (f"{LOGS}/support-bot", f"{LOGS}/support-bot/shadow", True),
        (f"{LOGS}/support-bot", f"{LOGS}/support-bot", True),
        ("aws-logs://us-east-1//aws/sagemaker", f"{LOGS}/support-bot", True),
        (f"{LOGS}/support-bot", "aws-logs://eu-west-1//aws/sagemaker/Endpoints/support-bot",
         False),
        (f"{ML}/models/support-bot", f"{ML}/models/support-bot-v2", False),
        (f"{ML}/models/support-bot", f"{ML}/models/support-bot", True),
        (f"{ML}/models/support-bot", f"{ML.replace('5000', '5001')}/models/support-bot", False),
        (f"{ML}/experiments/support-bot", f"{ML}/experiments/support-bot", True),
        (f"{SM}/support-bot", f"{LOGS}/support-bot", False),  # two services
    ],
)  # fmt: skip
def test_ml_platform_locations_overlap_at_their_boundaries(a: str, b: str, overlap: bool) -> None:
    assert (records_overlap((a, None), (b, None)) is not None) is overlap
    assert (records_overlap((b, None), (a, None)) is not None) is overlap


def test_a_second_system_at_the_boundary_is_apart_and_a_wildcard_over_it_is_refused() -> None:
    a = parse_spec(spec("support-bot", f"{ML}/models/support-bot", f"{SM}/support-bot",
                        f"{LOGS}/support-bot"))  # fmt: skip
    b = parse_spec(spec("support-bot-v2", f"{ML}/models/support-bot-v2", f"{SM}/support-bot-v2",
                        f"{LOGS}/support-bot-v2"))  # fmt: skip
    check_no_overlap(a, [b])
    check_no_overlap(b, [a])
    greedy = parse_spec(spec("support-bot", f"{SM}/support-bot-*"))
    with pytest.raises(InputError) as err:
        check_no_overlap(greedy, [b])
    msg = str(err.value)
    assert f"{SM}/support-bot-*" in msg and f"{SM}/support-bot-v2" in msg, msg


def test_two_overlapping_ml_locations_in_one_spec_are_refused() -> None:
    with pytest.raises(InputError, match="must not overlap"):
        parse_spec(spec("sys", f"{LOGS}/support-bot", f"{LOGS}/support-bot/shadow"))
