"""The evidence ledger on the file store (and moto's S3): chain, signatures, tampering, races."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import multiprocessing
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sundown import canonical, dsse, registry
from sundown.errors import ConflictError, InputError, IntegrityError, NotFoundError
from sundown.ledger import (
    PAYLOAD_TYPE,
    Ledger,
    RecordKind,
    default_ledger_url,
    record_key,
)
from sundown.store import ObjectStore
from tests.test_certificate import LocalSigner

DIGEST = "sha256:" + "ab" * 32


def _ledger(tmp_path: Path) -> Ledger:
    return Ledger(registry.open_store((tmp_path / "ledger").as_uri()))


def _appended(tmp_path: Path, n: int) -> tuple[LocalSigner, Ledger]:
    """A new signer and a ledger under ``tmp_path`` holding ``n`` records it signed."""
    signer = LocalSigner()
    ledger = _ledger(tmp_path)
    _append(ledger, signer, n)
    return signer, ledger


def _append(ledger: Ledger, signer: LocalSigner, n: int, kind: str = "rotate") -> None:
    for i in range(n):
        ledger.append(kind, f"system demo: op {i}", DIGEST, f"file:///evidence/{i}.json", signer)


def _file(tmp_path: Path, seq: int) -> Path:
    return tmp_path / "ledger" / record_key(seq)


def _rewrite(path: Path, change: Any, signer: LocalSigner | None = None) -> None:
    """Change the payload of a stored record; keep its signature, or re-sign with ``signer``."""
    envelope = json.loads(path.read_bytes())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    change(payload)
    data = canonical.dumps(payload)
    if signer is None:
        envelope["payload"] = base64.b64encode(data).decode()
        out = envelope
    else:
        out = dsse.sign(PAYLOAD_TYPE, data, signer).to_json()
    path.write_bytes(canonical.dumps(out))


def test_default_location_is_under_sundown_home(sundown_home: Path) -> None:
    assert default_ledger_url() == (sundown_home / "ledger").as_uri()
    assert Ledger.open().url == (sundown_home / "ledger").as_uri()


def test_append_chains_and_verifies(tmp_path: Path) -> None:
    signer = LocalSigner()
    ledger = _ledger(tmp_path)
    with pytest.raises(NotFoundError, match="no records"):
        ledger.verify()
    first = ledger.append(
        RecordKind.DECOMMISSION, "system fraud-scorer-v3", DIGEST, "file:///c.json", signer
    )
    assert first.record.sequence == 1  # record 0 (genesis) was written first
    _append(ledger, signer, 4)
    records = list(ledger.records())
    assert [r.record.sequence for r in records] == [0, 1, 2, 3, 4, 5]
    assert records[0].record.kind is RecordKind.GENESIS
    assert records[0].record.pinned_public_key == signer.public_key_pem().decode()
    for prev, rec in itertools.pairwise(records):
        assert rec.record.previous == prev.hash
    stored = _file(tmp_path, 3).read_bytes()
    assert records[3].hash == "sha256:" + hashlib.sha256(stored).hexdigest()
    assert canonical.is_canonical(stored)
    report = ledger.verify()
    assert report.records == 6
    assert report.head_hash == records[-1].hash
    assert report.kinds == {"genesis": 1, "decommission": 1, "rotate": 4}
    assert not report.key_supplied and "pin not checked against a trusted key" in report.summary()
    assert ledger.verify(signer.public_key_pem()).key_supplied
    assert ledger.pinned_public_key() == signer.public_key_pem()


def test_ledger_refuses_another_signer_and_bad_input(tmp_path: Path) -> None:
    signer, ledger = _appended(tmp_path, 1)
    with pytest.raises(IntegrityError, match="not the key pinned"):
        _append(_ledger(tmp_path), LocalSigner(key_id=signer.key_id), 1)
    with pytest.raises(IntegrityError, match="not the key pinned"):
        _ledger(tmp_path).initialise(LocalSigner())
    with pytest.raises(ValueError, match=r"'delete' is not a valid RecordKind"):
        ledger.append("delete", "x", DIGEST, "file:///x", signer)
    with pytest.raises(InputError, match="initialise"):
        ledger.append("genesis", "x", DIGEST, "file:///x", signer)
    with pytest.raises(ValueError, match="digest"):
        ledger.append("deploy", "x", "md5:abc", "file:///x", signer)
    with pytest.raises(IntegrityError, match="key mismatch"):
        ledger.verify(LocalSigner().public_key_pem())
    assert ledger.verify().records == 2


def test_tampered_subject_names_the_record(tmp_path: Path) -> None:
    _, ledger = _appended(tmp_path, 5)
    _rewrite(_file(tmp_path, 3), lambda p: p.update(subject="nothing happened"))
    with pytest.raises(IntegrityError, match=r"ledger record 000000000003 .*signature"):
        ledger.verify()


@pytest.mark.parametrize("field", ["time", "kind", "evidence", "signing_key_id", "sequence"])
def test_every_field_tampered_fails(tmp_path: Path, field: str) -> None:
    _, ledger = _appended(tmp_path, 3)
    changes = {
        "time": lambda p: p.update(time="2001-01-01T00:00:00Z"),
        "kind": lambda p: p.update(kind="deploy"),
        "evidence": lambda p: p["evidence"].update(digest="sha256:" + "00" * 32),
        "signing_key_id": lambda p: p.update(signing_key_id="local://x"),
        "sequence": lambda p: p.update(sequence=7),
    }
    _rewrite(_file(tmp_path, 2), changes[field])
    with pytest.raises(IntegrityError, match=r"ledger record 000000000002"):
        ledger.verify()


def test_forged_or_rewritten_records_break_the_chain(tmp_path: Path) -> None:
    signer, ledger = _appended(tmp_path, 5)
    # an attacker re-signs a changed record with their own key
    _rewrite(_file(tmp_path, 4), lambda p: p.update(subject="forged"), LocalSigner(signer.key_id))
    with pytest.raises(IntegrityError, match=r"000000000004 .*signature does not verify"):
        ledger.verify()


def test_rewriting_history_even_with_the_real_key_breaks_the_next_link(tmp_path: Path) -> None:
    signer, ledger = _appended(tmp_path, 5)
    _rewrite(_file(tmp_path, 2), lambda p: p.update(subject="rewritten"), signer)
    with pytest.raises(IntegrityError, match=r"000000000003 .*previous hash .*chain is broken"):
        ledger.verify()


def test_missing_swapped_and_foreign_objects(tmp_path: Path) -> None:
    _, ledger = _appended(tmp_path, 5)
    a, b = _file(tmp_path, 2), _file(tmp_path, 3)
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    with pytest.raises(IntegrityError, match=r"record 000000000002 .*sequence field says 3"):
        ledger.verify()
    a.write_bytes(data_a)
    b.write_bytes(data_b)
    ledger.verify()
    b.unlink()
    with pytest.raises(IntegrityError, match=r"000000000003 .*is missing"):
        ledger.verify()
    b.write_bytes(data_b)
    (tmp_path / "ledger" / "records" / "notes.txt").write_text("hi")
    with pytest.raises(IntegrityError, match=r"notes\.txt: not a record name"):
        ledger.verify()
    (tmp_path / "ledger" / "records" / "notes.txt").unlink()
    _file(tmp_path, 1).write_bytes(b"{not json")
    with pytest.raises(IntegrityError, match=r"ledger record 000000000001 .*not JSON"):
        ledger.verify()


def test_genesis_pin_cannot_be_swapped(tmp_path: Path) -> None:
    signer, _ = _appended(tmp_path, 2)
    attacker = LocalSigner(signer.key_id)
    _rewrite(
        _file(tmp_path, 0),
        lambda p: p.update(pinned_public_key=attacker.public_key_pem().decode()),
        attacker,
    )
    # the swapped genesis is self-consistent, so the next link breaks
    with pytest.raises(IntegrityError, match=r"000000000001 .*previous hash"):
        _ledger(tmp_path).verify()
    # and with a supplied key it fails at record 0 itself
    with pytest.raises(IntegrityError, match=r"000000000000 .*key mismatch"):
        _ledger(tmp_path).verify(signer.public_key_pem())


def test_a_lost_race_moves_to_the_next_number(tmp_path: Path) -> None:
    """Two ledger handles read the same head; the second put conflicts and chains on the
    winner instead of forking."""
    signer = LocalSigner()
    a, b = _ledger(tmp_path), _ledger(tmp_path)
    _append(a, signer, 1)
    head = b.head()
    assert head is not None
    a.append("revoke", "winner", DIGEST, "file:///w", signer)

    original = b.head
    b.head = lambda: head  # type: ignore[method-assign]  # b still believes the old head
    try:
        rec = b.append("revoke", "loser", DIGEST, "file:///l", signer)
    finally:
        b.head = original  # type: ignore[method-assign]
    assert rec.record.sequence == 3
    assert [r.record.subject for r in a.records()][2:] == ["winner", "loser"]
    a.verify()


# --- several processes at once -----------------------------------------------------------


def _worker(
    url: str, pem: bytes, worker: int, count: int, barrier: Any, env: dict[str, str], lost: Any
) -> None:
    import os

    os.environ.update(env)
    signer = LocalSigner(key_id="local://ledger-signing", pem=pem)
    ledger = Ledger(registry.open_store(url))
    barrier.wait()
    for i in range(count):
        ledger.append(
            "retention", f"worker {worker} op {i}", DIGEST, f"{url}/e/{worker}/{i}", signer
        )
    with lost.get_lock():
        lost.value += ledger.lost_races


def _race(url: str, workers: int, count: int, env: dict[str, str] | None = None) -> int:
    """Append from ``workers`` processes at once; check one unbroken chain; lost races."""
    signer = LocalSigner(key_id="local://ledger-signing")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    lost = ctx.Value("i", 0)
    procs = [
        ctx.Process(
            target=_worker,
            args=(url, signer.private_pem(), w, count, barrier, env or {}, lost),
        )
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * workers
    ledger = Ledger(registry.open_store(url))
    report = ledger.verify(signer.public_key_pem())
    assert report.records == workers * count + 1
    subjects = Counter(r.record.subject for r in ledger.records() if r.record.sequence)
    expected = {f"worker {w} op {i}" for w in range(workers) for i in range(count)}
    assert set(subjects) == expected
    assert set(subjects.values()) == {1}
    print(f"{workers}x{count} appends on {url.split(':')[0]}: {lost.value} lost races")
    return int(lost.value)


def test_concurrent_appends_on_the_file_store(tmp_path: Path) -> None:
    _race((tmp_path / "ledger").as_uri(), workers=4, count=25)


def test_concurrent_appends_on_moto_s3(moto_env: str) -> None:
    store_url = _moto_bucket(moto_env)
    _race(store_url, workers=4, count=10, env=_moto_environment(moto_env))


def _moto_environment(endpoint: str) -> dict[str, str]:
    from tests.fixtures.moto import moto_environment

    return moto_environment(endpoint)


def _moto_bucket(endpoint: str) -> str:
    import boto3

    name = f"ledger-{int(time.time() * 1000)}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    url = f"s3://{name}/evidence"
    store: ObjectStore = registry.open_store(url)
    store.put("probe", [b"1"], if_absent=True)
    with pytest.raises(ConflictError):
        store.put("probe", [b"2"], if_absent=True)
    return url


def test_record_time_is_recorded(tmp_path: Path) -> None:
    signer = LocalSigner()
    ledger = _ledger(tmp_path)
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    rec = ledger.append("deploy", "system x", DIGEST, "file:///x", signer, now=when)
    assert rec.record.time == when
    payload = json.loads(base64.b64decode(json.loads(_file(tmp_path, 1).read_bytes())["payload"]))
    assert payload["time"] == "2025-01-02T03:04:05Z"
    assert payload["_type"] == "https://sundown.dev/ledger-record/v1"
