"""Parametrize ``record_case`` over every ``backend_*.py`` module in this package."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

from tests.conformance_records import RecordBackendSpec, RecordCase


def discover() -> list[RecordBackendSpec]:
    specs: list[RecordBackendSpec] = []
    package = Path(__file__).parent
    for module in sorted(pkgutil.iter_modules([str(package)]), key=lambda m: m.name):
        if module.name.startswith("backend_"):
            loaded = importlib.import_module(f"tests.conformance_records.{module.name}")
            specs.extend(loaded.BACKENDS)
    return specs


SPECS = discover()


@pytest.fixture(params=SPECS, ids=[s.name for s in SPECS])
def record_case(request: pytest.FixtureRequest, tmp_path: Path) -> RecordCase:
    spec: RecordBackendSpec = request.param
    values = {name: request.getfixturevalue(name) for name in spec.fixtures}
    return RecordCase(spec.factory(values, tmp_path))
