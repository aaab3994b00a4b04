"""System spec: examples load, a corpus of bad specs is refused with clear messages, overlap."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydantic
import pytest

from sundown import canonical
from sundown.errors import InputError, ScopeError
from sundown.spec.loader import load_spec, load_spec_dir, parse_spec
from sundown.spec.model import CredentialRef, spec_digest
from sundown.spec.overlap import check_no_overlap
from sundown.store_url import urls_overlap
from tests.spec_corpus import BAD_SPECS, expectations

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "systems"

MINIMAL = """\
name: {name}
owner: team@example.com
classification: internal
assets:
  weights:
    locations: [{url}]
keys:
  kek: {kek}
  certificate: vault://transit/certs
{extra}"""


def minimal(
    name: str = "sys-a",
    url: str = "s3://acme-models/a",
    kek: str = "vault://transit/a",
    extra: str = "",
) -> str:
    return MINIMAL.format(name=name, url=url, kek=kek, extra=extra)


# -- examples --------------------------------------------------------------------------------


def test_multi_cloud_example_loads() -> None:
    spec = load_spec(EXAMPLES / "fraud-scoring.yaml")
    assert spec.name == "fraud-scoring"
    urls = [r.url for r in spec.locations()]
    assert len(urls) == 9
    assert {u.split("://")[0] for u in urls} == {"s3", "gs", "az"}
    whole = [r for r in spec.locations() if r.location.whole_bucket]
    assert [r.url for r in whole] == ["s3://acme-fraud-training"]
    assert spec.keys_to_destroy() == [("vault://transit/fraud-scoring", "kek")]
    kinds = {ref.kind for ref in spec.credential_refs()}
    assert kinds == {
        "vault_kv",
        "vault_token",
        "vault_lease_prefix",
        "vault_approle_secret_id",
        "vault_approle_role",
        "aws_access_key",
        "azure_stored_policy",
        "gcs_hmac_key",
    }
    assert CredentialRef("aws_access_key", "fraud-scoring-ci/AKIAIOSFODNN7EXAMPLE") in (
        spec.credential_refs()
    )
    assert spec.classification_of("weights") == "restricted"
    assert spec.classification_of("logs") == "confidential"


def test_demo_example_loads_with_its_root(tmp_path: Path) -> None:
    spec = load_spec(EXAMPLES / "demo.yaml", variables={"DEMO_ROOT": str(tmp_path)})
    assert all(r.url.startswith(f"file://{tmp_path}/stores/") for r in spec.locations())
    assert spec.archive is not None
    assert spec.archive.target == f"file://{tmp_path}/stores/archive/demo-sentiment"
    assert spec.keys.kek.startswith("local://")
    assert [role for _, role in spec.keys_to_destroy()] == ["kek", "model_signing"]


def test_demo_example_without_root_names_the_placeholder() -> None:
    with pytest.raises(InputError) as err:
        load_spec(EXAMPLES / "demo.yaml")
    msg = str(err.value)
    assert "demo.yaml" in msg
    assert "assets.weights.locations[0]: placeholder ${DEMO_ROOT} has no value" in msg


@pytest.mark.parametrize(
    ("root", "problem"),
    [
        ("/srv/../etc", "'..' segment"),
        ("relative/dir", "would be read as a host"),
        ("/srv?x=1", "query string"),
    ],
)
def test_placeholder_values_are_validated_like_literals(root: str, problem: str) -> None:
    with pytest.raises(InputError, match=r"assets\.weights\.locations") as err:
        load_spec(EXAMPLES / "demo.yaml", variables={"DEMO_ROOT": root})
    assert problem in str(err.value)


def test_examples_do_not_overlap_each_other(tmp_path: Path) -> None:
    fraud = load_spec(EXAMPLES / "fraud-scoring.yaml")
    demo = load_spec(EXAMPLES / "demo.yaml", variables={"DEMO_ROOT": str(tmp_path)})
    check_no_overlap(fraud, [demo])
    check_no_overlap(demo, [fraud])


# -- the bad-spec corpus ---------------------------------------------------------------------


def test_bad_spec_corpus_is_large_enough() -> None:
    assert len(BAD_SPECS) >= 25
    for path in BAD_SPECS:
        assert expectations(path).expects, f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("path", BAD_SPECS, ids=[p.stem for p in BAD_SPECS])
def test_bad_spec_is_refused_with_field_and_problem(path: Path) -> None:
    case = expectations(path)
    expects, secrets = case.expects, case.secrets
    with pytest.raises(InputError) as err:
        load_spec(path, variables=case.variables)
    msg = str(err.value)
    assert str(path) in msg, "the message names the file"
    for text in expects:
        assert text in msg, f"expected {text!r} in:\n{msg}"
    for secret in secrets:
        assert secret not in msg, "a secret leaked into the error message"
    for noise in ("pydantic", "Traceback", "For further information", "validation error for"):
        assert noise not in msg
    assert err.value.__cause__ is None or not isinstance(
        err.value.__cause__, pydantic.ValidationError
    )


def test_errors_carry_line_numbers_and_all_problems() -> None:
    text = minimal(extra="colour: red\nallow_governance_bypass: 1\n")
    with pytest.raises(InputError) as err:
        parse_spec(text, "systems/sys-a.yaml")
    msg = str(err.value)
    assert msg.startswith("invalid system spec systems/sys-a.yaml (2 problems):")
    assert "line 10: colour: unknown field" in msg
    assert "line 11: allow_governance_bypass: must be true or false, found an integer 1" in msg


def test_secret_looking_values_are_not_echoed_in_type_errors() -> None:
    text = minimal(extra="credentials:\n  gcs_hmac_keys:\n    - access_id: 12345678901234567\n")
    with pytest.raises(InputError) as err:
        parse_spec(text)
    msg = str(err.value)
    assert "credentials.gcs_hmac_keys[0].access_id: must be a string, found an integer" in msg
    assert "12345678901234567" not in msg


# -- loader edges ----------------------------------------------------------------------------


def test_missing_file_directory_and_encoding(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="is a directory"):
        load_spec(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(minimal().encode() + b"description: caf\xe9\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load_spec(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(InputError, match="must be a mapping"):
        load_spec(empty)


def test_oversized_spec_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(minimal() + "# " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(InputError, match="larger than"):
        load_spec(big)


def test_spec_is_immutable() -> None:
    spec = parse_spec(minimal())
    with pytest.raises(pydantic.ValidationError):
        spec.name = "other"  # type: ignore[misc]


def test_location_lookup_is_scoped() -> None:
    spec = parse_spec(minimal(url="s3://acme-models/models/a"))
    assert spec.location("s3://acme-models/models/a/").field == "assets.weights.locations[0]"
    with pytest.raises(ScopeError, match="not a location of system 'sys-a'"):
        spec.location("s3://acme-models/models/ab")
    with pytest.raises(ScopeError):
        spec.location("s3://acme-models/models/a/sub")


# -- digest ----------------------------------------------------------------------------------


def test_digest_is_stable_and_ignores_formatting() -> None:
    a = parse_spec(minimal())
    assert spec_digest(a) == spec_digest(parse_spec(minimal()))
    reformatted = """\
