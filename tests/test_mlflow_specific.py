"""MLflow specifics on a real ``mlflow server`` (SQLite backend store, moto S3 artifact store):
a registered model with two versions, its logged models and runs purged permanently (checked in
the server's own SQLite file), another model's lineage never broken, and the artifacts named as
object-store locations (they stay in S3 until the object-store connector purges them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from connectors.mlflow_registry import MlflowRecords
from sundown import registry
from sundown.errors import InputError, ScopeError, UnsupportedError
from sundown.linked import LinksLocations, split_by_scope
from tests.conformance_records import unique
from tests.fixtures.mlflow import MlflowServer


def _version(
    server: MlflowServer, model: str, experiment: str, tmp: Path, run_id: str | None = None
) -> str:
    """A run (params, an artifact) that logs a model (artifact files) registered as a new
    version of ``model``; the run's id."""
    client = server.client()
    if run_id is None:
        run_id = client.create_run(experiment).info.run_id
        client.log_param(run_id, "base_model", f"{model} weights")
        (tmp / "eval.txt").write_text(f"evaluation of {model}")
        client.log_artifact(run_id, str(tmp / "eval.txt"))
        client.set_terminated(run_id)
    logged = client.create_logged_model(experiment, name=model, source_run_id=run_id)
    (tmp / "model.bin").write_bytes(b"WEIGHTS " + model.encode())
    client.log_model_artifact(logged.model_id, str(tmp / "model.bin"))
    client.finalize_logged_model(logged.model_id, "READY")
    if not client.search_registered_models(f"name = '{model}'"):
        client.create_registered_model(model)
    client.create_model_version(model, f"models:/{logged.model_id}", run_id=run_id,
                                model_id=logged.model_id)  # fmt: skip
    return run_id


def _start(server: MlflowServer) -> tuple[str, Any, str]:
    """A fresh system name, a client, and an experiment of that name."""
    bot = unique("support-bot-")
    client = server.client()
    return bot, client, client.create_experiment(bot)


def _rows(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql, args))


def _objects(url: str) -> list[str]:
    parts = urlsplit(url)
    listed = boto3.client("s3").list_objects_v2(Bucket=parts.netloc, Prefix=parts.path.lstrip("/"))
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_registered_model_its_versions_logged_models_and_runs_are_purged_permanently(
    mlflow_env: MlflowServer, tmp_path: Path
) -> None:
    bot, client, experiment = _start(mlflow_env)
    runs = [_version(mlflow_env, bot, experiment, tmp_path) for _ in range(2)]
    other = _version(mlflow_env, f"{bot}-v2", experiment, tmp_path)  # canary, same experiment
    store = registry.open_record_store(f"mlflow://127.0.0.1:{mlflow_env.port}/models/{bot}", None)
    entries = list(store.inventory())
    kinds = sorted(e.id.partition(":")[0] for e in entries)
    assert (
        kinds == ["logged-model"] * 2 + ["model-version"] * 2 + ["registered-model"] + ["run"] * 2
    )
    assert {f"run:{r}" for r in runs} <= {e.id for e in entries}
    assert isinstance(store, LinksLocations)
    linked = store.linked_locations()
    assert sorted(x.kind for x in linked) == ["logged model artifacts"] * 2 + ["run artifacts"] * 2
    assert all(_objects(x.url) for x in linked)  # every named location holds files
    scope = split_by_scope(linked, [f"s3://{mlflow_env.bucket}/mlflow/{experiment}"])
    assert len(scope.covered) == 4 and not scope.outside
    assert not split_by_scope(linked, [f"s3://{mlflow_env.bucket}/mlflow/{experiment}0"]).covered

    result = store.purge(entries)
    order = [i.partition(":")[0] for i in result.deleted]
    assert (
        order == ["model-version"] * 2 + ["registered-model"] + ["logged-model"] * 2 + ["run"] * 2
    )
    check = store.verify(entries)
    assert check.clean and check.gone
    db = mlflow_env.db
    # nothing of the model remains in the server's own file: no soft-deleted run, no redacted
    # version row, no logged model
    assert _rows(db, "SELECT name FROM registered_models WHERE name = ?", bot) == []
    assert _rows(db, "SELECT version FROM model_versions WHERE name = ?", bot) == []
    for run in runs:
        assert _rows(db, "SELECT run_uuid FROM runs WHERE run_uuid = ?", run) == []
        assert _rows(db, "SELECT key FROM params WHERE run_uuid = ?", run) == []
    assert _rows(db, "SELECT model_id FROM logged_models WHERE name = ?", bot) == []
    # the other model's run, version and logged model stay
    assert client.get_run(other).info.lifecycle_stage == "active"
    assert len(client.search_model_versions(f"name = '{bot}-v2'")) == 1
    # the artifacts stay in S3 until the object-store connector purges the named locations
    assert all(_objects(x.url) for x in linked)


