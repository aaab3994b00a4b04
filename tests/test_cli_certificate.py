"""`sundown certificate verify|render` and `sundown ledger verify|list`."""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sundown import canonical, registry
from sundown.certificate import (
    CERTIFICATE_NAME,
    MANIFEST_NAME,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    public_key_fingerprint,
    sign_certificate,
    write_manifest,
)
from sundown.ledger import Ledger
from tests.certificate_sample import sample_certificate
from tests.cli_run import run as _run
from tests.test_certificate import NOW, LocalSigner


@pytest.fixture
def signer() -> LocalSigner:
    return LocalSigner()


@pytest.fixture
def evidence(tmp_path: Path, signer: LocalSigner) -> Path:
    """A signed certificate with its deletion manifest beside it, and the public key."""
    folder = tmp_path / "evidence"
    folder.mkdir()
    sample = sample_certificate(now=NOW, with_exceptions=True)
    with open(folder / MANIFEST_NAME, "wb") as out:
        write_manifest(sample.manifest_entries, out)
    signed = sign_certificate(sample.certificate, signer)
    (folder / CERTIFICATE_NAME).write_bytes(signed.data)
    (tmp_path / "signing.pub.pem").write_bytes(signer.public_key_pem())
    return folder / CERTIFICATE_NAME


def _key(evidence: Path) -> str:
    return str(evidence.parent.parent / "signing.pub.pem")


def _render(capsys: pytest.CaptureFixture[str], evidence: Path, out: Path) -> tuple[int, str, str]:
    """``sundown certificate render`` of ``evidence`` to ``out``, verified with its key."""
    return _run(
        capsys, "certificate", "render", str(evidence), "--out", str(out), "--public-key",
        _key(evidence),
    )  # fmt: skip


def test_verify_ok_with_manifest(evidence: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        capsys, "certificate", "verify", str(evidence), "--public-key", _key(evidence)
    )
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 1
    assert out.startswith("OK certificate DC-fraud-scorer-v3-20250630-0001 valid:")
    assert "status complete with exceptions" in out
    assert "manifest digest checked" in out
    assert "key trusted: public key signing.pub.pem" in out


def test_verify_without_manifest_says_so(
    evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (evidence.parent / MANIFEST_NAME).unlink()
    code, out, _ = _run(
        capsys, "certificate", "verify", str(evidence), "--public-key", _key(evidence)
    )
    assert code == 0
    assert f"manifest not checked ({MANIFEST_NAME} not found beside the certificate)" in out


def test_verify_names_a_tampered_manifest(
    evidence: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = evidence.parent / MANIFEST_NAME
    manifest.write_bytes(manifest.read_bytes().replace(b'"size":0', b'"size":1', 1))
    code, out, err = _run(
        capsys, "certificate", "verify", str(evidence), "--public-key", _key(evidence)
    )
    assert (code, out) == (3, "")
    assert "IntegrityError: deletion manifest digest mismatch" in err


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("predicate", "status"), "complete"),
        (("predicate", "locations", 1, "held", "versions"), 0),
        (("predicate", "system", "name"), "another-system"),
        (("predicate", "keys_destroyed", 0, "verified"), False),
        (("predicate", "deletion_manifest", "digest"), "sha256:" + "0" * 64),
        (("subject", 0, "name"), "other.jsonl"),
    ],
)
def test_verify_names_a_tampered_certificate(
    evidence: Path, capsys: pytest.CaptureFixture[str], path: tuple, value: object
) -> None:
    envelope = json.loads(evidence.read_bytes())
    stmt = json.loads(base64.b64decode(envelope["payload"]))
    target = stmt
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    envelope["payload"] = base64.b64encode(canonical.dumps(stmt)).decode()
    evidence.write_bytes(json.dumps(envelope).encode())
    code, out, err = _run(
        capsys, "certificate", "verify", str(evidence), "--public-key", _key(evidence)
    )
    assert (code, out) == (3, "")
    assert err.startswith("sundown: error: IntegrityError: signature: does not verify")
    assert len(err.splitlines()) == 1


