"""mlflow://HOST:PORT/experiments/NAME in the record conformance suite: a fresh experiment per
location on the session's ``mlflow server``; its runs are the records (``whole``: the experiment
goes too). Canaries: the runs of another experiment named ``NAME-v2`` on the same server."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.backend_modules import BackendSpec
from tests.conformance_records import RecordBackend, Seeded, ServerBackend, unique
from tests.fixtures.mlflow import MlflowServer


class MlflowBackend(ServerBackend[MlflowServer]):
    name = "mlflow"

    def url(self, experiment: str) -> str:
        return f"mlflow://127.0.0.1:{self.server.port}/experiments/{quote(experiment, safe='')}"

    def run(self, experiment_id: str, text: str) -> str:
        client = self.server.client()
        run = client.create_run(experiment_id)
        client.log_param(run.info.run_id, "note", text)
        client.set_terminated(run.info.run_id)
        return f"run:{run.info.run_id}"

    def seed(self, n: int, *, whole: bool = False) -> Seeded:
        name = unique("support-bot-")
        canary = unique("CANARY-")
        client = self.server.client()
        ours = client.create_experiment(name)
        ids = [self.run(ours, f"{canary} {i}") for i in range(n)]
        theirs = client.create_experiment(f"{name}-v2")
        foreign = [self.run(theirs, f"foreign {i}") for i in range(2)]
        selector = {"whole_experiment": True} if whole else None
        return Seeded(self.url(name), selector, ids, foreign, canary, {"experiment": name})

    def add_in_scope(self, seeded: Seeded) -> str:
        client = self.server.client()
        found = client.get_experiment_by_name(seeded.names["experiment"])
        experiment = (
            found.experiment_id if found else client.create_experiment(seeded.names["experiment"])
        )
        return self.run(experiment, "written late")

    def outside(self, seeded: Seeded) -> object:
        client = self.server.client()
        return {
            ident: (run.info.lifecycle_stage, dict(run.data.params))
            for ident in seeded.foreign_ids
            for run in [client.get_run(ident.partition(":")[2])]
        }


def _factory(fixtures: Mapping[str, Any], tmp_path: Path) -> RecordBackend:
    return MlflowBackend(fixtures["mlflow_env"])


BACKENDS = [BackendSpec("mlflow", ("mlflow_env",), _factory)]
