"""The deletion manifest: one JSON line per purged copy, streamed (memory does not grow with
its length), bound to the certificate by its SHA-256 (:class:`ManifestRef`). No I/O: callers
pass iterators of bytes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from sundown import canonical
from sundown.errors import InputError, IntegrityError
from sundown.store import Entry

from ._model import MANIFEST_NAME, ManifestRef


@dataclass(frozen=True)
class ManifestEntry:
    """One purged copy: its full URI, version id (None on unversioned stores), kind, size, time."""

    uri: str
    version_id: str | None
    size: int
    deleted_at: datetime
    kind: str = "version"

    @classmethod
    def from_store_entry(cls, root_url: str, entry: Entry, deleted_at: datetime) -> ManifestEntry:
        return cls(
            uri=root_url.rstrip("/") + "/" + entry.key,
            version_id=entry.version_id,
            size=entry.size,
            deleted_at=deleted_at,
            kind=entry.kind.value,
        )

    def to_json(self) -> dict[str, Any]:
        if self.deleted_at.tzinfo is None:
            raise InputError(f"manifest entry {self.uri}: deleted_at has no time zone")
        return {
            "uri": self.uri,
            "version_id": self.version_id,
            "kind": self.kind,
            "size": self.size,
            "deleted_at": _rfc3339(self.deleted_at),
        }


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ManifestWriter:
    """Streams a deletion manifest (JSON Lines, one canonical JSON object per line) and keeps
    its SHA-256, line count and byte total as the lines go by::

        writer = ManifestWriter()
        store.put(MANIFEST_NAME, writer.chunks(entries))   # or write_manifest(entries, file)
        ref = writer.reference()
    """

    CHUNK = 64 * 1024

    def __init__(self, name: str = MANIFEST_NAME) -> None:
        self._name = name
        self._hash = hashlib.sha256()
        self._entries = 0
        self._bytes = 0
        self._done = False

    def chunks(self, entries: Iterable[ManifestEntry]) -> Iterator[bytes]:
        """The manifest as chunks of about 64 KiB. Consume it once, to the end."""
        if self._done:
            raise InputError("ManifestWriter.chunks() may be consumed only once")
        buffer = bytearray()
        for entry in entries:
            if entry.size < 0:
                raise InputError(f"manifest entry {entry.uri}: negative size")
            # keys are ASCII and values strings or small ints: json.dumps with sorted keys
            # gives the RFC 8785 bytes here (checked against an RFC 8785 library in tests)
            text = json.dumps(
                entry.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
            )
            line = text.encode("utf-8") + b"\n"
            self._hash.update(line)
            self._entries += 1
            self._bytes += entry.size
            buffer += line
            if len(buffer) >= self.CHUNK:
                yield bytes(buffer)
                buffer.clear()
        if buffer:
            yield bytes(buffer)
        self._done = True

    def reference(self) -> ManifestRef:
        if not self._done:
            raise InputError("the manifest was not written to the end")
        return ManifestRef(
            name=self._name,
            digest="sha256:" + self._hash.hexdigest(),
            entries=self._entries,
            purged_bytes=self._bytes,
        )


def write_manifest(
    entries: Iterable[ManifestEntry], out: BinaryIO, name: str = MANIFEST_NAME
) -> ManifestRef:
    """Write the manifest to a binary stream the caller opened; its reference for the cert."""
    writer = ManifestWriter(name)
    for chunk in writer.chunks(entries):
        out.write(chunk)
    return writer.reference()


def read_manifest_reference(chunks: Iterable[bytes], name: str = MANIFEST_NAME) -> ManifestRef:
    """Digest, line count and byte total of a manifest read back as chunks (streamed).
    IntegrityError when a line is not a manifest entry."""
    digest = hashlib.sha256()
    entries = 0
    total = 0
    pending = b""
    for chunk in chunks:
        digest.update(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            entries += 1
            total += _manifest_line_size(line, entries)
    if pending:
        raise IntegrityError(f"deletion manifest line {entries + 1} is truncated (no newline)")
    return ManifestRef(
        name=name, digest="sha256:" + digest.hexdigest(), entries=entries, purged_bytes=total
    )


def _manifest_line_size(line: bytes, number: int) -> int:
    try:
        obj = canonical.loads(line)
    except InputError as exc:
        raise IntegrityError(f"deletion manifest line {number}: {exc}") from exc
    size = obj.get("size") if isinstance(obj, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise IntegrityError(f"deletion manifest line {number}: no valid size")
    return size


def check_manifest(chunks: Iterable[bytes], expected: ManifestRef) -> ManifestRef:
    """Read a manifest back and compare it with the certificate's reference."""
    actual = read_manifest_reference(chunks, expected.name)
    if actual.digest != expected.digest:
        raise IntegrityError(
            f"deletion manifest digest mismatch: {expected.name} has {actual.digest}, "
            f"the certificate binds {expected.digest}"
        )
    if (actual.entries, actual.purged_bytes) != (expected.entries, expected.purged_bytes):
        raise IntegrityError(  # unreachable unless SHA-256 collides; kept as a cheap check
            f"deletion manifest counts mismatch: {actual.entries} entries / "
            f"{actual.purged_bytes} bytes, certificate says {expected.entries} / "
            f"{expected.purged_bytes}"
        )
    return actual
