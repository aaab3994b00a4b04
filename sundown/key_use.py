"""Blast radius of a key destruction: the buckets whose default encryption is a key this
retirement destroys.

Destroying a KMS key makes unreadable every copy encrypted under it, not only the copies the
spec names: a bucket that defaults to the key (S3 ``GetBucketEncryption``), the archive or the
evidence location, another team's bucket. So before planning a key's destruction (and again
before the destroy step, since a default can change after approval) the flow reads the default
encryption of every bucket it can see that matters (:class:`BucketDefault`, from the
connectors) and :func:`judge` refuses, naming each bucket, when a destroyed key is the default
of:

- the archive or the evidence location (what must outlive the retirement);
- a bucket that holds no location of this system (another system's data);
- a bucket that holds this system's locations but also copies outside them (``outside``: the
  first one found).

What it proved and what it could not (a denied ListBuckets, an unreadable bucket, a key no
store reports a default for) is recorded per key in the plan (:class:`KeyUse`), and what was
not checked becomes a certificate exception (:func:`exceptions`). Objects written with the key
named explicitly (not by the bucket's default) in a bucket outside the spec cannot be found
without reading every object of the account: nothing here claims them (docs/known-gaps.md).
Nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from sundown.certificate import CertificateException
from sundown.errors import ScopeError

__all__ = ["BucketDefault", "KeyUse", "Survey", "exceptions", "judge"]

ARCHIVE, EVIDENCE, LOCATION = "archive", "evidence", "location"
_LISTED = 20  # buckets named in one plan line; the rest counted


def shown(text: str, limit: int = 120) -> str:
    """An untrusted string (a bucket name or key reference from a listing) made safe to show."""
    clean = "".join(c if c.isprintable() and c not in "|<>`" else "?" for c in text)
    return clean if len(clean) <= limit else clean[:limit] + "..."


@dataclass(frozen=True)
class BucketDefault:
    """One bucket's default encryption as its store reported it.

    ``bucket``: its URL (``s3://NAME``); ``roles``: why it matters to this system
    (``location``, ``archive``, ``evidence``; empty: another bucket of the account);
    ``algorithm`` / ``key``: the default's algorithm and key reference as read (None: no default
    encryption); ``matches``: the destroyed keys' URIs that reference resolves to;
    ``outside``: for a bucket of this system's locations whose default is a destroyed key, the
    first copy found outside the spec's locations (None: none); ``error``: why the default
    could not be read (then nothing else is known)."""

    bucket: str
    roles: tuple[str, ...] = ()
    algorithm: str | None = None
    key: str | None = None
    matches: tuple[str, ...] = ()
    outside: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Survey:
    """What one provider's look at its buckets found: the buckets read, whether every bucket of
    the account was listed (``everything`` says what that covers), and what could not be read
    at the account level (``unchecked``)."""

    provider: str
    keys: tuple[str, ...]
    buckets: tuple[BucketDefault, ...]
    listed_account: bool
    unchecked: tuple[str, ...] = ()
    everything: str = "every bucket of the account"


class KeyUse(BaseModel):
    """Recorded in the plan per key (so the approved digest covers it): what the blast-radius
    check read and proved, and what it could not check."""

    model_config = ConfigDict(extra="forbid")

    checked: list[str] = Field(default_factory=list)
    unchecked: list[str] = Field(default_factory=list)


def _names(buckets: Sequence[BucketDefault]) -> str:
    names = [shown(b.bucket) for b in buckets[:_LISTED]]
    more = len(buckets) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _refusal(uri: str, b: BucketDefault) -> str | None:
    said = f"{shown(b.bucket)} defaults to {uri}" + (
        f" (as {shown(b.key)})" if b.key and f"://{b.key}" not in uri else ""
    )
    if ARCHIVE in b.roles or EVIDENCE in b.roles:
        what = " and ".join(r for r in b.roles if r in (ARCHIVE, EVIDENCE))
        return (
            f"{said}, and it holds the {what} location: what must outlive this retirement "
            "would become unreadable with the key"
        )
    if not b.roles:
        return (
            f"{said}, a bucket that holds no location of this system: its data (another "
            "system's) would become unreadable with the key"
        )
    if b.outside is not None:
        return (
            f"{said}; it holds locations of this system, and also {shown(b.outside)} outside "
            "them: that copy (and any other written there under the default) may be encrypted "
            "under the key and become unreadable with it"
        )
    return None


def judge(
    surveys: Iterable[Survey], unchecked_keys: Mapping[str, str] | None = None
) -> dict[str, KeyUse]:
    """Per destroyed key, what the surveys proved (:class:`KeyUse`); ``unchecked_keys`` maps a
    key no survey covers to why. :class:`~sundown.errors.ScopeError` naming every bucket that
    makes the key's destruction reach beyond the system (module docstring), before anything is
    planned or destroyed."""
    out: dict[str, KeyUse] = {}
    refusals: list[str] = []
    for survey in surveys:
        read = [b for b in survey.buckets if b.error is None]
        failed = [b for b in survey.buckets if b.error is not None]
        scope = (
            f"{survey.everything} and the spec's own"
            if survey.listed_account
            else "the spec's own buckets (locations, archive, evidence) only"
        )
        for uri in survey.keys:
            use = out.setdefault(uri, KeyUse())
            under = [b for b in read if uri in b.matches]
            for b in under:
                why = _refusal(uri, b)
                if why is not None:
                    refusals.append(why)
            own = [b for b in under if _refusal(uri, b) is None]
            use.checked.append(
                f"{survey.provider} default encryption read for {len(read)} bucket(s), "
                f"{scope}: "
                + (
                    f"the key is the default of {_names(own)} (this system's locations, "
                    "nothing else found in them)"
                    if own
                    else "no bucket defaults to the key"
                )
                + "; objects written naming the key explicitly in other buckets are not found "
                "by this check"
            )
            use.unchecked += list(survey.unchecked)
            use.unchecked += [f"{shown(b.bucket)}: {shown(b.error or '', 300)}" for b in failed]
    for uri, why in (unchecked_keys or {}).items():
        out.setdefault(uri, KeyUse()).unchecked.append(why)
    if refusals:
        raise ScopeError(
            "the keys this retirement destroys also encrypt data outside it: "
            + "; ".join(refusals)
            + ". Nothing was deleted or destroyed: change those buckets' default encryption "
            "(and re-encrypt what was written under it), or keep the key out of keys.kek / "
            "keys.storage_cmk"
        )
    return out


def summary(use: KeyUse) -> str:
    """One line for a plan table or a key's evidence."""
    text = "; ".join(use.checked) or "nothing checked"
    if use.unchecked:
        text += "; NOT CHECKED: " + "; ".join(use.unchecked)
    return text[:4000]


def exceptions(keys: Iterable[tuple[str, KeyUse | None]]) -> list[CertificateException]:
    """A certificate exception per key whose blast radius was not fully checked at planning."""
    return [
        CertificateException(
            subject=uri,
            kind="key use not fully checked",
            description=(
                "destroying this key makes unreadable whatever else is encrypted under it; "
                "Sundown could not check: " + "; ".join(use.unchecked)
            )[:4000],
        )
        for uri, use in keys
        if use is not None and use.unchecked
    ]
