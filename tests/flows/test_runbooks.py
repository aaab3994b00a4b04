"""Every `sundown ...` command quoted in runbooks/ exists with the options it uses. (What the
commands do is exercised end to end in test_cli_lifecycle.py, test_decommission.py,
test_lifecycle.py and the certificate and ledger tests.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"
EXPECTED = {
    "decommission.md",
    "deploy.md",
    "rotate.md",
    "emergency-revocation.md",
    "retention.md",
    "verify-certificate.md",
    "prefect-on-postgres.md",
}
GROUPS = {"keys", "certificate", "ledger"}


def commands() -> list[tuple[str, str]]:
    out = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        for snippet in re.findall(r"`(sundown [^`]+)`", path.read_text()):
            out.append((path.name, snippet))
    return out


def test_every_operation_has_a_runbook_with_the_sections() -> None:
    assert {p.name for p in RUNBOOKS.glob("*.md")} >= EXPECTED  # one per operation, at least
    for path in RUNBOOKS.glob("*.md"):
        text = path.read_text()
        for section in ("**When:**", "## Preconditions", "## Evidence left"):
            assert section in text, f"{path.name} lacks {section}"
        assert "halfway" in text or "## If it fails" in text, path.name


@pytest.mark.parametrize(("runbook", "command"), commands())
def test_runbook_command_exists_with_its_options(runbook: str, command: str) -> None:
    words = shlex.split(command)[1:]
    path = words[:2] if words[0] in GROUPS else words[:1]
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, f"{runbook}: `{command}`: {result.output}"
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert option in result.output, f"{runbook}: `{command}`: no option {option}"
