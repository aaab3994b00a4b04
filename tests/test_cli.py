"""The CLI shell: usage errors and expected errors give one clear message, never a traceback."""

from __future__ import annotations

import pytest

from cli import main


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


def test_the_command_and_its_help_import_no_prefect() -> None:
    """The CLI sits above the flows but imports each flow inside its command: loading the
    command (and so ``sundown --help``) must not pay for importing Prefect."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from cli import main\n"
        "code = main(['--help'])\n"
        "print(code, sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "0 []"


def test_the_lease_option_defaults_to_the_flows_lease() -> None:
    import typer.main

    from cli import app
    from flows.models import DEFAULT_LEASE_SECONDS, LeasedSource

    assert LeasedSource.model_fields["lease_seconds"].default == DEFAULT_LEASE_SECONDS
    command = typer.main.get_command(app)
    decommission = command.commands["decommission"]  # type: ignore[attr-defined]
    lease = next(p for p in decommission.params if p.name == "lease_seconds")
    assert lease.default == DEFAULT_LEASE_SECONDS
