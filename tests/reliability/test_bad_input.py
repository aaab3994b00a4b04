"""Bad input corpus: malformed and dangerous inputs through the public entry points.

Every input goes through the ``sundown`` command line (``cli.main`` in this process, the
way a user runs it), mostly through the most dangerous path there is: ``sundown decommission
SPEC --approve DIGEST`` with the digest of the real plan of a real system. Each must end with
one clear line naming the problem (asserted), a non-zero exit code, no traceback, and nothing
deleted or changed: the whole state (every file, every S3 version and delete marker, every key
file, the evidence folder) is compared before and after, and canaries sit beside every prefix.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sundown.errors import InputError
from tests.reliability.conftest import CliRun, Victim, count
from tests.reliability.world import Snapshot, file_tree
from tests.spec_corpus import BAD_SPECS, expectations

ROOT = Path(__file__).resolve().parents[2]
APPROVER = ("--approver", "Lee Marchetti", "--approver-role", "security-officer")
NOISE = ("Traceback", "pydantic", "validation error for", "For further information")


def state(v: Victim) -> tuple[Snapshot, dict[str, str]]:
    return v.world.snapshot(), file_tree(v.root / "evidence")


def assert_nothing_changed(v: Victim, before: tuple[Snapshot, dict[str, str]]) -> None:
    snap, evidence = state(v)
    assert not before[0].diff(snap), before[0].diff(snap)
    assert evidence == before[1], "evidence written by a refused run"
    assert not v.world.canaries_intact()


def assert_clear_error(code: int, out: str, err: str, expect_code: int, *expects: str) -> None:
    assert code == expect_code, f"exit {code} (expected {expect_code}); stderr: {err}\n{out}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[0].startswith("sundown: error:"), err
    for text in expects:
        assert text in err, f"expected {text!r} in:\n{err}"
    for noise in NOISE:
        assert noise not in err, f"{noise!r} in:\n{err}"


_DIGESTS: dict[str, str] = {}


def plan_digest(cli: CliRun, v: Victim) -> str:
    """The digest of the victim's current plan (``sundown plan``), once per module."""
    if str(v.spec) not in _DIGESTS:
        code, out, err = cli("plan", v.spec)
        assert code == 0, err
        found = re.search(r"Plan digest: (sha256:[0-9a-f]{64})", out)
        assert found, out
        _DIGESTS[str(v.spec)] = found[1]
    return _DIGESTS[str(v.spec)]


# --------------------------------------------------------------------------------------------
# 1. The loader's corpus (tests/specs/bad/), driven through `sundown decommission --approve`.
# Its S3 buckets (acme-models, acme-archive, acme-evidence) exist on moto with canaries.


@pytest.mark.parametrize("path", BAD_SPECS, ids=[p.stem for p in BAD_SPECS])
def test_corpus_spec_refused_by_decommission(path: Path, victim: Victim, cli: CliRun) -> None:
    case = expectations(path)
    expects, secrets = case.expects, case.secrets
    before = state(victim)
    code, out, err = cli(
        "decommission", path, *case.var_args(), "--approve", "sha256:" + "ab" * 32, *APPROVER
    )
    count("bad inputs tried")
    assert_clear_error(code, out, err, 2, str(path), *expects)
    for secret in secrets:
        assert secret not in err + out
    assert_nothing_changed(victim, before)


# --------------------------------------------------------------------------------------------
# 2. Mutations of the victim's valid spec: each refused by `sundown decommission --approve` with
# the real plan digest (and a few by `sundown plan`), nothing changed.


@dataclass
class SpecCase:
    id: str
    mutate: Callable[[str, Victim], str]
    expects: tuple[str, ...]
    command: str = "decommission"
    secrets: tuple[str, ...] = ()
    folder: str = "bad"
    xfail: str | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)


def replace(old: str, new: str) -> Callable[[str, Victim], str]:
    def mutate(text: str, v: Victim) -> str:
        old_f, new_f = old.format(b=v.bucket, r=v.root), new.format(b=v.bucket, r=v.root)
        assert old_f in text, old_f
        return text.replace(old_f, new_f)

    return mutate


def append(extra: str) -> Callable[[str, Victim], str]:
    return lambda text, v: text + extra.format(b=v.bucket, r=v.root)


LOGS = "      - s3://{b}/logs/victim\n"
WEIGHTS = "      - file://{r}/stores/models/victim\n"

