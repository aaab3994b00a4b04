"""Parametrize ``store_case`` over every ``backend_*.py`` module in this package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend_modules import BackendSpec, discover
from tests.conformance import StoreBackend, StoreCase

SPECS = discover(__package__ or "tests.conformance", Path(__file__).parent)


@pytest.fixture(params=SPECS, ids=[s.name for s in SPECS])
def store_case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreCase]:
    spec: BackendSpec[StoreBackend] = request.param
    backend = spec.build(request, tmp_path)
    try:
        yield StoreCase(backend, tmp_path)
    finally:
        backend.cleanup()
