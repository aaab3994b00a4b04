"""The blast-radius check of the keys a retirement destroys (:mod:`sundown.key_use`), run at
planning (recorded per key in the plan) and again right before the destroy step (recorded in
each key's evidence): a bucket default that changed after approval stops the run there, before
any key is destroyed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sundown import registry
from sundown.errors import NotFoundError
from sundown.key_use import ARCHIVE, EVIDENCE, LOCATION, KeyUse, Survey, judge, summary
from sundown.keys import KeyInfo
from sundown.plan import plan_locations
from sundown.spec.model import SystemSpec
from sundown.store_url import parse_store_url

from ._common import evidence_url

CHECK = "blast radius (bucket default encryption)"
_NOT_READ = {
    "gcp-kms://": "a Cloud KMS key can be the default key (CMEK) of GCS buckets and of other "
    "Google services; Sundown does not read those defaults, so what else is encrypted under "
    "this key was not checked",
    "azure-kv://": "a Key Vault key can be a storage account's customer-managed key or an "
    "encryption scope's; those are management-plane settings Sundown does not read, so what "
    "else is encrypted under this key was not checked",
}


def _s3_buckets(spec: SystemSpec) -> tuple[dict[str, tuple[str, ...]], dict[str, list[str]]]:
    """(bucket -> its roles for this system, bucket -> the spec's location prefixes in it)."""
    roles: dict[str, list[str]] = {}
    prefixes: dict[str, list[str]] = {}

    def add(url: str, role: str) -> None:
        parsed = parse_store_url(url)
        if parsed.scheme != "s3":
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
    aws = {r: uri for uri, r in resolved.items() if r.startswith("aws-kms://")}
    surveys: list[Survey] = []
    if aws:
        from connectors.s3_key_use import survey

        roles, prefixes = _s3_buckets(spec)
        surveys.append(survey(sorted(aws), roles, prefixes))
    unchecked = {
        uri: why for uri in resolved for scheme, why in _NOT_READ.items() if uri.startswith(scheme)
    }
    judged = judge(surveys, unchecked)
    return {aws.get(r, r): use for r, use in judged.items()}


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
        elif uri.startswith(tuple(_NOT_READ)):
            resolved[uri] = uri
    return {uri: {CHECK: summary(use)} for uri, use in check(spec, resolved).items()}