SPEC_CASES = [
    SpecCase(
        "missing-owner",
        replace("owner: ml-platform@example.com\n", ""),
        ("owner: required field is missing",),
    ),
    SpecCase(
        "missing-keys",
        lambda t, v: re.sub(r"keys:\n(  .*\n)+", "", t),
        ("keys: required field is missing",),
    ),
    SpecCase(
        "missing-kek",
        replace("  kek: local://victim-kek\n", ""),
        ("keys.kek: required field is missing",),
    ),
    SpecCase(
        "missing-locations",
        replace("    locations:\n" + LOGS, ""),
        ("assets.logs.locations: required field is missing",),
    ),
    SpecCase(
        "unknown-field", append("purge_everything: true\n"), ("purge_everything: unknown field",)
    ),
    SpecCase(
        "typo-field",
        replace("on_retirement", "on_retirment"),
        ("on_retirment: unknown field", "did you mean 'on_retirement'"),
    ),
    SpecCase(
        "locations-as-string",
        replace("    locations:\n" + LOGS, "    locations: s3://{b}/logs/victim\n"),
        ("assets.logs.locations", "must be a list"),
    ),
    SpecCase(
        "days-as-string",
        replace("delete_after_days: 30", "delete_after_days: '30'"),
        ("assets.logs.retention.delete_after_days", "must be an integer"),
    ),
    SpecCase(
        "bool-as-string",
        append("allow_governance_bypass: 'yes'\n"),
        ("allow_governance_bypass: must be true or false",),
    ),
    SpecCase(
        "negative-days",
        replace("delete_after_days: 30", "delete_after_days: -1"),
        ("assets.logs.retention.delete_after_days",),
    ),
    SpecCase(
        "whole-bucket-not-marked",
        replace(LOGS, "      - s3://{b}\n"),
        ("assets.logs.locations[0]", "scopes the whole bucket", "whole_bucket: true"),
    ),
    SpecCase(
        "whole-bucket-not-marked-plan",
        replace(LOGS, "      - s3://{b}\n"),
        ("scopes the whole bucket",),
        command="plan",
    ),
    SpecCase(
        "empty-prefix",
        replace(LOGS, "      - s3://{b}/\n"),
        ("assets.logs.locations[0]", "scopes the whole bucket"),
    ),
    SpecCase(
        "whole-bucket-with-prefix",
        replace(LOGS, "      - {{url: s3://{b}/logs/victim, whole_bucket: true}}\n"),
        ("assets.logs.locations[0]", "whole_bucket"),
    ),
    SpecCase(
        "dotdot-s3",
        replace(LOGS, "      - s3://{b}/logs/victim/../neighbour\n"),
        ("assets.logs.locations[0]", "'..' segment"),
    ),
    SpecCase(
        "dotdot-s3-plan",
        replace(LOGS, "      - s3://{b}/logs/victim/../neighbour\n"),
        ("'..' segment",),
        command="plan",
    ),
    SpecCase(
        "dotdot-file",
        replace(WEIGHTS, "      - file://{r}/stores/models/victim/../victimx\n"),
        ("assets.weights.locations[0]", "'..' segment"),
    ),
    SpecCase(
        "dot-segment",
        replace(LOGS, "      - s3://{b}/logs/./victim\n"),
        ("assets.logs.locations[0]", "'.' segment"),
    ),
    SpecCase(
        "percent-encoded-dotdot",
        replace(LOGS, "      - s3://{b}/logs/%2e%2e/victim\n"),
        ("assets.logs.locations[0]", "percent"),
    ),
    SpecCase(
        "absolute-key",
        replace(LOGS, "      - s3://{b}//logs/victim\n"),
        ("assets.logs.locations[0]", "empty path segment"),
    ),
    SpecCase("file-root", replace(WEIGHTS, "      - file:///\n"), ("assets.weights.locations[0]",)),
    SpecCase(
        "file-relative-host",
        replace(WEIGHTS, "      - file://stores/models/victim\n"),
        ("assets.weights.locations[0]", "would be read as a host"),
    ),
    SpecCase(
        "backslash",
        replace(LOGS, "      - s3://{b}/logs\\\\victim\n"),
        ("assets.logs.locations[0]",),
    ),
    SpecCase("overlap-in-spec", replace(LOGS, LOGS + "      - s3://{b}/logs\n"), ("overlap",)),
    SpecCase(
        "archive-inside-location",
        replace(
            "  target: file://{r}/stores/archive/victim",
            "  target: file://{r}/stores/models/victim/archive",
        ),
        ("archive.target", "overlap"),
    ),
    SpecCase(
        "evidence-inside-location",
        replace("evidence: file://{r}/evidence", "evidence: s3://{b}/logs/victim/evidence"),
        ("evidence", "overlap"),
    ),
    SpecCase(
        "archive-key-is-kek",
        replace("key: local://victim-archive", "key: local://victim-kek"),
        ("archive.key",),
    ),
    SpecCase(
        "certificate-key-is-kek",
        replace("certificate: local://victim-certs", "certificate: local://victim-kek"),
        ("keys.certificate",),
    ),
    SpecCase(
        "unknown-key-scheme",
        replace("kek: local://victim-kek", "kek: kms://victim-kek"),
        ("keys.kek",),
    ),
    SpecCase(
        "unsupported-location-scheme",
        replace(LOGS, "      - ftp://{b}/logs/victim\n"),
        ("assets.logs.locations[0]",),
    ),
    SpecCase(
        "credentials-in-url",
        replace(LOGS, "      - s3://AKIAXXXXXXXX:wJalrXUtnFEMIsecretK7MDENG@{b}/logs/victim\n"),
        ("assets.logs.locations[0]",),
        secrets=("wJalrXUtnFEMIsecretK7MDENG",),
    ),
    SpecCase(
        "query-string-in-url",
        replace(LOGS, "      - s3://{b}/logs/victim?X-Amz-Signature=deadbeefsecret99\n"),
        ("assets.logs.locations[0]",),
        secrets=("deadbeefsecret99",),
    ),
    SpecCase(
        "vault-token-as-accessor",
        append("credentials:\n  vault_token_accessors: [hvs.CAESIsecretTOKENvalue1234567890]\n"),
        ("credentials.vault_token_accessors[0]", "looks like a Vault token"),
        secrets=("hvs.CAESIsecretTOKENvalue1234567890",),
    ),
    SpecCase(
        "aws-secret-as-key-id",
        append(
            "credentials:\n  aws_access_keys:\n    - {{user: ci, access_key_ids: "
            "[wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY]}}\n"
        ),
        ("credentials.aws_access_keys[0]",),
        secrets=("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",),
    ),
    SpecCase(
        "lease-prefix-whole-mount",
        append("credentials:\n  vault_lease_prefixes: [aws]\n"),
        ("credentials.vault_lease_prefixes[0]",),
    ),
    SpecCase(
        "yaml-alias-bomb",
        lambda t, v: (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
            "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n" + t
        ),
        ("aliases",),
    ),
    SpecCase(
        "yaml-python-tag",
        lambda t, v: t + f"description: !!python/object/apply:os.system ['touch {v.root}/pwned']\n",
        ("line 25", "could not determine a constructor for the tag"),
    ),
    SpecCase(
        "duplicate-yaml-key",
        append("owner: someone-else@example.com\n"),
        ("duplicate key 'owner'",),
    ),
    SpecCase("two-yaml-documents", append("---\nname: other\n"), ("document",)),
    SpecCase("not-a-mapping", lambda t, v: "- just\n- a list\n", ("must be a mapping",)),
    SpecCase("yaml-syntax-error", append("assets: [unclosed\n"), ("line",)),
    SpecCase("name-not-identifier", replace("name: victim", "name: ../victim"), ("name",)),
    SpecCase(
        "placeholder-without-value",
        replace(LOGS, "      - s3://{b}/${{PREFIX}}\n"),
        ("placeholder ${PREFIX} has no value",),
    ),
    # Another system (systems/neighbour.yaml, beside this file) owns s3://b/logs/neighbour;
    # this spec would purge it with its own logs.
    SpecCase(
        "overlaps-another-system",
        replace(LOGS, "      - s3://{b}/logs\n"),
        ("neighbour",),
        folder=".",
    ),
]


