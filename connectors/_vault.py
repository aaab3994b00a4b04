"""Vault / OpenBao client plumbing shared by the transit key service (:mod:`connectors.vault`)
and the Vault credential kinds (:mod:`connectors.credentials`), as :mod:`connectors._aws` is
for AWS.

Configuration comes from the standard Vault environment, read afresh for every operation: no
client, token or setting is cached across operations or credentials, so a rotated or revoked
token never lives on in a cache.

- ``VAULT_ADDR`` (default ``https://127.0.0.1:8200``), ``VAULT_NAMESPACE``;
- ``VAULT_TOKEN`` (or ``~/.vault-token``), or AppRole: ``VAULT_ROLE_ID`` and ``VAULT_SECRET_ID``
  (mount ``SUNDOWN_VAULT_APPROLE_PATH``, default ``approle``); when ``VAULT_ROLE_ID`` is set
  AppRole wins, and the token it logs in with is revoked when the operation ends;
- TLS: ``VAULT_CACERT``, ``VAULT_CAPATH``, ``VAULT_SKIP_VERIFY``, ``VAULT_CLIENT_CERT`` /
  ``VAULT_CLIENT_KEY``; ``VAULT_CLIENT_TIMEOUT`` (seconds, default 30);
- ``VAULT_MAX_RETRIES`` (default 3): transient failures (connection refused or reset, 412, 429,
  5xx) are retried that many times with exponential backoff by urllib3's ``Retry`` on the HTTP
  session; permission, not-found and bad-request answers are never retried;
- ``SUNDOWN_VAULT_KV_MOUNT`` (default ``secret``): the KV v2 mount that holds Sundown's key
  records (used by :mod:`connectors.vault`).

Every failure of hvac or requests inside :func:`vault_errors` (or :func:`session`) becomes a
Sundown error (:func:`translate`) with no secret in its message.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import hvac
import hvac.exceptions as hvac_errors
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from sundown.errors import (
    BackendError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    SundownError,
    TransientError,
)

DEFAULT_ADDR = "https://127.0.0.1:8200"

# ---------------------------------------------------------------------------------------------
# Configuration and client


@dataclass(frozen=True)
class VaultSettings:
    """Where and how to reach Vault, from the environment. Holds no secret (token, secret-id):
    those are read from the environment when a client is made."""

    addr: str
    namespace: str | None
    approle_path: str
    use_approle: bool
    verify: bool | str
    cert: tuple[str, str] | None
    timeout: float
    max_retries: int
    kv_mount: str

    @classmethod
    def from_env(cls) -> VaultSettings:
        env = os.environ
        verify: bool | str = True
        if env.get("VAULT_CAPATH"):
            verify = env["VAULT_CAPATH"]
        if env.get("VAULT_CACERT"):
            verify = env["VAULT_CACERT"]
        if env.get("VAULT_SKIP_VERIFY", "").lower() in ("1", "true", "yes"):
            verify = False
        cert = None
        if env.get("VAULT_CLIENT_CERT") and env.get("VAULT_CLIENT_KEY"):
            cert = (env["VAULT_CLIENT_CERT"], env["VAULT_CLIENT_KEY"])
        return cls(
            addr=(env.get("VAULT_ADDR") or DEFAULT_ADDR).rstrip("/"),
            namespace=env.get("VAULT_NAMESPACE") or None,
            approle_path=(env.get("SUNDOWN_VAULT_APPROLE_PATH") or "approle").strip("/"),
            use_approle=bool(env.get("VAULT_ROLE_ID")),
            verify=verify,
            cert=cert,
            timeout=_seconds("VAULT_CLIENT_TIMEOUT", env.get("VAULT_CLIENT_TIMEOUT"), 30.0),
            max_retries=int(_seconds("VAULT_MAX_RETRIES", env.get("VAULT_MAX_RETRIES"), 3)),
            kv_mount=(env.get("SUNDOWN_VAULT_KV_MOUNT") or "secret").strip("/"),
        )


def _seconds(name: str, raw: str | None, default: float) -> float:
    if not raw:
        return default
    text = raw.strip().removesuffix("s")
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise InputError(f"{name}={raw!r} must not be negative")
    return value


def retry_policy(max_retries: int) -> Retry:
    """Bounded retries with exponential backoff for transient failures only.

    Connection errors, 412 (eventual consistency), 429 and 5xx are retried; every method is, since
    the transit, KV, token and lease calls Sundown makes are safe to repeat. The final failed
    response is returned (not raised) so that it is classified like any other answer."""
    return Retry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        other=0,
        allowed_methods=None,
        status_forcelist=(412, 429, 500, 502, 503, 504),
        backoff_factor=0.2,
        backoff_max=5.0,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


@contextlib.contextmanager
def vault_client(settings: VaultSettings | None = None) -> Iterator[hvac.Client]:
    """A fresh, authenticated hvac client for one operation; closed (and an AppRole login token
    revoked) when the block ends."""
    settings = settings or VaultSettings.from_env()
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry_policy(settings.max_retries))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    logged_in = False
    try:
        client = hvac.Client(
            url=settings.addr,
            token=None if not settings.use_approle else "",
            verify=settings.verify,
            cert=settings.cert,
            timeout=settings.timeout,
            namespace=settings.namespace,
            session=session,
        )
        if settings.use_approle:
            with vault_errors("AppRole login", settings):
                try:
                    client.auth.approle.login(
                        role_id=os.environ["VAULT_ROLE_ID"],
                        secret_id=os.environ.get("VAULT_SECRET_ID") or None,
                        mount_point=settings.approle_path,
                    )
                except hvac_errors.InvalidRequest as exc:
                    raise PermissionDeniedError(
                        f"AppRole login at {settings.addr}/v1/auth/{settings.approle_path} "
                        f"refused: {vault_messages(exc)} (check VAULT_ROLE_ID/VAULT_SECRET_ID)"
                    ) from None
            logged_in = True
        elif not client.token:
            raise PermissionDeniedError(
                f"no Vault credentials for {settings.addr}: set VAULT_TOKEN, or VAULT_ROLE_ID "
                "and VAULT_SECRET_ID for AppRole"
            )
        yield client
    finally:
        if logged_in:
            with contextlib.suppress(Exception):
                client.auth.token.revoke_self()
        session.close()


def vault_messages(exc: hvac_errors.VaultError) -> str:
    errors = [str(e) for e in (exc.errors or []) if e]
    return "; ".join(errors)[:300] if errors else type(exc).__name__


def translate(exc: BaseException, what: str, settings: VaultSettings) -> SundownError:
    """The Sundown error for a failed Vault call: distinct kinds, no secret in the message."""
    where = settings.addr
    if isinstance(exc, SundownError):
        return exc
    if isinstance(exc, hvac_errors.VaultError):
        detail = vault_messages(exc)
        if isinstance(exc, hvac_errors.InvalidPath):
            return NotFoundError(f"{what}: not found at Vault {where}")
        if isinstance(exc, hvac_errors.Forbidden | hvac_errors.Unauthorized):
            return PermissionDeniedError(
                f"{what}: permission denied by Vault at {where} (the token is invalid or expired, "
                "or its policy lacks the capability; see docs/vault.md for the policy)"
            )
        if isinstance(exc, hvac_errors.VaultDown):
            if "sealed" in detail.lower():
                return BackendError(
                    f"{what}: Vault at {where} is sealed; unseal it (bao/vault operator unseal) "
                    "and run again"
                )
            return TransientError(f"{what}: Vault at {where} is unavailable (503): {detail}")
        if isinstance(exc, hvac_errors.VaultNotInitialized):
            return BackendError(f"{what}: Vault at {where} is not initialized")
        if isinstance(exc, hvac_errors.InvalidRequest):
            if "not found" in detail.lower():
                return NotFoundError(f"{what}: {detail} (Vault {where})")
            return InputError(f"{what}: Vault at {where} rejected the request: {detail}")
        if isinstance(
            exc,
            hvac_errors.RateLimitExceeded
            | hvac_errors.InternalServerError
            | hvac_errors.BadGateway
            | hvac_errors.PreconditionFailed,
        ):
            return TransientError(
                f"{what}: Vault at {where} failed after {settings.max_retries} retries: {detail}"
            )
        return BackendError(f"{what}: unexpected answer from Vault at {where}: {detail}")
    if isinstance(exc, requests.exceptions.SSLError):
        return BackendError(
            f"{what}: TLS handshake with Vault at {where} failed (set VAULT_CACERT to the CA "
            "that signed its certificate)"
        )
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        reason = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
        because = reason.group(1).strip() if reason else type(exc).__name__
        return TransientError(
            f"{what}: cannot reach Vault at {where} after {settings.max_retries} retries "
            f"({because})"
        )
    if isinstance(exc, requests.exceptions.RequestException):
        return BackendError(f"{what}: request to Vault at {where} failed ({type(exc).__name__})")
    raise exc


@contextlib.contextmanager
def vault_errors(what: str, settings: VaultSettings) -> Iterator[None]:
    """Translate hvac/requests failures inside the block into Sundown errors."""
    try:
        yield
    except (hvac_errors.VaultError, requests.exceptions.RequestException) as exc:
        raise translate(exc, what, settings) from None


@contextlib.contextmanager
def session(what: str, settings: VaultSettings | None = None) -> Iterator[hvac.Client]:
    """A fresh client for one operation, with every Vault failure inside the block translated
    into a Sundown error naming ``what``: the shape every Vault credential operation uses."""
    settings = settings or VaultSettings.from_env()
    with vault_errors(what, settings), vault_client(settings) as client:
        yield client
