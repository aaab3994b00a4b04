"""The ``sundown`` command line.

Each area registers its commands from its own module (``register(app)``); expected errors print
one line on stderr and exit non-zero without a traceback. Exit codes:

====  =====================================================================
0     success
1     unexpected internal error (a bug: the traceback is printed)
2     bad input (InputError, ScopeError) or usage error
3     integrity failure: tampering, wrong key, bad signature (IntegrityError)
4     not found (NotFoundError)
5     key destroyed (KeyDestroyedError)
6     permission denied, conflict or unsupported capability
7     backend failure (BackendError, TransientError after retries)
====  =====================================================================
"""

from __future__ import annotations

import importlib
import sys

import typer
from typer.exceptions import TyperException

from sundown import __version__, errors

app = typer.Typer(
    name="sundown",
    help="Deploy AI systems safely and retire them provably: envelope encryption, model "
    "signatures, key lifecycle, verified deletion and signed decommissioning certificates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Modules under cli that register commands; each defines register(app).
_COMMAND_MODULES = [
    "cli.keys",
    "cli.crypto",
    "cli.signatures",
    "cli.demo",
    "cli.certificate",
    "cli.ledger",
    "cli.lifecycle",
    "cli.connectors",
]

for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(f"sundown {__version__}")
        raise typer.Exit(0)


EXIT_CODES: list[tuple[type[errors.SundownError], int]] = [
    (errors.KeyDestroyedError, 5),
    (errors.IntegrityError, 3),
    (errors.InputError, 2),
    (errors.NotFoundError, 4),
    (errors.PermissionDeniedError, 6),
    (errors.ConflictError, 6),
    (errors.UnsupportedError, 6),
    (errors.BackendError, 7),
]


def exit_code_for(exc: errors.SundownError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; expected errors become one stderr line and an exit code."""
    try:
        # Outside standalone mode, click returns a command's typer.Exit code instead of raising
        # it (and a command's own return value, None for ours)
        code = app(args=argv, standalone_mode=False)
    except errors.SundownError as exc:
        kind = type(exc).__name__
        print(f"sundown: error: {kind}: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        print("sundown: aborted", file=sys.stderr)
        return 1
    except OSError as exc:
        # Missing files and the like: name the file, no traceback.
        where = f" {exc.filename!r}" if exc.filename else ""
        print(f"sundown: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 4 if isinstance(exc, FileNotFoundError) else 2
    except TyperException as exc:  # usage errors (click's, as vendored by typer)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        return int(getattr(exc, "exit_code", 2))
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
