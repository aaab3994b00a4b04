"""Checks across systems: :func:`check_no_overlap` refuses two specs that share a location
(by path boundary, and for ``file://`` through symbolic links), a key that one of them destroys,
a credential that one of them revokes, or a Vault path one of them rotates."""

from __future__ import annotations

from collections.abc import Iterable

from sundown import credential_ids
from sundown.errors import InputError
from sundown.spec.model import SystemSpec
from sundown.spec.records import overlaps_across
from sundown.spec.values import overlap_note, paths_overlap

# --------------------------------------------------------------------------------------------
# Cross-system checks


def _cross_conflicts(a: SystemSpec, b: SystemSpec) -> list[str]:
    """Ways in which retiring ``a`` would touch ``b``."""
    out: list[str] = []
    b_urls = [(r.url, f"{r.field}") for r in b.locations()]
    if b.archive is not None:
        b_urls.append((b.archive.target, "archive.target"))
    if b.evidence is not None:
        b_urls.append((b.evidence, "evidence"))
    for ref in a.locations():
        for url, field in b_urls:
            note = overlap_note(ref.url, url)
            if note is not None:
                out.append(
                    f"{a.name}: {ref.field} {ref.url} overlaps {b.name}'s {field} {url}{note} "
                    "(purging one would purge the other)"
                )
    out += overlaps_across(a.name, a.record_locations(), b.name, b.record_locations())
    b_keys = {
        b.keys.kek: "keys.kek",
        b.keys.certificate: "keys.certificate",
        **({b.archive.key: "archive.key"} if b.archive else {}),
        **({b.keys.model_signing: "keys.model_signing"} if b.keys.model_signing else {}),
    }
    for uri, role in a.keys_to_destroy():
        if uri in b_keys:
            out.append(
                f"{a.name}: keys.{role} {uri} is also {b.name}'s {b_keys[uri]}; destroying it "
                f"at {a.name}'s retirement would break {b.name}"
            )
    if a.rotation is not None and a.rotation.deliver_to is not None:
        to = a.rotation.deliver_to
        b_kv = [(kv.mount, kv.path, "credentials.vault_kv") for kv in b.credentials.vault_kv]
        if b.rotation is not None and b.rotation.deliver_to is not None:
            b_to = b.rotation.deliver_to
            b_kv.append((b_to.mount, b_to.path, "rotation.deliver_to"))
        for mount, path, field in b_kv:
            if mount == to.mount and paths_overlap(path, to.path):
                out.append(
                    f"{a.name}: rotation.deliver_to {to.mount}/{to.path} overlaps {b.name}'s "
                    f"{field} {mount}/{path}; retiring one would destroy the other's secrets"
                )
    b_refs = b.credential_refs()
    for cred in a.credential_refs():
        for other in b_refs:
            same = cred == other
            if cred.kind == other.kind == "vault_lease_prefix":
                same = paths_overlap(cred.id, other.id)
            elif {cred.kind, other.kind} == {"vault_approle_role", "vault_approle_secret_id"}:
                role_ref = cred if cred.kind == "vault_approle_role" else other
                sid = other if role_ref is cred else cred
                same = sid.id.startswith(role_ref.id + "/")
            elif cred.kind == other.kind in ("postgres_role", "redis_acl_user"):
                same = credential_ids.same_target(cred.kind, cred.id, other.id)
            if same:
                out.append(
                    f"{a.name}: credential {cred.kind} {cred.id} is also {b.name}'s "
                    f"({other.kind} {other.id}); revoking it would break {b.name}"
                )
    return out


def check_no_overlap(spec: SystemSpec, others: Iterable[SystemSpec]) -> None:
    """InputError listing every way ``spec`` and another system overlap: a location (or archive
    target or evidence location) in common, a key one destroys that the other uses, a credential
    one revokes that the other declares, or the same name."""
    problems: list[str] = []
    for other in others:
        if other is spec:
            continue
        if other.name == spec.name:
            problems.append(f"two specs declare the system name {spec.name!r}")
        problems += _cross_conflicts(spec, other)
        problems += _cross_conflicts(other, spec)
    if problems:
        body = "\n".join(f"  - {p}" for p in dict.fromkeys(problems))
        raise InputError(f"system {spec.name!r} overlaps other systems:\n{body}")
