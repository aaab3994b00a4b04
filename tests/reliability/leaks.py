"""Where a secret could end up, read back, and how a secret is searched for.

- :func:`prefect_texts`: every log line, artifact, flow-run and task-run record of the flow runs
  created since a moment, read back from the Prefect API.
- :func:`file_texts`: every file under a folder, with DSSE payloads base64-decoded and PDF
  streams inflated (a secret must not hide in an encoding).
- :func:`forms`: the spellings of a secret to look for (raw, hex, base64, URL-safe base64).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import zlib
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any


def forms(secret: str | bytes) -> list[bytes]:
    """The byte strings that would reveal ``secret``."""
    raw = secret.encode() if isinstance(secret, str) else secret
    out = [raw]
    if isinstance(secret, bytes):
        out += [
            raw.hex().encode(),
            raw.hex().upper().encode(),
            base64.b64encode(raw).rstrip(b"="),
            base64.urlsafe_b64encode(raw).rstrip(b"="),
        ]
    return out


def find(secrets: dict[str, str | bytes], haystack: Iterable[tuple[str, bytes]]) -> list[str]:
    """'<secret name> in <where>' for every secret found in the haystack."""
    needles = [(name, f) for name, s in secrets.items() for f in forms(s)]
    found = []
    for where, text in haystack:
        for name, needle in needles:
            if needle in text:
                found.append(f"{name} in {where}")
    return found


def _pdf_streams(data: bytes) -> list[bytes]:
    out = []
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        with contextlib.suppress(zlib.error):
            out.append(zlib.decompress(match.group(1).strip()))
        # reportlab may add ASCII85 before Flate: decode that too
        with contextlib.suppress(Exception):
            chunk = match.group(1).strip()
            if chunk.endswith(b"~>"):
                out.append(zlib.decompress(base64.a85decode(chunk, adobe=True)))
    return out


def _json_payloads(obj: Any) -> list[bytes]:
    out: list[bytes] = []
    if isinstance(obj, dict):
        if isinstance(obj.get("payload"), str):
            with contextlib.suppress(Exception):
                out.append(base64.b64decode(obj["payload"]))
        for value in obj.values():
            out += _json_payloads(value)
    elif isinstance(obj, list):
        for value in obj:
            out += _json_payloads(value)
    return out


def file_texts(root: Path, *, skip: Iterable[Path] = ()) -> list[tuple[str, bytes]]:
    skipped = [s.resolve() for s in skip]
    out: list[tuple[str, bytes]] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(path.resolve().is_relative_to(s) for s in skipped):
            continue
        data = path.read_bytes()
        out.append((str(path), data))
        if data.startswith(b"%PDF"):
            out += [(f"{path} (stream)", s) for s in _pdf_streams(data)]
        elif path.suffix in (".json", ".jsonl"):
            for line in data.splitlines() if path.suffix == ".jsonl" else [data]:
                with contextlib.suppress(ValueError):
                    out += [(f"{path} (payload)", p) for p in _json_payloads(json.loads(line))]
    return out


def prefect_texts(since: datetime) -> tuple[list[tuple[str, bytes]], dict[str, int]]:
    """Everything the Prefect server holds about the flow runs created since ``since``:
    (texts, counts of what was read)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterStartTime,
        LogFilter,
        LogFilterFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )

    out: list[tuple[str, bytes]] = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
            limit=200,
        )
        ids = [r.id for r in runs]
        logs: list[Any] = []
        while ids:
            page = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                limit=200,
                offset=len(logs),
            )
            logs += page
            if len(page) < 200:
                break
        artifacts = (
            client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
            )
            if ids
            else []
        )
        tasks = (
            client.read_task_runs(
                task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=ids)),
                limit=200,
            )
            if ids
            else []
        )
    out += [(f"prefect log {log.id}", log.message.encode()) for log in logs]
    out += [(f"prefect artifact {a.key}", a.model_dump_json().encode()) for a in artifacts]
    out += [(f"prefect flow run {r.name}", r.model_dump_json().encode()) for r in runs]
    out += [(f"prefect task run {t.name}", t.model_dump_json().encode()) for t in tasks]
    counts = {"flow runs": len(runs), "logs": len(logs), "artifacts": len(artifacts)}
    counts["task runs"] = len(tasks)
    return out, counts
