"""Server-side encryption coverage benchmark on moto's S3 server: an inventory that reads each
version's SSE key (one HeadObject per version, in parallel) against the listing alone, measured
in the same run on the same bucket.

    uv run python benchmarks/sse_coverage.py                 # 5,000 versions, 3 trials
    uv run python benchmarks/sse_coverage.py --versions 20000 --trials 5

A fresh moto server (free loopback port, stopped by pid) gets a KMS key and one versioned
bucket; N versions are seeded under
``models/a/`` (N/2 keys, 2 versions each, as benchmarks/purge.py seeds them), each written with
SSE-KMS under that key. Each trial times
``S3Store.inventory()`` (ListObjectVersions and ListMultipartUploads: the reference) and
``S3Store.encrypted_inventory()`` (the same listing plus the coverage HEADs), alternating which
runs first, and counts every request each sends on the wire (botocore ``before-send``). It
prints the median ratio encrypted/listing; the target (issue 13) is <= 1.5. It also checks that
every version came back with the key it was written under, and fails otherwise.

The same-run floor: each trial also times N ``HeadBucket`` requests (moto's cheapest request,
nothing to look up per key) sent with the same client settings and the same number in flight.
``(listing + floor) / listing`` is the ratio the coverage would reach if each HEAD cost no more
than that: moto serves every request in one process (one core's worth under its GIL) and
answers each with ``Connection: close`` (a new TCP connection and server thread per request),
so the listing and the HEADs cannot overlap on the server. When that floor ratio is itself over
the target, the target cannot be met on moto by any client.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import connectors.s3  # noqa: E402
from benchmarks.purge import PREFIX, _fresh_moto  # noqa: E402
from connectors.s3 import open_store  # noqa: E402
from tests.fixtures.moto import moto_environment  # noqa: E402

TARGET = 1.5
BUCKET = "sse-coverage"


class Counter:
    """Requests a client sends (``before-send``: every attempt), counted under a lock (the
    HEADs are sent from several threads)."""

    def __init__(self, client: Any) -> None:
        self.total = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-send.s3", self._on_send)

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            self.total += 1


def timed(store: Any, encrypted: bool) -> tuple[float, int, list[Any]]:
    counter = Counter(store.client)
    start = time.perf_counter()
    entries = list(store.encrypted_inventory() if encrypted else store.inventory())
    return time.perf_counter() - start, counter.total, entries


def floor(count: int, concurrency: int) -> float:
    """Seconds for ``count`` HeadBucket requests, ``concurrency`` in flight, on one client made
    as the connector makes its clients."""
    client = connectors.s3.new_client()
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: client.head_bucket(Bucket=BUCKET), range(count)))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=5000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument(
        "--concurrency", type=int, default=connectors.s3.ENCRYPTION_PROBE_CONCURRENCY,
        help="HEADs in flight (default: the connector's)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    connectors.s3.ENCRYPTION_PROBE_CONCURRENCY = args.concurrency
    server = _fresh_moto()
    try:
        os.environ.update(moto_environment(server.url))
        arn = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
        admin = boto3.client("s3")
        admin.create_bucket(Bucket=BUCKET)
        admin.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        t = time.perf_counter()
        keys = [f"{PREFIX}/shard-{i:06d}.bin" for i in range(args.versions // 2)] * 2
        keys += [f"{PREFIX}/odd.bin"] * (args.versions % 2)
        sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": arn}
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: admin.put_object(Bucket=BUCKET, Key=k, Body=b"w", **sse), keys))
        print(f"seeded {args.versions:,} versions in {time.perf_counter() - t:.1f}s", flush=True)
        listing: list[float] = []
        encrypted: list[float] = []
        floors: list[float] = []
        requests: dict[str, int] = {}
        for trial in range(args.trials):
            order = (False, True) if trial % 2 == 0 else (True, False)
            for enc in order:
                store = open_store(f"s3://{BUCKET}/{PREFIX}")
                seconds, sent, entries = timed(store, enc)
                (encrypted if enc else listing).append(seconds)
                requests["encrypted" if enc else "listing"] = sent
                if len(entries) != args.versions:
                    print(f"FAIL: {len(entries)} entries, expected {args.versions}")
                    return 1
                if enc:
                    wrong = [e for e in entries if e.encryption is None or e.encryption.key != arn]
                    if wrong:
                        print(
                            f"FAIL: {len(wrong)} versions without the key they were written under"
                        )
                        return 1
                    if store.encryption_requests != args.versions:
                        print(f"FAIL: {store.encryption_requests} HEADs counted")
                        return 1
            floors.append(floor(args.versions, args.concurrency))
            print(
                f"trial {trial + 1}: listing {listing[-1]:.2f}s, "
                f"with coverage HEADs {encrypted[-1]:.2f}s, "
                f"{args.versions:,} HeadBucket {floors[-1]:.2f}s",
                flush=True,
            )
    finally:
        server.stop()
    base, full = statistics.median(listing), statistics.median(encrypted)
    ratio = full / base
    cheapest = statistics.median(floors)
    floor_ratio = (base + cheapest) / base
    pairs = zip(encrypted, listing, strict=True)
    print(
        f"\n{args.versions:,} versions on moto, {args.concurrency} HEADs in flight:\n"
        f"  listing alone:           {base:.2f}s, {requests['listing']} requests\n"
        f"  with coverage HEADs:     {full:.2f}s, {requests['encrypted']} requests "
        f"({requests['encrypted'] - requests['listing']} HeadObject)\n"
        f"  ratio: {ratio:.2f}x the listing alone (target <= {TARGET}x): "
        + ("OK" if ratio <= TARGET else "OVER TARGET")
        + f"\n  floor: {args.versions:,} HeadBucket {cheapest:.2f}s; (listing + floor) / "
        f"listing = {floor_ratio:.2f}x"
        + (" (the target is out of reach on moto)" if floor_ratio > TARGET else "")
        + f"\n  ratio to the floor: {full / (base + cheapest):.2f}x"
        + f"\n  trials: ratios {', '.join(f'{e / b:.2f}' for e, b in pairs)}"
        + f"; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "versions": args.versions,
                    "listing_seconds": listing,
                    "encrypted_seconds": encrypted,
                    "requests": requests,
                    "ratio": ratio,
                    "floor_seconds": floors,
                    "floor_ratio": floor_ratio,
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
