"""Streaming envelope encryption: Tink AES256_GCM_HKDF_1MB ciphertext plus a JSON sidecar.

A tour (the format itself is specified in ``docs/formats/envelope.md``):

- :class:`Artifact` names what a ciphertext is bound to (system, path, version); its canonical
  encoding is the associated data, so a ciphertext moved to another artifact does not decrypt.
- :func:`encrypt_file` / :func:`decrypt_file`: local files, atomic writes, sidecar beside the
  ciphertext as ``<file>.sidecar.json``. :func:`encrypt_files` does many files on all cores.
- :func:`encrypt_to_store` / :func:`decrypt_to_store`: the same against an object store.
- :func:`encrypt_stream` / :func:`decrypt_stream`: the streaming core under both, for any
  readable source and any consumer of chunks. Memory stays at a few segments (1 MiB each)
  whatever the size of the artifact.
- :class:`Sidecar`: wrapped DEK, key URI and version, associated data, plaintext size and
  SHA-256. :func:`plaintext_digests` hands them to model signing, so each file is hashed once.
- :func:`rewrap` / :func:`rewrap_store`: key rotation re-wraps sidecars, never ciphertext.

Every DEK is fresh (one per artifact, from :meth:`sundown.keys.KeyService.new_data_key`) and never
leaves memory unwrapped. Every failure of authenticity (ciphertext, sidecar or associated data
altered, truncated, reordered, wrong key) raises :class:`sundown.errors.IntegrityError`.
"""

from ._envelope import (
    MAX_SIDECAR_BYTES,
    EncryptingStream,
    FileJob,
    decrypt_file,
    decrypt_stream,
    decrypt_to_store,
    encrypt_file,
    encrypt_files,
    encrypt_stream,
    encrypt_to_store,
    plaintext_digests,
    read_sidecar,
    read_sidecar_file,
    rewrap,
    rewrap_store,
    unwrap_data_key,
    write_sidecar,
)
from ._sidecar import (
    AD_DOMAIN,
    ALGORITHM,
    FORMAT_VERSION,
    SIDECAR_SUFFIX,
    Artifact,
    Sidecar,
    sidecar_key,
)
from ._stream import SEGMENT_SIZE

__all__ = [
    "AD_DOMAIN",
    "ALGORITHM",
    "FORMAT_VERSION",
    "MAX_SIDECAR_BYTES",
    "SEGMENT_SIZE",
    "SIDECAR_SUFFIX",
    "Artifact",
    "EncryptingStream",
    "FileJob",
    "Sidecar",
    "decrypt_file",
    "decrypt_stream",
    "decrypt_to_store",
    "encrypt_file",
    "encrypt_files",
    "encrypt_stream",
    "encrypt_to_store",
    "plaintext_digests",
    "read_sidecar",
    "read_sidecar_file",
    "rewrap",
    "rewrap_store",
    "sidecar_key",
    "unwrap_data_key",
    "write_sidecar",
]
