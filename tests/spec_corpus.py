"""The bad-spec corpus (tests/specs/bad/): each file says what its refusal must name.

``# expect: TEXT`` lines are what the error must contain; ``# secret: TEXT`` lines what it must
never echo. A ``# pasted-token: NAME`` line makes the test generate a fresh Vault-token-shaped
value (``hvs.`` + random) and pass it as the spec variable ``${NAME}``: the case of a token
pasted where an accessor belongs, without a token-shaped string in the repository. The generated
value is a secret the refusal must not echo.
"""

from __future__ import annotations

import secrets as random_secrets
from dataclasses import dataclass, field
from pathlib import Path

BAD_SPECS = sorted((Path(__file__).parent / "specs" / "bad").glob("*.yaml"))


@dataclass
class Expectations:
    expects: list[str]
    secrets: list[str]
    variables: dict[str, str] = field(default_factory=dict)

    def var_args(self) -> list[str]:
        """The variables as ``sundown`` command-line arguments."""
        return [arg for k, v in self.variables.items() for arg in ("--var", f"{k}={v}")]


def expectations(path: Path) -> Expectations:
    lines = path.read_text().splitlines()

    def tagged(tag: str) -> list[str]:
        return [line.removeprefix(tag) for line in lines if line.startswith(tag)]

    variables = {
        name: "hvs." + random_secrets.token_urlsafe(24) for name in tagged("# pasted-token: ")
    }
    return Expectations(
        tagged("# expect: "), tagged("# secret: ") + list(variables.values()), variables
    )
