"""The reading half of the blast-radius check, shared by the S3 and GCS readers
(:mod:`connectors.s3_key_use`, :mod:`connectors.gcs_key_use`); :mod:`sundown.key_use` judges.

A reader lists every bucket it may (the account's, the project's), reads each bucket's default
encryption, says which destroyed keys a default's key reference names, and, for a bucket of the
system's locations under such a key, finds the first copy outside the spec's prefixes. What it
cannot read is reported with the provider's error code, never taken for "not under the key".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from sundown.key_use import BucketDefault, Survey

_READERS = 8  # bucket defaults read in flight


class BucketReader:
    """One provider's buckets; subclasses fill in the provider calls."""

    provider = ""
    scheme = ""
    listing = ""  # the API call that lists every bucket
    everything = ""  # what that call lists, for the plan
    errors: tuple[type[Exception], ...] = ()
    keys: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """Every bucket the credentials may list (raises one of ``errors`` when refused)."""
        raise NotImplementedError

    def default(self, bucket: str) -> tuple[str | None, str | None] | None:
        """(algorithm, key reference) of the bucket's default encryption; (None, None): none;
        None: the bucket is gone."""
        raise NotImplementedError

    def matches(self, ref: str) -> tuple[str, ...]:
        """The destroyed keys' URIs that the key reference ``ref`` names."""
        raise NotImplementedError

    def copies(self, bucket: str) -> Iterator[str]:
        """The object names of every copy of the bucket (versions, incomplete uploads), lazily."""
        raise NotImplementedError

    def code(self, exc: Exception) -> str:
        """What refused, for the plan (an error code and message, no secret)."""
        raise NotImplementedError


def _in_scope(name: str, prefixes: Sequence[str]) -> bool:
    return any(p == "" or name == p or name.startswith(p + "/") for p in prefixes)


def _read(
    reader: BucketReader, bucket: str, roles: tuple[str, ...], prefixes: Sequence[str]
) -> BucketDefault | None:
    url = f"{reader.scheme}://{bucket}"
    try:
        found = reader.default(bucket)
        if found is None:
            return None
        algorithm, ref = found
        matches = reader.matches(ref) if ref else ()
        outside = None
        if matches and roles and "" not in prefixes:  # a whole bucket of the system: nothing else
            first = next((n for n in reader.copies(bucket) if not _in_scope(n, prefixes)), None)
            outside = None if first is None else f"{url}/{first}"
    except reader.errors as exc:
        return BucketDefault(
            url, roles, error=f"default encryption not checked ({reader.code(exc)})"
        )
    return BucketDefault(url, roles, algorithm, ref, matches, outside)


def survey(
    reader: BucketReader,
    roles: Mapping[str, tuple[str, ...]],
    prefixes: Mapping[str, Sequence[str]],
) -> Survey:
    """The default encryption of the spec's buckets (``roles``: bucket name -> why it matters;
    ``prefixes``: bucket name -> the spec's location prefixes there, ``""`` for a whole
    bucket) and, where listing is allowed, of every other bucket, matched against the reader's
    keys."""
    unchecked: list[str] = []
    names: list[str] = []
    try:
        names = reader.names()
        listed = True
    except reader.errors as exc:
        listed = False
        unchecked.append(
            f"{reader.listing} refused ({reader.code(exc)}): {reader.provider} buckets outside "
            "the spec's own were not checked for a default under this key"
        )
    every = list(dict.fromkeys([*roles, *names]))
    with ThreadPoolExecutor(_READERS) as pool:
        found = list(
            pool.map(lambda b: _read(reader, b, roles.get(b, ()), prefixes.get(b, ())), every)
        )
    return Survey(
        provider=reader.provider,
        keys=reader.keys,
        buckets=tuple(b for b in found if b is not None),
        listed_account=listed,
        everything=f"{reader.everything} ({reader.listing})",
        unchecked=tuple(unchecked),
    )
