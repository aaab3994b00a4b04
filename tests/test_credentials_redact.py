"""The SDK log filter (connectors/credentials/_redact.py) on the shapes the SDKs log, including
the GCS HMAC answer that no emulator can produce: each secret goes, the rest of the line stays."""

from __future__ import annotations

import logging

import pytest

from connectors.credentials import _redact

SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        (
            f"Response body:\nb'<AccessKeyId>AKIAEXAMPLE</AccessKeyId>"
            f"<SecretAccessKey>{SECRET}</SecretAccessKey>'",
            "AKIAEXAMPLE",
        ),
        (f"{{'AccessKeyId': 'AKIAEXAMPLE', 'SecretAccessKey': '{SECRET}'}}", "AKIAEXAMPLE"),
        (
            f'http://127.0.0.1:1 "GET /acct/c/b?sv=2026-10-06&si=readers&sr=c&sig={SECRET}%3D '
            'HTTP/1.1" 403 0',
            "si=readers",
        ),
        (f'{{"metadata": {{"accessId": "GOOG1EXAMPLE"}}, "secret": "{SECRET}"}}', "GOOG1EXAMPLE"),
    ],
)
def test_each_secret_shape_is_redacted_and_the_rest_kept(line: str, kept: str) -> None:
    out = _redact.redact(line)
    assert SECRET not in out and "REDACTED" in out and kept in out


def test_the_filter_rewrites_records_of_the_sdk_loggers(caplog: pytest.LogCaptureFixture) -> None:
    _redact.install()
    _redact.install()  # once per logger, however often the modules are imported
    logger = logging.getLogger("botocore.parsers")
    assert logger.filters.count(_redact._FILTER) == 1
    with caplog.at_level(logging.DEBUG):
        logger.debug("Response body:\n%s", f"<SecretAccessKey>{SECRET}</SecretAccessKey>")
    assert SECRET not in caplog.text and "<SecretAccessKey>REDACTED" in caplog.text
