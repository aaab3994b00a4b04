"""OpenSSF Model Signing (OMS) v1.0 bundles: sign a model, verify it, offline.

A bundle is a sigstore bundle (JSON, media type ``application/vnd.dev.sigstore.bundle.v0.3+json``)
holding a DSSE envelope over an in-toto Statement v1 whose predicate type is
``https://model_signing/signature/v1.0``. The predicate lists every file of the model
(``resources``: name, ``sha256``, hex digest) sorted by path, and the statement's one subject is the
model's name with the SHA-256 over the concatenated raw resource digests. This is the format the
``model-signing`` package writes with ``model_signing sign key`` and reads with
``model_signing verify key``; ``docs/formats/signatures.md`` describes it field by field.

The API:

- :func:`hash_model` walks a model directory (or one file) the way ``model_signing`` does and
  returns ``{relative POSIX path: SHA-256}``, hashing files in parallel.
- :func:`sign_model` signs a directory; :func:`sign_digests` signs digests computed elsewhere
  (the envelope encryption hashes each file in its streaming pass, so nothing is read twice).
- :func:`verify_bundle` checks the signature and the bundle's consistency and returns the
  :class:`SignedModel` it vouches for; :func:`verify_model` also re-hashes the directory and
  raises :class:`~sundown.errors.IntegrityError` naming every changed, missing or unexpected file.
- :class:`PemSigner` is a :class:`~sundown.keys.Signer` over a PEM private key (the local keyring
  and Vault transit provide others). Signing only ever calls ``signer.sign(pae_bytes)``.

Only the ``files`` serialization with SHA-256 and ECDSA P-256 keys is supported; bundles made with
shards, BLAKE2/BLAKE3 or certificates are refused with :class:`~sundown.errors.UnsupportedError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sundown import dsse
from sundown.atomic import write_atomically
from sundown.errors import InputError, IntegrityError, UnsupportedError
from sundown.keys import Signer

PREDICATE_TYPE = "https://model_signing/signature/v1.0"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_COMPAT_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"

GIT_PATHS: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
"""Paths ``model_signing`` leaves out by default; Sundown does the same."""

DEFAULT_SIGNATURE_NAME = "model.sig"

_MAX_LISTED = 10  # names listed per category in a mismatch message


# --------------------------------------------------------------------------------------------
# Digests and paths


def sort_key(name: str) -> tuple[str, ...]:
    """Resource order of ``model_signing``: by path components, so ``a/b`` sorts before ``a.txt``
    (``pathlib.PurePosixPath`` ordering, not plain string ordering)."""
    return PurePosixPath(name).parts


def model_digest(resources: Mapping[str, bytes]) -> bytes:
    """The subject digest: SHA-256 over the raw resource digests in resource order."""
    h = hashlib.sha256()
    for name in sorted(resources, key=sort_key):
        h.update(resources[name])
    return h.digest()


def _check_name(name: str) -> str:
    """A resource name: a relative POSIX path inside the model (``.`` for a one-file model)."""
    if name == ".":
        return name
    p = PurePosixPath(name)
    if (
        not name
        or p.is_absolute()
        or str(p) != name
        or any(part in ("", ".", "..") for part in p.parts)
        or "\\" in name
        or "\0" in name
    ):
        raise InputError(f"resource name {name!r} is not a plain relative path inside the model")
    return name


def _normalise_digests(digests: Mapping[str, bytes | str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, value in digests.items():
        _check_name(name)
        raw: bytes
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raise InputError(f"digest of {name!r} is not hex") from None
        else:
            raw = bytes(value)
        if len(raw) != 32:
            raise InputError(f"digest of {name!r} is not a SHA-256 digest (32 bytes)")
        out[name] = raw
    return out


def hash_file(path: str | os.PathLike[str]) -> bytes:
    """SHA-256 of a file, streamed."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


