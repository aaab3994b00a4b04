"""``sundown.catalog``: every registered scheme and every credential kind is listed, with a
truthful installed flag and the extra to install otherwise."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from sundown import catalog, registry
from sundown.catalog import Kind
from sundown.credentials import credential_kind
from sundown.spec.model import CREDENTIAL_ACTIONS


def test_every_scheme_and_credential_kind_is_described() -> None:
    listed = {c.name: c for c in catalog.list_connectors()}
    assert set(registry.schemes()) | set(CREDENTIAL_ACTIONS) == set(listed)
    assert all(c.kind in set(Kind) for c in listed.values()), "a scheme missing from the catalog"
    assert listed["postgresql"].kind == Kind.RECORD_STORE
    assert listed["s3"].kind == Kind.OBJECT_STORE
    assert listed["vault"].kind == Kind.KEY_SERVICE
    assert listed["vault_token"].kind == Kind.CREDENTIAL


@pytest.mark.parametrize(
    "scheme", ["postgresql", "redis", "chroma", "mlflow", "sagemaker", "aws-logs"]
)
def test_record_store_capabilities_match_the_connector(scheme: str) -> None:
    module = registry._CONNECTORS[scheme]
    declared = importlib.import_module(module).CAPABILITIES
    listed = {c.name: c for c in catalog.list_connectors()}[scheme]
    assert set(listed.capabilities) == {str(c) for c in declared}
    assert listed.installed and listed.install_hint is None


def test_a_missing_package_gets_the_extra_as_its_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "chromadb" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    listed = {c.name: c for c in catalog.list_connectors()}
    assert not listed["chroma"].installed
    assert listed["chroma"].install_hint == "pip install 'sundown[chroma]'"
    assert listed["redis"].installed
    assert listed["chroma"].to_dict()["install_hint"] == "pip install 'sundown[chroma]'"


@pytest.mark.parametrize(
    ("sdk", "module", "open_it", "extra"),
    [
        ("redis", "connectors.redis_kv",
         lambda: registry.open_record_store("redis://127.0.0.1:6379/0/p"), "redis"),
        ("botocore.exceptions", "connectors.s3 connectors._aws",
         lambda: registry.open_store("s3://bucket/p"), "aws"),
        ("google.cloud.kms", "connectors.gcp_kms", lambda: registry.open_key_service(
            "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k"), "gcp"),
        ("azure.storage.blob", "connectors.azure_blob",
         lambda: registry.open_store("az://container/p"), "azure"),
        ("hvac", "connectors.credentials.vault_kv",
         lambda: credential_kind("vault_kv"), "vault"),
    ],
)  # fmt: skip
def test_the_registry_names_the_extra_when_an_import_fails(
    monkeypatch: pytest.MonkeyPatch, sdk: str, module: str, open_it: Any, extra: str
) -> None:
    """A connector whose SDK is not installed (the extra not chosen) is refused naming the
    extra to install, as the catalog's hint does."""
    import sys

    from sundown.errors import UnsupportedError

    monkeypatch.setitem(sys.modules, sdk, None)  # import SDK -> ImportError
    for name in module.split():  # the connector and any shared module holding the SDK
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(UnsupportedError, match=rf"pip install 'sundown\[{extra}\]'"):
        open_it()
    listed = {c.name: c for c in catalog.list_connectors()}
    name = {"redis": "redis", "aws": "s3", "gcp": "gcp-kms", "azure": "az", "vault": "vault_kv"}
    assert listed[name[extra]].extra == extra  # `sundown connectors` names the same extra