def _with_xfail(cases: list[SpecCase]) -> list[object]:
    return [
        pytest.param(c, id=c.id, marks=pytest.mark.xfail(strict=True, reason=c.xfail))
        if c.xfail
        else pytest.param(c, id=c.id)
        for c in cases
    ]


@pytest.mark.parametrize("case", _with_xfail(SPEC_CASES))
def test_bad_spec_refused_and_nothing_deleted(case: SpecCase, victim: Victim, cli: CliRun) -> None:
    digest = plan_digest(cli, victim)
    path = victim.variant(case.id, case.mutate(victim.text, victim), case.folder)
    before = state(victim)
    if case.command == "plan":
        code, out, err = cli("plan", path)
    else:
        code, out, err = cli("decommission", path, "--approve", digest, *APPROVER)
    count("bad inputs tried")
    try:
        assert_clear_error(code, out, err, 2, *case.expects)
        for secret in case.secrets:
            assert secret not in err + out, "a secret was echoed"
    finally:
        assert_nothing_changed(victim, before)
        assert not (victim.root / "pwned").exists()


# --------------------------------------------------------------------------------------------
# 3. Bad arguments and approvals on the victim's valid spec.


@dataclass
class ArgCase:
    id: str
    argv: Callable[[Victim, str], list[str]]
    expects: tuple[str, ...]
    code: int = 2


def _decommission(*extra: str) -> Callable[[Victim, str], list[str]]:
    return lambda v, digest: ["decommission", str(v.spec), *[e.format(d=digest) for e in extra]]


