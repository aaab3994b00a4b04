"""Issue #15, retention: ``retention_sweep`` applies ``delete_after_days`` to CloudWatch Logs
groups (a retention policy, never longer than the rule) and to an MLflow experiment's runs
(older than N days, deleted permanently), on moto_server and the session's ``mlflow server``,
with a receipt in the ledger; and the spec refuses the rule where no connector applies it.
Each test tries to reach beyond the scope: a foreign log group with a longer prefix, a run of
another experiment, a run younger than N days, a run a registered model's version comes from."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli import main
from flows.models import Incomplete, RetentionParameters
from flows.retention import retention_sweep
from sundown import registry
from sundown.errors import InputError
from sundown.ledger import Ledger
from sundown.record_retention import CLOUDWATCH_RETENTION_DAYS, cloudwatch_days
from sundown.spec.loader import parse_spec
from tests.fixtures.mlflow import MlflowServer
from tests.spec_builder import spec_yaml
from tests.test_mlflow_specific import _version

DAYS = 100  # CloudWatch has no 100: the sweep must set 90, never 120


def _spec(tag: str, locations: list[Any], evidence: Path, rule: dict[str, int] | None) -> str:
    logs: dict[str, Any] = {"locations": locations}
    if rule is not None:
        logs["retention"] = rule
    return spec_yaml(
        f"sb-{tag}",
        assets={"logs": logs},
        keys={"kek": f"local://sb-{tag}-kek", "certificate": f"local://sb-{tag}-certificates"},
        evidence=f"file://{evidence}",
    )


def _system(tag: str, locations: list[Any], evidence: Path, rule: dict[str, int]) -> str:
    """:func:`_spec`, with its keys created."""
    registry.create_key(f"local://sb-{tag}-kek")
    registry.create_key(f"local://sb-{tag}-certificates", signing=True)
    return _spec(tag, locations, evidence, rule)


# -- the spec: where a retention rule may stand ----------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mlflow://127.0.0.1:5000/models/sb", "lineage of its versions"),
        ("sagemaker://us-east-1/sb", "serving resource is retired, never aged out"),
        ("redis://127.0.0.1:6379/0/sb", "knows no age of its records"),
        (
            {"url": "postgresql://127.0.0.1:5432/db/public/logs", "where": {"system": "sb"}},
            "knows no age of its records",
        ),
    ],
)
def test_the_spec_refuses_retention_where_no_connector_applies_it(url: Any, why: str) -> None:
    with pytest.raises(InputError) as err:
        parse_spec(_spec("x", [url], Path("/tmp/ev"), {"delete_after_days": 3}))
    msg = str(err.value)
    shown = url if isinstance(url, str) else url["url"]
    assert "assets.logs.locations[0]" in msg and shown in msg and why in msg, msg


@pytest.mark.parametrize(
    "url", ["aws-logs://us-east-1//aws/sagemaker/Endpoints/sb", "mlflow://h:5000/experiments/sb"]
)
def test_the_spec_takes_delete_after_days_where_the_connector_applies_it(url: str) -> None:
    spec = parse_spec(_spec("x", [url], Path("/tmp/ev"), {"delete_after_days": 3}))
    assert [r.url for r in spec.record_locations()] == [url]
    for rule in ({"archive_after_days": 3}, {"archive_after_days": 3, "delete_after_days": 9}):
        with pytest.raises(InputError, match="never archived"):
            parse_spec(_spec("x", [url], Path("/tmp/ev"), rule))


def test_cloudwatch_days_is_the_longest_allowed_value_never_longer_than_the_rule() -> None:
    for days in range(1, 4001):
        got = cloudwatch_days(days)
        assert got in CLOUDWATCH_RETENTION_DAYS and got <= days
        assert not [d for d in CLOUDWATCH_RETENTION_DAYS if got < d <= days]
    assert (cloudwatch_days(100), cloudwatch_days(36500)) == (90, 3653)
    with pytest.raises(InputError, match="shorter than every retention CloudWatch Logs allows"):
        cloudwatch_days(0)


def test_moto_accepts_a_retention_cloudwatch_refuses_so_sundown_never_sends_one(
    moto_env: str,
) -> None:
    """GAP (docs/known-gaps.md): moto stores any ``retentionInDays`` (here 100), where
    CloudWatch answers InvalidParameterException; and it never expires events. So the sweep
    test asserts the value Sundown sends (90 for 100 days), read back from the server."""
    logs = boto3.client("logs")
    group = f"/sundown-gap/{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    logs.put_retention_policy(logGroupName=group, retentionInDays=DAYS)  # AWS: refused
    got = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert got["retentionInDays"] == DAYS
    logs.delete_log_group(logGroupName=group)


# -- the sweep on real servers ----------------------------------------------------------------


def _run(client: Any, experiment: str, days_ago: float, *, finished: bool = True) -> str:
    at = int((time.time() - days_ago * 86400) * 1000)
    run_id: str = client.create_run(experiment, start_time=at).info.run_id
    client.log_param(run_id, "question", "CANARY-retention")
    if finished:
        client.set_terminated(run_id, end_time=at + 1000)
    return run_id


def _groups(prefix: str) -> dict[str, int | None]:
    pages = boto3.client("logs").get_paginator("describe_log_groups")
    return {
        g["logGroupName"]: g.get("retentionInDays")
        for p in pages.paginate(logGroupNamePrefix=prefix)
        for g in p["logGroups"]
    }


def _db_runs(server: MlflowServer, run_ids: list[str]) -> set[str]:
    with sqlite3.connect(server.db) as db:
        marks = ",".join("?" * len(run_ids))
        rows = db.execute(f"SELECT run_uuid FROM runs WHERE run_uuid IN ({marks})", run_ids)
        return {r[0] for r in rows}


def test_retention_sets_log_group_policies_and_deletes_old_runs_in_scope_only(
    tmp_path: Path, prefect_api: str, mlflow_env: MlflowServer
) -> None:
    tag = uuid.uuid4().hex[:8]
    region = os.environ["AWS_DEFAULT_REGION"]
    base = f"/aws/sagemaker/Endpoints/sb-{tag}"
    logs = boto3.client("logs")
    for group in (base, f"{base}/batch", f"{base}-v2", f"{base}x"):  # the last two: foreign
        logs.create_log_group(logGroupName=group)
    logs.put_retention_policy(logGroupName=f"{base}/batch", retentionInDays=30)  # stricter

    client = mlflow_env.client()
    ours, theirs = (client.create_experiment(f"sb-{tag}{s}") for s in ("", "-v2"))
    old, old_deleted = _run(client, ours, 200), _run(client, ours, 150)
    client.delete_run(old_deleted)  # marked deleted only: the sweep must still purge it
    young, running = _run(client, ours, 3), _run(client, ours, 300, finished=False)
    lineage = _run(client, ours, 250)
    (tmp_path / "m").mkdir()
    _version(mlflow_env, f"sb-{tag}", ours, tmp_path / "m", run_id=lineage)
    canary = _run(client, theirs, 400)  # another experiment's: never touched
    everyone = [old, old_deleted, young, running, lineage, canary]

    spec = _system(
        tag,
        [
            f"aws-logs://{region}/{base}",
            f"mlflow://127.0.0.1:{mlflow_env.port}/experiments/sb-{tag}",
        ],
        tmp_path / "evidence",
        {"delete_after_days": DAYS},
    )

    dry = retention_sweep(RetentionParameters(spec_yaml=spec, dry_run=True))
    assert dry.records_receipt_url is None
    shown = {line.split(": ", 1)[0]: line for line in dry.records}
    assert "would set" in shown[f"log-group:{base}"] and "kept" in shown[f"log-group:{base}/batch"]
    assert "would delete" in shown[f"run:{old}"] and "would delete" in shown[f"run:{old_deleted}"]
    assert _groups(base)[base] is None and _db_runs(mlflow_env, everyone) == set(everyone)

    swept = retention_sweep(RetentionParameters(spec_yaml=spec))
    # log groups: ours set to 90 (not 120), the stricter child left, the foreign ones untouched
    assert _groups(base) == {base: 90, f"{base}/batch": 30, f"{base}-v2": None, f"{base}x": None}
    # runs: the two old ones gone from the tracking store itself; the rest as they were
    assert _db_runs(mlflow_env, everyone) == {young, running, lineage, canary}
    assert client.get_run(canary).info.lifecycle_stage == "active"
    shown = {line.split(": ", 1)[0]: line for line in swept.records}
    assert (
        shown[f"run:{lineage}"].startswith(f"run:{lineage}: kept")
        and "comes from it" in (shown[f"run:{lineage}"])
    )
    assert "still running" in shown[f"run:{running}"]
    assert set(shown) == {f"log-group:{base}", f"log-group:{base}/batch", f"run:{old}",
                          f"run:{old_deleted}", f"run:{lineage}", f"run:{running}"}  # fmt: skip
    assert swept.failed == 0

    # the receipt: in the evidence location, ledgered under the spec's certificate key
    assert swept.records_receipt_url is not None
    body = Path(swept.records_receipt_url.removeprefix("file://")).read_bytes()
    receipt = json.loads(body)
    actions = {a["target"]: a for row in receipt["locations"] for a in row["actions"]}
    assert actions[f"log-group:{base}"] | {"detail": ""} == {
        "target": f"log-group:{base}", "action": "set", "before": "never expire",
        "after": "90 days", "detail": ""}  # fmt: skip
    assert actions[f"run:{old}"]["action"] == actions[f"run:{old_deleted}"]["action"] == "deleted"
    pub = registry.open_signer(f"local://sb-{tag}-certificates").public_key_pem()
    ledger = Ledger(registry.open_store(f"file://{tmp_path / 'evidence'}"))
    assert ledger.verify(pub).kinds.get("retention") == 1
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    assert [r.record.evidence.digest for r in ledger.records() if r.record.evidence][-1] == digest
    assert swept.ledger_sequence == max(r.record.sequence for r in ledger.records())

    # a second sweep finds nothing to change: no second receipt
    again = retention_sweep(RetentionParameters(spec_yaml=spec))
    assert again.records_receipt_url is None and again.failed == 0
    assert ledger.verify(pub).kinds.get("retention") == 1


def _last_sweep_state(name: str) -> Any:
    """The state of the latest retention-sweep flow run, which must be ``name``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as prefect:
        (run,) = prefect.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["retention-sweep"])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=1,
        )
    assert run.state is not None and run.state.name == name, run.state
    return run.state


