"""Keep credential secrets out of the SDKs' own debug logs.

Sundown never logs a secret, but the libraries under it do at DEBUG level: botocore logs every
response body (``CreateAccessKey`` returns the new ``SecretAccessKey``), and urllib3 logs every
request line, whose query string carries a SAS token's signature (``sig=``) when a SAS is probed.
An operator who turns on DEBUG logging, or a log shipper that collects every logger, would store
them. :func:`install` puts a filter on exactly those loggers that rewrites each record with the
secret replaced by ``REDACTED`` (the record is kept: the request still shows in the log).
Installed when a credential module that creates or probes secrets is imported.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    # IAM XML and JSON answers
    (re.compile(r"(<SecretAccessKey>)[^<]*(</SecretAccessKey>)"), r"\1REDACTED\2"),
    (re.compile(r"""(["']?SecretAccessKey["']?\s*[:=]\s*["'])[^"']*"""), r"\1REDACTED"),
    # a SAS token's signature in a URL or query string
    (re.compile(r"((?:[?&]|\b)sig=)[^&\s\"'<>]+"), r"\1REDACTED"),
    # GCS HMAC key creation answer
    (re.compile(r"""(["']secret["']\s*:\s*["'])[^"']*"""), r"\1REDACTED"),
)

LOGGERS = (
    "urllib3.connectionpool",
    "botocore.parsers",
    "botocore.endpoint",
    "botocore.hooks",
    "botocore.auth",
    "botocore.retryhandler",
    "botocore.httpsession",
    "azure.core.pipeline.policies.http_logging_policy",
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is left to the handler
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactSecrets()


def install() -> None:
    """Add the filter to each SDK logger that may carry a secret (once per logger)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