ARG_CASES = [
    ArgCase(
        "approve-not-a-digest",
        _decommission("--approve", "banana", *APPROVER),
        ("'banana' is not a plan digest",),
    ),
    ArgCase(
        "approve-short-digest",
        _decommission("--approve", "{d:.19}", *APPROVER),
        ("is not a plan digest",),
    ),
    ArgCase(
        "approve-wrong-digest",
        _decommission("--approve", "sha256:" + "0" * 64, *APPROVER),
        ("approval names plan digest sha256:" + "0" * 64, "the plan changed since it was reviewed"),
    ),
    ArgCase(
        "approve-without-approver",
        _decommission("--approve", "{d}"),
        ("--approve needs --approver NAME",),
    ),
    ArgCase(
        "approve-and-dry-run",
        _decommission("--approve", "{d}", "--dry-run", *APPROVER),
        ("give exactly one of --dry-run and --approve",),
    ),
    ArgCase(
        "neither-approve-nor-dry-run",
        _decommission(),
        ("give exactly one of --dry-run and --approve",),
    ),
    ArgCase(
        "approver-role-not-allowed",
        _decommission("--approve", "{d}", "--approver", "Sam", "--approver-role", "intern"),
        ("has role 'intern'", "requires one of: security-officer"),
    ),
    ArgCase(
        "var-without-value",
        _decommission("--approve", "{d}", *APPROVER, "--var", "ROOT"),
        ("--var 'ROOT': expected NAME=VALUE",),
    ),
    ArgCase(
        "spec-missing",
        lambda v, d: ["decommission", str(v.root / "nope.yaml"), "--dry-run"],
        ("no such file",),
    ),
    ArgCase(
        "spec-is-a-directory", lambda v, d: ["plan", str(v.root / "systems")], ("no such file",)
    ),
]


@pytest.mark.parametrize("case", ARG_CASES, ids=[c.id for c in ARG_CASES])
def test_bad_argument_refused_and_nothing_deleted(
    case: ArgCase, victim: Victim, cli: CliRun
) -> None:
    digest = plan_digest(cli, victim)
    before = state(victim)
    code, out, err = cli(*case.argv(victim, digest))
    count("bad inputs tried")
    assert_clear_error(code, out, err, case.code, *case.expects)
    assert digest[7:] not in err or case.id == "approve-short-digest" or "dry" in case.id
    assert_nothing_changed(victim, before)


def test_placeholder_value_and_encoding_refused(victim: Victim, cli: CliRun) -> None:
    """--var values are validated like literals; non-UTF-8 and oversized files are refused."""
    digest = plan_digest(cli, victim)
    before = state(victim)
    templated = victim.variant("templated", victim.text.replace(str(victim.root), "${ROOT}"))
    cases = [
        (["--var", "ROOT=/srv/../etc"], templated, "'..' segment"),
        (["--var", "ROOT=relative/dir"], templated, "would be read as a host"),
        ([], victim.variant("latin1", "x"), "not UTF-8"),
        ([], victim.variant("huge", "x"), "larger than"),
    ]
    cases[2][1].write_bytes(victim.text.encode() + b"description: caf\xe9\n")
    cases[3][1].write_text(victim.text + "# " + "x" * (1024 * 1024) + "\n")
    for extra, path, expect in cases:
        code, out, err = cli("decommission", path, "--approve", digest, *APPROVER, *extra)
        count("bad inputs tried")
        assert_clear_error(code, out, err, 2, expect)
    assert_nothing_changed(victim, before)


def test_stale_plan_digest_is_refused_and_the_new_object_survives(
    victim: Victim, cli: CliRun
) -> None:
    """A digest reviewed before the inventory changed (one object more in scope) no longer
    matches: refused, nothing deleted, the new object still there. Runs on a copy of the spec
    pointing at a fresh file store, so the victim stays as it is."""
    store = victim.root / "stores" / "stale" / "victim"
    (store / "a").mkdir(parents=True)
    (store / "a" / "x.bin").write_bytes(b"x" * 10)
    text = victim.text.replace(f"{victim.root}/stores/models/victim", str(store))
    spec = victim.variant("stale", text)
    code, out, err = cli("plan", spec)
    assert code == 0, err
    old = re.search(r"Plan digest: (sha256:[0-9a-f]{64})", out)
    assert old
    (store / "a" / "new.bin").write_bytes(b"new")
    before = state(victim)
    code, out, err = cli("decommission", spec, "--approve", old[1], *APPROVER)
    count("bad inputs tried")
    assert_clear_error(code, out, err, 2, f"approval names plan digest {old[1]}")
    assert sorted(p.name for p in (store / "a").iterdir()) == ["new.bin", "x.bin"]
    assert_nothing_changed(victim, before)


