"""sundown.trust: trust anchors from options and trust files (the attacks are in
tests/adversarial/test_verification.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sundown.certificate import public_key_fingerprint
from sundown.errors import InputError, NotFoundError
from sundown.trust import (
    anchors_from_options,
    default_trust_file,
    load_trust_file,
    parse_fingerprint,
)
from tests.test_certificate import LocalSigner

FP = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"keys": [{"fingerprint": FP}]}, "field version"),
        ({"version": 2, "keys": [{"fingerprint": FP}]}, "field version"),
        ({"version": 1, "keys": []}, "field keys"),
        ({"version": 1, "keys": [{"fingerprint": FP[:20]}]}, "keys.0.fingerprint"),
        ({"version": 1, "keys": [{"fingerprint": FP, "trusted": True}]}, "keys.0.trusted"),
        ({"version": 1, "keys": [{"fingerprint": FP.upper()}]}, "keys.0.fingerprint"),
        ({"version": "1", "keys": [{"fingerprint": FP}]}, "field version"),
    ],
)
def test_a_malformed_trust_file_is_refused_naming_the_field(
    tmp_path: Path, body: object, message: str
) -> None:
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(body))
    with pytest.raises(InputError, match=message):
        load_trust_file(path)


def test_trust_file_entries_and_their_keys(tmp_path: Path) -> None:
    signer = LocalSigner()
    pem = signer.public_key_pem()
    fp = public_key_fingerprint(pem)
    path = tmp_path / "trust.json"
    entry = {"fingerprint": fp, "key_id": "vault://t/k#v1", "public_key": pem.decode(), "note": "x"}
    path.write_text(json.dumps({"version": 1, "keys": [entry, {"fingerprint": FP}]}))
    first, second = load_trust_file(path)
    assert (first.fingerprint, first.key_id, first.public_key) == (fp, "vault://t/k#v1", pem)
    assert (second.fingerprint, second.key_id, second.public_key) == (FP, None, None)
    assert first.source == f"trust file {path}"
    with pytest.raises(NotFoundError, match="no such file"):
        load_trust_file(tmp_path / "missing.json")


def test_options_replace_the_default_trust_file(tmp_path: Path, sundown_home: Path) -> None:
    assert default_trust_file() == sundown_home / "trust.json"
    assert not anchors_from_options()  # no option, no file: no anchor
    default_trust_file().write_text(json.dumps({"version": 1, "keys": [{"fingerprint": FP}]}))
    assert anchors_from_options().fingerprints() == [FP]
    other = "sha256:" + "cd" * 32
    assert anchors_from_options(fingerprints=[other]).fingerprints() == [other]
    assert not anchors_from_options(use_default_file=False)
    pem = tmp_path / "k.pem"
    pem.write_bytes(LocalSigner().public_key_pem())
    both = anchors_from_options([pem], [other])
    assert both.fingerprints() == sorted([public_key_fingerprint(pem.read_bytes()), other])


@pytest.mark.parametrize("text", ["ab" * 32, FP[:19], FP + "00", "sha1:" + "ab" * 20, ""])
def test_only_a_full_fingerprint_is_a_fingerprint(text: str) -> None:
    with pytest.raises(InputError, match="a prefix is not a fingerprint"):
        parse_fingerprint(text)
    assert parse_fingerprint(" " + FP.upper().replace("SHA256", "sha256") + "\n") == FP
