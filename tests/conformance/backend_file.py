"""The file:// store in the conformance suite: a fresh folder per location."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.backend_modules import BackendSpec
from tests.conformance import StoreBackend, unique


class FileBackend(StoreBackend):
    name = "file"

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def new_location(
        self, *, versioning: bool = False, object_lock: bool = False, soft_delete: bool = False
    ) -> str:
        folder = self.tmp_path / unique("loc")
        folder.mkdir()
        return folder.as_uri()


def _factory(fixtures: Mapping[str, Any], tmp_path: Path) -> StoreBackend:
    return FileBackend(tmp_path)


BACKENDS = [BackendSpec("file", (), _factory)]