def test_expired_approval_is_refused() -> None:
    """The approval age limit (spec approval.max_age_hours) is enforced by the core check the
    flow calls. The CLI and the Prefect pause cannot express an older approval (an approval is
    made when it is given), so this input goes through sundown.plan.check_plan_approval."""
    from sundown.plan import Approval, Plan, check_plan_approval
    from sundown.spec.loader import parse_spec

    spec = parse_spec(
        "name: sys-x\nowner: o@example.com\nclassification: internal\nassets:\n  weights:\n"
        "    locations: [s3://acme-models/sys-x]\nkeys:\n  kek: local://sys-x-kek\n"
        "  certificate: local://sys-x-certs\napproval:\n  max_age_hours: 24\n"
    )
    plan = Plan(kind="retirement", system="sys-x", owner="o", spec_digest=spec.digest(),
                digest="sha256:" + "1" * 64, path="/nonexistent")  # fmt: skip
    old = Approval(
        plan_digest=plan.digest,
        approver="Lee",
        approved_at=datetime.now(UTC) - timedelta(hours=25),
    )
    count("bad inputs tried")
    with pytest.raises(InputError, match=r"expired at .* \(maximum age 1 day, 0:00:00\)"):
        check_plan_approval(plan, old, spec)
    future = old.model_copy(update={"approved_at": datetime.now(UTC) + timedelta(hours=1)})
    count("bad inputs tried")
    with pytest.raises(InputError, match="is in the future"):
        check_plan_approval(plan, future, spec)


# --------------------------------------------------------------------------------------------
# 4. Keys, ciphertexts, sidecars, certificates, the ledger and the journal.


@pytest.fixture
def sealed(tmp_path: Path, cli: CliRun) -> dict[str, Path]:
    """Two files encrypted with `sundown encrypt` under local://k1 (sidecars beside them)."""
    assert cli("keys", "create", "local://k1")[0] == 0
    assert cli("keys", "create", "local://k2")[0] == 0
    out = {}
    for name in ("a", "b"):
        plain = tmp_path / f"{name}.bin"
        plain.write_bytes(bytes(range(256)) * 40 + name.encode())
        code, _, err = cli("encrypt", plain, tmp_path / f"{name}.enc", "--key", "local://k1")
        assert code == 0, err
        out[name] = tmp_path / f"{name}.enc"
    return out


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_sidecar(path: Path, edit: Callable[[dict[str, object]], None]) -> None:
    side = Path(str(path) + ".sidecar.json")
    obj = json.loads(side.read_text())
    edit(obj)
    side.write_text(json.dumps(obj))


def _wrapped(obj: dict[str, object]) -> None:
    value = str(obj["wrapped_dek"])
    obj["wrapped_dek"] = ("A" if value[5] != "A" else "B").join((value[:5], value[6:]))


CRYPTO_CASES: list[tuple[str, Callable[[dict[str, Path]], None], int, str]] = [
    (
        "truncated-ciphertext",
        lambda f: f["a"].write_bytes(f["a"].read_bytes()[:-20]),
        3,
        "nothing was written",
    ),
    (
        "ciphertext-cut-at-segment",
        lambda f: f["a"].write_bytes(f["a"].read_bytes()[:100]),
        3,
        "nothing was written",
    ),
    ("ciphertext-bit-flipped", lambda f: _flip(f["a"], 200), 3, "nothing was written"),
    ("ciphertext-header-flipped", lambda f: _flip(f["a"], 3), 3, "nothing was written"),
    (
        "ciphertext-swapped",
        lambda f: f["a"].write_bytes(f["b"].read_bytes()),
        3,
        "nothing was written",
    ),
    ("ciphertext-empty", lambda f: f["a"].write_bytes(b""), 3, "nothing was written"),
    ("sidecar-wrapped-key-tampered", lambda f: _edit_sidecar(f["a"], _wrapped), 3, "a.enc"),
    (
        "sidecar-artifact-path-changed",
        lambda f: _edit_sidecar(f["a"], lambda o: o["associated_data"].update(path="b.enc")),  # type: ignore[attr-defined]
        3,
        "a.enc",
    ),
    (
        "sidecar-size-changed",
        lambda f: _edit_sidecar(
            f["a"], lambda o: o.update(plaintext_size=int(o["plaintext_size"]) + 1)
        ),
        3,
        "a.enc",
    ),  # type: ignore[call-overload]
    (
        "sidecar-key-uri-changed",
        lambda f: _edit_sidecar(f["a"], lambda o: o.update(key_uri="local://k2")),
        3,
        "a.enc",
    ),
    (
        "sidecar-not-json",
        lambda f: Path(str(f["a"]) + ".sidecar.json").write_text("{not json"),
        3,
        "a.enc",
    ),
    ("sidecar-missing", lambda f: Path(str(f["a"]) + ".sidecar.json").unlink(), 4, "sidecar"),
]


