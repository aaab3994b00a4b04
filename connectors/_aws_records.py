"""AWS record stores (``sagemaker://``, ``aws-logs://``): their URL, a fresh client per call,
and the translation of botocore's errors into Sundown's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from connectors._aws import new_client
from sundown.errors import (
    BackendError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    SundownError,
    TransientError,
)
from sundown.records import Location, split_url

_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d$")
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10)


def parse_region_url(url: str, scheme: str, shape: str) -> tuple[str, str]:
    """``scheme://REGION/REST`` -> (region, REST as written, percent-decoded). No user, port,
    query or fragment: AWS credentials come from the standard chain, never from the URL."""
    from urllib.parse import unquote

    parts, port = split_url(url, scheme, shape)
    if parts.username is not None or parts.password is not None or port is not None:
        raise InputError(
            f"a {scheme}:// URL names a region, not a host: no user, password or port "
            f"(credentials come from the AWS environment; expected {shape})"
        )
    if parts.query or parts.fragment:
        raise InputError(f"{scheme}:// location takes no query or fragment (expected {shape})")
    region = parts.netloc
    if not _REGION.match(region):
        raise InputError(f"{url!r}: {region!r} is not an AWS region (expected {shape})")
    rest = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if not rest or "\x00" in rest:
        raise InputError(f"{url!r} names nothing after the region (expected {shape})")
    return region, rest


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
