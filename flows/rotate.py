"""``rotate_credentials``: rotate the system's KEK and re-wrap every sidecar under the new
version (the ciphertext is never rewritten), then retire the older versions once no sidecar
needs them; rotate the credentials a connector can rotate unattended; ledger record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from sundown import registry
from sundown.envelope import SIDECAR_SUFFIX, read_sidecar, rewrap_store
from sundown.errors import IntegrityError
from sundown.ledger import RecordKind
from sundown.spec import SystemSpec

from ._common import (
    TASK_OPTIONS,
    artifact_key,
    ledger_append,
    load_system,
    object_url,
    open_evidence,
    sha256_digest,
)
from .models import RotateParameters, RotateResult


@task(name="rewrap-location", **TASK_OPTIONS)
def rewrap_location(url: str, kek_uri: str) -> tuple[int, int, int]:
    """Re-wrap the sidecars under ``kek_uri`` in one location: (checked, rewrapped, lowest
    version left)."""
    store = registry.open_store(url)
    kek = registry.open_key_service(kek_uri)
    latest = kek.info().latest_version
    keys: list[str] = []
    for info in store.list():
        if info.key.endswith(SIDECAR_SUFFIX):
            ciphertext = info.key.removesuffix(SIDECAR_SUFFIX)
            if read_sidecar(store, ciphertext).key_uri == kek.uri:
                keys.append(ciphertext)
    before = {k: read_sidecar(store, k).key_version for k in keys}
    after = rewrap_store(store, keys, kek)
    lowest = min((s.key_version for s in after), default=latest)
    return len(keys), sum(1 for k in keys if before[k] < latest), lowest


@task(name="rotate-credential", **TASK_OPTIONS)
def rotate_credential(kind: str, ident: str) -> str:
    # Rotating a credential creates a new secret that its consumer must receive (a KV path,
    # a CI variable): that hand-over is not declared in the spec yet, so the flow says so.
    return f"{kind} {ident}: not rotated unattended (the new secret needs a declared consumer)"


def _rotate(spec: SystemSpec, params: RotateParameters) -> RotateResult:
    kek = registry.open_key_service(spec.keys.kek)
    old = kek.info().latest_version
    new = kek.rotate()
    checked = rewrapped = 0
    lowest = new
    for ref in spec.locations():
        c, r, low = rewrap_location(ref.url, spec.keys.kek)
        checked, rewrapped, lowest = checked + c, rewrapped + r, min(lowest, low)
    retired: int | None = None
    if params.retire_old_versions:
        if lowest < new:
            raise IntegrityError(
                f"a sidecar still needs {spec.keys.kek} version {lowest} after re-wrapping: "
                "older versions were not retired"
            )
        kek.retire_versions_below(new)
        retired = new
    credentials = [rotate_credential(r.kind, r.id) for r in spec.credential_refs()]
    receipt = {
        "system": spec.name,
        "kek": spec.keys.kek,
        "old_version": old,
        "new_version": new,
        "sidecars_checked": checked,
        "sidecars_rewrapped": rewrapped,
        "retired_below": retired,
        "credentials": credentials,
        "at": datetime.now(UTC).isoformat(),
    }
    body = json.dumps(receipt, indent=1, sort_keys=True).encode()
    evidence = open_evidence(spec)
    key = f"rotations/{spec.name}/{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.json"
    evidence.put(key, [body], if_absent=True)
    record = ledger_append(
        spec,
        RecordKind.ROTATE,
        f"rotated {spec.keys.kek} of {spec.name}: v{old} -> v{new}, {rewrapped} sidecar(s) "
        "re-wrapped" + (f", versions below {retired} retired" if retired else ""),
        sha256_digest(body),
        object_url(evidence, key),
    )
    create_markdown_artifact(
        f"# Rotated `{spec.keys.kek}` of `{spec.name}`\n\n"
        f"Version {old} -> {new}; {rewrapped} of {checked} sidecars re-wrapped; "
        + (f"versions below {retired} retired.\n\n" if retired else "old versions kept.\n\n")
        + "\n".join(f"- {c}" for c in credentials)
        + f"\n\nLedger record {record.record.sequence}.\n",
        key=artifact_key("rotate", spec.name),
        description=f"Key rotation of {spec.name}",
    )
    return RotateResult(
        system=spec.name,
        kek_uri=spec.keys.kek,
        old_version=old,
        new_version=new,
        sidecars_rewrapped=rewrapped,
        sidecars_checked=checked,
        retired_below=retired,
        credentials=credentials,
        ledger_sequence=record.record.sequence,
    )


@flow(
    name="rotate-credentials",
    description="Rotate a system's key-encryption key (re-wrap every sidecar, retire old "
    "versions) and its credentials; ledger record.",
    persist_result=False,
)
def rotate_credentials(params: RotateParameters) -> RotateResult:
    return _rotate(load_system(params), params)
