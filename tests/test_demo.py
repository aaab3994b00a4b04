"""README's first command: `sundown demo` on the embedded default, with none of the extras."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sundown.signing import verify_model

# The packages of the extras (pyproject.toml) that a core install lacks: README's demo command
# installs no extra (`uv run --no-dev`), so the demo runs here with each refused at import, as if
# absent. Not redis: Prefect's server needs it (docket), so a core install has it anyway
# (`uv export --no-dev` lists what a core install holds).
EXTRAS_ONLY = ("boto3", "botocore", "s3transfer", "google.cloud", "google.auth",
               "google.api_core", "google_crc32c", "azure", "hvac",
               "psycopg", "chromadb", "mlflow")  # fmt: skip
WITHOUT_EXTRAS = f"""
import sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == m or name.startswith(m + ".") for m in {EXTRAS_ONLY!r}):
            raise ModuleNotFoundError(f"No module named {{name!r}} (an extra, not installed)")
        return None

sys.meta_path.insert(0, Absent())
from cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, "demo", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "an extra, not installed" not in proc.stdout + proc.stderr
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
    # part 2: the lifecycle through the flows (deploy, rotate, retention, decommission)
    out = proc.stdout
    assert "KEK v1 -> v2, 4 sidecars re-wrapped" in out
    assert "retention: 1 archived, 2 purged" in out
    assert "decommission: complete\n" in out
    assert "certificate verified: OK" in out and "status complete" in out
    # cryptographic erase is claimed for the weights (ciphertexts and sidecars) only; the
    # signature bundle beside them and the plaintext data and logs are logical deletion
    ce, logical = "Purge (cryptographic erase)", "logical deletion (not an SP 800-88"
    assert f"claims for models/demo-sentiment: {ce}: 8 copies; {logical}" in out
    assert out.count(ce) == 1
    assert f"claims for logs/demo-sentiment: {logical}" in out
    assert f"claims for datasets/demo-sentiment/train: {logical}" in out
    assert "claims for cache/demo-sentiment: nothing found" in out
    cert = Path(re.search(r"  certificate: (\S+)", out)[1])  # type: ignore[index]
    pdf = Path(re.search(r"  PDF: (\S+)", out)[1])  # type: ignore[index]
    assert cert.name == "certificate.dsse.json" and pdf.read_bytes().startswith(b"%PDF")
    life = run / "lifecycle"
    stores = life / "stores"
    for gone in ("models/demo-sentiment", "logs/demo-sentiment", "cache/demo-sentiment",
                 "datasets/demo-sentiment/train"):  # fmt: skip
        assert not any(p.is_file() for p in (stores / gone).rglob("*")), gone
    archived = sorted(p.name for p in (stores / "archive").rglob("*") if p.is_file())
    assert "reviews-2024.parquet" in archived and "model-00001-of-00002.safetensors" in archived
    # the certificate verifies offline with the exported key as anchor and the ledger as
    # evidence up to the head the demo printed, through the CLI too; without an anchor it does not
    head = re.search(r"  ledger head: (\d+:sha256:[0-9a-f]{64})", out)
    assert head, out
    for prefix in ("deployed", "KEK v1 -> v2", "retention"):
        assert re.search(rf"{prefix}.*ledger head \d+:sha256:[0-9a-f]{{64}}", out), prefix
    check = subprocess.run(
        [sys.executable, "-m", "cli", "certificate", "verify", str(cert),
         "--public-key", str(life / "certificate-signing.pub.pem"),
         "--ledger", (life / "evidence").as_uri(), "--expect-head", head[1]],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert f"(ledger head {head[1]})" in check.stdout
    bare = subprocess.run(
        [sys.executable, "-m", "cli", "certificate", "verify", str(cert)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bare.returncode == 3 and "nothing you trust vouches for" in bare.stderr
    # keys are 0600 in the keyring under --home
    key_files = [p for p in (home / "keys").rglob("*") if p.is_file()]
    assert key_files and all(p.stat().st_mode & 0o077 == 0 for p in key_files)
