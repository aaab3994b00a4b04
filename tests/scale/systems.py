"""A system with many small objects on the file store, for the sharding tests and benchmarks.

Two locations (logs and training data) hold ``count`` files each, spread over sub-folders; a
canary sits beside every prefix (``logs/NAMEx``, ``logs/NAME-old``, ``logs/NAME.bin``), so a test
can prove that nothing outside the spec's scope changed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from sundown import registry
from tests.spec_builder import spec_yaml


def spec_text(name: str) -> str:
    """Logs and training data on file stores under ``${ROOT}``, the default local keys."""
    root = "file://${ROOT}/stores"
    return spec_yaml(
        name,
        assets={
            "logs": {"locations": [f"{root}/logs/{name}"]},
            "training_data": {"locations": [f"{root}/data/{name}"]},
        },
        evidence="file://${ROOT}/evidence",
        approval={"roles": ["security-officer"]},
    )


PARTS = ("logs", "data")


@dataclass
class BigSystem:
    name: str
    root: Path
    spec_path: Path
    count: int
    canaries: dict[Path, str] = field(default_factory=dict)

    @property
    def variables(self) -> dict[str, str]:
        return {"ROOT": str(self.root)}

    def files(self, part: str) -> int:
        base = self.root / "stores" / part / self.name
        return sum(1 for p in base.rglob("*") if p.is_file()) if base.exists() else 0

    def canaries_intact(self) -> bool:
        return all(
            p.exists() and hashlib.sha256(p.read_bytes()).hexdigest() == digest
            for p, digest in self.canaries.items()
        )


def make_big_system(root: Path, name: str, count: int, *, keys: bool = True) -> BigSystem:
    """``count`` files in each of the two locations (100 per folder), canaries around them."""
    root.mkdir(parents=True, exist_ok=True)
    spec_path = root / f"{name}.yaml"
    spec_path.write_text(spec_text(name))
    system = BigSystem(name, root, spec_path, count)
    if keys:
        registry.create_key(f"local://{name}-kek")
        registry.create_key(f"local://{name}-certificates", signing=True)
    for part in PARTS:
        base = root / "stores" / part / name
        for i in range(count):
            path = base / f"{i // 100:04d}" / f"{i:06d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(i.to_bytes(4, "big") + os.urandom(12))
        for sibling in (f"{name}x/canary.bin", f"{name}-old/canary.bin", f"{name}.bin"):
            path = root / "stores" / part / sibling
            path.parent.mkdir(parents=True, exist_ok=True)
            data = os.urandom(64)
            path.write_bytes(data)
            system.canaries[path] = hashlib.sha256(data).hexdigest()
    return system
