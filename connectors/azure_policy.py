"""Azure Storage lifecycle management policy for ``purge_by: lifecycle`` (az:// locations).

The policy is a management-plane (Azure Resource Manager) resource, one per storage account:
``/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/
{account}/managementPolicies/default`` (REST API ``Management Policies``, api-version
2023-05-01). Its PUT replaces the whole policy, so Sundown reads it, adds or removes only its
own rule (by name) and reads it back (connectors/_lifecycle.py). The requests go through
azure-core's pipeline (retries, bearer token from ``DefaultAzureCredential`` for
``https://management.azure.com/.default``) rather than azure-mgmt-storage: the whole of that SDK
for three calls on one resource was not worth a new dependency (docs/decisions.md).

Configuration, read from the environment for each store object (nothing cached across
credentials): ``AZURE_SUBSCRIPTION_ID`` and ``SUNDOWN_AZURE_RESOURCE_GROUP`` name the account's
resource; ``SUNDOWN_AZURE_MANAGEMENT_ENDPOINT`` overrides ``https://management.azure.com`` with a
loopback server only (a test's; any other host is an InputError, since the bearer token goes
there). Without the first two the store does not declare the
lifecycle capability, and planning a ``purge_by: lifecycle`` location there is refused.

The guard: the management policy resource carries no ETag and its PUT takes no ``If-Match``, so
the read-modify-write is guarded only as far as the API allows: ``lastModifiedTime`` and the rules
are read again just before the PUT (a change starts over), and the policy is read back after it;
a foreign rule gone after Sundown's write stops the run. A write landing between that last read
and the PUT is lost undetectably (docs/known-gaps.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from azure.core import PipelineClient
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    HeadersPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest, HttpResponse

from connectors import _kms, _lifecycle
from sundown import errors

API_VERSION = "2023-05-01"
ENDPOINT_ENV = "SUNDOWN_AZURE_MANAGEMENT_ENDPOINT"
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"
GROUP_ENV = "SUNDOWN_AZURE_RESOURCE_GROUP"
DEFAULT_ENDPOINT = "https://management.azure.com"
SCOPE = "https://management.azure.com/.default"
MAX_RULES = 100  # Azure's limit of rules in one management policy
_NAME = re.compile(r"[^A-Za-z0-9]")


def configured() -> bool:
    return bool(os.environ.get(SUBSCRIPTION_ENV) and os.environ.get(GROUP_ENV))


def rule_name(rule_id: str) -> str:
    """A policy rule name from Sundown's rule ID (Azure: alphanumeric, at most 256)."""
    return _NAME.sub("", rule_id)[:256]


def policy_rule(name: str, prefix_match: str) -> dict[str, Any]:
    """Sundown's rule: delete every base blob, snapshot and version under ``prefix_match``
    (``container/prefix/``, Azure's form: the container name first) from day 0."""
    if not prefix_match.endswith("/"):
        raise errors.InputError(
            f"lifecycle scope {prefix_match!r} must end with '/' (a path boundary)"
        )
    return {
        "enabled": True,
        "name": name,
        "type": "Lifecycle",
        "definition": {
            "filters": {"blobTypes": ["blockBlob", "appendBlob"], "prefixMatch": [prefix_match]},
            "actions": {
                "baseBlob": {"delete": {"daysAfterModificationGreaterThan": 0}},
                "snapshot": {"delete": {"daysAfterCreationGreaterThan": 0}},
                "version": {"delete": {"daysAfterCreationGreaterThan": 0}},
            },
        },
    }


