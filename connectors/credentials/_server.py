"""What the credential kinds of the record stores' servers share (``postgres_role``,
``redis_acl_user``): an identifier that is a server URL and a name (:mod:`sundown.credential_ids`),
one spec list of entries with an ``ident``, and a module function each to revoke and to look up."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from sundown.credential_ids import ServiceCredential
from sundown.credentials import KindBase

if TYPE_CHECKING:
    from sundown.spec.model import SystemSpec


class ServerKind(KindBase):
    spec_field: ClassVar[str]  # the spec's credentials list
    split: Callable[[str], ServiceCredential]  # the identifier's parser

    def _parts(self, ident: str) -> tuple[str, ...]:
        cred = self.split(ident)
        server = cred.server
        return tuple(p for p in (server.host, str(server.port), server.database, cred.name) if p)

    def units(self, spec: SystemSpec) -> list[str]:
        return [entry.ident for entry in getattr(spec.credentials, self.spec_field)]
