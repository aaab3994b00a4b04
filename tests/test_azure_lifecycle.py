"""Azure lifecycle management policy for ``purge_by: lifecycle`` (connectors/azure_policy.py).

The policy is an Azure Resource Manager resource and Azurite has no management plane, so these
tests run against tests/fixtures/fake_arm.py, a local HTTPS server answering as the documented
REST API does, and assert the requests sent (docs/known-gaps.md). The blob store objects are
built on an account URL and make no data-plane request here.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from connectors import azure_policy
from connectors.azure_blob import AzureBlobStore
from sundown.errors import BackendError, ConflictError, InputError, PermissionDeniedError
from tests.fixtures.fake_arm import GROUP, SUBSCRIPTION
from tests.fixtures.fake_kms import AZURE_ACCESS_TOKEN, FakeServer

ACCOUNT = "sundownlc"
FOREIGN: dict[str, Any] = {
    "enabled": True,
    "name": "teamcool",
    "type": "Lifecycle",
    "definition": {
        "filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["models/"]},
        "actions": {"baseBlob": {"tierToCool": {"daysAfterModificationGreaterThan": 30}}},
    },
}
RULE_ID = "sundown-retire-lc-sys-" + "ab" * 16


def _store(prefix: str = "team-a", account: str = ACCOUNT) -> AzureBlobStore:
    service = BlobServiceClient(f"https://{account}.blob.core.windows.net", credential=None)
    return AzureBlobStore("models", prefix, service=service)


def _policy_path(account: str = ACCOUNT) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Storage/"
        f"storageAccounts/{account}/managementPolicies/default"
    )


def _put_foreign(server: FakeServer, rules: list[dict[str, Any]], account: str = ACCOUNT) -> None:
    server.state[account] = {"rules": rules, "lastModifiedTime": "2026-01-01T00:00:00.0000000Z"}


def test_rule_deletes_every_blob_snapshot_and_version_under_the_prefix() -> None:
    rule = azure_policy.policy_rule(azure_policy.rule_name(RULE_ID), "models/team-a/")
    assert rule["name"].isalnum() and rule["name"].startswith("sundownretirelcsys")
    assert rule["definition"]["filters"]["prefixMatch"] == ["models/team-a/"]
    actions = rule["definition"]["actions"]
    assert actions["baseBlob"]["delete"] == {"daysAfterModificationGreaterThan": 0}
    assert actions["snapshot"]["delete"] == {"daysAfterCreationGreaterThan": 0}
    assert actions["version"]["delete"] == {"daysAfterCreationGreaterThan": 0}
    with pytest.raises(InputError, match="path boundary"):
        azure_policy.policy_rule("x", "models/team-a")
    assert _store("team-a").lifecycle_scope() == "models/team-a/"
    assert _store("").lifecycle_scope() == "models/"


def test_add_and_remove_keep_foreign_rules(azure_arm_env: FakeServer) -> None:
    server = azure_arm_env
    _put_foreign(server, [FOREIGN])
    store = _store()
    before, after = store.add_lifecycle_rule(RULE_ID)
    name = azure_policy.rule_name(RULE_ID)
    assert before == [FOREIGN] and [r["name"] for r in after] == ["teamcool", name]
    assert server.state[ACCOUNT]["rules"] == after
    (put,) = server.sent("PUT", "managementPolicies")
    assert put.path == _policy_path() and put.query["api-version"] == ["2023-05-01"]
    assert put.headers["authorization"] == f"Bearer {AZURE_ACCESS_TOKEN}"
    assert put.body["properties"]["policy"]["rules"] == after
    # Read, read again just before the PUT, read back.
    gets = server.sent("GET", "managementPolicies")
    assert len(gets) == 3
    assert store.own_lifecycle_rules(after, RULE_ID) == [after[1]]
    # A re-run adds nothing and writes nothing.
    assert store.add_lifecycle_rule(RULE_ID)[1] == after
    assert len(server.sent("PUT")) == 1
    # Someone adds a rule after Sundown's: the removal keeps it.
    late = {**FOREIGN, "name": "late"}
    _put_foreign(server, [*after, late])
    _, left = store.remove_lifecycle_rule(RULE_ID)
    assert left == [FOREIGN, late]
    assert store.remove_lifecycle_rule(RULE_ID)[1] == left  # removed already: no write


def test_the_last_rule_removed_deletes_the_policy(azure_arm_env: FakeServer) -> None:
    account = "sundownlcempty"
    store = _store(account=account)
    before, after = store.add_lifecycle_rule(RULE_ID)
    assert before == [] and len(after) == 1
    _, left = store.remove_lifecycle_rule(RULE_ID)
    assert left == [] and account not in azure_arm_env.state
    assert azure_arm_env.sent("DELETE", "managementPolicies")


def test_another_rule_under_sundowns_name_is_refused(azure_arm_env: FakeServer) -> None:
    taken = {**FOREIGN, "name": azure_policy.rule_name(RULE_ID)}
    _put_foreign(azure_arm_env, [taken], account="sundownlctaken")
    with pytest.raises(ConflictError, match="already exists with other content"):
        _store(account="sundownlctaken").add_lifecycle_rule(RULE_ID)
    assert not azure_arm_env.sent("PUT")


def test_a_foreign_rule_gone_after_the_write_stops(azure_arm_env: FakeServer) -> None:
    """A writer replaces the policy right after Sundown's PUT (no ETag: nothing refuses it):
    the read-back sees the foreign rule gone and stops, naming it."""
    account = "sundownlcclobber"
    _put_foreign(azure_arm_env, [FOREIGN], account=account)
    original = azure_policy.ManagementPolicy.write

    def write_then_clobber(self: azure_policy.ManagementPolicy, rules: Any) -> None:
        original(self, rules)
        azure_arm_env.state[account]["rules"] = [{**FOREIGN, "name": "other"}]

    with pytest.MonkeyPatch.context() as m:
        m.setattr(azure_policy.ManagementPolicy, "write", write_then_clobber)
        with pytest.raises(ConflictError, match="teamcool"):
            _store(account=account).add_lifecycle_rule(RULE_ID)


def test_a_change_between_read_and_put_starts_over(azure_arm_env: FakeServer) -> None:
    """A concurrent writer between Sundown's first read and its re-read just before the PUT:
    Sundown starts over from a fresh read and keeps that writer's rule."""
    account = "sundownlcrace"
    _put_foreign(azure_arm_env, [FOREIGN], account=account)
    original = azure_policy.ManagementPolicy.read
    calls = iter(range(100))

    def read_then_race(self: azure_policy.ManagementPolicy) -> Any:
        got = original(self)
        if next(calls) == 0:  # after Sundown's first read
            azure_arm_env.state[account] = {
                "rules": [FOREIGN, {**FOREIGN, "name": "racer"}],
                "lastModifiedTime": "2026-02-02T00:00:00.0000000Z",
            }
        return got

    with pytest.MonkeyPatch.context() as m:
        m.setattr(azure_policy.ManagementPolicy, "read", read_then_race)
        _, after = _store(account=account).add_lifecycle_rule(RULE_ID)
    assert [r["name"] for r in after] == ["teamcool", "racer", azure_policy.rule_name(RULE_ID)]
    assert len(azure_arm_env.sent("PUT")) == 1


