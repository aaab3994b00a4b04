"""Run lifecycle flows in forked children and SIGKILL them at chosen points (crash trials).

Started once per test module as ``python -m tests.reliability.crash_child``: it imports the
flows, the connectors and Prefect once (ten seconds on a busy machine), then reads one JSON job
per line on stdin and runs each in a child forked from this clean, single-threaded process (so
the fork is safe), several at once. For each job it prints ``{"id", "pid"}`` when the child
starts and ``{"id", "exit", "signal"}`` when it ends.

A job names the flow (``decommission``, ``deploy``, ``rotate``), its parameters, the child's
environment and, optionally, a kill point: the child counts *events* (calls into the
connectors, the journal, the ledger and the signer, each before and after, and every entry an
inventory yields, each with its phase) and sends itself SIGKILL at event number ``kill_at``.
A job without a kill point records its events (the reference run) and the flow's result; with
``pause_at`` the child stops at that event until ``pause_file`` exists (it writes
``<pause_file>.reached`` when it gets there).
A test may also kill a child by its pid after a delay of its own (timer trials).
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


class Hooks:
    def __init__(self, kill_at: int | None, archive_prefix: str | None) -> None:
        self.kill_at = kill_at
        self.pause_at: int | None = None
        self.pause_file: Path | None = None
        self.archive_prefix = archive_prefix
        self.events: list[str] = []
        self.purged = False

    def event(self, phase: str, what: str) -> None:
        self.events.append(f"{phase}|{what}")
        if self.kill_at is not None and len(self.events) == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.pause_at is not None and len(self.events) == self.pause_at:
            assert self.pause_file is not None
            Path(f"{self.pause_file}.reached").write_text(f"{phase}|{what}")
            deadline = time.monotonic() + 300
            while not self.pause_file.exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    # -- phases

    def store_phase(self, store: Any, key: str) -> str:
        if key.startswith("leases/"):
            return "lease"
        url = str(getattr(store, "url", ""))
        if self.archive_prefix and url.startswith(self.archive_prefix):
            return "archive"
        for marker, phase in (
            ("journal/purge-", "purge"),
            ("journal/shard-purge", "purge"),
            ("journal/archive-", "archive"),
            ("journal/key-", "key destruction"),
            ("journal/credential-", "revocation"),
            ("journal/verified", "verification"),
            ("journal/shard-verify", "verification"),
            ("journal/certified", "certification"),
            ("journal/000-approved", "approval"),
            ("plan.jsonl", "approval"),
            ("certificate", "certification"),
            ("deletion-manifest", "certification"),
            ("records/", "ledger"),
            ("deployments/", "receipt"),
            ("rotations/", "receipt"),
            (".sidecar.json", "sidecar"),
            ("model.sig", "signature"),
        ):
            if marker in key:
                return phase
        return "write"

    # -- wrappers

    def around(self, owner: Any, attr: str, phase: Callable[..., str]) -> None:
        real = getattr(owner, attr)
        hooks = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            p = phase(*args, **kwargs)
            if p == "lease":  # renewals come from a timer thread: not a reproducible event
                return real(*args, **kwargs)
            hooks.event(p, f"{attr} before")
            out = real(*args, **kwargs)
            if p == "purge":
                hooks.purged = True
            hooks.event(p, f"{attr} after")
            return out

        setattr(owner, attr, wrapper)

    def inventory(self, owner: Any) -> None:
        real = owner.inventory
        hooks = self

        def inventory(store: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            phase = "verification" if hooks.purged else "inventory"
            for entry in real(store, *args, **kwargs):
                hooks.event(phase, "entry")
                yield entry

        owner.inventory = inventory

    def install(self) -> None:
        from connectors.keyring import LocalKey
        from connectors.local import FileStore
        from connectors.s3 import S3Store
        from connectors.vault import VaultTransitKey
        from flows import _credentials
        from flows.journal import Journal
        from sundown import dsse
        from sundown.ledger import Ledger

        for store in (FileStore, S3Store):
            self.inventory(store)
            self.around(store, "put", lambda s, key, *a, **k: self.store_phase(s, key))
            self.around(store, "purge", lambda *a, **k: "purge")
        for key in (LocalKey, VaultTransitKey):
            self.around(key, "destroy", lambda *a, **k: "key destruction")
            self.around(key, "rotate", lambda *a, **k: "rotation")
            self.around(key, "retire_versions_below", lambda *a, **k: "rotation")
        self.around(VaultTransitKey, "_set_config", lambda *a, **k: "key destruction")
        self.around(VaultTransitKey, "_write_record", lambda *a, **k: "key destruction")
        self.around(_credentials, "revoke", lambda *a, **k: "revocation")
        self.around(
            Journal, "record", lambda j, step, *a, **k: self.store_phase(None, f"journal/{step}")
        )
        self.around(Ledger, "append", lambda *a, **k: "ledger")
        self.around(dsse, "sign", lambda *a, **k: "signing")


def run_flow(flow: str, params: dict[str, Any]) -> Any:
    from flows import models

    if flow == "decommission":
        from flows.decommission import decommission_system

        return decommission_system(models.DecommissionParameters(**params))
    if flow == "deploy":
        from flows.deploy import deploy_model

        return deploy_model(models.DeployParameters(**params))
    if flow == "rotate":
        from flows.rotate import rotate_credentials

        return rotate_credentials(models.RotateParameters(**params))
    raise ValueError(flow)


APPROVER = {"name": "Lee Marchetti", "role": "security-officer"}


def child(job: dict[str, Any]) -> int:
    """Run the job's flow (a retirement: plan first when asked, the digest written beside the
    output, then the approved run) with the kill point armed for the last run only."""
    os.environ.update(job.get("env", {}))
    out = Path(job["out"])
    hooks = Hooks(None, job.get("archive_prefix"))
    hooks.install()
    flow = job["flow"]
    params = {**job["params"], **job.get("params_extra", {})}
    try:
        if job.get("plan_first"):
            dry = run_flow(flow, {**params, "dry_run": True})
            (out.parent / "digest").write_text(dry.plan_digest)
            params["approve_digest"] = dry.plan_digest
        if flow == "decommission" and params.get("approve_digest"):
            params.setdefault("approver", APPROVER)
            params.setdefault("batch_size", 8)
        hooks.events, hooks.purged, hooks.kill_at = [], False, job.get("kill_at")
        hooks.pause_at = job.get("pause_at")
        hooks.pause_file = Path(job["pause_file"]) if job.get("pause_file") else None
        result = run_flow(flow, params)
        answer = {"ok": True, "result": json.loads(result.model_dump_json())}
    except BaseException as exc:  # reported to the test, which asserts on it
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()}  # fmt: skip
    answer["events"] = hooks.events
    out.write_text(json.dumps(answer))
    return 0


def main() -> None:
    # Everything a child needs, imported before any fork (and before any thread exists).
    import flows.decommission
    import flows.deploy
    import flows.rotate  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    children: dict[int, str] = {}
    buffer = b""
    open_ = True
    while open_ or children:
        if open_:
            ready, _, _ = select.select([0], [], [], 0.05)
            if ready:
                chunk = os.read(0, 65536)
                open_ = bool(chunk)
                buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    job = json.loads(line)
                    children[_fork(job)] = job["id"]
        else:
            time.sleep(0.05)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            print(
                json.dumps(
                    {
                        "id": children.pop(pid),
                        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                    }
                ),
                flush=True,
            )


def _fork(job: dict[str, Any]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = child(job)
        finally:
            os._exit(code)
    print(json.dumps({"id": job["id"], "pid": pid}), flush=True)
    return pid


if __name__ == "__main__":
    main()
