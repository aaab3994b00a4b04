"""The blast-radius judgement (sundown/key_use.py), without I/O: which bucket defaults stop a
key's destruction, what is recorded, and that untrusted names cannot forge plan rows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors._key_use import BucketReader, survey
from sundown.errors import ScopeError
from sundown.key_use import BucketDefault, KeyUse, Survey, exceptions, judge, summary

KEY = "aws-kms://arn:aws:kms:us-east-1:123456789012:key/1111"
OTHER = "aws-kms://arn:aws:kms:us-east-1:123456789012:key/2222"


def _survey(
    *buckets: BucketDefault, listed: bool = True, unchecked: tuple[str, ...] = ()
) -> Survey:
    return Survey("S3", (KEY, OTHER), buckets, listed, unchecked)


def test_every_offending_bucket_is_named_in_one_refusal() -> None:
    buckets = (
        BucketDefault("s3://theirs", (), "aws:kms", "alias/k", (KEY,)),
        BucketDefault("s3://ev", ("evidence",), "aws:kms", KEY[10:], (KEY,)),
        BucketDefault("s3://arch", ("archive", "location"), "aws:kms:dsse", "1111", (KEY,)),
        BucketDefault("s3://mine", ("location",), "aws:kms", KEY[10:], (OTHER,), "s3://mine/x"),
    )
    with pytest.raises(ScopeError) as caught:
        judge([_survey(*buckets)])
    text = str(caught.value)
    assert "s3://theirs defaults to " + KEY + " (as alias/k), a bucket that holds no" in text
    assert "s3://ev defaults to " + KEY + ", and it holds the evidence location" in text
    assert "s3://arch defaults to " + KEY + " (as 1111), and it holds the archive location" in text
    assert "s3://mine defaults to " + OTHER in text and "also s3://mine/x outside" in text


def test_own_buckets_and_other_keys_pass_and_are_recorded() -> None:
    buckets = (
        BucketDefault("s3://mine", ("location",), "aws:kms", KEY[10:], (KEY,)),
        BucketDefault("s3://theirs", (), "aws:kms", "alias/else", ()),
        BucketDefault("s3://plain", (), "AES256", None, ()),
        BucketDefault("s3://locked", (), error="default encryption not checked (AccessDenied)"),
    )
    used = judge([_survey(*buckets, listed=False, unchecked=("ListBuckets refused",))])
    assert "the key is the default of s3://mine" in used[KEY].checked[0]
    assert "the spec's own buckets" in used[KEY].checked[0]
    assert "no bucket defaults to the key" in used[OTHER].checked[0]
    assert used[KEY].unchecked == [
        "ListBuckets refused",
        "s3://locked: default encryption not checked (AccessDenied)",
    ]
    assert "NOT CHECKED: ListBuckets refused" in summary(used[KEY])
    (exc,) = exceptions([(KEY, used[KEY]), ("local://k", None), (OTHER, KeyUse())])
    assert exc.subject == KEY and exc.kind == "key use not fully checked"


def test_a_key_no_survey_reads_is_unchecked_not_silently_fine() -> None:
    gcp = "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k"
    used = judge([], {gcp: "GCS bucket defaults not read"})
    assert used[gcp].checked == [] and used[gcp].unchecked == ["GCS bucket defaults not read"]
    assert [e.subject for e in exceptions([(gcp, used[gcp])])] == [gcp]


def test_a_listed_bucket_name_cannot_forge_a_table_row() -> None:
    forged = "s3://x|\n| `aws-kms://fake` | no bucket defaults to the key |"
    with pytest.raises(ScopeError) as caught:
        judge([_survey(BucketDefault(forged, (), "aws:kms", "alias/k\n", (KEY,)))])
    assert "|" not in str(caught.value).split("defaults to")[0]
    assert "\n" not in str(caught.value)


class _Reader(BucketReader):
    """An in-memory provider for the shared survey driver (connectors/_key_use.py): the
    provider calls are the subclass's; what is tested here is what the driver makes of them."""

    provider, scheme, listing, everything = "T", "t", "List", "every bucket"
    errors = (PermissionError,)
    keys = (KEY,)

    def __init__(self, buckets: dict[str, tuple[str | None, list[str]] | Exception]) -> None:
        self.buckets = buckets
        self.listed: list[str] = []

    def names(self) -> list[str]:
        if "!list" in self.buckets:
            raise PermissionError("denied")
        return [b for b in self.buckets if not b.startswith("!")]

    def default(self, bucket: str) -> tuple[str | None, str | None] | None:
        found = self.buckets.get(bucket)
        if isinstance(found, Exception):
            raise found
        return None if found is None else ("kms", found[0])

    def matches(self, ref: str) -> tuple[str, ...]:
        return (KEY,) if ref == "ours" else ()

    def copies(self, bucket: str) -> Iterator[str]:
        self.listed.append(bucket)
        found = self.buckets[bucket]
        assert not isinstance(found, Exception)
        yield from found[1]

    def code(self, exc: Exception) -> str:
        return f"{type(exc).__name__}: {exc}"


def test_the_survey_driver_lists_only_what_it_must_and_reports_what_it_cannot() -> None:
    reader = _Reader(
        {
            "whole": ("ours", ["anything"]),
            "shared": ("ours", ["sys/a/1", "sys/ab/2"]),  # sys/ab is outside sys/a
            "clean": ("ours", ["sys/a/1", "sys/a"]),
            "other": ("theirs", ["x"]),
            "locked": PermissionError("no GetBucketEncryption"),
        }
    )
    roles = {b: ("location",) for b in ("whole", "shared", "clean")}
    prefixes = {"whole": [""], "shared": ["sys/a"], "clean": ["sys/a"], "gone": ["p"]}
    found = {
        b.bucket: b for b in survey(reader, {**roles, "gone": ("location",)}, prefixes).buckets
    }
    assert "t://gone" not in found  # a bucket that no longer exists is nothing to check
    assert found["t://whole"].outside is None and "whole" not in reader.listed
    assert found["t://shared"].outside == "t://shared/sys/ab/2"
    assert found["t://clean"].outside is None
    assert found["t://other"].matches == () and "other" not in reader.listed
    assert found["t://locked"].error == (
        "default encryption not checked (PermissionError: no GetBucketEncryption)"
    )
    denied = survey(_Reader({"!list": ("x", []), "mine": ("ours", [])}), {"mine": ()}, {})
    assert not denied.listed_account
    assert denied.unchecked == (
        "List refused (PermissionError: denied): T buckets outside the spec's own were not "
        "checked for a default under this key",
    )
    assert [b.bucket for b in denied.buckets] == ["t://mine"]