@pytest.mark.parametrize(
    ("name", "damage", "code", "expect"), CRYPTO_CASES, ids=[c[0] for c in CRYPTO_CASES]
)
def test_damaged_envelope_is_refused_and_no_plaintext_written(
    name: str,
    damage: Callable[[dict[str, Path]], None],
    code: int,
    expect: str,
    sealed: dict[str, Path],
    cli: CliRun,
    tmp_path: Path,
) -> None:
    damage(sealed)
    out_path = tmp_path / "out.bin"
    got, out, err = cli("decrypt", sealed["a"], out_path)
    count("bad inputs tried")
    assert_clear_error(got, out, err, code, expect)
    assert not out_path.exists(), "plaintext written from a damaged envelope"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sundown-tmp-")]


def test_unknown_and_destroyed_keys(sealed: dict[str, Path], cli: CliRun, tmp_path: Path) -> None:
    out_path = tmp_path / "out.bin"
    cases = [
        (
            ("encrypt", tmp_path / "a.bin", tmp_path / "c.enc", "--key", "local://nope"),
            4,
            "local://nope",
        ),
        (
            ("encrypt", tmp_path / "a.bin", tmp_path / "c.enc", "--key", "gcpkms://x/y"),
            2,
            "unknown URL scheme 'gcpkms'",
        ),
        (("keys", "info", "local://nope"), 4, "local://nope"),
        (("keys", "destroy", "local://nope", "--yes"), 4, "local://nope"),
        (("keys", "rotate", "local://../k1"), 2, "local://../k1"),
        (
            ("decrypt", sealed["a"], out_path, "--key", "local://k2"),
            3,
            "is wrapped by local://k1, not local://k2",
        ),
    ]
    for argv, code, expect in cases:
        got, out, err = cli(*argv)
        count("bad inputs tried")
        assert_clear_error(got, out, err, code, expect)
    assert not (tmp_path / "c.enc").exists() and not out_path.exists()
    # destroyed: nothing decrypts, nothing encrypts, info says so
    assert cli("keys", "destroy", "local://k1", "--yes")[0] == 0
    for argv, expect in [
        (("decrypt", sealed["b"], out_path), "destroyed"),
        (("encrypt", tmp_path / "a.bin", tmp_path / "c.enc", "--key", "local://k1"), "destroyed"),
        (("keys", "info", "local://k1"), "destroyed"),
        (("keys", "rotate", "local://k1"), "destroyed"),
    ]:
        got, out, err = cli(*argv)
        count("bad inputs tried")
        assert_clear_error(got, out, err, 5, expect)
    assert not (tmp_path / "c.enc").exists() and not out_path.exists()
    # destroying it again is idempotent: it finishes what is left (nothing) and proves it again
    # from the key directory (a destroy interrupted after the tombstone is finished this way,
    # tests/test_keyring.py), never reporting a key whose files remain as destroyed
    got, out, err = cli("keys", "destroy", "local://k1", "--yes")
    assert got == 0, err
    assert "check key files remaining: none" in out and "verified: yes" in out


@pytest.fixture(scope="module")
def retired(tmp_path_factory: pytest.TempPathFactory, prefect_server: object) -> dict[str, Path]:
    """A system (tests/flows/systems.py) retired through the flow: its certificate, manifest,
    ledger and public key, for tampering."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.decommission import decommission_system
    from flows.models import DecommissionParameters, Party
    from sundown import registry
    from tests.flows.systems import make_system

    root = tmp_path_factory.mktemp("retired")
    with (
        pytest.MonkeyPatch.context() as mp,
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        mp.setenv("SUNDOWN_HOME", str(root / "home"))
        system = make_system(root / "sys", "sys-r")
        p = {"spec_path": str(system.spec_path), "variables": system.variables}
        plan = decommission_system(DecommissionParameters(**p, dry_run=True))
        result = decommission_system(
            DecommissionParameters(
                **p,
                approve_digest=plan.plan_digest,
                approver=Party(name="Lee", role="security-officer"),
            )
        )
        assert result.status == "complete"
        pub = root / "cert.pub.pem"
        pub.write_bytes(registry.open_signer("local://sys-r-certificates").public_key_pem())
        other = root / "other.pub.pem"
        registry.create_key("local://other-certs", signing=True)
        other.write_bytes(registry.open_signer("local://other-certs").public_key_pem())
    cert = Path(str(result.certificate_url).removeprefix("file://"))
    return {
        "cert": cert,
        "manifest": Path(str(result.manifest_url).removeprefix("file://")),
        "pub": pub,
        "other": other,
        "ledger": system.root / "evidence",
        "spec": system.spec_path,
        "root": system.root,
        "home": root / "home",
    }


def _copy_evidence(retired: dict[str, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the certificate folder (certificate + manifest beside it) to damage."""
    folder = tmp_path / "cert"
    shutil.copytree(retired["cert"].parent, folder)
    return folder / retired["cert"].name, folder / retired["manifest"].name


def _tamper_payload(cert: Path, edit: Callable[[dict[str, object]], None]) -> None:
    import base64

    env = json.loads(cert.read_text())
    payload = json.loads(base64.b64decode(env["payload"]))
    edit(payload)
    env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    cert.write_text(json.dumps(env))


