"""The evidence ledger: append-only, hash-chained, signed records of every lifecycle operation.

Each record is one object ``records/<12-digit sequence>.json`` in an evidence store (any
:class:`sundown.store.ObjectStore`; default ``$SUNDOWN_HOME/ledger``, in production a bucket with
Object Lock). The object is the canonical JSON (RFC 8785) of a DSSE envelope whose payload is::

    {"_type": "https://sundown.dev/ledger-record/v1", "sequence": 42, "time": "...Z",
     "kind": "decommission", "subject": "...", "evidence": {"digest": "sha256:...",
     "location": "s3://..."}, "previous": "sha256:<hash of record 41>", "signing_key_id": "...",
     "pinned_public_key": null}

A record's hash is the SHA-256 of its object. Record 0 (kind ``genesis``) pins the public key
that signs the ledger and Sundown's certificates; every later record must be signed by it.

Appends are create-only writes (``put(..., if_absent=True)``): two workers that race for the same
sequence number cannot both win, so the chain never forks and nothing is overwritten. The loser
gets :class:`~sundown.errors.ConflictError`, reads the record that won, and tries the next number.
The format is specified in ``docs/formats/ledger.md``.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from sundown import canonical, dsse
from sundown.certificate import public_key_fingerprint
from sundown.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    NotFoundError,
)
from sundown.keys import Signer
from sundown.store import ObjectStore, put_once

RECORD_TYPE = "https://sundown.dev/ledger-record/v1"
PAYLOAD_TYPE = "application/vnd.sundown.ledger-record+json"
RECORDS_PREFIX = "records"
SEQUENCE_DIGITS = 12
MAX_APPEND_ATTEMPTS = 1000  # races lost in a row before giving up (each loss is progress)

Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
_KEY_RE = re.compile(rf"^{RECORDS_PREFIX}/(\d{{{SEQUENCE_DIGITS}}})\.json$")

# Records a retirement appends after its certificate, about a key whose deletion was pending
# (flows/key_deletion.py): the subject names the event, the certificate and the key. Cancelled
# and reversed say the certificate no longer holds for the copies under that key.
KEY_DELETION_CONFIRMED = "key deletion confirmed"
KEY_DELETION_CANCELLED = "key deletion cancelled"
KEY_DELETION_REVERSED = "key deletion reversed"
KEY_EVENT_SUBJECT = re.compile(
    r"^(key deletion (?:confirmed|cancelled|reversed)): certificate (\S+), key (\S+): "
)


@dataclass(frozen=True)
class KeyEvent:
    """A verified ``decommission`` record about a certificate's pending key deletion."""

    event: str  # one of the KEY_DELETION_* subjects
    certificate_id: str
    key_uri: str
    sequence: int

    @property
    def withdraws(self) -> bool:
        """The certificate no longer holds for the copies it covers by CE under this key."""
        return self.event != KEY_DELETION_CONFIRMED


def key_event(stored: StoredRecord) -> KeyEvent | None:
    """The key-deletion event a ``decommission`` record states, if it is one (its subject read
    by :data:`KEY_EVENT_SUBJECT`); None for any other record."""
    match = KEY_EVENT_SUBJECT.match(stored.record.subject)
    if match is None or stored.record.kind is not RecordKind.DECOMMISSION:
        return None
    return KeyEvent(match.group(1), match.group(2), match.group(3), stored.record.sequence)


class RecordKind(enum.StrEnum):
    GENESIS = "genesis"  # record 0 only: pins the signing public key
    DEPLOY = "deploy"
    ROTATE = "rotate"
    REVOKE = "revoke"
    RETENTION = "retention"
    DECOMMISSION = "decommission"


class Evidence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    digest: Digest  # sha256 of the evidence object (for a certificate: its envelope digest)
    location: Text  # where the evidence is kept, e.g. s3://evidence/certs/DC-....dsse.json


