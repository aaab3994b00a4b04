"""Crash and resume: SIGKILL the lifecycle flows at random points, re-run, check what is left.

The flows run in children forked from one long-lived process (``crash_child.py``) that imported
everything once. Each decommission trial builds a fresh system (weights envelope-encrypted on the
file store, logs with versions and a delete marker on moto's S3, the KEK in OpenBao transit, a
Vault KV secret and a token to revoke, canaries beside every prefix), plans it, and runs the
approved retirement in a child that sends itself SIGKILL at a chosen event: events are the calls
into the stores, key services, credential revocation, journal, ledger and signer, and every entry
an inventory yields, each labelled with its phase. Trials are spread over the phases (inventory,
archive, purge, key destruction, revocation, verification, certification), the event inside a
phase drawn from a seeded random generator (the seed is printed; ``SUNDOWN_CRASH_SEED`` replays
it); a few more trials are killed by the test itself after a random delay measured from the
approval journal record appearing. After each crash:

- before the re-run: the canaries are intact, at most one certificate exists and, if one does, it
  is valid and says what a finished verification says;
- after the re-run: the retirement is complete, with exactly one certificate for the plan (valid,
  issued after the verification of every location, manifest = every planned purge) and one
  ledger record for it; nothing in scope remains, the KEK is destroyed, the credentials are dead,
  the archive decrypts to the original weights (nothing lost), the canaries are intact.

``deploy_model`` and ``rotate_credentials`` are crashed the same way: no sidecar may describe a
ciphertext that does not decrypt to the model (no half-written artifact left looking complete),
no signature may be published for an incomplete model, and no sidecar may be left wrapped under
a trimmed KEK version; a re-run completes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import hvac
import pytest

from sundown import registry
from sundown.certificate import verify_certificate
from sundown.envelope import Artifact, decrypt_stream, encrypt_to_store, read_sidecar
from sundown.errors import KeyDestroyedError
from sundown.ledger import Ledger
from tests.fixtures.moto import moto_environment
from tests.fixtures.openbao import OpenBao
from tests.fixtures.process import ROOT
from tests.reliability.conftest import count
from tests.reliability.world import file_tree, s3_versions
from tests.spec_builder import spec_yaml

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("SUNDOWN_CRASH_SEED") or random.SystemRandom().randrange(2**31))
PHASES = (
    "inventory",
    "archive",
    "purge",
    "key destruction",
    "revocation",
    "verification",
    "certification",
)
# A killed run's lease (flows/lease.py) blocks a re-run until it expires: short in these trials,
# and each resume waits it out (the two-runs test gives run A a long one).
CRASH_LEASE_SECONDS = 5
TRIALS_PER_PHASE = int(os.environ.get("SUNDOWN_CRASH_TRIALS_PER_PHASE", "3"))
TIMER_TRIALS = int(os.environ.get("SUNDOWN_CRASH_TIMER_TRIALS", "3"))


# --------------------------------------------------------------------------------------------
# The process that forks the children


class Zygote:
    """The forking process; jobs may run concurrently (answers are routed by job id)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.crash_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(ROOT / "test-output" / "crash-child.log", "ab"),  # noqa: SIM115
            text=True,
            cwd=ROOT,
            env={**os.environ, **env},
        )
        self._queues: dict[str, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._ready: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self._ready.get(timeout=180)
        assert ready.get("ready"), ready

    def _queue(self, id_: str) -> queue.Queue[dict[str, Any]]:
        with self._lock:
            return self._queues.setdefault(id_, queue.Queue())

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            message = json.loads(line)
            if "id" in message:
                self._queue(message["id"]).put(message)
            else:
                self._ready.put(message)

    def run(
        self, job: dict[str, Any], *, kill_when: Path | None = None, delay: float = 0.0
    ) -> dict[str, Any]:
        """Run one job; with ``kill_when``, SIGKILL the child ``delay`` seconds after that file
        appears. Returns the child's status plus what it wrote (if it lived to write it)."""
        answers = self._queue(job["id"])
        t0 = time.monotonic()
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        started = answers.get(timeout=60)
        if kill_when is not None:
            deadline = time.monotonic() + 120
            while not kill_when.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                os.kill(started["pid"], signal.SIGKILL)  # our own child, by its pid
        ended = answers.get(timeout=600)
        ended["seconds"] = round(time.monotonic() - t0, 2)
        out = Path(job["out"])
        ended["answer"] = json.loads(out.read_text()) if out.exists() else None
        return ended

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def zygote(prefect_server: Any) -> Iterator[Zygote]:
    (ROOT / "test-output").mkdir(exist_ok=True)
    z = Zygote(
        {
            "PREFECT_API_URL": f"{prefect_server.url}/api",
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
    )
    print(f"crash trials: seed {SEED}")
    yield z
    z.stop()


# --------------------------------------------------------------------------------------------
# A system to crash


def spec_text(name: str, root: Path, bucket: str, accessor: str) -> str:
    """Weights (archived) in a folder, logs on S3, a Vault KEK, a KV secret and a token."""
    return spec_yaml(
        name,
        assets={
            "weights": {
                "on_retirement": "archive",
                "locations": [f"file://{root}/stores/models/{name}"],
            },
            "logs": {"locations": [f"s3://{bucket}/logs/{name}"]},
        },
        archive={
            "target": f"file://{root}/stores/archive/{name}",
            "key": f"local://{name}-archive",
        },
        keys={"kek": f"vault://transit/{name}-kek", "certificate": f"local://{name}-certs"},
        credentials={
            "vault_kv": [{"path": f"crash/{name}/db"}],
            "vault_token_accessors": [accessor],
        },
        evidence=f"file://{root}/evidence",
        approval={"roles": ["security-officer"]},
    )


def deploy_spec_text(name: str, root: Path, bucket: str) -> str:
    """Weights in a folder and on S3, local keys."""
    return spec_yaml(
        name,
        assets={
            "weights": {
                "locations": [f"file://{root}/stores/a/{name}", f"s3://{bucket}/models/{name}"]
            }
        },
        keys={
            "kek": f"local://{name}-kek",
            "model_signing": f"local://{name}-signing",
            "certificate": f"local://{name}-certs",
        },
        evidence=f"file://{root}/evidence",
    )


WEIGHTS = 3  # files, each with a sidecar
LOGS = 6  # objects with two versions each, plus one delete marker
PURGES = WEIGHTS * 2 + LOGS * 2 + 3  # + gone.log's version and marker, 0.log's marker


@dataclass
class CrashSystem:
    name: str
    root: Path
    bucket: str
    spec: Path
    env: dict[str, str]
    plaintext: dict[str, bytes]
    canary_files: dict[str, str] = field(default_factory=dict)
    canary_objects: dict[tuple[str, str, str], str] = field(default_factory=dict)

    @property
    def evidence(self) -> Path:
        return self.root / "evidence"

    def job(self, id_: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": f"{self.name}-{id_}",
            "flow": "decommission",
            "params": {"spec_path": str(self.spec), "lease_seconds": CRASH_LEASE_SECONDS},
            "env": self.env,
            "out": str(self.root / f"{id_}.json"),
            "archive_prefix": (self.root / "stores" / "archive").as_uri(),
            **extra,
        }

    def canaries_intact(self) -> list[str]:
        bad = [
            p
            for p, digest in self.canary_files.items()
            if file_tree(self.root / "stores" / "models").get(p) != digest
            and file_tree(self.root / "stores" / "archive").get(p) != digest
        ]
        now = {
            k: v
            for k, v in s3_versions(self.bucket, "logs/").items()
            if k[0].startswith(f"logs/{self.name}") and not k[0].startswith(f"logs/{self.name}/")
        }
        if now != self.canary_objects:
            bad.append(f"S3 canaries: {sorted(set(now) ^ set(self.canary_objects))}")
        return bad


@pytest.fixture(scope="module")
def crash_env(moto_server: str, openbao: OpenBao) -> dict[str, str]:
    env = {
        **moto_environment(moto_server),
        **openbao.env(),
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        bucket = "crash-" + uuid.uuid4().hex[:12]
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return {**env, "CRASH_BUCKET": bucket}


@pytest.fixture
def crash_world(
    crash_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    prefect_api: str,
) -> tuple[Path, dict[str, str]]:
    """(a folder for this test's systems, the children's environment), the environment set in
    this process too; one SUNDOWN_HOME (keyring) for all trials of the test (unique key names)."""
    tmp = tmp_path_factory.mktemp("crash")
    env = {**crash_env, "SUNDOWN_HOME": str(tmp / "home")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return tmp, env


def build(tmp: Path, crash_env: dict[str, str]) -> CrashSystem:
    """A fresh system (see the module docstring); the environment must be set already."""
    name = "cr-" + uuid.uuid4().hex[:10]
    root = tmp / name
    bucket = crash_env["CRASH_BUCKET"]
    env = {k: v for k, v in crash_env.items() if k != "CRASH_BUCKET"}
    vault = hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"])
    vault.secrets.kv.v2.create_or_update_secret(
        f"crash/{name}/db", secret={"password": uuid.uuid4().hex}, mount_point="secret"
    )
    accessor = vault.auth.token.create(policies=["default"], ttl="1h")["auth"]["accessor"]
    registry.create_key(f"vault://transit/{name}-kek")
    registry.create_key(f"local://{name}-archive")
    registry.create_key(f"local://{name}-certs", signing=True)
    spec = root / f"{name}.yaml"
    root.mkdir(parents=True, exist_ok=True)
    spec.write_text(spec_text(name, root, bucket, accessor))
    system = CrashSystem(name, root, bucket, spec, env, {})
    kek = registry.open_key_service(f"vault://transit/{name}-kek")
    weights = registry.open_store((root / "stores" / "models" / name).as_uri())
    for i in range(WEIGHTS):
        data = os.urandom(2000 + i)
        encrypt_to_store(
            io.BytesIO(data), weights, f"w{i}.bin", kek, Artifact(name, f"w{i}.bin", "v1")
        )
        system.plaintext[f"w{i}.bin"] = data
    s3 = boto3.client("s3")
    for i in range(LOGS):
        for v in range(2):
            s3.put_object(Bucket=bucket, Key=f"logs/{name}/{i}.log", Body=os.urandom(40 + v))
    s3.put_object(Bucket=bucket, Key=f"logs/{name}/gone.log", Body=b"x")
    s3.delete_object(Bucket=bucket, Key=f"logs/{name}/gone.log")
    s3.delete_object(Bucket=bucket, Key=f"logs/{name}/0.log")  # a marker over versions
    for part in ("models", "archive"):
        for sibling in (f"{name}x", f"{name}-old"):
            path = root / "stores" / part / sibling / "canary.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(32))
            system.canary_files[f"{sibling}/canary.bin"] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    for key in (f"logs/{name}x/c", f"logs/{name}-old/c", f"logs/{name}.bin"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"canary")
    system.canary_objects = {
        k: v
        for k, v in s3_versions(bucket, "logs/").items()
        if k[0].startswith(f"logs/{name}") and not k[0].startswith(f"logs/{name}/")
    }
    return system


# --------------------------------------------------------------------------------------------
# Checks


def _certificates(system: CrashSystem) -> list[Path]:
    return sorted(system.evidence.rglob("certificate.dsse.json"))


def _ledger_decommissions(system: CrashSystem, pub: bytes) -> list[Any]:
    if not (system.evidence / "records").exists():
        return []
    ledger = Ledger(registry.open_store(system.evidence.as_uri()))
    ledger.verify(pub)  # a crash never leaves a broken chain
    return [r for r in ledger.records() if r.record.kind.value == "decommission"]


def check_certificate_sound(system: CrashSystem, path: Path, pub: bytes) -> Any:
    verified = verify_certificate(path.read_bytes(), pub)
    cert = verified.certificate
    # never issued before verification passed
    assert cert.status.value == "complete", (cert.status, cert.exceptions)
    for loc in cert.locations:
        assert loc.verification.result.value == "passed", loc.verification
        assert loc.verification.verified_at <= cert.issued_at
    assert cert.deletion_manifest.entries == PURGES
    assert all(k.verified for k in cert.keys_destroyed)
    assert all(c.verified for c in cert.credentials_revoked)
    return verified


def check_after_crash(system: CrashSystem) -> None:
    assert not system.canaries_intact(), system.canaries_intact()
    pub = registry.open_signer(f"local://{system.name}-certs").public_key_pem()
    certs = _certificates(system)
    assert len(certs) <= 1, certs
    decommissions = _ledger_decommissions(system, pub)
    assert len(decommissions) <= len(certs)
    for path in certs:
        check_certificate_sound(system, path, pub)


def check_after_resume(system: CrashSystem, answer: dict[str, Any], digest: str) -> None:
    assert answer and answer["ok"], answer and answer.get("traceback")
    result = answer["result"]
    assert result["status"] in ("complete", "already decommissioned"), result
    assert result["plan_digest"] == digest
    pub = registry.open_signer(f"local://{system.name}-certs").public_key_pem()
    certs = _certificates(system)
    assert len(certs) == 1, f"{len(certs)} certificates for one plan"
    verified = check_certificate_sound(system, certs[0], pub)
    assert verified.certificate.plan_digest == digest
    decommissions = _ledger_decommissions(system, pub)
    assert len(decommissions) == 1, f"{len(decommissions)} ledger records for one retirement"
    assert decommissions[0].record.evidence.digest == verified.envelope_digest
    # nothing in scope remains
    weights = system.root / "stores" / "models" / system.name
    assert not weights.exists() or not list(weights.rglob("*")), list(weights.rglob("*"))
    assert s3_versions(system.bucket, f"logs/{system.name}/") == {}
    # the KEK is gone, the credentials are dead
    with pytest.raises(KeyDestroyedError):
        registry.open_key_service(f"vault://transit/{system.name}-kek").info()
    vault = hvac.Client(url=system.env["VAULT_ADDR"], token=system.env["VAULT_TOKEN"])
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault.secrets.kv.v2.read_secret_version(
            f"crash/{system.name}/db", mount_point="secret", raise_on_deleted_version=True
        )
    # nothing lost: the archive decrypts to the original weights
    archive = registry.open_store((system.root / "stores" / "archive" / system.name).as_uri())
    restored = {}
    for info in archive.list():
        if not info.key.endswith(".sidecar.json"):
            sidecar = read_sidecar(archive, info.key)
            with archive.open(info.key) as f:
                restored[info.key.rsplit("/", 1)[-1]] = b"".join(decrypt_stream(f, sidecar))
    assert restored == system.plaintext
    assert not system.canaries_intact(), system.canaries_intact()


# --------------------------------------------------------------------------------------------
# The trials

_REFERENCE: dict[str, list[str]] = {}
_REFERENCE_LOCK = threading.Lock()
PARALLEL = int(os.environ.get("SUNDOWN_CRASH_PARALLEL", "3"))


def reference_events(zygote: Zygote, tmp: Path, env: dict[str, str]) -> list[str]:
    """The events of one uninterrupted retirement (same shape as every trial's)."""
    with _REFERENCE_LOCK:
        if "events" not in _REFERENCE:
            system = build(tmp, env)
            ended = zygote.run(system.job("reference", plan_first=True))
            answer = ended["answer"]
            assert answer and answer["ok"], answer and answer.get("traceback")
            check_after_resume(system, answer, answer["result"]["plan_digest"])
            _REFERENCE["events"] = answer["events"]
            phases = Counter(e.split("|")[0] for e in answer["events"])
            print(
                f"reference retirement: {ended['seconds']}s, {len(answer['events'])} events "
                f"{dict(phases)}"
            )
        return _REFERENCE["events"]


def crash_trial(zygote: Zygote, tmp: Path, env: dict[str, str], phase: str, n: int) -> str:
    """One trial: crash, check, resume, check. Returns a line for the report."""
    events = _REFERENCE["events"]
    seed = SEED + PHASES.index(phase) * 100 + n if phase != "timer" else SEED + 1000 + n
    rng = random.Random(seed)
    system = build(tmp, env)
    if phase == "timer":
        delay = rng.uniform(0.0, 3.0)
        where = f"{delay:.2f}s after the approval record"
        marker = system.evidence / "decommissions" / system.name
        ended = zygote.run(system.job("crash", plan_first=True), kill_when=marker, delay=delay)
    else:
        candidates = [i + 1 for i, e in enumerate(events) if e.split("|")[0] == phase]
        assert candidates, f"no {phase} event in the reference run"
        # trial n draws from the n-th slice of the phase, so the trials spread over it
        size = max(1, len(candidates) // TRIALS_PER_PHASE)
        kill_at = rng.choice(candidates[n * size : (n + 1) * size] or candidates)
        where = f"event {kill_at} ({events[kill_at - 1]})"
        ended = zygote.run(system.job("crash", plan_first=True, kill_at=kill_at))
    killed = ended["signal"] == signal.SIGKILL
    line = f"trial {phase}-{n} seed {seed}: SIGKILL at {where}: " + (
        "killed" if killed else f"not killed ({ended})"
    )
    print(line)
    count("crash trials (decommission)")
    count("crash trials killed" if killed else "crash trials that finished before the kill")
    count(f"crash trials: {phase}")
    digest_file = system.root / "digest"
    assert digest_file.exists(), f"{line}: the plan was not made"
    digest = digest_file.read_text()
    check_after_crash(system)
    if phase != "timer":
        assert killed, line
    time.sleep(CRASH_LEASE_SECONDS + 0.5)  # the killed run's lease expires
    resumed = zygote.run(system.job("resume", params_extra={"approve_digest": digest}))
    assert resumed["exit"] == 0, resumed
    check_after_resume(system, resumed["answer"], digest)
    count("crash trials resumed to a valid certificate")
    return line


def failed_trials(futures: Sequence[Future[Any]], label: str) -> list[str]:
    """Wait for every trial (each runs to its end); one line per trial that raised, numbered
    after ``label``."""
    failures = []
    for n, future in enumerate(futures):
        try:
            future.result()
        except Exception as exc:  # every trial runs; the failures are reported together
            failures.append(f"{label}{n}: {type(exc).__name__}: {exc}")
    return failures


@pytest.mark.parametrize("phase", [*PHASES, "timer"])
def test_decommission_killed_and_resumed(
    phase: str, zygote: Zygote, crash_world: tuple[Path, dict[str, str]]
) -> None:
    """TRIALS_PER_PHASE trials killed in this phase (or by the timer), run side by side."""
    tmp, env = crash_world
    reference_events(zygote, tmp, env)
    n = TIMER_TRIALS if phase == "timer" else TRIALS_PER_PHASE
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = [pool.submit(crash_trial, zygote, tmp, env, phase, i) for i in range(n)]
        failures = failed_trials(futures, f"trial {phase}-")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------------------------
# deploy_model and rotate_credentials


LIFECYCLE_TRIALS = int(os.environ.get("SUNDOWN_CRASH_LIFECYCLE_TRIALS", "3"))


@dataclass
class Deployed:
    name: str
    root: Path
    spec: Path
    model: Path
    env: dict[str, str]
    urls: list[str]

    def job(self, id_: str, flow: str, **params: Any) -> dict[str, Any]:
        return {
            "id": f"{self.name}-{id_}",
            "flow": flow,
            "params": {
                "spec_path": str(self.spec),
                "lease_seconds": CRASH_LEASE_SECONDS,
                **params,
            },
            "env": self.env,
            "out": str(self.root / f"{id_}.json"),
        }


def build_deployable(tmp: Path, crash_env: dict[str, str]) -> Deployed:
    name = "dp-" + uuid.uuid4().hex[:10]
    root = tmp / name
    (root / "model").mkdir(parents=True)
    for i, size in enumerate((300, 40_000, 9000)):
        (root / "model" / f"part-{i}.bin").write_bytes(os.urandom(size))
    for suffix, signing in (("kek", False), ("signing", True), ("certs", True)):
        registry.create_key(f"local://{name}-{suffix}", signing=signing)
    bucket = crash_env["CRASH_BUCKET"]
    spec = root / f"{name}.yaml"
    spec.write_text(deploy_spec_text(name, root, bucket))
    env = {k: v for k, v in crash_env.items() if k != "CRASH_BUCKET"}
    urls = [(root / "stores" / "a" / name).as_uri(), f"s3://{bucket}/models/{name}"]
    return Deployed(name, root, spec, root / "model", env, urls)


def check_deployment_state(d: Deployed, *, complete: bool) -> None:
    """Every sidecar describes a ciphertext that decrypts to the model file; a signature is
    published only beside a complete model and covers exactly its files."""
    from sundown.signing import verify_bundle

    model = {p.name: p.read_bytes() for p in d.model.iterdir()}
    pub = registry.open_signer(f"local://{d.name}-signing").public_key_pem()
    for url in d.urls:
        store = registry.open_store(url)
        keys = {info.key for info in store.list()}
        sidecars = {k.removesuffix(".sidecar.json") for k in keys if k.endswith(".sidecar.json")}
        for name in sidecars:
            assert name in keys, f"{url}/{name}: a sidecar without its ciphertext"
            sidecar = read_sidecar(store, name)
            with store.open(name) as f:
                assert b"".join(decrypt_stream(f, sidecar)) == model[name], f"{url}/{name}"
        if "model.sig" in keys or complete:
            assert sidecars == set(model), f"{url}: signature beside an incomplete model"
            with store.open("model.sig") as f:
                signed = verify_bundle(f.read(), pub)
            signed.check({n: hashlib.sha256(b).digest() for n, b in model.items()})
    if complete:  # one receipt, one ledger record pointing at it (a re-run appends no second)
        from sundown.ledger import Ledger

        evidence = registry.open_store((d.root / "evidence").as_uri())
        with evidence.open(f"deployments/{d.name}/v1.json") as f:
            receipt = "sha256:" + hashlib.sha256(f.read()).hexdigest()
        deploys = [r for r in Ledger(evidence).records() if r.record.kind.value == "deploy"]
        assert [r.record.evidence and r.record.evidence.digest for r in deploys] == [receipt]


_DEPLOY_EVENTS: list[str] = []


def deploy_events(zygote: Zygote, tmp: Path, env: dict[str, str]) -> list[str]:
    with _REFERENCE_LOCK:
        if not _DEPLOY_EVENTS:
            d = build_deployable(tmp, env)
            job = d.job("reference", "deploy", model_dir=str(d.model), version="v1")
            ended = zygote.run(job)
            assert ended["answer"]["ok"], ended["answer"].get("traceback")
            check_deployment_state(d, complete=True)
            _DEPLOY_EVENTS.extend(ended["answer"]["events"])
            phases = Counter(e.split("|")[0] for e in _DEPLOY_EVENTS)
            print(f"reference deployment: {len(_DEPLOY_EVENTS)} events {dict(phases)}")
    return _DEPLOY_EVENTS


def deploy_trial(zygote: Zygote, d: Deployed, kill_at: int, line: str) -> None:
    job = d.job("crash", "deploy", model_dir=str(d.model), version="v1")
    ended = zygote.run({**job, "kill_at": kill_at})
    print(line)
    assert ended["signal"] == signal.SIGKILL, (line, ended)
    count("crash trials (deploy_model)")
    check_deployment_state(d, complete=False)
    time.sleep(CRASH_LEASE_SECONDS + 0.5)  # the killed run's lease expires
    job = d.job("rerun", "deploy", model_dir=str(d.model), version="v1", overwrite=True)
    again = zygote.run(job)
    assert again["answer"]["ok"], (line, again["answer"].get("error"))
    check_deployment_state(d, complete=True)


def test_deploy_model_killed_and_rerun(
    zygote: Zygote, crash_world: tuple[Path, dict[str, str]]
) -> None:
    """Killed anywhere before its receipt is written (the window after it is the next test's):
    nothing looks complete that is not, and a re-run with --overwrite completes."""
    tmp, env = crash_world
    events = deploy_events(zygote, tmp, env)
    receipt = next(i for i, e in enumerate(events) if e.startswith("receipt|"))
    size = max(1, receipt // LIFECYCLE_TRIALS)
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = []
        for n in range(LIFECYCLE_TRIALS):
            seed = SEED + 2000 + n
            kill_at = random.Random(seed).randint(n * size + 1, (n + 1) * size)
            line = f"deploy trial {n} seed {seed}: SIGKILL at event {kill_at} "
            line += f"({events[kill_at - 1]})"
            futures.append(pool.submit(deploy_trial, zygote, build_deployable(tmp, env),
                                       kill_at, line))  # fmt: skip
        failures = failed_trials(futures, "deploy trial ")
    assert not failures, "\n".join(failures)


def test_deploy_model_killed_after_its_receipt_is_rerun(
    zygote: Zygote, crash_world: tuple[Path, dict[str, str]]
) -> None:
    """Regression (was a strict xfail): killed between its receipt and its ledger record, a
    re-run finds its own receipt (same bytes) and appends the record."""
    tmp, env = crash_world
    events = deploy_events(zygote, tmp, env)
    after_receipt = next(
        i + 1 for i, e in enumerate(events) if e.startswith("receipt|") and e.endswith("after")
    )
    line = f"deploy killed at event {after_receipt} ({events[after_receipt - 1]})"
    deploy_trial(zygote, build_deployable(tmp, env), after_receipt, line)


def test_rotate_credentials_killed_and_rerun(
    zygote: Zygote, crash_world: tuple[Path, dict[str, str]]
) -> None:
    """A deployed model's KEK rotation killed at each point: every sidecar still unwraps (none is
    left wrapped under a trimmed version), the signature still verifies; a re-run completes with
    every sidecar under the latest version and the older versions retired."""
    tmp, env = crash_world

    def deployed() -> Deployed:
        d = build_deployable(tmp, env)
        ended = zygote.run(d.job("deploy", "deploy", model_dir=str(d.model), version="v1"))
        assert ended["answer"]["ok"], ended["answer"].get("traceback")
        return d

    reference = deployed()
    ended = zygote.run(reference.job("rotate-reference", "rotate"))
    assert ended["answer"]["ok"], ended["answer"].get("traceback")
    events = ended["answer"]["events"]
    print(
        f"reference rotation: {len(events)} events {dict(Counter(e.split('|')[0] for e in events))}"
    )
    size = max(1, len(events) // LIFECYCLE_TRIALS)

    def trial(n: int, d: Deployed) -> None:
        seed = SEED + 3000 + n
        kill_at = random.Random(seed).randint(n * size + 1, (n + 1) * size)
        line = f"rotate trial {n} seed {seed}: SIGKILL at event {kill_at} ({events[kill_at - 1]})"
        ended = zygote.run({**d.job("rotate", "rotate"), "kill_at": kill_at})
        print(line)
        assert ended["signal"] == signal.SIGKILL, (line, ended)
        count("crash trials (rotate_credentials)")
        check_deployment_state(d, complete=True)
        time.sleep(CRASH_LEASE_SECONDS + 0.5)  # the killed run's lease expires
        again = zygote.run(d.job("rotate-again", "rotate"))
        assert again["answer"]["ok"], (line, again["answer"].get("error"))
        check_deployment_state(d, complete=True)
        info = registry.open_key_service(f"local://{d.name}-kek").info()
        assert info.versions == (info.latest_version,), (line, info)
        for url in d.urls:
            store = registry.open_store(url)
            for o in store.list():
                if o.key.endswith(".sidecar.json"):
                    name = o.key.removesuffix(".sidecar.json")
                    assert read_sidecar(store, name).key_version == info.latest_version, line

    systems = [deployed() for _ in range(LIFECYCLE_TRIALS)]
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = [pool.submit(trial, n, d) for n, d in enumerate(systems)]
        failures = failed_trials(futures, "rotate trial ")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------------------------
# Two runs of one retirement at once

_CONCURRENT: dict[str, Any] = {}


def two_runs_at_once(zygote: Zygote, tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run A is held at its first purge (after approval, archive and journal start); run B, the
    same retirement with the same approved digest, runs meanwhile; then A goes on."""
    with _REFERENCE_LOCK:
        if _CONCURRENT:
            return _CONCURRENT
    events = reference_events(zygote, tmp, env)
    first_purge = next(i + 1 for i, e in enumerate(events) if e == "purge|purge before")
    system = build(tmp, env)
    go = system.root / "go"
    box: dict[str, Any] = {}

    def run_a() -> None:
        job = system.job("A", plan_first=True, pause_at=first_purge, pause_file=str(go),
                         params_extra={"lease_seconds": 60})  # fmt: skip
        box["A"] = zygote.run(job)

    thread = threading.Thread(target=run_a, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not Path(f"{go}.reached").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Path(f"{go}.reached").exists(), box
    digest = (system.root / "digest").read_text()
    box["B"] = zygote.run(system.job("B", params_extra={"approve_digest": digest}))
    go.write_text("go")
    thread.join(300)
    count("concurrent-run scenarios")
    _CONCURRENT.update(box, system=system, digest=digest)
    return _CONCURRENT


def test_two_runs_at_once_never_certify_twice_or_lose_anything(
    zygote: Zygote, crash_world: tuple[Path, dict[str, str]]
) -> None:
    tmp, env = crash_world
    runs = two_runs_at_once(zygote, tmp, env)
    system: CrashSystem = runs["system"]
    answers = [runs[k]["answer"] for k in ("A", "B")]
    print(
        "A:",
        answers[0] and (answers[0].get("result") or {}).get("status"),
        answers[0] and answers[0].get("error"),
    )
    print(
        "B:",
        answers[1] and (answers[1].get("result") or {}).get("status"),
        answers[1] and answers[1].get("error"),
    )
    done = [a for a in answers if a and a["ok"]]
    assert done, answers
    check_after_resume(system, done[0], runs["digest"])  # one certificate, one ledger record


def test_second_run_of_a_retirement_in_progress_is_refused(
    zygote: Zygote, crash_world: tuple[Path, dict[str, str]]
) -> None:
    """Regression (was a strict xfail): run B meets run A's live lease and stops, naming it."""
    tmp, env = crash_world
    runs = two_runs_at_once(zygote, tmp, env)
    second = runs["B"]["answer"]
    assert second is not None
    assert not second["ok"], f"the second run went ahead: {second.get('result', {}).get('status')}"
    assert re.search(r"in progress|already running|another run|locked", second["error"]), second
