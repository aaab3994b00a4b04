"""Canonical JSON (RFC 8785, JSON Canonicalization Scheme), restricted to what Sundown signs.

Certificates and ledger records are signed over their canonical encoding, so that one value has
exactly one byte string and a verifier can re-encode what it parsed and compare. The encoding is
RFC 8785 for the subset of JSON Sundown uses:

- objects with string keys, sorted by their UTF-16 code units (RFC 8785 section 3.2.3);
- arrays, strings, ``true``/``false``/``null``;
- integers within the exact range of an IEEE 754 double (|n| <= 2**53 - 1).

No whitespace; strings are UTF-8 with only ``"``, ``\\`` and the control characters escaped
(``\\b \\t \\n \\f \\r`` as short escapes, the others as ``\\u00xx``). Floats are refused: every
number in Sundown's formats is an integer (sizes, counts, sequence numbers), which keeps the
encoding free of the ECMAScript number-formatting rules. Any RFC 8785 implementation produces
the same bytes for the values Sundown writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sundown.errors import InputError

_MAX_SAFE_INTEGER = 2**53 - 1


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", errors="surrogatepass")


def _encode(value: Any, out: list[str], path: str) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise InputError(f"canonical JSON: integer at {path} is outside +/-(2**53 - 1)")
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise InputError(f"canonical JSON: float at {path} (Sundown formats use integers only)")
    elif isinstance(value, str):
        _check_text(value, path)
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Mapping):
        items = []
        for key in value:
            if not isinstance(key, str):
                raise InputError(f"canonical JSON: non-string object key at {path}")
            _check_text(key, path)
            items.append(key)
        items.sort(key=_utf16_key)
        out.append("{")
        for i, key in enumerate(items):
            if i:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(value[key], out, f"{path}.{key}")
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out, f"{path}[{i}]")
        out.append("]")
    else:
        raise InputError(f"canonical JSON: cannot encode {type(value).__name__} at {path}")


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"canonical JSON: lone surrogate in a string at {path}") from exc


def dumps(value: Any) -> bytes:
    """The canonical UTF-8 encoding of ``value``. InputError for what JSON cannot hold exactly."""
    out: list[str] = []
    _encode(value, out, "$")
    return "".join(out).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON, refusing duplicate object keys, NaN/Infinity and floats.

    InputError when the text is not such JSON (it names the problem)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, val in items:
            if key in result:
                raise InputError(f"JSON has a duplicate key {key!r}")
            result[key] = val
        return result

    def no_constant(name: str) -> Any:
        raise InputError(f"JSON has a non-standard constant {name}")

    def no_float(text: str) -> Any:
        raise InputError(f"JSON has a non-integer number {text}")

    try:
        return json.loads(
            data,
            object_pairs_hook=pairs,
            parse_constant=no_constant,
            parse_float=no_float,
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON: {exc}") from exc


def is_canonical(data: bytes) -> bool:
    """True when ``data`` is exactly the canonical encoding of the JSON it holds."""
    try:
        return dumps(loads(data)) == data
    except InputError:
        return False


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>``, the digest notation used across Sundown's formats."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
