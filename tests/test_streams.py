"""connectors/_streams.py: the one stream adapter module of the object-store connectors (the
stores' own behaviour is in tests/conformance; these are the adapter's guarantees)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from connectors import _streams
from sundown.errors import InputError, TransientError


def _failing(after: list[bytes]) -> Iterator[bytes]:
    yield from after
    raise ConnectionResetError("connection lost mid-stream")


def _guard(read: object) -> object:
    try:
        return read()  # type: ignore[operator]
    except ConnectionResetError as exc:
        raise TransientError(f"reading x: {type(exc).__name__}") from exc


def test_an_error_while_reading_is_mapped_and_never_becomes_an_early_end_of_file() -> None:
    """A stream that fails midway raises the connector's error, and keeps raising it: reading
    on after a failure must not return b"" (which would look like the end of a shorter
    object)."""
    f = _streams.reader(_failing([b"a" * 10]), guard=_guard, buffer=4)
    assert f.read(10) == b"a" * 10
    with pytest.raises(TransientError, match="ConnectionResetError"):
        f.read(1)
    for _ in range(2):
        with pytest.raises(TransientError):
            f.read()


def test_reader_closes_the_sdk_response_once_and_ignores_its_close_errors() -> None:
    closed: list[int] = []

    def close() -> None:
        closed.append(1)
        raise OSError("already closed")

    f = _streams.reader(iter([b"xy", b"", b"z"]), on_close=close)
    assert f.read() == b"xyz"
    f.close()
    f.close()
    assert closed == [1]


def test_peek_splits_the_first_bytes_from_the_rest_whatever_the_chunking() -> None:
    data = bytes(range(256)) * 40
    for given in (data, io.BytesIO(data), [data[i : i + 7] for i in range(0, len(data), 7)]):
        head, rest = _streams.peek(given, 1000)  # type: ignore[arg-type]
        assert head == data[:1000]
        assert b"".join(rest) == data[1000:]
    head, rest = _streams.peek(iter([b"short"]), 1000)
    assert (head, list(rest)) == (b"short", [])


def test_blocks_are_of_the_size_asked_and_double_when_told() -> None:
    out = list(_streams.blocks(iter([b"x" * 3] * 10), 4, double_every=2))
    assert [len(b) for b in out] == [4, 4, 8, 8, 6]
    assert list(_streams.blocks(iter([]), 4)) == [b""]


def test_chunks_refuse_what_is_not_bytes() -> None:
    with pytest.raises(InputError, match="got int"):
        list(_streams.chunks(iter([b"a", 1])))  # type: ignore[list-item]
