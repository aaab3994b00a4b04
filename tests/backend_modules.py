"""The plug-in shape the conformance suites share: a package's ``backend_*.py`` modules each
define ``BACKENDS``, a list of :class:`BackendSpec`; the suite's conftest parametrises its case
fixture over :func:`discover`, and :meth:`BackendSpec.build` makes one backend from the fixtures
it names."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

B = TypeVar("B")


@dataclass(frozen=True)
class BackendSpec(Generic[B]):
    """A backend of a suite: its id, the fixtures it needs, and how to make it from their
    values and the test's ``tmp_path``."""

    name: str
    fixtures: tuple[str, ...]
    factory: Callable[[Mapping[str, Any], Path], B]

    def build(self, request: pytest.FixtureRequest, tmp_path: Path) -> B:
        values = {name: request.getfixturevalue(name) for name in self.fixtures}
        return self.factory(values, tmp_path)


def discover(package: str, folder: Path) -> list[BackendSpec[Any]]:
    """Every ``BACKENDS`` entry of the ``backend_*.py`` modules of ``package`` (in ``folder``),
    in module order. Two backends with one name would run as one test id: RuntimeError."""
    specs: list[BackendSpec[Any]] = []
    for module in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        if module.name.startswith("backend_"):
            specs.extend(importlib.import_module(f"{package}.{module.name}").BACKENDS)
    names = [s.name for s in specs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"{package} backends named twice: {sorted(duplicates)}")
    return specs
