"""One backend per credential kind for the credential conformance suite: how to plant a real
credential of that kind on its real server, how its consumer would use it (``works``), and the
spec lines that declare it.

Each ``plant`` returns a :class:`Planted`: the spec identifier, the secret values that must never
appear in evidence or logs, and a probe that uses the credential the way its consumer does (a
login, a read, a signed request) - not Sundown's own lookup, which is what is under test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import hvac
import hvac.exceptions
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import (
    AccessPolicy,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_container_sas,
)
from pydantic import SecretStr

from tests.fixtures.openbao import OpenBao

PKI = "pki-conformance"


@dataclass
class Planted:
    ident: str
    secrets: list[str]
    works: Callable[[], bool]
    declare: str = ""  # the spec's ``credentials:`` lines declaring it
    old_id: str = ""  # for rotations: the identifier of the current credential
    extra: dict[str, Any] = field(default_factory=dict)


Values = Mapping[str, "str | SecretStr"]


def plain(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class Backend:
    kind: str
    rotatable: bool = False
    fixtures: tuple[str, ...] = ()
    # emulator gap: the reason a server-side probe cannot prove death (xfail), else None
    works_gap: str | None = None
    # rotated in place: the identifier stays, only its secret changes (a password)
    rotates_in_place: bool = False

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        raise NotImplementedError

    def new_works(self, planted: Planted, values: Values) -> bool:
        """Whether the delivered successor works for its consumer."""
        raise NotImplementedError

    # malformed identifiers: each must be refused before any server call
    malformed: tuple[str, ...] = ("", "../etc", "a b")


def _vault(request: pytest.FixtureRequest) -> tuple[OpenBao, hvac.Client]:
    bao: OpenBao = request.getfixturevalue("vault_env")
    return bao, hvac.Client(url=bao.addr, token=bao.root_token)


class VaultKv(Backend):
    kind = "vault_kv"
    rotatable = True
    malformed = ("", "secret", "secret/", "secret/../x", "secret/a b", "/secret/x")

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        _, root = _vault(request)
        value = "kv-" + uuid.uuid4().hex
        root.secrets.kv.v2.create_or_update_secret(
            f"{name}/db", secret={"password": value}, mount_point="secret"
        )

        def works() -> bool:
            try:
                data = root.secrets.kv.v2.read_secret_version(
                    f"{name}/db", version=1, mount_point="secret", raise_on_deleted_version=True
                )["data"]["data"]
            except hvac.exceptions.InvalidPath:
                return False
            return bool(data.get("password") == value)

        return Planted(
            ident=f"secret/{name}/db",
            secrets=[value],
            works=works,
            declare=f"  vault_kv: [{{path: {name}/db}}]\n",
            extra={"root": root, "path": f"{name}/db"},
        )

    def new_works(self, planted: Planted, values: Values) -> bool:
        root = planted.extra["root"]
        data = root.secrets.kv.v2.read_secret_version(
            planted.extra["path"], mount_point="secret", raise_on_deleted_version=True
        )["data"]
        return bool(data["metadata"]["version"] == 2 and data["data"]["password"])


class VaultToken(Backend):
    kind = "vault_token"
    malformed = ("", "a b", "acc/../x", "acc;rm")

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        bao, root = _vault(request)
        created = root.auth.token.create(policies=["default"], ttl="1h", display_name=name)["auth"]
        token = str(created["client_token"])

        def works() -> bool:
            try:
                hvac.Client(url=bao.addr, token=token).auth.token.lookup_self()
            except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest):
                return False
            return True

        return Planted(
            ident=str(created["accessor"]),
            secrets=[token],
            works=works,
            declare=f"  vault_token_accessors: [{created['accessor']}]\n",
        )


class VaultLeases(Backend):
    kind = "vault_lease_prefix"
    malformed = ("", "single", "a/../b", "a b/c", "a//b")

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        _, root = _vault(request)
        if f"{PKI}/" not in root.sys.list_mounted_secrets_engines()["data"]:
            root.sys.enable_secrets_engine("pki", path=PKI)
            root.secrets.pki.generate_root("internal", "sundown.test", mount_point=PKI)
        role = f"r{name}"
        root.secrets.pki.create_or_update_role(
            role,
            {"allowed_domains": "sundown.test", "allow_subdomains": True, "generate_lease": True},
            mount_point=PKI,
        )
        issued = root.secrets.pki.generate_certificate(
            role, f"{name}.sundown.test", mount_point=PKI, extra_params={"ttl": "1h"}
        )
        lease = str(issued["lease_id"])
        key = str(issued["data"]["private_key"])

        def works() -> bool:
            try:
                root.sys.read_lease(lease)
            except hvac.exceptions.InvalidRequest:
                return False
            return True

        return Planted(
            ident=f"{PKI}/issue/{role}",
            secrets=[key.splitlines()[1]],  # a line of the certificate's private key
            works=works,
            declare=f"  vault_lease_prefixes: [{PKI}/issue/{role}]\n",
        )


class _AppRole(Backend):
    def _issue(
        self, request: pytest.FixtureRequest, name: str
    ) -> tuple[OpenBao, dict[str, Any], Callable[[], bool]]:
        """A role with one secret-id: (server, the issued secret-id, a login with it)."""
        bao, root = _vault(request)
        root.auth.approle.create_or_update_approle(name, token_policies=["default"])
        issued = dict(root.auth.approle.generate_secret_id(name)["data"])
        role_id = str(root.auth.approle.read_role_id(name)["data"]["role_id"])
        secret_id = str(issued["secret_id"])
        return bao, issued, lambda: self.login(bao, role_id, secret_id)

    @staticmethod
    def login(bao: OpenBao, role_id: str, secret_id: str) -> bool:
        try:
            hvac.Client(url=bao.addr).auth.approle.login(role_id=role_id, secret_id=secret_id)
        except hvac.exceptions.InvalidRequest:
            return False
        return True


class VaultAppRoleRole(_AppRole):
    kind = "vault_approle_role"
    rotatable = True
    malformed = ("", "approle", "approle/", "app role/x", "approle/a b", "approle/../x")

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        bao, issued, works = self._issue(request, name)
        accessor = str(issued["secret_id_accessor"])
        return Planted(
            ident=f"approle/{name}",
            secrets=[str(issued["secret_id"])],
            works=works,
            declare=(
                "  vault_approles:\n"
                f"    - {{role: {name}, secret_id_accessors: [{accessor}], delete_role: true}}\n"
            ),
            old_id=accessor,
            extra={"bao": bao},
        )

    def new_works(self, planted: Planted, values: Values) -> bool:
        return self.login(
            planted.extra["bao"], plain(values["role_id"]), plain(values["secret_id"])
        )


class VaultAppRoleSecretId(_AppRole):
    kind = "vault_approle_secret_id"
    malformed = ("", "approle/role", "approle/role/", "approle/a b/acc", "approle/role/a;b")

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        _, issued, works = self._issue(request, name)
        return Planted(
            ident=f"approle/{name}/{issued['secret_id_accessor']}",
            secrets=[str(issued["secret_id"])],
            works=works,
        )


class AwsAccessKey(Backend):
    kind = "aws_access_key"
    rotatable = True
    fixtures = ("moto_env",)
    malformed = ("", "user", "user/", "user/lowercasekey1234", "bad user/AKIA1234567890123456")
    works_gap = (
        "moto authenticates any access key, deleted or inactive (docs/known-gaps.md: AWS IAM): "
        "death is proven by IAM's own listing and last-used lookup only"
    )

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        request.getfixturevalue("moto_env")
        # vault_env too: a rotation delivers into Vault KV
        request.getfixturevalue("vault_env")
        iam = boto3.client("iam")
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        key_id, secret = str(key["AccessKeyId"]), str(key["SecretAccessKey"])

        def works() -> bool:
            sts = boto3.client("sts", aws_access_key_id=key_id, aws_secret_access_key=secret)
            try:
                sts.get_caller_identity()
            except Exception:
                return False
            return True

        return Planted(
            ident=f"{name}/{key_id}",
            secrets=[secret],
            works=works,
            declare=f"  aws_access_keys:\n    - {{user: {name}, access_key_ids: [{key_id}]}}\n",
            old_id=key_id,
            extra={"iam": iam, "user": name},
        )

    def new_works(self, planted: Planted, values: Values) -> bool:
        listed = planted.extra["iam"].list_access_keys(UserName=planted.extra["user"])
        status = {k["AccessKeyId"]: k["Status"] for k in listed["AccessKeyMetadata"]}
        return bool(status.get(plain(values["aws_access_key_id"])) == "Active")


class AzureStoredPolicy(Backend):
    kind = "azure_stored_policy"
    rotatable = True
    fixtures = ("azure_env",)
    malformed = ("", "container", "container/", "UPPER/policy", "c/" + "p" * 65, "ab/x")

    def plant(self, request: pytest.FixtureRequest, name: str) -> Planted:
        conn = request.getfixturevalue("azure_env")
        request.getfixturevalue("vault_env")
        service = BlobServiceClient.from_connection_string(conn)
        container = service.create_container(f"c{name}")
        container.upload_blob("model.bin", b"weights")
        container.set_container_access_policy(
            {
                "readers": AccessPolicy(
                    permission=ContainerSasPermissions(read=True, list=True),
                    expiry=datetime.now(UTC) + timedelta(days=1),
                )
            }
        )
        sas = generate_container_sas(
            str(container.account_name),
            container.container_name,
            account_key=container.credential.account_key,
            policy_id="readers",
        )
        return Planted(
            ident=f"{container.container_name}/readers",
            secrets=[sas.split("sig=", 1)[1].split("&", 1)[0]],
            works=lambda: self.reads(container, sas),
            declare=(
                "  azure_stored_policies:\n"
                f"    - {{container: {container.container_name}, policy_id: readers}}\n"
            ),
            old_id="readers",
            extra={"container": container},
        )

    @staticmethod
    def reads(container: ContainerClient, sas: str) -> bool:
        client = ContainerClient.from_container_url(container.url, credential=sas, retry_total=0)
        try:
            return client.download_blob("model.bin").readall() == b"weights"
        except HttpResponseError as exc:
            assert exc.status_code == 403, exc
            return False

    def new_works(self, planted: Planted, values: Values) -> bool:
        return self.reads(planted.extra["container"], plain(values["sas_token"]))


class GcsHmacKey(Backend):
    kind = "gcs_hmac_key"
    rotatable = True
    fixtures = ("fake_gcs_env",)
    malformed = ("", "short", "has space in it", "GOOG1/../../x", "x" * 129)


BACKENDS: dict[str, Backend] = {
    b.kind: b
    for b in (
        VaultKv(),
        VaultToken(),
        VaultLeases(),
        VaultAppRoleRole(),
        VaultAppRoleSecretId(),
        AwsAccessKey(),
        AzureStoredPolicy(),
        GcsHmacKey(),
    )
}
