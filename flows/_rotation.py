"""Credential rotation as ``rotate_credentials`` needs it: one spec credential -> its connector
rotation, the delivery of the new secret into Vault KV, and the old credential's removal after
the grace period.

What rotation means per kind (docs/flows.md, "Credential rotation"):

- ``vault_kv`` (``on_rotation: generate``): a new version of the secret where every field gets
  a fresh value of 32 random bytes, URL-safe base64 (``secrets.token_urlsafe(32)``); the secret
  is its own delivery. The previous version is destroyed after the grace period.
- ``aws_access_key``: a new access key for the user, the old one deactivated at once and
  deleted after the grace period; ``{aws_access_key_id, aws_secret_access_key}`` delivered.
- ``azure_stored_policy``: a new stored access policy (``<declared id>-r<UTC time>``, same
  permissions, ``rotation.azure_policy_days`` long) and a SAS bound to it; the old policy is
  removed after the grace period (every SAS under it is then refused);
  ``{container, policy_id, sas_token, expires}`` delivered.
- ``gcs_hmac_key``: a new HMAC key for the declared service account, the old one deactivated
  at once and deleted after the grace period; ``{access_id, secret}`` delivered.
- ``vault_approle_role``: a new secret-id on the role (tagged with the system's name);
  ``{role_id, secret_id, secret_id_accessor}`` delivered; the secret-ids it replaces (the
  declared accessors, then the ones Sundown issued) are destroyed after the grace period.
- ``vault_token`` and ``vault_lease_prefix`` are **not rotated**, and say why: a token cannot be
  re-issued with the same parentage and policies by its accessor, and a lease belongs to the
  dynamic-secret engine that issued it (it expires, or the consumer requests a new one).

The identifiers a rotation creates differ from the ones the spec declares. The spec stays as
written (it names each credential's lineage); what stands for it now, and which replaced
credentials still wait for their grace period, is the ``rotation_state`` of the latest rotation
receipt that the ledger points at (create-only evidence, digest-checked against the ledger).
:func:`current_refs` turns that into the credentials to revoke.

New secret material lives only inside the task that creates it: it goes from the connector's
:class:`pydantic.SecretStr` straight into Vault, and never into a return value, a log line, an
artifact, the receipt or the ledger. Evidence names credentials by their public identifiers and
the delivery by its KV path and version.
"""

from __future__ import annotations

import importlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import task
from pydantic import SecretStr

from sundown.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    SundownError,
)
from sundown.ledger import Ledger, RecordKind
from sundown.spec.model import CredentialRef, Delivery, SystemSpec
from sundown.store import put_once

from ._common import TASK_OPTIONS, open_evidence, sha256_digest

RECEIPTS = "rotations"
NO_CONSUMER = "not rotated unattended (the new secret needs a declared consumer)"
_WHY_NOT_VAULT_TOK = (
    "a Vault token cannot be re-issued by its accessor with the same parent and "
    "policies; issue a new one to its consumer, then revoke this one (sundown revoke)"
)
_WHY_NOT_LEASE = (
    "leases belong to the secrets engine that issued them; they expire, and the "
    "consumer asks for new credentials (revoke them early with sundown revoke)"
)


def _module(name: str) -> Any:
    return importlib.import_module(f"connectors.credentials.{name}")


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# What can be rotated


@dataclass(frozen=True)
class Unit:
    """One rotatable thing of the spec: ``kind`` and ``declared`` are the credential's kind and
    identifier as the spec declares them (its lineage); ``key`` names it in the state."""

    kind: str
    declared: str

    @property
    def key(self) -> str:
        return f"{self.kind} {self.declared}"


def units(spec: SystemSpec) -> list[Unit]:
    """The spec's credentials in rotation order (AppRoles by role, AWS keys one by one)."""
    c = spec.credentials
    out = [Unit("vault_kv", f"{kv.mount}/{kv.path}") for kv in c.vault_kv]
    out += [Unit("vault_token", a) for a in c.vault_token_accessors]
    out += [Unit("vault_lease_prefix", p) for p in c.vault_lease_prefixes]
    out += [Unit("vault_approle_role", f"{ar.mount}/{ar.role}") for ar in c.vault_approles]
    out += [
        Unit("aws_access_key", f"{ak.user}/{key}")
        for ak in c.aws_access_keys
        for key in ak.access_key_ids
    ]
    out += [
        Unit("azure_stored_policy", f"{p.container}/{p.policy_id}") for p in c.azure_stored_policies
    ]
    out += [Unit("gcs_hmac_key", h.access_id) for h in c.gcs_hmac_keys]
    return out