def test_a_run_that_produced_another_models_version_stops_the_purge(
    mlflow_env: MlflowServer, tmp_path: Path
) -> None:
    bot, client, experiment = _start(mlflow_env)
    shared = _version(mlflow_env, bot, experiment, tmp_path)
    _version(mlflow_env, f"{bot}-v2", experiment, tmp_path, run_id=shared)
    store = registry.open_record_store(f"mlflow://127.0.0.1:{mlflow_env.port}/models/{bot}", None)
    entries = list(store.inventory())
    with pytest.raises(ScopeError, match=f"model '{bot}-v2' comes from run:{shared}"):
        store.purge(entries)
    assert len(client.search_model_versions(f"name = '{bot}'")) == 1
    assert client.get_run(shared).info.lifecycle_stage == "active"


def test_without_the_backend_store_nothing_is_deleted(
    mlflow_env: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API only marks a run deleted (it stays readable): a purge that cannot finish the
    job permanently does not start it."""
    bot, client, experiment = _start(mlflow_env)
    run = _version(mlflow_env, bot, experiment, tmp_path)
    monkeypatch.delenv("MLFLOW_BACKEND_STORE_URI")
    store = registry.open_record_store(f"mlflow://127.0.0.1:{mlflow_env.port}/models/{bot}", None)
    entries = list(store.inventory())
    with pytest.raises(UnsupportedError, match="MLFLOW_BACKEND_STORE_URI"):
        store.purge(entries)
    assert len(client.search_model_versions(f"name = '{bot}'")) == 1
    # what the API alone does: the run is marked deleted and still there
    client.delete_run(run)
    assert client.get_run(run).info.lifecycle_stage == "deleted"
    assert _rows(mlflow_env.db, "SELECT lifecycle_stage FROM runs WHERE run_uuid = ?", run) == [
        ("deleted",)
    ]
    found = {f.setting: f for f in store.findings()}
    note = found["backend store"].note
    assert note and "not set" in note
    # without the store, soft-deleted logged models are invisible: said, never implied gone
    assert "logged models someone already deleted through the API are not listed" in note


def test_a_backend_store_that_is_not_this_servers_is_refused_before_any_delete(
    mlflow_env: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLFLOW_BACKEND_STORE_URI naming another store (a copy, another server) would hard-delete
    nothing of ours, or someone else's: refused; one holding a password is never echoed."""
    from sundown.errors import BackendError, ConflictError

    bot, client, experiment = _start(mlflow_env)
    _version(mlflow_env, bot, experiment, tmp_path)
    store = registry.open_record_store(f"mlflow://127.0.0.1:{mlflow_env.port}/models/{bot}", None)
    entries = list(store.inventory())
    monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", f"sqlite:///{tmp_path / 'another.db'}")
    with pytest.raises(ConflictError, match="names another store"):
        store.purge(entries)
    # MLflow retries an unreachable database for about 100 s (doubling sleeps); two tries here
    monkeypatch.setattr("mlflow.store.db.utils.MAX_RETRY_COUNT", 2)
    monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", "postgresql://sd:hunter2-xyzzy@127.0.0.1:1/x")
    with pytest.raises(BackendError) as caught:
        store.purge(entries)
    assert "xyzzy" not in str(caught.value) and "nothing deleted" in str(caught.value)
    assert len(client.search_model_versions(f"name = '{bot}'")) == 1


def test_a_soft_deleted_run_is_still_inventoried_and_purged(
    mlflow_env: MlflowServer, tmp_path: Path
) -> None:
    bot, client, experiment = _start(mlflow_env)
    runs = [_version(mlflow_env, f"{bot}-m", experiment, tmp_path) for _ in range(2)]
    client.delete_run(runs[0])  # someone already "deleted" it in the UI
    store = registry.open_record_store(
        f"mlflow://127.0.0.1:{mlflow_env.port}/experiments/{bot}", {"whole_experiment": True}
    )
    entries = list(store.inventory())
    assert {f"run:{r}" for r in runs} <= {e.id for e in entries}
    with pytest.raises(ScopeError):  # the registered model's versions come from these runs
        store.purge(entries)
    client.delete_registered_model(f"{bot}-m")
    result = store.purge(list(store.inventory()))
    assert result.dropped
    assert (
        _rows(mlflow_env.db, "SELECT run_uuid FROM runs WHERE experiment_id = ?", experiment) == []
    )
    assert _rows(mlflow_env.db, "SELECT name FROM experiments WHERE name = ?", bot) == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mlflow://u:secret-pw@127.0.0.1:5000/models/m", "must not hold a password"),
        ("mlflow://127.0.0.1:5000/runs/m", "expected mlflow://"),
        ("mlflow://127.0.0.1:5000/models/it's", "quote"),
        ("mlflow://127.0.0.1:5000/models", "not a mlflow location"),
    ],
)
def test_bad_locations_are_refused_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        MlflowRecords(url)
    assert "secret-pw" not in str(caught.value)
    with pytest.raises(InputError, match="unknown key"):
        MlflowRecords("mlflow://127.0.0.1:5000/experiments/e", {"where": {"a": 1}})


