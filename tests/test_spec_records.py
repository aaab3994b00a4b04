"""Record-store locations in the system spec (docs/spec.md, "Record stores"): their URLs and
selectors are checked without the connector, and two selectors, of one spec or of two specs in
one folder, never overlap: same table and a ``where`` that is not provably disjoint, a whole
table or collection against anything there, Redis prefixes at ``:`` boundaries. No server is
needed: nothing here connects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sundown.errors import InputError
from sundown.records import _as_text, records_overlap, render_value
from sundown.spec.loader import load_spec_dir, parse_spec
from sundown.spec.overlap import check_no_overlap
from tests.spec_builder import spec_yaml

PG = "postgresql://db.internal:5432/app/public/interactions"
REDIS = "redis://cache.internal:6379/0"
CHROMA = "chroma://vectors.internal:8000/default_tenant/default_database"


def spec(name: str, *locations: Any, kek: str | None = None) -> str:
    return spec_yaml(
        name,
        assets={
            "weights": {"locations": [f"s3://acme-models/models/{name}"]},
            "logs": {"locations": list(locations)},
        },
        keys={"kek": kek or f"local://{name}-kek", "certificate": f"local://{name}-cert"},
        evidence="file:///tmp/evidence",
    )


def test_record_locations_load_beside_object_locations_and_enter_the_digest() -> None:
    s = parse_spec(
        spec(
            "support-bot",
            {"url": PG, "where": {"system": "support-bot"}},
            f"{REDIS}/support-bot",
            {"url": f"{CHROMA}/rag", "whole_collection": True},
        )
    )
    assert [r.url for r in s.locations()] == ["s3://acme-models/models/support-bot"]
    refs = s.record_locations()
    assert [r.field for r in refs] == [f"assets.logs.locations[{i}]" for i in range(3)]
    assert refs[0].location.describe() == f"{PG} [where system = 'support-bot']"
    assert refs[1].location.raw_selector() == {}
    assert refs[2].location.describe() == f"{CHROMA}/rag [whole collection]"
    other = parse_spec(spec("support-bot", {"url": PG, "where": {"system": "support-bot-v2"}}))
    assert other.digest() != s.digest()  # the selector is part of what was approved


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ({"url": PG}, "missing (give where: {field: value} or whole_table: true)"),
        ({"url": PG, "where": {"system": "a"}, "whole_table": True}, "whole_table and where"),
        ({"url": PG, "whole_collection": True}, "unknown key(s) ['whole_collection']"),
        ({"url": PG, "where": {}}, "where must be a non-empty mapping"),
        ({"url": PG, "where": {"score": 0.5}}, "where"),  # floats: equality is a trap
        ({"url": "postgresql://u:hunter2@db:5432/app/public/t", "whole_table": True},
         "must not hold a password"),
        ({"url": "postgresql://db:5432/app/t", "whole_table": True}, "DATABASE/SCHEMA/TABLE"),
        (f'"{REDIS}/support-bot:"', "without the trailing ':'"),  # quoted: YAML
        ("redis://cache:6379/zero/support-bot", "must be a number"),
        ("redis://cache:6379/00/support-bot", "without leading zeros"),  # db 0, spelt apart
        ("redis://cache:6379/01/support-bot", "without leading zeros"),
        ({"url": f"{REDIS}/sb", "where": {"a": "b"}}, "unknown key(s) ['where']"),
        ({"url": f"{CHROMA}/rag", "where": {"$or": "x"}}, "operator or a reserved key"),
        ({"url": f"{CHROMA}/rag", "where": {'"#document"': "x"}}, "operator or a reserved key"),
        ({"url": "mysql://db:3306/app/t"}, "mysql"),
    ],
)  # fmt: skip
def test_bad_record_locations_are_refused_naming_the_field(location: Any, problem: str) -> None:
    with pytest.raises(InputError) as err:
        parse_spec(spec("sys", location))
    msg = str(err.value)
    assert "assets.logs.locations[0]" in msg and problem in msg, msg
    assert "hunter2" not in msg


def test_record_locations_refuse_retention_and_archive() -> None:
    text = spec_yaml(
        "sys",
        assets={"logs": {"locations": [f"{REDIS}/sys"], "retention": {"delete_after_days": 3}}},
        evidence="file:///tmp/evidence",
    )
    with pytest.raises(InputError, match="cannot take retention rules"):
        parse_spec(text)


# -- overlap --------------------------------------------------------------------------------

W = {"where": {"system": "support-bot"}}


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ((PG, W), (PG, {"where": {"system": "support-bot-v2"}}), False),
        ((PG, W), (PG, W), True),
        ((PG, W), (PG, {"where": {"system": "SUPPORT-BOT"}}), True),  # a collation may fold case
        ((PG, {"where": {"tenant": 5}}), (PG, {"where": {"tenant": "05"}}), True),  # int column
        ((PG, {"where": {"flag": True}}), (PG, {"where": {"flag": "yes"}}), True),  # boolean
        ((PG, W), (PG, {"where": {"session": "s1"}}), True),  # different fields: a row may match
        ((PG, W), (PG, {"where": {"system": "support-bot", "session": "s1"}}), True),
        ((PG, {"where": {"system": "a", "session": "1"}}),
         (PG, {"where": {"system": "b", "session": "1"}}), False),
        ((PG, W), (PG, {"whole_table": True}), True),
        ((PG, W), (PG.replace("interactions", "feedback"), {"whole_table": True}), False),
        ((PG, W), (PG.replace(":5432", ":5433"), W), False),  # another server
        ((PG, W), (PG.replace("db.internal", "DB.Internal."), W), True),  # one name, two spellings
        ((PG, W), (PG.replace("db.internal", "db2.internal"), W), False),
        ((PG.replace("db.internal", "localhost"), W),
         (PG.replace("db.internal", "127.0.0.1"), W), True),  # loopback, however written
        ((PG.replace("db.internal", "127.0.0.2"), W),
         (PG.replace("db.internal", "[::1]"), W), True),
        ((PG.replace("db.internal", "[::ffff:127.0.0.1]"), W),
         (PG.replace("db.internal", "bot.localhost"), W), True),
        ((PG.replace("db.internal", "0.0.0.0"), W),
         (PG.replace("db.internal", "localhost"), W), True),
        ((PG.replace("db.internal", "[::ffff:10.0.0.5]"), W),
         (PG.replace("db.internal", "10.0.0.5"), W), True),
        ((PG.replace("db.internal", "10.0.0.5"), W),
         (PG.replace("db.internal", "10.0.0.6"), W), False),
        ((PG, W), (PG.replace("/app/", "/app2/"), W), False),  # another database
        ((f"{REDIS}/support-bot", None), (f"{REDIS}/support-bot-v2", None), False),
        ((f"{REDIS}/support-bot", None), (f"{REDIS}/support-botx", None), False),
        ((f"{REDIS}/support-bot", None), (f"{REDIS}/support-bot:eu", None), True),
        ((f"{REDIS}/support-bot", None), (f"{REDIS}/support-bot", None), True),
        ((f"{REDIS}/support-bot", None), ("redis://cache.internal:6379/1/support-bot", None),
         False),  # another database
        ((f"{CHROMA}/rag", {"whole_collection": True}), (f"{CHROMA}/rag", W), True),
        ((f"{CHROMA}/rag", W), (f"{CHROMA}/rag-v2", W), False),
        ((f"{CHROMA}/rag", W), (f"{CHROMA}/rag", {"where": {"system": "other"}}), False),
    ],
)  # fmt: skip
def test_selectors_overlap_unless_provably_disjoint(a: Any, b: Any, overlap: bool) -> None:
    assert (records_overlap(a, b) is not None) is overlap
    assert (records_overlap(b, a) is not None) is overlap


U = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (U, "{" + U + "}"), (U, U.upper()), ("2025-01-01", "20250101"), ("1", "1.0"),
        ("1", "5e0"), ("10.0.0.1", "10.0.0.1/32"), ("0x2A", 42), (True, "yes"), (1, "01"),
        (True, "true"), (5, "5"),
    ],
)  # fmt: skip
def test_values_called_disjoint_are_rendered_apart(x: Any, y: Any) -> None:
    """The overlap check calls two values disjoint only when the PostgreSQL connector's rendered
    texts differ (it also requires ``col::text = render_value(v)``); a spelling PostgreSQL writes
    otherwise is refused at inventory (conformance_records/test_postgres.py)."""
    if _as_text(x) != _as_text(y):
        assert render_value(x) != render_value(y)
    a = (PG, {"where": {"system": x}})
    b = (PG, {"where": {"system": y}})
    assert (records_overlap(a, b) is None) is (_as_text(x) != _as_text(y))


def test_overlapping_selectors_in_one_spec_are_refused() -> None:
    with pytest.raises(InputError) as err:
        parse_spec(
            spec("sys", {"url": PG, "where": {"system": "a"}}, {"url": PG, "whole_table": True})
        )
    msg = str(err.value)
    assert "assets.logs.locations[1]" in msg and "must not overlap" in msg
    # disjoint selectors on one table are fine
    s = parse_spec(
        spec("sys", {"url": PG, "where": {"system": "a"}}, {"url": PG, "where": {"system": "b"}})
    )
    assert len(s.record_locations()) == 2


def test_a_selector_over_another_systems_rows_is_refused_across_specs(tmp_path: Path) -> None:
    a = parse_spec(spec("support-bot", {"url": PG, **W}, f"{REDIS}/support-bot"))
    b = parse_spec(spec("support-bot-v2", {"url": PG, "where": {"system": "support-bot-v2"}},
                        f"{REDIS}/support-bot-v2"))  # fmt: skip
    check_no_overlap(a, [b])  # siblings at the boundary
    c = parse_spec(spec("analytics", {"url": PG, "whole_table": True}))
    with pytest.raises(InputError) as err:
        check_no_overlap(c, [a])
    msg = str(err.value)
    assert f"analytics: assets.logs.locations[0] {PG} [whole table] overlaps support-bot's" in msg
    assert "support-bot: assets.logs.locations[0]" in msg  # both directions are named
    # the same check over a folder of specs
    (tmp_path / "a.yaml").write_text(spec("support-bot", {"url": PG, **W}))
    (tmp_path / "b.yaml").write_text(spec("cache-sweeper", f"{REDIS}/support-bot:sessions"))
    assert len(load_spec_dir(tmp_path)) == 2
    (tmp_path / "c.yaml").write_text(spec("support-bot-cache", f"{REDIS}/support-bot"))
    with pytest.raises(InputError, match="share keys"):
        load_spec_dir(tmp_path)