def _delivery(spec: SystemSpec, unit: Unit) -> Delivery | None:
    if unit.kind == "aws_access_key":
        return spec.delivery(unit.kind, unit.declared.rsplit("/", 1)[0])
    return spec.delivery(unit.kind, unit.declared)


def _declared_current(spec: SystemSpec, unit: Unit) -> list[str]:
    """The ids that stand for ``unit`` before any rotation."""
    if unit.kind == "vault_approle_role":
        for ar in spec.credentials.vault_approles:
            if f"{ar.mount}/{ar.role}" == unit.declared:
                return list(ar.secret_id_accessors)
    if unit.kind == "aws_access_key":
        return [unit.declared.rsplit("/", 1)[1]]
    if unit.kind == "azure_stored_policy":
        return [unit.declared.split("/", 1)[1]]
    return [unit.declared]


# --------------------------------------------------------------------------------------------
# State: the latest ledgered receipt


@dataclass
class State:
    """What stands for each unit now (``current``: unit key -> ids) and which replaced
    credentials wait for removal (``pending``), from the latest rotation receipt."""

    current: dict[str, list[str]]
    pending: list[dict[str, Any]]
    source: str | None = None

    def ids(self, spec: SystemSpec, unit: Unit) -> list[str]:
        return list(self.current.get(unit.key, _declared_current(spec, unit)))

    def to_json(self) -> dict[str, Any]:
        return {"current": dict(sorted(self.current.items())), "pending": self.pending}


def receipt_prefix(spec: SystemSpec) -> str:
    return f"{RECEIPTS}/{spec.name}/"


def load_state(spec: SystemSpec) -> State:
    """The rotation state of the latest ``rotate`` ledger record of this system whose receipt
    carries one. IntegrityError if that receipt no longer matches the ledger's digest."""
    store = open_evidence(spec)
    base = store.url.rstrip("/") + "/" + receipt_prefix(spec)
    latest = None
    for stored in Ledger(store).records():
        ev = stored.record.evidence
        ours = ev is not None and ev.location.startswith(base)
        if stored.record.kind is RecordKind.ROTATE and ours:
            latest = ev
    if latest is None:
        return State({}, [])
    key = latest.location[len(store.url.rstrip("/")) + 1 :]
    with store.open(key) as f:
        body = f.read()
    if sha256_digest(body) != latest.digest:
        raise IntegrityError(
            f"rotation receipt {latest.location} does not match its ledger record's digest: "
            "the rotation state cannot be trusted; nothing was rotated"
        )
    state = json.loads(body).get("rotation_state") or {}
    return State(
        {str(k): [str(i) for i in v] for k, v in (state.get("current") or {}).items()},
        [dict(p) for p in state.get("pending") or []],
        latest.location,
    )


def current_refs(spec: SystemSpec, state: State | None = None) -> list[CredentialRef]:
    """Every credential the system holds after its rotations: the spec's own, the ones rotation
    created in their place, and the replaced ones still waiting for their grace period. This is
    what a revocation or retirement must kill (``spec.credential_refs()`` alone misses what
    rotation created)."""
    state = state if state is not None else load_state(spec)
    refs = list(spec.credential_refs())
    for unit in units(spec):
        ids = state.current.get(unit.key)
        if ids is None:
            continue
        if unit.kind == "aws_access_key":
            user = unit.declared.rsplit("/", 1)[0]
            refs += [CredentialRef("aws_access_key", f"{user}/{i}") for i in ids]
        elif unit.kind == "azure_stored_policy":
            container = unit.declared.split("/", 1)[0]
            refs += [CredentialRef("azure_stored_policy", f"{container}/{i}") for i in ids]
        elif unit.kind == "gcs_hmac_key":
            refs += [CredentialRef("gcs_hmac_key", i) for i in ids]
        elif unit.kind == "vault_approle_role":
            refs += [CredentialRef("vault_approle_secret_id", f"{unit.declared}/{i}") for i in ids]
    for p in state.pending:
        if p["kind"] != "vault_kv_version":
            refs.append(CredentialRef(p["kind"], p["target"]))
    return list(dict.fromkeys(refs))


