"""The credential conformance suite: every credential kind, through the one protocol
(:class:`sundown.credentials.CredentialKind`) and the registry the flows use, against its real
server (OpenBao for the Vault kinds, moto_server for IAM, Azurite for SAS, PostgreSQL for roles,
redis-server for ACL users; GCS HMAC keys exist on
no emulator, so their row is an explicit xfail naming the gap, docs/known-gaps.md).

For each kind:
- identifier parsing refuses malformed input with an InputError naming it, before any server is
  contacted (no server configuration is set in that test);
- revoke, then the credential is proven dead: by the kind's own liveness lookup, and by its
  consumer's use of it (a login, a read, a signed request) failing; a second revoke records
  "already absent"; evidence verified;
- rotate (grace period zero: the replaced credential is removed once the successor exists), then
  the old credential is dead and the new one works; kinds that are not rotated say why and change
  nothing;
- the secret of a revoked or rotated credential never appears in the evidence, the rotation
  result's text, or any log record (every logger, DEBUG and up).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sundown.credentials import (
    CredentialEvidence,
    NotRotated,
    Rotated,
    RotationJob,
    Unit,
    credential_kind,
    kinds,
)
from sundown.errors import InputError, NotFoundError
from sundown.spec.loader import parse_spec
from tests.conformance_credentials import backends
from tests.conformance_credentials.backend_servers import (
    PostgresRoleBackend,
    RedisAclUserBackend,
)
from tests.conformance_credentials.backends import Backend, Planted
from tests.flows.systems import spec_text

BACKENDS: dict[str, Backend] = {
    **backends.BACKENDS,
    **{b.kind: b for b in (PostgresRoleBackend(), RedisAclUserBackend())},
}
ALL = sorted(BACKENDS)
ROTATABLE = sorted(k for k, b in BACKENDS.items() if b.rotatable)
HMAC_GAP = (
    "no GCS emulator implements HMAC keys (fake-gcs-server answers 404, gcp-storage-emulator "
    "501; docs/known-gaps.md): gcs_hmac_key is proven only against real GCS "
    "(tests/test_credentials_gcs_hmac.py)"
)


def test_every_registered_kind_has_a_backend_here() -> None:
    """A kind added to the registry without a row in this suite fails here."""
    assert set(kinds()) - {"vault_kv_version"} == set(BACKENDS)
    for kind in kinds():
        assert credential_kind(kind).kind == kind


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    found = BACKENDS[request.param]
    if found.kind == "gcs_hmac_key":
        request.getfixturevalue("fake_gcs_env")
        pytest.xfail(HMAC_GAP)
    return found


@pytest.fixture
def name() -> str:
    return "k" + uuid.uuid4().hex[:12]


def _no_secret(secrets: list[str], texts: list[str]) -> None:
    for secret in secrets:
        assert len(secret) >= 16, "a probe secret this short proves little"
        for text in texts:
            assert secret not in text


def _evidence_texts(evidence: list[CredentialEvidence]) -> list[str]:
    return [json.dumps(e.to_dict()) for e in evidence] + [repr(e) for e in evidence]


@pytest.mark.parametrize("kind", ALL)
def test_parsing_refuses_malformed_identifiers_before_any_call(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No server is configured: a refusal that came from a server would be another error.
    for variable in ("VAULT_ADDR", "VAULT_TOKEN", "AZURE_STORAGE_CONNECTION_STRING", "PGHOST"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    subject = credential_kind(kind)
    for bad in BACKENDS[kind].malformed:
        with pytest.raises(InputError) as err:
            subject.parse(bad)
        assert repr(bad) in str(err.value) or bad in str(err.value), err.value
        with pytest.raises(InputError):
            subject.revoke(bad, missing_ok=True)
        with pytest.raises(InputError):
            subject.live(bad)


@pytest.mark.parametrize("backend", ALL, indirect=True)
def test_revoke_then_proven_dead(
    backend: Backend, request: pytest.FixtureRequest, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    planted = backend.plant(request, name)
    subject = credential_kind(backend.kind)
    assert subject.parse(planted.ident)
    assert planted.works() and subject.live(planted.ident) is True
    caplog.clear()

    with caplog.at_level(logging.DEBUG):  # every logger, the SDKs' own included
        evidence = subject.revoke(planted.ident)
        dead = subject.live(planted.ident)
        again = subject.revoke(planted.ident, missing_ok=True)
        with pytest.raises(NotFoundError):
            subject.revoke(planted.ident)
        logged = [caplog.text, *(r.getMessage() for r in caplog.records)]

    assert evidence and all(e.verified for e in evidence), evidence
    assert dead is False
    assert {e.action for e in again} == {"already absent"} and all(e.verified for e in again)
    assert any("DEBUG" in line for line in logged), "the log capture saw nothing"
    _no_secret(planted.secrets, [*_evidence_texts(evidence + again), *logged])
    if backend.works_gap is not None and planted.works():
        pytest.xfail(backend.works_gap)
    assert not planted.works(), "revoked, yet its consumer can still use it"


def _job(planted: Planted, backend: Backend, name: str, tmp_path: Path) -> RotationJob:
    spec = parse_spec(
        spec_text(name)
        + "credentials:\n"
        + planted.declare
        + f"rotation:\n  deliver_to: {{path: {name}/rotated}}\n  grace_period_hours: 0\n",
        "<conformance>",
        variables={"ROOT": str(tmp_path)},
    )
    subject = credential_kind(backend.kind)
    (declared,) = subject.units(spec)
    unit = Unit(backend.kind, declared)
    return RotationJob(spec, unit, subject.current(spec, declared), timedelta(0), datetime.now(UTC))


@pytest.mark.parametrize("backend", ROTATABLE, indirect=True)
def test_rotate_then_the_old_is_dead_and_the_new_works(
    backend: Backend,
    request: pytest.FixtureRequest,
    name: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    planted = backend.plant(request, name)
    subject = credential_kind(backend.kind)
    job = _job(planted, backend, name, tmp_path)
    if planted.old_id:
        assert job.ids == [planted.old_id]
    caplog.clear()

    with caplog.at_level(logging.DEBUG):  # every logger, the SDKs' own included
        result = subject.rotate(job)
        assert isinstance(result, Rotated), result
        evidence = list(result.evidence)
        for pending in result.replaced:  # grace 0: removed now, by the kind that removes it
            remover = credential_kind(pending.kind)
            evidence += remover.finish(pending)
            # a kind rotated in place keeps its credential: only the old secret is gone
            assert remover.live(pending.target) is backend.rotates_in_place
        logged = [caplog.text, *(r.getMessage() for r in caplog.records)]

    assert result.new and (
        result.new != job.ids or backend.kind == "vault_kv" or backend.rotates_in_place
    )
    assert all(e.verified for e in evidence), evidence
    values = dict(result.deliver or {})
    assert backend.new_works(planted, values), "the successor does not work"
    texts = [*_evidence_texts(evidence), *logged, repr(result)]
    _no_secret(planted.secrets, texts)
    # the successor's secret travels hidden (SecretStr) and is written nowhere else either
    hidden = [v.get_secret_value() for v in values.values() if not isinstance(v, str)]
    assert hidden or backend.kind == "vault_kv"
    _no_secret(hidden, texts)
    if backend.works_gap is not None and planted.works():
        pytest.xfail(backend.works_gap)
    assert not planted.works(), "rotated with a zero grace period, yet the old one still works"


@pytest.mark.parametrize("kind", sorted(k for k, b in BACKENDS.items() if not b.rotatable))
def test_kinds_that_are_not_rotated_say_why_and_change_nothing(
    kind: str, request: pytest.FixtureRequest, name: str, tmp_path: Path
) -> None:
    backend = BACKENDS[kind]
    if kind == "vault_approle_secret_id":  # rotated through its role (vault_approle_role)
        assert (
            credential_kind(kind).units(
                parse_spec(spec_text(name), "<c>", variables={"ROOT": str(tmp_path)})
            )
            == []
        )
        return
    planted = backend.plant(request, name)
    result = credential_kind(kind).rotate(_job(planted, backend, name, tmp_path))
    assert isinstance(result, NotRotated) and len(result.reason) > 20
    assert planted.works() and credential_kind(kind).live(planted.ident) is True
