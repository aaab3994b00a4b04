"""Issues #14 and #15, done-when: a "support-bot" system with weights in S3 (moto), interaction
logs in PostgreSQL, a RAG index in Chroma and a cache in Redis, plus (``ml_bot``) an MLflow
registered model with two versions and a SageMaker endpoint serving it (data capture into the
spec's bucket, its CloudWatch Logs group), retires under one certificate, on real servers started
by the suite (tests/fixtures: one of each per session), with canaries beside every selector
(another system's rows in the same table, ``support-bot-v2:*`` keys, another system's documents
in the same collection and another collection, the ``...-v2`` endpoint, model, log group and
MLflow model with their artifacts) compared byte for byte and count for count afterwards. The
order of the purge (serving first) is read from the signed journal, not from the code."""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from botocore.exceptions import ClientError
from psycopg import sql

from flows.decommission import decommission_system
from flows.models import DecommissionParameters, Incomplete, Party
from sundown import registry
from sundown.certificate import SanitizationCategory, verify_certificate
from sundown.errors import InputError
from tests.conformance_records.backend_aws import (
    describe_all,
    group_events,
    make_endpoint,
    make_model,
    put_events,
)
from tests.fixtures.chroma import ChromaServer
from tests.fixtures.mlflow import MlflowServer
from tests.fixtures.postgres import Postgres
from tests.fixtures.redis import RedisServer
from tests.flows.paused import approve, start_in_thread, wait_paused
from tests.spec_builder import spec_yaml
from tests.test_mlflow_specific import _version

APPROVER = Party(name="Lee Marchetti", role="security-officer", organisation="Acme")
NAME = "support-bot"
SECRET_TEXT = "CANARY-user-question-7f3a"  # the deleted text, looked for in the servers' files


@dataclass
class Bot:
    bucket: str
    table: str
    other_table: str
    prefix: str  # Redis prefix (unique per test on the session's server)
    collection: str
    other_collection: str
    spec: str
    tag: str
    evidence: Path
    pg: Postgres
    redis: RedisServer
    chroma: ChromaServer
    assets: dict[str, Any]

    def respec(self, assets: dict[str, Any]) -> None:
        """The spec with these asset classes instead (same keys, evidence and approval)."""
        self.assets = assets
        self.spec = _bot_spec(assets, self.evidence)

    @property
    def params(self) -> dict[str, Any]:
        return {"spec_yaml": self.spec}


def _pg(pg: Postgres) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host="127.0.0.1", port=pg.server.port, dbname=pg.database, user=pg.user,
        password=pg.password, autocommit=True,
    )  # fmt: skip


def _rows(pg: Postgres, table: str, system: str | None = None) -> list[tuple[Any, ...]]:
    where = sql.SQL("WHERE system = %s") if system else sql.SQL("")
    with _pg(pg) as conn:
        return conn.execute(
            sql.SQL("SELECT id, system, body FROM {} {} ORDER BY id").format(
                sql.Identifier(table), where
            ),
            (system,) if system else None,
        ).fetchall()


def _collection(chroma: ChromaServer, name: str) -> dict[str, Any]:
    got = chroma.client().get_collection(name).get(include=["documents", "metadatas", "embeddings"])
    return {
        "ids": got["ids"],
        "documents": got["documents"],
        "metadatas": got["metadatas"],
        "embeddings": [list(map(float, e)) for e in got["embeddings"]],
    }


def _redis_outside(bot: Bot) -> dict[bytes, bytes]:
    client = bot.redis.client()
    keys = [k for k in client.scan_iter(match="*") if not k.startswith(f"{bot.prefix}:".encode())]
    return {k: client.dump(k) for k in sorted(keys)}


