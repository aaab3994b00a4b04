"""The journal of a retirement: one signed, create-only record per completed step, in the
evidence store.

Layout under the evidence location (``<evidence>/decommissions/<system>/<plan hex>/``)::

    plan.jsonl                     the approved plan file (its SHA-256 is the plan digest)
    journal/000-approved.json      who approved, who performs, when, the spec digest, batch size
    journal/archive-L-B.json       archive batch B of location L done (counts)
    journal/purge-L-B.json         purge batch B of location L done (counts, held, failed)
    journal/shard-OP-L-F.json      a shard's result (flows/shards.py)
    journal/key-ROLE.json          key destroyed (the destruction evidence)
    journal/credential-N.json      credential N revoked (the revocation evidence)
    journal/lifecycle-L-added.json   purge_by: lifecycle rule added (configuration before, after)
    journal/lifecycle-L-removed.json that rule removed once the prefix was empty (before/after)
    journal/verified.json          re-listing, key and credential checks
    journal/certified.json         certificate id, digest, URLs, ledger sequence
    deletion-manifest.jsonl, certificate.dsse.json, certificate.md, certificate.pdf

The evidence location is untrusted input (docs/threat-model.md): anyone who can create objects
there could plant a record. So every record is a DSSE envelope (payload type
:data:`PAYLOAD_TYPE`) signed by the spec's certificate key, over ``{format, system, root,
plan_digest, step, time, data}``. Reading a journal verifies every record before anything uses
any of them: exactly one signature, valid under the spec's certificate public key, and a payload
whose system, plan digest and step agree with the folder and the file name it sits in. An
unsigned record (a planted one, or one written before journals were signed), a record signed by
another key, or a record copied from another plan, system or step is an IntegrityError naming
the record, raised before the caller changes anything.

A verified record reads as a :class:`JournalRecord`; its ``data`` is read through the step's
model (:meth:`JournalRecord.parse`, :meth:`Journal.data`; the models are in flows/evidence.py,
the formats in docs/formats/evidence.md), and data that does not fit is an IntegrityError naming
the step.

Records are written with ``put(if_absent=True)``: a step recorded once is never recorded again,
even by two workers at once; the record already there wins (after it verified). A re-run reads
the journal and skips every recorded step, so a crash halfway never repeats a destructive step
and never issues a second certificate for one plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from sundown import dsse, registry
from sundown.errors import ConflictError, IntegrityError, NotFoundError
from sundown.keys import Signer
from sundown.store import ObjectStore

from ._common import object_url

ROOT = "decommissions"
APPROVED = "000-approved"
VERIFIED = "verified"
CERTIFIED = "certified"
PLAN_FILE = "plan.jsonl"
PAYLOAD_TYPE = "application/vnd.sundown.journal-record+json"
# A bound on one journal record read back (untrusted input): the largest genuine record, an
# archive batch listing 1,000 copies, is well under 1 MiB; a planted giant is refused unread.
MAX_RECORD_BYTES = 16 * 1024 * 1024
FORMAT = "sundown.journal/v2"
_HEX = re.compile(r"^[0-9a-f]{64}$")
_STEP = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,127}$")


M = TypeVar("M", bound=BaseModel)


def _hex(plan_digest: str) -> str:
    return plan_digest.removeprefix("sha256:")


class JournalRecord(BaseModel):
    """The signed payload of one journal record (its bytes are what the DSSE signature covers;
    this model is how it reads once verified). ``data`` is the step's own evidence: read it
    through :meth:`parse` with the step's model (flows/evidence.py and the models of the steps)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str
    system: str
    root: str
    plan_digest: str
    step: str
    time: str
    data: dict[str, Any]

    def parse(self, model: type[M]) -> M:
        """``data`` as ``model``; IntegrityError naming the step when it does not fit (a record
        signed by the certificate key, yet not what this version of Sundown reads there)."""
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise IntegrityError(
                f"journal record {self.step!r} of plan {self.plan_digest} is not a "
                f"{model.__name__} record ({exc.error_count()} field(s) wrong, first: "
                f"{'.'.join(str(p) for p in exc.errors()[0]['loc'])[:100]})"
            ) from None


