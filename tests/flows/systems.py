"""A small system on the embedded default (file store + local keyring) for flow tests.

Weights are envelope-encrypted files with sidecars, logs and data plain files; a canary object
sits beside every prefix (``models/sys`` next to ``models/sysx`` and ``models/sys-old``), so a
test can prove that nothing outside the spec's scope was touched.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from sundown import registry
from sundown.envelope import Artifact, encrypt_to_store
from tests.spec_builder import spec_yaml


def spec_text(name: str) -> str:
    """The system's spec: weights (archived), logs and training data with retention rules, on
    file stores under ``${ROOT}``, local keys named after the system."""
    root = "file://${ROOT}/stores"
    return spec_yaml(
        name,
        assets={
            "weights": {"locations": [f"{root}/models/{name}"], "on_retirement": "archive"},
            "logs": {
                "locations": [f"{root}/logs/{name}"],
                "retention": {"delete_after_days": 30},
            },
            "training_data": {
                "locations": [f"{root}/data/{name}"],
                "retention": {"archive_after_days": 90, "delete_after_days": 365},
            },
        },
        archive={"target": f"{root}/archive/{name}", "key": f"local://{name}-archive"},
        keys={
            "kek": f"local://{name}-kek",
            "model_signing": f"local://{name}-signing",
            "certificate": f"local://{name}-certificates",
        },
        evidence="file://${ROOT}/evidence",
        approval={"roles": ["security-officer", "ml-platform-lead"]},
    )


WEIGHTS = {"config.json": 1500, "model.safetensors": 300_000}
LOGS = {"2025/01/01.log": 4000, "2025/01/02.log": 5000, "2025/01/03.log": 100}
DATA = {"train/part-0.parquet": 20_000, "train/part-1.parquet": 21_000}


@dataclass
class System:
    name: str
    root: Path
    spec_path: Path
    canaries: dict[Path, str]  # canary file -> its sha256

    @property
    def variables(self) -> dict[str, str]:
        return {"ROOT": str(self.root)}

    def store(self, part: str) -> Path:
        return self.root / "stores" / part

    def files(self, part: str) -> list[str]:
        base = self.store(part)
        if not base.exists():
            return []
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())

    def canaries_intact(self) -> bool:
        return all(
            p.exists() and hashlib.sha256(p.read_bytes()).hexdigest() == digest
            for p, digest in self.canaries.items()
        )


def make_system(
    root: Path, name: str = "sys-a", *, with_keys: bool = True, with_weights: bool = True
) -> System:
    root.mkdir(parents=True, exist_ok=True)
    spec_path = root / f"{name}.yaml"
    spec_path.write_text(spec_text(name))
    system = System(name, root, spec_path, {})
    if with_keys:
        registry.create_key(f"local://{name}-kek")
        registry.create_key(f"local://{name}-archive")
        registry.create_key(f"local://{name}-signing", signing=True)
        registry.create_key(f"local://{name}-certificates", signing=True)
    kek = registry.open_key_service(f"local://{name}-kek")
    weights = registry.open_store(system.store(f"models/{name}").as_uri())
    for fname, size in WEIGHTS.items() if with_weights else ():
        encrypt_to_store(
            io.BytesIO(os.urandom(size)),
            weights,
            fname,
            kek,
            Artifact(system=name, path=fname, version="v1"),
        )
    for part, files in ((f"logs/{name}", LOGS), (f"data/{name}", DATA)):
        for fname, size in files.items():
            path = system.store(part) / fname
            path.parent.mkdir(parents=True, exist_ok=True)
            # Plaintext as real files begin (a Parquet magic, a log line), never with the
            # envelope header's first byte: a random 20,000-byte file starting with 0x28 has the
            # shape of a ciphertext and rightly stops an archive (1 run in 256 did).
            magic = b"PAR1" if fname.endswith(".parquet") else b"ts="
            path.write_bytes(magic + os.urandom(size - len(magic)))
    # canaries beside every prefix: same parent, names sharing the prefix as a string
    for part in ("models", "logs", "data", "archive"):
        for sibling in (f"{name}x", f"{name}-old", f"{name}.bak"):
            path = system.store(part) / sibling / "canary.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = os.urandom(64)
            path.write_bytes(data)
            system.canaries[path] = hashlib.sha256(data).hexdigest()
        path = system.store(part) / f"{name}x.bin"
        data = os.urandom(32)
        path.write_bytes(data)
        system.canaries[path] = hashlib.sha256(data).hexdigest()
    return system