def _outside(bot: Bot, s3: Any) -> dict[str, Any]:
    """Everything beside the selectors, with its content."""
    versions = s3.list_object_versions(Bucket=bot.bucket).get("Versions", [])
    objects = {
        (v["Key"], v["VersionId"]): s3.get_object(
            Bucket=bot.bucket, Key=v["Key"], VersionId=v["VersionId"]
        )["Body"].read()
        for v in versions
        if not v["Key"].startswith(f"models/{NAME}/")
    }
    return {
        "s3": objects,
        "pg_v2": _rows(bot.pg, bot.table, "support-bot-v2"),
        "pg_other_table": _rows(bot.pg, bot.other_table),
        "redis": _redis_outside(bot),
        "chroma_v2": _v2_docs(bot),
        "chroma_other": _collection(bot.chroma, bot.other_collection),
    }


def _v2_docs(bot: Bot) -> dict[str, Any]:
    col = bot.chroma.client().get_collection(bot.collection)
    got = col.get(where={"system": "support-bot-v2"}, include=["documents", "metadatas"])
    return {"ids": got["ids"], "documents": got["documents"], "metadatas": got["metadatas"]}


@pytest.fixture
def bot(
    tmp_path: Path,
    prefect_api: str,
    moto_env: str,
    postgres_env: Postgres,
    redis_env: RedisServer,
    chroma_env: ChromaServer,
) -> Bot:
    tag = uuid.uuid4().hex[:10]
    bucket, table, other_table = f"sb-{tag}", f"interactions_{tag}", f"feedback_{tag}"
    prefix, collection, other = f"{NAME}-{tag}", f"rag-{tag}", f"rag-other-{tag}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(2):
        s3.put_object(Bucket=bucket, Key=f"models/{NAME}/model.safetensors", Body=b"w%d" % i * 500)
    s3.put_object(Bucket=bucket, Key=f"models/{NAME}/config.json", Body=b"{}")
    for key in (f"models/{NAME}-v2/model.safetensors", f"models/{NAME}x/canary"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"canary " + key.encode())

    with _pg(postgres_env) as conn:
        for t in (table, other_table):
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id bigserial PRIMARY KEY, system text NOT NULL, body text)"
                ).format(sql.Identifier(t))
            )
            conn.execute(sql.SQL("CREATE INDEX ON {} (system)").format(sql.Identifier(t)))
        for system, n in ((NAME, 7), ("support-bot-v2", 4)):
            for i in range(n):
                conn.execute(
                    sql.SQL("INSERT INTO {} (system, body) VALUES (%s, %s)").format(
                        sql.Identifier(table)
                    ),
                    (system, f"{SECRET_TEXT} {system} {i}"),
                )
        conn.execute(
            sql.SQL("INSERT INTO {} (system, body) VALUES (%s, 'kept')").format(
                sql.Identifier(other_table)
            ),
            (NAME,),
        )

    client = redis_env.client()
    for i in range(5):
        client.set(f"{prefix}:session:{i}", f"{SECRET_TEXT} answer {i}")
    client.hset(f"{prefix}:profile:1", mapping={"name": "x"})
    for key in (f"{prefix}-v2:session:1", f"{prefix}x:session:1", prefix):
        client.set(key, f"canary {key}")

    chroma = chroma_env.client()
    col = chroma.create_collection(collection, embedding_function=None)
    col.add(
        ids=[f"sb-{i}" for i in range(6)] + [f"v2-{i}" for i in range(3)],
        documents=[f"{SECRET_TEXT}-{tag} chunk {i}" for i in range(6)]
        + [f"v2 {i}" for i in range(3)],
        metadatas=[{"system": NAME}] * 6 + [{"system": "support-bot-v2"}] * 3,
        embeddings=[[float(i), 0.5, 0.25] for i in range(9)],
    )
    chroma.create_collection(other, embedding_function=None).add(
        ids=["o-1", "o-2"], documents=["other a", "other b"], embeddings=[[1.0, 2.0, 3.0]] * 2
    )

    registry.create_key(f"local://{NAME}-kek")
    registry.create_key(f"local://{NAME}-certificates", signing=True)
    pg_url = f"postgresql://127.0.0.1:{postgres_env.server.port}/{postgres_env.database}/public"
    assets: dict[str, Any] = {
        "weights": {"locations": [f"s3://{bucket}/models/{NAME}"]},
        "logs": {"locations": [{"url": f"{pg_url}/{table}", "where": {"system": NAME}}]},
        "rag_indexes": {
            "locations": [
                {
                    "url": f"chroma://127.0.0.1:{chroma_env.port}/default_tenant/"
                    f"default_database/{collection}",
                    "where": {"system": NAME},
                }
            ]
        },
        "caches": {"locations": [f"redis://127.0.0.1:{redis_env.port}/0/{prefix}"]},
    }
    evidence = tmp_path / "evidence"
    return Bot(bucket, table, other_table, prefix, collection, other, _bot_spec(assets, evidence),
               tag, evidence, postgres_env, redis_env, chroma_env, assets)  # fmt: skip


