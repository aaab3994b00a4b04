"""Spec rules for cloud KMS keys: the URI forms a spec accepts, ``keys.pending_days`` (AWS KMS
only, 7-30) and ``keys.grants`` (AWS KMS keys the system destroys, each named once)."""

from __future__ import annotations

from typing import Any

import pytest

from sundown.errors import InputError
from sundown.spec.kms import grants_by_key
from sundown.spec.loader import parse_spec
from sundown.spec.model import SystemSpec
from tests.spec_builder import Flow, spec_yaml

AWS = "aws-kms://arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
AWS2 = "aws-kms://arn:aws:kms:us-east-1:123456789012:key/99999999-12ab-34cd-56ef-1234567890ab"
GCP = "gcp-kms://projects/p-1/locations/europe-west4/keyRings/r/cryptoKeys/k"
AZURE = "azure-kv://acme-vault.vault.azure.net/keys/kek-1"


def spec(**keys: Any) -> SystemSpec:
    text = spec_yaml(
        "s1",
        assets={"weights": {"locations": ["file:///srv/m/s1"]}},
        evidence="file:///srv/evidence",
        keys={"certificate": "local://certs", **keys},
    )
    return parse_spec(text)


@pytest.mark.parametrize("kek", [AWS, GCP, AZURE])
def test_cloud_kms_keys_are_accepted_by_their_full_name(kek: str) -> None:
    assert spec(kek=kek).keys_to_destroy() == [(kek, "kek")]


@pytest.mark.parametrize(
    "kek",
    [
        "aws-kms://alias/s1-kek",  # an alias may be repointed after approval
        "aws-kms://arn:aws:kms:us-east-1:123456789012:alias/s1",
        "aws-kms://arn:aws:kms:us-east-1:12345:key/abc",  # not a 12-digit account
        GCP + "/cryptoKeyVersions/1",
        "azure-kv://acme-vault.example.com/keys/k",
    ],
)
def test_other_cloud_key_forms_are_refused_naming_the_expected_form(kek: str) -> None:
    with pytest.raises(InputError, match="is not of the form"):
        spec(kek=kek)


def test_pending_days_only_for_aws_kms_and_within_7_to_30() -> None:
    assert spec(kek=AWS, pending_days=30).keys.pending_days == 30
    assert spec(kek=AWS).keys.pending_days is None  # the connector's default, 7
    for days in (6, 31):
        with pytest.raises(InputError, match=r"keys\.pending_days"):
            spec(kek=AWS, pending_days=days)
    for kek in (GCP, AZURE, "vault://transit/k", "local://k"):
        with pytest.raises(InputError, match=r"keys.pending_days: is set, but keys.kek"):
            spec(kek=kek, pending_days=7)
    # every key destroyed at retirement counts, not only the KEK
    with pytest.raises(InputError, match=r"keys\.model_signing local://sig"):
        spec(kek=AWS, pending_days=7, model_signing="local://sig", destroy_model_signing_key=True)


def test_grants_name_aws_keys_the_system_destroys_once_each() -> None:
    s = spec(kek=AWS, grants=[Flow(id="g1"), Flow(id="g2", key=AWS)])
    assert grants_by_key(s) == {AWS: ["g1", "g2"]}
    with pytest.raises(InputError, match="not a key this system destroys"):
        spec(kek=AWS, grants=[Flow(id="g1", key=AWS2)])
    with pytest.raises(InputError, match="grants are an AWS KMS feature"):
        spec(kek=GCP, grants=[Flow(id="g1")])
    with pytest.raises(InputError, match="named twice"):
        spec(kek=AWS, grants=[Flow(id="g1"), Flow(id="g1", key=AWS)])
    with pytest.raises(InputError, match="grants"):
        spec(kek=AWS, grants=[Flow(id="not a grant!")])


def test_a_grant_id_yaml_reads_as_a_number_is_refused_with_the_fix_named() -> None:
    """AWS grant ids are hex: one made only of digits (CI met ``63727941``) is an integer to
    YAML. The loader does not guess the text back (``0123`` was already read as octal 83); it
    says to quote it, and the quoted id loads as written."""
    with pytest.raises(InputError, match=r"found an integer 63727941 \(YAML reads it as a number"):
        spec(kek=AWS, grants=[Flow(id="63727941")])
    assert grants_by_key(spec(kek=AWS, grants=[Flow(id='"0123"')])) == {AWS: ["0123"]}
