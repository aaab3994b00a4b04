"""README's first command: `sundown demo` on the embedded default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sundown.signing import verify_model


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "sundown", "demo", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "verified the signature: OK" in proc.stdout
    (run,) = (home / "demo").iterdir()
    restored = run / "restored" / "model"
    original = run / "model"
    names = sorted(p.name for p in original.iterdir())
    assert sorted(p.name for p in restored.iterdir()) == names
    for name in names:
        assert (restored / name).read_bytes() == (original / name).read_bytes()
        stored = run / "store" / "weights" / name
        assert stored.read_bytes() != (original / name).read_bytes()  # ciphertext at rest
        assert (run / "store" / "weights" / f"{name}.sidecar.json").exists()
    # the bundle verifies over the original model too, with the exported public key
    verify_model(
        original, (run / "model.sig").read_bytes(), (run / "signing-key.pub.pem").read_bytes()
    )
    # keys are 0600 in the keyring under --home
    key_files = [p for p in (home / "keys").rglob("*") if p.is_file()]
    assert key_files and all(p.stat().st_mode & 0o077 == 0 for p in key_files)
