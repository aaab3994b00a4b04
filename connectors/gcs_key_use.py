"""Which GCS buckets default to a Cloud KMS key (CMEK): the GCS reader of the blast-radius check
(:mod:`connectors._key_use`; :mod:`sundown.key_use` judges).

The bucket resource's ``encryption.defaultKmsKeyName`` of the spec's own buckets and, where the
credentials may list the project's buckets, of every bucket of the project. Cloud KMS names a
key by one resource name (no aliases), so a default names a destroyed key when it equals the
key's name (a ``/cryptoKeyVersions/N`` suffix removed). A bucket of the system's locations
under a destroyed key is listed (every generation) until a copy outside the spec's prefixes is
found, or none is. Buckets of other projects are not listed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from sundown.key_use import Survey, shown
from sundown.sse import key_name

from . import gcs
from ._key_use import BucketReader
from ._key_use import survey as _survey

_TIMEOUT = 30  # seconds per request


class GcsBuckets(BucketReader):
    provider = "GCS"
    scheme = "gs"
    listing = "buckets.list"
    everything = "every bucket of the project"
    errors = (gexc.GoogleAPIError, auth_exc.GoogleAuthError, requests.RequestException)

    def __init__(self, uris: Sequence[str]) -> None:
        self._client = gcs.new_client()
        self._names = {uri.removeprefix("gcp-kms://"): uri for uri in uris}
        self.keys = tuple(uris)

    def code(self, exc: Exception) -> str:
        if isinstance(exc, gexc.GoogleAPIError):
            return f"{type(exc).__name__}: {shown(str(exc), 200)}"
        return type(exc).__name__

    def names(self) -> list[str]:
        # no retry: an unreachable or refusing service is reported, not waited on for minutes
        return [b.name for b in self._client.list_buckets(retry=None, timeout=_TIMEOUT)]

    def default(self, bucket: str) -> tuple[str | None, str | None] | None:
        try:
            found = self._client.get_bucket(bucket, timeout=_TIMEOUT)
        except gexc.NotFound:
            return None
        key = found.default_kms_key_name
        return ("cmek", str(key)) if key else (None, None)

    def matches(self, ref: str) -> tuple[str, ...]:
        uri = self._names.get(key_name(ref, "gcp"))
        return (uri,) if uri else ()

    def copies(self, bucket: str) -> Iterator[str]:
        blobs = self._client.list_blobs(bucket, versions=True, timeout=_TIMEOUT)
        yield from (b.name for b in blobs)


def survey(
    keys: Sequence[str],
    roles: Mapping[str, tuple[str, ...]],
    prefixes: Mapping[str, Sequence[str]],
) -> Survey:
    """The GCS survey of ``keys`` (``gcp-kms://`` crypto key URIs)."""
    return _survey(GcsBuckets(keys), roles, prefixes)
