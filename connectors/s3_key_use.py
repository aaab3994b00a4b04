"""Which S3 buckets default to an AWS KMS key: the S3 reader of the blast-radius check
(:mod:`connectors._key_use`; :mod:`sundown.key_use` judges).

``GetBucketEncryption`` of the spec's own buckets (locations, archive, evidence) and, where the
credentials allow ``ListBuckets``, of every bucket of the account. A default's key reference (a
key ARN, a key id, an alias name or alias ARN) is resolved with KMS ``DescribeKey`` in the
destroyed key's region (S3 takes a key of the bucket's own region only) and compared with the
key's ARN: unlike the coverage claim, this comparison resolves, because here a missed match
loses data. A bucket of the system's locations under a destroyed key is listed
(``ListObjectVersions``, ``ListMultipartUploads``) until a copy outside the spec's prefixes is
found, or none is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sundown.key_use import Survey, shown

from . import _aws
from ._key_use import BucketReader
from ._key_use import survey as _survey

_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=10,
    max_pool_connections=10,
)
_NO_DEFAULT = "ServerSideEncryptionConfigurationNotFoundError"


class S3Buckets(BucketReader):
    provider = "S3"
    scheme = "s3"
    listing = "ListBuckets"
    everything = "every bucket of the account"
    errors = (ClientError, BotoCoreError)

    def __init__(self, uris: Sequence[str]) -> None:
        self._client = _aws.new_client("s3", _CONFIG)
        self._keys: list[tuple[str, str, str, str]] = []  # (uri, arn, key id, region)
        self._resolved: dict[tuple[str, str], str | None] = {}
        for uri in uris:
            arn = uri.removeprefix("aws-kms://")
            parts = arn.split(":")
            if len(parts) != 6 or not parts[5].startswith("key/"):
                raise ValueError(f"{uri} is not a resolved key ARN URI")
            self._keys.append((uri, arn, parts[5][len("key/") :], parts[3]))
        self.keys = tuple(k[0] for k in self._keys)

    def code(self, exc: Exception) -> str:
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            return f"{err.get('Code', '?')}: {shown(str(err.get('Message', '')), 200)}"
        return type(exc).__name__

    def names(self) -> list[str]:
        return [
            b["Name"]
            for page in self._client.get_paginator("list_buckets").paginate()
            for b in page.get("Buckets", [])
        ]

    def default(self, bucket: str) -> tuple[str | None, str | None] | None:
        try:
            answer = self._client.get_bucket_encryption(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == _NO_DEFAULT:
                return None, None
            if code == "NoSuchBucket":
                return None
            raise
        for rule in answer.get("ServerSideEncryptionConfiguration", {}).get("Rules", []):
            applied = rule.get("ApplyServerSideEncryptionByDefault") or {}
            if applied.get("SSEAlgorithm"):
                algorithm = str(applied["SSEAlgorithm"])
                ref = applied.get("KMSMasterKeyID") if "kms" in algorithm else None
                return algorithm, ref
        return None, None

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
                # an alias name or alias ARN, resolved where it lives (another key's ARN or id
                # needs no lookup)
                where = ref.split(":")[3] if ref.startswith("arn:") else region
                if where == region and self._resolve(ref, region) == arn:
                    out.append(uri)
        return tuple(out)

    def copies(self, bucket: str) -> Iterator[str]:
        for page in self._client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            yield from (v["Key"] for v in page.get("Versions", []))  # markers carry no data
        for page in self._client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            yield from (u["Key"] for u in page.get("Uploads", []))


def survey(
    keys: Sequence[str],
    roles: Mapping[str, tuple[str, ...]],
    prefixes: Mapping[str, Sequence[str]],
) -> Survey:
    """The S3 survey of ``keys`` (``aws-kms://`` key ARN URIs, as their key service resolved
    them): :func:`connectors._key_use.survey`."""
    return _survey(S3Buckets(keys), roles, prefixes)
