"""Credential rotation through the kind protocol, without Prefect (the task's function is called
directly), against OpenBao (delivery) and moto's IAM: a writer to the delivery path cannot make
Sundown adopt a credential it names, nor schedule the real current one for removal; a receipt
whose rotation state does not validate is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import hvac
import pytest

from flows import _rotation
from sundown.credentials import RotationState, Unit, key_to_replace
from sundown.errors import InputError, NotFoundError
from sundown.spec.loader import parse_spec
from sundown.spec.model import SystemSpec
from tests.fixtures.openbao import OpenBao
from tests.flows.systems import spec_text


@pytest.fixture
def world(
    vault_env: OpenBao, moto_env: str, vault_name: str, tmp_path: Path
) -> tuple[SystemSpec, Any, str, str, hvac.Client]:
    iam = boto3.client("iam")
    user = f"{vault_name}-ci"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    spec = parse_spec(
        spec_text(vault_name)
        + f"credentials:\n  aws_access_keys:\n    - {{user: {user}, access_key_ids: [{key}]}}\n"
        + f"rotation:\n  deliver_to: {{path: {vault_name}/rotated}}\n",
        "<test>",
        variables={"ROOT": str(tmp_path)},
    )
    vault = hvac.Client(url=vault_env.addr, token=vault_env.root_token)
    return spec, iam, user, key, vault


def keys(iam: Any, user: str) -> dict[str, str]:
    listed = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in listed}


@pytest.mark.parametrize("forged", ["AKIAFORGED0000000000", "other-user's key"])
def test_a_forged_delivery_is_not_adopted_and_nothing_is_scheduled(
    world: tuple[SystemSpec, Any, str, str, hvac.Client], forged: str, vault_name: str
) -> None:
    spec, iam, user, key, vault = world
    if forged == "other-user's key":  # a real, live key - of another user
        iam.create_user(UserName=f"{vault_name}-other")
        forged = iam.create_access_key(UserName=f"{vault_name}-other")["AccessKey"]["AccessKeyId"]
    # A writer to the delivery path plants an identifier the state does not know:
    vault.secrets.kv.v2.create_or_update_secret(
        f"{vault_name}/rotated/aws/{user}",
        secret={"aws_access_key_id": forged, "aws_secret_access_key": "x" * 40},
        mount_point="secret",
    )
    unit = Unit("aws_access_key", f"{user}/{key}")

    outcome = _rotation.rotate_unit.fn(spec, unit, [key], datetime.now(UTC))

    assert outcome.outcome == "failed", outcome
    assert "not a live credential" in outcome.reason and "not adopted" in outcome.reason
    assert outcome.pending == [] and outcome.new == [key]  # the state keeps the real key
    assert keys(iam, user) == {key: "Active"}  # nothing created, deactivated or scheduled
    after = _rotation.next_state(RotationState(), [], [outcome])
    assert after.current == {} and after.pending == []


def test_a_delivery_naming_a_live_key_of_the_unit_is_adopted(
    world: tuple[SystemSpec, Any, str, str, hvac.Client], vault_name: str
) -> None:
    """The recovery the check must not break: a run that rotated and delivered, then lost its
    receipt."""
    spec, iam, user, key, vault = world
    new = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    vault.secrets.kv.v2.create_or_update_secret(
        f"{vault_name}/rotated/aws/{user}",
        secret={"aws_access_key_id": new, "aws_secret_access_key": "y" * 40},
        mount_point="secret",
    )
    outcome = _rotation.rotate_unit.fn(
        spec, Unit("aws_access_key", f"{user}/{key}"), [key], datetime.now(UTC)
    )
    assert outcome.outcome == "recovered" and outcome.new == [new]
    assert [p.target for p in outcome.pending] == [f"{user}/{key}"]


def test_a_ledgered_receipt_with_a_malformed_rotation_state_is_refused(tmp_path: Path) -> None:
    """Even a receipt whose digest matches its (signed) ledger record is checked for shape: a
    state that does not validate stops the run before anything changes (IntegrityError)."""
    import json

    from flows._common import ledger_append, object_url, open_evidence, sha256_digest
    from sundown.errors import IntegrityError
    from sundown.ledger import RecordKind
    from sundown.store import put_once
    from tests.flows.systems import make_system

    system = make_system(tmp_path / "sys", with_weights=False)
    spec = parse_spec(system.spec_path.read_text(), "<t>", variables=system.variables)
    store = open_evidence(spec)
    for bad in (
        {"current": {}, "pending": [{"unit": "x"}]},  # a removal naming nothing
        {"pending": [{"unit": "u", "kind": "k", "target": "a/b"}]},  # never due
        {  # a naive time cannot be compared with the clock
            "pending": [{"unit": "u", "kind": "k", "target": "a", "not_before": "2026-01-01"}]
        },
        {"current": {"aws_access_key u/K": "K2"}},  # ids are a list
    ):
        body = json.dumps({"rotation_state": bad}).encode()
        key = f"{_rotation.receipt_prefix(spec)}{uuid.uuid4().hex}.json"
        assert put_once(store, key, body)
        ledger_append(spec, RecordKind.ROTATE, "test", sha256_digest(body), object_url(store, key))
        with pytest.raises(IntegrityError, match="holds no valid rotation state"):
            _rotation.load_state(spec)


def test_the_key_a_rotation_replaces_is_the_named_one_or_the_only_active_one() -> None:
    """AWS access keys and GCS HMAC keys (the latter run only against real GCS) pick the key to
    replace here: a named key must be listed; unnamed, exactly one key may be active."""
    keys = {"K1": "ACTIVE", "K2": "INACTIVE"}

    def pick(keys: dict[str, str], old: str | None) -> str:
        return key_to_replace("rotate", keys, old, active="ACTIVE", noun="HMAC key", owner="sa")

    assert pick(keys, None) == "K1"
    assert pick(keys, "K2") == "K2"  # named: its state is the caller's to check
    with pytest.raises(NotFoundError, match="rotate: no HMAC key K3 on this sa"):
        pick(keys, "K3")
    with pytest.raises(InputError, match="the sa has 2 active keys; name the one to rotate"):
        pick({"K1": "ACTIVE", "K2": "ACTIVE"}, None)
    with pytest.raises(InputError, match="has 0 active keys"):
        pick({"K2": "INACTIVE"}, None)