def _bot_spec(assets: dict[str, Any], evidence: Path) -> str:
    return spec_yaml(
        NAME,
        classification="confidential",
        assets=assets,
        keys={"kek": f"local://{NAME}-kek", "certificate": f"local://{NAME}-certificates"},
        evidence=f"file://{evidence}",
        approval={"roles": ["security-officer"]},
    )


def _certificate(result: Any) -> Any:
    pub = registry.open_signer(f"local://{NAME}-certificates").public_key_pem()
    path = Path(str(result.certificate_url).removeprefix("file://"))
    return verify_certificate(path.read_bytes(), pub).certificate


@dataclass
class Ml:
    """The ML-platform footprint added to the bot (``ml_bot``): SageMaker, MLflow and log-group
    names are ``support-bot-<tag>`` (the session's servers are shared), the canary system's
    ``support-bot-<tag>-v2``."""

    name: str
    other: str
    experiments: dict[str, str]
    ml_bucket: str
    client: Any


def _group(name: str) -> str:
    """The CloudWatch Logs group of the SageMaker endpoint ``name``."""
    return f"/aws/sagemaker/Endpoints/{name}"


@pytest.fixture
def ml_bot(bot: Bot, mlflow_env: MlflowServer, tmp_path: Path) -> tuple[Bot, Ml]:
    """The bot plus an MLflow registered model with two versions (runs, logged models, their
    artifacts in the server's S3 bucket) and a SageMaker endpoint serving a model whose weights
    and data capture are in the bot's weights prefix, with its CloudWatch Logs group; the same
    again for the ``-v2`` canary system, outside every location of the spec. The spec declares
    the log group first and MLflow before SageMaker, on purpose: the purge order must not
    follow the declaration order."""
    name, other = f"{NAME}-{bot.tag}", f"{NAME}-{bot.tag}-v2"
    client = mlflow_env.client()
    experiments = {n: client.create_experiment(n) for n in (name, other)}
    s3 = boto3.client("s3")
    for n, system in ((name, NAME), (other, f"{NAME}-v2")):
        (tmp_path / n).mkdir()
        for _ in range(2):
            _version(mlflow_env, n, experiments[n], tmp_path / n)
        data = f"models/{system}/sagemaker/model.tar.gz"
        s3.put_object(Bucket=bot.bucket, Key=data, Body=b"weights of " + n.encode())
        s3.put_object(Bucket=bot.bucket, Key=f"models/{system}/capture/{n}/1.jsonl",
                      Body=f'{{"request": "{SECRET_TEXT} to {n}"}}'.encode())  # fmt: skip
        make_model(n, f"model of {n}", f"s3://{bot.bucket}/{data}")
        make_endpoint(n, n, [n], capture=f"s3://{bot.bucket}/models/{system}/capture")
        boto3.client("logs").create_log_group(logGroupName=_group(n))
        put_events(_group(n), "AllTraffic/i-1", [f"request to {n}"])
    ml = Ml(name, other, experiments, mlflow_env.bucket, client)
    region = os.environ["AWS_DEFAULT_REGION"]
    weights = bot.assets["weights"]["locations"]
    bot.respec(
        {
            **bot.assets,
            "weights": {
                "locations": [
                    f"aws-logs://{region}/{_group(name)}",  # declared first: purged after
                    f"mlflow://127.0.0.1:{mlflow_env.port}/models/{name}",
                    *weights,
                    f"s3://{ml.ml_bucket}/mlflow/{experiments[name]}",
                    f"sagemaker://{region}/{name}",
                ]
            },
        }
    )
    return bot, ml