def test_without_the_backend_store_no_run_is_deleted_and_the_sweep_says_so(
    tmp_path: Path,
    prefect_api: str,
    mlflow_env: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The API alone only marks a run deleted: without MLFLOW_BACKEND_STORE_URI the run
    retention stops before deleting anything; the location is a failed row of the receipt,
    and the log groups of the same sweep are still set."""
    tag = uuid.uuid4().hex[:8]
    region = os.environ["AWS_DEFAULT_REGION"]
    client = mlflow_env.client()
    old = _run(client, client.create_experiment(f"sb-{tag}"), 200)
    group = f"/sundown-ret/sb-{tag}"
    boto3.client("logs").create_log_group(logGroupName=group)
    spec = _system(
        tag,
        [
            f"mlflow://127.0.0.1:{mlflow_env.port}/experiments/sb-{tag}",
            f"aws-logs://{region}/{group}",
        ],
        tmp_path / "evidence",
        {"delete_after_days": 7},
    )
    monkeypatch.delenv("MLFLOW_BACKEND_STORE_URI")
    with pytest.raises(Incomplete, match="1 copy\\(ies\\) or record\\(s\\)") as failed:
        retention_sweep(RetentionParameters(spec_yaml=spec))
    swept = failed.value.result  # the rest was swept and recorded: the run fails after it
    assert swept.failed == 1 and swept.records_receipt_url is not None
    assert swept.records_receipt_url in str(failed.value)
    assert any("MLFLOW_BACKEND_STORE_URI" in line and "nothing deleted" in line
               for line in swept.records), swept.records  # fmt: skip
    assert client.get_run(old).info.lifecycle_stage == "active"
    assert _groups(group) == {group: 7}
    # the Prefect run failed, so that a scheduled sweep shows it, with the reason as its message
    assert "could not be removed" in _last_sweep_state("Failed").message

    # the command: every line of the sweep printed, then exit 1
    path = tmp_path / "sb.yaml"
    path.write_text(spec)
    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    capsys.readouterr()
    code = main(["retention", str(path)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "failed 1" in out and "MLFLOW_BACKEND_STORE_URI" in out and "receipt" in out
