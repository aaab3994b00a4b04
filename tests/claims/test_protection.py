"""Claims suite: per-copy protection and the SP 800-88 Rev. 2 categories.

Each test makes a claim false in the world (plaintext beside ciphertext, a forged or copied
sidecar, a sidecar naming someone else's key, an empty location, a key not verified gone) and
asserts that the plan and the certificate no longer make it. Real files, a real local keyring and
moto's S3 server; the retirement at the end runs through a real Prefect server.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from flows._certify import CopyBreakdown, _claims, copy_breakdown
from flows._steps import Protector, sidecar_keys
from sundown import registry
from sundown.certificate import (
    KeyDestroyed,
    Protection,
    SanitizationCategory,
    Status,
    verify_certificate,
)
from sundown.envelope import SIDECAR_SUFFIX, Artifact, encrypt_to_store, read_sidecar
from sundown.plan import CopyProtection, PlanEntry
from sundown.store import EntryKind, HoldState, ObjectStore
from tests.conformance import unique
from tests.flows.systems import make_system

CE = SanitizationCategory.PURGE_CRYPTOGRAPHIC_ERASE
LOGICAL = SanitizationCategory.LOGICAL_DELETION
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# helpers


def _store(path: Path) -> ObjectStore:
    path.mkdir(parents=True, exist_ok=True)
    return registry.open_store(path.as_uri())


def _encrypted(path: Path, key: str, size: int = 3000) -> ObjectStore:
    """A file store at ``path`` holding ``key`` (``size`` random bytes) encrypted under the
    system's KEK ``local://sys-kek``, created here."""
    registry.create_key("local://sys-kek")
    store = _store(path)
    _encrypt(store, key, "local://sys-kek", size=size)
    return store


def _encrypt(
    store: ObjectStore, key: str, kek_uri: str, size: int = 3000, overwrite: bool = False
) -> bytes:
    data = os.urandom(size)
    encrypt_to_store(
        io.BytesIO(data),
        store,
        key,
        registry.open_key_service(kek_uri),
        Artifact(system="sys", path=key, version="v1"),
        overwrite=overwrite,
    )
    return data


def _versioned_s3_store() -> ObjectStore:
    """A store on a new versioned moto bucket, and the system's KEK ``local://sys-kek``."""
    registry.create_key("local://sys-kek")
    bucket = unique("claims")
    admin = boto3.client("s3")
    admin.create_bucket(Bucket=bucket)
    admin.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return registry.open_store(f"s3://{bucket}/models/sys")


def _protections(store: ObjectStore, keys: list[str]) -> dict[str, CopyProtection]:
    """What the retirement's planning records for every copy of the store."""
    facts = {uri: registry.open_key_service(uri).info() for uri in keys}
    protector = Protector(store, dict(facts), sidecar_keys(store))
    return {e.key: protector(e) for e in store.inventory()}  # type: ignore[attr-defined]


def _forged_sidecar(kek_uri: str, ciphertext_size: int) -> bytes:
    """A well-formed sidecar naming ``kek_uri`` whose wrapped data key is random bytes, sized
    so that a ``ciphertext_size``-byte file passes the size check (one segment)."""
    plaintext = ciphertext_size - 40 - 16
    assert 0 <= plaintext < 1024 * 1024 - 56
    return json.dumps(
        {
            "format_version": 1,
            "algorithm": "AES256_GCM_HKDF_1MB",
            "key_uri": kek_uri,
            "key_version": 1,
            "wrapped_dek": base64.b64encode(os.urandom(60)).decode(),
            "associated_data": {"system": "sys", "path": "logs/app.log", "version": "v1"},
            "plaintext_size": plaintext,
            "plaintext_sha256": "0" * 64,
            "ciphertext_size": ciphertext_size,
        }
    ).encode()


# --------------------------------------------------------------------------------------------
# protection recorded at planning (no Prefect)


def test_ciphertext_and_its_sidecar_are_envelope_plaintext_beside_it_is_not(
    tmp_path: Path,
) -> None:
    store = _encrypted(tmp_path / "weights", "model.safetensors")
    (tmp_path / "weights" / "notes.txt").write_bytes(b"plaintext notes")
    got = _protections(store, ["local://sys-kek"])
    assert got["model.safetensors"].protection is Protection.ENVELOPE
    assert (got["model.safetensors"].key, got["model.safetensors"].key_version) == (
        "local://sys-kek",
        1,
    )
    assert got["model.safetensors" + SIDECAR_SUFFIX].protection is Protection.ENVELOPE
    assert got["notes.txt"].protection is Protection.NONE  # a file store keeps what was written