def _relative_ignores(model_path: Path, paths: Iterable[str | os.PathLike[str]]) -> set[str]:
    """Ignore paths as relative POSIX paths inside the model; paths outside it are dropped
    (``model_signing`` does the same). Absolute paths are taken relative to the model."""
    root = model_path.resolve()
    out: set[str] = set()
    for p in paths:
        candidate = Path(p)
        if candidate.is_absolute():
            try:
                rel = candidate.resolve().relative_to(root)
            except ValueError:
                continue
        else:
            rel = Path(os.path.normpath(candidate))
        text = rel.as_posix()
        if text in ("", ".") or text.startswith("../") or text == "..":
            continue
        out.add(text)
    return out


def _ignored(name: str, ignores: Iterable[str]) -> bool:
    parts = PurePosixPath(name).parts
    for ignore in ignores:
        ip = PurePosixPath(ignore).parts
        if parts[: len(ip)] == ip:
            return True
    return False


def list_model_files(
    model_path: str | os.PathLike[str],
    *,
    ignore_paths: Iterable[str] = (),
    allow_symlinks: bool = False,
) -> dict[str, Path]:
    """``{resource name: file path}`` of every regular file in the model, minus ``ignore_paths``
    (relative POSIX paths; a directory hides everything below it). A model that is one file has
    the single resource ``.``, as in ``model_signing``.

    Symbolic links are refused unless ``allow_symlinks`` (then followed), and so is anything that
    is neither a file nor a directory."""
    root = Path(model_path)
    ignores = set(ignore_paths)
    if root.is_symlink() and not allow_symlinks:
        raise InputError(f"model path {str(root)!r} is a symbolic link")
    if root.is_file():
        return {".": root}
    if not root.is_dir():
        if not root.exists():
            raise FileNotFoundError(2, "No such file or directory", str(root))
        raise InputError(f"model path {str(root)!r} is neither a file nor a directory")
    files: dict[str, Path] = {}

    def on_error(exc: OSError) -> None:
        raise exc

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=allow_symlinks):
        base = Path(dirpath)
        for d in list(dirnames):
            rel = (base / d).relative_to(root).as_posix()
            if _ignored(rel, ignores):
                dirnames.remove(d)
            elif (base / d).is_symlink() and not allow_symlinks:
                raise InputError(f"{rel!r} in the model is a symbolic link (not allowed)")
        for f in filenames:
            path = base / f
            rel = path.relative_to(root).as_posix()
            if _ignored(rel, ignores):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                if not allow_symlinks:
                    raise InputError(f"{rel!r} in the model is a symbolic link (not allowed)")
                if not path.is_file():
                    raise InputError(f"{rel!r} in the model is a link to something not a file")
            elif not stat.S_ISREG(mode):
                raise InputError(f"{rel!r} in the model is not a regular file")
            files[rel] = path
    return files


def hash_model(
    model_path: str | os.PathLike[str],
    *,
    ignore_paths: Iterable[str] = (),
    allow_symlinks: bool = False,
    precomputed: Mapping[str, bytes | str] | None = None,
    workers: int | None = None,
) -> dict[str, bytes]:
    """``{resource name: SHA-256}`` for the model, in resource order. Files named in
    ``precomputed`` are not read again; a precomputed name that is not in the model is an
    :class:`InputError`. Files are hashed on ``workers`` threads (default: one per core)."""
    files = list_model_files(model_path, ignore_paths=ignore_paths, allow_symlinks=allow_symlinks)
    known = _normalise_digests(precomputed or {})
    stray = sorted(set(known) - set(files), key=sort_key)
    if stray:
        raise InputError(f"precomputed digests name files not in the model: {_names(stray)}")
    todo = [name for name in files if name not in known]
    n = workers or max(1, min(len(todo), os.cpu_count() or 1))
    if n > 1 and len(todo) > 1:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sundown-hash") as pool:
            computed = dict(zip(todo, pool.map(lambda k: hash_file(files[k]), todo), strict=True))
    else:
        computed = {name: hash_file(files[name]) for name in todo}
    merged = {**known, **computed}
    return {name: merged[name] for name in sorted(merged, key=sort_key)}


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------------------------
# Keys


def _public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    return dsse.load_public_key(pem)


