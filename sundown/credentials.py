"""Credential kinds: one protocol, one object per kind, one registry; typed rotation state.

A credential kind (a Vault KV secret, a Vault token, an IAM access key, an Azure stored access
policy, ...) is one object implementing :class:`CredentialKind`, defined once in its module of
``connectors/credentials`` and found through :func:`credential_kind` (imported lazily: a system
without GCS credentials never imports the Google SDK). The object knows:

- ``parse(ident)``: the spec identifier split into its parts, :class:`~sundown.errors.InputError`
  naming the problem when it is malformed (before any call to a server);
- ``revoke(ident)``: remove the credential, with the checks that prove it gone;
- ``live(ident)``: whether it still works, looked up without changing anything (proof of death);
- ``rotate(job)``: make a successor (returned hidden, for its delivery) and say which replaced
  credentials wait for their grace period (:class:`Rotated`), or why it is not rotated
  (:class:`NotRotated`);
- ``finish(pending)``: remove a replaced credential once its grace period is over;
- ``references(declared, ids)``: the credentials that stand for a rotated lineage now (what a
  revocation or retirement must kill).

:class:`KindBase` gives the defaults (no rotation; the spec's identifier is its own current
credential). The flows look a kind up here and call the protocol; they never import an SDK.

Evidence (:class:`CredentialEvidence`) names credentials by public identifiers only (accessors,
key ids, policy ids, paths) and never holds a secret; a new secret travels as
:class:`pydantic.SecretStr` in :class:`NewSecret` / :attr:`Rotated.deliver`, never in a model
that is dumped. The rotation state recorded in each rotation receipt is
:class:`RotationState`; its JSON form is the receipt format (docs/flows.md), unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    SecretStr,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from sundown.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from sundown.spec.model import CredentialRef, Delivery, SystemSpec


def now() -> datetime:
    return datetime.now(UTC)


# Times as Python's isoformat (``+00:00``): the form receipts have always carried.
IsoTime = Annotated[AwareDatetime, PlainSerializer(lambda t: t.isoformat(), return_type=str)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Compact(_Model):
    """Dumped without its unset optional fields (the receipt's JSON shape)."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


# --------------------------------------------------------------------------------------------
# Evidence


class CredentialEvidence(_Model):
    """What was done to one credential and how it was checked. No secret values."""

    kind: str  # e.g. "vault-token", "aws-iam-access-key"
    target: str  # non-secret identifier: accessor, key id, lease id, path, policy id
    action: str  # "rotated", "revoked", "destroyed", "already absent", ...
    at: IsoTime
    details: dict[str, str] = {}  # what was done, in facts
    checks: dict[str, str] = {}  # check -> observed result
    verified: bool = False  # True only when every check passed

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (receipts)."""
        return self.model_dump(mode="json")


class Checks:
    """Collects check results; ``ok`` is True only if every check passed."""

    def __init__(self) -> None:
        self.results: dict[str, str] = {}
        self.ok = True

    def passed(self, name: str, observed: str) -> None:
        self.results[name] = observed

    def failed(self, name: str, observed: str) -> None:
        self.results[name] = f"FAILED: {observed}"
        self.ok = False

    def expect(self, name: str, condition: bool, observed: str) -> None:
        if condition:
            self.passed(name, observed)
        else:
            self.failed(name, observed)

    def evidence(
        self, kind: str, target: str, action: str, details: dict[str, str] | None = None
    ) -> CredentialEvidence:
        """The evidence of ``action`` on ``target``, verified only if every check passed."""
        return CredentialEvidence(
            kind=kind,
            target=target,
            action=action,
            at=now(),
            details=details or {},
            checks=self.results,
            verified=self.ok,
        )


@dataclass(frozen=True)
class NewSecret:
    """A credential created by a rotation: its public identifier and its secret, which must be
    handed to its consumer (e.g. written to Vault KV) and is never shown."""

    identifier: str
    secret: SecretStr
    expires: datetime | None = None


@dataclass(frozen=True)
class Rotation:
    """A connector rotation's evidence, the new credential, and when the old one may be deleted
    (``None`` when it was deleted already)."""

    evidence: CredentialEvidence
    new: NewSecret | None
    delete_old_after: datetime | None = None


# --------------------------------------------------------------------------------------------
# Rotation state (the ``rotation_state`` of a rotation receipt) and outcomes


@dataclass(frozen=True)
class Unit:
    """One rotatable thing of the spec: ``kind`` and ``declared`` are the credential's kind and
    identifier as the spec declares them (its lineage); ``key`` names it in the state."""

    kind: str
    declared: str

    @property
    def key(self) -> str:
        return f"{self.kind} {self.declared}"


class Pending(_Model):
    """A credential replaced by a rotation, removed once ``not_before`` has passed. ``kind`` is
    the kind that removes it (:meth:`CredentialKind.finish`); ``params`` its parts."""

    unit: str
    kind: str
    target: str
    not_before: IsoTime
    params: dict[str, str | int] = {}


class RotationState(_Model):
    """What stands for each unit now (``current``: unit key -> ids) and which replaced
    credentials wait for removal (``pending``); ``source`` is the receipt it was read from."""

    current: dict[str, list[str]] = {}
    pending: list[Pending] = []
    source: str | None = None

    def ids(self, spec: SystemSpec, unit: Unit) -> list[str]:
        if unit.key in self.current:
            return list(self.current[unit.key])
        return credential_kind(unit.kind).current(spec, unit.declared)

    def to_json(self) -> dict[str, Any]:
        return {
            "current": dict(sorted(self.current.items())),
            "pending": [p.model_dump(mode="json") for p in self.pending],
        }


class Delivered(_Compact):
    """Where a new secret went: a KV v2 path and version (and the delivery's own checks)."""

    path: str
    version: int
    fields: list[str] | None = None
    checks: dict[str, str] | None = None
    verified: bool | None = None


OutcomeKind = Literal["rotated", "failed", "not rotated", "recovered"]


class Outcome(_Model):
    """What happened to one unit in one rotation run. No secret."""

    unit: str
    kind: str
    declared: str
    outcome: OutcomeKind
    reason: str = ""
    old: list[str]
    new: list[str]
    pending: list[Pending] = []
    evidence: list[CredentialEvidence] = []
    delivered: Delivered | None = None


class Finished(_Compact):
    """What became of one pending removal in one run."""

    pending: Pending
    outcome: Literal["finished", "failed", "waiting"]
    reason: str | None = None
    evidence: list[CredentialEvidence] | None = None


# --------------------------------------------------------------------------------------------
# The protocol


@dataclass(frozen=True)
class RotationJob:
    """One unit to rotate: its declared identifier, what stands for it now, the grace period
    and the run's time stamp."""

    spec: SystemSpec
    unit: Unit
    ids: list[str]
    grace: timedelta
    stamp: datetime

    @property
    def delete_after(self) -> datetime:
        return self.stamp + self.grace


GENERIC_FAILURE = "a check of the rotation or the delivery did not pass"


@dataclass(frozen=True)
class Rotated:
    """A successor was made. ``deliver`` holds the fields to write to the delivery path (None:
    the credential is its own delivery, ``delivered`` says where); ``undo`` removes the
    successor if its delivery fails; ``replaced`` waits for the grace period (removed right
    after the delivery when the grace period is zero). ``failure`` is the reason shown when a
    check did not pass."""

    new: list[str]
    evidence: list[CredentialEvidence]
    replaced: list[Pending] = field(default_factory=list)
    deliver: Mapping[str, str | SecretStr] | None = None
    undo: Callable[[], object] | None = None
    delivered: Delivered | None = None
    failure: str = GENERIC_FAILURE


@dataclass(frozen=True)
class NotRotated:
    reason: str


class CredentialKind(Protocol):
    """One credential kind (see the module docstring)."""

    kind: str
    delivery_field: str | None
    needs_delivery: bool
    needs_current: bool

    def parse(self, ident: str) -> tuple[str, ...]: ...

    def revoke(self, ident: str, *, missing_ok: bool = False) -> list[CredentialEvidence]: ...

    def live(self, ident: str) -> bool: ...

    def units(self, spec: SystemSpec) -> list[str]: ...

    def current(self, spec: SystemSpec, declared: str) -> list[str]: ...

    def delivery(self, spec: SystemSpec, declared: str) -> Delivery | None: ...

    def refusal(self, spec: SystemSpec, declared: str) -> str | None: ...

    def rotate(self, job: RotationJob) -> Rotated | NotRotated: ...

    def replaced(self, unit: Unit, old: str, not_before: datetime) -> Pending: ...

    def finish(self, pending: Pending) -> list[CredentialEvidence]: ...

    def references(self, declared: str, ids: Sequence[str]) -> list[CredentialRef]: ...


def key_to_replace(
    what: str, keys: Mapping[str, str], old: str | None, *, active: str, noun: str, owner: str
) -> str:
    """The key a rotation replaces among the owner's ``keys`` (id -> state): ``old`` when
    given (NotFoundError unless listed), else the one key in state ``active`` (InputError when
    there is none or more than one: the caller must name it). ``noun`` and ``owner`` name the
    key and its holder in messages."""
    if old is None:
        current = [k for k, state in keys.items() if state == active]
        if len(current) != 1:
            raise InputError(
                f"{what}: the {owner} has {len(current)} active keys; name the one to rotate"
            )
        return current[0]
    if old not in keys:
        raise NotFoundError(f"{what}: no {noun} {old} on this {owner}")
    return old


# ``scheme://user:password@``: a password in a URL-shaped identifier is never echoed
_USERINFO_PASSWORD = re.compile(r"(://[^/@:]*):[^@/]*@")


class KindBase:
    """Defaults for :class:`CredentialKind`: not rotated; the declared identifier is its own
    current credential; a replaced credential is revoked when its grace period ends."""

    kind: ClassVar[str]
    delivery_field: ClassVar[str | None] = None  # the delivered field naming the new credential
    needs_delivery: ClassVar[bool] = True  # a successor is of use only once delivered
    needs_current: ClassVar[bool] = True  # rotation replaces a current credential
    not_rotated: ClassVar[str] = "this kind is not rotated"
    form: ClassVar[str]  # the identifier's form, for error messages
    # The connector's module functions behind :meth:`revoke` and :meth:`live`, called through
    # :meth:`_call` with the parsed identifier (a kind may override revoke and live instead).
    revoke_one: Callable[..., CredentialEvidence]  # (..., *, missing_ok)
    is_live: Callable[..., object]  # true while the credential works

    def parse(self, ident: str) -> tuple[str, ...]:
        """The identifier's parts; InputError naming the whole identifier and its expected
        form when it is malformed."""
        try:
            return self._parts(ident)
        except InputError as exc:
            shown = _USERINFO_PASSWORD.sub(r"\1:***@", ident) if isinstance(ident, str) else ident
            raise InputError(
                f"{self.kind} identifier {shown!r} is malformed ({exc}); expected {self.form}"
            ) from None

    def _parts(self, ident: str) -> tuple[str, ...]:
        raise NotImplementedError

    def _call(self, function: Callable[..., Any], ident: str, **kwargs: Any) -> Any:
        """``function`` applied to the identifier once :meth:`parse` accepted it: by default the
        whole identifier; a kind whose functions take the parts overrides this."""
        self.parse(ident)
        return function(ident, **kwargs)

    def revoke(self, ident: str, *, missing_ok: bool = False) -> list[CredentialEvidence]:
        return [self._call(self.revoke_one, ident, missing_ok=missing_ok)]

    def live(self, ident: str) -> bool:
        return bool(self._call(self.is_live, ident))

    def units(self, spec: SystemSpec) -> list[str]:
        return []

    def current(self, spec: SystemSpec, declared: str) -> list[str]:
        return [declared]

    def delivery(self, spec: SystemSpec, declared: str) -> Delivery | None:
        return spec.delivery(self.kind, declared)

    def refusal(self, spec: SystemSpec, declared: str) -> str | None:
        return None

    def rotate(self, job: RotationJob) -> Rotated | NotRotated:
        return NotRotated(self.not_rotated)

    def replaced(self, unit: Unit, old: str, not_before: datetime) -> Pending:
        return self.pending(unit, old, not_before)

    def pending(
        self, unit: Unit, target: str, not_before: datetime, **params: str | int
    ) -> Pending:
        """``target``'s removal by this kind once ``not_before`` has passed; ``params`` what
        :meth:`finish` needs besides the target."""
        return Pending(
            unit=unit.key, kind=self.kind, target=target, not_before=not_before, params=params
        )

    def successor(
        self,
        job: RotationJob,
        rotation: Rotation,
        deliver: Callable[[NewSecret], Mapping[str, str | SecretStr]],
        undo: Callable[[str], object],
    ) -> Rotated:
        """The :class:`Rotated` of a connector rotation that replaced ``job.ids[0]`` with one
        new credential (the old one waits until ``rotation.delete_old_after``, if set)."""
        assert rotation.new is not None
        new, old = rotation.new, job.ids[0]
        after = rotation.delete_old_after
        return Rotated(
            new=[new.identifier],
            evidence=[rotation.evidence],
            replaced=[] if after is None else [self.replaced(job.unit, old, after)],
            deliver=deliver(new),
            undo=lambda: undo(new.identifier),
        )

    def finish(self, pending: Pending) -> list[CredentialEvidence]:
        return self.revoke(pending.target, missing_ok=True)

    def references(self, declared: str, ids: Sequence[str]) -> list[CredentialRef]:
        return []


class MountKind(KindBase):
    """A kind named ``MOUNT/NAME`` (a Vault secrets engine's mount, then a name in it) whose
    connector functions take ``(name, mount=MOUNT)``."""

    def _call(self, function: Callable[..., Any], ident: str, **kwargs: Any) -> Any:
        mount, name = self.parse(ident)
        return function(name, mount=mount, **kwargs)


class ScopedKind(KindBase):
    """A kind named ``SCOPE/ID`` whose rotations stay in their scope (an IAM user's keys, a
    container's policies): what stands for a lineage is a list of ids in the scope."""

    params: ClassVar[tuple[str, str]]  # the Pending params naming the scope and the id

    def _parts(self, ident: str) -> tuple[str, ...]:
        scope, sep, name = ident.partition("/")
        if not sep:
            raise InputError(f"no '/' between the {self.params[0]} and the {self.params[1]}")
        self.check(scope, name)
        return scope, name

    def check(self, scope: str, name: str) -> None:
        """InputError unless both parts are well formed."""
        raise NotImplementedError

    def _call(self, function: Callable[..., Any], ident: str, **kwargs: Any) -> Any:
        return function(*self.parse(ident), **kwargs)  # (scope, id)

    @staticmethod
    def scope(declared: str) -> str:
        return declared.split("/", 1)[0]

    def current(self, spec: SystemSpec, declared: str) -> list[str]:
        return [declared.split("/", 1)[1]]

    def replaced(self, unit: Unit, old: str, not_before: datetime) -> Pending:
        scope = self.scope(unit.declared)
        parts = {self.params[0]: scope, self.params[1]: old}
        return self.pending(unit, f"{scope}/{old}", not_before, **parts)

    def references(self, declared: str, ids: Sequence[str]) -> list[CredentialRef]:
        from sundown.spec.model import CredentialRef

        return [CredentialRef(self.kind, f"{self.scope(declared)}/{i}") for i in ids]


# --------------------------------------------------------------------------------------------
# The registry

# kind -> (module, object, the spec's credentials field); what to install when its import
# fails: sundown.catalog.install_target
_KINDS: dict[str, tuple[str, str, str | None]] = {
    "vault_kv": ("connectors.credentials.vault_kv", "KV", "vault_kv"),
    "vault_kv_version": ("connectors.credentials.vault_kv", "KV_VERSION", None),
    "vault_token": ("connectors.credentials.vault_tokens", "TOKEN", "vault_token_accessors"),
    "vault_lease_prefix": (
        "connectors.credentials.vault_leases",
        "LEASE_PREFIX",
        "vault_lease_prefixes",
    ),
    "vault_approle_role": ("connectors.credentials.vault_approle", "ROLE", "vault_approles"),
    "vault_approle_secret_id": ("connectors.credentials.vault_approle", "SECRET_ID", None),
    "aws_access_key": ("connectors.credentials.aws_iam", "ACCESS_KEY", "aws_access_keys"),
    "azure_stored_policy": (
        "connectors.credentials.azure_sas",
        "STORED_POLICY",
        "azure_stored_policies",
    ),
    "gcs_hmac_key": ("connectors.credentials.gcs_hmac", "HMAC_KEY", "gcs_hmac_keys"),
    "postgres_role": ("connectors.credentials.postgres_role", "ROLE", "postgres_roles"),
    "redis_acl_user": ("connectors.credentials.redis_acl", "ACL_USER", "redis_acl_users"),
}


def kinds() -> list[str]:
    """Every registered kind, in rotation order."""
    return list(_KINDS)


def credential_kind(kind: str) -> CredentialKind:
    """The object for ``kind``. InputError for an unknown kind; UnsupportedError naming what to
    install when its connector cannot be imported."""
    entry = _KINDS.get(kind)
    if entry is None:
        raise InputError(f"unknown credential kind {kind!r} (known: {', '.join(_KINDS)})")
    module_name, attribute, _ = entry
    from sundown.catalog import import_connector

    module = import_connector(module_name, kind, f"the {kind} credential connector")
    found: CredentialKind = getattr(module, attribute)
    return found


def declared_kinds(spec: SystemSpec) -> list[str]:
    """The kinds the spec declares credentials of, in rotation order (without importing any
    connector)."""
    return [
        kind
        for kind, (_, _, attr) in _KINDS.items()
        if attr is not None and getattr(spec.credentials, attr)
    ]


def units(spec: SystemSpec) -> list[Unit]:
    """The spec's credentials in rotation order (AppRoles by role, AWS keys one by one)."""
    return [
        Unit(kind, declared)
        for kind in declared_kinds(spec)
        for declared in credential_kind(kind).units(spec)
    ]


__all__ = [
    "Checks",
    "CredentialEvidence",
    "CredentialKind",
    "Delivered",
    "Finished",
    "KindBase",
    "NewSecret",
    "NotRotated",
    "Outcome",
    "Pending",
    "Rotated",
    "Rotation",
    "RotationJob",
    "RotationState",
    "ScopedKind",
    "Unit",
    "credential_kind",
    "declared_kinds",
    "kinds",
    "now",
    "units",
]
