"""A Prefect server (on the private PostgreSQL cluster of tests/fixtures/postgres.py) and Prefect
process workers, for the scale tests and benchmarks/scale.py. Everything listens on loopback
ports and is stopped by pid. A Prefect
worker ignores its first SIGTERM, so workers are stopped with SIGTERM, then SIGKILL after a few
seconds (:func:`tests.fixtures.process.stop_process`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

from tests.fixtures.prefect import PREFECT
from tests.fixtures.process import ROOT, Server, free_port, start_server, stop_process


def prefect_cli(api_url: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a ``prefect`` command against ``api_url`` from the repository root."""
    out = subprocess.run(
        [PREFECT, "--no-prompt", *args],
        cwd=ROOT,
        env={**os.environ, "PREFECT_API_URL": api_url, **(env or {})},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"prefect {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def _worker_online(api_url: str, pool: str, name: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        get_client(sync_client=True) as client,
    ):
        workers = client.read_workers_for_work_pool(pool)
    return any(w.name == name for w in workers)


def start_worker(api_url: str, pool: str, name: str, env: dict[str, str], *, limit: int) -> Server:
    """``prefect worker start --pool POOL --limit N`` in its own process group."""
    return start_server(
        f"worker-{name}",
        [PREFECT, "worker", "start", "--pool", pool, "--name", name, "--limit", str(limit),
         "--type", "process"],
        free_port(),  # names the log file only
        env={"PREFECT_API_URL": api_url, "PREFECT_WORKER_QUERY_SECONDS": "1",
             "PREFECT_WORKER_HEARTBEAT_SECONDS": "5", "SUNDOWN_REPO": str(ROOT), **env},
        ready=lambda: _worker_online(api_url, pool, name),
        timeout=90,
        cwd=ROOT,
    )  # fmt: skip


def stop_workers(workers: list[Server], grace: float = 5) -> None:
    """SIGTERM to every worker's process group, then SIGKILL to those still running after
    ``grace`` seconds (a worker ignores its first SIGTERM)."""
    import signal
    import time

    for w in workers:
        if w.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for w in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            w.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        stop_process(w.process, timeout=1)  # SIGTERM again, then SIGKILL


@contextlib.contextmanager
def workers(
    api_url: str, pool: str, names: list[str], env: dict[str, str], *, limit: int
) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for name in names:
            started.append(start_worker(api_url, pool, name, env, limit=limit))
        yield started
    finally:
        stop_workers(started)