# --------------------------------------------------------------------------------------------
# Delivery into Vault KV v2


def preflight(spec: SystemSpec) -> None:
    """Before anything changes: the Vault token may write every delivery path (a rotation whose
    new secret cannot be delivered would lock its consumer out)."""
    deliveries = [d for u in units(spec) if (d := _delivery(spec, u)) is not None]
    if not deliveries:
        return
    from connectors.vault import VaultSettings, vault_client, vault_errors

    settings = VaultSettings.from_env()
    paths = [f"{d.mount}/data/{d.path}" for d in deliveries]
    with (
        vault_errors("check the rotation delivery paths", settings),
        vault_client(settings) as client,
    ):
        answer = client.sys.get_capabilities(paths=paths)
    data = answer.get("data", answer) if isinstance(answer, Mapping) else {}
    refused = []
    for path in paths:
        caps = set(data.get(path) or data.get("capabilities") or [])
        if "root" not in caps and not {"create", "update"} <= caps:
            refused.append(f"{path} ({', '.join(sorted(caps)) or 'deny'})")
    if refused:
        raise PermissionDeniedError(
            "the Vault token may not write the rotation delivery path(s) "
            + "; ".join(refused)
            + ": nothing was rotated (grant create and update there)"
        )


def deliver(delivery: Delivery, values: Mapping[str, str | SecretStr]) -> dict[str, Any]:
    """Write ``values`` as a new version of the delivery secret (check-and-set on the version
    read just before); read it back and compare. Returns the path, version and checks only."""
    import hvac.exceptions as hvac_errors

    from connectors.credentials import Checks
    from connectors.vault import VaultSettings, vault_client, vault_errors

    plain = {
        k: v.get_secret_value() if isinstance(v, SecretStr) else str(v) for k, v in values.items()
    }
    target = f"{delivery.mount}/{delivery.path}"
    settings = VaultSettings.from_env()
    with vault_errors(f"deliver to KV {target}", settings), vault_client(settings) as client:
        kv = client.secrets.kv.v2
        try:
            meta = kv.read_secret_metadata(delivery.path, mount_point=delivery.mount)
            previous = int(meta["data"]["current_version"])
        except hvac_errors.InvalidPath:
            previous = 0
        written = kv.create_or_update_secret(
            delivery.path, secret=plain, cas=previous, mount_point=delivery.mount
        )
        version = int(written["data"]["version"])
        back = kv.read_secret_version(
            delivery.path,
            version=version,
            mount_point=delivery.mount,
            raise_on_deleted_version=True,
        )["data"]["data"]
    checks = Checks()
    checks.expect("read back", back == plain, "every field reads back as written")
    checks.expect("new version", version == previous + 1, f"version {version} after {previous}")
    return {
        "path": target,
        "version": version,
        "fields": sorted(plain),
        "checks": checks.results,
        "verified": checks.ok,
    }


def _destroy_kv_version(mount: str, path: str, version: int) -> dict[str, Any]:
    """Destroy one old version of a KV secret (its data erased; metadata kept)."""
    import hvac.exceptions as hvac_errors

    from connectors.credentials import Checks, CredentialEvidence
    from connectors.vault import VaultSettings, vault_client, vault_errors

    settings = VaultSettings.from_env()
    target = f"{mount}/{path}"
    with (
        vault_errors(f"destroy version {version} of {target}", settings),
        vault_client(settings) as client,
    ):
        kv = client.secrets.kv.v2
        kv.destroy_secret_versions(path, versions=[version], mount_point=mount)
        meta = kv.read_secret_metadata(path, mount_point=mount)["data"]
        destroyed = bool((meta.get("versions") or {}).get(str(version), {}).get("destroyed"))
        checks = Checks()
        checks.expect("version destroyed", destroyed, "destroyed" if destroyed else "readable")
        try:
            kv.read_secret_version(
                path, version=version, mount_point=mount, raise_on_deleted_version=True
            )
            checks.failed("read version after", "still reads")
        except hvac_errors.InvalidPath:
            checks.passed("read version after", "no data")
    return CredentialEvidence(
        kind="vault-kv",
        target=f"{target}#{version}",
        action="old version destroyed",
        at=_now(),
        details={"version": str(version)},
        checks=checks.results,
        verified=checks.ok,
    ).to_dict()


