"""The one store-URL parser (sundown/store_url.py): the spec and the three cloud connectors
accept and refuse the same URLs, because they call the same function."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sundown.errors import InputError
from sundown.spec.model import StoreLocation
from sundown.store_url import parse_bucket_url, parse_store_url

GOOD = [
    ("s3://my-bucket", ("my-bucket", "")),
    ("s3://my-bucket/models/a/", ("my-bucket", "models/a")),
    ("gs://acme_models.eu/weights/v1", ("acme_models.eu", "weights/v1")),
    ("az://acme-models/weights", ("acme-models", "weights")),
]

BAD = [
    "s3://",
    "s3://Upper/x",
    "s3://ab/x",
    "s3://bucket_underscore/x",
    "s3://b..b/x",  # the connector refused it, the spec accepted it: now both refuse
    "gs://b..b/x",  # likewise
    "s3://bucket//x",  # the connector read it as s3://bucket/x, the spec refused it
    "s3://bucket/x?versionId=1",
    "s3://bucket/x#frag",
    "s3://bucket/a/../b",
    "s3://bucket/a/./b",
    "s3://bucket/a%2f..",  # an escape could hide '/' or '..'
    "s3://key:secret@bucket/x",
    "s3://bucket:9000/x",
    "s3://bucket/ x",
    "s3://bucket/x\\y",
    "az://acme--models/x",
    "az://Acme/x",
]


@pytest.mark.parametrize(("url", "expected"), GOOD)
def test_the_connectors_and_the_spec_read_a_url_alike(url: str, expected: tuple[str, str]) -> None:
    scheme = url.split("://", 1)[0]
    assert parse_bucket_url(url, scheme) == expected
    parsed = parse_store_url(url)
    assert (parsed.bucket, parsed.prefix) == expected
    assert StoreLocation(url=url, whole_bucket=not expected[1]).parsed == parsed


@pytest.mark.parametrize("url", BAD)
def test_the_connectors_and_the_spec_refuse_the_same_urls(url: str) -> None:
    scheme = url.split("://", 1)[0]
    with pytest.raises(InputError):
        parse_bucket_url(url, scheme)
    with pytest.raises(ValidationError):
        StoreLocation(url=url)


def test_a_connector_refuses_another_scheme() -> None:
    with pytest.raises(InputError, match=r"not a s3:// URL"):
        parse_bucket_url("gs://bucket/x", "s3")
    with pytest.raises(InputError, match=r"not a gs:// URL"):
        parse_bucket_url("file:///tmp/x", "gs")


@pytest.mark.parametrize("url", ["s3://b..b/x", "gs://bucket//x", "az://acme--models/x"])
def test_each_connector_opens_its_stores_through_the_parser(url: str) -> None:
    """The registry's ``open_store`` refuses before any client is made."""
    from sundown.registry import open_store

    with pytest.raises(InputError):
        open_store(url)
