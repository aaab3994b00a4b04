"""Parametrize ``store_case`` over every ``backend_*.py`` module in this package."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance import BackendSpec, StoreCase


def discover() -> list[BackendSpec]:
    specs: list[BackendSpec] = []
    package = Path(__file__).parent
    for module in sorted(pkgutil.iter_modules([str(package)]), key=lambda m: m.name):
        if module.name.startswith("backend_"):
            loaded = importlib.import_module(f"tests.conformance.{module.name}")
            specs.extend(loaded.BACKENDS)
    names = [s.name for s in specs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"conformance backends named twice: {sorted(duplicates)}")
    return specs


SPECS = discover()


@pytest.fixture(params=SPECS, ids=[s.name for s in SPECS])
def store_case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreCase]:
    spec: BackendSpec = request.param
    values = {name: request.getfixturevalue(name) for name in spec.fixtures}
    backend = spec.factory(values, tmp_path)
    try:
        yield StoreCase(backend, tmp_path)
    finally:
        backend.cleanup()