# --------------------------------------------------------------------------------------------
# Finishing: removing replaced credentials after the grace period


def _pending(
    unit: Unit, kind: str, target: str, not_before: datetime | None, **params: Any
) -> dict[str, Any]:
    return {
        "unit": unit.key,
        "kind": kind,
        "target": target,
        "not_before": (not_before or _now()).isoformat(),
        "params": params,
    }


def _finish_one(p: Mapping[str, Any]) -> list[dict[str, Any]]:
    kind, params = p["kind"], p.get("params") or {}
    not_before = datetime.fromisoformat(p["not_before"])
    if kind == "aws_access_key":
        module = _module("aws_iam")
        try:
            return [
                module.finish_rotation(
                    params["user"], params["key_id"], not_before=not_before
                ).to_dict()
            ]
        except NotFoundError:  # deleted by hand meanwhile: prove it is gone
            return [
                module.revoke_access_key(
                    params["user"], params["key_id"], missing_ok=True
                ).to_dict()
            ]
    if kind == "gcs_hmac_key":
        module = _module("gcs_hmac")
        try:
            return [module.finish_rotation(params["access_id"], not_before=not_before).to_dict()]
        except NotFoundError:
            return [module.revoke_hmac_key(params["access_id"], missing_ok=True).to_dict()]
    if kind == "azure_stored_policy":
        ev = _module("azure_sas").revoke_access_policy(
            params["container"], params["policy_id"], missing_ok=True
        )
        return [ev.to_dict()]
    if kind == "vault_approle_secret_id":
        evs = _module("vault_approle").destroy_secret_ids(
            params["role"], [params["accessor"]], mount=params["mount"], missing_ok=True
        )
        return [ev.to_dict() for ev in evs]
    if kind == "vault_kv_version":
        try:
            return [_destroy_kv_version(params["mount"], params["path"], int(params["version"]))]
        except NotFoundError:  # the secret itself is gone (revoked or retired meanwhile)
            return [
                {
                    "kind": "vault-kv",
                    "target": p["target"],
                    "action": "already absent",
                    "at": _now().isoformat(),
                    "details": {},
                    "checks": {"read metadata": "404 not found: the secret is gone"},
                    "verified": True,
                }
            ]
    raise IntegrityError(f"rotation state names an unknown pending kind {kind!r}")