def _logged(client: Any, experiment: str, name: str) -> str:
    """A logged model with no source run; its id."""
    logged = client.create_logged_model(experiment, name=name)
    client.finalize_logged_model(logged.model_id, "READY")
    return str(logged.model_id)


def test_a_soft_deleted_logged_model_is_inventoried_and_purged(mlflow_env: MlflowServer) -> None:
    """The tracking API hides logged models once deleted (get and search filter them out):
    they are read through the backend store, purged permanently, and verify sees them."""
    bot, client, experiment = _start(mlflow_env)
    model_id = _logged(client, experiment, bot)
    client.delete_logged_model(model_id)  # someone already "deleted" it
    store = registry.open_record_store(
        f"mlflow://127.0.0.1:{mlflow_env.port}/experiments/{bot}", None
    )
    entries = list(store.inventory())
    assert f"logged-model:{model_id}" in {e.id for e in entries}
    db = mlflow_env.db
    assert _rows(db, "SELECT model_id FROM logged_models WHERE model_id = ?", model_id) != []
    store.purge(entries)
    assert _rows(db, "SELECT model_id FROM logged_models WHERE model_id = ?", model_id) == []
    assert store.verify(entries).clean


@pytest.mark.parametrize("source", ["models:/", "artifact location"])
def test_a_logged_model_registered_without_a_run_as_another_models_version_stops_the_purge(
    mlflow_env: MlflowServer, source: str
) -> None:
    """register_model("models:/<id>") leaves the version's run_id empty: found by its source.
    So is one registered from the logged model's artifact location (its files' URI, no
    ``models:/`` and no model id on the version)."""
    bot, client, experiment = _start(mlflow_env)
    model_id = _logged(client, experiment, bot)
    client.create_registered_model(f"{bot}-other")
    if source == "models:/":
        mv = client.create_model_version(f"{bot}-other", f"models:/{model_id}", model_id=model_id)
    else:
        location = client.get_logged_model(model_id).artifact_location
        mv = client.create_model_version(f"{bot}-other", location)
        assert mv.source == location and not mv.source.startswith("models:/")
    assert not mv.run_id
    store = registry.open_record_store(
        f"mlflow://127.0.0.1:{mlflow_env.port}/experiments/{bot}", None
    )
    entries = list(store.inventory())
    with pytest.raises(ScopeError, match=f"model '{bot}-other' comes from logged-model:{model_id}"):
        store.purge(entries)
    assert client.get_logged_model(model_id).model_id == model_id
    assert len(client.search_model_versions(f"name = '{bot}-other'")) == 1