def test_forged_sidecar_beside_plaintext_does_not_make_it_encrypted(tmp_path: Path) -> None:
    """The attacker (a writer to the store) wants cryptographic erase claimed for plaintext:
    a sidecar naming the system's KEK, sized to fit the plaintext, with a made-up data key."""
    registry.create_key("local://sys-kek")
    store = _store(tmp_path / "logs")
    log = tmp_path / "logs" / "app.log"
    log.write_bytes(b"user=alice card=4111111111111111\n" * 100)
    (tmp_path / "logs" / ("app.log" + SIDECAR_SUFFIX)).write_bytes(
        _forged_sidecar("local://sys-kek", log.stat().st_size)
    )
    got = _protections(store, ["local://sys-kek"])
    assert got["app.log"].protection is Protection.UNKNOWN
    assert "does not authenticate" in (got["app.log"].note or "")
    # the forged sidecar is plaintext too: its "data key" does not unwrap under the KEK
    forged = got["app.log" + SIDECAR_SUFFIX]
    assert forged.protection is Protection.NONE and "does not unwrap" in (forged.note or "")


def test_a_real_sidecar_copied_beside_plaintext_does_not_cover_the_plaintext(
    tmp_path: Path,
) -> None:
    """A genuine sidecar (its data key really unwraps under the KEK) copied beside plaintext of
    exactly the ciphertext's size: the plaintext does not authenticate under that data key, so
    only the sidecar copy itself (a wrapped data key) counts as covered."""
    weights = _encrypted(tmp_path / "weights", "model.bin", size=5000)
    real = read_sidecar(weights, "model.bin")
    logs = _store(tmp_path / "logs")
    (tmp_path / "logs" / "app.log").write_bytes(os.urandom(real.ciphertext_size))
    shutil.copy(
        tmp_path / "weights" / ("model.bin" + SIDECAR_SUFFIX),
        tmp_path / "logs" / ("app.log" + SIDECAR_SUFFIX),
    )
    got = _protections(logs, ["local://sys-kek"])
    assert got["app.log"].protection is Protection.UNKNOWN
    assert "does not authenticate" in (got["app.log"].note or "")
    assert got["app.log" + SIDECAR_SUFFIX].protection is Protection.ENVELOPE
    # and a ciphertext overwritten with plaintext of the same size loses its claim too
    (tmp_path / "weights" / "model.bin").write_bytes(os.urandom(real.ciphertext_size))
    again = _protections(weights, ["local://sys-kek"])
    assert again["model.bin"].protection is Protection.UNKNOWN


def test_a_sidecar_naming_another_key_is_not_this_retirements_erase(tmp_path: Path) -> None:
    registry.create_key("local://sys-kek")
    registry.create_key("local://someone-else")
    store = _store(tmp_path / "data")
    _encrypt(store, "part-0.parquet", "local://someone-else")
    got = _protections(store, ["local://sys-kek"])
    for key in ("part-0.parquet", "part-0.parquet" + SIDECAR_SUFFIX):
        assert got[key].protection is Protection.ENVELOPE_OTHER_KEY
        assert got[key].key == "local://someone-else"


def test_a_flood_of_made_up_key_names_does_not_grow_the_breakdown(tmp_path: Path) -> None:
    """A writer to the store drops many sidecars, each naming another key: the plan names the
    first 16 keys and groups the rest, so the certificate stays bounded."""
    registry.create_key("local://sys-kek")
    store = _store(tmp_path / "w")
    for i in range(40):
        (tmp_path / "w" / f"f{i:02d}.bin").write_bytes(b"x" * 56)
        (tmp_path / "w" / f"f{i:02d}.bin{SIDECAR_SUFFIX}").write_bytes(
            _forged_sidecar(f"evil://key-{i}", 56)
        )
    got = _protections(store, ["local://sys-kek"])
    keys = {g.key for g in got.values() if g.protection is Protection.ENVELOPE_OTHER_KEY}
    assert len(keys) == 17 and None in keys  # 16 named, the rest together
    breakdown = copy_breakdown([_entry(k, g) for k, g in got.items()], [_key()]).protection()
    assert len(breakdown) == 17 and sum(p.copies for p in breakdown) == 80


