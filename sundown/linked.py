"""Object-store locations that a platform record names: the other homes of an ML system's data.

An ML platform keeps the bytes of what it tracks in object storage and records only where:
an MLflow run's artifact URI, a logged model's artifact location, a SageMaker model's
``ModelDataUrl`` and an endpoint configuration's data-capture prefix, a CloudWatch Logs export
task's bucket and prefix. Deleting the platform's record never deletes those bytes, so a record
store that finds them reports them (:class:`LinksLocations`), and the retirement must add each
one to its plan as an object-store location, purged and verified by the object-store connector.

A linked location may only be purged when a location the system spec declares covers it
(path-boundary semantics, :func:`sundown.store_url.urls_overlap`'s rule): :func:`split_by_scope`
tells the covered from the rest, and everything outside is an exception of the retirement,
never a delete outside the spec's scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sundown.store_url import ParsedStoreURL, parse_store_url


@dataclass(frozen=True)
class LinkedLocation:
    """``url``: where the platform says the bytes are, as it said it (untrusted: it was read
    back from the platform); ``kind``: what they are (``run artifacts``, ``data capture``...);
    ``source``: the record identifier that names it (``run:ID``, ``endpoint-config:NAME``)."""

    url: str
    kind: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "kind": self.kind, "source": self.source}


@runtime_checkable
class LinksLocations(Protocol):
    """Optional ability of a record store: the object-store locations its records name."""

    def linked_locations(self) -> list[LinkedLocation]: ...


@dataclass(frozen=True)
class LinkedScope:
    """:func:`split_by_scope`'s answer. ``covered``: (location, the scoped URL that covers
    it); ``outside``: locations no scoped URL covers, or that are not a store URL Sundown can
    open (``mlflow-artifacts:/...``, ``dbfs:/...``), each with the reason."""

    covered: tuple[tuple[LinkedLocation, str], ...]
    outside: tuple[tuple[LinkedLocation, str], ...]


def _covers(scope: ParsedStoreURL, inner: ParsedStoreURL) -> bool:
    return (
        scope.scheme == inner.scheme
        and scope.bucket == inner.bucket
        and inner.parts[: len(scope.parts)] == scope.parts
    )


def split_by_scope(linked: Iterable[LinkedLocation], scoped_urls: Sequence[str]) -> LinkedScope:
    """Which linked locations lie inside one of ``scoped_urls`` (the spec's object-store
    locations), with path-boundary semantics: ``s3://b/mlflow/1`` covers
    ``s3://b/mlflow/1/run/artifacts`` and never ``s3://b/mlflow/12/...``. A location that
    is not a valid store URL is outside, never guessed at."""
    scopes = [parse_store_url(u, "scoped location") for u in scoped_urls]
    covered: list[tuple[LinkedLocation, str]] = []
    outside: list[tuple[LinkedLocation, str]] = []
    for item in linked:
        try:
            parsed = parse_store_url(item.url, "linked location")
        except ValueError as exc:
            outside.append((item, f"not an object-store location Sundown opens: {exc}"))
            continue
        owner = next((s for s in scopes if _covers(s, parsed)), None)
        if owner is None:
            outside.append((item, "no location of the system spec covers it"))
        else:
            covered.append((item, owner.url))
    return LinkedScope(tuple(covered), tuple(outside))
