"""One builder for the system specs the tests write: :func:`spec_yaml`.

A test says what its system has (locations, keys, credentials, ...) and gets the YAML text a
person would write: the sections in the order of docs/spec.md, two-space indents, ``locations``
as a block list, other lists of plain values in flow style (``roles: [a, b]``), mappings inside
lists in flow style (``- {mount: secret, path: x}``) unless wrapped in :class:`Block`, mappings
under a key in block style unless wrapped in :class:`Flow`. Values are written as given, so
``${ROOT}`` placeholders and URLs stay readable and a test can still edit the text
(``spec.replace("stores/logs/sys-a", ...)``) or append a section to it.

The text, not a model, is the product: the tests feed it to the real loader (``load_spec``,
``sundown plan``), which is what they exercise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

OWNER = "ml-platform@example.com"


class Flow(dict[str, Any]):
    """A mapping written in flow style: ``{mount: secret, path: x}``."""


class Block(dict[str, Any]):
    """A mapping written in block style where flow style is the default (a list item)."""


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flow(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _block(mapping: Mapping[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, value in mapping.items():
        if isinstance(value, Flow):
            lines.append(f"{pad}{key}: {_flow(value)}")
        elif isinstance(value, Mapping):
            lines.append(f"{pad}{key}:")
            lines += _block(value, indent + 2)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            scalars = all(not isinstance(v, Mapping) for v in value)
            if scalars and key != "locations":
                lines.append(f"{pad}{key}: {_flow(value)}")
                continue
            lines.append(f"{pad}{key}:")
            for item in value:
                if isinstance(item, Block):
                    first, *rest = _block(item, indent + 4)
                    lines.append(f"{pad}  - {first.lstrip()}")
                    lines += rest
                else:
                    lines.append(f"{pad}  - {_flow(item)}")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return lines


def spec_yaml(
    name: str,
    *,
    assets: Mapping[str, Any],
    evidence: str,
    keys: Mapping[str, str] | None = None,
    archive: Mapping[str, str] | None = None,
    credentials: Mapping[str, Any] | None = None,
    rotation: Mapping[str, Any] | None = None,
    approval: Mapping[str, Any] | None = None,
    owner: str = OWNER,
    classification: str = "internal",
    description: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The spec of system ``name``. ``keys`` defaults to a local KEK and certificate key named
    after the system (``local://NAME-kek``, ``local://NAME-certificates``); ``approval`` to
    none (the spec's default); ``extra`` adds top-level fields at the end."""
    doc: dict[str, Any] = {
        "spec_version": 1,
        "name": name,
        "owner": owner,
        "classification": classification,
    }
    if description is not None:
        doc["description"] = description
    doc["assets"] = assets
    if archive is not None:
        doc["archive"] = archive
    doc["keys"] = (
        keys
        if keys is not None
        else {"kek": f"local://{name}-kek", "certificate": f"local://{name}-certificates"}
    )
    if credentials is not None:
        doc["credentials"] = credentials
    if rotation is not None:
        doc["rotation"] = rotation
    doc["evidence"] = evidence
    if approval is not None:
        doc["approval"] = approval
    doc.update(extra or {})
    return "\n".join(_block(doc, 0)) + "\n"


def one_location_spec(name: str, url: str | Mapping[str, Any], evidence: Any, **fields: Any) -> str:
    """:func:`spec_yaml` of a system with its weights at ``url`` (a URL, or a location mapping
    such as ``Flow(url=..., purge_by=...)``) and its evidence in the folder
    ``evidence``; ``fields`` are passed on (``classification``, ``approval``, ...)."""
    return spec_yaml(
        name, assets={"weights": {"locations": [url]}}, evidence=f"file://{evidence}", **fields
    )