def normalised_public_pem(pem: bytes) -> bytes:
    """The key re-encoded as SubjectPublicKeyInfo PEM, as ``cryptography`` writes it."""
    return _public_key(pem).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_hint(pem: bytes) -> str:
    """``verificationMaterial.publicKey.hint``: hex SHA-256 of the public key's PEM encoding
    (as ``model_signing`` computes it)."""
    return hashlib.sha256(normalised_public_pem(pem)).hexdigest()


def public_key_fingerprint(pem: bytes) -> str:
    """``sha256:<hex>`` over the DER SubjectPublicKeyInfo: a stable key identifier."""
    der = _public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


class PemSigner:
    """A :class:`~sundown.keys.Signer` over an ECDSA P-256 private key in PEM (PKCS#8 or SEC1)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, key_id: str | None = None):
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or (
            private_key.curve.name != "secp256r1"
        ):
            raise InputError("signing key is not an ECDSA P-256 private key")
        self._key = private_key
        self._key_id = key_id or public_key_fingerprint(self.public_key_pem())

    @classmethod
    def from_pem(
        cls, pem: bytes, *, key_id: str | None = None, password: bytes | None = None
    ) -> PemSigner:
        try:
            key = serialization.load_pem_private_key(pem, password)
        except (ValueError, TypeError) as exc:
            # The library's message never contains key bytes, but keep ours generic anyway.
            raise InputError(f"not a usable PEM private key ({type(exc).__name__})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InputError("signing key is not an ECDSA P-256 private key")
        return cls(key, key_id)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, password: bytes | None = None) -> PemSigner:
        pem = Path(path).read_bytes()
        try:
            return cls.from_pem(pem, password=password)
        except InputError as exc:
            raise InputError(f"{os.fspath(path)!r}: {exc}") from None

    @property
    def key_id(self) -> str:
        return self._key_id

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __repr__(self) -> str:
        return f"PemSigner(key_id={self._key_id!r})"


# --------------------------------------------------------------------------------------------
# Statement and bundle


@dataclass(frozen=True)
class SignedModel:
    """What a verified bundle vouches for."""

    name: str
    resources: Mapping[str, bytes]  # resource name -> SHA-256, in resource order
    ignore_paths: tuple[str, ...]
    allow_symlinks: bool
    digest: bytes  # the subject digest
    keyid: str  # the DSSE keyid the signer wrote (unauthenticated, informative)

    def check(self, actual: Mapping[str, bytes]) -> None:
        """IntegrityError naming every changed, missing and unexpected file, unless ``actual``
        (resource name -> SHA-256) equals the signed resources exactly."""
        changed = sorted(
            (n for n in self.resources if n in actual and actual[n] != self.resources[n]),
            key=sort_key,
        )
        missing = sorted((n for n in self.resources if n not in actual), key=sort_key)
        unexpected = sorted((n for n in actual if n not in self.resources), key=sort_key)
        problems = []
        if changed:
            problems.append(f"{len(changed)} changed ({_names(changed)})")
        if missing:
            problems.append(f"{len(missing)} missing ({_names(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} not signed ({_names(unexpected)})")
        if problems:
            raise IntegrityError(
                f"model {self.name!r} does not match its signature: " + "; ".join(problems)
            )


def statement_payload(
    model_name: str,
    digests: Mapping[str, bytes | str],
    *,
    ignore_paths: Iterable[str] = (),
    allow_symlinks: bool = False,
) -> bytes:
    """The in-toto Statement v1 (JSON bytes) that the DSSE envelope signs."""
    resources = _normalise_digests(digests)
    if not resources:
        raise InputError(f"model {model_name!r} has no files to sign")
    serialization_args: dict[str, Any] = {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": allow_symlinks,
    }
    ignores = sorted(set(ignore_paths))
    if ignores:
        serialization_args["ignore_paths"] = ignores
    order = sorted(resources, key=sort_key)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": model_digest(resources).hex()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": serialization_args,
            "resources": [
                {"name": n, "algorithm": "sha256", "digest": resources[n].hex()} for n in order
            ],
        },
    }
    return json.dumps(statement, indent=2, ensure_ascii=False).encode("utf-8")


def sign_digests(
    model_name: str,
    digests: Mapping[str, bytes | str],
    signer: Signer,
    *,
    ignore_paths: Iterable[str] = (),
    allow_symlinks: bool = False,
) -> bytes:
    """A bundle (JSON bytes) over ``digests`` (resource name -> SHA-256, raw or hex), computed
    by the caller, e.g. in the encryption pass. Names are relative POSIX paths."""
    if not model_name:
        raise InputError("model name is empty")
    payload = statement_payload(
        model_name, digests, ignore_paths=ignore_paths, allow_symlinks=allow_symlinks
    )
    envelope = dsse.sign(dsse.INTOTO_PAYLOAD_TYPE, payload, signer)
    signature = envelope.to_json()["signatures"]
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": public_key_hint(signer.public_key_pem())},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": dsse.INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": s["sig"], "keyid": s["keyid"]} for s in signature],
        },
    }
    return json.dumps(bundle, separators=(",", ":")).encode("utf-8")


def model_name_of(model_path: str | os.PathLike[str]) -> str:
    """The subject name ``model_signing`` uses: the final component of the model path."""
    p = Path(model_path)
    return p.name if p.name and p.name != ".." else p.resolve().name


def default_ignores(
    model_path: str | os.PathLike[str],
    *,
    signature_path: str | os.PathLike[str] | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_git_paths: bool = True,
) -> list[str]:
    """The ignore list recorded in the bundle: the git paths (by default), the signature file
    when it lies inside the model, and ``ignore_paths``; relative to the model."""
    extra: list[str | os.PathLike[str]] = list(ignore_paths)
    if signature_path is not None:
        extra.append(Path(signature_path).resolve())
    out = _relative_ignores(Path(model_path), extra)
    if ignore_git_paths:
        out.update(GIT_PATHS)
    return sorted(out)


def sign_model(
    model_path: str | os.PathLike[str],
    signer: Signer,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_git_paths: bool = True,
    allow_symlinks: bool = False,
    digests: Mapping[str, bytes | str] | None = None,
    model_name: str | None = None,
) -> bytes:
    """A bundle (JSON bytes) over the model at ``model_path`` (a directory or one file).

    ``signature_path`` is where the bundle will be written; when inside the model it is left
    out, like the git paths (unless ``ignore_git_paths=False``) and ``ignore_paths``.
    ``digests`` are SHA-256 digests already computed for some or all files (not read again)."""
    ignores = default_ignores(
        model_path,
        signature_path=signature_path,
        ignore_paths=ignore_paths,
        ignore_git_paths=ignore_git_paths,
    )
    resources = hash_model(
        model_path, ignore_paths=ignores, allow_symlinks=allow_symlinks, precomputed=digests
    )
    return sign_digests(
        model_name or model_name_of(model_path),
        resources,
        signer,
        ignore_paths=ignores,
        allow_symlinks=allow_symlinks,
    )


def write_bundle(path: str | os.PathLike[str], bundle: bytes) -> None:
    """Write a bundle atomically (temporary file, fsync, rename)."""
    write_atomically(Path(path), [bundle])


# --------------------------------------------------------------------------------------------
# Verification


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise IntegrityError(f"malformed signature bundle: {what} is not a JSON object")
    return value


def _field(obj: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        raise IntegrityError(
            f"malformed signature bundle: {what}.{key} missing or not {kind.__name__}"
        )
    return value


def _b64(text: str, what: str) -> bytes:
    """Strict base64: a non-canonical encoding (e.g. altered padding bits) is refused too."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityError(f"malformed signature bundle: {what} is not base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise IntegrityError(f"malformed signature bundle: {what} is not canonical base64")
    return raw


