"""Purge benchmark on the GCS and Azure emulators where batch deletes work: gcp-storage-emulator
(GCS JSON-API batch, 100 per request) and Azurite (Blob Batch, 256 per request). The S3 run on
moto's server is benchmarks/purge.py; this one prints the same figures for the other two.

    uv run python benchmarks/purge_gcs_azure.py                  # 2,000 objects, both backends
    uv run python benchmarks/purge_gcs_azure.py --objects 2000 --backend az

fake-gcs-server is not measured: it fails every batch request. Neither emulator keeps versions
(see docs/known-gaps.md), so each run has N objects of one version each under ``models/a/``,
with canaries beside the prefix (``models/ab/...``, ``models/a.bak``, ``models/b.bin``).
The emulator's bucket gets soft-delete retention 0, as an operator who wants an empty re-listing
would set it (GCS keeps soft-deleted copies in scope otherwise).

For each backend, measured in the same run on the same emulator, on same-sized prefixes:

- Sundown: inventory -> purge -> verify (re-list), with the connector;
- reference: one delete request per object after a listing (what a per-object ``rm -r`` does);
- plain SDK loop: list, batch deletes at the API limit, re-list (the emulator's practical limit).

Requests are counted on the wire (every ``requests`` send, retries included). Targets follow
issue 4's: requests per 1000 objects near the API limit's floor (1000/100 = 10 for GCS, 1000/256
~ 3.9 for Azure, plus listing pages), throughput >= 3x the per-object reference and >= 0.9x the
plain loop, 0 canaries touched.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors import azure_blob, gcs  # noqa: E402
from tests.fixtures.azurite import azurite_binary, connection_string  # noqa: E402
from tests.fixtures.gcs import GCS_PROJECT, gcp_storage_emulator_binary  # noqa: E402
from tests.fixtures.process import free_port, port_open, running, start_server  # noqa: E402

PREFIX = "models/a"
CANARY_KEYS = ("models/ab/canary-0.bin", "models/ab/x/canary-1.bin", "models/a.bak", "models/b.bin")


@dataclass
class Phase:
    name: str
    objects: int
    seconds: float
    requests: int
    remaining: int
    canaries_touched: int

    @property
    def per_second(self) -> float:
        return self.objects / self.seconds if self.seconds else float("inf")

    @property
    def requests_per_1000(self) -> float:
        return self.requests * 1000 / self.objects


@contextlib.contextmanager
def count_requests() -> Iterator[list[int]]:
    """Counts every HTTP request sent through ``requests`` (both SDKs use it) in the block."""
    counter = [0]
    original = requests.Session.send

    def send(self: requests.Session, request: Any, **kw: Any) -> Any:
        counter[0] += 1
        return original(self, request, **kw)

    requests.Session.send = send  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        requests.Session.send = original  # type: ignore[method-assign]


# -- backends -----------------------------------------------------------------------------------


class Backend:
    name = "?"
    writers = 16  # parallel seeding writes

    def location(self) -> str:
        raise NotImplementedError

    def seed(self, url: str, keys: list[str]) -> None:
        store = self.open(url)
        with ThreadPoolExecutor(self.writers) as pool:
            list(pool.map(lambda k: store.put(k, b"w"), keys))

    def open(self, url: str) -> Any:
        raise NotImplementedError

    def plain_loop(self, url: str) -> int:
        raise NotImplementedError

    def per_object(self, url: str) -> int:
        raise NotImplementedError


class GcsBackend(Backend):
    name = "gs (gcp-storage-emulator)"
    writers = 4  # its single HTTP server stops accepting connections under 16 writers

    def location(self) -> str:
        client = gcs.new_client()
        bucket = client.create_bucket(f"bench-{time.time_ns()}")
        bucket.soft_delete_policy.retention_duration_seconds = 0
        bucket.patch()
        return f"gs://{bucket.name}"

    def open(self, url: str) -> gcs.GcsStore:
        return gcs.open_store(url)

    def _names(self, url: str) -> tuple[Any, str, list[tuple[str, int]]]:
        bucket, _ = gcs.parse_url(url)
        client = gcs.new_client()
        found = [
            (b.name, b.generation)
            for b in client.list_blobs(bucket, prefix=PREFIX + "/", versions="true")
        ]
        return client, bucket, found

    def plain_loop(self, url: str) -> int:
        client, bucket, found = self._names(url)
        handle = client.bucket(bucket)
        for i in range(0, len(found), 100):
            with client.batch(raise_exception=False):
                for name, generation in found[i : i + 100]:
                    handle.delete_blob(name, generation=generation)
        return len(list(client.list_blobs(bucket, prefix=PREFIX + "/", versions="true")))

    def per_object(self, url: str) -> int:
        client, bucket, found = self._names(url)
        handle = client.bucket(bucket)
        for name, generation in found:
            handle.delete_blob(name, generation=generation)
        return len(list(client.list_blobs(bucket, prefix=PREFIX + "/", versions="true")))


class AzureBackend(Backend):
    name = "az (Azurite)"

    def location(self) -> str:
        name = f"bench-{time.time_ns()}"
        azure_blob.new_service_client().create_container(name)
        return f"az://{name}"

    def open(self, url: str) -> azure_blob.AzureBlobStore:
        return azure_blob.open_store(url)

    def _names(self, url: str) -> tuple[Any, list[str]]:
        container, _ = azure_blob.parse_url(url)
        client = azure_blob.new_service_client().get_container_client(container)
        return client, [b.name for b in client.list_blobs(name_starts_with=PREFIX + "/")]

    def plain_loop(self, url: str) -> int:
        client, names = self._names(url)
        for i in range(0, len(names), 256):
            list(client.delete_blobs(*names[i : i + 256], raise_on_any_failure=False))
        return len(list(client.list_blobs(name_starts_with=PREFIX + "/")))

    def per_object(self, url: str) -> int:
        client, names = self._names(url)
        for name in names:
            client.delete_blob(name)
        return len(list(client.list_blobs(name_starts_with=PREFIX + "/")))


# -- one run ------------------------------------------------------------------------------------


def canaries(backend: Backend, url: str) -> set[tuple[str, str | None]]:
    store = backend.open(url)
    return {(e.key, e.version_id) for e in store.inventory() if not e.key.startswith(PREFIX + "/")}


def measure(
    backend: Backend, name: str, n: int, action: Callable[[str], tuple[int, int | None]]
) -> Phase:
    url = backend.location()
    backend.seed(url, [f"{PREFIX}/shard-{i:06d}.bin" for i in range(n)] + list(CANARY_KEYS))
    before = canaries(backend, url)
    with count_requests() as counter:
        start = time.perf_counter()
        remaining, found = action(url)
        seconds = time.perf_counter() - start
    if found is not None and found != n:
        raise SystemExit(f"{name}: inventory found {found}, expected {n}")
    return Phase(name, n, seconds, counter[0], remaining, len(before ^ canaries(backend, url)))


def sundown(backend: Backend) -> Callable[[str], tuple[int, int | None]]:
    def run(url: str) -> tuple[int, int | None]:
        store = backend.open(url + "/" + PREFIX)
        entries = list(store.inventory())
        result = store.purge(entries)
        if result.held or result.failed:
            raise SystemExit(f"purge: {len(result.held)} held, {len(result.failed)} failed")
        return len(list(store.inventory())), len(entries)

    return run


def run_backend(backend: Backend, n: int) -> dict[str, Any]:
    phases = [
        measure(backend, "sundown inventory+purge+verify", n, sundown(backend)),
        measure(
            backend, "plain SDK list+batch+re-list", n, lambda u: (backend.plain_loop(u), None)
        ),
        measure(
            backend, "per-object deletes (reference)", n, lambda u: (backend.per_object(u), None)
        ),
    ]
    print(f"\n{backend.name}: {n} objects", flush=True)
    for p in phases:
        print(
            f"  {p.name:34s} {p.per_second:9.0f} objects/s  {p.requests_per_1000:7.1f} req/1000"
            f"  remaining {p.remaining}  canaries touched {p.canaries_touched}"
        )
    ours, plain, ref = phases
    ratios = {
        "vs_reference": ours.per_second / ref.per_second,
        "vs_plain_loop": ours.per_second / plain.per_second,
    }
    print(
        f"  ratio: {ratios['vs_reference']:.2f}x the per-object reference, "
        f"{ratios['vs_plain_loop']:.2f}x the plain loop"
    )
    return {
        "backend": backend.name,
        "phases": [{**asdict(p), "per_second": p.per_second} for p in phases],
        **ratios,
    }


@contextlib.contextmanager
def gcs_emulator() -> Iterator[None]:
    port = free_port()
    server = start_server(
        "bench-gcp-storage-emulator",
        [
            gcp_storage_emulator_binary(),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
            "--quiet",
        ],
        port,
    )
    with running(server):
        os.environ["STORAGE_EMULATOR_HOST"] = server.url
        os.environ["GOOGLE_CLOUD_PROJECT"] = GCS_PROJECT
        yield


@contextlib.contextmanager
def azurite() -> Iterator[None]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        server = start_server(
            "bench-azurite",
            [
                azurite_binary(),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--location",
                data,
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
            ],
            port,
            ready=lambda: port_open(port),
        )
        with running(server):
            os.environ["AZURE_STORAGE_CONNECTION_STRING"] = connection_string(server.url)
            yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--backend", choices=["gs", "az", "all"], default="all")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results = []
    if args.backend in ("gs", "all"):
        with gcs_emulator():
            results.append(run_backend(GcsBackend(), args.objects))
    if args.backend in ("az", "all"):
        with azurite():
            results.append(run_backend(AzureBackend(), args.objects))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