def test_an_unreadable_or_oversized_sidecar_is_unknown_and_a_plain_size_mismatch_too(
    tmp_path: Path,
) -> None:
    registry.create_key("local://sys-kek")
    store = _store(tmp_path / "w")
    root = tmp_path / "w"
    (root / "a.bin").write_bytes(b"x" * 100)
    (root / ("a.bin" + SIDECAR_SUFFIX)).write_bytes(b"{not json")
    (root / "b.bin").write_bytes(b"x" * 100)
    (root / ("b.bin" + SIDECAR_SUFFIX)).write_bytes(b" " * (64 * 1024 + 1))
    _encrypt(store, "c.bin", "local://sys-kek")
    with open(root / "c.bin", "ab") as f:
        f.write(b"appended plaintext")
    got = _protections(store, ["local://sys-kek"])
    assert got["a.bin"].protection is Protection.UNKNOWN
    assert "rejected" in (got["a.bin"].note or "")
    assert got["b.bin"].protection is Protection.UNKNOWN
    assert "larger than" in (got["b.bin"].note or "")
    assert got["b.bin" + SIDECAR_SUFFIX].protection is Protection.NONE  # too big to be one
    assert got["c.bin"].protection is Protection.UNKNOWN
    assert "not the ciphertext the sidecar describes" in (got["c.bin"].note or "")


def test_a_key_gone_before_planning_or_a_version_it_no_longer_has_is_not_checked(
    tmp_path: Path,
) -> None:
    store = _encrypted(tmp_path / "w", "m.bin")
    protector = Protector(store, {"local://sys-kek": None}, sidecar_keys(store))
    entry = next(e for e in store.inventory() if e.key == "m.bin")  # type: ignore[attr-defined]
    gone = protector(entry)
    assert gone.protection is Protection.UNKNOWN and "already gone" in (gone.note or "")
    kek = registry.open_key_service("local://sys-kek")
    kek.rotate()
    kek.retire_versions_below(2)  # the sidecar still names version 1
    retired = _protections(store, ["local://sys-kek"])["m.bin"]
    assert retired.protection is Protection.UNKNOWN
    assert "no version 1" in (retired.note or "")


def test_on_s3_ciphertext_is_envelope_and_plain_objects_are_unknown(
    moto_env: str, tmp_path: Path
) -> None:
    """A cloud listing does not report server-side encryption: nothing is claimed for it
    (``unknown``), while an envelope object is checked exactly as on a file store."""
    store = _versioned_s3_store()
    _encrypt(store, "model.bin", "local://sys-kek")
    store.put("README.md", [b"plain"])
    store.delete("README.md")  # a delete marker above the plain version
    facts = {"local://sys-kek": registry.open_key_service("local://sys-kek").info()}
    protector = Protector(store, dict(facts), sidecar_keys(store))
    got = {(e.key, e.kind): protector(e) for e in store.inventory()}  # type: ignore[attr-defined]
    assert got[("model.bin", EntryKind.OBJECT)].protection is Protection.ENVELOPE
    assert got[("model.bin" + SIDECAR_SUFFIX, EntryKind.OBJECT)].protection is Protection.ENVELOPE
    plain = got[("README.md", EntryKind.VERSION)]
    assert plain.protection is Protection.UNKNOWN
    assert "server-side encryption not read" in (plain.note or "")
    assert got[("README.md", EntryKind.DELETE_MARKER)].protection is Protection.NONE