# Fields a key-based bundle may carry, per object. Anything else is refused, so that a change
# anywhere in the bundle fails verification. Only the DSSE ``keyid`` is neither signed nor
# checked (model_signing writes "", Sundown the signer's key id).
_ALLOWED = {
    "the bundle": {"mediaType", "verificationMaterial", "dsseEnvelope"},
    "verificationMaterial": {"publicKey", "tlogEntries", "timestampVerificationData"},
    "verificationMaterial.publicKey": {"hint", "rawBytes", "keyDetails"},
    "dsseEnvelope": {"payload", "payloadType", "signatures"},
    "dsseEnvelope.signatures[0]": {"sig", "keyid"},
}


def _strict(obj: Any, what: str) -> dict[str, Any]:
    value = _obj(obj, what)
    unknown = sorted(set(value) - _ALLOWED[what])
    if unknown:
        raise IntegrityError(
            f"malformed signature bundle: unexpected field(s) in {what}: {unknown}"
        )
    return value


def verify_bundle(bundle: bytes | str, public_key_pem: bytes) -> SignedModel:
    """Check the bundle's signature with ``public_key_pem`` and its internal consistency; return
    what it vouches for. IntegrityError for any alteration or the wrong key; UnsupportedError for
    valid bundles of a kind Sundown does not verify (shards, BLAKE, certificates)."""
    _public_key(public_key_pem)  # InputError if it is not a P-256 public key
    try:
        doc = json.loads(bundle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"signature bundle is not JSON ({exc})") from None
    doc = _strict(doc, "the bundle")
    media_type = doc.get("mediaType")
    if media_type != BUNDLE_MEDIA_TYPE:
        raise IntegrityError(
            f"signature bundle has media type {media_type!r}, expected {BUNDLE_MEDIA_TYPE!r}"
        )
    material = _obj(doc.get("verificationMaterial"), "verificationMaterial")
    if {"certificate", "x509CertificateChain"} & set(material):
        raise UnsupportedError(
            "signature bundle is signed with a certificate; Sundown verifies key-based bundles "
            "only (use model_signing verify certificate)"
        )
    material = _strict(material, "verificationMaterial")
    if "publicKey" not in material:
        raise IntegrityError("malformed signature bundle: verificationMaterial has no publicKey")
    if not isinstance(material.get("tlogEntries", []), list):
        raise IntegrityError("malformed signature bundle: tlogEntries is not a list")
    hint = _strict(material["publicKey"], "verificationMaterial.publicKey").get("hint")
    if hint is not None:
        expected = public_key_hint(public_key_pem)
        if hint != expected:
            raise IntegrityError(
                "signature bundle was made with a different public key "
                f"(bundle names key hint {str(hint)[:64]!r}, the given key's hint is {expected})"
            )
    env = _strict(doc.get("dsseEnvelope"), "dsseEnvelope")
    payload_type = _field(env, "payloadType", str, "dsseEnvelope")
    payload = _b64(_field(env, "payload", str, "dsseEnvelope"), "dsseEnvelope.payload")
    sigs = _field(env, "signatures", list, "dsseEnvelope")
    if len(sigs) != 1:
        raise IntegrityError(
            f"signature bundle has {len(sigs)} DSSE signatures; an OMS bundle has exactly one"
        )
    sig = _strict(sigs[0], "dsseEnvelope.signatures[0]")
    raw_sig = _b64(_field(sig, "sig", str, "dsseEnvelope.signatures[0]"), "signature")
    keyid = sig.get("keyid") or ""
    if not isinstance(keyid, str):
        raise IntegrityError("malformed signature bundle: keyid is not a string")
    envelope = dsse.Envelope(payload_type, payload, ((keyid, raw_sig),))
    dsse.verify(envelope, public_key_pem)  # IntegrityError on a bad signature or wrong key
    if payload_type != dsse.INTOTO_PAYLOAD_TYPE:
        raise IntegrityError(f"DSSE payload type is {payload_type!r}, not in-toto JSON")
    return _parse_statement(payload, keyid)


