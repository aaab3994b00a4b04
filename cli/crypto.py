"""``sundown encrypt`` and ``sundown decrypt``: envelope encryption of one artifact.

SRC and DST are local paths or object URLs (``file:///...``, ``s3://bucket/key``, ...). The
sidecar is written beside the ciphertext as ``<DST>.sidecar.json`` and read from
``<SRC>.sidecar.json`` on decryption, which finds the key through it.

Decryption binds the associated data by default (docs/formats/envelope.md, section 5): the
sidecar is read from the store, so it is untrusted and never decides what it belongs to.

- path: ``--artifact-path``, else where the ciphertext lies. With ``--spec``, its key relative
  to the spec location that holds it (exactly what ``deploy`` binds); without, the bound path
  must be the trailing segments of SRC (``sundown encrypt`` binds DST's name).
- system: ``--system``, else the spec's name with ``--spec``, else ``default`` (what
  ``sundown encrypt`` binds when given none).
- version: ``--artifact-version``, else with ``--spec`` the newest deployment receipt (found
  through the ledger, digest checked) that lists the location, which also pins the file's
  plaintext SHA-256; else ``1``.

A ciphertext and sidecar copied over another artifact, or an older version rolled back over a
newer one, then fail with IntegrityError. ``--unbound`` (recovery) checks only what the caller
pins explicitly and warns on stderr.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import typer

from sundown.envelope import Artifact, Sidecar, decrypt_to_store, encrypt_to_store, read_sidecar
from sundown.errors import InputError, IntegrityError, NotFoundError, SundownError
from sundown.registry import open_key_service, open_store, split_object_url
from sundown.spec.model import SystemSpec
from sundown.store import ObjectStore

DEFAULT_SYSTEM = "default"
DEFAULT_VERSION = "1"
UNBOUND_WARNING = (
    "warning: --unbound: the ciphertext is NOT checked against the system, path and version it "
    "is stored as; a ciphertext copied or rolled back over this one would decrypt. Use it only "
    "to recover data whose binding is known to be lost."
)


def _locate(arg: str) -> tuple[ObjectStore, str]:
    """(store, key) for a local path or an object URL."""
    if "://" in arg:
        root, key = split_object_url(arg)
    else:
        path = Path(arg).expanduser().absolute()
        root, key = path.parent.as_uri(), path.name
    return open_store(root), key


def _object_url(arg: str) -> str:
    return arg if "://" in arg else Path(arg).expanduser().absolute().as_uri()


def _segments(url: str) -> list[str]:
    """The path segments of an object URL (bucket or container first for cloud stores)."""
    parts = urlsplit(url)
    text = unquote(parts.path) if parts.scheme == "file" else parts.netloc + parts.path
    return [s for s in text.split("/") if s]


def encrypt(
    src: str = typer.Argument(..., help="Plaintext: a local path or an object URL."),
    dst: str = typer.Argument(..., help="Ciphertext: a local path or an object URL."),
    key: str = typer.Option(
        ..., "--key", help="Key-encryption key URI, e.g. local://NAME or vault://transit/NAME."
    ),
    system: str = typer.Option(
        DEFAULT_SYSTEM, "--system", help="System the artifact belongs to (bound to it)."
    ),
    artifact_path: str | None = typer.Option(
        None, "--artifact-path", help="Logical artifact path bound to it (default: DST's name)."
    ),
    artifact_version: str = typer.Option(
        DEFAULT_VERSION, "--artifact-version", help="Artifact version bound to it."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace DST if it exists."),
) -> None:
    """Encrypt SRC to DST under a fresh data key wrapped by --key; write DST.sidecar.json."""
    src_store, src_key = _locate(src)
    dst_store, dst_key = _locate(dst)
    artifact = Artifact(system, artifact_path or dst_key.rsplit("/", 1)[-1], artifact_version)
    key_service = open_key_service(key)
    with src_store.open(src_key) as source:
        sidecar = encrypt_to_store(
            source, dst_store, dst_key, key_service, artifact, overwrite=overwrite
        )
    typer.echo(
        f"encrypted {src} -> {dst} ({sidecar.plaintext_size} bytes, "
        f"sha256 {sidecar.plaintext_sha256}, key {sidecar.key_uri} v{sidecar.key_version})"
    )


class _Deployment:
    """What the spec and its newest deployment receipt say about one object."""

    def __init__(self, spec: SystemSpec, location: str, path: str) -> None:
        self.spec = spec
        self.system = spec.name
        self.location = location
        self.path = path
        self.version: str | None = None
        self.sha256: str | None = None


def _from_spec(spec_path: Path, variables: list[str] | None, url: str) -> _Deployment:
    """The spec location holding ``url`` and the object's key relative to it."""
    from cli.lifecycle import _variables
    from sundown.spec.loader import load_spec
    from sundown.store_url import parse_store_url

    spec = load_spec(spec_path, variables=_variables(variables))
    try:
        obj = parse_store_url(url, "SRC")
    except ValueError as exc:
        raise InputError(str(exc)) from None
    for ref in spec.locations():
        loc = ref.location.parsed
        n = len(loc.parts)
        if (loc.scheme, loc.bucket) == (obj.scheme, obj.bucket) and obj.parts[:n] == loc.parts:
            if len(obj.parts) == n:
                break
            return _Deployment(spec, ref.url, "/".join(obj.parts[n:]))
    raise InputError(f"{url} is not inside a location of system {spec.name!r} ({spec_path})")


