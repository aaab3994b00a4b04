"""Parametrize ``record_case`` over every ``backend_*.py`` module in this package."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.backend_modules import BackendSpec, discover
from tests.conformance_records import RecordBackend, RecordCase

SPECS = discover(__package__ or "tests.conformance_records", Path(__file__).parent)


@pytest.fixture(params=SPECS, ids=[s.name for s in SPECS])
def record_case(request: pytest.FixtureRequest, tmp_path: Path) -> RecordCase:
    spec: BackendSpec[RecordBackend] = request.param
    return RecordCase(spec.build(request, tmp_path))
