"""Claims a certificate (or plan) made about locations, made false in the world, and the
certificate no longer making them (issue #12, "Silent gaps" and "Locations").

Before: a location that does not exist, an empty one, one whose root is a symbolic link, and
symbolic links, FIFOs and sockets inside a location were all skipped without a word: "0 copies
remain", status complete, while the data behind the link survived; a file with another hard
link outside the scope was "purged" while its data stayed readable under the other name.

One real retirement (file store, local keyring, the session's Prefect server) carries most of
them at once, so the server start is paid once.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from flows.decommission import decommission_system
from flows.models import DecommissionParameters, Party
from sundown import registry
from sundown.certificate import verify_certificate
from sundown.errors import NotFoundError, ScopeError
from sundown.plan import read_plan
from sundown.render import certificate_markdown, rendering_of
from tests.flows.systems import System, make_system

APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")


def params(system: System, **kw: object) -> DecommissionParameters:
    return DecommissionParameters(
        spec_path=str(system.spec_path),
        variables=system.variables,
        **kw,  # type: ignore[arg-type]
    )


def row(markdown: str, needle: str) -> str:
    return next(line for line in markdown.splitlines() if needle in line and line.startswith("|"))


@pytest.fixture
def system(tmp_path: Path, prefect_api: str) -> System:
    return make_system(tmp_path / "sys")


def test_certificate_names_what_remains_and_what_was_never_there(
    system: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an optional cache location that does not exist, declared may_be_absent
    spec = system.spec_path.read_text().replace(
        "archive:\n",
        "  caches:\n    locations:\n"
        "      - {url: 'file://${ROOT}/stores/cache/sys-a', may_be_absent: true}\n"
        "archive:\n",
        1,
    )
    system.spec_path.write_text(spec)
    # training data: the folder exists but holds nothing
    data = system.store("data/sys-a")
    shutil.rmtree(data)
    data.mkdir()
    # logs: a symlink to data outside every scope, a FIFO and a socket beside the logs
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"outside")
    logs = system.store("logs/sys-a")
    (logs / "escape").symlink_to(outside)
    os.mkfifo(logs / "pipe")
    # a log that also has a name outside every scope: unlinking it here would not remove it
    kept = tmp_path / "kept-elsewhere.log"
    os.link(logs / "2025/01/01.log", kept)
    monkeypatch.chdir(logs)  # AF_UNIX paths are short: bind relative to the folder
    sock = socket.socket(socket.AF_UNIX)
    sock.bind("sock")
    try:
        plan = decommission_system(params(system, dry_run=True))
        summary = read_plan(plan.plan_path, plan.plan_digest)
        plan_md = summary.to_markdown()
        # the plan: nothing found where nothing is, and the special files as held copies
        assert "nothing found (root absent)" in row(plan_md, "/stores/cache/sys-a")
        assert "nothing found" in row(plan_md, "/stores/data/sys-a")
        logs_plan = next(loc for loc in summary.locations if loc.url.endswith("/logs/sys-a"))
        kinds = ("symlink", "fifo", "socket", "hardlink", "object")
        assert [logs_plan.found[k].count for k in kinds] == [1, 1, 1, 1, 2]
        assert logs_plan.held.count == 4

        result = decommission_system(
            params(system, approve_digest=plan.plan_digest, approver=APPROVER)
        )
    finally:
        sock.close()
    assert result.status != "complete"
    assert outside.read_bytes() == b"outside"
    assert (logs / "escape").is_symlink() and (logs / "pipe").exists() and (logs / "sock").exists()
    assert (logs / "2025/01/01.log").read_bytes() == kept.read_bytes()
    assert not (logs / "2025/01/02.log").exists()  # the ordinary logs are purged
    pub = registry.open_signer("local://sys-a-certificates").public_key_pem()
    assert result.certificate_url
    verified = verify_certificate(
        Path(result.certificate_url.removeprefix("file://")).read_bytes(), pub
    )
    cert = verified.certificate
    assert cert.status.value == "complete with exceptions"
    md = certificate_markdown(rendering_of(verified))
    assert "nothing found" in row(md, "/stores/cache/sys-a")
    assert "nothing found" in row(md, "/stores/data/sys-a")
    assert "nothing found" not in row(md, "/stores/logs/sys-a")
    held = [e for e in cert.exceptions if e.subject.endswith("/logs/sys-a") and e.kind == "held"]
    assert len(held) == 1
    for name in ("symlink escape", "fifo pipe", "socket sock", "hardlink 2025/01/01.log"):
        assert name in held[0].description
    logs_record = next(r for r in cert.locations if r.uri.endswith("/logs/sys-a"))
    assert logs_record.held.versions == 4
    assert "remaining, not followed" in logs_record.verification.details


def test_no_certificate_for_a_misspelt_location(system: System) -> None:
    """Before: a folder that does not exist was planned as empty and certified purged."""
    spec = system.spec_path.read_text().replace("stores/data/sys-a", "stores/dta/sys-a")
    system.spec_path.write_text(spec)
    with pytest.raises(NotFoundError, match=r"training_data\.locations\[0\] .*does not exist"):
        decommission_system(params(system, dry_run=True))
    assert not (system.root / "evidence").exists()  # no plan journal, no certificate
    registry.open_key_service("local://sys-a-kek").info()


def test_no_certificate_for_a_location_whose_root_is_a_symlink(
    system: System, tmp_path: Path
) -> None:
    """Before: the root symlink was skipped ("0 copies remain", complete) while the data
    behind it survived, and the KEK was destroyed with a "Purge" claim over it."""
    real = tmp_path / "real-data"
    shutil.move(system.store("data/sys-a"), real)
    system.store("data/sys-a").symlink_to(real)
    with pytest.raises(ScopeError, match="symbolic link"):
        decommission_system(params(system, dry_run=True))
    assert not (system.root / "evidence").exists()
    assert sorted(p.name for p in (real / "train").iterdir()) == [
        "part-0.parquet",
        "part-1.parquet",
    ]
    registry.open_key_service("local://sys-a-kek").info()


S3_SPEC = """\
name: sys-s3
owner: team@example.com
classification: internal
assets:
  weights:
    locations: [s3://paths-present/models/none-here]
  logs:
    locations: [{logs}]
keys:
  kek: local://sys-s3-kek
  certificate: local://sys-s3-cert
"""


def test_object_store_missing_bucket_is_an_error_and_empty_prefix_is_nothing_found(
    moto_env: str,
) -> None:
    """On an object store the root is the bucket: a bucket that does not exist stops planning
    (unless may_be_absent); an existing bucket with nothing under the prefix is nothing found."""
    import boto3

    from flows._steps import _location_inventory
    from sundown.spec.loader import parse_spec

    boto3.client("s3").create_bucket(Bucket="paths-present")
    spec = parse_spec(S3_SPEC.format(logs="s3://paths-missing/logs"), "<s3>")
    weights, logs = spec.locations()
    entries, absent = _location_inventory(weights)
    assert list(entries) == [] and absent is False
    with pytest.raises(NotFoundError, match=r"assets\.logs\.locations\[0\].*does not exist"):
        _location_inventory(logs)
    optional = parse_spec(
        S3_SPEC.format(logs="{url: 's3://paths-missing/logs', may_be_absent: true}"), "<s3>"
    )
    entries, absent = _location_inventory(optional.locations()[1])
    assert list(entries) == [] and absent is True