def _ml_outside(ml: Ml, s3: Any) -> dict[str, Any]:
    """The canary system's ML footprint, with its content."""
    prefix = f"mlflow/{ml.experiments[ml.other]}/"
    listed = s3.list_object_versions(Bucket=ml.ml_bucket, Prefix=prefix).get("Versions", [])
    return {
        "artifacts": {
            v["Key"]: s3.get_object(Bucket=ml.ml_bucket, Key=v["Key"])["Body"].read()
            for v in listed
        },
        "versions": sorted(
            (v.version, v.run_id) for v in ml.client.search_model_versions(f"name = '{ml.other}'")
        ),
        "sagemaker": describe_all(
            [f"{k}:{ml.other}" for k in ("endpoint", "endpoint-config", "model")]
        ),
        "log events": group_events(_group(ml.other)),
    }


def _journal(evidence: Path) -> dict[str, dict[str, Any]]:
    """Every journal record's signed payload (step, time as written, data), by step."""
    out = {}
    for path in evidence.rglob("journal/*.json"):
        payload = json.loads(base64.b64decode(json.loads(path.read_bytes())["payload"]))
        out[payload["step"]] = payload
    return out


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _assert_serving_stopped_first(journal: dict[str, dict[str, Any]]) -> None:
    """From the journal alone: the SageMaker purge deleted the endpoint, then its configuration,
    then its model (each stage's last delete read back at ``finished_at``); MLflow started
    after the last of them; every object-store batch was recorded after MLflow's purge; logs
    and databases started after the last object batch. The spec declared the log group first
    and MLflow before SageMaker."""
    records = {
        p["data"]["subject"].split("://")[0]: p["data"] | {"time": p["time"]}
        for step, p in journal.items()
        if step.startswith("records-") and step.endswith("-purged")
    }
    assert set(records) == {"sagemaker", "mlflow", "aws-logs", "postgresql", "chroma", "redis"}
    sm = records["sagemaker"]
    assert [(st["kind"], st["deleted"]) for st in sm["stages"]] == [
        ("endpoint", 1), ("endpoint-config", 1), ("model", 1)]  # fmt: skip
    serving = [_at(sm["started_at"])] + [_at(st["finished_at"]) for st in sm["stages"]]
    assert serving == sorted(serving) and serving[-1] <= _at(sm["time"])
    mlflow = records["mlflow"]
    assert _at(mlflow["started_at"]) >= serving[-1]
    assert [st["kind"] for st in mlflow["stages"]] == [
        "model-version", "registered-model", "logged-model", "run"]  # fmt: skip
    objects = [_at(p["time"]) for step, p in journal.items() if step.startswith("purge-")]
    assert objects and min(objects) > _at(mlflow["time"])
    for scheme in ("aws-logs", "postgresql", "chroma", "redis"):
        assert _at(records[scheme]["started_at"]) >= max(objects), scheme
    assert [st["kind"] for st in records["aws-logs"]["stages"]] == ["log-stream", "log-group"]


