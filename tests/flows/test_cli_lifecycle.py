"""The lifecycle commands end to end as a user runs them (subprocess), against the test's
Prefect server (PREFECT_API_URL), on the embedded default."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sundown import registry
from sundown.errors import KeyDestroyedError
from tests.flows.systems import System


def sundown(*args: str, api: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": api, "SUNDOWN_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_plan_then_decommission_with_the_reviewed_digest(
    system: System, prefect_api: str, sundown_home: Path, tmp_path: Path
) -> None:
    var = ["--var", f"ROOT={system.root}"]
    spec = str(system.spec_path)
    plan = sundown("plan", spec, *var, api=prefect_api, home=sundown_home)
    assert plan.returncode == 0, plan.stderr
    digest = re.search(r"Plan digest: (sha256:[0-9a-f]{64})", plan.stdout)
    assert digest, plan.stdout
    assert "| **total** |" in plan.stdout

    # exactly one of --dry-run / --approve; --approve needs an approver
    bad = sundown("decommission", spec, *var, api=prefect_api, home=sundown_home)
    assert bad.returncode == 2 and "exactly one of --dry-run and --approve" in bad.stderr
    bad = sundown("decommission", spec, *var, "--approve", digest[1], api=prefect_api,
                  home=sundown_home)  # fmt: skip
    assert bad.returncode == 2 and "--approver" in bad.stderr
    wrong = sundown(
        "decommission", spec, *var, "--approve", "sha256:" + "1" * 64, "--approver", "Lee",
        "--approver-role", "security-officer", api=prefect_api, home=sundown_home,
    )  # fmt: skip
    assert wrong.returncode == 2, wrong.stderr
    assert "approval names plan digest" in wrong.stderr and "Traceback" not in wrong.stderr
    assert len(system.files("models/sys-a")) == 4

    done = sundown(
        "decommission", spec, *var, "--approve", digest[1], "--approver", "Lee Marchetti",
        "--approver-role", "security-officer", api=prefect_api, home=sundown_home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sys-a: complete (plan " in done.stdout
    cert = re.search(r"Certificate: (\S+)", done.stdout)
    pdf = re.search(r"PDF: (\S+)", done.stdout)
    assert cert and pdf and Path(pdf[1]).read_bytes().startswith(b"%PDF")
    assert system.files("models/sys-a") == [] and system.canaries_intact()
    with pytest.raises(KeyDestroyedError):
        registry.open_key_service("local://sys-a-kek")
    pub = tmp_path / "cert.pub.pem"
    pub.write_bytes(registry.open_signer("local://sys-a-certificates").public_key_pem())
    head = re.search(r"ledger record \d+, ledger head (\d+:sha256:[0-9a-f]{64})", done.stdout)
    assert head, done.stdout
    verify = sundown("certificate", "verify", cert[1], "--public-key", str(pub), "--ledger",
                     (system.root / "evidence").as_uri(), "--expect-head", head[1],
                     api=prefect_api, home=sundown_home)  # fmt: skip
    assert verify.returncode == 0, verify.stderr + verify.stdout
    assert f"(ledger head {head[1]})" in verify.stdout


def test_retention_rotate_revoke_commands(
    system: System, prefect_api: str, sundown_home: Path
) -> None:
    var = ["--var", f"ROOT={system.root}"]
    spec = str(system.spec_path)
    dry = sundown("retention", spec, *var, "--dry-run", api=prefect_api, home=sundown_home)
    assert dry.returncode == 0, dry.stderr
    assert "would archive 0, would purge 0" in dry.stdout
    rot = sundown("rotate", spec, *var, "--lease-seconds", "30", api=prefect_api, home=sundown_home)
    assert rot.returncode == 0, rot.stderr
    assert "local://sys-a-kek: v1 -> v2, 2 of 2 sidecar(s) re-wrapped" in rot.stdout
    lease = json.loads(max((system.root / "evidence" / "leases" / "sys-a").iterdir()).read_text())
    assert lease["purpose"] == "rotate" and lease["released"]  # taken for 30 s, then given back
    bad = sundown("rotate", spec, *var, "--lease-seconds", "0", api=prefect_api, home=sundown_home)
    assert bad.returncode == 2 and "lease-seconds" in bad.stderr
    rev = sundown("revoke", spec, *var, "--reason", "drill", api=prefect_api, home=sundown_home)
    assert rev.returncode == 0, rev.stderr
    assert re.search(r"ledger record \d+, ledger head \d+:sha256:[0-9a-f]{64}", rev.stdout)
    assert re.search(r"ledger record \d+, ledger head \d+:sha256:[0-9a-f]{64}", rot.stdout)
    missing = sundown("rotate", str(system.root / "nope.yaml"), api=prefect_api, home=sundown_home)
    assert missing.returncode == 2 and "no such file" in missing.stderr

    # a credential that cannot be revoked: named, and the command's exit code says so
    (system.root / "alone").mkdir()  # not beside sys-a's spec: it would overlap it
    failing = system.root / "alone" / "sys-a.yaml"
    failing.write_text(
        system.spec_path.read_text() + "credentials:\n  vault_token_accessors: [abcdefgh1234]\n"
    )
    rev = sundown("revoke", str(failing), *var, api=prefect_api, home=sundown_home)
    assert rev.returncode == 1, (rev.stdout, rev.stderr)
    assert "NOT revoked: vault_token abcdefgh1234" in rev.stdout
    assert re.search(r"ledger record \d+, ledger head", rev.stdout)  # recorded all the same