def _predicate(p: dict[str, object]) -> dict[str, object]:
    pred = p["predicate"]
    assert isinstance(pred, dict)
    return pred


CERT_CASES: list[tuple[str, Callable[[Path, Path], None], str]] = [
    (
        "status-changed",
        lambda c, m: _tamper_payload(c, lambda p: _predicate(p).update(status="failed")),
        "signature",
    ),
    (
        "certificate-id-changed",
        lambda c, m: _tamper_payload(c, lambda p: _predicate(p).update(certificate_id="DC-x")),
        "signature",
    ),
    (
        "signature-bit-flipped",
        lambda c, m: c.write_text(c.read_text().replace('"sig":"', '"sig":"AAAA', 1)),
        "signature",
    ),
    (
        "payload-type-changed",
        lambda c, m: c.write_text(
            c.read_text().replace("application/vnd.in-toto+json", "application/json")
        ),
        "",
    ),
    (
        "manifest-line-removed",
        lambda c, m: m.write_text("".join(m.read_text().splitlines(keepends=True)[1:])),
        "manifest",
    ),
    (
        "manifest-line-added",
        lambda c, m: m.write_text(m.read_text() + m.read_text().splitlines(keepends=True)[0]),
        "manifest",
    ),
]


@pytest.mark.parametrize(("name", "damage", "expect"), CERT_CASES, ids=[c[0] for c in CERT_CASES])
def test_tampered_certificate_is_refused(
    name: str,
    damage: Callable[[Path, Path], None],
    expect: str,
    retired: dict[str, Path],
    cli: CliRun,
    tmp_path: Path,
) -> None:
    cert, manifest = _copy_evidence(retired, tmp_path)
    code, out, err = cli("certificate", "verify", cert, "--public-key", retired["pub"])
    assert code == 0, err  # the untouched copy verifies
    damage(cert, manifest)
    code, out, err = cli("certificate", "verify", cert, "--public-key", retired["pub"])
    count("bad inputs tried")
    assert_clear_error(code, out, err, 3, expect)
    assert "OK" not in out


def test_certificate_with_the_wrong_key_and_tampered_ledger(
    retired: dict[str, Path], cli: CliRun, tmp_path: Path
) -> None:
    code, out, err = cli("certificate", "verify", retired["cert"], "--public-key", retired["other"])
    count("bad inputs tried")
    assert_clear_error(code, out, err, 3, "signature")
    code, out, err = cli(
        "certificate", "render", retired["cert"], "--out", tmp_path / "c.pdf",
        "--public-key", retired["other"],
    )  # fmt: skip
    count("bad inputs tried")
    assert_clear_error(code, out, err, 3, "signature")
    assert not (tmp_path / "c.pdf").exists()
    ledger = tmp_path / "ledger"
    shutil.copytree(retired["ledger"], ledger)
    code, out, err = cli("ledger", "verify", "--ledger", ledger.as_uri(),
                         "--public-key", retired["pub"])  # fmt: skip
    assert code == 0, err
    records = sorted((ledger / "records").glob("*.json"))
    assert records, sorted(ledger.rglob("*"))
    text = records[-1].read_text()
    records[-1].write_text(text.replace("decommissioned", "deployed", 1) if "decommissioned"
                           in text else text.replace('"', "'", 1))  # fmt: skip
    code, out, err = cli("ledger", "verify", "--ledger", ledger.as_uri(),
                         "--public-key", retired["pub"])  # fmt: skip
    count("bad inputs tried")
    assert_clear_error(code, out, err, 3, records[-1].name.split(".")[0])


def test_deploy_and_rotate_on_a_destroyed_kek_write_nothing(
    retired: dict[str, Path],
    cli: CliRun,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_api: str,
) -> None:
    monkeypatch.setenv("SUNDOWN_HOME", str(retired["home"]))
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 1000)
    weights = retired["root"] / "stores" / "models" / "sys-r"
    before = file_tree(retired["root"])
    var = ("--var", f"ROOT={retired['root']}")
    for argv in (("deploy", retired["spec"], model, "--version", "v9", *var),
                 ("rotate", retired["spec"], *var)):  # fmt: skip
        code, out, err = cli(*argv)
        count("bad inputs tried")
        assert_clear_error(code, out, err, 5, "local://sys-r-kek", "destroyed")
    # nothing is written but each run's lease records (taken, released: who tried, when)
    after = file_tree(retired["root"])
    leases = sorted(k for k in after.keys() - before.keys() if k.startswith("evidence/leases/"))
    assert {k: v for k, v in after.items() if k not in leases} == before
    assert len(leases) == 4, leases  # two runs: one taken and one released record each
    assert not weights.exists() or not any(weights.iterdir())


