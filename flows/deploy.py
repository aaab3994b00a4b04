"""``deploy_model``: encrypt and sign a model directory into every weights location of a system.

Each file is envelope-encrypted (one fresh DEK per file, wrapped by the system's KEK) into each
weights location, sidecar beside it; the SHA-256 of each file computed in the encryption pass is
what the OpenSSF Model Signing bundle signs (no second read). The bundle goes beside the model in
every location as ``model.sig``; the deployment is recorded in the evidence ledger and shown as a
markdown artifact.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from pydantic import ValidationError

from sundown import registry
from sundown.envelope import Artifact, encrypt_to_store
from sundown.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    NotFoundError,
    UnsupportedError,
)
from sundown.ledger import RecordKind
from sundown.signing import GIT_PATHS, list_model_files, model_digest, sign_digests
from sundown.spec.model import SystemSpec
from sundown.store import ObjectStore, ServerSideKeyWriter

from ._common import TASK_OPTIONS, artifact_key, load_system, object_url, open_evidence
from ._receipt import Receipted, record_receipt
from .evidence import DeployReceipt, KekVersion
from .lease import leased
from .models import DeployedFile, DeployParameters, DeployResult

SIGNATURE_NAME = "model.sig"


def open_for_writing(url: str, storage_cmk: str | None) -> ObjectStore:
    """The store at ``url``; when the spec names a storage key and the store can encrypt under
    it server-side (S3 with an AWS KMS key, GCS with a Cloud KMS key), its writes are under
    that key as well as the envelope, so they die with it at retirement even if an envelope
    check could not prove it. A store that cannot is written with the envelope only, and the
    run log says so."""
    store = registry.open_store(url)
    if storage_cmk is None:
        return store
    if isinstance(store, ServerSideKeyWriter):
        try:
            return store.under_server_side_key(storage_cmk)
        except UnsupportedError as exc:
            reason = str(exc)
    else:
        reason = "the store cannot write under a server-side key"
    get_run_logger().warning("%s: envelope only, no server-side encryption: %s", url, reason)
    return store


@task(name="encrypt-into-location", **TASK_OPTIONS)
def encrypt_into_location(
    url: str, model_dir: str, names: list[str], kek_uri: str, system: str, version: str,
    overwrite: bool, storage_cmk: str | None = None,
) -> dict[str, str]:  # fmt: skip
    """Encrypt every file of the model into one store; {name: plaintext sha256 hex}."""
    store = open_for_writing(url, storage_cmk)
    kek = registry.open_key_service(kek_uri)
    digests: dict[str, str] = {}
    for name in names:
        with open(Path(model_dir) / name, "rb") as source:
            sidecar = encrypt_to_store(
                source,
                store,
                name,
                kek,
                Artifact(system=system, path=name, version=version),
                overwrite=overwrite,
            )
        digests[name] = sidecar.plaintext_sha256
    return digests


def _check_earlier_receipt(
    evidence: ObjectStore, key: str, model_dir: Path, names: list[str]
) -> None:
    """Before anything is written: a receipt for this version means it was deployed (or nearly,
    by a run that stopped before its ledger record). Re-running it with the same files is a
    resume; other files under the same version would overwrite a recorded deployment, so stop
    here, before a single object is replaced. A stored receipt that is not a deployment receipt
    (read back: untrusted) is an IntegrityError naming it, never taken as "no earlier
    deployment"."""
    try:
        with evidence.open(key) as stream:
            raw = stream.read()
    except NotFoundError:
        return
    try:
        earlier = DeployReceipt.model_validate_json(raw)
    except ValidationError:
        raise IntegrityError(
            f"{object_url(evidence, key)} is not a deployment receipt; nothing was deployed"
        ) from None
    files = {}
    for name in names:
        with open(model_dir / name, "rb") as source:
            files[name] = "sha256:" + hashlib.file_digest(source, "sha256").hexdigest()
    if earlier.files != files:
        raise ConflictError(
            f"{object_url(evidence, key)}: this version was already deployed with other files; "
            "deploy the model under a new version"
        )


def _taken(url: str) -> ConflictError:
    """A different receipt under the version's key: another deployment of this version, whose
    ledger record points at it, so it is never replaced. (The same bytes are this deployment's,
    left by a run that stopped before its ledger record: the re-run goes on.)"""
    return ConflictError(
        f"{url}: this version was already deployed with different content (another model, key "
        "or locations); deploy it under a new version"
    )


