"""Record-store locations in a retirement plan (docs/plan.md, "Record stores").

Each record location of the spec is written into the plan file after the object-store
locations, as three kinds of line, so the plan digest binds them like everything else:

- ``{"t":"records","rec":I,"url":...,"field":...,"asset_class":...,"classification":...,
  "selector":{...}}``: the location and its selector;
- ``{"t":"record","rec":I,"id":...,"size":N}``: one record the selector matched at inventory
  (a primary key, a Redis key, a Chroma id), in listing order: exactly these are purged;
- ``{"t":"records_end","rec":I,"count":N,"estimated_bytes":N,"ids_digest":"sha256:...",
  "findings":[...]}``: the summary and the settings that keep deleted data, as read then.

No I/O here: the caller lists (:mod:`flows._records`), this module writes and reads back.
A plan read back is untrusted: :func:`scope_problems` compares its record locations with the
spec's, and the connector's purge refuses a listed record outside its selector (ScopeError).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sundown.errors import InputError, IntegrityError
from sundown.records import Finding, RecordEntry, ids_digest
from sundown.spec.model import SystemSpec
from sundown.spec.records import RecordLocation, RecordLocationRef

RECORD_LINES = ("records", "record", "records_end")


@dataclass
class RecordInventory:
    """What the caller listed at one record location: every record in scope (iterated once,
    while the plan is written) and the findings (:meth:`sundown.records.RecordStore.findings`)."""

    entries: Iterable[RecordEntry]
    findings: Sequence[Finding] = field(default_factory=list)


class RecordLocationPlan(BaseModel):
    """One record-store location of a plan: what inventory found and what keeps deleted
    data. Every record found is purged (record stores have no holds)."""

    model_config = ConfigDict(extra="forbid")

    index: int
    url: str
    field: str
    asset_class: str
    classification: str
    selector: dict[str, Any] = Field(default_factory=dict)
    count: int = 0
    estimated_bytes: int = 0
    ids_digest: str = ""
    findings: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def subject(self) -> str:
        """The location as the certificate and the journal name it: URL and selector."""
        try:
            return RecordLocation(url=self.url, **self.selector).describe()
        except (TypeError, ValueError):  # a plan read back is untrusted: never trusted to parse
            return f"{self.url[:500]} {self.selector!r:.300}"


# An identifier that is not valid UTF-8 (a Redis key; docs/records.md) travels through the
# connectors as a str with surrogate escapes, which JSON cannot carry: it is written as
# {"b64": ...} of its bytes instead.
def _id_json(ident: str) -> str | dict[str, str]:
    try:
        ident.encode("utf-8")
        return ident
    except UnicodeEncodeError:
        raw = ident.encode("utf-8", "surrogateescape")
        return {"b64": base64.b64encode(raw).decode("ascii")}


def _id_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        return base64.b64decode(value["b64"], validate=True).decode("utf-8", "surrogateescape")
    raise ValueError("not a record identifier")


def write_records(
    spec: SystemSpec,
    inventories: Sequence[RecordInventory],
    write: Callable[[Mapping[str, Any]], None],
) -> list[RecordLocationPlan]:
    """Write the record lines of every record location of ``spec``, in spec order;
    ``inventories[i]`` is the listing of ``spec.record_locations()[i]``."""
    refs = spec.record_locations()
    if len(inventories) != len(refs):
        raise InputError(
            f"retirement plan for {spec.name!r}: {len(inventories)} record-store inventories for "
            f"{len(refs)} record-store locations (every location must be listed)"
        )
    out: list[RecordLocationPlan] = []
    for i, (ref, inv) in enumerate(zip(refs, inventories, strict=True)):
        out.append(_write_one(spec, ref, i, inv, write))
    return out


def _write_one(
    spec: SystemSpec,
    ref: RecordLocationRef,
    index: int,
    inv: RecordInventory,
    write: Callable[[Mapping[str, Any]], None],
) -> RecordLocationPlan:
    loc = RecordLocationPlan(
        index=index,
        url=ref.url,
        field=ref.field,
        asset_class=ref.asset_class,
        classification=spec.classification_of(ref.asset_class),
        selector=ref.location.raw_selector(),
    )
    write({"t": "records", "rec": index, **loc.model_dump(include=_HEADER)})
    seen: set[str] = set()
    total = 0
    for e in inv.entries:
        if not isinstance(e, RecordEntry) or not isinstance(e.id, str):
            raise InputError(f"inventory of {ref.url}: expected RecordEntry, got {e!r:.100}")
        if not isinstance(e.size, int) or e.size < 0:
            raise InputError(f"inventory of {ref.url}: {e.id!r:.100} has an invalid size")
        if e.id in seen:
            raise InputError(f"inventory of {ref.url}: {e.id!r:.100} listed twice")
        seen.add(e.id)
        total += e.size
        write({"t": "record", "rec": index, "id": _id_json(e.id), "size": e.size})
    loc.count, loc.estimated_bytes, loc.ids_digest = len(seen), total, ids_digest(seen)
    loc.findings = [f.to_dict() for f in inv.findings]
    write({"t": "records_end", "rec": index, **loc.model_dump(include=_END)})
    return loc


_HEADER = {"url", "field", "asset_class", "classification", "selector"}
_END = {"count", "estimated_bytes", "ids_digest", "findings"}


def read_line(records: list[RecordLocationPlan], obj: Mapping[str, Any]) -> None:
    """Take one record line of a plan file being read back into ``records``."""
    t, index = obj["t"], obj["rec"]
    if t == "records":
        if index != len(records):
            raise IntegrityError(f"record location {index} is out of order")
        records.append(
            RecordLocationPlan(index=index, **{k: v for k, v in obj.items() if k in _HEADER})
        )
    elif t == "records_end":
        loc = records[index]
        for k in _END:
            setattr(loc, k, obj[k])
    # "record" lines: read by iter_records


def iter_records(lines: Iterator[Mapping[str, Any]], index: int) -> Iterator[RecordEntry]:
    """The records of record location ``index`` from a plan file's lines (the caller checks
    the digest as it reads: :func:`sundown.plan.iter_plan_records`)."""
    for obj in lines:
        if obj["t"] == "record" and obj["rec"] == index:
            size = obj["size"]
            if not isinstance(size, int) or size < 0:
                raise ValueError("invalid size")
            yield RecordEntry(_id_of(obj["id"]), size)


def check_counts(loc: RecordLocationPlan, entries: Sequence[RecordEntry]) -> None:
    """IntegrityError when a record location's lines do not add up to its summary."""
    ids = [e.id for e in entries]
    if (
        len(ids) != loc.count
        or len(set(ids)) != len(ids)
        or ids_digest(ids) != loc.ids_digest
        or sum(e.size for e in entries) != loc.estimated_bytes
    ):
        raise IntegrityError(
            f"plan: the records listed for {loc.subject} do not add up to its summary "
            f"({loc.count} records, {loc.ids_digest})"
        )