class Record(BaseModel):
    """The signed content of one ledger record."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)

    type: str = Field(default=RECORD_TYPE, alias="_type", pattern=f"^{re.escape(RECORD_TYPE)}$")
    sequence: NonNegativeInt
    time: AwareDatetime
    kind: RecordKind
    subject: Text
    evidence: Evidence | None
    previous: Digest | None
    signing_key_id: Text
    pinned_public_key: str | None = None  # PEM, record 0 only

    @model_validator(mode="after")
    def _shape(self) -> Self:
        first = self.sequence == 0
        if first != (self.kind is RecordKind.GENESIS):
            raise ValueError("record 0, and only record 0, is the genesis record")
        if first != (self.previous is None):
            raise ValueError("only record 0 has no previous record hash")
        if first != (self.pinned_public_key is not None):
            raise ValueError("only record 0 pins a public key")
        if not first and self.evidence is None:
            raise ValueError("a record must point at its evidence")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def record_key(sequence: int) -> str:
    """``records/000000000042.json``: zero padded, so key order is sequence order."""
    if sequence < 0 or sequence >= 10**SEQUENCE_DIGITS:
        raise InputError(f"ledger sequence {sequence} out of range")
    return f"{RECORDS_PREFIX}/{sequence:0{SEQUENCE_DIGITS}d}.json"


@dataclass(frozen=True)
class StoredRecord:
    key: str
    record: Record
    envelope: dsse.Envelope
    hash: str  # sha256:<hex> of the stored object (canonical envelope JSON)

    @property
    def name(self) -> str:
        return f"ledger record {self.record.sequence:0{SEQUENCE_DIGITS}d}"

    @property
    def head(self) -> str:
        """``SEQ:sha256:HASH``: this record as a ledger head, the value to keep and later pass to
        ``sundown ledger verify --expect-head`` (records 0..SEQ must still be exactly these)."""
        return format_head(self.record.sequence, self.hash)


_HEAD_RE = re.compile(r"^(\d{1,12}):(?:sha256:)?([0-9a-f]{64})$")


def format_head(sequence: int, record_hash: str) -> str:
    """``SEQ:sha256:HASH``."""
    return f"{sequence}:{record_hash}"


def parse_head(text: str) -> tuple[int, str]:
    """(sequence, record hash) of a ``SEQ:sha256:HASH`` head. InputError naming the format."""
    match = _HEAD_RE.match(text.strip().lower())
    if not match:
        raise InputError(
            f"ledger head {text!r}: expected SEQ:sha256:HASH (a record number and its full "
            "64-hex record hash, as printed when the record was appended)"
        )
    return int(match.group(1)), "sha256:" + match.group(2)


@dataclass(frozen=True)
class LedgerReport:
    """What :meth:`Ledger.verify` established."""

    url: str
    records: int
    head_hash: str
    pinned_key_id: str
    pinned_key_fingerprint: str
    key_supplied: bool  # False: nothing checked the genesis pin (see sundown.trust)
    kinds: dict[str, int]
    pinned_public_key: bytes = b""  # PEM pinned by record 0
    expected_head: str | None = None  # the head checked with expect_head, if any
    found: StoredRecord | None = None  # the first verified record holding find_evidence
    key_events: tuple[KeyEvent, ...] = ()  # every verified key-deletion record, in order

    @property
    def head(self) -> str:
        """``SEQ:sha256:HASH`` of the newest record."""
        return format_head(self.records - 1, self.head_hash)

    def summary(self) -> str:
        trust = (
            "matches the supplied public key"
            if self.key_supplied
            else "pin not checked against a trusted key"
        )
        expected = (
            f"; contains the expected head {self.expected_head}" if self.expected_head else ""
        )
        return (
            f"ledger {self.url} valid: {self.records} record(s), head {self.head}; "
            f"signed by {self.pinned_key_id} ({self.pinned_key_fingerprint}, {trust}){expected}"
        )


def default_ledger_url() -> str:
    """``$SUNDOWN_HOME/ledger`` (``~/.sundown/ledger`` when SUNDOWN_HOME is unset)."""
    home = os.environ.get("SUNDOWN_HOME") or str(Path.home() / ".sundown")
    return (Path(home).expanduser().resolve() / "ledger").as_uri()


def _parse(key: str, data: bytes) -> StoredRecord:
    """Parse one stored record (no signature check). IntegrityError naming the record."""
    match = _KEY_RE.match(key)
    label = f"ledger record {match.group(1)}" if match else f"ledger object {key}"
    try:
        envelope = dsse.Envelope.from_json(canonical.loads(data))
        if len(envelope.signatures) != 1:
            raise IntegrityError(
                f"the envelope carries {len(envelope.signatures)} signatures; a record carries "
                "exactly one"
            )
        if envelope.payload_type != PAYLOAD_TYPE:
            raise IntegrityError(f"payloadType {envelope.payload_type!r} is not {PAYLOAD_TYPE}")
        if not canonical.is_canonical(envelope.payload):
            raise IntegrityError("payload is not canonical JSON")
        record = Record.model_validate_json(envelope.payload, strict=True)
        if canonical.dumps(record.to_json()) != envelope.payload:
            raise IntegrityError("fields do not round-trip: unexpected encoding")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise IntegrityError(f"{label} ({key}): field {where}: {first['msg']}") from exc
    except (IntegrityError, InputError) as exc:
        raise IntegrityError(f"{label} ({key}): {exc}") from exc
    digest = canonical.sha256_digest(canonical.dumps(envelope.to_json()))
    return StoredRecord(key, record, envelope, digest)


class Ledger:
    """An evidence ledger in an object store."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._pinned: tuple[str, bytes] | None = None  # (fingerprint, PEM) of record 0
        self.lost_races = 0  # appends that found their sequence number taken (observability)

    @classmethod
    def open(cls, url: str | None = None) -> Ledger:
        """The ledger at ``url`` (default :func:`default_ledger_url`)."""
        from sundown import registry

        return cls(registry.open_store(url or default_ledger_url()))

    @property
    def url(self) -> str:
        return self._store.url

    # -- reading ----------------------------------------------------------------------------

    def _read(self, key: str) -> StoredRecord:
        with self._store.open(key) as stream:
            data = stream.read()
        return _parse(key, data)

    def keys(self) -> Iterator[str]:
        """The keys of the objects under ``records/``, in key order."""
        for info in self._store.list(RECORDS_PREFIX):
            yield info.key

    def records(self) -> Iterator[StoredRecord]:
        """Every record in order, parsed but NOT verified (use :meth:`verify`)."""
        for key in self.keys():
            yield self._read(key)

    def head(self) -> StoredRecord | None:
        """The record with the highest sequence number, or None for an empty ledger."""
        last = None
        for key in self.keys():
            if _KEY_RE.match(key):
                last = key
        return self._read(last) if last else None

    def pinned_public_key(self) -> bytes:
        """The public key pinned by record 0 (PEM), after checking record 0's own signature.
        NotFoundError for an empty ledger. Compare its fingerprint with one you trust."""
        return self._genesis()[1]

    def _genesis(self) -> tuple[str, bytes]:
        if self._pinned is None:
            try:
                first = self._read(record_key(0))
            except NotFoundError:
                raise NotFoundError(f"the ledger at {self.url} has no records") from None
            pem = (first.record.pinned_public_key or "").encode("ascii")
            try:
                fingerprint = public_key_fingerprint(pem)
                dsse.verify(first.envelope, pem)
            except (InputError, IntegrityError) as exc:
                raise IntegrityError(f"{first.name} ({first.key}): {exc}") from exc
            self._pinned = (fingerprint, pem)
        return self._pinned

    # -- appending --------------------------------------------------------------------------

    def _put(self, record: Record, signer: Signer) -> StoredRecord:
        """Create-only write of ``record``. A ConflictError means another record holds that
        number, unless the record there is byte for byte this one: a retried write whose first
        answer was lost (the store wrote it, the client retried and met its own object), which
        is returned as written."""
        payload = canonical.dumps(record.to_json())
        envelope = dsse.sign(PAYLOAD_TYPE, payload, signer)
        data = canonical.dumps(envelope.to_json())
        key = record_key(record.sequence)
        if not put_once(self._store, key, data):
            raise ConflictError(f"{self.url}: another record holds {key}")
        return StoredRecord(key, record, envelope, canonical.sha256_digest(data))

    def initialise(self, signer: Signer, *, now: datetime | None = None) -> StoredRecord:
        """Write record 0, pinning ``signer``'s public key. If another worker did it first with
        the same key, return theirs; IntegrityError if the ledger pins a different key."""
        pem = signer.public_key_pem()
        fingerprint = public_key_fingerprint(pem)
        record = Record(
            sequence=0,
            time=now or datetime.now(UTC),
            kind=RecordKind.GENESIS,
            subject=f"ledger opened; pins signing key {signer.key_id} ({fingerprint})",
            evidence=None,
            previous=None,
            signing_key_id=signer.key_id,
            pinned_public_key=pem.decode("ascii"),
        )
        try:
            stored = self._put(record, signer)
        except ConflictError:
            stored = self._read(record_key(0))
        self._check_signer(fingerprint)
        return stored

    def _check_signer(self, fingerprint: str) -> None:
        pinned, _pem = self._genesis()
        if pinned != fingerprint:
            raise IntegrityError(
                f"the signer's public key {fingerprint} is not the key pinned by the ledger at "
                f"{self.url} ({pinned})"
            )

    def append(
        self,
        kind: RecordKind | str,
        subject: str,
        evidence_digest: str,
        evidence_location: str,
        signer: Signer,
        *,
        now: datetime | None = None,
    ) -> StoredRecord:
        """Append one record, creating record 0 first on an empty ledger. Safe with several
        workers at once: a lost race (ConflictError from the create-only write) moves on to the
        next sequence number after the record that won."""
        kind = RecordKind(kind)
        if kind is RecordKind.GENESIS:
            raise InputError("the genesis record is written by initialise(), not append()")
        evidence = Evidence(digest=evidence_digest, location=evidence_location)
        fingerprint = public_key_fingerprint(signer.public_key_pem())
        head = self.head()
        if head is None:
            head = self.initialise(signer)
        self._check_signer(fingerprint)
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            _check_signature(head, self._genesis()[1])
            record = Record(
                sequence=head.record.sequence + 1,
                time=now or datetime.now(UTC),
                kind=kind,
                subject=subject,
                evidence=evidence,
                previous=head.hash,
                signing_key_id=signer.key_id,
            )
            try:
                return self._put(record, signer)
            except ConflictError:
                # Someone else took this number: chain onto their record instead.
                self.lost_races += 1
                head = self._read(record_key(record.sequence))
        raise ConflictError(
            f"ledger append to {self.url} lost {MAX_APPEND_ATTEMPTS} races in a row; giving up"
        )

    # -- verifying --------------------------------------------------------------------------

    def verify(
        self,
        public_key_pem: bytes | None = None,
        *,
        expect_head: str | None = None,
        find_evidence: str | None = None,
    ) -> LedgerReport:
        """Check every record: names, sequence, signature under the pinned key, hash chain.
        With ``public_key_pem``, record 0 must pin exactly that key. With ``expect_head``
        (``SEQ:sha256:HASH``, printed when a record was appended), record SEQ must exist with
        exactly that hash: the newest records removed (truncation) or records up to it rewritten
        fail. With ``find_evidence`` (a digest), the report's ``found`` is the first record whose
        evidence digest it is, read in the same pass that verified it. IntegrityError naming the
        first broken record; NotFoundError for an empty ledger (IntegrityError when a head was
        expected)."""
        expected = parse_head(expect_head) if expect_head is not None else None
        found: StoredRecord | None = None
        previous: StoredRecord | None = None
        genesis: StoredRecord | None = None
        kinds: dict[str, int] = {}
        pinned_pem = b""
        events: list[KeyEvent] = []
        for index, key in enumerate(self.keys()):
            match = _KEY_RE.match(key)
            if not match:
                raise IntegrityError(
                    f"ledger object {key}: not a record name (records/<12 digits>.json)"
                )
            number = int(match.group(1))
            if number != index:
                missing = record_key(index)
                raise IntegrityError(
                    f"ledger record {index:0{SEQUENCE_DIGITS}d} ({missing}) is missing: "
                    f"the next object is {key}"
                )
            stored = self._read(key)
            name = f"ledger record {number:0{SEQUENCE_DIGITS}d} ({key})"
            if stored.record.sequence != number:
                raise IntegrityError(
                    f"{name}: its sequence field says {stored.record.sequence}, not {number}"
                )
            if previous is None:
                pinned_pem = (stored.record.pinned_public_key or "").encode("ascii")
                try:
                    fingerprint = public_key_fingerprint(pinned_pem)
                except InputError as exc:
                    raise IntegrityError(f"{name}: pinned_public_key: {exc}") from exc
                if public_key_pem is not None:
                    trusted = public_key_fingerprint(public_key_pem)
                    if trusted != fingerprint:
                        raise IntegrityError(
                            f"{name}: key mismatch: the ledger pins {fingerprint}, the trusted "
                            f"public key is {trusted}"
                        )
                genesis = stored
            elif stored.record.previous != previous.hash:
                raise IntegrityError(
                    f"{name}: previous hash {stored.record.previous} does not match "
                    f"{previous.name} ({previous.hash}): the chain is broken"
                )
            _check_signature(stored, pinned_pem)
            if stored.record.signing_key_id not in {k for k, _ in stored.envelope.signatures}:
                raise IntegrityError(f"{name}: envelope keyid differs from signing_key_id")
            if expected is not None and number == expected[0] and stored.hash != expected[1]:
                raise IntegrityError(
                    f"{name}: its hash is {stored.hash}, not the expected head "
                    f"{format_head(*expected)}: the ledger was rewritten up to the expected head"
                )
            kinds[stored.record.kind.value] = kinds.get(stored.record.kind.value, 0) + 1
            event = key_event(stored)
            if event is not None:
                events.append(event)
            evidence = stored.record.evidence
            if found is None and evidence is not None and evidence.digest == find_evidence:
                found = stored
            previous = stored
        count = 0 if previous is None else previous.record.sequence + 1
        if expected is not None and count <= expected[0]:
            raise IntegrityError(
                f"the ledger at {self.url} holds {count} record(s), but the expected head is "
                f"{format_head(*expected)}: record(s) {count} to {expected[0]} are missing "
                "(truncated)"
            )
        if previous is None or genesis is None:
            raise NotFoundError(f"the ledger at {self.url} has no records")
        return LedgerReport(
            url=self.url,
            records=previous.record.sequence + 1,
            head_hash=previous.hash,
            pinned_key_id=genesis.record.signing_key_id,
            pinned_key_fingerprint=public_key_fingerprint(pinned_pem),
            key_supplied=public_key_pem is not None,
            kinds=kinds,
            pinned_public_key=pinned_pem,
            expected_head=format_head(*expected) if expected is not None else None,
            found=found,
            key_events=tuple(events),
        )


def _check_signature(stored: StoredRecord, public_key_pem: bytes) -> None:
    """The record's signature under the pinned key, or IntegrityError naming the record."""
    try:
        dsse.verify(stored.envelope, public_key_pem)
    except IntegrityError as exc:
        raise IntegrityError(
            f"{stored.name} ({stored.key}): signature does not verify with the pinned key"
        ) from exc
