"""``sundown serve``: the five lifecycle flows and the shard flow as deployments, served from
one process.

For a local Prefect server (``prefect server start``) or Prefect Cloud: every flow becomes a
deployment whose run form is its parameter model. ``retention_sweep`` runs on a daily cron
schedule for each system spec given (``--retention-spec``), with that spec as its parameters;
without one, the retention deployment is created with its schedule paused (it needs a spec).
``run-shard/shard`` runs the shards of a large retirement (:mod:`flows.shards`) when a
decommission run names it in its shard settings. ``prefect.yaml`` declares the same deployments
for a process work pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sundown.spec.loader import load_spec

RETENTION_CRON = "0 3 * * *"  # daily at 03:00 (UTC)
DEPLOYMENT_NAMES = ("decommission", "deploy", "rotate", "revoke", "retention", "shard")


def deployments(retention_specs: Sequence[str] = (), *, cron: str = RETENTION_CRON) -> list[Any]:
    """The RunnerDeployments of every flow (retention: one per spec, on ``cron``)."""
    from .decommission import decommission_system
    from .deploy import deploy_model
    from .retention import retention_sweep
    from .revoke import revoke_credentials
    from .rotate import rotate_credentials
    from .shards import run_shard

    tags = ["sundown"]
    out = [
        decommission_system.to_deployment(name="decommission", tags=tags),
        deploy_model.to_deployment(name="deploy", tags=tags),
        rotate_credentials.to_deployment(name="rotate", tags=tags),
        revoke_credentials.to_deployment(name="revoke", tags=tags),
        # shards of a retirement (flows/shards.py): a decommission run whose shard settings name
        # run-shard/shard hands its purge and verification shards to this deployment
        run_shard.to_deployment(name="shard", tags=tags),
    ]
    if not retention_specs:
        out.append(
            retention_sweep.to_deployment(name="retention", tags=tags, cron=cron, paused=True)
        )
    for path in retention_specs:
        spec = load_spec(path)  # a bad spec fails here, not at 03:00
        out.append(
            retention_sweep.to_deployment(
                name=f"retention-{spec.name}",
                tags=[*tags, spec.name],
                cron=cron,
                parameters={"params": {"spec_path": str(Path(path).resolve())}},
            )
        )
    return out


def serve_all(retention_specs: Sequence[str] = (), *, limit: int | None = None) -> None:
    """Serve every deployment until interrupted."""
    from prefect import serve

    serve(*deployments(retention_specs), limit=limit)
