"""One PostgreSQL-backed Prefect server for the scale tests that need one (tests/scale/
test_workers.py, test_worker_death.py), started once per session with the work pool and the
deployments of prefect.yaml: PostgreSQL, the server and ``prefect deploy --all`` cost tens of
seconds, paid once. Each test starts its own workers and names its flow runs by its system."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.fixtures.postgres import Postgres, start_postgres
from tests.fixtures.prefect import start_prefect_server
from tests.fixtures.process import running
from tests.scale.servers import prefect_cli

POOL = "sundown"  # the work pool prefect.yaml names


@pytest.fixture(scope="session")
def prefect_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Postgres]]:
    """(the API URL, its PostgreSQL) with the pool made and prefect.yaml deployed."""
    started = time.monotonic()
    with running(start_postgres()) as pg:
        server = start_prefect_server(
            tmp_path_factory.mktemp("prefect-pg-home"), pg.url, name="prefect-postgres"
        )
        with running(server):
            api = f"{server.url}/api"
            prefect_cli(api, "work-pool", "create", POOL, "--type", "process")
            deployed = prefect_cli(api, "deploy", "--all")
            assert "run-shard/shard" in deployed and "decommission-system/decommission" in deployed
            print(f"\nPostgreSQL-backed Prefect server ready in {time.monotonic() - started:.1f}s")
            yield api, pg
