"""Running the ``sundown`` CLI in-process for a test: exit code and what it printed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``sundown ARGS...`` through :func:`cli.main`: (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The single ``sundown: error: ...`` line a failed command prints (no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sundown: error: ") and "Traceback" not in err
    return lines[0]


def created_key(capsys: pytest.CaptureFixture[str], uri: str, *extra: str) -> str:
    """``sundown keys create URI [EXTRA...]`` succeeded and named the key; its URI."""
    code, out, err = run(capsys, "keys", "create", uri, *extra)
    assert code == 0, err
    assert f" {uri} " in out, out
    return uri


def decrypt_moved(capsys: pytest.CaptureFixture[str], enc: Path) -> tuple[int, str]:
    """``sundown decrypt`` of a copy of ``enc`` beside it (``other.enc``) whose sidecar's binding
    was rewritten to name the new path, as an attacker moving a ciphertext would: (exit code,
    stderr). The output would be ``other.out`` in the same folder."""
    other = enc.with_name("other.enc")
    shutil.copy(enc, other)
    raw = json.loads(enc.with_name(enc.name + ".sidecar.json").read_text())
    raw["associated_data"]["path"] = other.name
    other.with_name(other.name + ".sidecar.json").write_text(json.dumps(raw))
    code, _, err = run(capsys, "decrypt", str(other), str(enc.with_name("other.out")))
    return code, err
