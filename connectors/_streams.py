"""Stream adapters shared by the object-store connectors: what ``put`` is given, as chunks or
blocks, and what an SDK gives back, as a readable file.

``put`` takes bytes, a readable binary stream or an iterable of byte chunks
(:data:`sundown.store.PutData`); :func:`chunks` turns any of them into byte chunks (a chunk of
another type is an InputError naming it), :func:`peek` reads the first bytes to choose between
one request and a multipart / resumable / block upload, and :func:`blocks` cuts parts of a fixed
size (S3). On the
way back, :func:`reader` makes a buffered binary file over an iterator of chunks (an SDK's
download iterator, or :func:`read_chunks` over an SDK's ``read(n)`` body): it holds at most one
chunk, maps errors met while reading through the connector's ``guard``, and closes the SDK's
response when it is closed. Memory never grows with the object.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, Protocol, TypeVar, cast

from sundown.errors import InputError
from sundown.store import PutData

CHUNK = 1024 * 1024  # what a stream is read in when the caller names no size

T = TypeVar("T")

#: Runs one read against the SDK and maps its errors to Sundown errors (a connector's ``_call``
#: with the object's name bound); :func:`unguarded` passes everything through.
Guard = Callable[[Callable[[], Any]], Any]


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def unguarded(read: Callable[[], T]) -> T:
    return read()


def read_chunks(source: _Readable, size: int = CHUNK) -> Iterator[bytes]:
    """``source.read(size)`` until it gives nothing."""
    while chunk := source.read(size):
        yield chunk


def chunks(data: PutData, size: int = CHUNK) -> Iterator[bytes]:
    """What ``put`` was given as byte chunks: bytes as one chunk, a stream read ``size`` at a
    time, an iterable's chunks as they come. InputError for a chunk that is not bytes."""
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
        return
    if hasattr(data, "read"):
        yield from read_chunks(cast(_Readable, data), size)
        return
    for chunk in data:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InputError(f"put() needs byte chunks, got {type(chunk).__name__}")
        yield bytes(chunk)


def peek(data: PutData, limit: int) -> tuple[bytes, Iterator[bytes]]:
    """(the first ``limit`` bytes of ``data``, the chunks after them). Fewer than ``limit``
    bytes means that is all there is (the rest is empty); exactly ``limit`` says nothing about
    the rest. Memory: about ``limit`` plus one chunk."""
    source = chunks(data, limit)
    head = bytearray()
    for chunk in source:
        head += chunk
        if len(head) >= limit:
            break
    over = bytes(head[limit:])
    del head[limit:]
    return bytes(head), itertools.chain([over] if over else [], source)


def blocks(data: PutData, size: int, *, double_every: int | None = None) -> Iterator[bytes]:
    """``data`` in blocks of ``size`` bytes (the last one shorter; one empty block for empty
    data), the size doubling after every ``double_every`` blocks if given (S3: 10,000 parts of a
    doubling size reach about 500 GiB). Memory: one block and one chunk."""
    count = 0
    buffer = bytearray()
    for chunk in chunks(data, CHUNK):
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
            count += 1
            if double_every and count % double_every == 0:
                size *= 2
    if buffer or count == 0:
        yield bytes(buffer)


def guarded(source: Iterable[T], guard: Guard) -> Iterator[T]:
    """``source``'s items, each step of the iteration run through ``guard`` (an SDK's paginated
    listing, whose errors arrive while iterating)."""
    it = iter(source)
    end = object()
    while (item := guard(lambda: next(it, end))) is not end:
        yield item


class Counted:
    """Byte chunks passed on as they are consumed, counting their bytes (``size``)."""

    def __init__(self, source: Iterable[bytes]) -> None:
        self._source = source
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._source:
            self.size += len(chunk)
            yield chunk


class ChunkReader(io.RawIOBase):
    """A raw readable file over an iterator of byte chunks (at most one held). Each step of the
    iterator runs through ``guard`` (errors while streaming become Sundown errors); after an
    error every further read raises it again, never an early end of file (a generator that
    raised is exhausted: reading on would look like the end of a shorter object). ``on_close``
    (e.g. the SDK response's ``close``) runs once on close, its own errors ignored (the data has
    been read or abandoned by then)."""

    def __init__(
        self,
        source: Iterable[bytes],
        *,
        guard: Guard = unguarded,
        on_close: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        self._it = iter(source)
        self._guard = guard
        self._on_close = on_close
        self._buf = memoryview(b"")
        self._failed: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        while not self._buf:
            if self._failed is not None:
                raise self._failed
            try:
                chunk = self._guard(lambda: next(self._it, None))
            except Exception as exc:
                self._failed = exc
                raise
            if chunk is None:
                return 0
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise InputError(f"a stream needs byte chunks, got {type(chunk).__name__}")
            self._buf = memoryview(chunk).cast("B")
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            with contextlib.suppress(Exception):
                self._on_close()
        super().close()


def reader(
    source: Iterable[bytes],
    *,
    guard: Guard = unguarded,
    on_close: Callable[[], object] | None = None,
    buffer: int = CHUNK,
) -> BinaryIO:
    """A buffered binary file over ``source`` (see :class:`ChunkReader`): what ``open`` returns."""
    raw = ChunkReader(source, guard=guard, on_close=on_close)
    return cast(BinaryIO, io.BufferedReader(raw, buffer))