def test_support_bot_and_its_ml_platform_retire_under_one_certificate_canaries_intact(
    ml_bot: tuple[Bot, Ml],
) -> None:
    bot, ml = ml_bot
    s3 = boto3.client("s3")
    before, ml_before = _outside(bot, s3), _ml_outside(ml, s3)
    ours = f"mlflow/{ml.experiments[ml.name]}/"
    assert s3.list_object_versions(Bucket=ml.ml_bucket, Prefix=ours).get("Versions")

    artifacts = len(s3.list_object_versions(Bucket=ml.ml_bucket, Prefix=ours)["Versions"])
    plan = decommission_system(DecommissionParameters(**bot.params, dry_run=True))
    found: dict[str, list[int]] = {}
    for loc in plan.locations:
        found.setdefault(loc.url.split("://")[0], []).append(loc.found)
    assert {k: sorted(v) for k, v in found.items()} == {
        "s3": sorted([3 + 2, artifacts]),  # + the SageMaker model's data and its capture
        "postgresql": [7], "chroma": [6], "redis": [6],
        "mlflow": [1 + 2 + 2 + 2],  # the registered model, 2 versions, 2 logged models, 2 runs
        "sagemaker": [3], "aws-logs": [1 + 1],  # a stream and its group
    }, plan.locations  # fmt: skip
    assert len(_rows(bot.pg, bot.table, NAME)) == 7  # a dry run changes nothing
    assert describe_all([f"endpoint:{ml.name}"])  # still serving

    result = decommission_system(
        DecommissionParameters(**bot.params, approve_digest=plan.plan_digest, approver=APPROVER)
    )
    # the records are gone from every query ...
    assert _rows(bot.pg, bot.table, NAME) == []
    assert list(bot.redis.client().scan_iter(match=f"{bot.prefix}:*")) == []
    col = bot.chroma.client().get_collection(bot.collection)
    assert col.get(where={"system": NAME})["ids"] == []
    assert "Versions" not in s3.list_object_versions(Bucket=bot.bucket, Prefix=f"models/{NAME}/")
    for kind in ("endpoint", "endpoint-config", "model"):
        with pytest.raises(ClientError, match="Could not find"):
            describe_all([f"{kind}:{ml.name}"])
    groups = boto3.client("logs").describe_log_groups(logGroupNamePrefix=_group(ml.name))
    assert [g["logGroupName"] for g in groups["logGroups"]] == [_group(ml.other)]
    assert not ml.client.search_registered_models(f"name = '{ml.name}'")
    assert "Versions" not in s3.list_object_versions(Bucket=ml.ml_bucket, Prefix=ours)
    # ... and everything beside the selectors is as it was, byte for byte
    assert _outside(bot, s3) == before
    assert _ml_outside(ml, s3) == ml_before
    _assert_serving_stopped_first(_journal(bot.evidence))

    cert = _certificate(result)
    assert result.status == cert.status.value == "complete with exceptions"
    by_provider = {loc.provider: loc for loc in cert.locations if loc.provider != "aws s3"}
    assert set(by_provider) == {"postgresql", "redis", "chroma", "mlflow", "sagemaker", "aws-logs"}
    for provider, n in (("postgresql", 7), ("redis", 6), ("chroma", 6), ("sagemaker", 3)):
        loc = by_provider[provider]
        assert loc.media_type == "database records"
        assert loc.found.versions == loc.purged.versions == loc.logically_deleted.versions == n
        assert loc.ce_covered.versions == 0 and loc.remaining == 0
        assert [c.category for c in loc.sanitization] == [SanitizationCategory.LOGICAL_DELETION]
        assert loc.verification.result.value == "passed"
        assert loc.validation.result.value == "accepted"
        assert loc.backups, f"{provider}: no finding stated"
    pg = by_provider["postgresql"]
    assert pg.uri.endswith(f"{bot.table} [where system = '{NAME}']")
    done = "done by Sundown after the purge"
    # compaction ran and is stated: VACUUM, and the AOF rewritten without the deleted keys
    assert any(b.kind == "VACUUM" and b.disposition == done for b in pg.backups)
    redis_done = [b for b in by_provider["redis"].backups if b.disposition == done]
    assert [b.kind for b in redis_done] == ["appendonly"]
    assert "BGREWRITEAOF rewrote" in redis_done[0].description
    kinds = {(e.subject, e.kind) for e in cert.exceptions}
    assert (pg.uri, "deleted data retained") in kinds  # WAL, dead tuples: said plainly
    assert all(e.kind == "deleted data retained" for e in cert.exceptions), cert.exceptions
    # the records' linked locations (weights, data capture, run and model artifacts) were in
    # the spec's object-store locations, purged and verified with them: no exception
    linked = [b for loc in cert.locations for b in loc.backups if b.kind == "linked location"]
    assert len(linked) >= 4 and all("inside the spec's location" in b.description for b in linked)
    assert not [e for e in cert.exceptions if "linked location" in e.description]
    # Chroma: the deleted text is still in the test server's persistent directory, and the
    # certificate says so for that location
    held = b"".join(p.read_bytes() for p in bot.chroma.path.rglob("*") if p.is_file())
    assert f"{SECRET_TEXT}-{bot.tag} chunk 3".encode() in held
    chroma_uri = by_provider["chroma"].uri
    assert any(
        e.subject == chroma_uri and "persistent directory" in e.description for e in cert.exceptions
    ), cert.exceptions
    # the deletion manifest names each purged record (and the weights' versions)
    manifest = Path(str(result.certificate_url).removeprefix("file://")).with_name(
        cert.deletion_manifest.name
    )
    lines = [json.loads(line) for line in manifest.read_text().splitlines()[1:]]
    records = [e for e in lines if e.get("kind") == "record"]
    assert len(records) == sum(loc.found.versions for loc in by_provider.values())

    # no server password in any plan, journal record, manifest or certificate
    secrets = [bot.pg.password.encode(), bot.redis.password.encode()]
    files = [p for p in bot.evidence.rglob("*") if p.is_file()]
    assert len(files) > 5
    for p in files:
        assert not any(secret in p.read_bytes() for secret in secrets), p

    again = decommission_system(
        DecommissionParameters(**bot.params, approve_digest=plan.plan_digest, approver=APPROVER)
    )
    assert again.certificate_id == result.certificate_id  # no second certificate