@task(name="finish-rotation", **TASK_OPTIONS)
def finish_pending(pending: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Remove every replaced credential whose grace period is over. Returns what was done
    (``{"pending": ..., "outcome": "finished" | "failed" | "waiting", ...}``) and the lines for
    the result. Nothing is removed before its time; a failure leaves it pending."""
    done: list[dict[str, Any]] = []
    lines: list[str] = []
    for p in pending:
        not_before = datetime.fromisoformat(p["not_before"])
        label = f"{p['kind']} {p['target']} (replaced, of {p['unit']})"
        if _now() < not_before:
            done.append({"pending": p, "outcome": "waiting"})
            lines.append(f"{label}: kept until {not_before.isoformat()}")
            continue
        try:
            evidence = _finish_one(p)
        except (SundownError, ImportError, KeyError) as exc:
            why = f"{type(exc).__name__}: {exc}"[:500]
            done.append({"pending": p, "outcome": "failed", "reason": why})
            lines.append(f"{label}: removal FAILED ({why}); still pending")
            continue
        verified = bool(evidence) and all(e["verified"] for e in evidence)
        outcome = "finished" if verified else "failed"
        done.append({"pending": p, "outcome": outcome, "evidence": evidence})
        action = "; ".join(str(e["action"]) for e in evidence)
        lines.append(f"{label}: {action}" + ("" if verified else " but NOT proven (still pending)"))
    return done, lines


# --------------------------------------------------------------------------------------------
# Rotating one unit


@dataclass
class _Ctx:
    spec: SystemSpec
    unit: Unit
    ids: list[str]
    grace: timedelta
    stamp: datetime
    delivery: Delivery | None

    @property
    def delete_after(self) -> datetime:
        return self.stamp + self.grace


def _outcome(ctx: _Ctx, outcome: str, reason: str = "", **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "unit": ctx.unit.key,
        "kind": ctx.unit.kind,
        "declared": ctx.unit.declared,
        "outcome": outcome,
        "reason": reason,
        "old": list(ctx.ids),
        "new": list(ctx.ids),
        "pending": [],
        "evidence": [],
        "delivered": None,
    }
    out.update(more)
    return out


# The public identifier each delivery names, by kind (used to recover a lost receipt).
_DELIVERED_ID = {
    "aws_access_key": "aws_access_key_id",
    "azure_stored_policy": "policy_id",
    "gcs_hmac_key": "access_id",
    "vault_approle_role": "secret_id_accessor",
}


def _replaced(ctx: _Ctx, old: str, not_before: datetime) -> dict[str, Any]:
    """The pending removal of ``old``, replaced in ``ctx.unit``'s lineage."""
    unit = ctx.unit
    if unit.kind == "aws_access_key":
        user = unit.declared.rsplit("/", 1)[0]
        return _pending(unit, unit.kind, f"{user}/{old}", not_before, user=user, key_id=old)
    if unit.kind == "azure_stored_policy":
        container = unit.declared.split("/", 1)[0]
        return _pending(
            unit, unit.kind, f"{container}/{old}", not_before, container=container, policy_id=old
        )
    if unit.kind == "gcs_hmac_key":
        return _pending(unit, unit.kind, old, not_before, access_id=old)
    mount, role = unit.declared.rsplit("/", 1)
    return _pending(
        unit,
        "vault_approle_secret_id",
        f"{unit.declared}/{old}",
        not_before,
        mount=mount,
        role=role,
        accessor=old,
    )


def _delivered_id(ctx: _Ctx) -> tuple[str, int] | None:
    """The identifier named by the latest delivery (and its version), if there is one."""
    import hvac.exceptions as hvac_errors

    from connectors.vault import VaultSettings, vault_client, vault_errors

    assert ctx.delivery is not None
    d = ctx.delivery
    settings = VaultSettings.from_env()
    with vault_errors(f"read KV {d.mount}/{d.path}", settings), vault_client(settings) as client:
        try:
            answer = client.secrets.kv.v2.read_secret_version(
                d.path, mount_point=d.mount, raise_on_deleted_version=True
            )["data"]
        except hvac_errors.InvalidPath:
            return None
    found = answer["data"].get(_DELIVERED_ID[ctx.unit.kind])
    version = int(answer["metadata"]["version"])
    del answer
    return (str(found), version) if found else None


def _recover(ctx: _Ctx) -> dict[str, Any] | None:
    """A delivery that names a credential the state does not know was made by a run whose
    receipt is missing (a crash between rotating and recording): adopt it as the current one,
    schedule the ones it replaced for removal, and rotate nothing more this time."""
    delivered = _delivered_id(ctx)
    if delivered is None or delivered[0] in ctx.ids:
        return None
    new_id, version = delivered
    assert ctx.delivery is not None
    path = f"{ctx.delivery.mount}/{ctx.delivery.path}"
    pending = [_replaced(ctx, old, ctx.delete_after) for old in ctx.ids]
    return _outcome(
        ctx,
        "recovered",
        f"the delivery (v{version}) names {new_id}, made by a run whose receipt is missing; "
        "adopted as current, nothing rotated this time",
        new=[new_id],
        pending=pending,
        delivered={"path": path, "version": version},
    )


def _rotate_kv(ctx: _Ctx) -> dict[str, Any]:
    import hvac.exceptions as hvac_errors

    from connectors.vault import VaultSettings, vault_client, vault_errors

    entry = next(
        kv for kv in ctx.spec.credentials.vault_kv if f"{kv.mount}/{kv.path}" == ctx.unit.declared
    )
    if entry.on_rotation == "keep":
        return _outcome(
            ctx, "not rotated", "on_rotation is 'keep' (its value is set by another system)"
        )
    settings = VaultSettings.from_env()
    with (
        vault_errors(f"read the fields of KV {ctx.unit.declared}", settings),
        vault_client(settings) as client,
    ):
        try:
            current = client.secrets.kv.v2.read_secret_version(
                entry.path, mount_point=entry.mount, raise_on_deleted_version=True
            )["data"]["data"]
        except hvac_errors.InvalidPath:
            raise NotFoundError(f"no readable KV secret {ctx.unit.declared} to rotate") from None
        fields = sorted(current)
        del current  # the old values are not needed, only the field names
    values = {name: SecretStr(secrets.token_urlsafe(32)) for name in fields}
    evidence = _module("vault_kv").rotate_secret(entry.path, values, mount=entry.mount)
    del values
    previous = int(evidence.details["previous_version"])
    pending = [
        _pending(
            ctx.unit,
            "vault_kv_version",
            f"{ctx.unit.declared}#{previous}",
            ctx.delete_after,
            mount=entry.mount,
            path=entry.path,
            version=previous,
        )
    ]
    done: list[dict[str, Any]] = [evidence.to_dict()]
    if ctx.grace == timedelta(0):
        done += _finish_one(pending[0])
        pending = []
    return _outcome(
        ctx,
        "rotated" if all(e["verified"] for e in done) else "failed",
        "" if evidence.verified else "the new version did not read back as written",
        new=[ctx.unit.declared],
        evidence=done,
        pending=pending,
        delivered={"path": ctx.unit.declared, "version": int(evidence.details["new_version"])},
    )


def _deliver_or_undo(
    ctx: _Ctx, values: Mapping[str, str | SecretStr], undo: Callable[[], object]
) -> dict[str, Any]:
    """Deliver the new secret; if that fails, remove the new credential (an undelivered secret
    is of use to nobody) and raise, saying what state the old one is in."""
    assert ctx.delivery is not None
    try:
        return deliver(ctx.delivery, values)
    except SundownError as exc:
        try:
            undo()
            undone = "the new credential was removed again"
        except SundownError as undo_exc:
            undone = f"removing the new credential failed too ({type(undo_exc).__name__})"
        raise type(exc)(f"{exc}; {undone}") from None


def _rotate_aws(ctx: _Ctx) -> dict[str, Any]:
    user = ctx.unit.declared.rsplit("/", 1)[0]
    module = _module("aws_iam")
    old = ctx.ids[0]
    rotation = module.rotate_access_key(user, old_key_id=old, grace=ctx.grace)
    assert rotation.new is not None
    new_id = rotation.new.identifier
    delivered = _deliver_or_undo(
        ctx,
        {"aws_access_key_id": new_id, "aws_secret_access_key": rotation.new.secret},
        lambda: module.revoke_access_key(user, new_id),
    )
    pending = []
    if rotation.delete_old_after is not None:
        pending.append(_replaced(ctx, old, rotation.delete_old_after))
    return _result(ctx, [new_id], [rotation.evidence.to_dict()], pending, delivered)


def _rotate_azure(ctx: _Ctx) -> dict[str, Any]:
    assert ctx.spec.rotation is not None
    container, root = ctx.unit.declared.split("/", 1)
    old = ctx.ids[0]
    new_id = f"{root[:46]}-r{ctx.stamp:%Y%m%d%H%M%S}"
    module = _module("azure_sas")
    expiry = ctx.stamp + timedelta(days=ctx.spec.rotation.azure_policy_days)
    keep_old = ctx.grace > timedelta(0)
    rotation = module.rotate_access_policy(container, old, new_id, expiry=expiry, keep_old=keep_old)
    assert rotation.new is not None
    delivered = _deliver_or_undo(
        ctx,
        {
            "container": container,
            "policy_id": new_id,
            "sas_token": rotation.new.secret,
            "expires": expiry.isoformat(),
        },
        lambda: module.revoke_access_policy(container, new_id),
    )
    pending = [_replaced(ctx, old, ctx.delete_after)] if keep_old else []
    return _result(ctx, [new_id], [rotation.evidence.to_dict()], pending, delivered)


def _rotate_gcs(ctx: _Ctx) -> dict[str, Any]:
    entry = next(h for h in ctx.spec.credentials.gcs_hmac_keys if h.access_id == ctx.unit.declared)
    if entry.service_account is None:
        return _outcome(
            ctx,
            "not rotated",
            "a new HMAC key is created for a service account: declare service_account",
        )
    module = _module("gcs_hmac")
    old = ctx.ids[0]
    rotation = module.rotate_hmac_key(entry.service_account, old_access_id=old, grace=ctx.grace)
    assert rotation.new is not None
    new_id = rotation.new.identifier
    delivered = _deliver_or_undo(
        ctx,
        {"access_id": new_id, "secret": rotation.new.secret},
        lambda: module.revoke_hmac_key(new_id),
    )
    pending = []
    if rotation.delete_old_after is not None:
        pending.append(_replaced(ctx, old, rotation.delete_old_after))
    return _result(ctx, [new_id], [rotation.evidence.to_dict()], pending, delivered)


def _rotate_approle(ctx: _Ctx) -> dict[str, Any]:
    import hvac.exceptions as hvac_errors

    from connectors.credentials import Checks, CredentialEvidence
    from connectors.vault import VaultSettings, vault_client, vault_errors

    mount, role = ctx.unit.declared.rsplit("/", 1)
    settings = VaultSettings.from_env()
    with (
        vault_errors(f"issue a secret-id for AppRole {role}", settings),
        vault_client(settings) as client,
    ):
        approle = client.auth.approle
        try:
            role_id = str(approle.read_role_id(role, mount_point=mount)["data"]["role_id"])
        except hvac_errors.InvalidPath:
            raise NotFoundError(f"no AppRole role {role!r} at auth/{mount}") from None
        issued = approle.generate_secret_id(
            role,
            metadata={"system": ctx.spec.name, "issued_by": "sundown rotate"},
            mount_point=mount,
        )["data"]
        secret_id = SecretStr(str(issued["secret_id"]))
        accessor = str(issued["secret_id_accessor"])
        del issued
        checks = Checks()
        try:
            approle.read_secret_id_accessor(role, accessor, mount_point=mount)
            checks.passed("new accessor lookup", "found")
        except hvac_errors.InvalidPath:
            checks.failed("new accessor lookup", "not found")
    evidence = CredentialEvidence(
        kind="vault-approle-secret-id",
        target=f"{role}/{accessor}",
        action="issued",
        at=_now(),
        details={"role": role, "mount": mount, "replaces": ",".join(ctx.ids)},
        checks=checks.results,
        verified=checks.ok,
    )

    def undo() -> object:
        return _module("vault_approle").destroy_secret_ids(role, [accessor], mount=mount)

    delivered = _deliver_or_undo(
        ctx,
        {"role_id": role_id, "secret_id": secret_id, "secret_id_accessor": accessor},
        undo,
    )
    del secret_id
    pending = [_replaced(ctx, old, ctx.delete_after) for old in ctx.ids]
    done = [evidence.to_dict()]
    if ctx.grace == timedelta(0):
        for p in pending:
            done += _finish_one(p)
        pending = []
    return _result(ctx, [accessor], done, pending, delivered)


def _result(
    ctx: _Ctx,
    new: list[str],
    evidence: list[dict[str, Any]],
    pending: list[dict[str, Any]],
    delivered: dict[str, Any],
) -> dict[str, Any]:
    ok = all(e["verified"] for e in evidence) and delivered["verified"]
    return _outcome(
        ctx,
        "rotated" if ok else "failed",
        "" if ok else "a check of the rotation or the delivery did not pass",
        new=new,
        evidence=evidence,
        pending=pending,
        delivered=delivered,
    )


_ROTATORS: dict[str, Callable[[_Ctx], dict[str, Any]]] = {
    "vault_kv": _rotate_kv,
    "aws_access_key": _rotate_aws,
    "azure_stored_policy": _rotate_azure,
    "gcs_hmac_key": _rotate_gcs,
    "vault_approle_role": _rotate_approle,
}
_NOT_ROTATED = {"vault_token": _WHY_NOT_VAULT_TOK, "vault_lease_prefix": _WHY_NOT_LEASE}


@task(name="rotate-credential", **TASK_OPTIONS)
def rotate_unit(spec: SystemSpec, unit: Unit, ids: list[str], stamp: datetime) -> dict[str, Any]:
    """Rotate one credential and deliver its new secret; returns the outcome (no secret).
    Expected failures are an outcome ``failed`` with the reason, so the others still rotate."""
    assert spec.rotation is not None
    ctx = _Ctx(
        spec,
        unit,
        ids,
        timedelta(hours=spec.rotation.grace_period_hours),
        stamp,
        _delivery(spec, unit),
    )
    if unit.kind in _NOT_ROTATED:
        return _outcome(ctx, "not rotated", _NOT_ROTATED[unit.kind])
    if unit.kind != "vault_kv" and ctx.delivery is None:
        return _outcome(
            ctx, "not rotated", "the new secret needs a consumer: declare rotation.deliver_to"
        )
    if unit.kind == "aws_access_key":
        user = unit.declared.rsplit("/", 1)[0]
        declared = [
            k
            for ak in spec.credentials.aws_access_keys
            if ak.user == user
            for k in ak.access_key_ids
        ]
        if len(declared) > 1:
            return _outcome(
                ctx,
                "not rotated",
                f"{len(declared)} access keys are declared for IAM user {user}; rotation keeps "
                "one key per user (IAM allows two, and a rotation needs the second slot)",
            )
    if not ids and unit.kind != "vault_approle_role":
        return _outcome(ctx, "failed", "the rotation state names no current credential")
    try:
        if ctx.delivery is not None and (recovered := _recover(ctx)) is not None:
            return recovered
        return _ROTATORS[unit.kind](ctx)
    except ImportError as exc:
        return _outcome(ctx, "failed", f"the {unit.kind} connector is not available ({exc.name})")
    except SundownError as exc:
        return _outcome(ctx, "failed", f"{type(exc).__name__}: {exc}"[:1000])


def line(outcome: Mapping[str, Any]) -> str:
    """One line for the result and the artifact."""
    head = f"{outcome['unit']}"
    if outcome["outcome"] == "rotated":
        old, new = ", ".join(outcome["old"]) or "-", ", ".join(outcome["new"])
        text = f"{head}: rotated ({old} -> {new})"
        if outcome["delivered"] is not None:
            d = outcome["delivered"]
            text += f", delivered to {d['path']} v{d['version']}"
        waiting = [p["target"] for p in outcome["pending"]]
        if waiting:
            text += f"; {', '.join(waiting)} removed after {outcome['pending'][0]['not_before']}"
        return text
    if outcome["outcome"] == "recovered":
        gone = ", ".join(p["target"] for p in outcome["pending"]) or "nothing"
        return f"{head}: recovered: {outcome['reason']}; {gone} removed after the grace period"
    if outcome["outcome"] == "failed":
        return f"{head}: rotation FAILED ({outcome['reason']})"
    return f"{head}: not rotated: {outcome['reason']}"


def next_state(
    state: State, finished: list[dict[str, Any]], outcomes: list[dict[str, Any]]
) -> State:
    """The state after this run: successors of what rotated; pending = what is still waiting
    or failed to be removed, plus what this run replaced."""
    current = dict(state.current)
    pending = [f["pending"] for f in finished if f["outcome"] != "finished"]
    for o in outcomes:
        # a rotation whose checks failed still changed things: record them all the same
        if o["new"] != o["old"]:
            current[o["unit"]] = list(o["new"])
        pending += o["pending"]
    return State(current, pending)


def complete_pending(spec: SystemSpec) -> list[str]:
    """Remove the credentials replaced by earlier rotations whose grace period is over, without
    rotating anything, and record it (receipt under ``rotations/`` and a ``rotate`` ledger
    record, so the next run sees the new state). For a scheduled flow such as retention_sweep;
    returns the lines to show (empty when nothing was due)."""
    from ._common import ledger_append, object_url

    state = load_state(spec)
    now = _now()
    if not any(datetime.fromisoformat(p["not_before"]) <= now for p in state.pending):
        return []
    finished, lines = finish_pending(state.pending)
    after = next_state(state, finished, [])
    receipt = {
        "system": spec.name,
        "at": now.isoformat(),
        "kek": None,
        "credentials": lines,
        "rotations": [],
        "finished": finished,
        "rotation_state": after.to_json(),
        "previous_receipt": state.source,
    }
    body = json.dumps(receipt, indent=1, sort_keys=True).encode()
    store = open_evidence(spec)
    key = f"{receipt_prefix(spec)}{now:%Y%m%dT%H%M%S%fZ}.json"
    if not put_once(store, key, body):
        raise ConflictError(f"{object_url(store, key)} holds another rotation receipt")
    done = sum(1 for f in finished if f["outcome"] == "finished")
    failed = sum(1 for f in finished if f["outcome"] == "failed")
    ledger_append(
        spec,
        RecordKind.ROTATE,
        f"removed {done} credential(s) of {spec.name} replaced by earlier rotations"
        + (f"; {failed} removal(s) FAILED" if failed else ""),
        sha256_digest(body),
        object_url(store, key),
    )
    return lines