class Journal:
    """The step records of one plan of one system, signed and verified with the key at
    ``signing_key`` (the spec's ``keys.certificate``)."""

    def __init__(
        self,
        store: ObjectStore,
        system: str,
        plan_digest: str,
        signing_key: str,
        *,
        root: str = ROOT,
    ) -> None:
        self.store = store
        self.system = system
        self.plan_digest = plan_digest
        self.signing_key = signing_key
        self.signer: Signer = registry.open_signer(signing_key)
        self.root = root
        self.prefix = f"{root}/{system}/{_hex(plan_digest)}"
        self._public_key = self.signer.public_key_pem()
        self._cache: dict[str, JournalRecord] | None = None

    def fresh(self) -> Journal:
        """The same journal, read afresh from the store (other processes wrote to it)."""
        return Journal(self.store, self.system, self.plan_digest, self.signing_key, root=self.root)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def url(self, name: str) -> str:
        return object_url(self.store, self.key(name))

    def _load(self) -> dict[str, JournalRecord]:
        """Every record, each verified (IntegrityError naming the first that does not)."""
        if self._cache is None:
            records: dict[str, JournalRecord] = {}
            for info in self.store.list(f"{self.prefix}/journal"):
                name = info.key.rsplit("/", 1)[-1]
                if info.key != self.key(f"journal/{name}") or not name.endswith(".json"):
                    raise IntegrityError(
                        f"journal of plan {self.plan_digest} holds "
                        f"{object_url(self.store, info.key)}, which is not a journal record "
                        "(journal/<step>.json)"
                    )
                step = name.removesuffix(".json")
                records[step] = self._read(step)
            self._cache = records
        return self._cache

    def _read(self, step: str) -> JournalRecord:
        """The verified payload of the record of ``step``."""
        key = self.key(f"journal/{step}.json")
        where = object_url(self.store, key)
        with self.store.open(key) as f:
            data = f.read(MAX_RECORD_BYTES + 1)
        if len(data) > MAX_RECORD_BYTES:
            raise IntegrityError(
                f"journal record {where} is larger than {MAX_RECORD_BYTES} bytes: no record "
                "Sundown writes is; it is not read (nothing was changed)"
            )
        try:
            obj = json.loads(data)
        except ValueError:
            raise IntegrityError(f"journal record {where} is not JSON") from None
        if isinstance(obj, dict) and "payloadType" not in obj and "step" in obj:
            raise IntegrityError(
                f"journal record {where} is unsigned: it was planted by someone who cannot sign "
                "with the spec's certificate key, or written by a Sundown version that did not "
                "sign its journal (docs/flows.md, 'The journal'); it is not trusted, and nothing "
                "was changed"
            )
        try:
            envelope = dsse.Envelope.from_json(obj)
        except IntegrityError as exc:
            raise IntegrityError(f"journal record {where}: {exc}") from None
        if envelope.payload_type != PAYLOAD_TYPE or len(envelope.signatures) != 1:
            raise IntegrityError(
                f"journal record {where} is not a journal record with exactly one signature "
                f"(payload type {envelope.payload_type[:80]!r}, "
                f"{len(envelope.signatures)} signature(s))"
            )
        try:
            payload = dsse.verify(envelope, self._public_key)
        except IntegrityError:
            raise IntegrityError(
                f"journal record {where} is not signed by the spec's certificate key "
                f"(signature key id {envelope.signatures[0][0][:100]!r}): it was not written by "
                "this retirement; nothing was changed"
            ) from None
        try:
            record = json.loads(payload)
        except ValueError:
            raise IntegrityError(f"journal record {where}: signed payload is not JSON") from None
        expected = {
            "format": FORMAT,
            "system": self.system,
            "root": self.root,
            "plan_digest": self.plan_digest,
            "step": step,
        }
        if not isinstance(record, dict) or not isinstance(record.get("data"), dict):
            raise IntegrityError(f"journal record {where}: signed payload is not a record")
        for field, value in expected.items():
            if record.get(field) != value:
                shown = str(record.get(field))[:100]
                raise IntegrityError(
                    f"journal record {where} is signed for {field} {shown!r}, not {value!r}: "
                    "a record copied from another journal or step is not this step's record"
                )
        try:
            return JournalRecord.model_validate(record)
        except ValidationError:
            raise IntegrityError(
                f"journal record {where}: signed payload is not a record (fields "
                f"{sorted(str(k)[:40] for k in record)[:10]})"
            ) from None

    def get(self, step: str) -> JournalRecord | None:
        """The verified record of ``step``, or None when the step is not recorded."""
        return self._load().get(step)

    def data(self, step: str, model: type[M]) -> M | None:
        """The data of ``step``'s record as ``model`` (None when not recorded; IntegrityError
        when it does not fit)."""
        record = self.get(step)
        return None if record is None else record.parse(model)

    def done(self, step: str) -> bool:
        return step in self._load()

    def verify(self) -> None:
        """Read and verify every record now (IntegrityError naming the first bad one)."""
        self._load()

    def record(self, step: str, data: BaseModel | dict[str, Any]) -> JournalRecord:
        """Record a completed step, signed (create-only). If it was recorded already (another
        worker, or a run that crashed after writing it), the existing record wins, once it
        verified, and is returned."""
        if not _STEP.match(step):
            raise ValueError(f"not a journal step name: {step!r}")
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        payload_obj = {
            "format": FORMAT,
            "system": self.system,
            "root": self.root,
            "plan_digest": self.plan_digest,
            "step": step,
            "time": datetime.now(UTC).isoformat(),
            "data": data,
        }
        payload = json.dumps(payload_obj, sort_keys=True, separators=(",", ":")).encode()
        envelope = dsse.sign(PAYLOAD_TYPE, payload, self.signer)
        body = (json.dumps(envelope.to_json(), sort_keys=True, indent=1) + "\n").encode()
        key = self.key(f"journal/{step}.json")
        try:
            self.store.put(key, [body], if_absent=True)
        except ConflictError:
            record = self._read(step)
        else:
            record = JournalRecord.model_validate(payload_obj)
        self._load()[step] = record
        return record

    def steps(self, prefix: str) -> Iterator[tuple[str, JournalRecord]]:
        for name, record in sorted(self._load().items()):
            if name.startswith(prefix):
                yield name, record

    def put_file(self, name: str, chunks: Iterable[bytes]) -> str:
        """Write an evidence file create-only; an existing one is kept (resume)."""
        with contextlib.suppress(ConflictError):
            self.store.put(self.key(name), chunks, if_absent=True)
        return self.url(name)

    def put_plan(self, path: str) -> None:
        """Store the plan file beside the journal (create-only) and check that the one stored
        is this plan (IntegrityError when a file planted there first differs)."""
        with open(path, "rb") as f:
            self.put_file(PLAN_FILE, f)
        h = hashlib.sha256()
        for chunk in self.iter_file(PLAN_FILE):
            h.update(chunk)
        if not hmac.compare_digest("sha256:" + h.hexdigest(), self.plan_digest):
            raise IntegrityError(
                f"{self.url(PLAN_FILE)} is not the plan {self.plan_digest} (another file was "
                "there first); nothing was changed"
            )

    def exists(self, name: str) -> bool:
        try:
            self.store.head(self.key(name))
        except NotFoundError:
            return False
        return True

    def iter_file(self, name: str) -> Iterator[bytes]:
        """The chunks of an evidence file (NotFoundError if absent)."""
        with self.store.open(self.key(name)) as f:
            while chunk := f.read(1024 * 1024):
                yield chunk

    def read_file(self, name: str) -> bytes | None:
        try:
            with self.store.open(self.key(name)) as f:
                return bytes(f.read())
        except NotFoundError:
            return None


def journals_of(store: ObjectStore, system: str, signing_key: str) -> list[Journal]:
    """Every plan of ``system`` that has an approval record, in listing order. A folder under
    ``decommissions/<system>/`` that is not named by a plan digest is an IntegrityError naming
    it (nothing Sundown wrote; it is not skipped silently)."""
    digests: list[str] = []
    for info in store.list(f"{ROOT}/{system}"):
        parts = info.key.split("/")
        if len(parts) < 4 or parts[1] != system or not _HEX.match(parts[2]):
            raise IntegrityError(
                f"{object_url(store, info.key)} is not in a plan folder "
                f"({ROOT}/{system}/<plan sha256 hex>/): Sundown did not write it; nothing was "
                "changed"
            )
        if parts[3:] == ["journal", f"{APPROVED}.json"]:
            digests.append("sha256:" + parts[2])
    return [Journal(store, system, d, signing_key) for d in digests]
