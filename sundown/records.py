"""The record-store protocol: rows, keys and vector-store documents an AI system keeps in a
database (interaction logs in PostgreSQL, caches in Redis, RAG indexes in Chroma).

A record store is opened on a location URL and a *selector* and is scoped to them, as an object
store is rooted at its URL: ``postgresql://HOST:PORT/DB/SCHEMA/TABLE`` with ``where: {column:
value}`` or ``whole_table: true``; ``redis://HOST:PORT/DB/PREFIX`` (every key under ``PREFIX:``);
``chroma://HOST:PORT/TENANT/DATABASE/COLLECTION`` with ``where:`` or ``whole_collection: true``.
Every query and every delete a connector sends carries the selector, so nothing outside it is
ever read as in scope or deleted (docs/records.md).

The operations mirror :class:`sundown.store.Inventory`:

- :meth:`RecordStore.inventory` lists every record the selector matches (its identifier and an
  estimate of its bytes); :func:`summarize` gives the count, the bytes and a digest of the
  identifiers that a plan records.
- :meth:`RecordStore.purge` deletes exactly the records listed, in batches, reading every
  per-item result. Before it deletes anything it re-reads the selector and stops (ConflictError
  or ScopeError, nothing deleted) when a listed record now lies outside the selector or the
  selector matches records the list does not name. Listed records already gone count as absent
  (a re-run after a crash).
- :meth:`RecordStore.verify` re-queries the selector and the listed identifiers.
- :meth:`RecordStore.findings` reports the settings that keep deleted data (WAL, replicas, AOF
  and RDB, a persistent directory) as :class:`Finding` items, for the certificate.
- :meth:`RecordStore.compact` (:attr:`RecordCapability.COMPACT`) asks the server to drop what it
  keeps of deleted records (VACUUM, BGREWRITEAOF) and reports what it did as findings.

Optional abilities are declared in ``capabilities`` (:class:`RecordCapability`).
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable
from urllib.parse import SplitResult

from sundown.errors import ConflictError, InputError, ScopeError

if TYPE_CHECKING:
    from sundown.record_retention import RetentionAction

#: A selector value: equality with a string, an integer or a boolean. No floats (equality on
#: floats is a trap) and no NULL (``= NULL`` matches nothing in SQL; Chroma has no null).
Scalar = str | int | bool


class RecordCapability(enum.StrEnum):
    WHERE = "where"  # a ``where: {field: value}`` equality selector
    WHOLE = "whole"  # the whole table / collection, removed as one (DROP TABLE, delete_collection)
    PREFIX = "prefix"  # every key under a prefix (the location URL ends with it)
    BATCH_DELETE = "batch_delete"  # purge sends many records per request or transaction
    COMPACT = "compact"  # compact() drops what the server keeps of deleted records
    LINKED = "linked_locations"  # linked_locations(): object-store locations records name
    RETENTION = "retention"  # apply_retention(): delete_after_days applied by the connector


@dataclass(frozen=True)
class Selector:
    """Which records of a location are in scope. ``where``: (field, value) pairs, sorted by
    field, all of which must hold; ``whole``: the whole table or collection. Neither: every
    record under the location (a Redis prefix)."""

    where: tuple[tuple[str, Scalar], ...] = ()
    whole: bool = False

    def to_dict(self, whole_word: str = "whole") -> dict[str, object]:
        if self.whole:
            return {whole_word: True}
        return {"where": dict(self.where)} if self.where else {}

    def describe(self) -> str:
        if self.whole:
            return "the whole location"
        if not self.where:
            return "every record under the location"
        return "the selector " + " and ".join(f"{k} = {v!r}" for k, v in self.where)


def parse_selector(
    raw: Mapping[str, object] | None, *, whole_word: str | None, where: bool, where_of: str
) -> Selector:
    """Parse a spec selector. ``whole_word``: the key that selects the whole location
    (``whole_table``, ``whole_collection``; ``None`` when the store has none); ``where``:
    whether ``where: {field: value}`` is accepted; ``where_of``: what names the location in
    errors. Exactly one form, or (stores without either) nothing."""
    raw = dict(raw or {})
    allowed = {k for k in (whole_word, "where" if where else None) if k}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise InputError(f"selector of {where_of}: unknown key(s) {unknown} (accepted: {known})")
    whole = raw.get(whole_word) if whole_word else None
    clauses = raw.get("where")
    if whole is not None and not isinstance(whole, bool):
        raise InputError(f"selector of {where_of}: {whole_word} must be true or false")
    if whole and clauses is not None:
        raise InputError(f"selector of {where_of}: {whole_word} and where together")
    if whole:
        return Selector(whole=True)
    if clauses is None:
        if allowed:
            forms = " or ".join(
                f"{k}: true" if k == whole_word else "where: {field: value}"
                for k in sorted(allowed)
            )
            raise InputError(f"selector of {where_of}: missing (give {forms})")
        return Selector()
    if not isinstance(clauses, Mapping) or not clauses:
        raise InputError(f"selector of {where_of}: where must be a non-empty mapping")
    pairs: list[tuple[str, Scalar]] = []
    for name, value in clauses.items():
        if not isinstance(name, str) or not name or "\x00" in name:
            raise InputError(f"selector of {where_of}: invalid field name {name!r}")
        if isinstance(value, float) or not isinstance(value, str | int):
            raise InputError(
                f"selector of {where_of}: {name} must equal a string, an integer or a boolean, "
                f"not {type(value).__name__}"
            )
        if isinstance(value, str) and "\x00" in value:
            raise InputError(f"selector of {where_of}: {name}'s value has a NUL character")
        pairs.append((name, value))
    return Selector(where=tuple(sorted(pairs, key=lambda p: p[0])))


@dataclass(frozen=True)
class RecordEntry:
    """One record in scope: its identifier (a primary key's text, a Redis key, a Chroma id) and
    an estimate of its bytes as the server reports it."""

    id: str
    size: int = 0


@dataclass(frozen=True)
class RecordSummary:
    """What a plan records of an inventory."""

    count: int
    estimated_bytes: int
    ids_digest: str  # "sha256:<hex>" over the sorted identifiers (ids_digest())


def _id_bytes(ident: str) -> bytes:
    # surrogateescape: a Redis key that is not UTF-8 travels as a str and back byte-exact
    return ident.encode("utf-8", "surrogateescape")


def ids_digest(ids: Iterable[str]) -> str:
    """``sha256:`` over the identifiers sorted by their UTF-8 bytes, each preceded by its length
    as 8 big-endian bytes (unambiguous; independent of listing order)."""
    h = hashlib.sha256()
    for raw in sorted(_id_bytes(i) for i in ids):
        h.update(len(raw).to_bytes(8, "big"))
        h.update(raw)
    return "sha256:" + h.hexdigest()


def summarize(entries: Iterable[RecordEntry]) -> RecordSummary:
    listed = list(entries)
    return RecordSummary(
        count=len(listed),
        estimated_bytes=sum(e.size for e in listed),
        ids_digest=ids_digest(e.id for e in listed),
    )


@dataclass(frozen=True)
class RecordFailure:
    id: str
    code: str  # e.g. "not_deleted", "out_of_scope"
    message: str  # no secrets


@dataclass(frozen=True)
class BatchResult:
    """One delete request or transaction: the identifiers it asked for, in listing order."""

    first: str
    last: str
    asked: int
    deleted: int
    absent: int  # listed, already gone before this batch ran


@dataclass(frozen=True)
class StageDone:
    """One kind of record of a purge that deletes kind by kind in dependency order
    (connectors/_staged.py: endpoints, then endpoint configurations, then models): every listed
    record of ``kind`` deleted (``deleted``) or found gone (``absent``), the last one read back
    gone at ``finished_at`` (UTC). The journal keeps these, so the order is evidence."""

    kind: str
    deleted: int
    absent: int
    finished_at: datetime


@dataclass
class RecordPurgeResult:
    deleted: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # already gone (a re-run after a crash)
    failed: list[RecordFailure] = field(default_factory=list)
    batches: list[BatchResult] = field(default_factory=list)
    dropped: bool = False  # the whole table or collection was removed
    # why the purge stopped after deleting some batches (a record written into a batch's range
    # during the purge); None when every batch ran. The batches before it stay deleted.
    stopped: str | None = None
    stages: list[StageDone] = field(default_factory=list)  # staged stores, in delete order

    @property
    def requests(self) -> int:
        return len(self.batches)


@dataclass(frozen=True)
class RecordVerification:
    """A re-query after purge. ``in_scope``: records the selector still matches (``None`` when
    the whole table or collection is gone, so nothing can match); ``listed_present``: listed
    identifiers that still exist anywhere in the location; ``gone``: the whole table or
    collection no longer exists."""

    in_scope: int | None
    listed_present: tuple[str, ...] = ()
    gone: bool = False
    sample: tuple[str, ...] = ()  # up to 10 identifiers still in scope

    @property
    def clean(self) -> bool:
        return not self.in_scope and not self.listed_present


@dataclass(frozen=True)
class Finding:
    """One setting that keeps (or may keep) deleted data, as the server reported it.

    ``setting``: what was read (``wal_level``, ``appendonly``, ``replica``, ``persistent
    directory``); ``value``: what was found (``None``: not read, ``note`` says why);
    ``keeps_deleted_data``: ``True`` the deleted data survives there, ``False`` it does not,
    ``None`` unknown; ``statement``: one sentence a certificate can carry."""

    setting: str
    value: str | None
    keeps_deleted_data: bool | None
    statement: str
    note: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "setting": self.setting,
            "value": self.value,
            "keeps_deleted_data": self.keeps_deleted_data,
            "statement": self.statement,
            "note": self.note,
        }


@runtime_checkable
class RecordStore(Protocol):
    """The records a selector matches at a location."""

    @property
    def url(self) -> str:
        """The location URL (never with a password)."""
        ...

    @property
    def selector(self) -> Selector: ...

    @property
    def capabilities(self) -> frozenset[RecordCapability]: ...

    def inventory(self) -> Iterator[RecordEntry]:
        """Every record in scope, paginated (memory does not grow with the number of records
        on the server side; the caller holds what it keeps)."""
        ...

    def purge(self, entries: Sequence[RecordEntry], *, batch_size: int = 500) -> RecordPurgeResult:
        """Delete exactly these records (with ``whole``: the whole table or collection, after
        checking it holds exactly these). Stops before deleting anything when the selector now
        matches records not listed (ConflictError) or a listed record lies outside it
        (ScopeError)."""
        ...

    def verify(self, entries: Sequence[RecordEntry]) -> RecordVerification: ...

    def findings(self) -> list[Finding]:
        """The settings that keep deleted data. Never raises for a refused read: the finding's
        ``value`` is ``None`` and its note says why."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class AppliesRetention(Protocol):
    """Optional (:attr:`RecordCapability.RETENTION`): apply a ``delete_after_days`` rule at
    ``as_of`` to what the location covers, nothing outside it; one action per record changed
    or left (sundown/record_retention.py). ``dry_run``: read only, report what would change."""

    def apply_retention(
        self, delete_after_days: int, as_of: datetime, *, dry_run: bool = False
    ) -> list[RetentionAction]: ...


@runtime_checkable
class Compactor(Protocol):
    """Optional (:attr:`RecordCapability.COMPACT`): after a purge, ask the server to drop what
    it still keeps of deleted records; what was done, as findings."""

    def compact(self) -> list[Finding]: ...


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or batch_size < 1 or batch_size > 10_000:
        raise InputError(f"batch size {batch_size!r} must be an integer from 1 to 10000")
    return batch_size


def batches(items: Sequence[RecordEntry], size: int) -> Iterator[Sequence[RecordEntry]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_listed(entries: Sequence[RecordEntry], where: str) -> list[RecordEntry]:
    """The entries a purge was given, refused when an identifier is listed twice or is not a
    string (a plan read back is untrusted input)."""
    seen: set[str] = set()
    for e in entries:
        if not isinstance(e, RecordEntry) or not isinstance(e.id, str):
            raise InputError(f"purge of {where}: not a record entry: {e!r}")
        if e.id in seen:
            raise InputError(f"purge of {where}: record {e.id!r} is listed twice")
        seen.add(e.id)
    return list(entries)


@dataclass(frozen=True)
class Location:
    """A record-store URL, split: ``scheme://[USER@]HOST[:PORT]/SEG1/SEG2/...``. The segments
    are percent-decoded (``%2F`` is a ``/`` inside a name). ``url`` is the URL as given, which
    never holds a password (:func:`parse_location` refuses one)."""

    scheme: str
    host: str
    port: int
    user: str | None
    segments: tuple[str, ...]
    url: str


def split_url(url: str, scheme: str, shape: str) -> tuple[SplitResult, int | None]:
    """``urlsplit(url)`` and its port, refused (InputError naming ``shape``) when ``url`` is
    not a string, holds a NUL, has a bad port or is not a ``scheme://`` URL."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or "\x00" in url:
        raise InputError(f"{scheme} URL must be a string without NUL characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"invalid {scheme} URL (expected {shape}): {exc}") from exc
    if parts.scheme.lower() != scheme:
        raise InputError(f"not a {scheme}:// URL (expected {shape})")
    return parts, port


def parse_location(
    url: str, *, scheme: str, default_port: int, names: Sequence[str], auth_hint: str
) -> Location:
    """Split a record-store URL whose path has exactly ``len(names)`` non-empty segments, named
    ``names`` in errors. A password in the URL is refused without being echoed (a location URL
    is written into plans and certificates): ``auth_hint`` names where it goes instead."""
    from urllib.parse import unquote

    shape = f"{scheme}://HOST:PORT/" + "/".join(n.upper() for n in names)
    parts, port = split_url(url, scheme, shape)
    if parts.password is not None:
        raise InputError(
            f"a {scheme}:// location URL must not hold a password (URLs are written into plans "
            f"and certificates): put it in {auth_hint}"
        )
    if parts.query or parts.fragment:
        raise InputError(f"{scheme}:// location takes no query or fragment (expected {shape})")
    if not parts.hostname:
        raise InputError(f"{scheme}:// location has no host (expected {shape})")
    raw = parts.path.split("/")[1:]
    if len(raw) != len(names) or any(not s for s in raw):
        raise InputError(f"{url!r} is not a {scheme} location: expected {shape}")
    segments = tuple(unquote(s) for s in raw)
    for name, value in zip(names, segments, strict=True):
        if not value or "\x00" in value:
            raise InputError(f"{url!r}: empty or NUL in {name}")
    user = unquote(parts.username) if parts.username else None
    return Location(scheme, parts.hostname, port or default_port, user, segments, url)


class ScopedRecords:
    """What every record connector shares: its location and selector, and the checks a purge
    makes before it deletes anything. ``noun`` names a record in messages (``row``)."""

    noun = "record"
    capabilities: frozenset[RecordCapability] = frozenset()

    def __init__(self, location: Location, selector: Selector) -> None:
        self._loc = location
        self._selector = selector

    @property
    def url(self) -> str:
        return self._loc.url

    @property
    def selector(self) -> Selector:
        return self._selector

    @property
    def where(self) -> str:
        return self.url

    def checked_input(self, entries: Sequence[RecordEntry], batch_size: int) -> list[RecordEntry]:
        """A purge's ``entries``, once they and ``batch_size`` passed :func:`check_batch_size`
        and :func:`check_listed` (before anything is deleted)."""
        check_batch_size(batch_size)
        return check_listed(entries, self.where)

    def refuse_unlisted(self, current: Iterable[str], listed: Iterable[str]) -> None:
        """ConflictError when the selector matches records the list does not name (written
        since the list was made): nothing has been deleted."""
        wanted = set(listed)
        unlisted = [i for i in current if i not in wanted]
        if unlisted:
            raise ConflictError(
                f"purge of {self.where}: {len(unlisted)} {self.noun}(s) in scope are not in the "
                f"list (written since it was made, e.g. {unlisted[:3]}): nothing deleted; make "
                "a new plan"
            )

    def refuse_outside(self, outside: Sequence[str], scope: str | None = None) -> None:
        """ScopeError when listed records exist outside the selector: nothing has been
        deleted. ``scope`` describes the selector (default: its ``where`` clauses)."""
        if outside:
            raise ScopeError(
                f"purge of {self.where}: {len(outside)} listed {self.noun}(s) exist outside "
                f"{scope or self._selector.describe()}, e.g. {sorted(outside)[:3]}: nothing "
                "deleted"
            )


# --------------------------------------------------------------------------------------------
# Location shapes: what the spec needs to know of a record-store URL without its connector


@dataclass(frozen=True)
class LocationShape:
    """How a record-store scheme's location URL and selector look, known to the core so that a
    spec is checked (and two specs' selectors compared) without importing the connector or its
    SDK. ``names``: the path segments; ``whole_word``: the selector key that takes the whole
    table or collection (``None``: none); ``where``: whether ``where:`` is accepted;
    ``prefix_separator``: the last segment is a key prefix ending at this separator (Redis
    ``:``) rather than a name. A connector registered for a new scheme adds its shape with
    :func:`register_shape`."""

    scheme: str
    default_port: int
    names: tuple[str, ...]
    auth_hint: str
    whole_word: str | None = None
    where: bool = False
    prefix_separator: str | None = None
    reserved_where_prefixes: tuple[str, ...] = ()

    def parse(self, url: str) -> Location:
        return parse_location(
            url,
            scheme=self.scheme,
            default_port=self.default_port,
            names=self.names,
            auth_hint=self.auth_hint,
        )

    def parse_selector(self, raw: Mapping[str, object] | None, url: str) -> Selector:
        return parse_selector(raw, whole_word=self.whole_word, where=self.where, where_of=url)

    def names_overlap(self, a: Location, b: Location) -> str | None:
        """Overrides the generic overlap of :func:`records_overlap` (a region-named scheme);
        the base shape never calls it."""
        raise NotImplementedError


SHAPES: dict[str, LocationShape] = {}


_Shape = TypeVar("_Shape", bound=LocationShape)


def register_shape(shape: _Shape) -> _Shape:
    SHAPES[shape.scheme] = shape
    return shape


POSTGRES_SHAPE = register_shape(
    LocationShape(
        "postgresql", 5432, ("database", "schema", "table"),
        "PGPASSWORD or the password file (~/.pgpass)", whole_word="whole_table", where=True,
    )
)  # fmt: skip
REDIS_SHAPE = register_shape(
    LocationShape("redis", 6379, ("db", "prefix"), "REDISCLI_AUTH", prefix_separator=":")
)
CHROMA_SHAPE = register_shape(
    LocationShape(
        "chroma", 8000, ("tenant", "database", "collection"), "CHROMA_CLIENT_AUTH_CREDENTIALS",
        whole_word="whole_collection", where=True, reserved_where_prefixes=("$", "#"),
    )
)  # fmt: skip


class MlflowShape(LocationShape):
    """``mlflow://HOST:PORT/models/NAME`` (no selector) or ``mlflow://HOST:PORT/experiments/
    NAME`` (every run, or ``whole_experiment: true``)."""

    def parse(self, url: str) -> Location:
        loc = super().parse(url)
        kind, name = loc.segments
        if kind not in ("models", "experiments"):
            raise InputError(
                f"{url!r}: expected mlflow://HOST:PORT/models/NAME or /experiments/NAME"
            )
        if "'" in name:
            raise InputError(f"{url!r}: a name with a quote (') is not supported")
        return loc

    def parse_selector(self, raw: Mapping[str, object] | None, url: str) -> Selector:
        if url.split("/")[3:4] == ["models"]:
            return parse_selector(raw, whole_word=None, where=False, where_of=url)
        if not raw:
            return Selector()
        return parse_selector(raw, whole_word=self.whole_word, where=False, where_of=url)


_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d$")


def parse_region_url(url: str, scheme: str, shape: str) -> tuple[str, str]:
    """``scheme://REGION/REST`` -> (region, REST as written, percent-decoded). No user, port,
    query or fragment: AWS credentials come from the standard chain, never from the URL."""
    from urllib.parse import unquote

    parts, port = split_url(url, scheme, shape)
    if parts.username is not None or parts.password is not None or port is not None:
        raise InputError(
            f"a {scheme}:// URL names a region, not a host: no user, password or port "
            f"(credentials come from the AWS environment; expected {shape})"
        )
    if parts.query or parts.fragment:
        raise InputError(f"{scheme}:// location takes no query or fragment (expected {shape})")
    region = parts.netloc
    if not _REGION.match(region):
        raise InputError(f"{url!r}: {region!r} is not an AWS region (expected {shape})")
    rest = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if not rest or "\x00" in rest:
        raise InputError(f"{url!r} names nothing after the region (expected {shape})")
    return region, rest


class RegionShape(LocationShape):
    """``scheme://REGION/NAME``: the region stands where a host would (``Location.host``), the
    name (one segment, ``/`` allowed inside) is checked by :meth:`name_rule`; credentials come
    from the AWS environment. No selector."""

    text = ""

    def parse(self, url: str) -> Location:
        region, rest = parse_region_url(url, self.scheme, self.text)
        self.name_rule(url, rest)
        return Location(self.scheme, region, self.default_port, None, (rest,), url)

    def name_rule(self, url: str, rest: str) -> None:
        raise NotImplementedError


_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class SageMakerShape(RegionShape):
    """``sagemaker://REGION/NAME`` (that name) or ``sagemaker://REGION/NAME-*`` (``NAME`` and
    every ``NAME-...``, so ``support-bot-*`` covers ``support-bot-v2``)."""

    text = "sagemaker://REGION/NAME or sagemaker://REGION/NAME-*"

    @staticmethod
    def split(rest: str) -> tuple[str, bool]:
        """(NAME, whether it ends with ``-*``)."""
        return (rest[:-2], True) if rest.endswith("-*") else (rest, False)

    def name_rule(self, url: str, rest: str) -> None:
        name, _ = self.split(rest)
        if not _SAGEMAKER_NAME.match(name) or len(name) > 63:
            raise InputError(
                f"{url!r}: {name!r} is not a SageMaker name (letters, digits and hyphens, "
                f"up to 63; expected {self.text})"
            )

    @classmethod
    def covers(cls, rest: str, name: str) -> bool:
        base, wildcard = cls.split(rest)
        return name == base or (wildcard and name.startswith(base + "-"))

    def names_overlap(self, a: Location, b: Location) -> str | None:
        ra, rb = a.segments[0], b.segments[0]
        (na, _), (nb, _) = self.split(ra), self.split(rb)
        if self.covers(ra, nb) or self.covers(rb, na):
            return f" ({ra} and {rb} name a common SageMaker resource)"
        return None


class LogGroupShape(RegionShape):
    """``aws-logs://REGION/PREFIX``: the group named ``PREFIX`` and the groups under
    ``PREFIX/`` (never ``PREFIX-v2``)."""

    text = "aws-logs://REGION/LOG_GROUP_PREFIX (e.g. aws-logs://us-east-1//aws/sagemaker/...)"

    def name_rule(self, url: str, rest: str) -> None:
        if rest.endswith("/"):
            raise InputError(
                f"{url!r}: write the prefix without the trailing '/' (it covers PREFIX and "
                "PREFIX/...)"
            )
        if ":" in rest or "*" in rest:
            raise InputError(f"{url!r}: a log group prefix has no ':' or '*' (a name, not a glob)")

    @staticmethod
    def covers(prefix: str, group: str) -> bool:
        return group == prefix or group.startswith(prefix + "/")

    def names_overlap(self, a: Location, b: Location) -> str | None:
        pa, pb = a.segments[0], b.segments[0]
        if self.covers(pa, pb) or self.covers(pb, pa):
            return f" (log group prefixes {pa} and {pb} share groups at the '/' boundary)"
        return None


MLFLOW_SHAPE = register_shape(
    MlflowShape(
        "mlflow", 5000, ("kind", "name"), "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD",
        whole_word="whole_experiment",
    )
)  # fmt: skip
_AWS_AUTH = "the AWS environment (credentials never go in the URL)"
SAGEMAKER_SHAPE = register_shape(SageMakerShape("sagemaker", 443, ("name",), _AWS_AUTH))
LOGS_SHAPE = register_shape(LogGroupShape("aws-logs", 443, ("log_group_prefix",), _AWS_AUTH))


def is_record_url(url: object) -> bool:
    """Whether ``url`` names a record-store scheme with a known shape (no parsing beyond it)."""
    return isinstance(url, str) and url.split("://", 1)[0].lower() in SHAPES and "://" in url


def parse_record_location(
    url: str, selector: Mapping[str, object] | None
) -> tuple[LocationShape, Location, Selector]:
    """A record-store location and its selector, checked as its connector checks them (the
    spec applies this; the connector applies the same rules again when it opens)."""
    if not is_record_url(url):
        known = ", ".join(sorted(SHAPES))
        raise InputError(f"{url!r} is not a record-store URL (schemes: {known})")
    shape = SHAPES[url.split("://", 1)[0].lower()]
    loc = shape.parse(url)
    sel = shape.parse_selector(selector, url)
    if shape.prefix_separator is not None:
        prefix = loc.segments[-1]
        if prefix.endswith(shape.prefix_separator):
            raise InputError(
                f"{url!r}: write the prefix without the trailing {shape.prefix_separator!r} "
                f"(it covers PREFIX{shape.prefix_separator}*)"
            )
    db = loc.segments[0] if shape.scheme == "redis" else None
    if db is not None and not (
        db.isascii() and db.isdigit() and len(db) <= 5 and db == str(int(db))
    ):
        # one spelling per database: '00' and '0' are both db 0 and must compare equal
        raise InputError(
            f"{url!r}: database {db!r} must be a number written without leading zeros (0, 1, ...)"
        )
    for key, _ in sel.where:
        if key.startswith(shape.reserved_where_prefixes or ("\x00",)):
            raise InputError(
                f"selector of {url}: {key!r} is an operator or a reserved key; a selector is "
                "equality on metadata keys only"
            )
    return shape, loc, sel


def server_host(host: str) -> str:
    """``host`` as the server it reaches, as far as that is known without asking DNS: case and
    a trailing dot dropped, IP addresses in one spelling (an IPv4-mapped IPv6 address as its
    IPv4 address), and every loopback or unspecified name and address (``localhost``,
    ``*.localhost``, ``127.0.0.0/8``, ``::1``, ``0.0.0.0``, ``::``) as one ``loopback`` host.
    A DNS alias and its target stay apart (docs/known-gaps.md)."""
    import ipaddress

    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"
    try:
        ip = ipaddress.ip_address(name.partition("%")[0])
    except ValueError:
        return name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return "loopback" if ip.is_loopback or ip.is_unspecified else str(ip)


def _same_place(shape: LocationShape, a: Location, b: Location) -> bool:
    """The same server (:func:`server_host`) and the same table / collection / database."""
    fixed = a.segments[:-1] if shape.prefix_separator else a.segments
    other = b.segments[:-1] if shape.prefix_separator else b.segments
    return (server_host(a.host), a.port, fixed) == (server_host(b.host), b.port, other)


def records_overlap(
    a: tuple[str, Mapping[str, object] | None], b: tuple[str, Mapping[str, object] | None]
) -> str | None:
    """Why two record-store locations (URL, selector) may select a common record, or ``None``
    when they provably cannot: another server, table or collection; Redis prefixes apart at
    the ``:`` boundary (``support-bot`` and ``support-bot-v2`` are apart; ``support-bot`` and
    ``support-bot:eu`` are not); two ``where`` selectors with a different value on a common
    field. Anything else on the same table or collection overlaps (a ``whole`` selector, or
    ``where`` selectors on different fields: a row may match both)."""
    shape, la, sa = parse_record_location(*a)
    shape_b, lb, sb = parse_record_location(*b)
    if shape.scheme != shape_b.scheme:
        return None
    if isinstance(shape, RegionShape):
        return shape.names_overlap(la, lb) if la.host == lb.host else None
    if not _same_place(shape, la, lb):
        return None
    if shape.prefix_separator is not None:
        sep = shape.prefix_separator
        pa, pb = la.segments[-1] + sep, lb.segments[-1] + sep
        if not (pa.startswith(pb) or pb.startswith(pa)):
            return None
        return f" (key prefix {la.segments[-1]}{sep}* and {lb.segments[-1]}{sep}* share keys)"
    if sa.whole or sb.whole:
        return " (a whole-table or whole-collection selector covers every record of the other)"
    wa, wb = dict(sa.where), dict(sb.where)
    for name in set(wa) & set(wb):
        # 5 and "5" select the same rows (values are sent as text); True and "true" too
        if _as_text(wa[name]) != _as_text(wb[name]):
            return None
    if not wa or not wb:
        return " (one selector takes every record of the location)"
    return (
        f" ({sa.describe()} and {sb.describe().removeprefix('the ')} are not provably "
        "disjoint: only a different value on a common field is)"
    )


_TRUE = {"true", "tru", "tr", "t", "yes", "ye", "y", "on", "1"}  # PostgreSQL boolean input
_FALSE = {"false", "fals", "fal", "fa", "f", "no", "n", "off", "of", "0"}


def render_value(value: Scalar) -> str:
    """A selector value's exact text as Sundown sends it and as the PostgreSQL connector
    requires the column's text output to be (``col::text COLLATE "C" = render_value(v)``), so
    that two values rendered apart select disjoint rows."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _as_text(value: Scalar) -> str:
    """A selector value as the widest class of values a server may take as equal to it, so that
    two values are called disjoint only when no column type makes them equal: PostgreSQL casts
    the text parameter to the column's type (``'05'`` is ``5`` for an integer, ``'yes'`` is
    true for a boolean, ``'A'`` may equal ``'a'`` under a case-insensitive collation or a uuid,
    ``'a '`` equals ``'a'`` for ``char(n)``). Errs toward overlap, never toward disjoint."""
    text = render_value(value).strip().lower()  # a function of render_value: equal stays equal
    if text.lstrip("+-").isdigit():
        text = str(int(text))
    return "true" if text in _TRUE else "false" if text in _FALSE else text
