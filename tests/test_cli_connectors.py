"""``sundown connectors``: the real command lists every scheme with its kind, package and
install state; a missing package shows the extra to install."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from cli import main
from sundown import registry
from tests.fixtures.process import ROOT


def test_the_command_lists_every_scheme_as_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cli", "connectors", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    listed = {c["name"]: c for c in json.loads(out)}
    assert set(registry.schemes()) <= set(listed)
    assert listed["redis"]["kind"] == "record store" and listed["redis"]["installed"] is True
    assert listed["redis"]["package"] == "redis" and listed["redis"]["extra"] == "redis"
    assert "compact" in listed["postgresql"]["capabilities"]
    assert listed["vault_token"]["kind"] == "credential"


def test_a_missing_package_prints_its_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "psycopg" else real(name, *a),
    )
    assert main(["connectors", "--kind", "record store"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "KIND", "INSTALLED"]
    [pg] = [line for line in lines if line.startswith("postgresql ")]
    assert "no: pip install 'sundown[postgres]'" in pg
    assert {line.split()[0] for line in lines[1:]} == {
        "aws-logs",
        "chroma",
        "mlflow",
        "postgresql",
        "redis",
        "sagemaker",
    }
