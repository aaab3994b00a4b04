"""Record-store locations in the plan file (sundown/record_plan.py) and on the certificate
(flows/_record_certify.py), without servers: the plan digest binds every identifier, the
summary and the findings; a plan read back that was edited, widened or does not add up is
refused; the certificate claims logical deletion only, and states every finding."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows._record_certify import RecordEvidence, location_records, manifest_entries
from flows.evidence import RecordCheck, RecordNotPurged, RecordsCompacted, RecordsPurged, Verified
from sundown.errors import InputError, IntegrityError, ScopeError
from sundown.plan import build_plan, check_plan_scope, iter_plan_records, read_plan
from sundown.record_plan import RecordInventory
from sundown.records import Finding, RecordEntry
from sundown.spec.loader import parse_spec
from tests.spec_builder import spec_yaml

PG = "postgresql://db.internal:5432/app/public/interactions"
REDIS = "redis://cache.internal:6379/0/support-bot"


def spec(pg_selector: dict[str, object] | None = None) -> str:
    return spec_yaml(
        "support-bot",
        assets={
            "weights": {"locations": ["file:///tmp/sb-weights"]},
            "logs": {"locations": [{"url": PG, **(pg_selector or {"where": {"system": "sb"}})}]},
            "caches": {"locations": [REDIS]},
        },
        evidence="file:///tmp/sb-evidence",
    )


WAL = Finding("wal_level", "replica", True, "the WAL holds the rows")
ODD = "support-bot:\udcff"  # a Redis key that is not UTF-8


def make(tmp_path: Path, text: str | None = None, **inv: RecordInventory) -> tuple[Path, str]:
    s = parse_spec(text or spec())
    records = [
        inv.get("pg", RecordInventory([RecordEntry("1", 10), RecordEntry("2", 20)], [WAL])),
        inv.get("redis", RecordInventory([RecordEntry(ODD, 5), RecordEntry("support-bot:a", 7)])),
    ]
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "plan.jsonl"
    plan = build_plan(s, {"file:///tmp/sb-weights": []}, path, key_facts={}, records=records)
    return path, plan.digest


def test_records_round_trip_and_bind_the_digest(tmp_path: Path) -> None:
    path, digest = make(tmp_path)
    plan = read_plan(path, digest)
    pg, redis = plan.records
    assert (pg.count, pg.estimated_bytes, pg.selector) == (2, 30, {"where": {"system": "sb"}})
    assert pg.findings[0]["setting"] == "wal_level"
    assert redis.subject == REDIS
    assert [e.id for e in iter_plan_records(path, digest, 1)] == [ODD, "support-bot:a"]
    check_plan_scope(path, digest, parse_spec(spec()))
    md = plan.to_markdown()
    assert f"`{PG} [where system = 'sb']`" in md and "the WAL holds the rows" in md
    # every identifier, size and finding is in the digest
    for change in (
        {"pg": RecordInventory([RecordEntry("1", 10), RecordEntry("3", 20)], [WAL])},
        {"pg": RecordInventory([RecordEntry("1", 10), RecordEntry("2", 21)], [WAL])},
        {"pg": RecordInventory([RecordEntry("1", 10), RecordEntry("2", 20)], [])},
    ):
        assert make(tmp_path / "x", **change)[1] != digest  # type: ignore[arg-type]


def test_an_untrusted_finding_cannot_break_the_plan_table(tmp_path: Path) -> None:
    evil = Finding("replica", "a|b\n| x |", True, "<script>|")
    path, digest = make(tmp_path, pg=RecordInventory([RecordEntry("1", 1)], [evil]))
    row = next(r for r in read_plan(path, digest).to_markdown().splitlines() if "replica" in r)
    assert row.count(" | ") == 4 and "<script>" not in row


def test_an_inventory_that_is_missing_or_lists_twice_is_refused(tmp_path: Path) -> None:
    s = parse_spec(spec())
    with pytest.raises(InputError, match="every location must be listed"):
        build_plan(s, {"file:///tmp/sb-weights": []}, tmp_path / "p", key_facts={})
    twice = RecordInventory([RecordEntry("1", 1), RecordEntry("1", 1)])
    with pytest.raises(InputError, match="listed twice"):
        make(tmp_path, pg=twice)


def test_an_edited_record_line_is_refused(tmp_path: Path) -> None:
    path, digest = make(tmp_path)
    text = path.read_text().replace('"id":"2"', '"id":"99"')
    path.write_text(text)
    with pytest.raises(IntegrityError):
        read_plan(path, digest)
    with pytest.raises(IntegrityError):
        iter_plan_records(path, digest, 0)


def test_a_record_summary_that_does_not_add_up_is_refused(tmp_path: Path) -> None:
    """A plan rewritten with its digest recomputed (the approval would name it) still has to
    add up: the reviewer saw the summary, the purge gets the lines."""
    path, _ = make(tmp_path)
    lines = path.read_text().splitlines()
    extra = json.dumps({"t": "record", "rec": 0, "id": "3", "size": 1}, separators=(",", ":"))
    at = next(i for i, line in enumerate(lines) if '"id":"2"' in line)
    lines.insert(at + 1, extra)
    path.write_text("\n".join(lines) + "\n")
    digest = read_plan(path).digest
    with pytest.raises(IntegrityError, match="do not add up"):
        iter_plan_records(path, digest, 0)


def test_a_plan_with_a_wider_selector_is_not_the_specs(tmp_path: Path) -> None:
    path, digest = make(tmp_path, spec({"whole_table": True}))
    with pytest.raises(ScopeError, match=r"is not the spec's assets\.logs\.locations"):
        check_plan_scope(path, digest, parse_spec(spec()))


def test_a_plan_whose_selector_is_equal_only_in_python_is_not_the_specs(tmp_path: Path) -> None:
    """{"system": True} == {"system": 1} in Python; the plan must carry the spec's very value."""
    path, digest = make(tmp_path, spec({"where": {"system": True}}))
    with pytest.raises(ScopeError, match=r"is not the spec's assets\.logs\.locations"):
        check_plan_scope(path, digest, parse_spec(spec({"where": {"system": 1}})))


