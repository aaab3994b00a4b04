"""The tasks of the lifecycle flows: each one a call into the connectors and the core.

Stores, key services and signers are opened through :mod:`sundown.registry` inside each task
(a task gets URLs, never live clients), so every step works for every backend by capability and
no credential lives on in a cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from sundown import registry
from sundown.certificate import CredentialRevoked, KeyDestroyed
from sundown.envelope import (
    MAX_SIDECAR_BYTES,
    SIDECAR_SUFFIX,
    Sidecar,
    decrypt_stream,
    encrypt_to_store,
    read_sidecar,
    sidecar_key,
    unwrap_data_key,
)
from sundown.errors import (
    IntegrityError,
    KeyDestroyedError,
    NotFoundError,
    ScopeError,
    SundownError,
    UnsupportedError,
)
from sundown.keys import KeyInfo
from sundown.plan import (
    CopyProtection,
    PlacementFound,
    Plan,
    PlanEntry,
    PlanKind,
    Protection,
    StoreSettings,
    build_plan,
    iter_plan_entries,
    plan_locations,
)
from sundown.ranges import RangedInventory
from sundown.spec.model import CredentialRef, LocationRef, SystemSpec
from sundown.sse import ServerSideVerdict, StorageKey, storage_key
from sundown.store import (
    SPECIAL_KINDS,
    Capability,
    Copier,
    EncryptionInventory,
    Entry,
    EntryKind,
    Inventory,
    ObjectStore,
    Placed,
    Placement,
    Replicated,
    exists,
)
from sundown.store_url import parse_store_url, symlink_on_path

from . import _credentials, _key_use, _records, _rotation
from ._common import TASK_OPTIONS, opaque
from .evidence import (
    ArchivedCopy,
    BatchOutcome,
    Copy,
    VerifyOutcome,
    numbered_batches,
)
from .plan_ranges import ranged_inventory

# --------------------------------------------------------------------------------------------
# Inventory and plan


def _inventory(store: ObjectStore, encryption: bool = False) -> Iterator[Entry]:
    """Every copy of a store; with ``encryption``, each version's server-side encryption read
    too where that costs requests (S3's HEADs; GCS and Azure listings carry it anyway)."""
    if not isinstance(store, Inventory):
        raise UnsupportedError(f"{store.url} cannot list every copy (no inventory capability)")
    if encryption and isinstance(store, EncryptionInventory):
        yield from store.encrypted_inventory()
        get_run_logger().info(
            "%s: %d requests read server-side encryption", store.url, store.encryption_requests
        )
    else:
        yield from store.inventory()


def key_facts(spec: SystemSpec) -> dict[str, KeyInfo | None]:
    """Each key destroyed at retirement: its public facts, or None when it was destroyed
    already (a resumed or repeated retirement). A key that never existed is a typo or the
    wrong key service: NotFoundError before anything is planned, let alone deleted."""
    from ._pending import check_grants

    facts: dict[str, KeyInfo | None] = {}
    for uri, role in spec.keys_to_destroy():
        try:
            service = registry.open_key_service(uri)
            facts[uri] = service.info()
            check_grants(spec, uri, service)
        except KeyDestroyedError:
            facts[uri] = None
        except NotFoundError as exc:
            raise NotFoundError(
                f"keys.{role}: {uri} does not exist ({exc}); a retirement destroys the system's "
                "keys, so it will not run on a spec that names a key the key service never had"
            ) from None
    return facts


def credential_facts(refs: list[CredentialRef]) -> dict[CredentialRef, bool]:
    facts: dict[CredentialRef, bool] = {}
    for ref in refs:
        state = _credentials.exists(ref)
        if state is not None:
            facts[ref] = state
    return facts


# --------------------------------------------------------------------------------------------
# Per-copy protection (recorded in the plan at inventory time)

_CLOUD = ("s3", "gs", "az")
_SIDECAR_CACHE = 4096
_FOREIGN_KEYS_NAMED = 16
# An older ciphertext version is tried against at most this many older versions of its
# sidecar (each try costs a read, an unwrap and a first segment; the store is untrusted).
_OLDER_SIDECARS_TRIED = 8


@dataclass(frozen=True)
class Sidecars:
    """Where a location's sidecars lie, from a first listing: the current ones, and the older
    versions of each (newest first), which a versioned store keeps beside the ciphertext
    versions they describe (a deployment overwritten in place)."""

    current: frozenset[str]
    older: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __contains__(self, key: object) -> bool:
        return key in self.current


def _printable(text: str, limit: int = 200) -> str:
    """An untrusted string (a key URI read from a sidecar) made safe to show."""
    clean = "".join(c if c.isprintable() and c not in "|<>`" else "?" for c in text)
    return clean if len(clean) <= limit else clean[:limit] + "..."


class Protector:
    """What protects each copy of one location, decided when the plan is made.

    A copy is ``envelope`` (the only protection a cryptographic erase claim may rest on) only
    when everything below checks out; anything short of that is recorded as what it is:

    - its sidecar ``<key>.sidecar.json`` (untrusted: at most 64 KiB, parsed strictly) names a
      key-encryption key this retirement destroys, by its exact URI, and a version that key
      still has (another key: ``envelope (key not in this retirement)``; a sidecar that does not
      parse: ``unknown``);
    - the copy's size is the ciphertext size the sidecar states;
    - the sidecar's wrapped data key unwraps under that key, and the copy's first segment
      authenticates under the data key with the sidecar's associated data (so a sidecar copied
      or forged beside plaintext does not make it "encrypted": the plaintext fails to
      authenticate). The plaintext read is discarded.

    A sidecar copy is ``envelope`` when it parses, names such a key and its wrapped data key
    unwraps (it holds nothing else secret; its artifact name, sizes and plaintext SHA-256 are not
    encrypted). Other copies: ``none`` on a file store (stored as written), ``unknown`` on a cloud
    store (the listing does not report server-side encryption), ``none`` for a delete marker (no
    content). Whether a sidecar exists is learned from a first listing of the location
    (``sidecars``), so a plaintext location costs no extra request per object.

    Where the inventory read a copy's server-side encryption (``Entry.encryption``), a copy not
    proven ``envelope`` is then judged by :class:`sundown.sse.ServerSideVerdict`: ``sse-kms``
    only under exactly the resolved ``storage_key``; otherwise the store's report replaces an
    ``unknown`` / ``none`` verdict (``sse-tenant-key``, ``provider-managed``, ...)."""

    def __init__(
        self,
        store: ObjectStore,
        keys: dict[str, KeyInfo | None],
        sidecars: Sidecars,
        storage_key: StorageKey | None = None,
    ):
        self._store = store
        self._scheme = store.url.split("://", 1)[0]
        self._keys = keys
        self._sidecars = sidecars
        self._services: dict[str, Any] = {}
        self._parsed: dict[str, Sidecar | str] = {}
        self._foreign: set[str] = set()
        self._server_side = ServerSideVerdict(storage_key)

    def __call__(self, entry: Entry) -> CopyProtection:
        """The envelope check; then, for a copy it does not prove ``envelope``, what the store
        reported of its server-side encryption (``sse-kms`` only under the storage key)."""
        verdict = self._envelope(entry)
        if verdict.protection is Protection.ENVELOPE or entry.encryption is None:
            return verdict
        return self._server_side(entry.encryption, verdict)

    def _envelope(self, entry: Entry) -> CopyProtection:
        if entry.kind is EntryKind.DELETE_MARKER:
            return CopyProtection(Protection.NONE, note="delete marker: no content")
        if entry.kind in SPECIAL_KINDS:
            return CopyProtection(Protection.NONE, note=f"{entry.kind.value}: never followed")
        if entry.key.endswith(SIDECAR_SUFFIX):
            return self._sidecar_copy(entry)
        name = entry.key + SIDECAR_SUFFIX
        older = self._sidecars.older.get(name, ()) if not entry.is_latest else ()
        if name not in self._sidecars and not older:
            return self._default("no sidecar")
        if entry.kind not in (EntryKind.OBJECT, EntryKind.VERSION, EntryKind.SNAPSHOT):
            return self._default(f"{entry.kind.value}: content not checked")
        verdict = (
            self._against(entry, self._sidecar(entry.key))
            if name in self._sidecars
            else self._default("no current sidecar")
        )
        if verdict.protection is Protection.ENVELOPE or not older:
            return verdict
        # An older ciphertext version: the sidecar of its own deployment may be an older
        # version of the sidecar (overwritten in place). The same proof, against each of those.
        for version_id in older[:_OLDER_SIDECARS_TRIED]:
            again = self._against(entry, self._sidecar(entry.key, version_id))
            if again.protection is Protection.ENVELOPE:
                return replace(again, note=f"{again.note}, under an older version of its sidecar")
        return verdict

    def _against(self, entry: Entry, sidecar: Sidecar | str) -> CopyProtection:
        """The copy checked against one parsed sidecar (or why that sidecar is not usable)."""
        if isinstance(sidecar, str):
            return CopyProtection(Protection.UNKNOWN, note=sidecar)
        verdict = self._key_of(sidecar)
        if verdict is not None:
            return verdict
        if entry.size != sidecar.ciphertext_size:
            return CopyProtection(
                Protection.UNKNOWN,
                note=f"size {entry.size} is not the sidecar's ciphertext size "
                f"{sidecar.ciphertext_size}: not the ciphertext the sidecar describes",
            )
        service = self._service(sidecar.key_uri)
        try:
            with self._store.open(entry.key, entry.version_id) as source:
                chunks = decrypt_stream(source, sidecar, service)
                next(iter(chunks), None)  # the first segment, authenticated; discarded
        except (SundownError, OSError) as exc:
            return CopyProtection(
                Protection.UNKNOWN,
                note="does not authenticate under the data key its sidecar wraps under "
                f"{_printable(sidecar.key_uri)} ({type(exc).__name__})",
            )
        return CopyProtection(
            Protection.ENVELOPE,
            key=sidecar.key_uri,
            key_version=sidecar.key_version,
            note="sidecar's data key unwrapped and the first segment authenticated when planned",
        )

    def _default(self, why: str) -> CopyProtection:
        if self._scheme in _CLOUD:
            return CopyProtection(
                Protection.UNKNOWN,
                note=f"{why}; server-side encryption not read (the listing does not report it)",
            )
        return CopyProtection(Protection.NONE, note=f"{why}; the file store keeps what was written")

    def _sidecar(self, key: str, version_id: str | None = None) -> Sidecar | str:
        """The parsed sidecar of ``key`` (current version), or why it is not usable."""
        if version_id is None and key in self._parsed:
            return self._parsed[key]
        try:
            source = self._store.open(sidecar_key(key), version_id)
            with source as f:
                data = f.read(MAX_SIDECAR_BYTES + 1)
            if len(data) > MAX_SIDECAR_BYTES:
                raise IntegrityError(f"larger than {MAX_SIDECAR_BYTES} bytes")
            out: Sidecar | str = Sidecar.from_json(data)
        except (SundownError, OSError) as exc:
            reason = str(exc) if isinstance(exc, IntegrityError) else type(exc).__name__
            out = f"sidecar unreadable or rejected: {_printable(reason, 300)}"
        if version_id is None:
            if len(self._parsed) >= _SIDECAR_CACHE:
                self._parsed.clear()
            self._parsed[key] = out
        return out

    def _key_of(self, sidecar: Sidecar) -> CopyProtection | None:
        """None when the sidecar names a key this retirement destroys and can check; else the
        protection to record."""
        uri = sidecar.key_uri
        if uri not in self._keys:
            # Sidecars are untrusted: a flood of made-up key URIs must not grow the plan's and
            # the certificate's breakdown without bound, so only the first few are named.
            shown: str | None = _printable(uri)
            if shown not in self._foreign and len(self._foreign) >= _FOREIGN_KEYS_NAMED:
                shown = None
            elif shown is not None:
                self._foreign.add(shown)
            return CopyProtection(
                Protection.ENVELOPE_OTHER_KEY,
                key=shown,
                key_version=sidecar.key_version,
                note="the sidecar names a key this retirement does not destroy"
                + ("" if shown else f" (more than {_FOREIGN_KEYS_NAMED} such keys: not named)"),
            )
        info = self._keys[uri]
        if info is None:
            return CopyProtection(
                Protection.UNKNOWN, key=uri, note="the key was already gone when planned"
            )
        if info.kind != "kek":
            return CopyProtection(Protection.UNKNOWN, key=uri, note="the key is not a KEK")
        if sidecar.key_version not in info.versions:
            return CopyProtection(
                Protection.UNKNOWN,
                key=uri,
                note=f"the key has no version {sidecar.key_version} any more",
            )
        return None

    def _service(self, uri: str) -> Any:
        if uri not in self._services:
            self._services[uri] = registry.open_key_service(uri)
        return self._services[uri]

    def _sidecar_copy(self, entry: Entry) -> CopyProtection:
        if entry.kind not in (EntryKind.OBJECT, EntryKind.VERSION, EntryKind.SNAPSHOT):
            return self._default(f"{entry.kind.value} sidecar: content not checked")
        if entry.size > MAX_SIDECAR_BYTES:
            return self._default(f"larger than a sidecar may be ({MAX_SIDECAR_BYTES} bytes)")
        base = entry.key.removesuffix(SIDECAR_SUFFIX)
        if not base:
            return self._default("not a sidecar name")
        sidecar = self._sidecar(base, entry.version_id if not entry.is_latest else None)
        if isinstance(sidecar, str):
            return self._default(sidecar)
        verdict = self._key_of(sidecar)
        if verdict is not None:
            return verdict
        try:
            dek = unwrap_data_key(sidecar, self._service(sidecar.key_uri))
        except (SundownError, OSError) as exc:
            return self._default(f"sidecar's data key does not unwrap ({type(exc).__name__})")
        del dek
        return CopyProtection(
            Protection.ENVELOPE,
            key=sidecar.key_uri,
            key_version=sidecar.key_version,
            note="sidecar: its data key unwrapped when planned; its other fields are not secret",
        )


def storage_key_of(spec: SystemSpec, keys: dict[str, KeyInfo | None]) -> StorageKey | None:
    """The spec's storage key as its key service resolved it when planned (None: the spec
    names none, or it was already gone: then no copy is taken for covered by it)."""
    uri = spec.keys.storage_cmk
    info = keys.get(uri) if uri else None
    return storage_key(info.uri) if info is not None else None


def sidecar_keys(store: ObjectStore) -> Sidecars:
    """The current sidecars of a location and the older versions of each (a first listing)."""
    current: set[str] = set()
    older: dict[str, list[tuple[datetime, str]]] = {}
    for e in _inventory(store):
        if not e.key.endswith(SIDECAR_SUFFIX):
            continue
        if e.kind is EntryKind.OBJECT:
            current.add(e.key)
        elif e.kind is EntryKind.VERSION and e.version_id and not e.is_latest:
            older.setdefault(e.key, []).append((e.modified, e.version_id))
    return Sidecars(
        frozenset(current),
        {k: tuple(v for _, v in sorted(vs, reverse=True)) for k, vs in older.items()},
    )


def plan_system(
    spec: SystemSpec,
    path: str,
    kind: PlanKind = "retirement",
    as_of: datetime | None = None,
    inventory_ranges: int = 1,
    follows_failed: Sequence[str] = (),
) -> Plan:
    """Step 1 and 2: list every copy of every location (streamed straight into the plan file,
    page by page; in ``inventory_ranges`` key ranges side by side where the store can:
    flows/plan_ranges.py), read the facts about keys and credentials, and write the plan."""
    # The task hands the plan back as JSON: Prefect walks pydantic results with dict(model),
    # which breaks on a model with a field named ``keys``.
    return Plan.model_validate_json(
        _plan_task(opaque(spec), path, kind, as_of, inventory_ranges, list(follows_failed))
    )


def _location_inventory(
    ref: LocationRef, encryption: bool = False, ranges: int = 1
) -> tuple[Iterator[Entry], bool]:
    """(the location's entries, whether its root is absent), its first entry already read so
    that a location that cannot be planned stops here, before any plan is written:

    - a ``file://`` location whose folder or an ancestor is a symbolic link: ScopeError naming
      the link (docs/decisions.md: refused at planning, never resolved);
    - a root that does not exist (a ``file://`` folder, a bucket or container; a listing's
      NotFoundError before its first entry): NotFoundError naming the location, unless the spec
      marks it ``may_be_absent``. An existing bucket with nothing under the prefix is simply
      nothing found."""
    link = symlink_on_path(ref.url)
    if link is not None:
        raise ScopeError(
            f"{ref.field} {ref.url}: {link[0]} is a symbolic link (to {link[1]}); a location is "
            "never planned through a symbolic link, whose target lies outside what the spec "
            "names and can change before deletion: the spec must name the real path"
        )
    store = registry.open_store(ref.url)
    if ref.location.purge_by == "lifecycle":
        check_lifecycle_capable(store, ref)
    if ranges > 1 and isinstance(store, RangedInventory) and store.plans_in_ranges:
        log = get_run_logger().info
        entries = iter(ranged_inventory(ref.url, store, ranges, encryption=encryption, log=log))
    else:
        if ranges > 1:
            get_run_logger().info("%s: listed whole (no key ranges at planning here)", ref.url)
        entries = iter(_inventory(store, encryption))
    try:
        first = next(entries)
    except StopIteration:
        return iter(()), False
    except NotFoundError as exc:
        if ref.location.may_be_absent:
            return iter(()), True
        raise NotFoundError(
            f"{ref.field} {ref.url}: the location's root does not exist ({exc}); a misspelt or "
            "moved location is never planned as empty (a spec marks a location that may "
            "legitimately be missing with may_be_absent: true)"
        ) from None
    return _chain(first, entries), False


def check_lifecycle_capable(store: Any, ref: LocationRef) -> None:
    """``purge_by: lifecycle`` only where the connector declares lifecycle rules: refused at
    planning, before anything is approved or changed."""
    from sundown.store import Capability, LifecycleRules

    if Capability.LIFECYCLE not in store.capabilities or not isinstance(store, LifecycleRules):
        raise UnsupportedError(
            f"{ref.field} {ref.url}: purge_by: lifecycle, but this store does not support "
            "lifecycle rules; use purge_by: batch (the default) for this location"
        )


def _chain(first: Entry, rest: Iterator[Entry]) -> Iterator[Entry]:
    yield first
    yield from rest


@task(name="inventory-and-plan", **TASK_OPTIONS)
def _plan_task(
    spec: SystemSpec,
    path: str,
    kind: PlanKind,
    as_of: datetime | None,
    inventory_ranges: int = 1,
    follows_failed: list[str] | None = None,
) -> str:
    refs = plan_locations(spec, kind)
    inventories: dict[str, Iterable[Entry]] = {}
    absent: list[str] = []
    retirement = kind == "retirement"
    # The storage key's coverage is read only when a retirement destroys one (S3: a HEAD per
    # version; the flow's run log counts them).
    encryption = retirement and spec.keys.storage_cmk is not None
    for ref in refs:
        inventories[ref.url], missing = _location_inventory(ref, encryption, inventory_ranges)
        if missing:
            absent.append(ref.url)
    # Settings are read with the inventory and recorded in the plan (and its digest): the
    # certificate states the soft-delete window and replication that held then.
    settings = {ref.url: _settings_or_absent(ref.url, spec, ref.url in absent) for ref in refs}
    placements = location_placements([ref.url for ref in refs])
    # What rotations created in place of the spec's credentials is retired with them.
    creds = _rotation.current_refs(spec) if retirement else []
    keys = key_facts(spec) if retirement else None
    protection = None
    key_use = None
    if retirement:
        assert keys is not None
        # What else the keys encrypt: ScopeError here, before any plan exists (flows/_key_use.py)
        key_use = _key_use.at_planning(spec, keys)
        storage = storage_key_of(spec, keys)
        protection = {}
        for ref in plan_locations(spec, kind):
            if ref.url in absent:  # nothing to inspect (may_be_absent)
                continue
            store = registry.open_store(ref.url)
            protection[ref.url] = Protector(store, keys, sidecar_keys(store), storage)
    plan = build_plan(
        spec,
        inventories,
        path,
        kind=kind,
        key_facts=keys,
        credential_facts=credential_facts(creds) if retirement else None,
        credentials=creds if retirement else None,
        now=as_of,
        absent_roots=absent,
        protection=protection,
        settings=settings,
        placements=placements,
        records=_records.inventory(spec) if retirement else None,
        key_use=key_use,
        follows_failed=follows_failed or (),
    )
    return plan.model_dump_json()


_PLACEMENT_PROVIDERS = {"s3": "aws", "gs": "gcp", "az": "azure", "file": "local"}


def location_placements(urls: Iterable[str]) -> dict[str, PlacementFound]:
    """NIST "location" of each location, read with its inventory and recorded in the plan (the
    certificate states it from there, however long after): the account and region its store
    reports. Each bucket (container, folder tree) is asked once. A store without
    ``placement()``, or one that fails, is recorded as unknown with the reason; it never stops
    the plan."""
    from urllib.parse import urlsplit

    asked: dict[str, PlacementFound] = {}
    out: dict[str, PlacementFound] = {}
    for url in urls:
        parts = urlsplit(url)
        where = f"{parts.scheme}://{parts.netloc}"
        if where not in asked:
            asked[where] = _placement(url, where, parts.scheme)
        out[url] = asked[where]
    return out


def _placement(url: str, where: str, scheme: str) -> PlacementFound:
    provider = _PLACEMENT_PROVIDERS.get(scheme, scheme)
    try:
        store = registry.open_store(url)
        placed = store.placement() if isinstance(store, Placed) else None
    except Exception as exc:  # evidence gathering never stops a retirement
        reason = str(exc) if isinstance(exc, SundownError) else type(exc).__name__
        get_run_logger().warning("placement of %s not learned: %s", url, reason)
        placed = Placement(provider, None, None, f"{where}: {reason}")
    if placed is None:
        placed = Placement(provider, None, None, f"{where}: the store does not report it")
    return PlacementFound.model_validate(asdict(placed))


# --------------------------------------------------------------------------------------------
# Batches of plan entries


def batches(
    plan: Plan, location: int, select: Callable[[PlanEntry], bool], size: int
) -> Iterator[tuple[int, list[PlanEntry]]]:
    """(batch number, entries) of one location's selected plan entries, streamed."""
    entries = iter_plan_entries(plan.path, plan.digest, location=location)
    return numbered_batches(entries, select, size)


def _copy(entry: Entry | PlanEntry, reason: str = "") -> Copy:
    return Copy(
        key=entry.key,
        version_id=entry.version_id,
        kind=entry.kind.value,
        size=entry.size,
        reason=reason,
    )


@task(name="purge-batch", **TASK_OPTIONS)
def purge_batch(url: str, location: int, number: int, entries: list[PlanEntry]) -> BatchOutcome:
    """Delete exactly these copies (the connector splits them at its API limit and reads every
    per-item result). Governance retention is bypassed only for entries the plan marked."""
    store = registry.open_store(url)
    if not isinstance(store, Inventory):
        raise SundownError(f"{url} cannot purge exact copies")
    outcome = BatchOutcome(location=location, batch=number)
    for bypass in (False, True):
        group = [e.to_entry() for e in entries if e.bypass_governance is bypass]
        if not group:
            continue
        result = store.purge(group, bypass_governance=bypass)
        outcome.requests += result.requests
        for entry in result.deleted:
            outcome.done.add(entry.kind, entry.size)
        outcome.held += [_copy(e, "refused by object lock or hold") for e in result.held]
        outcome.failed += [_copy(f.entry, f"{f.code}: {f.message}") for f in result.failed]
    outcome.finished_at = datetime.now(UTC)
    return outcome


# --------------------------------------------------------------------------------------------
# Archive: copy, re-encrypt under the archive key, verify digests


class _IterReader:
    """A readable stream over an iterator of chunks (for encrypt_to_store)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buf) < size:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        if size < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        return out


def _hash_stream(stream: Any) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with stream as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _hashing(chunks: Iterable[bytes], h: Any) -> Iterator[bytes]:
    for chunk in chunks:
        h.update(chunk)
        yield chunk


def _already_archived(dest: ObjectStore, key: str, sidecar: Any) -> Any:
    """The archive copy's sidecar when ``key`` already holds the re-encryption of ``sidecar``'s
    plaintext (same plaintext digest), else None."""
    try:
        copy = read_sidecar(dest, key)
    except (NotFoundError, IntegrityError):
        return None
    if copy.plaintext_sha256 == sidecar.plaintext_sha256 and exists(dest, key):
        return copy
    return None


def _looks_like_ciphertext(src: ObjectStore, entry: PlanEntry) -> bool:
    """Whether an object without a sidecar has the shape of Sundown envelope ciphertext: its
    first byte is the streaming header's length (0x28) and its size is a ciphertext size of the
    format's 1 MiB segments. A plaintext that happens to match stops the archive step with an
    error naming it (a stop before any delete, never a silent verbatim copy)."""
    from sundown.envelope._stream import HEADER_SIZE, SEGMENT_SIZE, TAG_SIZE, ciphertext_size

    if entry.size < HEADER_SIZE + TAG_SIZE:
        return False
    with src.open(entry.key, entry.version_id) as f:
        first = f.read(1)
    if first != bytes((HEADER_SIZE,)):
        return False
    segments = -(-entry.size // SEGMENT_SIZE)
    plaintext = entry.size - HEADER_SIZE - segments * TAG_SIZE
    return any(ciphertext_size(n) == entry.size for n in (plaintext - 1, plaintext, plaintext + 1))


def _apply_storage_class(dest: ObjectStore, key: str, storage_class: str | None) -> str | None:
    """Move the archive copy at ``key`` into ``storage_class`` (a server-side copy onto
    itself). UnsupportedError when the archive store has no storage classes. Returns the class
    the store reports afterwards."""
    if storage_class is None:
        return None
    check_storage_class(dest, storage_class)
    assert isinstance(dest, Copier)
    info = dest.copy(key, dest, key, storage_class=storage_class)
    return info.storage_class or dest.head(key).storage_class


def check_storage_class(dest: ObjectStore, storage_class: str | None) -> None:
    """UnsupportedError unless ``dest`` can put an archive copy into ``storage_class``."""
    if storage_class is None:
        return
    if not isinstance(dest, Copier) or Capability.ARCHIVE_TIER not in dest.capabilities:
        from sundown.errors import UnsupportedError

        raise UnsupportedError(
            f"archive.storage_class {storage_class!r}: the archive target {dest.url} has no "
            "storage classes; remove storage_class from the spec or archive to a store that has "
            "them"
        )


def archive_one(
    src: ObjectStore,
    entry: PlanEntry,
    dest: ObjectStore,
    archive_key_uri: str,
    storage_class: str | None,
) -> ArchivedCopy | None:
    """Archive one current object and verify the copy; returns what was archived (None for a
    sidecar, replaced by the archive copy's own). IntegrityError when the archived copy does
    not match, or when the object is envelope ciphertext whose sidecar is lost (copying it
    verbatim would keep a copy that dies with the KEK): raised before any delete, since every
    archive batch runs before the first purge batch."""
    assert entry.archive_key is not None
    check_storage_class(dest, storage_class)  # refused before anything is written
    source = f"{src.url}/{entry.key}"
    uri = f"{dest.url}/{entry.archive_key}"
    if entry.key.endswith(SIDECAR_SUFFIX) and exists(src, entry.key.removesuffix(SIDECAR_SUFFIX)):
        return None
    try:
        sidecar = read_sidecar(src, entry.key)
    except NotFoundError:
        sidecar = None
    if sidecar is not None:
        # Envelope ciphertext: decrypt (each segment authenticated, plaintext SHA-256 checked
        # against the sidecar) and encrypt again under the archive key with the same artifact
        # binding, then decrypt the archive copy and compare digests.
        archive_kek = registry.open_key_service(archive_key_uri)
        check = _already_archived(dest, entry.archive_key, sidecar)
        how = "already archived (sidecar digest matches); "
        if check is None:
            how = ""
            with src.open(entry.key, entry.version_id) as stream:
                plaintext = decrypt_stream(stream, sidecar)
                encrypt_to_store(
                    _IterReader(plaintext),
                    dest,
                    entry.archive_key,
                    archive_kek,
                    sidecar.artifact,
                    overwrite=True,
                )
            check = read_sidecar(dest, entry.archive_key)
        h = hashlib.sha256()
        with dest.open(entry.archive_key) as copy:
            for chunk in decrypt_stream(copy, check, archive_kek):
                h.update(chunk)
        if not (check.plaintext_sha256 == sidecar.plaintext_sha256 == h.hexdigest()):
            raise IntegrityError(f"archive copy of {source}: digest mismatch")
        cls = _apply_storage_class(dest, entry.archive_key, storage_class)
        return ArchivedCopy(
            source=source,
            uri=uri,
            bytes=dest.head(entry.archive_key).size,
            sha256=h.hexdigest(),
            encryption=f"envelope (AES-256-GCM streaming) under {archive_key_uri} "
            f"version {check.key_version}",
            key=archive_key_uri,
            storage_class=cls,
            verification=f"{how}archive copy decrypted with the archive key; plaintext sha256 "
            "matches the source's sidecar",
        )
    if _looks_like_ciphertext(src, entry):
        raise IntegrityError(
            f"{source} has the shape of envelope ciphertext but its sidecar "
            f"{entry.key + SIDECAR_SUFFIX!r} is missing: it cannot be re-encrypted under the "
            "archive key, and a verbatim copy would die with the KEK. Nothing was deleted; "
            "restore the sidecar, or take the object out of the archived asset class, and plan "
            "again"
        )
    digest, size = _hash_stream(src.open(entry.key, entry.version_id))
    if size != entry.size:
        raise IntegrityError(f"{source}: {size} bytes read, the plan says {entry.size}")
    if exists(dest, entry.archive_key) and _hash_stream(dest.open(entry.archive_key)) == (
        digest,
        size,
    ):
        how = "already archived (sha256 matches)"
    else:
        h = hashlib.sha256()
        with src.open(entry.key, entry.version_id) as stream:
            dest.put(entry.archive_key, _hashing(iter(lambda: stream.read(1024 * 1024), b""), h))
        copied, n = _hash_stream(dest.open(entry.archive_key))
        if not (copied == h.hexdigest() == digest) or n != entry.size:
            raise IntegrityError(f"archive copy of {source}: digest mismatch")
        how = "copied; archive copy read back, sha256 and size match the source"
    cls = _apply_storage_class(dest, entry.archive_key, storage_class)
    return ArchivedCopy(
        source=source,
        uri=uri,
        bytes=size,
        sha256=digest,
        encryption="none (plaintext)",
        storage_class=cls,
        verification=how,
    )


@task(name="archive-batch", **TASK_OPTIONS)
def archive_batch(
    url: str,
    archive_url: str,
    archive_key_uri: str,
    storage_class: str | None,
    location: int,
    number: int,
    entries: list[PlanEntry],
) -> BatchOutcome:
    src = registry.open_store(url)
    dest = registry.open_store(archive_url)
    check_storage_class(dest, storage_class)
    outcome = BatchOutcome(location=location, batch=number)
    for entry in entries:
        copy = archive_one(src, entry, dest, archive_key_uri, storage_class)
        outcome.done.add(entry.kind, entry.size)
        if copy is not None:
            outcome.archived.append(copy)
    outcome.finished_at = datetime.now(UTC)
    return outcome


# --------------------------------------------------------------------------------------------
# Keys and credentials


@task(name="destroy-key", **TASK_OPTIONS)
def destroy_key(
    uri: str,
    planned_versions: list[int],
    pending_days: int | None = None,
    grants: list[str] | None = None,
) -> KeyDestroyed:
    """Cryptographic erase of one key, with the key service's own proof.

    The key is opened without a liveness check: a destruction an earlier run began (a keyring
    tombstone written, a Vault key with deletion allowed) is finished by ``destroy()``, never
    taken as done. A key already gone (nothing left to delete) is proved gone from its material
    by ``verify_destroyed()``. The spec's grants on the key are revoked first and the spec's
    pending window (``keys.pending_days``) is passed to a key service that takes one
    (:mod:`flows.key_deletion`)."""
    from ._pending import destroy_with_window, revoke_spec_grants

    service = registry.key_for_destruction(uri)
    grant_checks = revoke_spec_grants(service, grants or [])
    try:
        evidence = destroy_with_window(service, pending_days)
    except KeyDestroyedError:
        evidence = service.verify_destroyed()
    except NotFoundError:
        # Nothing of the key and no record of its destruction: prove it from the material.
        evidence = service.verify_destroyed()
        evidence = replace(
            evidence,
            versions_destroyed=evidence.versions_destroyed or tuple(planned_versions),
            method="not found by this run; " + evidence.method,
        )
    if grant_checks:
        evidence = replace(evidence, checks={**grant_checks, **evidence.checks})
    return KeyDestroyed.from_destruction(evidence)


def key_check(uri: str) -> str:
    """The post-retirement check of one key: "gone" when it is proved gone from its material
    (no key file or transit key left, no sentinel unwraps), the KMS's "scheduled for deletion"
    with its date when the KMS deletes it at the end of a window (refused for use meanwhile),
    else what still answers. A tombstone or record is never the proof."""
    from ._pending import check_text

    return check_text(registry.key_for_destruction(uri).verify_destroyed())


@task(name="revoke-credential", **TASK_OPTIONS)
def revoke_credential(kind: str, ident: str) -> CredentialRevoked:
    return _credentials.revoke(CredentialRef(kind, ident))


# --------------------------------------------------------------------------------------------
# Verify


SOFT_DELETE_TOLERANCE = 300  # seconds of clock skew allowed between the provider and us
SOFT_DELETE_LISTED = 100  # soft-deleted copies named in a verification outcome


@dataclass
class HeldSet:
    ids: set[tuple[str, str | None, str]] = field(default_factory=set)

    def add(self, key: str, version_id: str | None, kind: str) -> None:
        self.ids.add((key, version_id, kind))


@task(name="verify-location", **TASK_OPTIONS)
def verify_location(
    url: str,
    held: list[tuple[str, str | None, str]],
    settings: StoreSettings | None = None,
    key_range: tuple[str | None, str | None] | None = None,
) -> VerifyOutcome:
    """Step 5: list every copy again; only the held ones may remain, and soft-deleted copies
    that the provider deletes for good within the soft-delete window recorded in the plan
    (``settings``, read at inventory time; the certificate states that window). A soft-deleted
    copy whose hard-delete time is later than now + that window, or unknown, or any soft-deleted
    copy when the plan recorded no window (a policy switched on after planning), stays
    restorable past what the certificate states: it is a remaining copy and fails verification.

    A held copy is matched on (key, version id), not on its kind: a held noncurrent version is
    listed as the current object once the newer versions above it are purged."""
    from datetime import timedelta

    allowed = {(key, version_id) for key, version_id, _kind in held}
    remaining = held_left = soft_deleted = 0
    examples: list[str] = []
    listed: list[str] = []
    latest: datetime | None = None
    now = datetime.now(UTC)

    window = settings.soft_delete_seconds if settings is not None else None
    bound = now + timedelta(seconds=window + SOFT_DELETE_TOLERANCE) if window else None
    special: list[str] = []
    from .ranges import entries_in  # every copy, or those of one key range

    entries = iter(entries_in(registry.open_store(url), key_range))
    try:
        first = next(entries, None)
    except NotFoundError:  # the root is gone (or never was: may_be_absent): nothing remains
        first = None
    for entry in _chain(first, entries) if first is not None else iter(()):
        if entry.kind in SPECIAL_KINDS:  # never followed or deleted: remains, named by kind
            special.append(f"{entry.kind.value} {entry.key}")
        name = f"{entry.kind.value} {entry.key}" + (
            f" ({entry.version_id})" if entry.version_id else ""
        )
        if entry.kind is EntryKind.SOFT_DELETED:
            soft_deleted += 1
            hard = entry.hard_delete_at
            if hard is not None and (latest is None or hard > latest):
                latest = hard
            when = hard.isoformat() if hard is not None else "unknown"
            if len(listed) < SOFT_DELETE_LISTED:
                listed.append(f"{entry.key} ({entry.version_id}): hard delete {when}")
            if bound is not None and hard is not None and hard <= bound:
                continue
            remaining += 1
            if len(examples) < 5:
                why = "no soft-delete window recorded" if bound is None else f"hard delete {when}"
                examples.append(f"{name}: restorable past the window stated ({why})")
            continue
        if (entry.key, entry.version_id) in allowed:
            held_left += 1
            continue
        remaining += 1
        if len(examples) < 5:
            examples.append(name)
    if remaining:
        details = f"{remaining} copies remain that were not held, e.g. " + ", ".join(examples)
    else:
        details = f"0 copies remain except {held_left} held" if held_left else "0 copies remain"
    if special:
        details += f"; remaining, not followed: {', '.join(special[:5])}" + (
            f" and {len(special) - 5} more" if len(special) > 5 else ""
        )
    if soft_deleted:
        until = latest.isoformat() if latest is not None else "an unknown time"
        details += f"; {soft_deleted} soft-deleted copies restorable by the owner until {until}"
    return VerifyOutcome(
        url=url,
        passed=remaining == 0,
        remaining=remaining,
        held_remaining=held_left,
        details=details,
        verified_at=datetime.now(UTC),
        soft_deleted=soft_deleted,
        restorable_until=latest,
        soft_deleted_copies=listed,
    )


def store_settings(url: str, spec: SystemSpec | None = None) -> StoreSettings:
    """Versioning, object lock, the soft-delete window and replication found on a location,
    read when it is inventoried. A replica is named in ``replicas`` (the certificate's
    exceptions) unless it is an S3 replication destination that is itself a location of
    ``spec`` (retired with it): provider-managed replicas (GCS dual/multi-region, Azure GRS)
    are always named, since no tenant request reaches them apart."""
    store = registry.open_store(url)
    caps = store.capabilities
    out = StoreSettings(
        versioning="enabled" if Capability.VERSIONING in caps else "not enabled",
        object_lock="enabled" if Capability.OBJECT_LOCK in caps else "none",
    )
    if isinstance(store, Inventory):
        policy = store.soft_delete_policy()
        out.soft_delete_seconds = policy.retention_seconds or None
        out.soft_delete_source = policy.source
    if isinstance(store, Replicated):
        found = store.replication()
        out.redundancy = found.redundancy
        if found.note:
            out.notes.append(found.note)
        for target in found.targets:
            if target.url is not None and spec is not None and _in_spec(spec, target.url):
                out.replicas_in_spec.append(f"{target.where} (location {target.url})")
            else:
                out.replicas.append(target.where)
    return out


def _settings_or_absent(url: str, spec: SystemSpec, absent: bool) -> StoreSettings:
    """:func:`store_settings`, or for a location whose root is absent (may_be_absent) and whose
    bucket or container cannot be read, settings that say so."""
    try:
        return store_settings(url, spec)
    except NotFoundError as exc:
        if not absent:
            raise
        return StoreSettings(
            versioning="unknown (root absent)",
            object_lock="unknown (root absent)",
            soft_delete_source="root absent",
            notes=[f"settings not read: {exc}"],
        )


def _in_spec(spec: SystemSpec, url: str) -> bool:
    """Whether ``url`` is a location of ``spec`` or lies under one (path boundary)."""
    try:
        target = parse_store_url(url)
    except ValueError:
        return False
    for ref in spec.locations():
        loc = parse_store_url(ref.url)
        same_root = (loc.scheme, loc.bucket) == (target.scheme, target.bucket)
        if same_root and tuple(target.parts[: len(loc.parts)]) == tuple(loc.parts):
            return True
    return False


def local_path(url: str) -> Path | None:
    """The local path of a file:// URL, for display."""
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    return None


BatchOutcome.model_rebuild()