def test_lifecycle_capability_needs_the_management_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    assert not azure_policy.configured()
    with pytest.raises(InputError, match="AZURE_SUBSCRIPTION_ID"):
        azure_policy.ManagementPolicy(ACCOUNT, credential=object())
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "../../evil")
    monkeypatch.setenv("SUNDOWN_AZURE_RESOURCE_GROUP", "rg")
    with pytest.raises(InputError, match="not a valid resource name"):
        azure_policy.ManagementPolicy(ACCOUNT, credential=object())


def test_a_refused_token_is_permission_denied_without_the_token(
    azure_arm_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    with pytest.raises(PermissionDeniedError) as caught:
        _store(account="sundownlcdenied").lifecycle_rules()
    assert AZURE_ACCESS_TOKEN not in str(caught.value)
    assert not azure_arm_env.sent("GET", "managementPolicies")


def test_a_policy_that_is_not_a_list_of_rules_stops_before_any_write(
    azure_arm_env: FakeServer,
) -> None:
    """What the management plane returns is untrusted input: a policy whose rules are not a list
    of objects is a BackendError, and nothing is written over it."""
    account = "sundownlcgarbage"
    azure_arm_env.state[account] = {"rules": "everything", "lastModifiedTime": "x"}
    with pytest.raises(BackendError, match="not a list of objects"):
        _store(account=account).add_lifecycle_rule(RULE_ID)
    assert not azure_arm_env.sent("PUT") and not azure_arm_env.sent("DELETE")


def test_an_endpoint_override_off_loopback_is_refused_before_any_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SUNDOWN_AZURE_MANAGEMENT_ENDPOINT decides where the ARM bearer token goes: a host other
    than a loopback one is refused, naming the variable, and no token is ever asked for."""
    asked: list[object] = []

    class Recording:
        def get_token(self, *args: object, **kwargs: object) -> object:
            asked.append(args)
            raise AssertionError("a token was requested")

        get_token_info = get_token

    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    monkeypatch.setenv("SUNDOWN_AZURE_RESOURCE_GROUP", GROUP)
    for host in ("https://attacker.example", "https://127.0.0.1.attacker.example"):
        monkeypatch.setenv("SUNDOWN_AZURE_MANAGEMENT_ENDPOINT", host)
        with pytest.raises(InputError, match="SUNDOWN_AZURE_MANAGEMENT_ENDPOINT names host"):
            azure_policy.ManagementPolicy(ACCOUNT, credential=Recording())
    assert asked == []
