"""The one error hierarchy of Sundown.

A caller can always tell apart:

- ``IntegrityError``: the data, a sidecar, a signature, a certificate or the ledger was changed
  (tampering, truncation, corruption, wrong key). Never retried.
- ``InputError``: the caller asked for something malformed or not allowed (bad spec, bad URL,
  out-of-scope path, wrong plan digest). Never retried.
- ``NotFoundError``: a named object, key or credential does not exist (``KeyDestroyedError`` when
  it was deliberately destroyed).
- ``PermissionDeniedError``: the backend refused the credentials in use.
- ``ConflictError``: a create-only write found the object already there.
- ``UnsupportedError``: the backend lacks an optional capability the caller asked for.
- ``BackendError``: the backend failed permanently; ``TransientError`` when a retry may succeed
  (5xx, throttling, dropped connections). Connectors retry transient failures themselves a
  bounded number of times before raising.

Messages name the problem and the object, never a secret.
"""

from __future__ import annotations


class SundownError(Exception):
    """Base class of every error Sundown raises on purpose."""


class InputError(SundownError, ValueError):
    """Malformed or disallowed input: names the input and the problem."""


class ScopeError(InputError):
    """An operation would touch something outside the scope declared by the system spec."""


class IntegrityError(SundownError):
    """Authenticity or integrity check failed: tampering, truncation or the wrong key."""


class NotFoundError(SundownError, LookupError):
    """A named object, version, key or credential does not exist."""


class KeyDestroyedError(NotFoundError):
    """The key was destroyed (cryptographic erase); nothing wrapped under it can be recovered."""


class PermissionDeniedError(SundownError):
    """The backend refused the credentials in use."""


class ConflictError(SundownError):
    """A create-only write found the object already present."""


class UnsupportedError(SundownError):
    """The backend lacks an optional capability the caller asked for."""


class BackendError(SundownError):
    """The storage or key backend failed permanently."""


class TransientError(BackendError):
    """The backend failed in a way a later retry may fix (5xx, throttling, dropped connection)."""