def test_an_overwritten_ciphertext_version_is_matched_against_its_own_older_sidecar(
    moto_env: str,
) -> None:
    """A deployment overwritten in place on a versioned bucket keeps the old ciphertext and its
    old sidecar as noncurrent versions: the old ciphertext authenticates only under the old
    sidecar's data key, which the same KEK wraps, so it is ``envelope`` too. A plaintext version
    between them, and a copy of a real sidecar planted as an older version beside it, stay
    unproven."""
    store = _versioned_s3_store()
    _encrypt(store, "model.bin", "local://sys-kek")  # the first deployment
    _encrypt(store, "model.bin", "local://sys-kek", overwrite=True)  # a new data key, sidecar
    real = read_sidecar(store, "model.bin")
    # x.bin: plaintext of the ciphertext's size with a copy of a real sidecar beside it (both
    # now noncurrent), then a real deployment over them.
    store.put("x.bin", [os.urandom(real.ciphertext_size)])
    store.put("x.bin" + SIDECAR_SUFFIX, [real.to_json()])
    _encrypt(store, "x.bin", "local://sys-kek", overwrite=True)
    facts = {"local://sys-kek": registry.open_key_service("local://sys-kek").info()}
    protector = Protector(store, dict(facts), sidecar_keys(store))
    got: dict[tuple[str, EntryKind], list[CopyProtection]] = {}
    for e in store.inventory():  # type: ignore[attr-defined]
        got.setdefault((e.key, e.kind), []).append(protector(e))
    (current,) = got[("model.bin", EntryKind.OBJECT)]
    (old,) = got[("model.bin", EntryKind.VERSION)]
    assert current.protection is Protection.ENVELOPE
    assert "older version of its sidecar" not in (current.note or "")
    assert old.protection is Protection.ENVELOPE, old.note
    assert "under an older version of its sidecar" in (old.note or "")
    sidecars = got[("model.bin" + SIDECAR_SUFFIX, EntryKind.OBJECT)]
    sidecars += got[("model.bin" + SIDECAR_SUFFIX, EntryKind.VERSION)]
    assert [p.protection for p in sidecars] == [Protection.ENVELOPE] * 2
    assert got[("x.bin", EntryKind.OBJECT)][0].protection is Protection.ENVELOPE
    (plain,) = got[("x.bin", EntryKind.VERSION)]
    assert plain.protection is Protection.UNKNOWN
    assert "does not authenticate" in (plain.note or "")


def test_the_protection_is_bound_by_the_plan_digest(tmp_path: Path) -> None:
    """A writer to the plan file (or to the journal's copy in the evidence location) who turns
    a plaintext copy's ``none`` into ``envelope`` changes the digest the approver approved: the
    plan no longer reads. An entry from before protection was recorded reads as ``unknown``."""
    from sundown.errors import IntegrityError
    from sundown.plan import build_plan, iter_plan_entries, read_plan
    from sundown.spec.loader import parse_spec

    root = tmp_path / "w"
    store = _encrypted(root, "model.bin")
    (root / "notes.txt").write_bytes(b"plaintext")
    spec = parse_spec(
        f"name: sys\nowner: o@example.com\nclassification: internal\n"
        f"assets:\n  weights:\n    locations: [{root.as_uri()}]\n"
        "keys:\n  kek: local://sys-kek\n  certificate: local://sys-certs\n"
        f"evidence: {(tmp_path / 'evidence').as_uri()}\n"
    )
    facts = {"local://sys-kek": registry.open_key_service("local://sys-kek").info()}
    path = tmp_path / "plan.jsonl"
    plan = build_plan(
        spec,
        {root.as_uri(): store.inventory()},  # type: ignore[attr-defined]
        path,
        key_facts=facts,
        protection={root.as_uri(): Protector(store, dict(facts), sidecar_keys(store))},
    )
    kinds = {e.key: e.protection.protection for e in iter_plan_entries(path, plan.digest)}
    assert kinds["notes.txt"] is Protection.NONE and kinds["model.bin"] is Protection.ENVELOPE
    assert "envelope (local://sys-kek): 2; none: 1" in plan.to_markdown()
    text = path.read_text()
    line = next(x for x in text.splitlines() if '"key":"notes.txt"' in x)
    forged = line.replace(
        '"kind":"none","note":"no sidecar; the file store keeps what was written"',
        '"key":"local://sys-kek","key_version":1,"kind":"envelope","note":"x"',
    ).replace('"key":null,"key_version":null,', "")
    assert forged != line
    path.write_text(text.replace(line, forged))
    with pytest.raises(IntegrityError, match="changed after it was made"):
        read_plan(path, plan.digest)
    # an entry written before protection was recorded: nothing may be claimed for it
    old = json.loads(line)
    del old["protection"]
    assert PlanEntry.from_json(old).protection.protection is Protection.UNKNOWN


# --------------------------------------------------------------------------------------------
# the certificate builder (no Prefect)


def _entry(key: str, guard: CopyProtection, disposition: str = "purge") -> PlanEntry:
    return PlanEntry(
        loc=0,
        key=key,
        version_id=None,
        kind=EntryKind.OBJECT,
        size=100,
        modified=NOW,
        is_latest=True,
        storage_class=None,
        hold=HoldState(),
        disposition=disposition,  # type: ignore[arg-type]
        reason="legal hold" if disposition == "held" else None,
        protection=guard,
    )