def _newest_receipt(dep: _Deployment) -> None:
    """Fill in ``dep.version``/``sha256`` from the newest deployment receipt whose locations
    include ``dep.location``. The receipt is found through the ledger, which is verified under
    the spec's certificate key, and its bytes must match the digest the ledger recorded."""
    from sundown.ledger import Ledger, RecordKind, default_ledger_url
    from sundown.registry import open_signer

    spec = dep.spec
    ledger = Ledger(open_store(spec.evidence or default_ledger_url()))
    try:
        ledger.verify(open_signer(spec.keys.certificate).public_key_pem())
    except NotFoundError:
        return
    for stored in reversed(list(ledger.records())):
        record = stored.record
        if record.kind is not RecordKind.DEPLOY or record.evidence is None:
            continue
        where = record.evidence.location
        try:
            root, key = split_object_url(where)
            with open_store(root).open(key) as stream:
                body = stream.read()
        except SundownError as exc:
            raise IntegrityError(f"{stored.name}: its deployment receipt {where}: {exc}") from None
        if "sha256:" + hashlib.sha256(body).hexdigest() != record.evidence.digest:
            raise IntegrityError(
                f"deployment receipt {where} differs from what {stored.name} recorded"
            )
        try:
            receipt = json.loads(body)
            listed = receipt["system"] == dep.system and dep.location in receipt["locations"]
            files = receipt["files"]
        except (ValueError, TypeError, KeyError):
            raise IntegrityError(f"deployment receipt {where} is malformed") from None
        if not listed:
            continue
        if not isinstance(files, dict) or dep.path not in files:
            raise IntegrityError(
                f"{dep.location}/{dep.path} is not a file of the newest deployment of "
                f"{dep.system} there (version {receipt.get('version')!r}, {where})"
            )
        dep.version = str(receipt["version"])
        dep.sha256 = str(files[dep.path]).removeprefix("sha256:")
        return


def _expected(
    url: str,
    sidecar: Sidecar,
    *,
    system: str | None,
    artifact_path: str | None,
    artifact_version: str | None,
    spec: Path | None,
    variables: list[str] | None,
) -> tuple[Artifact, str | None]:
    """The artifact SRC must be bound to, and the plaintext SHA-256 a receipt pins (or None)."""
    if spec is not None:
        dep = _from_spec(spec, variables, url)
        if system is not None and system != dep.system:
            raise InputError(f"--system {system!r} but {spec} is system {dep.system!r}")
        if artifact_version is None:
            _newest_receipt(dep)
            if dep.version is None:
                raise InputError(
                    f"no deployment of {dep.system} to {dep.location} is recorded in its "
                    "ledger: name the version with --artifact-version"
                )
        return (
            Artifact(dep.system, artifact_path or dep.path, artifact_version or dep.version or ""),
            dep.sha256,
        )
    path = artifact_path
    if path is None:
        bound = [s for s in sidecar.artifact.path.split("/") if s]
        where = _segments(url)
        # The bound path must be where the ciphertext lies: the trailing segments of SRC.
        path = sidecar.artifact.path if bound and where[-len(bound) :] == bound else where[-1]
    return Artifact(system or DEFAULT_SYSTEM, path, artifact_version or DEFAULT_VERSION), None


