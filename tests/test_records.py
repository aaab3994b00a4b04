"""The record-store protocol's pure parts: selectors, location URLs, the identifier digest."""

from __future__ import annotations

import hashlib

import pytest

from sundown.errors import InputError
from sundown.records import (
    RecordEntry,
    Selector,
    check_batch_size,
    check_listed,
    ids_digest,
    parse_location,
    parse_selector,
    summarize,
)


def _pg(raw: object) -> Selector:
    return parse_selector(raw, whole_word="whole_table", where=True, where_of="t")  # type: ignore[arg-type]


def test_selectors_parse_to_one_form() -> None:
    assert _pg({"whole_table": True}) == Selector(whole=True)
    assert _pg({"where": {"b": 1, "a": "x"}}) == Selector(where=(("a", "x"), ("b", 1)))
    assert _pg({"where": {"flag": True}}).where == (("flag", True),)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, "missing"),
        ({}, "missing"),
        ({"whole_table": "yes"}, "true or false"),
        ({"whole_table": True, "where": {"a": 1}}, "together"),
        ({"where": {}}, "non-empty"),
        ({"where": ["a"]}, "non-empty mapping"),
        ({"where": {"a": 1.5}}, "not float"),
        ({"where": {"a": None}}, "not NoneType"),
        ({"where": {"a": [1]}}, "not list"),
        ({"where": {"a": "x\x00"}}, "NUL"),
        ({"where": {"": 1}}, "invalid field name"),
        ({"whole_collection": True}, "unknown key"),
        ({"where": {"a": 1}, "limit": 3}, "unknown key"),
    ],
)
def test_bad_selectors_are_refused_naming_the_problem(raw: object, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        _pg(raw)


def test_a_prefix_store_takes_no_selector() -> None:
    assert parse_selector(None, whole_word=None, where=False, where_of="r") == Selector()
    with pytest.raises(InputError, match="unknown key"):
        parse_selector({"where": {"a": 1}}, whole_word=None, where=False, where_of="r")


def test_locations_split_and_refuse_passwords_without_echoing_them() -> None:
    loc = parse_location(
        "postgresql://app@db.example:6543/logs/public/my%20table",
        scheme="postgresql", default_port=5432, names=("database", "schema", "table"),
        auth_hint="PGPASSWORD",
    )  # fmt: skip
    assert (loc.host, loc.port, loc.user, loc.segments) == (
        "db.example", 6543, "app", ("logs", "public", "my table"),
    )  # fmt: skip
    names = ("database", "schema", "table")
    for bad in (
        "postgresql://h/db/public",
        "postgresql://h/db/public/t/extra",
        "postgresql://h/db//t",
        "postgresql:///db/public/t",
        "postgresql://h/db/public/t?sslmode=disable",
        "redis://h/db/public/t",
        "postgresql://h:99999/db/s/t",
    ):
        with pytest.raises(InputError):
            parse_location(bad, scheme="postgresql", default_port=1, names=names, auth_hint="X")
    with pytest.raises(InputError) as caught:
        parse_location("postgresql://u:pa55word@h/d/s/t", scheme="postgresql", default_port=1,
                       names=names, auth_hint="PGPASSWORD")  # fmt: skip
    assert "pa55word" not in str(caught.value)


def test_the_digest_is_over_sorted_length_prefixed_identifiers() -> None:
    expected = hashlib.sha256()
    for ident in (b"a", b"bc"):
        expected.update(len(ident).to_bytes(8, "big") + ident)
    assert ids_digest(["bc", "a"]) == "sha256:" + expected.hexdigest()
    assert ids_digest(["ab", "c"]) != ids_digest(["a", "bc"])  # no concatenation ambiguity
    non_utf8 = b"k:\xff".decode("utf-8", "surrogateescape")
    assert ids_digest([non_utf8]) != ids_digest(["k:\ufffd"])
    summary = summarize([RecordEntry("x", 3), RecordEntry("y", 4)])
    assert (summary.count, summary.estimated_bytes) == (2, 7)


def test_listed_entries_and_batch_sizes_are_checked() -> None:
    with pytest.raises(InputError, match="listed twice"):
        check_listed([RecordEntry("a"), RecordEntry("a")], "w")
    with pytest.raises(InputError, match="not a record entry"):
        check_listed(["a"], "w")  # type: ignore[list-item]
    for bad in (0, -1, 10_001, 1.5):
        with pytest.raises(InputError):
            check_batch_size(bad)  # type: ignore[arg-type]
