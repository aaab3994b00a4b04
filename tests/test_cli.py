"""The CLI shell: usage errors and expected errors give one clear message, never a traceback."""

from __future__ import annotations

import pytest

from sundown.cli import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["keys", "frobnicate"], "No such command"),
        (["encrypt"], "Missing argument"),
        (["--bogus"], "No such option"),
    ],
)
def test_usage_errors_exit_2_without_traceback(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_help_lists_every_area(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ["keys", "encrypt", "decrypt", "sign", "verify-signature", "demo"]:
        assert command in out


def test_expected_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "info", "local://no-such-key"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NotFoundError" in err[0] and "no-such-key" in err[0]