def _source(spec: Path | None, system: str | None, path: str | None, version: str | None) -> str:
    """Where the expected binding came from, for the error message."""
    if spec is not None:
        return f"from {spec}, the object's place in it and its newest deployment"
    given = [n for n, v in (("--system", system), ("--artifact-version", version)) if v]
    said = f"{', '.join(given)} as given; " if given else ""
    return (
        f"{said}path from where it is stored"
        + ("" if system and version else "; system and version default to what "
           "`sundown encrypt` binds unless given with --system/--artifact-version or --spec")
    )  # fmt: skip


def decrypt(
    src: str = typer.Argument(..., help="Ciphertext: a local path or an object URL."),
    dst: str = typer.Argument(..., help="Plaintext: a local path or an object URL."),
    key: str | None = typer.Option(
        None, "--key", help="Refuse unless the sidecar names this key [default: any]."
    ),
    system: str | None = typer.Option(
        None,
        "--system",
        help="System it must be bound to [default: the spec's name with --spec, else "
        f"{DEFAULT_SYSTEM!r}].",
    ),
    artifact_path: str | None = typer.Option(
        None,
        "--artifact-path",
        help="Artifact path it must be bound to [default: where SRC lies: its key in the "
        "spec location with --spec, else SRC's trailing path segments].",
    ),
    artifact_version: str | None = typer.Option(
        None,
        "--artifact-version",
        help="Version it must be bound to [default: the newest deployment recorded in the "
        f"ledger with --spec, else {DEFAULT_VERSION!r}].",
    ),
    spec: Path | None = typer.Option(
        None,
        "--spec",
        help="System spec whose location holds SRC: binds its name, the path in the location "
        "and the newest deployed version (from the deployment receipt).",
    ),
    var: list[str] = typer.Option(None, "--var", help="A ${NAME} value for --spec."),
    unbound: bool = typer.Option(
        False,
        "--unbound",
        help="Recovery only: do not bind the ciphertext to where it is stored (warns).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace DST if it exists."),
) -> None:
    """Decrypt SRC to DST, checked against SRC.sidecar.json (which also names the key) and
    bound to the system, path and version SRC is stored as."""
    src_store, src_key = _locate(src)
    dst_store, dst_key = _locate(dst)
    src_store.head(src_key)  # a missing ciphertext is named as such, before its sidecar
    try:
        sidecar = read_sidecar(src_store, src_key)
    except IntegrityError as exc:
        raise IntegrityError(f"{src}: {exc}") from None
    sha256 = None
    if unbound:
        if spec is not None:
            raise InputError("--unbound and --spec exclude each other")
        typer.echo(UNBOUND_WARNING, err=True)
        bound = sidecar.artifact
        expect = Artifact(
            system or bound.system, artifact_path or bound.path, artifact_version or bound.version
        )
    else:
        expect, sha256 = _expected(
            _object_url(src),
            sidecar,
            system=system,
            artifact_path=artifact_path,
            artifact_version=artifact_version,
            spec=spec,
            variables=var,
        )
    if sidecar.artifact != expect:  # checked again, cryptographically, by the decryption
        raise IntegrityError(
            f"{src}: its sidecar binds it to {sidecar.artifact}, but {expect} was expected "
            f"({_source(spec, system, artifact_path, artifact_version)}); nothing was written "
            f"to {dst}"
        )
    if sha256 is not None and sidecar.plaintext_sha256 != sha256:
        raise IntegrityError(
            f"{src}: its sidecar describes plaintext sha256 {sidecar.plaintext_sha256}, but "
            f"version {expect.version} deployed sha256 {sha256} there; nothing was written to "
            f"{dst}"
        )
    if key is not None and key != sidecar.key_uri:
        raise IntegrityError(f"{src} is wrapped by {sidecar.key_uri}, not {key}")
    key_service = open_key_service(sidecar.key_uri)
    try:
        decrypt_to_store(
            src_store, src_key, dst_store, dst_key, key_service, expect=expect, overwrite=overwrite
        )
    except IntegrityError as exc:
        raise IntegrityError(f"{src}: {exc}; nothing was written to {dst}") from None
    typer.echo(
        f"decrypted {src} -> {dst} ({sidecar.plaintext_size} bytes, "
        f"sha256 {sidecar.plaintext_sha256} verified"
        + ("; NOT bound to where it is stored)" if unbound else f"; bound to {expect})")
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sundown`` app."""
    app.command("encrypt")(encrypt)
    app.command("decrypt")(decrypt)
