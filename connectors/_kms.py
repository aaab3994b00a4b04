"""What the cloud KMS connectors (``aws_kms``, ``gcp_kms``, ``azure_keyvault``) share:
destruction evidence that states a pending window, and the shell of a KMS-held signer."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, Self, TypeVar

from cryptography.hazmat.primitives import serialization

from sundown.errors import InputError, KeyDestroyedError, NotFoundError, SundownError
from sundown.keys import KeyDestruction, WrappedKey


def require_sdk(*modules: str) -> None:
    """ImportError unless every module can be found, without importing it (a cloud SDK takes
    most of a second to import, so the connectors import theirs where used). Called when the
    registry imports a connector, so that a missing extra is named there (``sundown[gcp]``),
    not met as a bare ModuleNotFoundError in the middle of a run."""
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def endpoint_override(variable: str, allowed_suffixes: tuple[str, ...] = ()) -> str | None:
    """The endpoint in ``variable`` (tests: a local fake), or None. Only a loopback host or a
    host under ``allowed_suffixes`` is taken: the client sends its bearer token there, and an
    environment variable must not be able to send it anywhere else."""
    import ipaddress
    import os
    from urllib.parse import urlsplit

    value = os.environ.get(variable)
    if not value:
        return None
    host = (urlsplit(value).hostname or "").lower()
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback or any(host.endswith(suffix) for suffix in allowed_suffixes):
        return value
    raise InputError(
        f"{variable} names host {host!r}: only a loopback host"
        + (f" or one under {', '.join(allowed_suffixes)}" if allowed_suffixes else "")
        + " is accepted (the client sends its access token there)"
    )


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
    until then the KMS can restore it, so that date is when it becomes irrecoverable.
    ``overdue``: everything proved but the date, which has passed while the KMS still reports
    the key pending (restorable until the KMS destroys it): not verified, and not a sign that
    it was restored either."""

    key_state: str = ""
    overdue: bool = False

    PENDING: ClassVar[str] = "pending deletion until {date}"
    GONE: ClassVar[str] = "key deleted by KMS"

    @classmethod
    def now(
        cls,
        uri: str,
        *,
        versions: tuple[int, ...],
        method: str,
        pending: datetime | None,
        pending_what: str,
        checks: dict[str, str],
        verified: bool,
        limits: str,
        key_state: str,
        overdue: bool = False,
    ) -> Self:
        """The evidence, stamped now, of a key whose material the KMS holds (never exportable,
        no plaintext backup); ``method`` ends with the pending window when there is one (``;
        <pending_what> pending until <date>``)."""
        return cls(
            uri=uri,
            versions_destroyed=versions,
            destroyed_at=datetime.now(UTC),
            method=method
            + (f"; {pending_what} pending until {pending.isoformat()}" if pending else ""),
            checks=checks,
            verified=verified,
            exportable=False,
            allow_plaintext_backup=False,
            limits=limits,
            pending_until=pending,
            key_state=key_state,
            overdue=overdue,
        )

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


def refused(attempt: Callable[[], object], failed: str) -> str:
    """A destruction check through Sundown: ``refused (<error>)`` when ``attempt`` raises
    KeyDestroyedError or NotFoundError, else ``FAILED: <failed>`` (it still works)."""
    try:
        attempt()
    except (KeyDestroyedError, NotFoundError) as exc:
        return f"refused ({exc})"
    return f"FAILED: {failed}"


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


class _KmsKey(Protocol):
    @property
    def signing(self) -> bool: ...


K = TypeVar("K", bound=_KmsKey)


def key_encryption_key(key: K, uri: str, signing_kind: str) -> K:
    """``key``, opened as a key service: refused (InputError) when it is a signing key
    (``signing_kind`` names how the KMS marks one)."""
    if key.signing:
        raise InputError(f"{uri} is a signing key ({signing_kind}), not a key-encryption key")
    return key


def own_wrapped(uri: str, wrapped: Sequence[WrappedKey]) -> list[WrappedKey]:
    """``wrapped`` as it is (the KMS's enabled versions still unwrap it): InputError for an item
    that belongs to another key than ``uri``."""
    for item in wrapped:
        if item.key_uri != uri:
            raise InputError(f"wrapped key belongs to {item.key_uri!r}, not {uri!r}")
    return list(wrapped)
