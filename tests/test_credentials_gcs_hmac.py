"""GCS HMAC key rotation and revocation.

Neither emulator implements HMAC keys (docs/known-gaps.md), so:

- against each emulator, a test runs the real operations and, when the emulator refuses the HMAC
  API, says so with ``pytest.xfail`` (it turns into a pass the day an emulator gains it);
- the full test runs against real GCS only when ``SUNDOWN_TEST_GCS_HMAC_SERVICE_ACCOUNT`` names
  a service account and Google credentials are configured; otherwise it is skipped with that
  reason (the one real-cloud test of this area, listed in docs/known-gaps.md).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from google.api_core import exceptions as gexc
from google.cloud import storage

from connectors.credentials import gcs_hmac
from sundown.errors import InputError, NotFoundError

EMULATOR_SA = "sundown-test@sundown-test.iam.gserviceaccount.com"


def exercise(service_account: str) -> None:
    """Create a key, rotate it (no grace), revoke the new one; assert every step's evidence."""
    client = storage.Client()
    first, first_secret = client.create_hmac_key(service_account_email=service_account)
    rotation = gcs_hmac.rotate_hmac_key(
        service_account, old_access_id=first.access_id, grace=timedelta(0)
    )
    assert rotation.evidence.verified, rotation.evidence.checks
    assert rotation.evidence.details["old_key_state"] == "deleted"
    assert rotation.new is not None
    text = json.dumps(rotation.evidence.to_dict())
    assert rotation.new.secret.get_secret_value() not in text and first_secret not in text
    assert client.get_hmac_key_metadata(first.access_id).state == "DELETED"
    evidence = gcs_hmac.revoke_hmac_key(rotation.new.identifier)
    assert evidence.verified
    assert evidence.checks["key state after"] in ("DELETED", "absent")
    with pytest.raises(NotFoundError):
        gcs_hmac.revoke_hmac_key(rotation.new.identifier)


@pytest.mark.parametrize("emulator", ["fake_gcs_env", "gcs_emulator_env"])
def test_emulators_lack_hmac_keys(emulator: str, request: pytest.FixtureRequest) -> None:
    endpoint = request.getfixturevalue(emulator)
    try:
        exercise(EMULATOR_SA)
    except gexc.GoogleAPICallError as exc:
        # fake-gcs-server: 404 (no such route); gcp-storage-emulator: 501 (not implemented).
        assert exc.code in (404, 405, 501), exc
        assert "/hmacKeys" in str(exc)
        pytest.xfail(
            f"{emulator} ({endpoint}) has no HMAC key API, so rotation and revocation of GCS "
            f"HMAC keys are proven only against real GCS (docs/known-gaps.md); it answered: "
            f"{type(exc).__name__}: {str(exc)[:160]}"
        )


def test_input_is_checked_before_any_request() -> None:
    with pytest.raises(InputError):
        gcs_hmac.rotate_hmac_key("not-an-email")
    with pytest.raises(InputError):
        gcs_hmac.revoke_hmac_key("bad id!")
    with pytest.raises(InputError):
        gcs_hmac.rotate_hmac_key(EMULATOR_SA, grace=timedelta(seconds=-1))


def test_rotate_and_revoke_on_real_gcs(monkeypatch: pytest.MonkeyPatch) -> None:
    service_account = os.environ.get("SUNDOWN_TEST_GCS_HMAC_SERVICE_ACCOUNT")
    has_credentials = bool(
        os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or os.environ.get("GOOGLE_CLOUD_PROJECT")
    )
    if not service_account or not has_credentials:
        pytest.skip(
            "real-GCS test not run: HMAC keys exist only on real GCS (no emulator has them, see "
            "docs/known-gaps.md); set SUNDOWN_TEST_GCS_HMAC_SERVICE_ACCOUNT and Google "
            "credentials (GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_CLOUD_PROJECT) to run it"
        )
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    exercise(service_account)