def _late_row(bot: Bot) -> None:
    with _pg(bot.pg) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (system, body) VALUES (%s, 'late')").format(
                sql.Identifier(bot.table)
            ),
            (NAME,),
        )


def test_a_row_written_before_approval_changes_the_digest_and_nothing_is_deleted(
    bot: Bot,
) -> None:
    """The plan digest binds the record identifiers: a row written into the selector between
    review and approval makes the reviewed digest a different plan's, so the approval is
    refused before anything is touched."""
    plan = decommission_system(DecommissionParameters(**bot.params, dry_run=True))
    _late_row(bot)
    with pytest.raises(InputError, match="plan changed since it was reviewed"):
        decommission_system(
            DecommissionParameters(**bot.params, approve_digest=plan.plan_digest, approver=APPROVER)
        )
    assert len(_rows(bot.pg, bot.table, NAME)) == 8
    assert len(list(bot.redis.client().scan_iter(match=f"{bot.prefix}:*"))) == 6


def test_a_row_written_after_approval_refuses_that_purge_and_fails_the_certificate(
    bot: Bot,
) -> None:
    """The plan's frozen identifiers are what is purged: a row written into the selector after
    the plan was made (here: while the run waits for approval) makes PostgreSQL's purge refuse
    before deleting anything; the other locations are retired, and the certificate fails naming
    the location (docs/decisions.md)."""
    s3 = boto3.client("s3")
    outside = _outside(bot, s3)
    plan = decommission_system(DecommissionParameters(**bot.params, dry_run=True))
    thread, out = start_in_thread(DecommissionParameters(**bot.params))
    wait_paused(out["id"], out, timeout=120)
    _late_row(bot)
    approve(out["id"], plan.plan_digest, APPROVER.name, APPROVER.role)
    thread.join(300)
    # the certificate says failed: it is signed and ledgered, then the run fails with it
    failed = out.get("error")
    assert isinstance(failed, Incomplete) and "says FAILED" in str(failed), failed
    result = failed.result
    assert result.status == "failed" and "postgresql://" in str(failed)
    assert len(_rows(bot.pg, bot.table, NAME)) == 8  # nothing deleted there
    assert list(bot.redis.client().scan_iter(match=f"{bot.prefix}:*")) == []  # the rest went
    cert = _certificate(result)
    pg = next(loc for loc in cert.locations if loc.provider == "postgresql")
    assert pg.purged.versions == 0 and pg.sanitization == []
    assert pg.verification.result.value == "failed" and pg.remaining == 8
    assert pg.validation.result.value == "rejected"
    kinds = [e.kind for e in cert.exceptions if e.subject == pg.uri]
    assert "purge refused" in kinds and "verification failed" in kinds

    # a failed certificate does not retire the system: a new plan takes what is left (the late
    # row is the system's too) and is certified; the failed certificate stays in the ledger
    again = decommission_system(DecommissionParameters(**bot.params, dry_run=True))
    assert again.status == "dry run" and again.plan_digest != result.plan_digest
    retried = decommission_system(
        DecommissionParameters(**bot.params, approve_digest=again.plan_digest, approver=APPROVER)
    )
    assert retried.status.startswith("complete"), retried.exceptions
    assert retried.certificate_id != result.certificate_id
    assert _rows(bot.pg, bot.table, NAME) == [] and _outside(bot, s3) == outside
    second = _certificate(retried)
    assert second.follows_failed == [result.certificate_id]  # signed: the failure it follows
    pg = next(loc for loc in second.locations if loc.provider == "postgresql")
    assert pg.purged.versions == 8 and pg.verification.result.value == "passed"
    # the retired system is now certified: a further run returns that, not the failed one
    done = decommission_system(DecommissionParameters(**bot.params, dry_run=True))
    assert done.status == "already decommissioned"
    assert done.certificate_id == retried.certificate_id


