"""What the cloud KMS connectors (``aws_kms``, ``gcp_kms``, ``azure_keyvault``) share:
destruction evidence that states a pending window, and the shell of a KMS-held signer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization

from sundown.errors import SundownError
from sundown.keys import KeyDestruction


@contextmanager
def translated(
    what: str,
    sdk_errors: tuple[type[Exception], ...],
    translate: Callable[[Exception, str], SundownError],
) -> Iterator[None]:
    """Turn the SDK's exceptions raised inside the block into Sundown's (``translate``)."""
    try:
        yield
    except SundownError:
        raise
    except sdk_errors as exc:
        raise translate(exc, what) from exc


@dataclass(frozen=True)
class PendingKeyDestruction(KeyDestruction):
    """A key the KMS destroys at the end of a window (None once the KMS reports it gone);
    until then the KMS can restore it, so that date is when it becomes irrecoverable."""

    pending_until: datetime | None = None
    key_state: str = ""

    PENDING: ClassVar[str] = "pending deletion until {date}"
    GONE: ClassVar[str] = "key deleted by KMS"

    @property
    def irrecoverable_after(self) -> datetime | None:
        return self.pending_until

    @property
    def ce_reason(self) -> str:
        if not self.verified:
            return "destruction not verified"
        if self.pending_until is not None:
            return self.PENDING.format(date=self.pending_until.date().isoformat())
        return self.GONE


class KmsSigner:
    """``uri``, ``key_id`` (URI#fingerprint) and the public key, read once per object through
    :meth:`_public_key` (which refuses an unusable key); subclasses add :meth:`sign`."""

    _pem: bytes | None = None

    @property
    def uri(self) -> str:
        raise NotImplementedError

    def _public_key(self) -> Any:
        """The public key object (``cryptography``), read from the KMS now."""
        raise NotImplementedError

    @property
    def key_id(self) -> str:
        from sundown.certificate import public_key_fingerprint

        return f"{self.uri}#{public_key_fingerprint(self.public_key_pem())}"

    def public_key_pem(self) -> bytes:
        if self._pem is None:
            self._pem = self._public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        return self._pem