def test_truncated_certificate_is_an_integrity_error_naming_the_file(
    retired: dict[str, Path], cli: CliRun, tmp_path: Path
) -> None:
    cert, _ = _copy_evidence(retired, tmp_path)
    cert.write_bytes(cert.read_bytes()[: len(cert.read_bytes()) // 2])
    code, out, err = cli("certificate", "verify", cert, "--public-key", retired["pub"])
    count("bad inputs tried")
    assert "OK" not in out
    assert code != 0 and "Traceback" not in err
    assert_clear_error(code, out, err, 3, cert.name)


# --------------------------------------------------------------------------------------------
# 5. The decommission path itself: an unknown KEK, and a resumed retirement whose journal was
# tampered with.


def _small_system(tmp_path: Path, name: str) -> tuple[object, list[str]]:
    from tests.flows.systems import make_system

    system = make_system(tmp_path / "sys", name)
    return system, ["--var", f"ROOT={system.root}"]


def test_unknown_kek_stops_the_retirement_before_deleting(
    tmp_path: Path, cli: CliRun, prefect_api: str
) -> None:
    """A KEK URI that names no key (a typo) is refused at planning, naming the key: only a
    destroyed key's tombstone means "already erased"."""
    system, var = _small_system(tmp_path, "sys-u")
    spec = system.spec_path  # type: ignore[attr-defined]
    spec.write_text(spec.read_text().replace("local://sys-u-kek", "local://sys-u-kek-typo"))
    before = file_tree(system.root / "stores")  # type: ignore[attr-defined]
    code, out, err = cli("plan", spec, *var)
    count("bad inputs tried")
    assert_clear_error(code, out, err, 4, "local://sys-u-kek-typo")
    code, out, err = cli("decommission", spec, *var, "--approve", "sha256:" + "0" * 64, *APPROVER)
    count("bad inputs tried")
    assert_clear_error(code, out, err, 4, "local://sys-u-kek-typo")
    after = file_tree(system.root / "stores")  # type: ignore[attr-defined]
    assert after == before, f"{len(before) - len(after)} files deleted"


def _interrupted(tmp_path: Path, name: str, cli: CliRun) -> tuple[object, list[str], str, Path]:
    """A retirement approved and interrupted after its first purge (an exception raised by the
    file store's second purge call): (system, --var, digest, journal folder)."""
    from connectors.local import FileStore

    system, var = _small_system(tmp_path, name)
    spec = system.spec_path  # type: ignore[attr-defined]
    code, out, err = cli("plan", spec, *var)
    digest = re.search(r"Plan digest: (sha256:[0-9a-f]{64})", out)
    assert code == 0 and digest, err
    real = FileStore.purge
    calls = []

    def purge(self: FileStore, entries: object, **kw: object) -> object:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("simulated crash")
        return real(self, entries, **kw)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FileStore, "purge", purge)
        with pytest.raises(RuntimeError, match="simulated crash"):
            cli("decommission", spec, *var, "--approve", digest[1], *APPROVER)
    assert len(calls) == 2
    (folder,) = (system.root / "evidence" / "decommissions" / name).iterdir()  # type: ignore[attr-defined]
    return system, var, digest[1], folder


def test_resume_with_a_tampered_journal_is_refused(
    tmp_path: Path, cli: CliRun, prefect_api: str
) -> None:
    """An approved, interrupted retirement: its stored plan altered (one more copy to purge,
    a canary), or a journal record made unreadable. The re-run refuses with an integrity error
    naming the file, and deletes nothing more."""
    system, var, digest, folder = _interrupted(tmp_path, "sys-j", cli)
    spec = system.spec_path  # type: ignore[attr-defined]
    stores = system.root / "stores"  # type: ignore[attr-defined]
    plan = folder / "plan.jsonl"
    lines = plan.read_text().splitlines(keepends=True)
    entry = next(i for i, line in enumerate(lines) if '"t":"entry"' in line.replace(" ", ""))
    forged = json.loads(lines[entry])
    forged["key"] = "../sys-jx/canary.bin"
    original = plan.read_bytes()
    plan.write_text("".join([*lines[:entry], json.dumps(forged) + "\n", *lines[entry:]]))
    before = file_tree(stores)
    code, out, err = cli("decommission", spec, *var, "--approve", digest, *APPROVER)
    count("bad inputs tried")
    assert_clear_error(code, out, err, 3, "plan file", digest, "changed after it was made")
    assert file_tree(stores) == before and system.canaries_intact()  # type: ignore[attr-defined]

    plan.write_bytes(original)
    record = sorted((folder / "journal").glob("purge-*.json"))[0]
    record.write_text("{ not json")
    code, out, err = cli("decommission", spec, *var, "--approve", digest, *APPROVER)
    count("bad inputs tried")
    assert_clear_error(code, out, err, 3, record.name, "not JSON")
    assert file_tree(stores) == before and system.canaries_intact()  # type: ignore[attr-defined]
