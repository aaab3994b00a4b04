"""Chroma collections as a record store (chromadb's HTTP client):
``chroma://HOST:PORT/TENANT/DATABASE/COLLECTION``.

Selector (docs/records.md): ``where: {key: value}`` (equality on metadata keys; several keys
must all hold; operators such as ``$ne`` or ``$or`` are refused) or ``whole_collection: true``.
A record is a Chroma document id.

Credentials: chromadb's own client settings from the environment,
``CHROMA_CLIENT_AUTH_PROVIDER`` and ``CHROMA_CLIENT_AUTH_CREDENTIALS`` (a token); TLS with
``SUNDOWN_CHROMA_TLS=1``. Nothing is put in the URL. Anonymized telemetry is switched off.

Purge: ``delete(ids=batch, where=selector)`` per batch, with a ``get(ids=batch)`` before and
after so every id has its own result; a whole collection is removed with ``delete_collection``
after checking it holds exactly the listed ids. Verify: ``get`` with the selector and with the
listed ids, ``get_collection`` for a whole collection.

What Chroma keeps: a ``chroma run --path DIR`` server keeps its data in ``DIR/chroma.sqlite3``;
deleted documents' text stays in that file after ``delete`` and after ``delete_collection``
(tests/conformance_records/test_chroma.py shows it on a real server). ``chroma vacuum`` with the
server stopped removes it after ``delete_collection``, but not after a ``where`` delete: the
write-ahead log (``embeddings_queue``) still holds the documents as added (shown too). The finding
says which; no client call reaches that file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import chromadb
import chromadb.errors as chroma_errors
from chromadb.config import Settings

from sundown import errors, records

CAPABILITIES = frozenset(
    {
        records.RecordCapability.WHERE,
        records.RecordCapability.WHOLE,
        records.RecordCapability.BATCH_DELETE,
    }
)
_PAGE = 300


def _map_error(exc: Exception, what: str) -> errors.SundownError:
    if isinstance(exc, errors.SundownError):
        return exc
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, chroma_errors.NotFoundError):
        return errors.NotFoundError(f"{what}: {text}")
    if isinstance(exc, chroma_errors.AuthorizationError | chroma_errors.ChromaAuthError):
        return errors.PermissionDeniedError(f"{what}: refused ({text})")
    if isinstance(exc, chroma_errors.InvalidArgumentError):
        return errors.InputError(f"{what}: {text}")
    if isinstance(exc, chroma_errors.RateLimitError | ConnectionError | TimeoutError):
        return errors.TransientError(f"{what}: {text}")
    if "Could not connect" in text:
        return errors.TransientError(f"{what}: {text}")
    return errors.BackendError(f"{what}: {text}")


class ChromaCollection(records.ScopedRecords):
    """The documents of one Chroma collection that a selector matches."""

    capabilities = CAPABILITIES
    noun = "document"

    def __init__(self, url: str, selector: Mapping[str, object] | None) -> None:
        super().__init__(
            records.CHROMA_SHAPE.parse(url),
            records.parse_selector(
                selector, whole_word="whole_collection", where=True, where_of=url
            ),
        )
        self.tenant, self.database, self.collection = self._loc.segments
        for key, _ in self._selector.where:
            if key.startswith("$") or key.startswith("#"):
                raise errors.InputError(
                    f"selector of {url}: {key!r} is an operator or a reserved key; a selector "
                    "is equality on metadata keys only"
                )

    @property
    def where(self) -> str:
        return f"collection {self.collection} in {self.tenant}/{self.database}"

    def _where(self) -> dict[str, Any] | None:
        clauses = [{k: v} for k, v in self._selector.where]
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def _client(self) -> Any:
        try:
            return chromadb.HttpClient(
                host=self._loc.host,
                port=self._loc.port,
                ssl=os.environ.get("SUNDOWN_CHROMA_TLS", "") in ("1", "true", "yes"),
                settings=Settings(anonymized_telemetry=False),
                tenant=self.tenant,
                database=self.database,
            )
        except Exception as exc:
            raise _map_error(exc, f"connect to {self._loc.host}:{self._loc.port}") from None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _map_error(exc, f"{what} of {self.where}") from None

    def _collection(self, client: Any) -> Any:
        return self._call("get_collection", client.get_collection, self.collection)

    def _ids(self, col: Any, where: dict[str, Any] | None) -> list[str]:
        """Every id the selector matches (the whole collection when ``where`` is None)."""
        out: list[str] = []
        offset = 0
        while True:
            page = self._call("get", col.get, where=where, include=[], limit=_PAGE, offset=offset)
            ids = [str(i) for i in page["ids"]]
            out.extend(ids)
            if len(ids) < _PAGE:
                return out
            offset += len(ids)

    def inventory(self) -> Iterator[records.RecordEntry]:
        col = self._collection(self._client())
        offset = 0
        while True:
            page = self._call(
                "get",
                col.get,
                where=self._where(),
                include=["documents", "metadatas", "embeddings"],
                limit=_PAGE,
                offset=offset,
            )
            ids = page["ids"]
            documents = page.get("documents") or [None] * len(ids)
            metadatas = page.get("metadatas") or [None] * len(ids)
            embeddings = page.get("embeddings")
            if embeddings is None:
                embeddings = [None] * len(ids)
            for i, ident in enumerate(ids):
                size = len(str(ident).encode())
                if documents[i]:
                    size += len(str(documents[i]).encode())
                if metadatas[i]:
                    size += len(json.dumps(metadatas[i], default=str).encode())
                if embeddings[i] is not None:
                    size += 4 * len(embeddings[i])
                yield records.RecordEntry(str(ident), size)
            if len(ids) < _PAGE:
                return
            offset += len(ids)

    def purge(
        self, entries: Sequence[records.RecordEntry], *, batch_size: int = 300
    ) -> records.RecordPurgeResult:
        listed = self.checked_input(entries, batch_size)
        client = self._client()
        try:
            col = client.get_collection(self.collection)
        except chroma_errors.NotFoundError:
            if not self._selector.whole:
                raise errors.NotFoundError(f"{self.where} does not exist") from None
            return records.RecordPurgeResult(
                absent=[e.id for e in listed]
            )  # deleted by an earlier run
        except Exception as exc:
            raise _map_error(exc, f"get_collection of {self.where}") from None
        current = self._ids(col, self._where())
        self.refuse_unlisted(current, (e.id for e in listed))
        in_scope = set(current)
        missing = [e.id for e in listed if e.id not in in_scope]
        result = records.RecordPurgeResult()
        if missing:
            outside: list[str] = []
            for start in range(0, len(missing), _PAGE):
                got = self._call("get", col.get, ids=missing[start : start + _PAGE], include=[])
                outside.extend(str(i) for i in got["ids"])
            self.refuse_outside(outside)
            result.absent.extend(missing)
        if self._selector.whole:
            self._call("delete_collection", client.delete_collection, self.collection)
            result.deleted.extend(current)
            result.dropped = True
            first, last = (current[0], current[-1]) if current else ("", "")
            result.batches.append(records.BatchResult(first, last, len(current), len(current), 0))
            return result
        for start in range(0, len(current), batch_size):
            self._delete_batch(col, current[start : start + batch_size], result)
        return result

    def _delete_batch(self, col: Any, batch: list[str], result: records.RecordPurgeResult) -> None:
        before = {str(i) for i in self._call("get", col.get, ids=batch, include=[])["ids"]}
        self._call("delete", col.delete, ids=batch, where=self._where())
        after = {str(i) for i in self._call("get", col.get, ids=batch, include=[])["ids"]}
        deleted = [i for i in batch if i in before and i not in after]
        result.deleted.extend(deleted)
        result.absent.extend(i for i in batch if i not in before)
        result.failed.extend(
            records.RecordFailure(
                i, "not_deleted", "still present after delete (no longer in scope?)"
            )
            for i in batch
            if i in after
        )
        result.batches.append(
            records.BatchResult(
                batch[0], batch[-1], len(batch), len(deleted), len(batch) - len(before)
            )
        )

    def verify(self, entries: Sequence[records.RecordEntry]) -> records.RecordVerification:
        client = self._client()
        try:
            col = client.get_collection(self.collection)
        except chroma_errors.NotFoundError:
            if self._selector.whole:
                return records.RecordVerification(in_scope=None, gone=True)
            raise errors.NotFoundError(f"{self.where} does not exist") from None
        except Exception as exc:
            raise _map_error(exc, f"get_collection of {self.where}") from None
        remaining = self._ids(col, self._where())
        ids = [e.id for e in entries]
        present: list[str] = []
        for start in range(0, len(ids), _PAGE):
            got = self._call("get", col.get, ids=ids[start : start + _PAGE], include=[])
            present.extend(str(i) for i in got["ids"])
        return records.RecordVerification(
            len(remaining), tuple(sorted(present)), False, tuple(sorted(remaining)[:10])
        )

    def findings(self) -> list[records.Finding]:
        if self._selector.whole:
            statement = (
                "a Chroma server keeps deleted documents' text in its SQLite file "
                "(chroma.sqlite3 in its persistent directory) after delete_collection, until "
                "`chroma vacuum --path DIR` runs with the server stopped; copies and backups of "
                "that directory keep it too"
            )
        else:
            statement = (
                "a Chroma server keeps deleted documents' text in its SQLite file "
                "(chroma.sqlite3 in its persistent directory) after delete: its write-ahead log "
                "(embeddings_queue) still holds each document as it was added, and `chroma "
                "vacuum` does not remove it while the collection lives; copies and backups of "
                "that directory keep it too"
            )
        return [
            records.Finding(
                "persistent directory",
                None,
                True,
                statement,
                note="the server's files are not visible to a client; shown by Sundown's tests "
                "on chromadb's own server",
            )
        ]

    def close(self) -> None:
        """Nothing to release: a client is made per operation."""


def open_record_store(url: str, selector: Mapping[str, object] | None = None) -> ChromaCollection:
    return ChromaCollection(url, selector)
