"""Which S3 buckets default to an AWS KMS key: the reading half of the blast-radius check
(:mod:`sundown.key_use` judges).

:func:`survey` reads ``GetBucketEncryption`` of the spec's own buckets (locations, archive,
evidence) and, where the credentials allow ``ListBuckets``, of every bucket of the account. A
default's key reference (a key ARN, a key id, an alias name or alias ARN) is resolved with KMS
``DescribeKey`` in the destroyed key's region (S3 takes a key of the bucket's own region only)
and compared with the key's ARN: unlike the coverage claim, this comparison resolves, because
here a missed match loses data. A bucket of the system's locations whose default is a destroyed
key is listed (``ListObjectVersions``) until a copy outside the spec's prefixes is found, or
none is. What cannot be read is reported, never taken for "not under the key".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sundown.key_use import BucketDefault, Survey, shown

from . import _aws

_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=10,
    max_pool_connections=10,
)
_READERS = 8  # GetBucketEncryption in flight
_NO_DEFAULT = "ServerSideEncryptionConfigurationNotFoundError"
_GONE = "NoSuchBucket"


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', '?')}: {shown(str(err.get('Message', '')), 200)}"
    return type(exc).__name__


class _Keys:
    """The destroyed keys (ARN, key id, region), and key references resolved against them."""

    def __init__(self, uris: Sequence[str]) -> None:
        self._keys: list[tuple[str, str, str, str]] = []  # (uri, arn, key id, region)
        self._resolved: dict[tuple[str, str], str | None] = {}
        for uri in uris:
            arn = uri.removeprefix("aws-kms://")
            parts = arn.split(":")
            if len(parts) != 6 or not parts[5].startswith("key/"):
                raise ValueError(f"{uri} is not a resolved key ARN URI")
            self._keys.append((uri, arn, parts[5][len("key/") :], parts[3]))

    @property
    def uris(self) -> tuple[str, ...]:
        return tuple(k[0] for k in self._keys)

    def _resolve(self, ref: str, region: str) -> str | None:
        """The key ARN ``ref`` names in ``region`` (None: no such key or alias)."""
        if (ref, region) not in self._resolved:
            client = _aws.new_client("kms", _CONFIG.merge(Config(region_name=region)))
            try:
                arn = client.describe_key(KeyId=ref)["KeyMetadata"]["Arn"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                    raise
                arn = None
            self._resolved[(ref, region)] = arn
        return self._resolved[(ref, region)]

    def matches(self, ref: str) -> tuple[str, ...]:
        out = []
        for uri, arn, key_id, region in self._keys:
            if ref in (arn, key_id):
                out.append(uri)
            elif ref.startswith("alias/") or ":alias/" in ref:
                # an alias name or alias ARN: resolved where it lives (another key's ARN or
                # id needs no lookup)
                where = ref.split(":")[3] if ref.startswith("arn:") else region
                if where == region and self._resolve(ref, region) == arn:
                    out.append(uri)
        return tuple(out)


def _default(client: Any, bucket: str) -> tuple[str | None, str | None] | None:
    """(algorithm, key reference) of the bucket's default encryption; (None, None) when it has
    none; None when the bucket is gone (listed, then deleted)."""
    try:
        answer = client.get_bucket_encryption(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code == _NO_DEFAULT:
            return None, None
        if code == _GONE:
            return None
        raise
    rules = answer.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    for rule in rules:
        applied = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if applied.get("SSEAlgorithm"):
            return str(applied["SSEAlgorithm"]), applied.get("KMSMasterKeyID")
    return None, None


def _in_scope(key: str, prefixes: Sequence[str]) -> bool:
    return any(p == "" or key == p or key.startswith(p + "/") for p in prefixes)


def _outside(client: Any, bucket: str, prefixes: Sequence[str]) -> str | None:
    """The first copy (version or incomplete upload) of ``bucket`` outside ``prefixes``."""
    if "" in prefixes:
        return None  # the whole bucket is the system's
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):  # delete markers carry no data
            if not _in_scope(v["Key"], prefixes):
                return f"s3://{bucket}/{v['Key']}"
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for u in page.get("Uploads", []):
            if not _in_scope(u["Key"], prefixes):
                return f"s3://{bucket}/{u['Key']} (an incomplete upload)"
    return None


def _read(
    client: Any, keys: _Keys, bucket: str, roles: tuple[str, ...], prefixes: Sequence[str]
) -> BucketDefault | None:
    url = f"s3://{bucket}"
    try:
        found = _default(client, bucket)
        if found is None:
            return None
        algorithm, ref = found
        matches = keys.matches(ref) if ref and algorithm and "kms" in algorithm else ()
        outside = _outside(client, bucket, prefixes) if matches and roles else None
    except (ClientError, BotoCoreError) as exc:
        return BucketDefault(url, roles, error=f"default encryption not checked ({_code(exc)})")
    return BucketDefault(url, roles, algorithm, ref, matches, outside)


def survey(
    keys: Sequence[str],
    roles: Mapping[str, tuple[str, ...]],
    prefixes: Mapping[str, Sequence[str]],
) -> Survey:
    """The default encryption of the spec's buckets (``roles``: bucket name -> why it matters;
    ``prefixes``: bucket name -> the spec's location prefixes there, ``""`` for a whole bucket)
    and, where ListBuckets is allowed, of every bucket of the account, matched against
    ``keys`` (``aws-kms://`` key ARN URIs, as their key service resolved them)."""
    resolved = _Keys(keys)
    client = _aws.new_client("s3", _CONFIG)
    unchecked: list[str] = []
    names: list[str] = []
    try:
        for page in client.get_paginator("list_buckets").paginate():
            names += [b["Name"] for b in page.get("Buckets", [])]
        listed = True
    except (ClientError, BotoCoreError) as exc:
        listed = False
        unchecked.append(
            f"ListBuckets refused ({_code(exc)}): buckets outside the spec's own were not "
            "checked for a default under this key"
        )
    every = list(dict.fromkeys([*roles, *names]))
    with ThreadPoolExecutor(_READERS) as pool:
        found = list(
            pool.map(
                lambda b: _read(client, resolved, b, roles.get(b, ()), prefixes.get(b, ())),
                every,
            )
        )
    return Survey(
        provider="S3",
        keys=resolved.uris,
        buckets=tuple(b for b in found if b is not None),
        listed_account=listed,
        unchecked=tuple(unchecked),
    )