def _parse_statement(payload: bytes, keyid: str) -> SignedModel:
    try:
        st = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"signed payload is not JSON ({exc})") from None
    st = _obj(st, "the statement")
    if st.get("_type") != STATEMENT_TYPE:
        raise IntegrityError(f"signed payload is not an in-toto Statement v1 ({st.get('_type')!r})")
    predicate_type = st.get("predicateType")
    if predicate_type == _COMPAT_PREDICATE_TYPE:
        raise UnsupportedError(
            "signature uses the pre-1.0 model_signing format (Digests/v0.1); re-sign the model"
        )
    if predicate_type != PREDICATE_TYPE:
        raise InputError(f"signed statement is not a model signature ({predicate_type!r})")
    subjects = _field(st, "subject", list, "statement")
    if len(subjects) != 1:
        raise IntegrityError(f"model signature has {len(subjects)} subjects, expected one")
    subject = _obj(subjects[0], "subject")
    name = _field(subject, "name", str, "subject")
    subject_digest = _obj(subject.get("digest"), "subject.digest").get("sha256")
    predicate = _obj(st.get("predicate"), "predicate")
    ser = _obj(predicate.get("serialization"), "predicate.serialization")
    method, hash_type = ser.get("method"), ser.get("hash_type")
    if method != "files" or hash_type != "sha256":
        raise UnsupportedError(
            f"model signed with serialization {method!r}/{hash_type!r}; Sundown verifies "
            "'files'/'sha256' only (use model_signing verify for others)"
        )
    allow_symlinks = ser.get("allow_symlinks", False)
    if not isinstance(allow_symlinks, bool):
        raise IntegrityError("malformed model signature: allow_symlinks is not a boolean")
    ignores = ser.get("ignore_paths", [])
    if not isinstance(ignores, list) or not all(isinstance(i, str) for i in ignores):
        raise IntegrityError("malformed model signature: ignore_paths is not a list of strings")
    resources: dict[str, bytes] = {}
    h = hashlib.sha256()
    for item in _field(predicate, "resources", list, "predicate"):
        item = _obj(item, "resource")
        rname = _field(item, "name", str, "resource")
        if item.get("algorithm") != "sha256":
            raise UnsupportedError(f"resource {rname!r} uses {item.get('algorithm')!r}, not sha256")
        try:
            digest = bytes.fromhex(_field(item, "digest", str, "resource"))
            _check_name(rname)
        except (ValueError, InputError) as exc:
            raise IntegrityError(f"malformed model signature: resource {rname!r}: {exc}") from None
        if len(digest) != 32:
            raise IntegrityError(f"malformed model signature: digest of {rname!r} is not SHA-256")
        if rname in resources:
            raise IntegrityError(f"malformed model signature: {rname!r} is listed twice")
        resources[rname] = digest
        h.update(digest)
    if not isinstance(subject_digest, str) or h.hexdigest() != subject_digest:
        raise IntegrityError(
            "model signature is inconsistent: the subject digest does not match the resources"
        )
    ordered = {n: resources[n] for n in sorted(resources, key=sort_key)}
    return SignedModel(
        name=name,
        resources=ordered,
        ignore_paths=tuple(ignores),
        allow_symlinks=allow_symlinks,
        digest=bytes.fromhex(subject_digest),
        keyid=keyid,
    )


def verify_model(
    model_path: str | os.PathLike[str],
    bundle: bytes | str,
    public_key_pem: bytes,
    *,
    signature_path: str | os.PathLike[str] | None = None,
    digests: Mapping[str, bytes | str] | None = None,
) -> SignedModel:
    """Verify the bundle, then re-hash the model and compare, file by file.

    Left out of the comparison: the paths the bundle itself lists as ignored (the signer's
    choice, covered by the signature) and the signature file when it lies inside the model.
    ``digests`` are already-computed SHA-256 digests of some files (e.g. from decryption)."""
    signed = verify_bundle(bundle, public_key_pem)
    root = Path(model_path)
    ignores = _relative_ignores(root, signed.ignore_paths)
    if signature_path is not None:
        ignores |= _relative_ignores(root, [Path(signature_path).resolve()])
    actual = hash_model(
        root, ignore_paths=ignores, allow_symlinks=signed.allow_symlinks, precomputed=digests
    )
    signed.check(actual)
    return signed