K = "local://sys-kek"
UNDER_K = CopyProtection(Protection.ENVELOPE, key=K, key_version=1)
ENTRIES = [
    _entry("w/model.bin", UNDER_K),
    _entry("w/model.bin" + SIDECAR_SUFFIX, UNDER_K),
    _entry("w/held.bin", UNDER_K, "held"),
    _entry("logs/app.log", CopyProtection(Protection.NONE)),
    _entry("data/x", CopyProtection(Protection.ENVELOPE_OTHER_KEY, key="local://other")),
    _entry("data/y", CopyProtection(Protection.UNKNOWN)),
]


def _key(**kw: Any) -> KeyDestroyed:
    base: dict[str, Any] = {
        "uri": K,
        "versions_destroyed": [1],
        "destroyed_at": NOW,
        "method": "test",
        "verified": True,
    }
    return KeyDestroyed(**{**base, **kw})


def test_erase_is_counted_only_under_a_destroyed_verified_claimable_key() -> None:
    ok = copy_breakdown(ENTRIES, [_key()])
    assert (ok.ce.versions, ok.logical.versions, ok.held.versions) == (3, 3, 1)
    assert ok.held_ce == 1 and ok.ce_keys == {K}
    for keys in (
        [_key(verified=False)],  # not verified gone
        [_key(versions_destroyed=[2])],  # the copies' version was not destroyed
        [_key(uri="local://other-kek")],  # another key destroyed
        [],  # no key destroyed
        # exportable or plaintext backup allowed: destroyed and verified, but no erase claimed
        [_key().model_copy(update={"ce_claimable": False})],
    ):
        bad = copy_breakdown(ENTRIES, keys)
        assert bad.ce.versions == 0, keys
        assert bad.logical.versions == 5  # every purged copy, none of them erased
        assert _claims("file", bad, keys, "none", None)[0].category is LOGICAL
        assert len(_claims("file", bad, keys, "none", None)) == 1


def test_a_purge_that_failed_is_neither_erased_nor_logically_deleted() -> None:
    failed = {("logs/app.log", None, "object")}
    got = copy_breakdown(ENTRIES, [_key()], failed=failed)
    assert got.logical.versions == 2


def test_claims_for_a_mixed_location_state_both_with_counts_and_honest_times() -> None:
    copies = copy_breakdown(ENTRIES, [_key()])
    ce, logical = _claims("file", copies, [_key()], "none (not supported)", None)
    assert (ce.category, ce.copies.versions, ce.keys) == (CE, 3, [K])
    assert ce.irrecoverable_after.at == NOW  # when the key was destroyed (verified)
    assert (logical.category, logical.copies.versions) == (LOGICAL, 3)
    assert logical.irrecoverable_after.at is None  # never the unlink time
    assert "unlinking is logical deletion" in (logical.irrecoverable_after.unknown or "")
    assert "1 envelope (key not in this retirement), 1 none, 1 unknown" in logical.method
    # a cloud store with no reported window: provider retention unknown
    (_, cloud) = _claims("s3", copies, [_key()], "none", None)
    assert (cloud.irrecoverable_after.unknown or "").startswith("provider retention")
    # a soft-delete window the store reports: its end, not the purge time
    end = NOW + timedelta(days=7)
    (_, soft) = _claims("gs", copies, [_key()], "604800 seconds", end)
    assert soft.irrecoverable_after.at == end


def test_a_location_with_nothing_found_makes_no_claim() -> None:
    assert _claims("file", CopyBreakdown(), [_key()], "none", None) == []
    assert copy_breakdown([], [_key()]).protection() == []


# --------------------------------------------------------------------------------------------
# one full retirement on a real Prefect server

CLAIMS_SPEC_EXTRA = """\
  caches:
    locations:
      - file://${ROOT}/stores/cache/sys-c
"""


