"""The local keyring: key-encryption keys and signing keys in files, ``local://NAME``.

The embedded default key service: no server, keys under ``$SUNDOWN_HOME/keys/NAME/`` (default
``~/.sundown``). A key is either

- a *key-encryption key* (KEK, AES-256-GCM, numbered versions): it wraps fresh 32-byte data keys
  for the envelope format, rotates (the new version wraps, older versions still unwrap until
  retired), retires old versions (raises the minimum decryption version and deletes them), and is
  destroyed by cryptographic erase; or
- a *signing key* (ECDSA P-256, one version), used for model signatures and certificates.

Layout, file modes and what destroying a file on a journaling or copy-on-write filesystem does
and does not guarantee: ``docs/keyring.md``.

Nothing is cached: every operation reads the key files again, so a rotated, retired or destroyed
version cannot live on in memory. No message, repr or return value for display holds key
material.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sundown.atomic import fsync_dir, write_atomically
from sundown.errors import (
    ConflictError,
    InputError,
    IntegrityError,
    KeyDestroyedError,
    NotFoundError,
    SundownError,
    UnsupportedError,
)
from sundown.keys import KeyDestruction, KeyInfo, WrappedKey
from sundown.signing import public_key_fingerprint

SCHEME = "local://"
FORMAT = 1
KEK_ALGORITHM = "aes256-gcm96"
SIGNING_ALGORITHM = "ecdsa-p256"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_META = "key.json"
_SENTINEL = "sentinel.json"
_TOMBSTONE = "DESTROYED.json"
_LOCK = ".lock"
_SIGNING_FILE = "signing.pem"
_WRAP_PREFIX = b"\x01"  # format byte of a wrapped DEK: 0x01 || nonce(12) || AES-GCM(dek) || tag
_NONCE = 12
_DEK_BYTES = 32

# What unlinking a key file does not guarantee (docs/keyring.md), stated on the evidence.
LIMITS = (
    "key files were overwritten once and unlinked through the filesystem: on journaling, "
    "copy-on-write, log-structured or flash storage the old blocks may survive, and snapshots, "
    "backups and copies of $SUNDOWN_HOME made earlier are not reached; this is not a media "
    "sanitization of the disk (docs/keyring.md)"
)


# --------------------------------------------------------------------------------------------
# Paths and files


def home() -> Path:
    """``$SUNDOWN_HOME``, or ``~/.sundown`` when unset (read at each call)."""
    value = os.environ.get("SUNDOWN_HOME", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".sundown"


def parse_uri(uri: str) -> str:
    """The key name of ``local://NAME``; InputError for anything else."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise InputError(f"not a local keyring URI: {uri!r} (expected local://NAME)")
    name = uri[len(SCHEME) :]
    if not _NAME.fullmatch(name) or name.endswith(".tmp"):
        raise InputError(
            f"bad key name in {uri!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _keys_dir() -> Path:
    base = home()
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    root = base / "keys"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def _key_dir(name: str) -> Path:
    return home() / "keys" / name


def _version_file(version: int) -> str:
    return f"v{version}.key"


def _write_file(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600. ``replace=False`` fails with
    FileExistsError if ``path`` exists."""
    write_atomically(path, [data], overwrite=replace, mode=0o600)


def _write_json(path: Path, obj: dict[str, Any], *, replace: bool = True) -> None:
    _write_file(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), replace=replace)


def _read_private(path: Path, uri: str) -> bytes:
    """Read a key file, refusing one that other users can read or write."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InputError(f"{uri}: cannot open key file {path.name} ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & 0o077:
            raise InputError(
                f"{uri}: key file {path} is accessible by other users "
                f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 on it"
            )
        return f.read()


def _shred(path: Path) -> bool:
    """Overwrite a file with random bytes (fsync) and unlink it. Best effort: see docs/keyring.md
    for what this cannot reach. Returns True when the file existed."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        os.pwrite(fd, secrets.token_bytes(size), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()
    return True


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# --------------------------------------------------------------------------------------------
# Wrapping


def _aad(uri: str, version: int) -> bytes:
    """Associated data of a wrapped DEK: binds it to the key URI and version."""
    return b"sundown.keyring.v1\x00" + uri.encode() + b"\x00" + str(version).encode()


def _wrap(kek: bytes, uri: str, version: int, dek: bytes) -> WrappedKey:
    nonce = secrets.token_bytes(_NONCE)
    ct = AESGCM(kek).encrypt(nonce, dek, _aad(uri, version))
    return WrappedKey(key_uri=uri, key_version=version, ciphertext=_WRAP_PREFIX + nonce + ct)


def _unwrap(kek: bytes, wrapped: WrappedKey) -> bytes:
    blob = wrapped.ciphertext
    if len(blob) != 1 + _NONCE + _DEK_BYTES + 16 or blob[:1] != _WRAP_PREFIX:
        raise IntegrityError(
            f"wrapped data key for {wrapped.key_uri} v{wrapped.key_version} is malformed"
        )
    try:
        return AESGCM(kek).decrypt(
            blob[1 : 1 + _NONCE], blob[1 + _NONCE :], _aad(wrapped.key_uri, wrapped.key_version)
        )
    except InvalidTag:
        raise IntegrityError(
            f"wrapped data key does not unwrap under {wrapped.key_uri} v{wrapped.key_version}: "
            "altered, or wrapped by another key"
        ) from None


def _wrapped_to_json(w: WrappedKey) -> dict[str, Any]:
    return {
        "key_uri": w.key_uri,
        "key_version": w.key_version,
        "ciphertext": base64.b64encode(w.ciphertext).decode("ascii"),
    }


def _wrapped_from_json(obj: Any) -> WrappedKey:
    try:
        return WrappedKey(
            key_uri=str(obj["key_uri"]),
            key_version=int(obj["key_version"]),
            ciphertext=base64.b64decode(obj["ciphertext"], validate=True),
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise IntegrityError(f"malformed sentinel record ({type(exc).__name__})") from None


# --------------------------------------------------------------------------------------------
# The key


class LocalKey:
    """A key in the local keyring: :class:`~sundown.keys.KeyService` for a KEK,
    :class:`~sundown.keys.Signer` for a signing key (``info`` and ``destroy`` work for both)."""

    def __init__(self, uri: str):
        self._name = parse_uri(uri)
        self._uri = SCHEME + self._name
        self._dir = _key_dir(self._name)

    def __repr__(self) -> str:
        return f"LocalKey({self._uri!r})"

    @property
    def uri(self) -> str:
        return self._uri

    # -- state ---------------------------------------------------------------------------------

    def _tombstone(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self._dir / _TOMBSTONE).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            data = {}
        return data if isinstance(data, dict) else {}

    def _meta(self) -> dict[str, Any]:
        """The metadata; NotFoundError / KeyDestroyedError when the key is not usable."""
        tomb = self._tombstone()
        if tomb is not None:
            when = tomb.get("destroyed_at", "an unknown time")
            raise KeyDestroyedError(f"{self._uri} was destroyed at {when}")
        try:
            meta = json.loads((self._dir / _META).read_bytes())
        except FileNotFoundError:
            raise NotFoundError(f"no key {self._uri} in {self._dir.parent}") from None
        except (OSError, ValueError) as exc:
            raise IntegrityError(f"{self._uri}: unreadable key metadata ({exc})") from None
        if (
            not isinstance(meta, dict)
            or meta.get("format") != FORMAT
            or meta.get("uri") != self._uri
        ):
            raise IntegrityError(f"{self._uri}: key metadata does not belong to this key")
        return meta

    def _kek_meta(self) -> dict[str, Any]:
        meta = self._meta()
        if meta["kind"] != "kek":
            raise InputError(f"{self._uri} is a signing key; it cannot wrap data keys")
        return meta

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the key directory for read-modify-write operations."""
        try:
            fd = os.open(self._dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            raise NotFoundError(f"no key {self._uri} in {self._dir.parent}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load_kek(self, version: int) -> bytes:
        try:
            kek = _read_private(self._dir / _version_file(version), self._uri)
        except FileNotFoundError:
            if self._tombstone() is not None:
                raise KeyDestroyedError(f"{self._uri} was destroyed") from None
            raise NotFoundError(f"{self._uri} v{version}: key file missing") from None
        if len(kek) != 32:
            raise IntegrityError(f"{self._uri} v{version}: key file is not a 256-bit key")
        return kek

    def _load_signing_key(self) -> ec.EllipticCurvePrivateKey:
        try:
            pem = _read_private(self._dir / _SIGNING_FILE, self._uri)
        except FileNotFoundError:
            if self._tombstone() is not None:
                raise KeyDestroyedError(f"{self._uri} was destroyed") from None
            raise NotFoundError(f"{self._uri}: signing key file missing") from None
        try:
            key = serialization.load_pem_private_key(pem, None)
        except (ValueError, TypeError):
            raise IntegrityError(f"{self._uri}: signing key file is corrupt") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise IntegrityError(f"{self._uri}: signing key file is not an ECDSA P-256 key")
        return key

    # -- KeyService ----------------------------------------------------------------------------

    def info(self) -> KeyInfo:
        meta = self._meta()
        latest, minimum = int(meta["latest_version"]), int(meta["min_decryption_version"])
        return KeyInfo(
            uri=self._uri,
            kind=meta["kind"],
            algorithm=meta["algorithm"],
            latest_version=latest,
            min_decryption_version=minimum,
            versions=tuple(range(minimum, latest + 1)),
        )

    def new_data_key(self) -> tuple[bytes, WrappedKey]:
        meta = self._kek_meta()
        version = int(meta["latest_version"])
        dek = secrets.token_bytes(_DEK_BYTES)
        return dek, _wrap(self._load_kek(version), self._uri, version, dek)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        meta = self._kek_meta()
        if wrapped.key_uri != self._uri:
            raise IntegrityError(
                f"wrapped data key belongs to {wrapped.key_uri!r}, not to {self._uri}"
            )
        version = wrapped.key_version
        latest, minimum = int(meta["latest_version"]), int(meta["min_decryption_version"])
        if not 1 <= version <= latest:
            raise IntegrityError(f"{self._uri} has no version {version} (latest is {latest})")
        if version < minimum:
            raise NotFoundError(
                f"{self._uri} v{version} was retired (minimum decryption version is {minimum})"
            )
        return _unwrap(self._load_kek(version), wrapped)

    def rewrap(self, wrapped: Sequence[WrappedKey]) -> list[WrappedKey]:
        meta = self._kek_meta()
        latest = int(meta["latest_version"])
        kek = self._load_kek(latest)
        return [_wrap(kek, self._uri, latest, self.unwrap(w)) for w in wrapped]

    def rotate(self) -> int:
        with self._locked():
            meta = self._meta()
            if meta["kind"] != "kek":
                raise UnsupportedError(
                    f"{self._uri} is a signing key; signing keys are not rotated in place: "
                    "create a new key and publish its public key"
                )
            sentinel_dek = self._sentinel_dek()
            version = int(meta["latest_version"]) + 1
            kek = secrets.token_bytes(32)
            # A file for this version can only be left over from a rotation that crashed before
            # the metadata named it, so nothing was ever wrapped under it: replace it.
            _write_file(self._dir / _version_file(version), kek, replace=True)
            self._write_sentinel(_wrap(kek, self._uri, version, sentinel_dek))
            meta["latest_version"] = version
            meta["rotated_at"] = _now().isoformat()
            _write_json(self._dir / _META, meta)
            return version

    def retire_versions_below(self, version: int) -> None:
        with self._locked():
            meta = self._kek_meta()
            latest, minimum = int(meta["latest_version"]), int(meta["min_decryption_version"])
            if not 1 <= version <= latest:
                raise InputError(
                    f"cannot retire versions below {version} of {self._uri}: versions are "
                    f"1..{latest} and the latest version must stay"
                )
            if version <= minimum:
                return  # already retired: idempotent
            # Raise the minimum first, so a crash between the steps fails closed.
            meta["min_decryption_version"] = version
            _write_json(self._dir / _META, meta)
            for v in range(1, version):
                _shred(self._dir / _version_file(v))
            fsync_dir(self._dir)

    # -- sentinel ------------------------------------------------------------------------------

    def _read_sentinel(self) -> WrappedKey:
        try:
            return _wrapped_from_json(json.loads((self._dir / _SENTINEL).read_bytes()))
        except (FileNotFoundError, ValueError):
            raise IntegrityError(f"{self._uri}: sentinel record missing or unreadable") from None

    def _write_sentinel(self, wrapped: WrappedKey) -> None:
        _write_json(self._dir / _SENTINEL, _wrapped_to_json(wrapped))

    def _sentinel_dek(self) -> bytes:
        sentinel = self._read_sentinel()
        return _unwrap(self._load_kek(sentinel.key_version), sentinel)

    # -- Signer --------------------------------------------------------------------------------

    @property
    def key_id(self) -> str:
        """``local://NAME#sha256:<hex of the DER public key>``."""
        return f"{self._uri}#{public_key_fingerprint(self.public_key_pem())}"

    def sign(self, message: bytes) -> bytes:
        return self._load_signing_key().sign(message, ec.ECDSA(hashes.SHA256()))

    def public_key_pem(self) -> bytes:
        meta = self._meta()
        if meta["kind"] != "signing":
            raise InputError(f"{self._uri} is a key-encryption key; it has no public key")
        return (
            self._load_signing_key()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    # -- destroy -------------------------------------------------------------------------------

    def destroy(self) -> KeyDestruction:
        """Cryptographic erase: overwrite and delete every key file, then prove the key unusable.

        Idempotent: on a destroyed key, or one whose destruction stopped halfway (tombstone
        written, key files still there), it finishes the deletion and returns the evidence
        again, with the original time. The evidence is read from the key directory itself, not
        from the tombstone: ``verified`` only when no key file remains and the sentinel no
        longer unwraps. A file that cannot be removed is reported, never skipped."""
        with self._locked():
            tomb = self._tombstone()
            if tomb is None:
                tomb = self._begin_destroy()
            errors: list[str] = []
            for entry in sorted(self._dir.iterdir()):
                if self._bookkeeping(entry):
                    continue
                try:
                    if entry.is_symlink():
                        entry.unlink()
                    elif entry.is_file():
                        _shred(entry)
                    # Anything else (a directory, a FIFO) is not a file this keyring writes:
                    # it stays, and the evidence below names it as remaining.
                except OSError as exc:
                    errors.append(f"{entry.name}: {exc.strerror or type(exc).__name__}")
            try:
                fsync_dir(self._dir)
            except OSError as exc:
                errors.append(f"directory fsync: {exc.strerror or type(exc).__name__}")
            evidence = self._material_evidence(tomb)
            if errors:
                checks = dict(evidence.checks)
                checks["removal errors"] = "; ".join(errors)[:2000]
                evidence = replace(evidence, checks=checks, verified=False)
            return evidence

    def verify_destroyed(self) -> KeyDestruction:
        """The proof again, from the key directory, deleting nothing (see :meth:`destroy`)."""
        tomb = self._tombstone()
        if tomb is None and self._dir.is_dir():
            tomb = {}  # no tombstone: whatever is there is a live (or restored) key
        return self._material_evidence(tomb or {})

    def _bookkeeping(self, entry: Path) -> bool:
        """The tombstone, and the lock file while it is an empty regular file: the only entries
        of a destroyed key's directory that are not key material."""
        if entry.name == _TOMBSTONE:
            return entry.is_file() and not entry.is_symlink()
        if entry.name == _LOCK:
            try:
                st = entry.lstat()
            except FileNotFoundError:
                return True
            return stat.S_ISREG(st.st_mode) and st.st_size == 0
        return False

    def _begin_destroy(self) -> dict[str, Any]:
        meta = self._meta()
        kind = meta["kind"]
        latest, minimum = int(meta["latest_version"]), int(meta["min_decryption_version"])
        record: dict[str, Any] = {
            "format": FORMAT,
            "uri": self._uri,
            "kind": kind,
            "algorithm": meta["algorithm"],
            "versions_destroyed": list(range(minimum, latest + 1)),
            "versions_retired_earlier": list(range(1, minimum)),
            "destroyed_at": _now().isoformat(),
        }
        # Before deleting anything, prove the checks below are meaningful: the sentinel made at
        # creation (re-wrapped at each rotation) must still unwrap, the signing key still sign.
        # Anything unexpected stops here, with nothing deleted.
        if kind == "kek":
            sentinel = self._read_sentinel()
            try:
                self._sentinel_dek()
            except (IntegrityError, NotFoundError) as exc:
                raise IntegrityError(
                    f"{self._uri}: the sentinel does not unwrap before destruction ({exc}); "
                    "nothing was deleted: inspect the key directory"
                ) from None
            record["sentinel"] = _wrapped_to_json(sentinel)
        else:
            record["public_key_fingerprint"] = public_key_fingerprint(self.public_key_pem())
        _write_json(self._dir / _TOMBSTONE, record, replace=False)
        return record

    def _sentinels(self, tomb: dict[str, Any]) -> list[WrappedKey]:
        """Every sentinel known: the tombstone's, and a sentinel file that is (back) in the
        directory (a restored backup brings its own)."""
        out: list[WrappedKey] = []
        with contextlib.suppress(IntegrityError):
            out.append(_wrapped_from_json(tomb.get("sentinel")))
        with contextlib.suppress(IntegrityError, OSError):
            found = self._read_sentinel()
            if found not in out:
                out.append(found)
        return out

    def _material_evidence(self, tomb: dict[str, Any]) -> KeyDestruction:
        """What is left of the key, read from the key directory (the tombstone says what to look
        for, never whether it is gone)."""
        checks: dict[str, str] = {}
        ok = True
        try:
            entries = sorted(self._dir.iterdir())
        except FileNotFoundError:
            entries = []
        left = [e.name for e in entries if not self._bookkeeping(e)]
        checks["key files remaining"] = ", ".join(left)[:2000] if left else "none"
        ok &= not left
        # Through the API: anything but a refusal means the key still works.
        try:
            self.info()
            checks["info()"] = "succeeded (key still readable)"
            ok = False
        except SundownError as exc:
            checks["info()"] = type(exc).__name__
        kind = tomb.get("kind")
        if kind not in ("kek", "signing"):
            kind = "signing" if (self._dir / _SIGNING_FILE).exists() else "kek"
        if kind == "kek":
            sentinels = self._sentinels(tomb)
            if not sentinels:
                checks["sentinel unwrap"] = "no sentinel recorded"
                ok = False
            for n, sentinel in enumerate(sentinels):
                suffix = "" if n == 0 else f" #{n + 1}"
                try:
                    self.unwrap(sentinel)
                    checks["sentinel unwrap" + suffix] = "succeeded (key still usable)"
                    ok = False
                except SundownError as exc:
                    checks["sentinel unwrap" + suffix] = type(exc).__name__
                # Straight from the key file, bypassing the tombstone and the metadata.
                name = "sentinel unwrap from key file" + suffix
                path = self._dir / _version_file(sentinel.key_version)
                try:
                    kek = _read_private(path, self._uri)
                except FileNotFoundError:
                    checks[name] = f"v{sentinel.key_version} key file absent"
                    continue
                except (OSError, SundownError) as exc:
                    checks[name] = f"v{sentinel.key_version} key file present, unreadable ({exc})"
                    ok = False
                    continue
                ok = False
                try:
                    _unwrap(kek, sentinel)
                    checks[name] = "succeeded (key file readable)"
                except (IntegrityError, ValueError):
                    checks[name] = f"v{sentinel.key_version} key file present, does not unwrap"
        else:
            try:
                self.sign(b"sundown destroy check")
                checks["sign"] = "succeeded (key still usable)"
                ok = False
            except SundownError as exc:
                checks["sign"] = type(exc).__name__
            checks["signing key file"] = (
                "present" if (self._dir / _SIGNING_FILE).exists() else "absent"
            )
        if not tomb:
            checks["tombstone"] = "absent (the proof above does not depend on it)"
        versions = tuple(int(v) for v in tomb.get("versions_destroyed", []))
        retired = tomb.get("versions_retired_earlier") or []
        method = (
            "local keyring: every key file overwritten with random bytes (fsync) and unlinked, "
            f"versions {_span(versions)}"
            + (
                f" (versions {_span(tuple(retired))} retired and deleted earlier)"
                if retired
                else ""
            )
            + "; proved from the key directory (no key file left, the sentinel does not unwrap)"
        )
        try:
            when = datetime.fromisoformat(str(tomb["destroyed_at"]))
        except (KeyError, ValueError):
            when = _now()
        return KeyDestruction(
            uri=self._uri,
            versions_destroyed=versions,
            destroyed_at=when,
            method=method,
            checks=checks,
            verified=ok,
            limits=LIMITS,
        )


def _span(versions: tuple[int, ...]) -> str:
    if not versions:
        return "none"
    if len(versions) == 1:
        return str(versions[0])
    return f"{min(versions)}..{max(versions)}"


# --------------------------------------------------------------------------------------------
# Module-level API used by sundown.registry


def create_key(uri: str, *, signing: bool = False) -> KeyInfo:
    """Create ``local://NAME``: a KEK (version 1, with a sentinel wrapped DEK for destruction
    proofs) or, with ``signing``, an ECDSA P-256 signing key. ConflictError if the name exists
    or was destroyed (names are never reused: old sidecars name their key by URI)."""
    name = parse_uri(uri)
    uri = SCHEME + name
    keys = _keys_dir()
    target = keys / name
    if (target / _TOMBSTONE).exists():
        raise ConflictError(f"{uri} was destroyed; key names are never reused, choose another")
    if target.exists():
        raise ConflictError(f"key {uri} already exists")
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=keys))
    try:
        os.chmod(staging, 0o700)
        meta: dict[str, Any] = {
            "format": FORMAT,
            "uri": uri,
            "kind": "signing" if signing else "kek",
            "algorithm": SIGNING_ALGORITHM if signing else KEK_ALGORITHM,
            "latest_version": 1,
            "min_decryption_version": 1,
            "created_at": _now().isoformat(),
        }
        if signing:
            private = ec.generate_private_key(ec.SECP256R1())
            pem = private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_file(staging / _SIGNING_FILE, pem, replace=False)
        else:
            kek = secrets.token_bytes(32)
            _write_file(staging / _version_file(1), kek, replace=False)
            sentinel = _wrap(kek, uri, 1, secrets.token_bytes(_DEK_BYTES))
            _write_json(staging / _SENTINEL, _wrapped_to_json(sentinel), replace=False)
        _write_json(staging / _META, meta, replace=False)
        try:
            os.rename(staging, target)  # atomic; fails if a non-empty target appeared meanwhile
        except OSError:
            raise ConflictError(f"key {uri} already exists") from None
        fsync_dir(keys)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return LocalKey(uri).info()


def _open(uri: str) -> LocalKey:
    key = LocalKey(uri)
    key.info()  # NotFoundError / KeyDestroyedError now, not at first use
    return key


def open_key_service(uri: str) -> LocalKey:
    """The key at ``local://NAME`` as a key service. A signing key opens too (``info`` and
    ``destroy`` work); wrapping with it raises InputError."""
    return _open(uri)


def key_for_destruction(uri: str) -> LocalKey:
    """The key at ``local://NAME`` for ``destroy`` / ``verify_destroyed``, whatever its state
    (no liveness check: a half-destroyed key must be finished, not refused)."""
    return LocalKey(uri)


def open_signer(uri: str) -> LocalKey:
    """The signing key at ``local://NAME``; InputError for a key-encryption key."""
    key = _open(uri)
    if key.info().kind != "signing":
        raise InputError(f"{key.uri} is a key-encryption key, not a signing key")
    return key
