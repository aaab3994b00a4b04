"""Scale-out benchmark: the same 20,000-version purge with one Prefect worker and with two, in
one run, on a Prefect server backed by PostgreSQL, printing the speed-up.

    uv run python benchmarks/scale.py                     # S3 on moto, 20,000 versions
    uv run python benchmarks/scale.py --store file        # the file store, 2 x 10,000 files
    uv run python benchmarks/scale.py --versions 5000 --repeat 2

Set-up (all on loopback, stopped by pid at the end): a private PostgreSQL cluster (Debian's
package), ``prefect server start`` on it, the process work pool ``sundown`` with the deployments
of ``prefect.yaml`` (``prefect deploy --all``), the global concurrency limit of the account
(high enough not to bind), and for ``--store s3`` a moto server.

For each configuration (1 worker, then 2; ``--repeat`` alternates them) a fresh system is
seeded (S3: a versioned bucket, N/2 keys x 2 versions, plus canaries beside the prefix; file:
two locations of N/2 files), planned, and retired with a pre-given approval by
``decommission_system`` in this process, its purge split into shards of ``--copies-per-shard``
copies dispatched with ``run_deployment`` to the pool. Each worker runs one flow run at a time
(``--limit 1``), so a worker is one unit of capacity. Measured: the purge phase (first purge
shard started to last one finished, from the shard results in the journal), and the whole
approved run (purge, verification, certificate). Checked: certificate status complete, every
version gone, canaries untouched, which worker ran each shard.

Target (issue 8): purge speed-up >= 1.6x with two workers on this 2-core machine; the
emulator and the workers' process start-up share the same two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefect.settings import (  # noqa: E402
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    temporary_settings,
)

from flows.decommission import decommission_system  # noqa: E402
from flows.journal import Journal  # noqa: E402
from flows.models import DecommissionParameters, Party  # noqa: E402
from flows.shards import ShardResult, ShardSettings, create_limits, limit_name  # noqa: E402
from sundown import registry  # noqa: E402
from tests.fixtures.moto import moto_environment, start_moto  # noqa: E402
from tests.fixtures.postgres import start_postgres  # noqa: E402
from tests.fixtures.prefect import start_prefect_server  # noqa: E402
from tests.fixtures.process import running  # noqa: E402
from tests.scale.servers import prefect_cli, workers  # noqa: E402
from tests.scale.systems import make_big_system  # noqa: E402
from tests.spec_builder import spec_yaml  # noqa: E402

POOL = "sundown"
APPROVER = Party(name="Bench Approver", role="security-officer")

CANARIES = ("logs/{name}x/canary.bin", "logs/{name}-old/canary.bin", "logs/{name}.bin")


@dataclass
class Run:
    workers: int
    versions: int
    shards: int
    purge_seconds: float
    total_seconds: float
    status: str
    shards_per_worker: dict[str, int]
    remaining: int
    canaries_touched: int

    @property
    def purge_per_second(self) -> float:
        return self.versions / self.purge_seconds


class System:
    """A seeded system: its spec, and checks that run after the retirement."""

    def __init__(self, spec_path: Path, variables: dict[str, str], root: Path) -> None:
        self.spec_path, self.variables, self.root = spec_path, variables, root
        self.remaining = lambda: -1
        self.canaries_touched = lambda: -1


def seed_s3(root: Path, versions: int) -> System:
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    name = f"scale-{uuid.uuid4().hex[:8]}"
    bucket = name
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    keys = [f"logs/{name}/{i // 100:04d}/{i:06d}.bin" for i in range(versions // 2)] * 2
    canaries = [c.format(name=name) for c in CANARIES]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b"w"),
                      keys + canaries))  # fmt: skip
    root.mkdir(parents=True)
    spec = root / f"{name}.yaml"
    spec.write_text(
        spec_yaml(
            name,
            assets={"logs": {"locations": [f"s3://{bucket}/logs/{name}"]}},
            evidence=f"file://{root}/evidence",
            approval={"roles": ["security-officer"]},
        )
    )
    registry.create_key(f"local://{name}-kek")
    registry.create_key(f"local://{name}-certificates", signing=True)
    system = System(spec, {}, root)

    def listed(prefix: str) -> list[str]:
        out = []
        pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                out.append(item["Key"])
        return out

    system.remaining = lambda: len(listed(f"logs/{name}/"))
    system.canaries_touched = lambda: (
        len(canaries) - sum(1 for k in listed("logs/") if k in canaries)
    )
    return system


def seed_file(root: Path, versions: int) -> System:
    big = make_big_system(root, f"scale-{uuid.uuid4().hex[:8]}", versions // 2)
    system = System(big.spec_path, big.variables, root)
    system.remaining = lambda: big.files("logs") + big.files("data")
    system.canaries_touched = lambda: 0 if big.canaries_intact() else 1
    return system


def run_once(
    api: str, store: str, versions: int, n_workers: int, copies_per_shard: int, env: dict[str, str]
) -> Run:
    root = Path(tempfile.mkdtemp(prefix="sundown-scale-"))
    system = (seed_s3 if store == "s3" else seed_file)(root / "sys", versions)
    params = {"spec_path": str(system.spec_path), "variables": system.variables, "batch_size": 1000}
    plan = decommission_system(DecommissionParameters(**params, dry_run=True))
    shards = ShardSettings(
        deployment="run-shard/shard", copies_per_shard=copies_per_shard, poll_seconds=0.5
    )
    names = [f"bench-{n_workers}-{i}" for i in range(n_workers)]
    with workers(api, POOL, names, env, limit=1) as started:
        t0 = time.monotonic()
        result = decommission_system(
            DecommissionParameters(**params, approve_digest=plan.plan_digest, approver=APPROVER),
            shards,
        )
        total = time.monotonic() - t0
        pids = {w.process.pid: n for n, w in zip(names, started, strict=True)}
    journal = Journal(
        registry.open_store((root / "sys" / "evidence").as_uri()),
        result.system,
        result.plan_digest,
        f"local://{result.system}-certificates",
    )
    results = [r.parse(ShardResult) for _, r in journal.steps("shard-purge-")]
    per_worker: dict[str, int] = {}
    for r in results:
        per_worker[pids.get(r.parent_pid, "?")] = per_worker.get(pids.get(r.parent_pid, "?"), 0) + 1
    purge = max(r.finished_at for r in results) - min(r.started_at for r in results)
    return Run(
        workers=n_workers,
        versions=sum(r.purged.versions for r in results),
        shards=len(results),
        purge_seconds=purge.total_seconds(),
        total_seconds=total,
        status=result.status,
        shards_per_worker=per_worker,
        remaining=system.remaining(),
        canaries_touched=system.canaries_touched(),
    )


@contextlib.contextmanager
def platform(store: str) -> Iterator[tuple[str, dict[str, str]]]:
    """PostgreSQL, a Prefect server on it, the pool and deployments, moto for s3."""
    home = Path(tempfile.mkdtemp(prefix="sundown-scale-home-"))
    os.environ["SUNDOWN_HOME"] = str(home / "sundown")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    pg = start_postgres()
    try:
        server = start_prefect_server(home / "prefect", pg.url, name="prefect-scale")
        with running(server):
            api = f"{server.url}/api"
            env = {"SUNDOWN_HOME": os.environ["SUNDOWN_HOME"], "PREFECT_LOGGING_LEVEL": "WARNING"}
            moto = None
            if store == "s3":
                moto = start_moto("moto-scale")
                aws = moto_environment(moto.url)
                os.environ.update(aws)
                os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = (
                    "/dev/null"
                )
                env.update(aws)
                env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
            try:
                prefect_cli(api, "work-pool", "create", POOL, "--type", "process")
                prefect_cli(api, "deploy", "--all")
                with temporary_settings(
                    updates={PREFECT_API_URL: api, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
                ):
                    url = "s3://bucket/x" if store == "s3" else "file:///x"
                    create_limits([limit_name(url)], 8)
                    yield api, env
            finally:
                if moto is not None:
                    moto.stop()
    finally:
        pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=20_000)
    parser.add_argument("--store", choices=("s3", "file"), default="s3")
    parser.add_argument("--copies-per-shard", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()

    runs: list[Run] = []
    with platform(args.store) as (api, env):
        for _ in range(args.repeat):
            for n in (1, 2):
                run = run_once(api, args.store, args.versions, n, args.copies_per_shard, env)
                runs.append(run)
                print(
                    f"{n} worker(s): purge {run.versions} versions in {run.shards} shards: "
                    f"{run.purge_seconds:.1f} s ({run.purge_per_second:.0f}/s); whole run "
                    f"{run.total_seconds:.1f} s; {run.status}; shards per worker "
                    f"{run.shards_per_worker}; remaining {run.remaining}, canaries touched "
                    f"{run.canaries_touched}",
                    flush=True,
                )
    one = statistics.median(r.purge_seconds for r in runs if r.workers == 1)
    two = statistics.median(r.purge_seconds for r in runs if r.workers == 2)
    one_total = statistics.median(r.total_seconds for r in runs if r.workers == 1)
    two_total = statistics.median(r.total_seconds for r in runs if r.workers == 2)
    ok = all(r.status == "complete" and r.remaining == 0 and r.canaries_touched == 0 for r in runs)
    print(f"\nstore {args.store}, {args.versions} versions, shards of {args.copies_per_shard}, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"purge speed-up with 2 workers: {one / two:.2f}x (target >= 1.6x)")
    print(f"whole-run speed-up (purge + verify + certify): {one_total / two_total:.2f}x")
    print(f"every run complete, nothing left, canaries untouched: {ok}")
    if args.json:
        summary: dict[str, Any] = {
            "store": args.store,
            "versions": args.versions,
            "purge_speedup": one / two,
            "total_speedup": one_total / two_total,
            "runs": [asdict(r) for r in runs],
        }
        args.json.write_text(json.dumps(summary, indent=1))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