def scope_problems(records: Sequence[RecordLocationPlan], spec: SystemSpec) -> list[str]:
    """How a plan's record locations differ from the spec's (URL, selector, asset class,
    classification, order): a plan read back must not widen or move a selector."""
    refs = spec.record_locations()
    out: list[str] = []
    for i, loc in enumerate(records):
        ref = refs[i] if i < len(refs) else None
        if loc.index != i:
            out.append(f"its record location {i} is numbered {loc.index}")
            continue
        if ref is None:
            out.append(f"its record location {i} {loc.subject[:300]} is not in the spec")
            continue
        expected = (
            ref.url, ref.location.raw_selector(), ref.asset_class,
            spec.classification_of(ref.asset_class), ref.field,
        )  # fmt: skip
        found = (loc.url, loc.selector, loc.asset_class, loc.classification, loc.field)
        # type-strict: {"k": 1} == {"k": True} in Python, not in canonical JSON
        if _strict(found) != _strict(expected):
            out.append(
                f"its record location {i} {loc.subject[:300]} is not the spec's "
                f"{ref.field} {ref.location.describe()}"
            )
    if len(records) < len(refs):
        missing = ", ".join(r.location.describe() for r in refs[len(records) :])
        out.append(f"it leaves out the spec's record location(s) {missing}")
    return out


def _strict(value: object) -> str:
    """``value`` as canonical JSON, so that 1, 1.0 and True (equal in Python) differ."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def markdown(records: Sequence[RecordLocationPlan], cell: Callable[[str], str]) -> list[str]:
    """The plan's record-store table and the findings, for ``Plan.to_markdown``."""
    if not records:
        return []
    rows = [
        "",
        "| Record location | Class | Records | Estimated bytes | Ids digest |",
        "|---|---|---:|---:|---|",
    ]
    for loc in records:
        rows.append(
            f"| `{cell(loc.subject)}` | {loc.asset_class} | {loc.count} | "
            f"{loc.estimated_bytes:,} | `{loc.ids_digest}` |"
        )
    rows += ["", "| Record location | Setting | Value | Keeps deleted data | Statement |",
             "|---|---|---|---|---|"]  # fmt: skip
    for loc in records:
        for f in loc.findings:
            keeps = {True: "yes", False: "no", None: "unknown"}.get(f.get("keeps_deleted_data"))
            rows.append(
                f"| `{cell(loc.subject)}` | {cell(str(f.get('setting')))} | "
                f"{cell(str(f.get('value') or '-'))} | {keeps} | "
                f"{cell(str(f.get('statement')))} |"
            )
    return rows