def test_retirement_claims_erase_only_for_what_was_really_under_the_destroyed_key(
    tmp_path: Path, prefect_api: str
) -> None:
    """Encrypted weights; plaintext logs with a forged sidecar and a genuine sidecar copied
    beside plaintext; training data partly under someone else's key; an empty cache location.
    Only the weights (and the one genuine wrapped data key) get "Purge (cryptographic erase)"."""
    from flows.decommission import decommission_system
    from flows.models import DecommissionParameters, Party

    system = make_system(tmp_path / "sys", "sys-c")
    spec = system.spec_path.read_text()
    system.spec_path.write_text(spec.replace("archive:\n", CLAIMS_SPEC_EXTRA + "archive:\n", 1))
    (system.store("cache/sys-c")).mkdir(parents=True)
    kek = "local://sys-c-kek"
    logs = system.store("logs/sys-c") / "2025" / "01"
    # a forged sidecar beside 01.log, sized to fit it
    (logs / ("01.log" + SIDECAR_SUFFIX)).write_bytes(
        _forged_sidecar(kek, (logs / "01.log").stat().st_size)
    )
    # the weights' genuine sidecar copied beside 02.log, made the ciphertext's size
    weights = system.store("models/sys-c")
    real = json.loads((weights / ("model.safetensors" + SIDECAR_SUFFIX)).read_text())
    (logs / "02.log").write_bytes(os.urandom(real["ciphertext_size"]))
    shutil.copy(
        weights / ("model.safetensors" + SIDECAR_SUFFIX), logs / ("02.log" + SIDECAR_SUFFIX)
    )
    # part-0 really encrypted, under a key this retirement does not destroy
    registry.create_key("local://sys-c-foreign")
    data = registry.open_store(system.store("data/sys-c").as_uri())
    (system.store("data/sys-c") / "train" / "part-0.parquet").unlink()
    _encrypt(data, "train/part-0.parquet", "local://sys-c-foreign")

    params: dict[str, Any] = {"spec_path": str(system.spec_path), "variables": system.variables}
    plan = decommission_system(DecommissionParameters(**params, dry_run=True))
    assert plan.status == "dry run"
    from sundown.plan import read_plan

    planned = read_plan(plan.plan_path, plan.plan_digest)
    summary = {loc.asset_class: loc.protection_summary() for loc in planned.locations}
    assert summary["weights"] == f"envelope ({kek}): 4"
    assert summary["caches"] == "nothing found"
    assert "| nothing found |" in planned.to_markdown()

    approver = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")
    result = decommission_system(
        DecommissionParameters(**params, approve_digest=plan.plan_digest, approver=approver)
    )
    assert result.status == "complete", result.exceptions
    assert result.certificate_url is not None
    pub = registry.open_signer("local://sys-c-certificates").public_key_pem()
    cert_path = Path(result.certificate_url.removeprefix("file://"))
    cert = verify_certificate(cert_path.read_bytes(), pub).certificate
    assert cert.status is Status.COMPLETE
    (destroyed,) = cert.keys_destroyed
    assert destroyed.uri == kek and destroyed.verified
    by = {loc.uri.rsplit("/stores/", 1)[1]: loc for loc in cert.locations}

    w = by["models/sys-c"]
    assert [c.category for c in w.sanitization] == [CE]
    assert w.ce_covered.versions == 4 and w.logically_deleted.versions == 0
    assert w.sanitization[0].keys == [kek]
    assert w.sanitization[0].irrecoverable_after.at == destroyed.destroyed_at

    lg = by["logs/sys-c"]
    assert lg.found.versions == 5  # 3 logs and 2 sidecars
    assert [c.category for c in lg.sanitization] == [CE, LOGICAL]
    assert lg.ce_covered.versions == 1  # the genuine wrapped data key, nothing else
    assert lg.logically_deleted.versions == 4
    assert {(p.protection, p.copies) for p in lg.protection} == {
        (Protection.ENVELOPE, 1),
        (Protection.NONE, 2),
        (Protection.UNKNOWN, 2),
    }
    assert lg.sanitization[1].irrecoverable_after.at is None
    assert "unlinking is logical deletion" in (lg.sanitization[1].irrecoverable_after.unknown or "")

    dt = by["data/sys-c"]
    assert [c.category for c in dt.sanitization] == [LOGICAL]
    assert dt.ce_covered.versions == 0
    assert {p.protection for p in dt.protection} == {Protection.ENVELOPE_OTHER_KEY, Protection.NONE}
    registry.open_key_service("local://sys-c-foreign").info()  # not this retirement's key

    cache = by["cache/sys-c"]
    assert cache.found.versions == 0 and cache.sanitization == []
    assert cache.claims == "nothing found"
    md = (cert_path.parent / "certificate.md").read_text()
    assert "- Nothing found: no sanitization claim." in md
    assert system.canaries_intact()
    # the rendering never says "Purge" for the plaintext logs' location as a whole
    lg_row = next(line for line in md.splitlines() if "/stores/logs/sys-c`" in line)
    assert "Purge (cryptographic erase): 1<br>logical deletion only: 4" in lg_row
