"""Plans: decisions (archive, purge, held, keep), streamed digest, reading back, approval."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sundown.errors import InputError, IntegrityError, ScopeError
from sundown.keys import KeyInfo
from sundown.plan import (
    Approval,
    build_plan,
    check_approval,
    check_plan_approval,
    hold_decision,
    iter_plan_entries,
    plan_locations,
    read_plan,
    retention_decision,
)
from sundown.spec.loader import parse_spec
from sundown.spec.model import CredentialRef, RetentionRule, SystemSpec
from sundown.store import Entry, EntryKind, HoldState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OLD = datetime(2025, 1, 1, tzinfo=UTC)

SPEC = """\
name: sys-a
owner: team@example.com
classification: internal
assets:
  weights:
    on_retirement: archive
    locations: [s3://acme-models/sys-a]
  logs:
    locations: [gs://acme-logs/sys-a]
    retention: {delete_after_days: 30}
  training_data:
    locations: [az://data/sys-a]
    retention: {archive_after_days: 90, delete_after_days: 365}
archive: {target: s3://acme-archive/sys-a, key: vault://transit/archive}
keys:
  kek: vault://transit/sys-a
  certificate: vault://transit/certs
credentials:
  vault_token_accessors: [abcdefgh1234]
  aws_access_keys: [{user: sys-a-ci, access_key_ids: [AKIAIOSFODNN7EXAMPLE]}]
approval: {roles: [security-officer], max_age_hours: 24}
"""
W, L, T = "s3://acme-models/sys-a", "gs://acme-logs/sys-a", "az://data/sys-a"


def spec(extra: str = "") -> SystemSpec:
    return parse_spec(SPEC + extra)


def entry(key: str, **kw: object) -> Entry:
    base: dict[str, object] = {
        "key": key,
        "version_id": None,
        "kind": EntryKind.OBJECT,
        "size": 10,
        "modified": OLD,
        "is_latest": True,
    }
    base.update(kw)
    return Entry(**base)  # type: ignore[arg-type]


def weights() -> list[Entry]:
    return [
        entry("model.bin", version_id="v2", size=1000),
        entry(
            "model.bin",
            version_id="v1",
            kind=EntryKind.VERSION,
            size=900,
            is_latest=False,
        ),
        entry("old.bin", version_id="dm1", kind=EntryKind.DELETE_MARKER, size=0),
        entry("upload.bin", version_id="up1", kind=EntryKind.MULTIPART_UPLOAD, size=5),
        entry("held.bin", version_id="h1", hold=HoldState(legal_hold=True)),
    ]


def inventories(w: list[Entry] | None = None) -> dict[str, list[Entry]]:
    return {
        W: weights() if w is None else w,
        L: [entry("2025/01/app.log")],
        T: [entry("train/part-0.parquet", size=77)],
    }


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


# -- building --------------------------------------------------------------------------------


def test_retirement_plan_archives_purges_and_holds(tmp_path: Path) -> None:
    out = tmp_path / "plan.jsonl"
    plan = build_plan(
        spec(),
        inventories(),
        out,
        key_facts={
            "vault://transit/sys-a": KeyInfo("vault://transit/sys-a", "kek", "aes", 3, 1, (1, 2, 3))
        },
        credential_facts={CredentialRef("vault_token", "abcdefgh1234"): False},
        now=NOW,
    )
    assert plan.digest == "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest()
    w = plan.locations[0]
    assert (w.url, w.archive_to) == (W, "s3://acme-archive/sys-a")
    assert w.found["object"].count == 2 and w.found["version"].count == 1
    assert (w.archive.count, w.archive.bytes) == (2, 1010)  # current objects only, held one too
    assert (w.purge.count, w.held.count) == (4, 1)
    assert plan.totals()["purge"].count == 6 and plan.totals()["held"].count == 1
    recs = [r for r in lines(out) if r["t"] == "entry"]
    by_key = {(r["key"], r["version_id"]): r for r in recs}
    assert by_key[("model.bin", "v2")]["archive_key"] == "weights/s3/acme-models/sys-a/model.bin"
    assert by_key[("model.bin", "v1")]["archive_key"] is None
    assert by_key[("held.bin", "h1")]["disposition"] == "held"
    assert by_key[("held.bin", "h1")]["reason"] == "legal hold"
    assert by_key[("old.bin", "dm1")]["disposition"] == "purge"
    assert [(k.uri, k.state, k.versions) for k in plan.keys] == [
        ("vault://transit/sys-a", "present", [1, 2, 3])
    ]
    assert [(c.kind, c.state) for c in plan.credentials] == [
        ("vault_token", "absent"),
        ("aws_access_key", "unknown"),
    ]
    md = plan.to_markdown()
    assert plan.digest in md and "| `s3://acme-models/sys-a` | weights |" in md


def test_digest_is_stable_across_runs_and_times(tmp_path: Path) -> None:
    a = build_plan(spec(), inventories(), tmp_path / "a.jsonl", now=NOW)
    b = build_plan(spec(), inventories(), tmp_path / "b.jsonl", now=NOW + timedelta(days=3))
    assert a.digest == b.digest
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


CHANGES = {
    "key": {"key": "model2.bin"},
    "version_id": {"version_id": "v3"},
    "size": {"size": 1001},
    "modified": {"modified": OLD + timedelta(microseconds=1)},
    "kind": {"kind": EntryKind.VERSION},
    "is_latest": {"is_latest": False},
    "storage_class": {"storage_class": "GLACIER"},
    "hold": {"hold": HoldState(retention_mode="COMPLIANCE", retain_until=NOW + timedelta(1))},
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_digest_changes_when_any_entry_field_changes(tmp_path: Path, change: dict) -> None:
    base = build_plan(spec(), inventories(), tmp_path / "a.jsonl", now=NOW).digest
    w = weights()
    w[0] = dataclasses.replace(w[0], **change)
    assert build_plan(spec(), inventories(w), tmp_path / "b.jsonl", now=NOW).digest != base


def test_digest_changes_when_entries_are_added_removed_or_facts_change(tmp_path: Path) -> None:
    base = build_plan(spec(), inventories(), tmp_path / "0.jsonl", now=NOW).digest
    more = [*weights(), entry("extra.bin")]
    assert build_plan(spec(), inventories(more), tmp_path / "1.jsonl", now=NOW).digest != base
    assert (
        build_plan(spec(), inventories(weights()[1:]), tmp_path / "2.jsonl", now=NOW).digest != base
    )
    facts = {"vault://transit/sys-a": None}
    assert (
        build_plan(spec(), inventories(), tmp_path / "3.jsonl", key_facts=facts, now=NOW).digest
        != base
    )
    other = spec("description: changed\n")
    assert build_plan(other, inventories(), tmp_path / "4.jsonl", now=NOW).digest != base


def _peak_memory(tmp_path: Path, n: int) -> int:
    def many() -> Iterator[Entry]:
        for i in range(n):
            yield Entry(f"shard/{i:07d}.bin", None, EntryKind.OBJECT, 4096, OLD, True)

    inv: dict[str, Iterator[Entry] | list[Entry]] = {W: many(), L: [], T: []}
    tracemalloc.start()
    try:
        plan = build_plan(spec(), inv, tmp_path / f"big-{n}.jsonl", now=NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert plan.locations[0].purge.count == n
    assert plan.locations[0].purge.bytes == n * 4096
    return peak


def test_plan_file_is_streamed_memory_does_not_grow(tmp_path: Path) -> None:
    small, large = _peak_memory(tmp_path, 4_000), _peak_memory(tmp_path, 40_000)
    # Ten times the entries: the peak must stay flat (a list of 40k entries alone is ~15 MiB).
    assert large < small * 1.5 + 256 * 1024, f"peak {small} B for 4k entries, {large} B for 40k"
    assert large < 4 * 1024 * 1024


def test_missing_and_undeclared_inventories_are_refused(tmp_path: Path) -> None:
    inv = inventories()
    del inv[L]
    with pytest.raises(InputError, match="no inventory for gs://acme-logs/sys-a"):
        build_plan(spec(), inv, tmp_path / "p.jsonl", now=NOW)
    inv = inventories()
    inv["s3://acme-models/sys-ab"] = []
    with pytest.raises(ScopeError, match="not a location of system 'sys-a'"):
        build_plan(spec(), inv, tmp_path / "p.jsonl", now=NOW)
    assert list(tmp_path.iterdir()) == []


def test_a_nul_key_from_inventory_stops_the_plan_and_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ScopeError, match="stopping before planning"):
        build_plan(
            spec(), inventories([entry("ok"), entry("a\x00b")]), tmp_path / "p.jsonl", now=NOW
        )
    assert list(tmp_path.iterdir()) == []


def test_odd_keys_from_inventory_are_planned_never_a_stall(tmp_path: Path) -> None:
    """Folder markers (``""`` is ``<root>/``, ``dir/``), empty segments and a leading ``/``
    (``<root>//x``) are purged by exact name and archived under the odd-keys namespace; a key
    with a ``.``/``..`` segment is held, named, never archived (docs/stores.md)."""
    keys = ["ok", "", "dir/", "a//b", "/abs", "../other/x", "a/./b"]
    plan = build_plan(spec(), inventories([entry(k) for k in keys]), tmp_path / "p.jsonl", now=NOW)
    by_key = {e.key: e for e in iter_plan_entries(plan.path, plan.digest, location=0)}
    assert {k for k, e in by_key.items() if e.disposition == "purge"} == {
        "ok",
        "",
        "dir/",
        "a//b",
        "/abs",
    }
    for dotted in ("../other/x", "a/./b"):
        held = by_key[dotted]
        assert held.disposition == "held" and held.archive_key is None
        assert held.reason is not None and repr(dotted) in held.reason
    assert by_key["ok"].archive_key == "weights/s3/acme-models/sys-a/ok"
    odd = {k: by_key[k].archive_key for k in ("", "dir/", "a//b", "/abs")}
    assert odd == {
        "": "weights/s3~odd-keys/acme-models/sys-a/%",
        "dir/": "weights/s3~odd-keys/acme-models/sys-a/dir/%",
        "a//b": "weights/s3~odd-keys/acme-models/sys-a/a/%/b",
        "/abs": "weights/s3~odd-keys/acme-models/sys-a/%/abs",
    }


# -- holds -----------------------------------------------------------------------------------

LATER, EARLIER = NOW + timedelta(days=10), NOW - timedelta(days=1)


@pytest.mark.parametrize(
    ("hold", "bypass_allowed", "reason", "bypass"),
    [
        (HoldState(), False, None, False),
        (HoldState(legal_hold=True), True, "legal hold", False),
        (HoldState(event_based_hold=True), False, "event-based hold", False),
        (HoldState(temporary_hold=True), False, "temporary hold", False),
        (
            HoldState(retention_mode="COMPLIANCE", retain_until=LATER),
            True,
            "compliance retention until 2026-03-11T12:00:00.000000Z",
            False,
        ),
        (HoldState(retention_mode="COMPLIANCE", retain_until=EARLIER), False, None, False),
        (HoldState(retention_mode="Locked", retain_until=LATER), True, "locked retention", False),
        (
            HoldState(retention_mode="GOVERNANCE", retain_until=LATER),
            False,
            "does not allow governance bypass",
            False,
        ),
        (HoldState(retention_mode="GOVERNANCE", retain_until=LATER), True, None, True),
        (HoldState(retention_mode="Unlocked", retain_until=LATER), True, None, True),
        (HoldState(retention_mode="GOVERNANCE"), False, "no end date reported", False),
        (
            HoldState(retention_mode="WEIRD", retain_until=LATER),
            True,
            "unknown retention mode 'WEIRD'",
            False,
        ),
        (
            HoldState(legal_hold=True, retention_mode="GOVERNANCE", retain_until=LATER),
            True,
            "legal hold",
            False,
        ),
    ],
)
def test_hold_decision(
    hold: HoldState, bypass_allowed: bool, reason: str | None, bypass: bool
) -> None:
    got_reason, got_bypass = hold_decision(hold, NOW, allow_governance_bypass=bypass_allowed)
    if reason is None:
        assert got_reason is None
    else:
        assert got_reason is not None and reason in got_reason
    assert got_bypass is bypass


def test_governance_bypass_follows_the_spec(tmp_path: Path) -> None:
    gov = HoldState(retention_mode="GOVERNANCE", retain_until=LATER)
    inv = inventories([entry("g.bin", hold=gov)])
    held = build_plan(spec(), inv, tmp_path / "a.jsonl", now=NOW)
    assert (held.locations[0].held.count, held.locations[0].purge.count) == (1, 0)
    allowed = build_plan(
        spec("allow_governance_bypass: true\n"),
        inventories([entry("g.bin", hold=gov)]),
        tmp_path / "b.jsonl",
        now=NOW,
    )
    loc = allowed.locations[0]
    assert (loc.held.count, loc.purge.count, loc.bypass_governance.count) == (0, 1, 1)
    [e] = list(iter_plan_entries(tmp_path / "b.jsonl", allowed.digest, location=0))
    assert e.bypass_governance and e.disposition == "purge"


# -- retention -------------------------------------------------------------------------------


def test_retention_decision_boundaries() -> None:
    rule = RetentionRule(archive_after_days=90, delete_after_days=365)
    at = NOW - timedelta(days=90)
    assert retention_decision(rule, entry("a", modified=at), NOW) == (True, False)
    assert retention_decision(rule, entry("a", modified=at + timedelta(seconds=1)), NOW) == (
        False,
        False,
    )
    year = NOW - timedelta(days=365)
    assert retention_decision(rule, entry("a", modified=year), NOW) == (True, True)
    old_version = entry("a", modified=year, kind=EntryKind.VERSION)
    assert retention_decision(rule, old_version, NOW) == (False, True)
    naive = entry("a", modified=year.replace(tzinfo=None))
    assert retention_decision(rule, naive, NOW) == (True, True)


def test_retention_plan_selects_by_age_and_skips_classes_without_rules(tmp_path: Path) -> None:
    s = spec()
    assert [r.url for r in plan_locations(s, "retention")] == [T, L]
    inv = {
        L: [
            entry("new.log", modified=NOW - timedelta(days=2)),
            entry("old.log", modified=NOW - timedelta(days=31)),
        ],
        T: [
            entry("fresh", modified=NOW - timedelta(days=10)),
            entry("warm", modified=NOW - timedelta(days=100)),
            entry("cold", modified=NOW - timedelta(days=400), hold=HoldState(legal_hold=True)),
        ],
    }
    plan = build_plan(s, inv, tmp_path / "r.jsonl", kind="retention", now=NOW)
    assert plan.keys == [] and plan.credentials == []
    t, lg = plan.locations
    assert (t.url, t.archive_to) == (T, "s3://acme-archive/sys-a")
    assert (t.archive.count, t.purge.count, t.held.count, t.keep.count) == (2, 0, 1, 2)
    assert (lg.archive_to, lg.purge.count, lg.keep.count) == (None, 1, 1)
    got = {e.key: e for e in iter_plan_entries(tmp_path / "r.jsonl", plan.digest)}
    assert set(got) == {"warm", "cold", "old.log"}
    assert (
        got["warm"].disposition == "keep"
        and got["warm"].archive_key == "training_data/az/data/sys-a/warm"
    )
    assert got["cold"].disposition == "held"
    assert got["old.log"].disposition == "purge" and got["old.log"].archive_key is None


# -- reading back ----------------------------------------------------------------------------


def test_read_plan_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    made = build_plan(
        spec(), inventories(), out, key_facts={"vault://transit/sys-a": None}, now=NOW
    )
    read = read_plan(out, made.digest)
    assert read.model_dump(exclude={"as_of"}) == made.model_dump(exclude={"as_of"})
    back = [e.to_entry() for e in iter_plan_entries(out, made.digest, location=0)]
    assert back == weights()
    assert len(list(iter_plan_entries(out, made.digest))) == 7


def test_tampered_or_truncated_plan_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "p.jsonl"
    made = build_plan(spec(), inventories(), out, now=NOW)
    original = out.read_bytes()
    out.write_bytes(original.replace(b'"held"', b'"purge"', 1))
    with pytest.raises(IntegrityError, match="changed after it was made"):
        read_plan(out, made.digest)
    with pytest.raises(IntegrityError, match="changed while it was being read"):
        list(iter_plan_entries(out, made.digest))
    out.write_bytes(original.rsplit(b"\n", 2)[0] + b"\n")
    with pytest.raises(IntegrityError, match="truncated"):
        read_plan(out)
    out.write_bytes(b"not json\n")
    with pytest.raises(IntegrityError, match="line 1 is not JSON"):
        read_plan(out)
    with pytest.raises(InputError, match="no such file"):
        read_plan(tmp_path / "missing.jsonl")


# -- approval --------------------------------------------------------------------------------

D1 = "sha256:" + "ab" * 32
D2 = "sha256:" + "cd" * 32


def test_check_approval_accepts_the_same_digest_in_any_case_or_prefix() -> None:
    check_approval(D1, D1)
    check_approval(D1, D1.upper().replace("SHA256:", "sha256:"))
    check_approval(D1, "ab" * 32)
    check_approval(D1, f"  {D1}\n")


def test_check_approval_names_the_mismatch_without_giving_the_full_digest() -> None:
    with pytest.raises(InputError) as err:
        check_approval(D1, D2)
    msg = str(err.value)
    assert f"approval names plan digest {D2}" in msg
    assert "sha256:abababababab..." in msg
    assert D1 not in msg


@pytest.mark.parametrize("bad", ["", "sha256:", "sha256:xyz", "md5:" + "ab" * 16, "ab" * 31])
def test_malformed_digest_is_input_error(bad: str) -> None:
    with pytest.raises(InputError, match="is not a plan digest"):
        check_approval(D1, bad)


def test_approval_expires_and_cannot_come_from_the_future() -> None:
    day = timedelta(hours=24)
    check_approval(D1, D1, approved_at=NOW - timedelta(hours=23), max_age=day, now=NOW)
    with pytest.raises(InputError, match=r"expired at 2026-03-01T11:00:00\.000000Z"):
        check_approval(D1, D1, approved_at=NOW - timedelta(hours=25), max_age=day, now=NOW)
    with pytest.raises(InputError, match="is in the future"):
        check_approval(D1, D1, approved_at=NOW + timedelta(hours=1), max_age=day, now=NOW)
    with pytest.raises(InputError, match="no approval time"):
        check_approval(D1, D1, max_age=day, now=NOW)


def test_plan_approval_checks_role_spec_and_age(tmp_path: Path) -> None:
    s = spec()
    plan = build_plan(s, inventories(), tmp_path / "p.jsonl", now=NOW)
    ok = Approval(plan_digest=plan.digest, approver="Ada", role="security-officer", approved_at=NOW)
    check_plan_approval(plan, ok, s, now=NOW + timedelta(hours=1))
    with pytest.raises(InputError, match="requires one of: security-officer"):
        check_plan_approval(plan, ok.model_copy(update={"role": "intern"}), s, now=NOW)
    with pytest.raises(InputError, match="approval names plan digest"):
        check_plan_approval(plan, ok.model_copy(update={"plan_digest": D1}), s, now=NOW)
    with pytest.raises(InputError, match="expired"):
        check_plan_approval(plan, ok, s, now=NOW + timedelta(hours=25))
    with pytest.raises(InputError, match="another version of the spec"):
        check_plan_approval(plan, ok, spec("description: edited\n"), now=NOW)


# -- with the real file store ----------------------------------------------------------------


def test_demo_spec_on_the_file_store_plans_exactly_its_prefixes(tmp_path: Path) -> None:
    from sundown.registry import open_store
    from sundown.spec.loader import load_spec

    demo = load_spec(
        Path(__file__).resolve().parents[1] / "examples" / "systems" / "demo.yaml",
        variables={"DEMO_ROOT": str(tmp_path)},
    )
    stores = tmp_path / "stores"
    files = {
        "models/demo-sentiment/v1/model.safetensors": 300,
        "models/demo-sentiment/v1/config.json": 20,
        "logs/demo-sentiment/2025/01/app.log": 50,
        # canaries beside every declared prefix: path-boundary, never in scope
        "models/demo-sentiment-v2/model.safetensors": 7,
        "logs/demo-sentimental/app.log": 7,
        "datasets/demo-sentiment/trainx/part-0": 7,
    }
    for rel, size in files.items():
        (stores / rel).parent.mkdir(parents=True, exist_ok=True)
        (stores / rel).write_bytes(b"x" * size)
    for empty in ("datasets/demo-sentiment/train", "datasets/demo-sentiment/eval"):
        (stores / empty).mkdir(parents=True, exist_ok=True)  # a missing root stops planning
    (stores / "cache/demo-sentiment").mkdir(parents=True)

    def inventory() -> dict[str, Iterator[Entry]]:
        return {r.url: open_store(r.url).inventory() for r in plan_locations(demo)}  # type: ignore[attr-defined]

    plan = build_plan(demo, inventory(), tmp_path / "plan.jsonl")
    assert plan.totals()["found"].count == 3
    weights_loc = plan.locations[0]
    assert (weights_loc.archive.count, weights_loc.archive.bytes) == (2, 320)
    planned = {e.key for e in iter_plan_entries(tmp_path / "plan.jsonl", plan.digest)}
    assert planned == {"v1/model.safetensors", "v1/config.json", "2025/01/app.log"}
    assert build_plan(demo, inventory(), tmp_path / "again.jsonl").digest == plan.digest

    # Purge exactly what the plan says, location by location, then re-list: nothing in scope
    # remains and every canary is still there.
    read_plan(tmp_path / "plan.jsonl", plan.digest)
    for loc in plan.locations:
        todo = [
            e.to_entry()
            for e in iter_plan_entries(tmp_path / "plan.jsonl", plan.digest, location=loc.index)
            if e.disposition == "purge"
        ]
        if todo:
            result = open_store(loc.url).purge(todo)  # type: ignore[attr-defined]
            assert len(result.deleted) == len(todo)
    after = build_plan(demo, inventory(), tmp_path / "after.jsonl")
    assert after.totals()["found"].count == 0
    for rel in list(files)[3:]:
        assert (stores / rel).exists(), f"canary {rel} was touched"