@pytest.mark.parametrize("spelling", ["artifact URI", "logged model sub-path"])
def test_a_version_registered_from_the_files_of_a_listed_run_stops_the_purge(
    mlflow_env: MlflowServer, spelling: str
) -> None:
    """register_model with the files' URI (a path below the run's artifact URI, or below a
    logged model's location) leaves the version's run id and model id empty: it is found by
    its source, below the listed run's or logged model's files, and the purge stops before any
    delete. A version whose source only starts with the same characters (no ``/`` boundary) is
    not taken. (A ``runs:/`` source without its run id is refused by the server itself:
    "The run_id request parameter must identify the resource that contains the source".)"""
    bot, client, experiment = _start(mlflow_env)
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id)
    files = run.info.artifact_uri.rstrip("/")
    other = f"{bot}-other"
    client.create_registered_model(other)
    client.create_model_version(other, files + "x/model")  # a neighbour, not below the run
    if spelling == "artifact URI":
        source, owner = files + "/model", f"run:{run.info.run_id}"
    else:
        model_id = _logged(client, experiment, bot)
        location = client.get_logged_model(model_id).artifact_location.rstrip("/")
        source, owner = location + "/model/weights.bin", f"logged-model:{model_id}"
    mv = client.create_model_version(other, source)
    assert not mv.run_id and not getattr(mv, "model_id", None)
    store = registry.open_record_store(
        f"mlflow://127.0.0.1:{mlflow_env.port}/experiments/{bot}", None
    )
    with pytest.raises(ScopeError) as stopped:
        store.purge(list(store.inventory()))
    assert f"version {mv.version} of model '{other}' comes from {owner}" in str(stopped.value)
    assert f"version 1 of model '{other}'" not in str(stopped.value)  # the neighbour
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


def test_a_logged_model_whose_artifact_location_holds_a_quote_stops_the_purge(
    mlflow_env: MlflowServer,
) -> None:
    """Whoever creates the experiment chooses its artifact location: one holding a quote would
    be spliced into the lineage search's filter (``source_path = '...'``), so the purge refuses
    it before any delete rather than search with a filter it cannot trust."""
    bot, client, _ = _start(mlflow_env)
    odd = client.create_experiment(f"{bot}-odd", artifact_location="s3://bucket/it's/here")
    model_id = _logged(client, odd, bot)
    assert "'" in client.get_logged_model(model_id).artifact_location
    store = registry.open_record_store(
        f"mlflow://127.0.0.1:{mlflow_env.port}/experiments/{bot}-odd", None
    )
    entries = list(store.inventory())
    assert f"logged-model:{model_id}" in {e.id for e in entries}
    with pytest.raises(ScopeError, match="cannot be searched for safely; nothing deleted"):
        store.purge(entries)
    assert client.get_logged_model(model_id).model_id == model_id


@pytest.mark.parametrize("whole", [False, True])
def test_another_backend_store_is_refused_for_an_experiment_without_runs(
    mlflow_env: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole: bool
) -> None:
    """Only a logged model (or, whole, nothing at all): the store is checked all the same, by
    the experiment's id and name, before any delete."""
    from sundown.errors import ConflictError

    bot, client, experiment = _start(mlflow_env)
    model_id = None if whole else _logged(client, experiment, bot)
    store = registry.open_record_store(
        f"mlflow://127.0.0.1:{mlflow_env.port}/experiments/{bot}",
        {"whole_experiment": True} if whole else None,
    )
    entries = list(store.inventory())
    monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", f"sqlite:///{tmp_path / 'another.db'}")
    with pytest.raises(ConflictError, match="another store"):
        store.purge(entries)
    assert client.get_experiment(experiment).lifecycle_stage == "active"
    if model_id:
        assert (
            client.get_logged_model(model_id).model_id == model_id
        )  # not deleted (hidden if it were)


def test_a_run_written_during_the_purge_stops_the_experiments_drop(
    mlflow_env: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The experiment's hard delete cascades to its runs: one written after the inventory
    (here, by another client right after the listed run's delete) is never dropped unseen."""
    from sundown.errors import ConflictError

    bot, client, experiment = _start(mlflow_env)
    listed = client.create_run(experiment).info.run_id
    store = registry.open_record_store(
        f"mlflow://127.0.0.1:{mlflow_env.port}/experiments/{bot}", {"whole_experiment": True}
    )
    entries = list(store.inventory())
    late: list[str] = []
    delete = store._delete  # type: ignore[attr-defined]

    def delete_then_another_writer(kind: str, name: str) -> bool:
        done = bool(delete(kind, name))
        if not late:
            late.append(client.create_run(experiment).info.run_id)
        return done

    monkeypatch.setattr(store, "_delete", delete_then_another_writer)
    with pytest.raises(ConflictError, match="did not list") as caught:
        store.purge(entries)
    assert late and f"run:{late[0]}" in str(caught.value)
    assert client.get_run(late[0]).info.lifecycle_stage == "active"
    assert client.get_experiment(experiment).lifecycle_stage == "active"
    assert _rows(mlflow_env.db, "SELECT run_uuid FROM runs WHERE run_uuid = ?", listed) == []
