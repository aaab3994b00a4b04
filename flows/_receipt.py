"""Recording a receipt: the one way every flow leaves evidence of what it did.

Three steps, in this order, each safe to repeat after a crash:

1. :func:`store_receipt`: the receipt's bytes, written create-only to the evidence location
   (:func:`sundown.store.put_once`). The same bytes already there are this receipt, left by a
   run that stopped before its ledger record, and the run goes on; other bytes are someone
   else's (another deployment of the version, a planted file), never overwritten and never
   ledgered: the caller's error names the file.
2. :func:`in_ledger`: the signed ledger record pointing at the receipt's digest, found when a
   run that crashed after appending it left one, else appended (once per receipt).
3. :func:`publish`: a markdown artifact in the Prefect UI, written once the ledger record is known
   (the artifact names its sequence and the ledger head).

:func:`record_receipt` runs the three for a flow whose receipt is a plain JSON file (deploy,
retention, rotate, revoke); a retirement stores a signed certificate (its own create-only write
and checks in :mod:`flows.decommission`) and then uses :func:`in_ledger` and :func:`publish`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from sundown.errors import SundownError
from sundown.ledger import RecordKind, StoredRecord
from sundown.spec.model import SystemSpec
from sundown.store import ObjectStore, put_once

from ._common import find_ledger_record, ledger_append, object_url, sha256_digest


def receipt_bytes(receipt: BaseModel) -> bytes:
    """A receipt as stored: indented JSON, keys sorted (the format every receipt has had)."""
    return json.dumps(receipt.model_dump(mode="json"), indent=1, sort_keys=True).encode()


@dataclass(frozen=True)
class Receipted:
    """A receipt recorded: where it is, its digest, and the ledger record pointing at it."""

    url: str
    digest: str
    ledger: StoredRecord

    @property
    def sequence(self) -> int:
        return self.ledger.record.sequence

    @property
    def head(self) -> str:
        return self.ledger.head


def store_receipt(
    store: ObjectStore, key: str, body: bytes, taken: Callable[[str], SundownError]
) -> str:
    """Write ``body`` create-only at ``key``; its URL. When other bytes hold ``key``, raise
    ``taken(url)`` (they are never replaced, and nothing points the ledger at them)."""
    url = object_url(store, key)
    if not put_once(store, key, body):
        raise taken(url)
    return url


def in_ledger(
    spec: SystemSpec,
    kind: RecordKind,
    subject: str,
    digest: str,
    url: str,
    *,
    find_first: bool = True,
) -> StoredRecord:
    """The ledger record for the evidence with ``digest`` at ``url``, signed by the spec's
    certificate key. With ``find_first`` (evidence a re-run can store again: a deployment of the
    same version, a certificate), the record a crashed run appended already is found and
    returned, so the evidence is ledgered once; that reads the whole ledger. Without it (a
    receipt no re-run repeats), a record is appended."""
    found = find_ledger_record(spec, digest) if find_first else None
    return found or ledger_append(spec, kind, subject, digest, url)


def publish(markdown: str, key: str, description: str) -> None:
    """The flow's report in the Prefect UI (a markdown artifact under ``key``)."""
    create_markdown_artifact(markdown, key=key, description=description)


def record_receipt(
    spec: SystemSpec,
    store: ObjectStore,
    key: str,
    receipt: BaseModel,
    *,
    kind: RecordKind,
    subject: str,
    taken: Callable[[str], SundownError],
    report: Callable[[Receipted], str] | None,
    artifact_key: str = "",
    description: str = "",
    find_first: bool = True,
) -> Receipted:
    """Store ``receipt`` at ``key`` (create-only; ``taken(url)`` is raised when another receipt
    holds the key), record it in the ledger (see :func:`in_ledger` for ``find_first``), and
    publish ``report(receipted)`` as the markdown artifact ``artifact_key`` (none when
    ``report`` is None: a step of another flow, which publishes its own)."""
    body = receipt_bytes(receipt)
    url = store_receipt(store, key, body, taken)
    digest = sha256_digest(body)
    ledger = in_ledger(spec, kind, subject, digest, url, find_first=find_first)
    done = Receipted(url, digest, ledger)
    if report is not None:
        publish(report(done), artifact_key, description)
    return done
