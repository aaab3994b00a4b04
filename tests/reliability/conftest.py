"""Fixtures of the reliability and security suite (tests/reliability/).

- ``cli``: run ``sundown`` in this process (``cli.main``), returning (exit code, stdout,
  stderr), with Prefect's console log silenced the way the lifecycle commands do it.
- ``victim``: a module-wide system with canaries on the file store and on moto's S3 (see
  :mod:`tests.reliability.world`); its spec is valid, so a bad input is a mutation of it.
- ``figures``: a session-wide tally (inputs tried, faults injected, trials, anything lost) that
  is printed at the end of the session and written to ``test-output/reliability-figures.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sundown import registry
from tests.fixtures.moto import moto_environment
from tests.fixtures.process import ROOT
from tests.reliability.world import (
    World,
    encrypt_files,
    make_bucket,
    put_versions,
    unique,
)
from tests.spec_builder import spec_yaml

FIGURES_FILE = ROOT / "test-output" / "reliability-figures.json"
_FIGURES: dict[str, int] = {}
_FIGURES_LOCK = threading.Lock()


def count(name: str, n: int = 1) -> None:
    """Add to a figure of the suite (reported at the end of the session)."""
    with _FIGURES_LOCK:
        _FIGURES[name] = _FIGURES.get(name, 0) + n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, value in sorted(_FIGURES.items()):
        terminalreporter.write_line(f"{name}: {value}")
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    FIGURES_FILE.write_text(json.dumps(_FIGURES, indent=1, sort_keys=True) + "\n")


CliRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliRun:
    from cli import main

    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def victim_spec(root: Path, bucket: str) -> str:
    """The victim: weights archived from a folder, logs in S3 under a retention rule."""
    return spec_yaml(
        "victim",
        assets={
            "weights": {
                "on_retirement": "archive",
                "locations": [f"file://{root}/stores/models/victim"],
            },
            "logs": {
                "locations": [f"s3://{bucket}/logs/victim"],
                "retention": {"delete_after_days": 30},
            },
        },
        archive={"target": f"file://{root}/stores/archive/victim", "key": "local://victim-archive"},
        keys={"kek": "local://victim-kek", "certificate": "local://victim-certs"},
        evidence=f"file://{root}/evidence",
        approval={"roles": ["security-officer"], "max_age_hours": 24},
    )


def neighbour_spec(root: Path, bucket: str) -> str:
    """Another team's system beside the victim, in the same bucket."""
    return spec_yaml(
        "neighbour",
        owner="other-team@example.com",
        assets={"logs": {"locations": [f"s3://{bucket}/logs/neighbour"]}},
        keys={"kek": "local://neighbour-kek", "certificate": "local://neighbour-certs"},
        evidence=f"file://{root}/evidence-neighbour",
    )


# Buckets the spec corpus of tests/specs/bad names: made real (with canaries) on moto, so
# that a bad spec that got through would meet real objects.
CORPUS_BUCKETS = ("acme-models", "acme-archive", "acme-evidence")


@dataclass
class Victim:
    world: World
    bucket: str
    spec: Path
    text: str
    env: dict[str, str]

    @property
    def root(self) -> Path:
        return self.world.root

    def variant(self, name: str, text: str, folder: str = "bad") -> Path:
        """A spec variant alone in its own folder: the lifecycle commands check a spec against
        the other specs in its folder. ``folder="."`` puts it beside copies of the other
        systems' specs (the victim's own left out: the variant stands in for it)."""
        path = self.root / "systems" / folder / name / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        if folder == ".":
            for other in (self.root / "systems").glob("*.yaml"):
                if other.resolve() != self.spec.resolve():
                    shutil.copy(other, path.parent / other.name)
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def victim_world(tmp_path_factory: pytest.TempPathFactory, moto_server: str) -> Victim:
    root = tmp_path_factory.mktemp("victim")
    home = root / "home"
    env = {**moto_environment(moto_server), "SUNDOWN_HOME": str(home)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.setenv("AWS_CONFIG_FILE", "/dev/null")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        bucket = make_bucket(unique("rl-victim"))
        world = World(root=root, home=home, buckets=[bucket, *CORPUS_BUCKETS])
        for b in CORPUS_BUCKETS:
            make_bucket(b)
            world.plant_s3_canaries(b, "fraud-scoring")
        for name in ("victim-kek", "victim-archive", "neighbour-kek"):
            registry.create_key(f"local://{name}")
        for name in ("victim-certs", "neighbour-certs"):
            registry.create_key(f"local://{name}", signing=True)
        encrypt_files(
            (root / "stores" / "models" / "victim").as_uri(),
            "local://victim-kek",
            "victim",
            {"config.json": os.urandom(300), "model.safetensors": os.urandom(5000)},
        )
        put_versions(bucket, "logs/victim", ["a.log", "b.log"])
        put_versions(bucket, "logs/neighbour", ["n.log"])
        world.plant_s3_canaries(bucket, "logs/victim")
        for part in ("models", "archive"):
            world.plant_file_canaries(part, "victim")
        text = victim_spec(root, bucket)
        spec = root / "systems" / "victim.yaml"
        spec.parent.mkdir(parents=True)
        spec.write_text(text)
        (root / "systems" / "neighbour.yaml").write_text(neighbour_spec(root, bucket))
    return Victim(world=world, bucket=bucket, spec=spec, text=text, env=env)


@pytest.fixture
def victim(
    victim_world: Victim, monkeypatch: pytest.MonkeyPatch, prefect_api: str
) -> Iterator[Victim]:
    for k, v in victim_world.env.items():
        monkeypatch.setenv(k, v)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    yield victim_world