@flow(
    name="deploy-model",
    description="Encrypt a model directory into every weights location of a system (envelope "
    "format, one DEK per file) and sign it (OpenSSF Model Signing bundle); ledger record.",
    persist_result=False,
)
def deploy_model(params: DeployParameters) -> DeployResult:
    spec = load_system(params)
    evidence = open_evidence(spec)
    with leased(evidence, spec.name, params.lease_seconds, "deploy"):
        return _deploy(spec, params, evidence)


def _deploy(spec: SystemSpec, params: DeployParameters, evidence: ObjectStore) -> DeployResult:
    if spec.assets.weights is None:
        raise InputError(f"system {spec.name!r} declares no weights locations")
    if spec.keys.model_signing is None:
        raise InputError(f"system {spec.name!r} has no keys.model_signing to sign the model")
    model_dir = Path(params.model_dir)
    files = list_model_files(model_dir, ignore_paths=GIT_PATHS)
    if not files or "." in files:
        raise InputError(f"model {model_dir}: expected a directory with at least one file")
    names = sorted(files)
    version = params.version or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kek = registry.open_key_service(spec.keys.kek)
    kek_version = kek.info().latest_version
    signer = registry.open_signer(spec.keys.model_signing)

    receipt_key = f"deployments/{spec.name}/{version}.json"
    _check_earlier_receipt(evidence, receipt_key, model_dir, names)

    digests: dict[str, str] | None = None
    urls = [loc.url for loc in spec.assets.weights.locations]
    for url in urls:
        got = encrypt_into_location(
            url, str(model_dir), names, spec.keys.kek, spec.name, version, params.overwrite,
            spec.keys.storage_cmk,
        )  # fmt: skip
        if digests is not None and got != digests:
            raise IntegrityError(f"{model_dir} changed while it was being deployed to {url}")
        digests = got
    assert digests is not None

    bundle = sign_digests(model_dir.resolve().name, digests, signer)
    signature_urls = []
    for url in urls:
        store = open_for_writing(url, spec.keys.storage_cmk)
        store.put(SIGNATURE_NAME, [bundle], if_absent=not params.overwrite)
        signature_urls.append(object_url(store, SIGNATURE_NAME))
    subject_digest = model_digest({n: bytes.fromhex(d) for n, d in digests.items()}).hex()

    receipt = DeployReceipt(
        system=spec.name,
        version=version,
        kek=KekVersion(uri=spec.keys.kek, version=kek_version),
        signing_key=signer.key_id,
        model_digest=f"sha256:{subject_digest}",
        files={n: f"sha256:{d}" for n, d in digests.items()},
        locations=urls,
        signatures=signature_urls,
    )
    rows = "\n".join(
        f"| `{n}` | {(model_dir / n).stat().st_size:,} | `{d[:16]}...` |"
        for n, d in digests.items()
    )

    def report(done: Receipted) -> str:
        return (
            f"# Deployed `{spec.name}` {version}\n\n"
            f"Model digest: `sha256:{subject_digest}`  \n"
            f"KEK: `{spec.keys.kek}` version {kek_version}  \n"
            + (
                f"Server-side storage key: `{spec.keys.storage_cmk}`  \n"
                if spec.keys.storage_cmk
                else ""
            )
            + f"Signature (OMS v1.0 bundle): {', '.join(f'`{u}`' for u in signature_urls)}  \n"
            f"Ledger record: {done.sequence} (ledger head `{done.head}`)\n\n"
            "| File | Bytes | SHA-256 |\n|---|---:|---|\n" + rows + "\n"
        )

    record = record_receipt(
        spec,
        evidence,
        receipt_key,
        receipt,
        kind=RecordKind.DEPLOY,
        subject=f"deployed {spec.name} {version} to {len(urls)} location(s)",
        taken=_taken,
        report=report,
        artifact_key=artifact_key("deploy", spec.name),
        description=f"Deployment of {spec.name} {version}",
    )
    return DeployResult(
        system=spec.name,
        version=version,
        locations=urls,
        files=[
            DeployedFile(name=n, sha256=d, size=(model_dir / n).stat().st_size)
            for n, d in digests.items()
        ],
        kek_uri=spec.keys.kek,
        kek_version=kek_version,
        signature_urls=signature_urls,
        model_digest=f"sha256:{subject_digest}",
        ledger_sequence=record.sequence,
        ledger_head=record.head,
    )
