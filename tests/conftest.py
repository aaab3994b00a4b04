"""Session-wide test setup.

Server fixtures (one server of each kind per session, started by the suite itself) live in
``tests/fixtures/`` and are registered here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins: list[str] = [
    "tests.fixtures.moto",
    "tests.fixtures.openbao",
    "tests.fixtures.azurite",
    "tests.fixtures.gcs",
    "tests.fixtures.prefect",
    "tests.fixtures.fake_kms",
    "tests.fixtures.fake_arm",
    "tests.fixtures.postgres",
    "tests.fixtures.redis",
    "tests.fixtures.chroma",
    "tests.fixtures.mlflow",
]


@pytest.fixture(autouse=True)
def sundown_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Every test gets its own SUNDOWN_HOME: no test touches the user's ~/.sundown."""
    home = tmp_path_factory.mktemp("sundown-home")
    monkeypatch.setenv("SUNDOWN_HOME", str(home))
    yield home


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(
        "PREFECT_HOME", str(Path(__file__).resolve().parents[1] / "test-output" / "prefect-home")
    )
