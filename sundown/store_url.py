"""Store URLs: the one parser of ``file://``, ``s3://``, ``gs://`` and ``az://`` URLs, used by
the system spec and by the connectors, and the path-boundary overlap between two of them.

- :func:`parse_store_url` validates and normalizes a URL into a :class:`ParsedStoreURL`
  (scheme, bucket or container, prefix segments), raising ``ValueError`` that names the problem
  and never echoes a URL that may hold a secret.
- :func:`parse_bucket_url` is the connectors' form: one scheme, ``(bucket, prefix)``, and
  :class:`~sundown.errors.InputError`.
- :func:`urls_overlap` is the path-boundary test: ``s3://b/models/a`` and ``s3://b/models/ab`` do
  not overlap; ``s3://b/models`` and ``s3://b/models/a`` do. :func:`real_store_url` resolves
  symbolic links on a ``file://`` path, and :func:`symlink_on_path` finds the first one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sundown.errors import InputError

STORE_SCHEMES = ("file", "s3", "gs", "az")


BUCKET_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "s3": (
        re.compile(r"^(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
        "3-63 lowercase letters, digits, '.' or '-'; no '..'",
    ),
    "gs": (
        re.compile(r"^(?!.*\.\.)[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$"),
        "3-222 lowercase letters, digits, '.', '_' or '-'; no '..'",
    ),
    "az": (
        re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$"),
        "3-63 lowercase letters, digits or single '-'",
    ),
}
CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True)
class ParsedStoreURL:
    """A validated store URL: ``bucket`` is ``""`` for ``file://``; ``parts`` are the prefix
    (for ``file://``: the path) segments. ``parts == ()`` on a cloud store: the whole bucket."""

    scheme: str
    bucket: str
    parts: tuple[str, ...]

    @property
    def url(self) -> str:
        if self.scheme == "file":
            return "file:///" + "/".join(self.parts)
        base = f"{self.scheme}://{self.bucket}"
        return base + ("/" + "/".join(self.parts) if self.parts else "")

    @property
    def prefix(self) -> str:
        return "/".join(self.parts)

    @property
    def whole_bucket(self) -> bool:
        return self.scheme != "file" and not self.parts


def check_segments(segments: list[str], what: str) -> tuple[str, ...]:
    for seg in segments:
        if seg == "":
            raise ValueError(f"{what} has an empty path segment ('//'): write each segment once")
        if seg in (".", ".."):
            raise ValueError(f"{what} has a {seg!r} segment: write the path without '.' or '..'")
        if seg != seg.strip():
            raise ValueError(f"{what} has a segment with leading or trailing spaces: {seg!r}")
    return tuple(segments)


def split_scheme(url: str, allowed: tuple[str, ...], what: str) -> tuple[str, str]:
    """Checks shared by store and key URLs; never echoes a URL that may hold a secret."""
    if not isinstance(url, str):
        raise ValueError(f"{what} must be a string URL")
    if url != url.strip():
        raise ValueError(f"{what} has leading or trailing whitespace")
    if CONTROL.search(url):
        raise ValueError(f"{what} contains a control character or a backslash")
    if "://" not in url:
        raise ValueError(
            f"{what} {url!r} is not a URL "
            f"(expected one of: {', '.join(s + '://' for s in allowed)})"
        )
    scheme, rest = url.split("://", 1)
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        raise ValueError(
            f"{what} contains credentials (user info before '@'); credentials never go in a "
            "URL: declare them under 'credentials' and keep secrets in Vault"
        )
    if "?" in url or "#" in url:
        raise ValueError(
            f"{what} has a query string or fragment (a SAS token or signature?); a location "
            "is a plain scheme://bucket/prefix URL"
        )
    if scheme.lower() not in allowed:
        raise ValueError(
            f"{what} {url!r} has unsupported scheme {scheme!r} "
            f"(expected one of: {', '.join(s + '://' for s in allowed)})"
        )
    if "%" in url:
        raise ValueError(
            f"{what} {url!r} contains percent-encoding; write the path literally "
            "(escapes could hide '/', '.' or '..')"
        )
    return scheme.lower(), rest


def parse_store_url(url: str, what: str = "location") -> ParsedStoreURL:
    """Validate and normalize a store URL (``file:///path``, ``s3://bucket/prefix``,
    ``gs://bucket/prefix``, ``az://container/prefix``). Raises ValueError naming the problem.

    A trailing ``/`` is dropped; ``file://localhost/x`` becomes ``file:///x``."""
    scheme, rest = split_scheme(url, STORE_SCHEMES, what)
    if scheme == "file":
        if rest.startswith("localhost/"):
            rest = rest[len("localhost") :]
        if not rest.startswith("/"):
            host = rest.split("/", 1)[0]
            raise ValueError(
                f"{what} {url!r} is not an absolute file URL: {host!r} would be read as a host; "
                "write file:///absolute/path"
            )
        path = rest[1:].rstrip("/") if rest != "/" else ""
        if not path:
            raise ValueError(f"{what} {url!r} is the filesystem root, which is never a location")
        return ParsedStoreURL("file", "", check_segments(path.split("/"), what))
    bucket, _, path = rest.partition("/")
    kind = "container" if scheme == "az" else "bucket"
    if ":" in bucket:
        raise ValueError(f"{what} {url!r} has a port or ':' in the {kind} name")
    rule, rule_text = BUCKET_RULES[scheme]
    if not rule.match(bucket):
        raise ValueError(f"{what} {url!r}: {kind} name {bucket!r} is invalid ({rule_text})")
    if path.endswith("/"):
        path = path[:-1]
    if path == "":
        if rest.endswith("//"):
            raise ValueError(f"{what} {url!r} has an empty prefix ('//')")
        return ParsedStoreURL(scheme, bucket, ())
    return ParsedStoreURL(scheme, bucket, check_segments(path.split("/"), what))


def parse_bucket_url(url: str, scheme: str) -> tuple[str, str]:
    """A connector's root URL ``scheme://bucket/prefix`` -> ``(bucket, prefix)``, the prefix
    without slashes at either end (``""``: the whole bucket), by the rules of
    :func:`parse_store_url`; :class:`~sundown.errors.InputError` when it is not a valid URL of
    ``scheme``."""
    try:
        parsed = parse_store_url(url, f"{scheme}:// URL")
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if parsed.scheme != scheme:
        raise InputError(f"not a {scheme}:// URL: {parsed.url!r}")
    return parsed.bucket, parsed.prefix


def urls_overlap(a: str | ParsedStoreURL, b: str | ParsedStoreURL) -> bool:
    """True when one URL's scope contains the other's, with path-boundary semantics:
    ``s3://b/models`` overlaps ``s3://b/models/a``; ``s3://b/models/a`` does not overlap
    ``s3://b/models/ab``; a whole bucket overlaps everything in it."""
    pa = a if isinstance(a, ParsedStoreURL) else parse_store_url(a)
    pb = b if isinstance(b, ParsedStoreURL) else parse_store_url(b)
    if pa.scheme != pb.scheme or pa.bucket != pb.bucket:
        return False
    n = min(len(pa.parts), len(pb.parts))
    return pa.parts[:n] == pb.parts[:n]


def real_store_url(url: str | ParsedStoreURL) -> ParsedStoreURL:
    """The URL with, for ``file://``, every symbolic link on the path resolved
    (``os.path.realpath``: the parts that exist are resolved, the rest kept as written); cloud
    URLs unchanged. Overlap checks compare these, so ``alias/evalset -> shared/evalset`` is
    seen to overlap ``shared/evalset``."""
    p = url if isinstance(url, ParsedStoreURL) else parse_store_url(url)
    if p.scheme != "file":
        return p
    real = os.path.realpath("/" + p.prefix)
    parts = tuple(s for s in real.split("/") if s)
    return ParsedStoreURL("file", "", parts) if parts else p


def symlink_on_path(url: str | ParsedStoreURL) -> tuple[str, str] | None:
    """For a ``file://`` URL: the first component of its path (an ancestor or the location
    itself) that is a symbolic link, and where it points; None when there is none (or the URL
    is not ``file://``). Planning refuses such a location (docs/decisions.md)."""
    p = url if isinstance(url, ParsedStoreURL) else parse_store_url(url)
    if p.scheme != "file":
        return None
    path = Path("/")
    for part in p.parts:
        path = path / part
        if path.is_symlink():
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            return str(path), target
    return None
