"""``rotate_credentials``: rotate the system's KEK and re-wrap every sidecar under the new
version (the ciphertext is never rewritten), then retire the older versions once no sidecar
needs them; rotate the system's credentials and deliver each new secret into Vault KV (the
spec's ``rotation`` section); remove the credentials replaced by earlier runs once their grace
period is over; receipt in the evidence location, ledger record, markdown artifact.

Credential rotation per kind, delivery and the rotation state: :mod:`flows._rotation` and
docs/flows.md. No new secret reaches a return value, log, artifact, receipt or ledger record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, task

from sundown import registry
from sundown.credentials import Finished, Outcome, units
from sundown.envelope import SIDECAR_SUFFIX, read_sidecar, rewrap_store
from sundown.errors import BackendError, IntegrityError
from sundown.spec.model import SystemSpec

from . import _rotation
from ._common import TASK_OPTIONS, load_system, opaque, open_evidence
from ._receipt import Receipted
from .evidence import KekRotationReceipt
from .lease import leased
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


def _rotate(spec: SystemSpec, params: RotateParameters) -> RotateResult:
    stamp = datetime.now(UTC)
    # Everything that could stop the run is checked before anything changes.
    state = _rotation.load_state(spec)
    if spec.rotation is not None:
        _rotation.preflight(spec)
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

    finished: list[Finished] = []
    outcomes: list[Outcome] = []
    if spec.rotation is None:
        credentials = [f"{r.kind} {r.id}: {_rotation.NO_CONSUMER}" for r in spec.credential_refs()]
        if state.pending:
            credentials.append(
                f"{len(state.pending)} replaced credential(s) wait for removal: restore the "
                "spec's rotation section to remove them"
            )
        after = state
    else:
        finished, credentials = _rotation.finish_pending(state.pending)
        outcomes = [
            _rotation.rotate_unit(opaque(spec), unit, state.ids(spec, unit), stamp)
            for unit in units(spec)
        ]
        credentials += [_rotation.line(o) for o in outcomes]
        after = _rotation.next_state(state, finished, outcomes)

    receipt = KekRotationReceipt(
        system=spec.name,
        kek=spec.keys.kek,
        old_version=old,
        new_version=new,
        sidecars_checked=checked,
        sidecars_rewrapped=rewrapped,
        retired_below=retired,
        credentials=credentials,
        rotations=outcomes,
        finished=finished,
        rotation_state=after.to_json(),
        previous_receipt=state.source,
        at=stamp,
    )
    failed = sum(1 for o in outcomes if o.outcome == "failed")
    failed += sum(1 for f in finished if f.outcome == "failed")
    rotated = sum(1 for o in outcomes if o.outcome == "rotated")

    def report(done: Receipted) -> str:
        return (
            f"# Rotated `{spec.keys.kek}` of `{spec.name}`\n\n"
            f"Version {old} -> {new}; {rewrapped} of {checked} sidecars re-wrapped; "
            + (f"versions below {retired} retired.\n\n" if retired else "old versions kept.\n\n")
            + "## Credentials\n\n"
            + ("\n".join(f"- {c}" for c in credentials) or "None declared.")
            + f"\n\nReceipt `{done.url}`, ledger record {done.sequence} "
            f"(ledger head `{done.head}`).\n"
        )

    record = _rotation.record_rotation(
        spec,
        receipt,
        f"rotated {spec.keys.kek} of {spec.name}: v{old} -> v{new}, {rewrapped} sidecar(s) "
        "re-wrapped"
        + (f", versions below {retired} retired" if retired else "")
        + (f"; {rotated} credential(s) rotated" if spec.rotation is not None else "")
        + (f"; {failed} credential step(s) FAILED" if failed else ""),
        report,
    )
    if failed:
        raise BackendError(
            f"{failed} credential rotation step(s) of {spec.name} failed (the rest is "
            f"done and recorded in ledger record {record.sequence}, ledger head "
            f"{record.head}): " + "; ".join(c for c in credentials if "FAILED" in c)
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
        ledger_sequence=record.sequence,
        ledger_head=record.head,
    )


@flow(
    name="rotate-credentials",
    description="Rotate a system's key-encryption key (re-wrap every sidecar, retire old "
    "versions) and its credentials (new secrets delivered into Vault KV, replaced ones removed "
    "after the grace period); ledger record.",
    persist_result=False,
)
def rotate_credentials(params: RotateParameters) -> RotateResult:
    spec = load_system(params)
    with leased(open_evidence(spec), spec.name, params.lease_seconds, "rotate"):
        return _rotate(spec, params)
