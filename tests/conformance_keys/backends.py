"""The key services under the conformance suite, each on its own server.

- ``local``: the keyring under ``$SUNDOWN_HOME`` (no server);
- ``vault``: Vault transit on OpenBao (``vault_env``);
- ``aws-kms``: moto_server (``moto_env``): moto still decrypts with a disabled key or one pending
  deletion, so Sundown's own check is what refuses;
- ``gcp-kms`` and ``azure-kv``: the local fake REST servers (tests/fixtures/fake_kms.py), told
  to keep answering for a disabled key (``lenient``) so that, again, the refusal is Sundown's.

Backends without a disabled or pending state (the keyring, Vault transit) have ``disable`` /
``schedule`` set to None: the suite does not parametrise those tests over them (no skip).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sundown import registry
from sundown.keys import WrappedKey


@dataclass(frozen=True)
class KeyBackend:
    name: str
    fixtures: tuple[str, ...]
    new_uri: Callable[[], str]
    # (bad URI, words the error must contain)
    bad_uris: tuple[tuple[str, str], ...]
    # Out-of-band: disable the key (an administrator), the server still answering.
    disable: Callable[[dict[str, Any], str], None] | None = None
    # Out-of-band: schedule its deletion, the server still answering.
    schedule: Callable[[dict[str, Any], str], None] | None = None
    # A raw unwrap straight through the service's own API, bypassing Sundown's checks.
    raw_unwrap: Callable[[str, WrappedKey, bytes], bytes] | None = None
    # Strings that must never appear in an error or a log line (tokens, credentials).
    secrets: Callable[[dict[str, Any]], list[str]] = field(default=lambda values: [])

    def create(self, *, signing: bool = False) -> str:
        uri = self.new_uri()
        return registry.create_key(uri, signing=signing).uri


def _token() -> str:
    return secrets.token_hex(4)


# -- AWS KMS on moto


def _aws_id(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


def _aws_disable(values: dict[str, Any], uri: str) -> None:
    import boto3

    boto3.client("kms").disable_key(KeyId=_aws_id(uri))


def _aws_schedule(values: dict[str, Any], uri: str) -> None:
    import boto3

    client = boto3.client("kms")
    client.schedule_key_deletion(KeyId=_aws_id(uri), PendingWindowInDays=7)


def _aws_raw(uri: str, wrapped: WrappedKey, binding: bytes) -> bytes:
    import hashlib

    import boto3

    from connectors.aws_kms import BINDING_CONTEXT

    answer = boto3.client("kms").decrypt(
        CiphertextBlob=wrapped.ciphertext,
        EncryptionContext={BINDING_CONTEXT: hashlib.sha256(binding).hexdigest()},
    )
    return bytes(answer["Plaintext"])


# -- Cloud KMS (fake)


def _gcp_disable(values: dict[str, Any], uri: str) -> None:
    from tests.fixtures.fake_kms import gcp_key

    record = gcp_key(values["gcp_kms_env"], uri)
    record.lenient = True
    for version in record.versions.values():
        version.state = "DISABLED"


def _gcp_schedule(values: dict[str, Any], uri: str) -> None:
    import datetime as dt

    from tests.fixtures.fake_kms import gcp_key

    record = gcp_key(values["gcp_kms_env"], uri)
    record.lenient = True
    for version in record.versions.values():
        version.state = "DESTROY_SCHEDULED"
        version.destroy_time = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)


def _gcp_raw(uri: str, wrapped: WrappedKey, binding: bytes) -> bytes:
    import hashlib

    from connectors import gcp_kms

    answer = gcp_kms._client().decrypt(
        request={
            "name": uri.removeprefix("gcp-kms://"),
            "ciphertext": wrapped.ciphertext,
            "additional_authenticated_data": hashlib.sha256(binding).digest(),
        }
    )
    return bytes(answer.plaintext)


def _gcp_secrets(values: dict[str, Any]) -> list[str]:
    from tests.fixtures.fake_kms import GCP_ACCESS_TOKEN, _b64url, gcp_service_account_key

    n = gcp_service_account_key().private_numbers().d
    return [GCP_ACCESS_TOKEN, _b64url(n.to_bytes(256, "big"))[:40], "PRIVATE KEY"]


# -- Azure Key Vault (fake)


def _kv_disable(values: dict[str, Any], uri: str) -> None:
    from tests.fixtures.fake_kms import kv_key

    record = kv_key(values["azure_kv_env"], uri.rsplit("/", 1)[1])
    record.lenient = True
    for version in record.versions:
        version.enabled = False


def _kv_raw(uri: str, wrapped: WrappedKey, binding: bytes) -> bytes:

    from azure.identity import DefaultAzureCredential
    from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

    from tests.fixtures.fake_kms import kv_key  # noqa: F401  (same server as the connector)

    version, _, blob = wrapped.ciphertext.partition(b".")
    kid = f"{os.environ['SUNDOWN_AZURE_KEYVAULT_ENDPOINT']}/keys/{uri.rsplit('/', 1)[1]}/"
    kid += version.decode()
    credential = DefaultAzureCredential()
    client = CryptographyClient(kid, credential, verify_challenge_resource=False)
    with client, credential:
        plain = bytes(client.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, blob).key)
    return plain[32:]


def _kv_secrets(values: dict[str, Any]) -> list[str]:
    from tests.fixtures.fake_kms import AZURE_ACCESS_TOKEN, AZURE_IDENTITY_HEADER

    return [AZURE_ACCESS_TOKEN, AZURE_IDENTITY_HEADER]


def _vault_secrets(values: dict[str, Any]) -> list[str]:
    return [values["vault_env"].root_token]


BACKENDS: tuple[KeyBackend, ...] = (
    KeyBackend(
        name="local",
        fixtures=("sundown_home",),
        new_uri=lambda: f"local://conf-{_token()}",
        bad_uris=(("local://", "bad key name"), ("local://a/b", "bad key name")),
    ),
    KeyBackend(
        name="vault",
        fixtures=("vault_env",),
        new_uri=lambda: f"vault://transit/conf{_token()}",
        bad_uris=(("vault://transit", "names no key"), ("vault://transit/a b", "not a valid")),
        secrets=_vault_secrets,
    ),
    KeyBackend(
        name="aws-kms",
        fixtures=("moto_env",),
        new_uri=lambda: f"aws-kms://alias/conf-{_token()}",
        bad_uris=(
            ("aws-kms://arn:aws:s3:::bucket", "bad AWS KMS key URI"),
            ("aws-kms://key/1234", "bad AWS KMS key URI"),
        ),
        disable=_aws_disable,
        schedule=_aws_schedule,
        raw_unwrap=_aws_raw,
    ),
    KeyBackend(
        name="gcp-kms",
        fixtures=("gcp_kms_env",),
        new_uri=lambda: (
            f"gcp-kms://projects/sundown-test/locations/global/keyRings/conf/cryptoKeys/k{_token()}"
        ),
        bad_uris=(
            ("gcp-kms://projects/p/locations/l/keyRings/r", "names no crypto key"),
            (
                "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2",
                "names a key version",
            ),
            ("gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k$", "malformed"),
            ("gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/../k2", "malformed"),
        ),
        disable=_gcp_disable,
        schedule=_gcp_schedule,
        raw_unwrap=_gcp_raw,
        secrets=_gcp_secrets,
    ),
    KeyBackend(
        name="azure-kv",
        fixtures=("azure_kv_env",),
        new_uri=lambda: f"azure-kv://sundown-conf.vault.azure.net/keys/k{_token()}",
        bad_uris=(
            ("azure-kv://example.com/keys/k", "is not a key vault"),
            ("azure-kv://v1.vault.azure.net/secrets/k", "not keys/NAME"),
            ("azure-kv://v1.vault.azure.net/keys/k/0123456789abcdef", "names a key version"),
            ("azure-kv://v1.vault.azure.net/keys/k_1", "characters Key Vault does not allow"),
            ("azure-kv://v1.vault.azure.net.evil.example/keys/k", "is not a key vault"),
        ),
        disable=_kv_disable,
        raw_unwrap=_kv_raw,
        secrets=_kv_secrets,
    ),
)