class ManagementPolicy:
    """The management policy of one storage account, through the ARM REST API."""

    def __init__(self, account: str, credential: Any = None) -> None:
        subscription = os.environ.get(SUBSCRIPTION_ENV, "")
        group = os.environ.get(GROUP_ENV, "")
        if not (subscription and group and account):
            raise errors.InputError(
                f"the lifecycle policy of Azure storage account {account or '?'} needs "
                f"{SUBSCRIPTION_ENV} and {GROUP_ENV} (the account's subscription and resource "
                "group)"
            )
        for label, value in (("subscription", subscription), ("resource group", group)):
            if not re.fullmatch(r"[A-Za-z0-9._()-]{1,90}", value):
                raise errors.InputError(f"the Azure {label} name is not a valid resource name")
        if not re.fullmatch(r"[a-z0-9]{3,24}", account):
            raise errors.InputError(f"{account!r} is not an Azure storage account name")
        self.account = account
        self.where = f"the lifecycle management policy of storage account {account}"
        self._path = (
            f"/subscriptions/{subscription}/resourceGroups/{group}/providers/"
            f"Microsoft.Storage/storageAccounts/{account}/managementPolicies/default"
        )
        # The bearer token goes wherever the endpoint points: an override must be loopback
        # (a test's server), as for Key Vault (threat model M3). Checked before any credential.
        endpoint = _kms.endpoint_override(ENDPOINT_ENV) or DEFAULT_ENDPOINT
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        self._client: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            endpoint,
            policies=[
                HeadersPolicy(),
                UserAgentPolicy("sundown"),
                RetryPolicy(retry_total=4),
                BearerTokenCredentialPolicy(credential, SCOPE),
            ],
        )

    def _send(self, method: str, body: dict[str, Any] | None = None) -> HttpResponse:
        request = HttpRequest(
            method,
            self._client.format_url(self._path),
            params={"api-version": API_VERSION},
            json=body,
        )
        with _errors(f"{method} {self.where}"):
            return self._client.send_request(request)

    def read(self) -> tuple[list[dict[str, Any]], str | None]:
        """(the policy's rules, its ``lastModifiedTime``); ([], None) when it has none."""
        response = self._send("GET")
        if response.status_code == 404:
            return [], None
        _check(response, self.where)
        try:
            properties = response.json().get("properties") or {}
            rules = (properties.get("policy") or {}).get("rules") or []
        except (ValueError, AttributeError):
            raise errors.BackendError(f"{self.where}: not a management policy resource") from None
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise errors.BackendError(f"{self.where}: the policy's rules are not a list of objects")
        return [dict(r) for r in rules], properties.get("lastModifiedTime")

    def write(self, rules: list[dict[str, Any]]) -> None:
        """PUT the whole policy, or DELETE it when no rule is left (a policy needs one)."""
        if rules:
            body = {"properties": {"policy": {"rules": rules}}}
            _check(self._send("PUT", body), self.where)
        else:
            _check(self._send("DELETE"), self.where, missing_ok=True)

    def change(self, change: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Read, change (``change(rules)``: the rules wanted, or None), re-read just before the
        PUT (a changed ``lastModifiedTime`` or rules start over), write, read back."""

        def read() -> tuple[list[dict[str, Any]], object]:
            rules, modified = self.read()
            return rules, (modified, [_lifecycle.canonical(r) for r in rules])

        def write(rules: list[dict[str, Any]], token: object) -> bool:
            if read()[1] != token:
                return False
            self.write(rules)
            return True

        return _lifecycle.change_rules(self.where, read, write, lambda rules, _: change(rules))


def merge(rules: list[dict[str, Any]], rule: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``rules`` with Sundown's ``rule`` added; None when it is there already. Another rule
    under the same name is a ConflictError (never overwritten: it may be someone else's)."""
    same = [r for r in rules if r.get("name") == rule["name"]]
    if same:
        if len(same) == 1 and _lifecycle.canonical(same[0]) == _lifecycle.canonical(rule):
            return None
        raise errors.ConflictError(
            f"a lifecycle policy rule named {rule['name']!r} already exists with other content; "
            "nothing was changed"
        )
    if len(rules) >= MAX_RULES:
        raise errors.ConflictError(f"the account's lifecycle policy already has {MAX_RULES} rules")
    return [*rules, rule]


def _check(response: HttpResponse, where: str, *, missing_ok: bool = False) -> None:
    status = response.status_code
    if status < 300 or (missing_ok and status == 404):
        return
    code = ""
    with suppress(ValueError, AttributeError):
        code = str((response.json().get("error") or {}).get("code") or "")[:80]
    what = f"{where}: Azure Resource Manager answered {status} {code}".strip()
    if status in (401, 403):
        raise errors.PermissionDeniedError(what)
    if status == 404:
        raise errors.NotFoundError(what)
    if status in (409, 412):
        raise errors.ConflictError(what)
    if status in (429, 500, 502, 503, 504):
        raise errors.TransientError(what)
    if status == 400:
        raise errors.InputError(what)
    raise errors.BackendError(what)


@contextmanager
def _errors(what: str) -> Iterator[None]:
    try:
        yield
    except errors.SundownError:
        raise
    except ClientAuthenticationError as exc:
        raise errors.PermissionDeniedError(
            f"{what}: no usable Azure credential ({type(exc).__name__})"
        ) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise errors.TransientError(f"{what}: {type(exc).__name__}") from None
    except AzureError as exc:
        # The SDK's message may quote a request; the type is enough to act on.
        raise errors.BackendError(f"{what}: {type(exc).__name__}") from None
