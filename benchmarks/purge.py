"""Purge benchmark on moto's S3 server: Sundown's inventory -> purge -> verify against
``aws s3 rm --recursive`` and against a plain boto3 loop, measured in the same run.

    uv run python benchmarks/purge.py                # 20,000 versions
    uv run python benchmarks/purge.py --versions 5000

For each contender the script starts a fresh moto server on a free loopback port (and stops it
by pid), so each starts from the same state, and seeds one bucket:

- ``sundown``: versioned, N versions under ``models/a/`` (N/2 keys, 2 versions each);
- ``plain``: the same, for a plain boto3 loop (list every version, DeleteObjects in 1000s,
  re-list): the emulator's practical limit;
- ``awscli``: unversioned, N objects under ``models/a/``, for ``aws s3 rm --recursive`` (the
  reference; it deletes one object per request). awscli is installed in its own throwaway venv
  under ``.cache/bench-awscli`` (its pins may clash with the project's lock).

Every bucket also holds canaries beside the prefix (``models/ab/...``, ``models/a.bak``,
``models/...``, with versions); each is checked afterwards, version by version.

Requests are counted with botocore events (``before-send``: every HTTP attempt, retries
included) on the store's own client, from the first capability probe to the end of
verification. Targets (issue 4): <= 3.1 requests per 1000 versions including verification;
throughput >= 3x awscli and >= 0.9x the plain loop; 0 canaries touched.

Request counts against N, for the scale model (docs/scale.md, "Scale model"):

    uv run python benchmarks/purge.py --fit                  # 1,000 / 5,000 / 10,000 / 20,000
    uv run python benchmarks/purge.py --fit --fit-largest    # and 50,000 (minutes on moto)
    uv run python benchmarks/purge.py --fit --fit-sizes 1000,5000

For each N, on a fresh moto server: N versions seeded as above, then one location's retirement
steps as the flow runs them (inventory, the settings read with it, one ``purge_batch`` per 1,000
copies, ``verify_location``), without Prefect or the journal. Every request that Sundown's S3
clients send is counted (``before-send``) and sorted into ListObjectVersions pages,
DeleteObjects batches, HEADs and other; the script prints the least-squares line
requests = a + b*N per kind with its residuals, next to the model's count for the same steps,
and fails if they differ at any N. ``--fit-budget`` (seconds, default 600) bounds the run: no
further N is started once it is spent, and the skipped sizes are printed.

The same run on the other emulators whose batch endpoint works:

    uv run python benchmarks/purge.py --store az --versions 5000   # Azurite, Blob Batch (256)
    uv run python benchmarks/purge.py --store gs --versions 5000   # gcp-storage-emulator (100)

Neither keeps versions (Azurite has no blob versioning, gcp-storage-emulator keeps no
generations), so N objects are seeded; the plain loop is the SDK's own (list, ``delete_blobs``
in 256s / ``client.batch()`` in 100s, re-list); requests are counted on the wire
(``requests.Session.send``, which both SDKs use); there is no awscli reference.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.s3 import open_store  # noqa: E402
from tests.fixtures.moto import moto_environment, start_moto  # noqa: E402

PREFIX = "models/a"
CANARY_KEYS = ("models/ab/canary-0.bin", "models/ab/x/canary-1.bin", "models/a.bak", "models/b.bin")
AWSCLI_DIR = ROOT / ".cache" / "bench-awscli"


@dataclass
class Phase:
    name: str
    versions: int
    seconds: float
    requests: int | None
    remaining: int
    canaries_touched: int

    @property
    def per_second(self) -> float:
        return self.versions / self.seconds if self.seconds else float("inf")

    @property
    def requests_per_1000(self) -> float | None:
        return None if self.requests is None else self.requests * 1000 / self.versions


class RequestCounter:
    """Counts HTTP requests a boto3 client sends (``before-send``), by operation."""

    def __init__(self, client: Any) -> None:
        self.by_operation: dict[str, int] = {}
        client.meta.events.register("before-send.s3", self._on_send)

    def _on_send(self, event_name: str, **_: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        self.by_operation[op] = self.by_operation.get(op, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.by_operation.values())


# -- seeding ------------------------------------------------------------------------------------


def seed(client: Any, bucket: str, versions: int, versioned: bool) -> None:
    """``versions`` copies under PREFIX (2 versions per key when versioned), plus canaries."""
    client.create_bucket(Bucket=bucket)
    if versioned:
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        keys = [f"{PREFIX}/shard-{i:06d}.bin" for i in range(versions // 2)] * 2
        keys += [f"{PREFIX}/odd.bin"] * (versions % 2)
    else:
        keys = [f"{PREFIX}/shard-{i:06d}.bin" for i in range(versions)]
    writes = keys + [k for k in CANARY_KEYS for _ in range(2 if versioned else 1)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b"w"), writes))


def all_versions(client: Any, bucket: str, prefix: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            found.append((item["Key"], item["VersionId"]))
    return found


def canaries(client: Any, bucket: str) -> set[tuple[str, str]]:
    """Every version of every canary (and anything else outside PREFIX/)."""
    return {(k, v) for k, v in all_versions(client, bucket, "") if not k.startswith(PREFIX + "/")}


# -- the three contenders -----------------------------------------------------------------------


def run_sundown(client: Any, bucket: str, versions: int) -> Phase:
    before = canaries(client, bucket)
    store = open_store(f"s3://{bucket}/{PREFIX}")
    counter = RequestCounter(store.client)
    start = time.perf_counter()
    entries = list(store.inventory())
    listed = time.perf_counter()
    result = store.purge(entries)
    purged = time.perf_counter()
    remaining = list(store.inventory())
    seconds = time.perf_counter() - start
    print(
        f"  sundown: inventory {listed - start:.2f}s, purge {purged - listed:.2f}s, "
        f"verify {start + seconds - purged:.2f}s"
    )
    assert len(entries) == versions, (len(entries), versions)
    if result.held or result.failed:
        raise SystemExit(f"sundown purge: {len(result.held)} held, {len(result.failed)} failed")
    print(f"  sundown requests by operation: {counter.by_operation}")
    return Phase(
        "sundown inventory+purge+verify",
        versions,
        seconds,
        counter.total,
        len(remaining),
        len(before ^ canaries(client, bucket)),
    )


def run_plain(client: Any, bucket: str, versions: int) -> Phase:
    before = canaries(client, bucket)
    loop_client = boto3.client("s3")
    counter = RequestCounter(loop_client)
    start = time.perf_counter()
    found = all_versions(loop_client, bucket, PREFIX + "/")
    listed = time.perf_counter()
    for i in range(0, len(found), 1000):
        batch: list[Any] = [{"Key": k, "VersionId": v} for k, v in found[i : i + 1000]]
        loop_client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    purged = time.perf_counter()
    remaining = all_versions(loop_client, bucket, PREFIX + "/")
    seconds = time.perf_counter() - start
    print(
        f"  plain: list {listed - start:.2f}s, delete {purged - listed:.2f}s, "
        f"re-list {start + seconds - purged:.2f}s"
    )
    assert len(found) == versions, (len(found), versions)
    return Phase(
        "plain boto3 list+DeleteObjects+re-list",
        versions,
        seconds,
        counter.total,
        len(remaining),
        len(before ^ canaries(client, bucket)),
    )


def awscli() -> Path:
    """``aws`` from a throwaway venv under .cache (created on first use)."""
    aws = AWSCLI_DIR / "bin" / "aws"
    if not aws.exists():
        print(f"  installing awscli into {AWSCLI_DIR} ...", flush=True)
        uv = [sys.executable, "-m", "uv"]
        if subprocess.run([*uv, "--version"], capture_output=True).returncode != 0:
            uv = ["uv"]
        subprocess.run([*uv, "venv", "--quiet", str(AWSCLI_DIR)], check=True)
        subprocess.run(
            [
                *uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(AWSCLI_DIR / "bin" / "python"),
                "awscli",
            ],
            check=True,
        )
    return aws


def run_awscli(client: Any, bucket: str, versions: int) -> Phase:
    before = canaries(client, bucket)
    aws = awscli()
    start = time.perf_counter()
    subprocess.run(
        [str(aws), "s3", "rm", "--recursive", "--only-show-errors", f"s3://{bucket}/{PREFIX}/"],
        check=True,
        env={**os.environ},
    )
    seconds = time.perf_counter() - start
    remaining = all_versions(client, bucket, PREFIX + "/")
    return Phase(
        "aws s3 rm --recursive (unversioned)",
        versions,
        seconds,
        None,
        len(remaining),
        len(before ^ canaries(client, bucket)),
    )


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=20_000, help="versions to purge")
    parser.add_argument("--store", choices=("s3", "gs", "az"), default="s3", help="emulator")
    parser.add_argument("--no-awscli", action="store_true", help="skip the awscli reference")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument(
        "--repeat", type=int, default=1, help="trials per contender; the median is reported"
    )
    parser.add_argument(
        "--fit",
        action="store_true",
        help="count a retirement's requests by kind at several N on moto and fit them against N",
    )
    parser.add_argument(
        "--fit-sizes",
        default=",".join(map(str, FIT_SIZES)),
        help="versions per --fit trial, comma-separated (default %(default)s)",
    )
    parser.add_argument(
        "--fit-largest",
        action="store_true",
        help=f"also run --fit at {FIT_LARGEST:,} versions (minutes on moto: it copies the "
        "bucket's versions for every listing page)",
    )
    parser.add_argument(
        "--fit-budget",
        type=float,
        default=600.0,
        help="--fit starts no further N after this many seconds (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.fit:
        sizes = sorted({int(s) for s in args.fit_sizes.split(",") if s.strip()})
        if args.fit_largest:
            sizes.append(FIT_LARGEST)
        if not sizes or sizes[0] < 2:
            parser.error("--fit-sizes must be at least 2 each")
        return run_fit(sizes, args.fit_budget, args.json)
    if args.versions < 2:
        parser.error("--versions must be at least 2")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.store != "s3":
        trials = [run_other(args.store, args.versions) for _ in range(args.repeat)]
        return report(median(trials), args.json, args.store)

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        os.environ.pop(name, None)
    n = args.versions
    contenders: list[tuple[str, bool, Callable[[Any, str, int], Phase]]] = [
        ("bench-sundown", True, run_sundown),
        ("bench-plain", True, run_plain),
    ]
    if not args.no_awscli:
        awscli()  # install before timing anything
        contenders.append(("bench-awscli", False, run_awscli))
    trials = []
    for trial in range(args.repeat):
        if args.repeat > 1:
            print(f"trial {trial + 1} of {args.repeat}", flush=True)
        trials.append(run_s3(contenders, n))
    return report(median(trials), args.json, "s3")


def median(trials: list[dict[str, Phase]]) -> dict[str, Phase]:
    """Per contender, the trial with the median time; leftovers and canaries: the worst."""
    out: dict[str, Phase] = {}
    for name in trials[0]:
        runs = sorted((t[name] for t in trials), key=lambda p: p.seconds)
        mid = runs[len(runs) // 2]
        out[name] = Phase(
            mid.name,
            mid.versions,
            mid.seconds,
            mid.requests,
            max(p.remaining for p in runs),
            max(p.canaries_touched for p in runs),
        )
        if len(runs) > 1:
            times = ", ".join(f"{p.seconds:.2f}s" for p in runs)
            print(f"  {mid.name}: trials {times}; median {mid.seconds:.2f}s")
    return out


def _fresh_moto() -> Any:
    """A new moto server on a free loopback port (each measurement starts from an empty one)."""
    return start_moto("moto-bench")


def run_s3(
    contenders: list[tuple[str, bool, Callable[[Any, str, int], Phase]]], n: int
) -> dict[str, Phase]:
    phases = {}
    for bucket, versioned, run in contenders:  # each on a fresh server: same starting state
        server = _fresh_moto()
        try:
            os.environ.update(moto_environment(server.url))
            admin = boto3.client("s3")
            t = time.perf_counter()
            seed(admin, bucket, n, versioned)
            what = "versions" if versioned else "objects"
            print(f"seeded {bucket}: {n} {what} in {time.perf_counter() - t:.1f}s", flush=True)
            phase = run(admin, bucket, n)
            phases[bucket] = phase
            print(f"  {phase.name}: {phase.seconds:.2f}s, {phase.per_second:,.0f}/s", flush=True)
        finally:
            server.stop()
    return phases


def report(phases: dict[str, Phase], json_path: Path | None, store: str) -> int:
    sd, plain, cli = phases["bench-sundown"], phases["bench-plain"], phases.get("bench-awscli")
    print()
    print(f"versions purged per contender: {sd.versions:,}")
    rows = [sd, plain] + ([cli] if cli else [])
    for p in rows:
        rq = "-" if p.requests_per_1000 is None else f"{p.requests_per_1000:.2f}"
        print(
            f"  {p.name:<42} {p.seconds:8.2f}s {p.per_second:10,.0f}/s  "
            f"requests/1000: {rq:>6}  remaining: {p.remaining}  "
            f"canaries touched: {p.canaries_touched}"
        )
    vs_plain = sd.per_second / plain.per_second
    checks = [(f"throughput vs plain loop {vs_plain:.2f}x >= 0.9x", vs_plain >= 0.9)]
    if store == "s3":  # the issue's request target is S3's (1000 per listing and per delete)
        per_1000 = sd.requests_per_1000 or 0.0
        checks.insert(0, (f"requests per 1000 versions {per_1000:.2f} <= 3.1", per_1000 <= 3.1))
    if cli:
        vs_cli = sd.per_second / cli.per_second
        checks.append((f"throughput vs awscli {vs_cli:.2f}x >= 3x", vs_cli >= 3))
        ceiling = plain.per_second / cli.per_second
        print(
            f"  emulator ceiling: the plain loop runs at {ceiling:.2f}x awscli "
            "(moto copies every version of the bucket for each ListObjectVersions page, so "
            "listing grows with N^2 and dominates at large N)"
        )
    touched = sum(p.canaries_touched for p in rows)
    left = sum(p.remaining for p in rows)
    checks.append((f"canaries touched: {touched}", touched == 0))
    checks.append((f"versions left after verification: {left}", left == 0))
    print()
    for text, ok in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    if json_path:
        json_path.write_text(
            json.dumps(
                {
                    "phases": {
                        k: {
                            **asdict(p),
                            "per_second": p.per_second,
                            "requests_per_1000": p.requests_per_1000,
                        }
                        for k, p in phases.items()
                    },
                    "checks": {text: ok for text, ok in checks},
                },
                indent=2,
            )
        )
    # Correctness (canaries, leftovers) fails the run; speed targets are reported.
    return 0 if touched == 0 and left == 0 else 1


# -- request counts against N: the scale model's check (docs/scale.md, "Scale model") ----------

FIT_SIZES = (1_000, 5_000, 10_000, 20_000)
FIT_LARGEST = 50_000
FIT_KINDS = ("list", "delete", "head", "other")
_KIND_OF = {"ListObjectVersions": "list", "DeleteObjects": "delete", "HeadObject": "head"}


class WireOps:
    """Counts the HTTP requests that every S3 client Sundown creates sends (botocore's
    ``before-send``: fired once per attempt actually sent, retries included), by operation.
    The clients are the real ones from ``connectors._aws.new_client``; the wrapper only
    registers the observer on each before handing it back."""

    def __init__(self) -> None:
        from connectors import _aws

        self.by_operation: dict[str, int] = {}
        self._aws = _aws
        self._original = _aws.new_client

    def _on_send(self, event_name: str, **_: Any) -> None:
        op = event_name.rsplit(".", 1)[-1]
        self.by_operation[op] = self.by_operation.get(op, 0) + 1

    def __enter__(self) -> WireOps:
        original = self._original

        def new_client(service: str, config: Any) -> Any:
            client = original(service, config)
            client.meta.events.register("before-send", self._on_send)
            return client

        self._aws.new_client = new_client
        return self

    def __exit__(self, *exc: object) -> None:
        self._aws.new_client = self._original

    def by_kind(self) -> dict[str, int]:
        out = dict.fromkeys(FIT_KINDS, 0)
        for op, n in self.by_operation.items():
            out[_KIND_OF.get(op, "other")] += n
        return out


def retirement_requests(bucket: str, versions: int, batch_size: int = 1000) -> dict[str, Any]:
    """One location's retirement steps as the flow runs them, minus Prefect and the journal:
    inventory (``_location_inventory``'s listing), the settings read with it
    (``store_settings``), one ``purge_batch`` per ``batch_size`` copies (each opens its own
    store, as a Prefect task does), and ``verify_location``'s re-listing. Returns the requests
    by kind and by operation, and the seconds."""
    from flows import _steps
    from sundown import registry
    from sundown.plan import PlanEntry

    url = f"s3://{bucket}/{PREFIX}"
    with WireOps() as wire:
        start = time.perf_counter()
        entries = list(_steps._inventory(registry.open_store(url)))
        settings = _steps.store_settings(url)
        plan = [PlanEntry.of(0, e, "purge") for e in entries]
        for number, i in enumerate(range(0, len(plan), batch_size)):
            outcome = _steps.purge_batch.fn(url, 0, number, plan[i : i + batch_size])
            if outcome.held or outcome.failed:
                raise SystemExit(f"purge batch {number}: {outcome.held} held, {outcome.failed}")
        verified = _steps.verify_location.fn(url, [], settings)
        seconds = time.perf_counter() - start
    if len(entries) != versions:
        raise SystemExit(f"inventory found {len(entries)} versions, seeded {versions}")
    if not verified.passed:
        raise SystemExit(f"verification failed: {verified.details}")
    return {"kinds": wire.by_kind(), "ops": dict(wire.by_operation), "seconds": seconds}


def model_requests(n: int, batch_size: int = 1000) -> dict[str, int]:
    """The scale model's count for the same steps (docs/scale.md): S3 returns at most 1,000
    versions per ListObjectVersions page and takes at most 1,000 keys per DeleteObjects."""
    pages = max(1, math.ceil(n / 1000))
    batches = math.ceil(n / batch_size)
    deletes = batches * math.ceil(min(n, batch_size) / 1000)
    # other: ListMultipartUploads at inventory and at verification (1 page each); the
    # capability probe (GetBucketVersioning + GetObjectLockConfiguration) of the stores that
    # read it: inventory, settings, verification (a purge batch reads it only to tell a
    # refusal apart, and none is refused here); GetBucketReplication once.
    other = 2 + 2 * 3 + 1
    # list: every page of the inventory, then one page for the (empty) verification listing.
    return {"list": pages + 1, "delete": deletes, "head": 0, "other": other}


def least_squares(xs: list[float], ys: list[float]) -> tuple[float, float, list[float]]:
    """(a, b, residuals) of y = a + b*x by ordinary least squares."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    a = my - b * mx
    return a, b, [y - (a + b * x) for x, y in zip(xs, ys, strict=True)]


def run_fit(sizes: list[int], budget: float, json_path: Path | None) -> int:
    """Seed each N on a fresh moto server, count a retirement's requests, fit, compare."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        os.environ.pop(name, None)
    rows: list[tuple[int, dict[str, Any]]] = []
    skipped: list[int] = []
    began = time.perf_counter()
    for n in sizes:
        spent = time.perf_counter() - began
        if rows and spent > budget:
            skipped.append(n)
            continue
        server = _fresh_moto()
        try:
            os.environ.update(moto_environment(server.url))
            admin = boto3.client("s3", config=Config(max_pool_connections=16))
            t = time.perf_counter()
            seed(admin, "bench-fit", n, versioned=True)
            seeded = time.perf_counter() - t
            before = canaries(admin, "bench-fit")
            row = retirement_requests("bench-fit", n)
            touched = len(before ^ canaries(admin, "bench-fit"))
            if touched:
                raise SystemExit(f"N={n}: {touched} canary versions changed")
            rows.append((n, row))
            print(
                f"N={n:>6,}: seeded in {seeded:.1f}s, retirement {row['seconds']:.1f}s, "
                f"requests {row['kinds']}, by operation {row['ops']}",
                flush=True,
            )
        finally:
            server.stop()
    if skipped:
        print(f"skipped (time budget {budget:.0f}s spent): N = {', '.join(map(str, skipped))}")
    print()
    print("least-squares fit per kind, requests = a + b*N (b shown per 1,000 versions):")
    xs = [float(n) for n, _ in rows]
    fits: dict[str, Any] = {}
    for kind in (*FIT_KINDS, "total"):
        ys = [
            float(r["kinds"][kind] if kind != "total" else sum(r["kinds"].values()))
            for _, r in rows
        ]
        model = [
            float(model_requests(n)[kind] if kind != "total" else sum(model_requests(n).values()))
            for n, _ in rows
        ]
        a, b, res = least_squares(xs, ys) if len(rows) > 1 else (ys[0], 0.0, [0.0])
        ma, mb, _ = least_squares(xs, model) if len(rows) > 1 else (model[0], 0.0, [0.0])
        fits[kind] = {
            "a": a,
            "b_per_1000": b * 1000,
            "residuals": res,
            "measured": ys,
            "model": model,
            "model_a": ma,
            "model_b_per_1000": mb * 1000,
        }
        print(
            f"  {kind:<6} a={a:7.2f}  b={b * 1000:6.3f}/1000  residuals "
            f"[{', '.join(f'{r:+.2f}' for r in res)}]  |  model a={ma:6.2f} "
            f"b={mb * 1000:6.3f}/1000; measured {[int(y) for y in ys]} vs model "
            f"{[int(m) for m in model]}"
        )
    exact = all(r["kinds"][k] == model_requests(n)[k] for n, r in rows for k in FIT_KINDS)
    print()
    print(f"  [{'met' if exact else 'MISSED'}] measured counts equal the model's at every N")
    if json_path:
        json_path.write_text(
            json.dumps(
                {
                    "sizes": [n for n, _ in rows],
                    "skipped": skipped,
                    "runs": [{"n": n, **r} for n, r in rows],
                    "fits": fits,
                },
                indent=2,
            )
        )
    return 0 if exact else 1


# -- Azurite and gcp-storage-emulator -----------------------------------------------------------


class WireCounter:
    """Counts every HTTP request sent through ``requests`` (both SDKs use it) while active."""

    def __init__(self) -> None:
        import requests

        self.total = 0
        self._requests = requests
        self._original = requests.Session.send

    def __enter__(self) -> WireCounter:
        original = self._original

        def send(session: Any, request: Any, **kw: Any) -> Any:
            self.total += 1
            return original(session, request, **kw)

        self._requests.Session.send = send  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        self._requests.Session.send = self._original  # type: ignore[method-assign]


class OtherEmulator:
    """One of Azurite / gcp-storage-emulator: start it, seed a location, list, plain loop."""

    scheme = ""
    plain_name = ""

    def start(self) -> Any:
        raise NotImplementedError

    def create(self, name: str) -> None:
        raise NotImplementedError

    def put(self, name: str, key: str) -> None:
        raise NotImplementedError

    def names(self, name: str, prefix: str) -> set[tuple[str, str]]:
        """(key, etag or generation) of every copy under ``prefix``, via the SDK."""
        raise NotImplementedError

    def plain(self, name: str, found: list[str]) -> None:
        raise NotImplementedError


class Azurite(OtherEmulator):
    scheme = "az"
    plain_name = "plain SDK list+delete_blobs(256)+re-list"

    def start(self) -> Any:
        import tempfile

        from tests.fixtures.azurite import connection_string, start_azurite

        self._data = tempfile.TemporaryDirectory(prefix="bench-azurite-")
        server = start_azurite(Path(self._data.name), "azurite-bench")
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = connection_string(server.url)
        os.environ.pop("AZURE_STORAGE_ACCOUNT_URL", None)
        from connectors.azure_blob import new_service_client

        self.service = new_service_client()
        return server

    def create(self, name: str) -> None:
        self.service.create_container(name)

    def put(self, name: str, key: str) -> None:
        self.service.get_container_client(name).upload_blob(key, b"w")

    def names(self, name: str, prefix: str) -> set[tuple[str, str]]:
        container = self.service.get_container_client(name)
        return {
            (b.name, str(b.etag))
            for b in container.list_blobs(name_starts_with=prefix, include=["snapshots"])
        }

    def plain(self, name: str, found: list[str]) -> None:
        container = self.service.get_container_client(name)
        for i in range(0, len(found), 256):
            container.delete_blobs(*found[i : i + 256])


class GcsEmulator(OtherEmulator):
    scheme = "gs"
    plain_name = "plain SDK list+batch(100)+re-list"

    def start(self) -> Any:
        from tests.fixtures.gcs import GCS_PROJECT, start_gcp_storage_emulator

        server = start_gcp_storage_emulator("gcp-storage-emulator-bench")
        os.environ["STORAGE_EMULATOR_HOST"] = server.url
        os.environ["GOOGLE_CLOUD_PROJECT"] = GCS_PROJECT
        os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        from connectors.gcs import new_client

        self.client = new_client()
        return server

    def create(self, name: str) -> None:
        bucket = self.client.create_bucket(name)
        bucket.soft_delete_policy.retention_duration_seconds = 0  # purged means gone
        bucket.patch()

    def put(self, name: str, key: str) -> None:
        self.client.bucket(name).blob(key).upload_from_string(b"w")

    def names(self, name: str, prefix: str) -> set[tuple[str, str]]:
        return {
            (b.name, str(b.generation))
            for b in self.client.list_blobs(name, prefix=prefix, versions=True)
        }

    def plain(self, name: str, found: list[str]) -> None:
        bucket = self.client.bucket(name)
        for i in range(0, len(found), 100):
            with self.client.batch():
                for key in found[i : i + 100]:
                    bucket.blob(key).delete()


def run_other(kind: str, n: int) -> dict[str, Phase]:
    from sundown.registry import open_store as open_any

    emulator: OtherEmulator = Azurite() if kind == "az" else GcsEmulator()
    phases: dict[str, Phase] = {}
    for contender in ("bench-sundown", "bench-plain"):  # each on a fresh server
        server = emulator.start()
        try:
            emulator.create(contender)
            t = time.perf_counter()
            keys = [f"{PREFIX}/shard-{i:06d}.bin" for i in range(n)] + list(CANARY_KEYS)
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(functools.partial(emulator.put, contender), keys))
            print(f"seeded {kind}://{contender}: {n} objects in {time.perf_counter() - t:.1f}s")
            before = {c for c in emulator.names(contender, "") if c[0] in CANARY_KEYS}
            with WireCounter() as wire:
                start = time.perf_counter()
                if contender == "bench-sundown":
                    store: Any = open_any(f"{kind}://{contender}/{PREFIX}")
                    entries = list(store.inventory())
                    result = store.purge(entries)
                    remaining = len(list(store.inventory()))
                    name = "sundown inventory+purge+verify"
                    assert len(entries) == n, (len(entries), n)
                    if result.held or result.failed:
                        raise SystemExit(
                            f"sundown purge: {len(result.held)} held, {len(result.failed)} failed"
                        )
                else:
                    found = sorted(k for k, _ in emulator.names(contender, PREFIX + "/"))
                    emulator.plain(contender, found)
                    remaining = len(emulator.names(contender, PREFIX + "/"))
                    name = emulator.plain_name
                    assert len(found) == n, (len(found), n)
                seconds = time.perf_counter() - start
            after = {c for c in emulator.names(contender, "") if c[0] in CANARY_KEYS}
            assert len(before) == len(CANARY_KEYS)
            phases[contender] = Phase(name, n, seconds, wire.total, remaining, len(before ^ after))
            print(f"  {name}: {seconds:.2f}s, {n / seconds:,.0f}/s", flush=True)
        finally:
            server.stop()
    return phases


if __name__ == "__main__":
    raise SystemExit(main())