def test_a_crash_after_the_delete_and_before_its_journal_record_resumes(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connector deletes, then the run dies before the location's purge is journaled. The
    re-run (no new approval: it is journaled) purges again; the connector reports the records
    already gone as absent, and the certificate counts them as purged, once."""
    from flows import _records

    real = _records._purge_one
    crashed: list[str] = []

    def crash_after_delete(store: Any, index: int, *args: Any) -> Any:
        result = real(store, index, *args)
        if not crashed:
            crashed.append(store.url)
            raise RuntimeError("worker lost after the delete")
        return result

    monkeypatch.setattr(_records, "_purge_one", crash_after_delete)
    plan = decommission_system(DecommissionParameters(**bot.params, dry_run=True))
    with pytest.raises(RuntimeError, match="worker lost"):
        decommission_system(
            DecommissionParameters(**bot.params, approve_digest=plan.plan_digest, approver=APPROVER)
        )
    assert _rows(bot.pg, bot.table, NAME) == []  # deleted, not journaled
    result = decommission_system(DecommissionParameters(**bot.params))
    assert result.resumed and result.status == "complete with exceptions"
    cert = _certificate(result)
    pg = next(loc for loc in cert.locations if loc.provider == "postgresql")
    assert pg.purged.versions == 7 and pg.verification.result.value == "passed"
    # the signed journal record of the re-run: nothing left to delete, all 7 already gone
    envelope = json.loads(next(bot.evidence.rglob("records-000-purged.json")).read_bytes())
    data = json.loads(base64.b64decode(envelope["payload"]))["data"]
    assert (data["deleted"], data["absent"], data["not_purged"]) == (0, 7, [])
