"""Value checks of the system spec: store and key URLs, names, one-line texts, Vault paths,
access-key ids, and the overlap notes the model's validators print. Each is a function that
returns the value or raises ``ValueError`` naming the problem (pydantic turns it into a located
error), and an ``Annotated`` type that applies it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
)

from sundown.store_url import (
    BUCKET_RULES,
    CONTROL,
    parse_store_url,
    real_store_url,
    split_scheme,
    urls_overlap,
)


def overlap_note(a: str, b: str) -> str | None:
    """None when ``a`` and ``b`` do not overlap; "" when their text does; otherwise a note
    naming the resolved paths through which they do (file:// through symbolic links)."""
    if urls_overlap(a, b):
        return ""
    ra, rb = real_store_url(a), real_store_url(b)
    if urls_overlap(ra, rb):
        return f" (through symbolic links: {ra.url} and {rb.url})"
    return None


def paths_overlap(a: str, b: str) -> bool:
    """Path-boundary overlap of two ``/``-separated paths (Vault lease prefixes, KV paths)."""
    pa, pb = a.strip("/").split("/"), b.strip("/").split("/")
    n = min(len(pa), len(pb))
    return pa[:n] == pb[:n]


def _store_url(value: str) -> str:
    return parse_store_url(value).url


KEY_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# Cloud KMS keys as a spec names them: by their full, stable name (never an alias, which may
# later point at another key: the sidecars, the plan and the certificate record this name).
CLOUD_KEY_FORMS = {
    "aws-kms": (
        re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}$"),
        "aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID (a key ARN; an alias may be repointed)",
    ),
    "gcp-kms": (
        re.compile(
            r"^projects/[a-z0-9-]{1,63}/locations/[a-z0-9-]{1,63}/keyRings/[A-Za-z0-9_-]{1,63}"
            r"/cryptoKeys/[A-Za-z0-9_-]{1,63}$"
        ),
        "gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K",
    ),
    "azure-kv": (
        re.compile(
            r"^[A-Za-z0-9-]{3,24}\.vault\.(azure\.net|azure\.cn|usgovcloudapi\.net)"
            r"/keys/[A-Za-z0-9-]{1,127}$"
        ),
        "azure-kv://VAULT.vault.azure.net/keys/NAME",
    ),
}
# Key services whose deletion waits a window the spec chooses (keys.pending_days).
PENDING_DAYS_SCHEMES = ("aws-kms",)


def _key_uri(value: str, *, signing: bool) -> str:
    what = "signing key URI" if signing else "key URI"
    schemes = ("vault", "local", "file") if signing else ("vault", "local")
    scheme, rest = split_scheme(value, (*schemes, *CLOUD_KEY_FORMS), what)
    if scheme in CLOUD_KEY_FORMS:
        form, text = CLOUD_KEY_FORMS[scheme]
        if not form.match(rest):
            raise ValueError(f"{what} {value!r} is not of the form {text}")
        return f"{scheme}://{rest}"
    if scheme == "file":
        return parse_store_url(value, what).url
    rest = rest.rstrip("/")
    segments = rest.split("/") if rest else []
    if scheme == "vault" and len(segments) < 2:
        raise ValueError(f"{what} {value!r} must be vault://MOUNT/KEY (a mount and a key name)")
    if not segments:
        raise ValueError(f"{what} {value!r} must be local://NAME")
    for seg in segments:
        if seg in ("", ".", "..") or not KEY_SEGMENT.match(seg):
            raise ValueError(
                f"{what} {value!r}: segment {seg!r} is invalid (letters, digits, '_', '.', '-'; "
                "no empty, '.' or '..' segments)"
            )
    return f"{scheme}://{'/'.join(segments)}"


_AWS_KMS_KEY_ARN = re.compile(
    r"^aws-kms://arn:aws[a-z-]*:kms:[a-z0-9-]{1,32}:[0-9]{12}:key/[A-Za-z0-9-]{1,128}$"
)
_GCP_KMS_KEY = re.compile(
    r"^gcp-kms://projects/[a-z0-9-]{1,63}/locations/[a-z0-9-]{1,63}/keyRings/[A-Za-z0-9_-]{1,63}"
    r"/cryptoKeys/[A-Za-z0-9_-]{1,63}$"
)