def test_verify_names_a_key_mismatch_and_bad_input(
    evidence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(LocalSigner().public_key_pem())
    real = public_key_fingerprint(Path(_key(evidence)).read_bytes())
    code, _, err = _run(capsys, "certificate", "verify", str(evidence), "--public-key", str(other))
    assert code == 3
    assert f"UntrustedKeyError: signature valid under {real}, but nothing you trust" in err
    code, _, err = _run(capsys, "certificate", "verify", str(evidence))  # no anchor at all
    assert code == 3 and f"nothing you trust vouches for {real}; no trust anchor" in err
    (tmp_path / "junk.json").write_text("not json")
    code, _, err = _run(
        capsys, "certificate", "verify", str(tmp_path / "junk.json"), "--public-key", str(other)
    )
    assert code == 2 and "InputError: not JSON" in err
    code, _, err = _run(
        capsys, "certificate", "verify", str(tmp_path / "missing.json"), "--public-key", str(other)
    )
    assert code == 4 and "missing.json" in err


def test_verify_trusts_the_key_pinned_by_the_ledger(
    evidence: Path, signer: LocalSigner, capsys: pytest.CaptureFixture[str], sundown_home: Path
) -> None:
    ledger = Ledger.open()
    ledger.append(
        "decommission",
        "system fraud-scorer-v3",
        canonical.sha256_digest(evidence.read_bytes()),
        evidence.as_uri(),
        signer,
    )
    url = (sundown_home / "ledger").as_uri()
    fingerprint = public_key_fingerprint(signer.public_key_pem())
    # the ledger alone is evidence, not an anchor
    code, out, err = _run(capsys, "certificate", "verify", str(evidence), "--ledger", url)
    assert code == 3 and f"nothing you trust vouches for {fingerprint}" in err
    # with an anchor, the ledger is checked as evidence too
    code, out, _ = _run(
        capsys,
        "certificate",
        "verify",
        str(evidence),
        "--fingerprint",
        fingerprint,
        "--ledger",
        url,
    )
    assert code == 0, out
    assert (
        f"key trusted: --fingerprint; recorded in ledger {url} record 1 (ledger head 1:sha256:"
        in out
    )

    # a ledger pinning another key refuses the certificate
    other = evidence.parent.parent / "other-ledger"
    stranger = LocalSigner()
    Ledger(registry.open_store(other.as_uri())).initialise(stranger)
    code, _, err = _run(
        capsys, "certificate", "verify", str(evidence), "--ledger", other.as_uri(),
        "--fingerprint", fingerprint,
    )  # fmt: skip
    assert code == 3
    assert (
        f"its genesis pins {public_key_fingerprint(stranger.public_key_pem())}, but nothing" in err
    )


def test_render_pdf_and_markdown(
    evidence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf = tmp_path / "cert.pdf"
    code, out, _ = _render(capsys, evidence, pdf)
    assert code == 0 and out.startswith(f"wrote {pdf}")
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True).stdout
    assert b"Status: COMPLETE WITH EXCEPTIONS" in text
    assert b"Signature verified when this page was made" in text

    md = tmp_path / "cert.md"
    code, _, _ = _render(capsys, evidence, md)
    assert code == 0 and "**Status: COMPLETE WITH EXCEPTIONS.**" in md.read_text()

    code, _, err = _run(
        capsys, "certificate", "render", str(evidence), "--out", str(tmp_path / "c.txt")
    )
    assert code == 2 and ".pdf or .md" in err

    loose = tmp_path / "loose.pdf"
    code, _, err = _run(
        capsys, "certificate", "render", str(evidence), "--out", str(loose), "--unverified"
    )
    assert code == 0 and "WITHOUT verifying" in err
    text = subprocess.run(["pdftotext", str(loose), "-"], capture_output=True, check=True).stdout
    assert b"NOT verified" in text


def test_render_refuses_a_tampered_certificate(
    evidence: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    envelope = json.loads(evidence.read_bytes())
    envelope["signatures"][0]["keyid"] = "local://someone-else"
    evidence.write_bytes(json.dumps(envelope).encode())
    pdf = tmp_path / "cert.pdf"
    code, _, err = _render(capsys, evidence, pdf)
    assert code == 3 and "key mismatch: envelope keyid" in err
    assert not pdf.exists()


def test_ledger_list_and_verify(
    tmp_path: Path, signer: LocalSigner, capsys: pytest.CaptureFixture[str]
) -> None:
    url = (tmp_path / "ledger").as_uri()
    ledger = Ledger(registry.open_store(url))
    for kind in ("deploy", "rotate", "decommission"):
        ledger.append(
            kind, f"system demo: {kind}", "sha256:" + "ab" * 32, f"{url}/e/{kind}", signer
        )
    code, out, _ = _run(capsys, "ledger", "list", "--ledger", url)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 5
    assert "genesis" in lines[0] and "decommission" in lines[3]
    assert lines[-1] == f"4 record(s) in {url} (listed, not verified)"
    code, out, err = _run(capsys, "ledger", "verify", "--ledger", url)
    fingerprint = public_key_fingerprint(signer.public_key_pem())
    assert code == 3 and "chain valid (4 record(s), head 3:sha256:" in err
    assert f"its genesis pins {fingerprint}, but nothing you trust vouches for" in err
    pem = tmp_path / "k.pem"
    pem.write_bytes(signer.public_key_pem())
    code, out, _ = _run(capsys, "ledger", "verify", "--ledger", url, "--public-key", str(pem))
    assert code == 0 and out.startswith(f"OK ledger {url} valid: 4 record(s), head 3:sha256:")
    assert f"({fingerprint}, trusted: public key k.pem)" in out
    assert "1 decommission, 1 deploy, 1 genesis, 1 rotate" in out

    record = tmp_path / "ledger" / "records" / "000000000002.json"
    envelope = json.loads(record.read_bytes())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["subject"] = "nothing to see"
    envelope["payload"] = base64.b64encode(canonical.dumps(payload)).decode()
    record.write_bytes(canonical.dumps(envelope))
    code, out, err = _run(capsys, "ledger", "verify", "--ledger", url, "--public-key", str(pem))
    assert (code, out) == (3, "")
    assert "ledger record 000000000002 (records/000000000002.json): signature" in err


def test_the_installed_command_exits_without_traceback(evidence: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(LocalSigner().public_key_pem())
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("sundown")),  # the console script
            "certificate",
            "verify",
            str(evidence),
            "--public-key",
            str(other),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.startswith("sundown: error: UntrustedKeyError: signature valid under")
    assert "Traceback" not in done.stderr


def _doc_script(doc: str, heading: str) -> str:
    """The first ```bash block after ``heading`` in a format document."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "formats" / doc).read_text()
    after = text[text.index(heading) :]
    start = after.index("```bash\n") + len("```bash\n")
    return after[start : after.index("```\n", start)]


def _bash(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    for tool in ("jq", "openssl", "base64", "sha256sum"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/setup-test-env")
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


def test_documented_openssl_procedure_verifies_a_certificate(evidence: Path) -> None:
    trusted = public_key_fingerprint(Path(_key(evidence)).read_bytes())
    script = _doc_script("certificate.md", "## Verifying with nothing but a DSSE implementation")
    done = _bash(script, evidence.parent, TRUSTED=trusted)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Verified OK"
    assert lines[1:3] == [STATEMENT_TYPE, PREDICATE_TYPE]
    assert lines[3] == lines[4]  # manifest sha256 == subject digest
    assert lines[5].strip() == lines[6]  # manifest lines == entries
    assert lines[7] == canonical.sha256_digest(evidence.read_bytes())  # the envelope digest

    # another key's fingerprint as the anchor: refused before any signature check
    other = public_key_fingerprint(LocalSigner().public_key_pem())
    done = _bash(script, evidence.parent, TRUSTED=other)
    assert done.returncode != 0 and "Verified OK" not in done.stdout
    # no anchor at all: refused
    done = _bash(script, evidence.parent)
    assert done.returncode != 0 and "TRUSTED" in done.stderr
    # a junk second signature: refused
    envelope = json.loads(evidence.read_bytes())
    good = copy.deepcopy(envelope)
    envelope["signatures"].append({"keyid": "x", "sig": "AAAA"})
    evidence.write_bytes(canonical.dumps(envelope))
    assert _bash(script, evidence.parent, TRUSTED=trusted).returncode != 0
    # an altered certificate: the signature fails
    envelope = good
    stmt = json.loads(base64.b64decode(envelope["payload"]))
    stmt["predicate"]["status"] = "complete"
    envelope["payload"] = base64.b64encode(canonical.dumps(stmt)).decode()
    evidence.write_bytes(canonical.dumps(envelope))
    done = _bash(script, evidence.parent, TRUSTED=trusted)
    assert done.returncode != 0 and "Verification failure" in done.stdout + done.stderr


def test_documented_openssl_procedure_verifies_a_ledger(
    tmp_path: Path, signer: LocalSigner
) -> None:
    folder = tmp_path / "ledger"
    ledger = Ledger(registry.open_store(folder.as_uri()))
    heads = [
        ledger.append(kind, "system demo", "sha256:" + "cd" * 32, "file:///e", signer).head
        for kind in ("deploy", "rotate", "decommission")
    ]
    trusted = public_key_fingerprint(signer.public_key_pem())
    script = _doc_script("ledger.md", "## Verifying with openssl and jq only")
    done = _bash(script, folder, TRUSTED=trusted, EXPECT_HEAD=heads[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"OK: 4 records, head {ledger.verify().head}"
    assert (folder / "pinned.pem").read_bytes() == signer.public_key_pem()
    other = public_key_fingerprint(LocalSigner().public_key_pem())
    assert _bash(script, folder, TRUSTED=other).returncode != 0  # not the key you trust
    assert _bash(script, folder).returncode != 0  # no anchor

    (folder / "records" / "000000000003.json").unlink()  # truncated: only the head shows it
    assert _bash(script, folder, TRUSTED=trusted).returncode == 0
    assert _bash(script, folder, TRUSTED=trusted, EXPECT_HEAD=heads[2]).returncode != 0
    (folder / "records" / "000000000002.json").unlink()
    (folder / "records" / "000000000003.json").write_bytes(b"{}")
    assert _bash(script, folder, TRUSTED=trusted).returncode != 0  # a gap
