"""Envelope encryption recipes: one fresh DEK per artifact, sidecar next to the ciphertext."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sundown.atomic import write_atomically
from sundown.errors import (
    BackendError,
    ConflictError,
    InputError,
    IntegrityError,
    NotFoundError,
)
from sundown.keys import KeyService, WrappedKey
from sundown.store import ObjectStore, exists

from ._sidecar import Artifact, Sidecar, sidecar_key
from ._stream import KEY_SIZE, SEGMENT_SIZE, Readable, StreamingAead

MAX_SIDECAR_BYTES = 64 * 1024


def _checked(n: int | None) -> int:
    if n is None:  # would otherwise pass for end of stream and truncate silently
        raise InputError("non-blocking streams are not supported (read returned None)")
    return n


class _CountingReader:
    __slots__ = ("_source", "size")

    def __init__(self, source: Readable) -> None:
        self._source = source
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self.size += len(data)
        return data

    def readinto(self, buf: memoryview) -> int:
        readinto = getattr(self._source, "readinto", None)
        if readinto is None:
            data = self._source.read(len(buf))
            buf[: len(data)] = data
            n = len(data)
        else:
            n = _checked(readinto(buf))
        self.size += n
        return n


def _bound(key_service: KeyService, associated_data: bytes) -> KeyService:
    """A key service that binds wrapped DEKs to the artifact itself (AWS KMS: the
    EncryptionContext) gets the associated data; others are returned as they are."""
    bound_to = getattr(key_service, "bound_to", None)
    return bound_to(associated_data) if callable(bound_to) else key_service


def unwrap_data_key(sidecar: Sidecar, key_service: KeyService) -> bytes:
    """The sidecar's data key, unwrapped under ``key_service`` with the sidecar's associated
    data as the binding where the service binds (AWS KMS encryption context, Cloud KMS AAD,
    Key Vault's wrapped binding): a wrapped key moved to another artifact does not unwrap."""
    dek = _bound(key_service, sidecar.associated_data).unwrap(sidecar.wrapped_key)
    if len(dek) != KEY_SIZE:
        raise IntegrityError(f"wrapped DEK of {sidecar.artifact.path!r} unwrapped to a bad key")
    return dek


def _new_data_key(key_service: KeyService) -> tuple[bytes, WrappedKey]:
    dek, wrapped = key_service.new_data_key()
    if len(dek) != KEY_SIZE:
        raise BackendError(f"key service {key_service.uri} returned a data key of the wrong size")
    if wrapped.key_version < 1 or not wrapped.ciphertext:
        raise BackendError(f"key service {key_service.uri} returned an invalid wrapped key")
    return dek, wrapped


class EncryptingStream:
    """Ciphertext chunks of one artifact, to write wherever it goes (a file, ``store.put``).

    Plaintext SHA-256 and size are computed in the same pass (the hash on a second thread, see
    :mod:`sundown.envelope._stream`); once the iteration is complete, :attr:`sidecar` holds them
    with the wrapped DEK. Use :func:`encrypt_stream` to make one, preferably as a context
    manager (or call :meth:`close`) so that a consumer that stops early also stops the thread.
    """

    def __init__(
        self,
        source: Readable,
        key_service: KeyService,
        artifact: Artifact,
        *,
        hash_thread: bool = True,
    ) -> None:
        if not isinstance(artifact, Artifact):
            raise InputError("artifact must be a sundown.envelope.Artifact")
        dek, self._wrapped = _new_data_key(_bound(key_service, artifact.associated_data()))
        self._artifact = artifact
        self._reader = _CountingReader(source)
        self._sha256 = hashlib.sha256()
        self._chunks = StreamingAead(dek, SEGMENT_SIZE).encrypt_stream(
            self._reader, artifact.associated_data(), digest=self._sha256, hash_thread=hash_thread
        )
        self._ciphertext_size = 0
        self._sidecar: Sidecar | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __enter__(self) -> EncryptingStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop early: the hashing thread, if any, is joined. Idempotent; a no-op once the
        iteration completed."""
        self._chunks.close()

    def __next__(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            if self._sidecar is None:
                self._sidecar = Sidecar(
                    key_uri=self._wrapped.key_uri,
                    key_version=self._wrapped.key_version,
                    wrapped_dek=self._wrapped.ciphertext,
                    artifact=self._artifact,
                    plaintext_size=self._reader.size,
                    plaintext_sha256=self._sha256.hexdigest(),
                    ciphertext_size=self._ciphertext_size,
                )
            raise
        self._ciphertext_size += len(chunk)
        return chunk

    @property
    def sidecar(self) -> Sidecar:
        """The sidecar; available once every chunk was consumed."""
        if self._sidecar is None:
            raise InputError("the encrypting stream was not consumed to the end")
        return self._sidecar


def encrypt_stream(
    source: Readable, key_service: KeyService, artifact: Artifact, *, hash_thread: bool = True
) -> EncryptingStream:
    """Encrypt ``source`` (read to its end, segment by segment) under a fresh DEK from
    ``key_service``, bound to ``artifact``. Iterate the result for the ciphertext, then read its
    ``sidecar``. The plaintext is hashed on a second thread unless ``hash_thread`` is false
    (for callers that already run one stream per core, like :func:`encrypt_files`)."""
    return EncryptingStream(source, key_service, artifact, hash_thread=hash_thread)


def _check_sidecar(
    sidecar: Sidecar, key_service: KeyService | None, expect: Artifact | None
) -> KeyService:
    if not isinstance(sidecar, Sidecar):
        raise InputError("sidecar must be a sundown.envelope.Sidecar")
    if expect is not None and sidecar.artifact != expect:
        raise IntegrityError(
            f"sidecar binds the ciphertext to {sidecar.artifact}, expected {expect}"
        )
    if key_service is None:
        from sundown.registry import open_key_service

        return open_key_service(sidecar.key_uri)
    if key_service.uri != sidecar.key_uri:
        raise IntegrityError(
            f"sidecar names key {sidecar.key_uri!r}, but decryption was pinned to "
            f"{key_service.uri!r}"
        )
    return key_service


def decrypt_stream(
    source: Readable,
    sidecar: Sidecar,
    key_service: KeyService | None = None,
    *,
    expect: Artifact | None = None,
) -> Iterator[bytes]:
    """Plaintext chunks of the ciphertext ``source`` described by ``sidecar``.

    The DEK is unwrapped now (errors surface before the first chunk). ``key_service`` pins the
    key (default: the one the sidecar names, opened through the registry); ``expect`` pins the
    artifact. Each chunk is released only after its segment authenticated, and the last one only
    after plaintext size and SHA-256 matched the sidecar: a consumer that stops at the first
    IntegrityError and discards what it got never keeps tampered or truncated plaintext.
    """
    service = _check_sidecar(sidecar, key_service, expect)
    dek = unwrap_data_key(sidecar, service)
    aead = StreamingAead(dek, SEGMENT_SIZE)
    return _verified_plaintext(aead, _CountingReader(source), sidecar)


def _verified_plaintext(
    aead: StreamingAead, reader: _CountingReader, sidecar: Sidecar
) -> Iterator[bytes]:
    digest = hashlib.sha256()
    size = 0
    for plaintext, last in aead.decrypt_stream(reader, sidecar.associated_data):
        digest.update(plaintext)
        size += len(plaintext)
        if size > sidecar.plaintext_size:
            raise IntegrityError(
                f"{sidecar.artifact.path!r}: plaintext longer than the sidecar's "
                f"{sidecar.plaintext_size} bytes"
            )
        if last:
            if size != sidecar.plaintext_size:
                raise IntegrityError(
                    f"{sidecar.artifact.path!r}: plaintext is {size} bytes, sidecar says "
                    f"{sidecar.plaintext_size}"
                )
            if digest.hexdigest() != sidecar.plaintext_sha256:
                raise IntegrityError(f"{sidecar.artifact.path!r}: plaintext SHA-256 mismatch")
            if reader.size != sidecar.ciphertext_size:
                raise IntegrityError(
                    f"{sidecar.artifact.path!r}: ciphertext is {reader.size} bytes, sidecar "
                    f"says {sidecar.ciphertext_size}"
                )
        yield plaintext


# --- local files ---------------------------------------------------------------------------


def _write_atomically(path: Path, chunks: Iterable[bytes], *, overwrite: bool) -> None:
    """``path`` holds the old content or all of the new (ConflictError if it exists and
    ``overwrite`` is false)."""
    try:
        write_atomically(path, chunks, overwrite=overwrite)
    except FileExistsError:
        raise ConflictError(f"{path} already exists") from None


def _check_destination(paths: Sequence[Path], overwrite: bool) -> None:
    for path in paths:
        if not path.parent.is_dir():
            raise NotFoundError(f"directory {path.parent} does not exist")
        if not overwrite and path.exists():
            raise ConflictError(f"{path} already exists (pass overwrite to replace it)")


def encrypt_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    key_service: KeyService,
    artifact: Artifact,
    *,
    overwrite: bool = False,
) -> Sidecar:
    """Encrypt the file ``src`` to ``dst`` and write ``dst.sidecar.json`` beside it; both writes
    are atomic, the ciphertext first. Returns the sidecar (with the plaintext SHA-256)."""
    return _encrypt_file(src, dst, key_service, artifact, overwrite=overwrite, hash_thread=True)


def _encrypt_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    key_service: KeyService,
    artifact: Artifact,
    *,
    overwrite: bool,
    hash_thread: bool,
) -> Sidecar:
    dst = Path(dst)
    side = Path(sidecar_key(str(dst)))
    _check_destination((dst, side), overwrite)
    with (
        open(src, "rb", buffering=0) as source,
        encrypt_stream(source, key_service, artifact, hash_thread=hash_thread) as stream,
    ):
        _write_atomically(dst, stream, overwrite=overwrite)
    _write_atomically(side, [stream.sidecar.to_json()], overwrite=overwrite)
    return stream.sidecar


def read_sidecar_file(path: str | os.PathLike[str]) -> Sidecar:
    with open(path, "rb") as f:
        data = f.read(MAX_SIDECAR_BYTES + 1)
    if len(data) > MAX_SIDECAR_BYTES:
        raise IntegrityError(f"sidecar {path} is larger than {MAX_SIDECAR_BYTES} bytes")
    return Sidecar.from_json(data)


def decrypt_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    key_service: KeyService | None = None,
    *,
    sidecar: Sidecar | None = None,
    expect: Artifact | None = None,
    overwrite: bool = False,
) -> Sidecar:
    """Decrypt ``src`` (with ``src.sidecar.json`` unless ``sidecar`` is given) to ``dst``,
    atomically: on any failure ``dst`` is not created. Returns the verified sidecar."""
    dst = Path(dst)
    _check_destination((dst,), overwrite)
    if sidecar is None:
        sidecar = read_sidecar_file(sidecar_key(os.fspath(src)))
    with open(src, "rb", buffering=0) as source:
        plaintext = decrypt_stream(source, sidecar, key_service, expect=expect)
        _write_atomically(dst, plaintext, overwrite=overwrite)
    return sidecar


@dataclass(frozen=True)
class FileJob:
    """One file of a multi-file encryption: source path, ciphertext path, artifact identity."""

    src: Path
    dst: Path
    artifact: Artifact


def encrypt_files(
    jobs: Sequence[FileJob],
    key_service: KeyService,
    *,
    workers: int | None = None,
    overwrite: bool = False,
) -> list[Sidecar]:
    """Encrypt several files in parallel (threads: AES-GCM and SHA-256 release the GIL on large
    buffers, so one thread per core scales). Returns the sidecars in job order; the first
    failure is raised after the running jobs finish. With one worker each file is hashed on a
    second thread as :func:`encrypt_file` does; with several, each worker hashes its own file
    inline, the workers already filling the cores."""
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise InputError("workers must be >= 1")
    dsts = [job.dst for job in jobs]
    if len(set(dsts)) != len(dsts):
        raise InputError("two jobs write the same destination")
    if len(jobs) <= 1 or workers == 1:
        return [
            encrypt_file(j.src, j.dst, key_service, j.artifact, overwrite=overwrite) for j in jobs
        ]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sundown-encrypt") as pool:
        futures = [
            pool.submit(
                _encrypt_file,
                j.src,
                j.dst,
                key_service,
                j.artifact,
                overwrite=overwrite,
                hash_thread=False,
            )
            for j in jobs
        ]
        return [f.result() for f in futures]


def plaintext_digests(sidecars: Iterable[Sidecar]) -> dict[str, str]:
    """Artifact path -> plaintext SHA-256 (hex) of each sidecar, for model signing
    (:func:`sundown.signing.sign_digests`): the files were hashed while being encrypted, once."""
    digests: dict[str, str] = {}
    for sidecar in sidecars:
        path = sidecar.artifact.path
        if path in digests:
            raise InputError(f"two sidecars describe the artifact path {path!r}")
        digests[path] = sidecar.plaintext_sha256
    return digests


# --- object stores -------------------------------------------------------------------------


def read_sidecar(store: ObjectStore, key: str) -> Sidecar:
    """The sidecar of the ciphertext object ``key`` (NotFoundError if there is none)."""
    try:
        source = store.open(sidecar_key(key))
    except NotFoundError as exc:
        raise NotFoundError(f"no sidecar {sidecar_key(key)!r} in {store.url} ({exc})") from exc
    with source as f:
        data = f.read(MAX_SIDECAR_BYTES + 1)
    if len(data) > MAX_SIDECAR_BYTES:
        raise IntegrityError(f"sidecar of {key!r} is larger than {MAX_SIDECAR_BYTES} bytes")
    return Sidecar.from_json(data)


def write_sidecar(
    store: ObjectStore, key: str, sidecar: Sidecar, *, overwrite: bool = True
) -> None:
    store.put(sidecar_key(key), [sidecar.to_json()], if_absent=not overwrite)


def encrypt_to_store(
    source: Readable,
    store: ObjectStore,
    key: str,
    key_service: KeyService,
    artifact: Artifact,
    *,
    overwrite: bool = False,
) -> Sidecar:
    """Encrypt ``source`` into the object ``key`` of ``store`` and write its sidecar beside it
    (ciphertext first, so a sidecar always describes a complete ciphertext)."""
    side = sidecar_key(key)
    if not overwrite:
        for existing in (key, side):
            if exists(store, existing):
                raise ConflictError(f"{store.url}/{existing} already exists")
    with encrypt_stream(source, key_service, artifact) as stream:
        store.put(key, stream, if_absent=not overwrite)
    write_sidecar(store, key, stream.sidecar, overwrite=overwrite)
    return stream.sidecar


def decrypt_to_store(
    src_store: ObjectStore,
    src_key: str,
    dst_store: ObjectStore,
    dst_key: str,
    key_service: KeyService | None = None,
    *,
    expect: Artifact | None = None,
    overwrite: bool = False,
) -> Sidecar:
    """Decrypt the object ``src_key`` (with its sidecar) into ``dst_key`` of ``dst_store``. The
    store's atomic put sees the IntegrityError before the last chunk, so no tampered or
    truncated plaintext is left behind."""
    sidecar = read_sidecar(src_store, src_key)
    if not overwrite and exists(dst_store, dst_key):
        raise ConflictError(f"{dst_store.url}/{dst_key} already exists")
    with src_store.open(src_key) as source:
        plaintext = decrypt_stream(source, sidecar, key_service, expect=expect)
        dst_store.put(dst_key, plaintext, if_absent=not overwrite)
    return sidecar


# --- rotation ------------------------------------------------------------------------------


def rewrap(sidecars: Sequence[Sidecar], key_service: KeyService) -> list[Sidecar]:
    """The sidecars with their DEKs re-wrapped under the latest version of ``key_service``, in
    one request and in order. The DEKs never leave the key service; no ciphertext is touched."""
    if not sidecars:
        return []
    for sidecar in sidecars:
        if sidecar.key_uri != key_service.uri:
            raise InputError(
                f"sidecar of {sidecar.artifact.path!r} belongs to {sidecar.key_uri!r}, "
                f"not {key_service.uri!r}"
            )
    rewrapped = key_service.rewrap([s.wrapped_key for s in sidecars])
    if len(rewrapped) != len(sidecars) or any(w.key_uri != key_service.uri for w in rewrapped):
        raise BackendError(f"key service {key_service.uri} returned a malformed rewrap result")
    return [s.with_wrapped_key(w) for s, w in zip(sidecars, rewrapped, strict=True)]


def rewrap_store(
    store: ObjectStore,
    keys: Iterable[str],
    key_service: KeyService,
    *,
    batch_size: int = 100,
) -> list[Sidecar]:
    """Re-wrap the sidecars of the ciphertext objects ``keys`` in ``store`` under the latest
    key version, ``batch_size`` per key-service request, rewriting each sidecar atomically.
    Sidecars already at the latest version are left alone, so a re-run after a crash resumes.
    Returns every sidecar as it now is."""
    if batch_size < 1:
        raise InputError("batch_size must be >= 1")
    latest = key_service.info().latest_version
    result: list[Sidecar] = []
    batch: list[tuple[int, str, Sidecar]] = []

    def flush() -> None:
        new = rewrap([s for _, _, s in batch], key_service)
        for (index, key, _), sidecar in zip(batch, new, strict=True):
            write_sidecar(store, key, sidecar)
            result[index] = sidecar
        batch.clear()

    for key in keys:
        sidecar = read_sidecar(store, key)
        result.append(sidecar)
        if sidecar.key_version < latest:
            batch.append((len(result) - 1, key, sidecar))
            if len(batch) >= batch_size:
                flush()
    if batch:
        flush()
    return result