def _storage_key_uri(value: str) -> str:
    """A customer-managed key that stores encrypt under server-side: an AWS KMS key by its key
    ARN, or a Cloud KMS crypto key by its resource name. Never an alias: the key is destroyed
    at retirement and compared exactly with what each store reports, and an alias can be
    re-pointed between planning and destruction."""
    if _AWS_KMS_KEY_ARN.match(value) or _GCP_KMS_KEY.match(value):
        return value
    if value.startswith("aws-kms://") and "alias/" in value:
        raise ValueError(
            f"{value!r} is an alias: name the storage key by its key ARN "
            "(aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID); an alias can be re-pointed between "
            "planning and destruction"
        )
    raise ValueError(
        f"{value!r} is not a server-side storage key: expected "
        "aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID or "
        "gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K (Azure encryption scopes "
        "cannot be matched to their key from the blob API: docs/known-gaps.md)"
    )


# --------------------------------------------------------------------------------------------
# Field types

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")


def _safe_name(value: str) -> str:
    if not _NAME.match(value) or "--" in value:
        raise ValueError(
            f"{value!r} is not a safe identifier: 2-63 characters, lowercase letters, digits and "
            "single '-', starting with a letter and ending with a letter or digit"
        )
    return value


def _one_line(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if CONTROL.search(value.replace("\\", "")) or "\n" in value:
        raise ValueError("must be one line of text without control characters")
    return value


def vault_path(value: str) -> str:
    if value != value.strip() or not value.strip("/"):
        raise ValueError("must be a non-empty Vault path without surrounding spaces")
    if value.startswith("/"):
        raise ValueError(f"{value!r} must be relative (no leading '/')")
    for seg in value.rstrip("/").split("/"):
        if seg in ("", ".", "..") or not KEY_SEGMENT.match(seg):
            raise ValueError(
                f"{value!r}: segment {seg!r} is invalid (letters, digits, '_', '.', '-'; no "
                "empty, '.' or '..' segments)"
            )
    return value.rstrip("/")


def _lease_prefix(value: str) -> str:
    value = vault_path(value)
    if len(value.split("/")) < 2:
        raise ValueError(
            f"lease prefix {value!r} would revoke every lease of the mount; name at least "
            "MOUNT/PATH (e.g. aws/creds/ROLE)"
        )
    return value


_VAULT_TOKEN = re.compile(r"^(hv[sbr]|[sbr])\.")
_ACCESSOR = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


def _accessor(value: str) -> str:
    # Never echo the value: someone may have pasted a token instead of its accessor.
    if _VAULT_TOKEN.match(value):
        raise ValueError(
            "looks like a Vault token, not an accessor (it starts like 'hvs.'); never put a "
            "token in a spec: revoke it and use its accessor (vault token lookup -accessor)"
        )
    if not _ACCESSOR.match(value):
        raise ValueError("is not an accessor (8-128 letters, digits, '.', '_' or '-')")
    return value


def _matching(pattern: str, problem: str) -> Callable[[str], str]:
    """A validator: the value when ``pattern`` matches it, else ValueError(``problem``)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(problem)
        return value

    return check


_aws_key_id = _matching(
    r"^[A-Z0-9]{16,128}$",
    "is not an AWS access key id (16-128 uppercase letters and digits, e.g. AKIA...); "
    "never put a secret access key in a spec",
)
_hmac_access_id = _matching(
    r"^[A-Za-z0-9]{8,128}$",
    "is not a GCS HMAC access id (letters and digits, e.g. GOOG1E...); never put an "
    "HMAC secret in a spec",
)


def container_name(value: str) -> str:
    rule, text = BUCKET_RULES["az"]
    if not rule.match(value):
        raise ValueError(f"container name {value!r} is invalid ({text})")
    return value


Name = Annotated[str, AfterValidator(_safe_name)]
Text = Annotated[str, Field(max_length=200), AfterValidator(_one_line)]
Label = Annotated[str, Field(max_length=64), AfterValidator(_one_line)]
StoreURL = Annotated[str, AfterValidator(_store_url)]
KeyURI = Annotated[str, AfterValidator(lambda v: _key_uri(v, signing=False))]
SigningKeyURI = Annotated[str, AfterValidator(lambda v: _key_uri(v, signing=True))]
StorageKeyURI = Annotated[str, AfterValidator(_storage_key_uri)]
VaultPath = Annotated[str, AfterValidator(vault_path)]
LeasePrefix = Annotated[str, AfterValidator(_lease_prefix)]
Accessor = Annotated[str, AfterValidator(_accessor)]
AwsKeyId = Annotated[str, AfterValidator(_aws_key_id)]
HmacAccessId = Annotated[str, AfterValidator(_hmac_access_id)]
Days = Annotated[int, Field(ge=1, le=36500)]


class SpecModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
