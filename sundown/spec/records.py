"""Record-store locations in the system spec (docs/spec.md, "Record stores"): rows of a
PostgreSQL table, keys under a Redis prefix, documents of a Chroma collection, each with the
selector that scopes it. Checked by the same rules the connector applies
(:func:`sundown.records.parse_record_location`), without importing the connector or its SDK;
two selectors of one spec, or of two specs in one folder, must be provably disjoint
(:func:`sundown.records.records_overlap`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Protocol, TypeVar

from pydantic import Field, model_validator

from sundown.errors import InputError
from sundown.records import Scalar, Selector, is_record_url, parse_record_location, records_overlap
from sundown.spec.values import SpecModel

WhereValue = Annotated[str, Field(max_length=1000)] | int | bool


class RecordLocation(SpecModel):
    """One record-store location of an asset class: ``{url: postgresql://HOST:PORT/DB/SCHEMA/
    TABLE, where: {column: value}}`` or ``whole_table: true``; ``redis://HOST:PORT/DB/PREFIX``
    (every key ``PREFIX:*``; a plain string in YAML); ``chroma://HOST:PORT/TENANT/DATABASE/
    COLLECTION`` with ``where:`` or ``whole_collection: true``; ``mlflow://HOST:PORT/models/NAME``
    or ``/experiments/NAME`` (``whole_experiment: true``); ``sagemaker://REGION/NAME[-*]``;
    ``aws-logs://REGION/LOG_GROUP_PREFIX`` (docs/ml-platforms.md)."""

    url: Annotated[str, Field(max_length=2000)] = Field(
        description="postgresql://..., redis://..., chroma://... (no password)"
    )
    where: dict[Annotated[str, Field(min_length=1, max_length=200)], WhereValue] | None = Field(
        default=None, description="Equality on each field, all together (AND)."
    )
    whole_table: bool = Field(default=False, description="postgresql://: drop the whole table.")
    whole_collection: bool = Field(
        default=False, description="chroma://: delete the whole collection."
    )
    whole_experiment: bool = Field(
        default=False, description="mlflow://.../experiments/NAME: delete the experiment too."
    )

    @model_validator(mode="after")
    def _checked(self) -> RecordLocation:
        try:
            parse_record_location(self.url, self.raw_selector())
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return self

    def raw_selector(self) -> dict[str, object]:
        """The selector as the connector takes it (``{"where": {...}}``, ``{"whole_table":
        True}``, or ``{}``). A ``whole_*`` key the location's scheme does not take is passed on,
        so that the connector's parser refuses it by name."""
        raw: dict[str, object] = {}
        if self.where is not None:
            raw["where"] = dict(self.where)
        if self.whole_table:
            raw["whole_table"] = True
        if self.whole_collection:
            raw["whole_collection"] = True
        if self.whole_experiment:
            raw["whole_experiment"] = True
        return raw

    @property
    def selector(self) -> Selector:
        return parse_record_location(self.url, self.raw_selector())[2]

    def describe(self) -> str:
        """The location as a certificate names it: the URL and, where one is given, the
        selector (``postgresql://.../logs [where system = 'support-bot']``)."""
        shape, _, sel = parse_record_location(self.url, self.raw_selector())
        if sel.whole:
            return f"{self.url} [{(shape.whole_word or 'whole').replace('_', ' ')}]"
        if sel.where:
            clauses = " and ".join(f"{k} = {_lit(v)}" for k, v in sel.where)
            return f"{self.url} [where {clauses}]"
        return self.url


def _lit(value: Scalar) -> str:
    return repr(value) if isinstance(value, str) else str(value).lower()


def is_record_location(value: Any) -> bool:
    """For the spec's location union: a mapping or string whose URL is a record-store URL."""
    url = value.get("url") if isinstance(value, dict) else value
    if isinstance(value, RecordLocation):
        return True
    return is_record_url(url)


class _HasURL(Protocol):
    @property
    def url(self) -> str: ...


L = TypeVar("L", bound=_HasURL)


@dataclass(frozen=True)
class Declared(Generic[L]):
    """A location of the spec (object store or record store) with where it is declared."""

    asset_class: str
    index: int
    location: L

    @property
    def url(self) -> str:
        return self.location.url

    @property
    def field(self) -> str:
        return f"assets.{self.asset_class}.locations[{self.index}]"


@dataclass(frozen=True)
class RecordLocationRef(Declared[RecordLocation]):
    """A record-store location of the spec with where it is declared."""

    @property
    def key(self) -> tuple[str, dict[str, object]]:
        return self.location.url, self.location.raw_selector()


def overlaps_within(refs: Sequence[RecordLocationRef]) -> list[tuple[str, str]]:
    """(field, message) for every two record locations of one spec that may share a record."""
    out: list[tuple[str, str]] = []
    for i, a in enumerate(refs):
        for b in refs[i + 1 :]:
            note = records_overlap(a.key, b.key)
            if note is not None:
                out.append(
                    (
                        b.field,
                        f"{b.location.describe()} overlaps {a.location.describe()} ({a.field})"
                        f"{note}: locations of one spec must not overlap",
                    )
                )
    return out


def overlaps_across(
    a_name: str, a: Iterable[RecordLocationRef], b_name: str, b: Sequence[RecordLocationRef]
) -> list[str]:
    """Ways in which retiring system ``a`` would delete records of system ``b``."""
    out: list[str] = []
    for ra in a:
        for rb in b:
            note = records_overlap(ra.key, rb.key)
            if note is not None:
                out.append(
                    f"{a_name}: {ra.field} {ra.location.describe()} overlaps {b_name}'s "
                    f"{rb.field} {rb.location.describe()}{note} (purging one would purge the "
                    "other)"
                )
    return out