# same spec, other layout
keys: {certificate: 'vault://transit/certs', kek: "vault://transit/a/"}
assets:
  weights:
    locations:
      - url: s3://acme-models/a/
        whole_bucket: false
classification: internal
owner: team@example.com
name: sys-a
allow_governance_bypass: false
"""
    assert spec_digest(parse_spec(reformatted)) == spec_digest(a)
    expected = hashlib.sha256(canonical.dumps(a.model_dump(mode="json"))).hexdigest()
    assert a.digest() == "sha256:" + expected


@pytest.mark.parametrize(
    "change",
    [
        {"url": "s3://acme-models/b"},
        {"name": "sys-b"},
        {"kek": "vault://transit/a2"},
        {"extra": "allow_governance_bypass: true\n"},
        {"extra": "approval: {max_age_hours: 2}\n"},
    ],
)
def test_digest_changes_with_content(change: dict[str, str]) -> None:
    assert spec_digest(parse_spec(minimal(**change))) != spec_digest(parse_spec(minimal()))


# -- path-boundary overlap -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("s3://bkt/models/a", "s3://bkt/models/ab", False),
        ("s3://bkt/models", "s3://bkt/models/a", True),
        ("s3://bkt/models/a", "s3://bkt/models/a/", True),
        ("s3://bkt/models/a", "s3://bkt/models/a", True),
        ("s3://bkt", "s3://bkt/anything/below", True),
        ("s3://bkt/models", "s3://bkt2/models", False),
        ("s3://bkt/models", "gs://bkt/models", False),
        ("s3://bkt/a/b/c", "s3://bkt/a/b/cd", False),
        ("gs://bkt/a", "gs://bkt/a/b/c", True),
        ("az://cont/logs", "az://cont/logs-archive", False),
        ("file:///srv/models", "file:///srv/models/a", True),
        ("file:///srv/models", "file:///srv/models2", False),
        ("file:///srv/models", "file://localhost/srv/models/x", True),
    ],
)
def test_urls_overlap_with_path_boundaries(a: str, b: str, overlap: bool) -> None:
    assert urls_overlap(a, b) is overlap
    assert urls_overlap(b, a) is overlap


def test_prefix_sibling_locations_in_one_spec_are_fine() -> None:
    text = minimal(url="s3://acme-models/models/a").replace(
        "locations: [s3://acme-models/models/a]",
        "locations: [s3://acme-models/models/a, s3://acme-models/models/ab]",
    )
    assert len(parse_spec(text).locations()) == 2


# -- overlap with other systems --------------------------------------------------------------


def test_overlap_with_another_system_is_refused() -> None:
    a = parse_spec(minimal("sys-a", "s3://acme-models/models"))
    b = parse_spec(minimal("sys-b", "s3://acme-models/models/b", kek="vault://transit/b"))
    with pytest.raises(InputError) as err:
        check_no_overlap(a, [b])
    msg = str(err.value)
    assert "system 'sys-a' overlaps other systems" in msg
    assert (
        "sys-a: assets.weights.locations[0] s3://acme-models/models overlaps sys-b's "
        "assets.weights.locations[0] s3://acme-models/models/b"
    ) in msg


def test_sibling_prefixes_of_two_systems_do_not_overlap() -> None:
    a = parse_spec(minimal("sys-a", "s3://acme-models/models/a"))
    b = parse_spec(minimal("sys-b", "s3://acme-models/models/ab", kek="vault://transit/b"))
    check_no_overlap(a, [b])


def test_shared_kek_with_another_system_is_refused() -> None:
    a = parse_spec(minimal("sys-a", "s3://acme-models/a"))
    b = parse_spec(minimal("sys-b", "s3://acme-models/b"))  # same KEK vault://transit/a
    with pytest.raises(InputError, match=r"keys.kek vault://transit/a is also sys-b's keys.kek"):
        check_no_overlap(a, [b])


def test_location_over_another_systems_archive_is_refused() -> None:
    archive = "archive: {target: s3://acme-archive/b, key: vault://transit/arch}\n"
    a = parse_spec(minimal("sys-a", "s3://acme-archive/b/old"))
    b = parse_spec(minimal("sys-b", "s3://acme-models/b", "vault://transit/b", extra=archive))
    with pytest.raises(InputError, match=r"overlaps sys-b's archive\.target s3://acme-archive/b"):
        check_no_overlap(a, [b])


@pytest.mark.parametrize(
    ("cred_a", "cred_b"),
    [
        ("vault_lease_prefixes: [aws/creds]", "vault_lease_prefixes: [aws/creds/b]"),
        ("vault_token_accessors: [abcdefgh1234]", "vault_token_accessors: [abcdefgh1234]"),
        (
            "vault_approles: [{role: shared}]",
            "vault_approles: [{role: shared, delete_role: false, secret_id_accessors: [x1234567]}]",
        ),
    ],
    ids=["overlapping-lease-prefixes", "same-token-accessor", "role-and-its-secret-id"],
)
def test_shared_credentials_are_refused(cred_a: str, cred_b: str) -> None:
    a = parse_spec(minimal("sys-a", extra=f"credentials: {{{cred_a}}}\n"))
    b = parse_spec(
        minimal("sys-b", "s3://acme-models/b", "vault://transit/b", f"credentials: {{{cred_b}}}\n")
    )
    with pytest.raises(InputError, match="revoking it would break"):
        check_no_overlap(a, [b])


def test_same_name_twice_is_refused() -> None:
    a = parse_spec(minimal("sys-a", "s3://acme-models/a"))
    b = parse_spec(minimal("sys-a", "s3://acme-models/b", kek="vault://transit/b"))
    with pytest.raises(InputError, match="two specs declare the system name 'sys-a'"):
        check_no_overlap(a, [b])


def test_spec_dir_checks_every_pair(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(minimal("sys-a", "s3://acme-models/shared"))
    (tmp_path / "b.yaml").write_text(
        minimal("sys-b", "s3://acme-models/other", kek="vault://transit/b")
    )
    assert [s.name for s in load_spec_dir(tmp_path)] == ["sys-a", "sys-b"]
    (tmp_path / "c.yml").write_text(
        minimal("sys-c", "s3://acme-models/shared/c", kek="vault://transit/c")
    )
    with pytest.raises(InputError) as err:
        load_spec_dir(tmp_path)
    assert "sys-a: assets.weights.locations[0] s3://acme-models/shared overlaps sys-c's" in str(
        err.value
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: a\n---\nname: b\n", "not valid YAML"),
        ("name: !!python/object:os.system x\n", "not valid YAML"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
                for i in range(8)
            ),
            "YAML aliases expanding",
        ),
    ],
    ids=["two-documents", "python-tag", "billion-laughs"],
)
def test_hostile_yaml_is_refused_quickly(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        parse_spec(text, "hostile.yaml")


def test_digest_of_a_spec_with_a_fractional_field() -> None:
    """Canonical JSON refuses floats; the fractional grace period still digests, and
    distinctly."""
    base = (EXAMPLES / "demo.yaml").read_text()
    vars_ = {"DEMO_ROOT": "/srv/demo"}
    half = parse_spec(base + "rotation:\n  grace_period_hours: 0.5\n", variables=vars_)
    one = parse_spec(base + "rotation:\n  grace_period_hours: 1.5\n", variables=vars_)
    assert half.digest().startswith("sha256:") and half.digest() != one.digest()


# -- real paths and may_be_absent ------------------------------------------------------------


def test_may_be_absent_is_a_location_field_and_enters_the_digest() -> None:
    plain = parse_spec(minimal(), "<t>")
    optional = parse_spec(minimal(url="{url: 's3://acme-models/a', may_be_absent: true}"), "<t>")
    assert not plain.locations()[0].location.may_be_absent
    assert optional.locations()[0].location.may_be_absent
    assert spec_digest(plain) != spec_digest(optional)
    with pytest.raises(InputError, match="may_be_absent"):
        parse_spec(minimal(url="{url: 's3://acme-models/a', may_be_absent: 'yes'}"), "<t>")


def test_real_paths_expose_an_overlap_the_text_hides(tmp_path: Path) -> None:
    from sundown.store_url import real_store_url, symlink_on_path

    (tmp_path / "shared" / "evalset").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "shared")
    alias = f"file://{tmp_path}/alias/evalset"
    real = f"file://{tmp_path}/shared/evalset"
    assert not urls_overlap(alias, real)  # the text does not show it
    assert real_store_url(alias).url == real
    assert symlink_on_path(alias) == (str(tmp_path / "alias"), str(tmp_path / "shared"))
    assert symlink_on_path(real) is None
    assert symlink_on_path("s3://acme-models/a") is None
    a = parse_spec(minimal(url=alias), "<a>")
    b = parse_spec(minimal(name="sys-b", url=real, kek="vault://transit/b"), "<b>")
    with pytest.raises(InputError, match="through symbolic links"):
        check_no_overlap(a, [b])
    # a sibling that only shares a prefix of the name is still not an overlap
    (tmp_path / "shared" / "evalsetx").mkdir()
    c = parse_spec(
        minimal(name="sys-c", url=f"file://{tmp_path}/shared/evalsetx", kek="vault://transit/c"),
        "<c>",
    )
    check_no_overlap(a, [c])


def test_purge_by_defaults_to_batch_and_lifecycle_is_refused_on_file_locations() -> None:
    from sundown.spec.model import StoreLocation

    assert StoreLocation(url="s3://bkt/models/a").purge_by == "batch"
    assert StoreLocation(url="s3://bkt/models/a", purge_by="lifecycle").purge_by == "lifecycle"
    with pytest.raises(pydantic.ValidationError, match="needs an object store"):
        StoreLocation(url="file:///srv/models", purge_by="lifecycle")
    with pytest.raises(pydantic.ValidationError, match="purge_by"):
        StoreLocation(url="s3://bkt/models/a", purge_by="rm -rf")  # type: ignore[arg-type]


def test_the_shared_spec_builder_writes_what_a_person_would() -> None:
    """tests/spec_builder.py: the text the system builders write, loaded by the real loader."""
    from tests.flows.systems import spec_text
    from tests.spec_builder import Block, Flow, spec_yaml

    text = spec_text("sys-a")
    assert "      - file://${ROOT}/stores/logs/sys-a\n" in text  # tests edit these lines
    assert "  roles: [security-officer, ml-platform-lead]\n" in text
    spec = parse_spec(text, variables={"ROOT": "/srv"})
    assert sorted(r.url for r in spec.locations()) == [
        "file:///srv/stores/data/sys-a",
        "file:///srv/stores/logs/sys-a",
        "file:///srv/stores/models/sys-a",
    ]
    text = spec_yaml(
        "sys-b",
        assets={"weights": {"locations": ["s3://acme-models/b"]}},
        credentials={
            "vault_kv": [{"mount": "secret", "path": "systems/b/db"}],
            "vault_approles": [Block(role="b-serving", secret_id_accessors=["abcdefgh1234"])],
        },
        rotation={"deliver_to": Flow(mount="secret", path="systems/b/rotated")},
        evidence="s3://acme-evidence/b",
    )
    assert "    - role: b-serving\n      secret_id_accessors: [abcdefgh1234]\n" in text
    assert "  deliver_to: {mount: secret, path: systems/b/rotated}\n" in text
    spec = parse_spec(text)
    assert spec.keys.kek == "local://sys-b-kek"
    assert {r.kind for r in spec.credential_refs()} >= {"vault_kv", "vault_approle_secret_id"}


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        (
            "aws_access_keys:\n    - user: ci\n"
            "      access_key_ids: [wJalrXUtnFEMIK7MDENGbPxRfiCY]\n",
            "is not an AWS access key id",
        ),
        (
            "gcs_hmac_keys:\n    - access_id: 'bGV0bWVpbg+secret/x='\n",
            "is not a GCS HMAC access id",
        ),
    ],
)
def test_a_secret_in_place_of_a_key_id_is_refused_without_echo(declared: str, problem: str) -> None:
    with pytest.raises(InputError) as err:
        parse_spec(minimal(extra="credentials:\n  " + declared))
    msg = str(err.value)
    assert problem in msg and "never put" in msg
    assert "wJalrXUtnFEMIK7MDENGbPxRfiCY" not in msg and "bGV0bWVpbg" not in msg
