"""AWS record stores (``sagemaker://``, ``aws-logs://``): their URL, a fresh client per call,
and the translation of botocore's errors into Sundown's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from connectors._aws import new_client
from sundown.errors import (
    BackendError,
    NotFoundError,
    PermissionDeniedError,
    SundownError,
    TransientError,
)
from sundown.records import Location, parse_region_url

__all__ = ["parse_region_url"]

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10)


def location(url: str, scheme: str, region: str, rest: str) -> Location:
    return Location(scheme, region, 443, None, (rest,), url)


def client(service: str, region: str) -> Any:
    return new_client(service, _CONFIG.merge(Config(region_name=region)))


_NOT_FOUND = ("ResourceNotFoundException", "NoSuchEntity", "NotFound")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_text(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def translate(exc: Exception, what: str) -> SundownError:
    if isinstance(exc, ClientError):
        code = error_code(exc)
        text = f"{what}: {code}: {error_text(exc)}"
        if code in _NOT_FOUND:
            return NotFoundError(text)
        if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException"):
            return PermissionDeniedError(text)
        if code in ("ThrottlingException", "ServiceUnavailableException"):
            return TransientError(text)
        return BackendError(text)
    return TransientError(f"{what}: {type(exc).__name__}: {exc}")


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    try:
        yield
    except SundownError:
        raise
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, what) from None
