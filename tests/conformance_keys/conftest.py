"""Parametrise ``key_case`` over every backend in ``backends.py`` (``disabled_case`` and
``pending_case`` over those whose service has the state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conformance_keys.backends import BACKENDS, KeyBackend


@dataclass
class KeyCase:
    backend: KeyBackend
    values: dict[str, Any]

    def secrets(self) -> list[str]:
        return self.backend.secrets(self.values)


def _case(request: pytest.FixtureRequest) -> KeyCase:
    backend: KeyBackend = request.param
    values = {name: request.getfixturevalue(name) for name in backend.fixtures}
    return KeyCase(backend, values)


@pytest.fixture(params=BACKENDS, ids=[b.name for b in BACKENDS])
def key_case(request: pytest.FixtureRequest) -> KeyCase:
    return _case(request)


_DISABLE = [b for b in BACKENDS if b.disable is not None]
_SCHEDULE = [b for b in BACKENDS if b.schedule is not None]


@pytest.fixture(params=_DISABLE, ids=[b.name for b in _DISABLE])
def disabled_case(request: pytest.FixtureRequest) -> KeyCase:
    return _case(request)


@pytest.fixture(params=_SCHEDULE, ids=[b.name for b in _SCHEDULE])
def pending_case(request: pytest.FixtureRequest) -> KeyCase:
    return _case(request)
