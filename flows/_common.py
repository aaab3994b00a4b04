"""Helpers shared by the flows: loading the spec, the evidence store and ledger, artifacts."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from sundown import registry
from sundown.errors import InputError
from sundown.ledger import Ledger, RecordKind, StoredRecord, default_ledger_url
from sundown.spec.loader import load_spec, parse_spec
from sundown.spec.model import SystemSpec
from sundown.spec.overlap import check_no_overlap
from sundown.store import ObjectStore

from .models import SpecSource

# Every task: no result cache (stores and key services are not hashable inputs, and a
# destructive step must never be skipped because a cache said it ran), no result persistence.
TASK_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}

T = TypeVar("T")


def opaque(value: T) -> T:
    """Hand a value to a task without Prefect walking into it (it looks for upstream futures in
    every parameter: slow for a batch of 1000 entries, and it trips over a field named ``keys``)."""
    return cast(T, quote(value))


PROVIDERS = {
    "file": "local file system",
    "s3": "aws s3",
    "gs": "google cloud storage",
    "az": "azure blob storage",
}


def load_system(source: SpecSource) -> SystemSpec:
    """The validated spec named by the parameters (InputError naming the file and field)."""
    if source.spec_path is not None:
        spec = load_spec(source.spec_path, variables=source.variables)
        check_no_overlap(spec, _neighbours(Path(source.spec_path), source.variables))
        return spec
    assert source.spec_yaml is not None
    return parse_spec(source.spec_yaml, "<spec_yaml parameter>", variables=source.variables)


def _neighbours(path: Path, variables: dict[str, str] | None) -> list[SystemSpec]:
    """The other system specs in the spec's folder (``systems/*.yaml``, reviewed like code): no
    lifecycle operation runs on a spec that overlaps one of them (InputError naming both)."""
    out = []
    for other in sorted(path.parent.iterdir()):
        if other.suffix not in (".yaml", ".yml") or not other.is_file():
            continue
        if other.resolve() == path.resolve():
            continue
        try:
            out.append(load_spec(other, variables=variables))
        except InputError as exc:
            raise InputError(
                f"{path} is checked against the other systems in {path.parent}, and one of "
                f"them is not a valid spec: {exc}"
            ) from None
    return out


def sundown_home() -> Path:
    value = os.environ.get("SUNDOWN_HOME", "").strip()
    return (Path(value).expanduser() if value else Path.home() / ".sundown").resolve()


def work_dir(*parts: str) -> Path:
    """``$SUNDOWN_HOME/work/...``: plan files and other local scratch (created 0700)."""
    path = sundown_home().joinpath("work", *parts)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def evidence_url(spec: SystemSpec) -> str:
    """Where evidence goes: the spec's evidence location, else the local ledger folder."""
    return spec.evidence or default_ledger_url()


def open_evidence(spec: SystemSpec) -> ObjectStore:
    return registry.open_store(evidence_url(spec))


def ledger_append(
    spec: SystemSpec, kind: RecordKind, subject: str, digest: str, location: str
) -> StoredRecord:
    """Append one record to the spec's evidence ledger, signed by the certificate key."""
    signer = registry.open_signer(spec.keys.certificate)
    return Ledger(open_evidence(spec)).append(kind, subject, digest, location, signer)


def find_ledger_record(spec: SystemSpec, evidence_digest: str) -> StoredRecord | None:
    """The ledger record that points at this evidence, if one was appended already (resume)."""
    ledger = Ledger(open_evidence(spec))
    for stored in ledger.records():
        ev = stored.record.evidence
        if ev is not None and ev.digest == evidence_digest:
            return stored
    return None


def object_url(store: ObjectStore, key: str) -> str:
    return store.url.rstrip("/") + "/" + key


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key: lowercase letters, digits and dashes."""
    text = "-".join(parts).lower()
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text)).strip("-")[:200]


def check_digest_arg(value: str) -> str:
    from sundown.plan import normalize_digest

    try:
        return normalize_digest(value)
    except InputError as exc:
        raise InputError(f"approve_digest: {exc}") from None
