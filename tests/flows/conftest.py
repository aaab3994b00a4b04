"""The flow tests' shared fixture: one fresh local system per test (tests/flows/systems.py) on
the session's Prefect server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.flows.systems import System, make_system


@pytest.fixture
def system(tmp_path: Path, prefect_api: str) -> System:
    return make_system(tmp_path / "sys")
