"""The blast-radius check of the keys a retirement destroys (:mod:`sundown.key_use`), run at
planning (recorded per key in the plan) and again right before the destroy step (recorded in
each key's evidence): a bucket default that changed after approval stops the run there, before
any key is destroyed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from sundown import registry
from sundown.errors import NotFoundError, SundownError
from sundown.key_use import ARCHIVE, EVIDENCE, LOCATION, KeyUse, Survey, judge, summary
from sundown.keys import KeyInfo
from sundown.plan import plan_locations
from sundown.spec.model import SystemSpec
from sundown.store_url import parse_store_url

from ._common import evidence_url

CHECK = "blast radius (bucket default encryption)"
_NOT_READ = {
    "azure-kv://": "a Key Vault key can be a storage account's customer-managed key or an "
    "encryption scope's; those are management-plane settings Sundown does not read, so what "
    "else is encrypted under this key was not checked",
}


def _s3() -> Callable[..., Survey]:
    from connectors.s3_key_use import survey

    return survey


def _gcs() -> Callable[..., Survey]:
    from connectors.gcs_key_use import survey

    return survey


# key URI prefix, the store scheme whose bucket defaults can name such a key, its reader
_READERS = (("aws-kms://", "s3", _s3), ("gcp-kms://", "gs", _gcs))


def _buckets(
    spec: SystemSpec, scheme: str
) -> tuple[dict[str, tuple[str, ...]], dict[str, list[str]]]:
    """Of the spec's ``scheme`` buckets: (bucket -> its roles for this system, bucket -> the
    spec's location prefixes in it)."""
    roles: dict[str, list[str]] = {}
    prefixes: dict[str, list[str]] = {}

    def add(url: str, role: str) -> None:
        parsed = parse_store_url(url)
        if parsed.scheme != scheme:
            return
        roles.setdefault(parsed.bucket, [])
        if role not in roles[parsed.bucket]:
            roles[parsed.bucket].append(role)
        if role == LOCATION:
            prefixes.setdefault(parsed.bucket, []).append(parsed.prefix)

    for ref in plan_locations(spec):
        add(ref.url, LOCATION)
    if spec.archive is not None:
        add(spec.archive.target, ARCHIVE)
    add(evidence_url(spec), EVIDENCE)
    return {b: tuple(r) for b, r in roles.items()}, prefixes


def check(spec: SystemSpec, resolved: Mapping[str, str]) -> dict[str, KeyUse]:
    """``resolved``: each key to destroy that still exists (spec URI -> the URI its key service
    resolved it to). ScopeError naming each bucket that puts data outside the system under one
    of them; otherwise what was checked and what could not be, per spec URI."""
    by_resolved = {r: uri for uri, r in resolved.items()}
    surveys: list[Survey] = []
    failed: dict[str, str] = {}
    for prefix, scheme, survey in _READERS:
        keys = sorted(r for r in by_resolved if r.startswith(prefix))
        if keys:
            roles, prefixes = _buckets(spec, scheme)
            try:
                surveys.append(survey()(keys, roles, prefixes))
            except SundownError as exc:  # no client (no credentials): said, never silent
                failed.update(
                    {by_resolved[k]: f"{scheme}:// buckets not read ({exc})" for k in keys}
                )
    unchecked = {
        uri: why for uri in resolved for scheme, why in _NOT_READ.items() if uri.startswith(scheme)
    }
    unchecked.update(failed)
    judged = judge(surveys, unchecked)
    return {by_resolved.get(r, r): use for r, use in judged.items()}


def at_planning(spec: SystemSpec, facts: Mapping[str, KeyInfo | None]) -> dict[str, KeyUse]:
    """The check at planning, over the keys the plan destroys that still exist."""
    return check(spec, {uri: info.uri for uri, info in facts.items() if info is not None})


def before_destroying(spec: SystemSpec, uris: Iterable[str]) -> dict[str, dict[str, str]]:
    """The check again, right before the destroy step, over ``uris`` (the keys not destroyed
    yet): ScopeError before any of them is destroyed; else per key the check for its evidence."""
    resolved: dict[str, str] = {}
    for uri in uris:
        if uri.startswith("aws-kms://"):
            try:
                resolved[uri] = registry.key_for_destruction(uri).uri
            except NotFoundError:
                continue  # deleted by KMS already: nothing more is destroyed
        elif uri.startswith(("gcp-kms://", *_NOT_READ)):
            resolved[uri] = uri
    return {uri: {CHECK: summary(use)} for uri, use in check(spec, resolved).items()}