# -- the certificate's record locations ------------------------------------------------------

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def certify(
    tmp_path: Path, purged: RecordsPurged, check: RecordCheck
) -> tuple[list, list, bool, list]:
    path, digest = make(tmp_path)
    plan = read_plan(path, digest)
    plan.records = plan.records[:1]

    def entries(i: int) -> list[RecordEntry]:
        return iter_plan_records(path, digest, i)

    ev = [RecordEvidence(purged, RecordsCompacted(index=0))]
    verified = Verified(locations=[], records=[check])
    records, exceptions, failed = location_records(plan, ev, entries, verified)
    return records, exceptions, failed, list(manifest_entries(plan, ev, entries))


def _check(passed: bool, in_scope: int, findings: list[Finding]) -> RecordCheck:
    return RecordCheck(
        index=0, subject=f"{PG} [where system = 'sb']", passed=passed, in_scope=in_scope,
        listed_present=in_scope, gone=False, details="re-queried", verified_at=NOW,
        findings=[f.to_dict() for f in findings],
    )  # fmt: skip


def test_a_clean_purge_is_logical_deletion_with_its_findings_as_exceptions(
    tmp_path: Path,
) -> None:
    purged = RecordsPurged(index=0, subject="x", deleted=2, requests=1, finished_at=NOW)
    (record,), exceptions, failed, manifest = certify(tmp_path, purged, _check(True, 0, [WAL]))
    assert not failed
    assert record.purged.versions == record.logically_deleted.versions == 2
    assert record.purged.bytes == 30 and record.ce_covered.versions == 0
    assert [c.category.name for c in record.sanitization] == ["LOGICAL_DELETION"]
    assert record.validation.result.value == "accepted"
    assert [(e.kind, e.subject) for e in exceptions] == [("deleted data retained", record.uri)]
    assert [m.uri for m in manifest] == [f"{PG}#1", f"{PG}#2"]


def test_a_refused_or_partial_purge_claims_only_what_was_deleted(tmp_path: Path) -> None:
    refused = RecordsPurged(index=0, subject="x", refused="1 row written since", finished_at=NOW)
    (record,), exceptions, failed, manifest = certify(tmp_path, refused, _check(False, 3, []))
    assert failed and manifest == [] and record.sanitization == []
    assert record.purged.versions == 0 and record.remaining == 3
    assert record.validation.result.value == "rejected"
    assert {e.kind for e in exceptions} == {"purge refused", "verification failed"}

    partial = RecordsPurged(
        index=0, subject="x", deleted=1, finished_at=NOW,
        not_purged=[RecordNotPurged(id="2", code="not attempted", message="stopped")],
        stopped="a row was written into the range",
    )  # fmt: skip
    (record,), exceptions, failed, manifest = certify(tmp_path / "p", partial, _check(False, 1, []))
    assert failed and [m.uri for m in manifest] == [f"{PG}#1"]
    assert record.purged.versions == 1 and record.purged.bytes == 10
    assert "purge failed" in {e.kind for e in exceptions}


def test_a_purge_without_a_journal_record_is_not_certified(tmp_path: Path) -> None:
    path, digest = make(tmp_path)
    plan = read_plan(path, digest)
    with pytest.raises(IntegrityError, match="no journal record"):
        list(
            manifest_entries(
                plan,
                [RecordEvidence(None, None)] * 2,
                lambda i: iter_plan_records(path, digest, i),
            )
        )
