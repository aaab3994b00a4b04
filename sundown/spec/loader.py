"""Loading a spec from YAML: line numbers kept, duplicate keys refused, ``${VAR}`` placeholders
filled from the variables given (never the environment), size and node limits, and one
:class:`~sundown.errors.InputError` that names the file, the line, the field path and the problem
of every error found (never a pydantic traceback, never a secret)."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from sundown.errors import InputError
from sundown.spec.model import Problems, SystemSpec, fmt_loc
from sundown.spec.overlap import check_no_overlap

MAX_SPEC_BYTES = 1024 * 1024
MAX_SPEC_NODES = 100_000

# --------------------------------------------------------------------------------------------
# Loading YAML with line numbers, duplicate keys refused, ${VAR} placeholders


class _Loader(yaml.SafeLoader):
    pass


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _walk_nodes(
    node: yaml.Node,
    loc: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    problems: list[tuple[tuple[str | int, ...], str]],
) -> None:
    if len(lines) > MAX_SPEC_NODES:
        # Aliases can make a small file expand to billions of values ("billion laughs").
        raise InputError(f"more than {MAX_SPEC_NODES} values (YAML aliases expanding?)")
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first:
                problems.append(
                    (
                        (*loc, key),
                        f"duplicate key {key!r} at line {line} (first at line "
                        f"{first[key]}): YAML would silently keep only the last one",
                    )
                )
                continue
            first[key] = line
            lines[(*loc, key)] = line
            _walk_nodes(value_node, (*loc, key), lines, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*loc, i)] = item.start_mark.line + 1
            _walk_nodes(item, (*loc, i), lines, problems)


def _substitute(
    value: Any,
    loc: tuple[str | int, ...],
    variables: Mapping[str, str],
    problems: list[tuple[tuple[str | int, ...], str]],
) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, (*loc, k), variables, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*loc, i), variables, problems) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def repl(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                given = ", ".join(sorted(variables)) or "none"
                problems.append(
                    (loc, f"placeholder ${{{m.group(1)}}} has no value (values given: {given})")
                )
                return m.group(0)
            return variables[m.group(1)]

        return _PLACEHOLDER.sub(repl, value)
    return value


def _unwrap(tp: Any) -> list[Any]:
    """The candidate types inside Annotated / Optional / list / Union."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(tp) for t in _unwrap(arg)]
    return [tp]


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (for 'did you mean')."""
    current: list[Any] = [SystemSpec]
    for part in loc:
        nxt: list[Any] = []
        for tp in current:
            if isinstance(part, int) and typing.get_origin(tp) is list:
                nxt += _unwrap(typing.get_args(tp)[0])
            elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
                field = tp.model_fields.get(part)
                if field is not None:
                    nxt += _unwrap(field.annotation)
        current = [t for tp in nxt for t in _unwrap(tp)]
    for tp in current:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
    return None


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_YAML_TYPES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "a mapping",
    type(None): "empty (null)",
}


def _describe(value: Any, secret: bool) -> str:
    kind = _YAML_TYPES.get(type(value), type(value).__name__)
    if secret or isinstance(value, dict | list) or value is None:
        return kind
    text = repr(value)
    return f"{kind} {text[:60] + '...' if len(text) > 60 else text}"


def _untagged(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The field path without the tag of the location union (``locations[0].record.url`` is
    ``locations[0].url``: an object-store or a record-store location, chosen by its URL)."""
    return tuple(
        part
        for i, part in enumerate(loc)
        if not (part in ("store", "record") and i >= 2 and loc[i - 2] == "locations")
    )


def _translate(exc: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    for err in exc.errors():
        loc = _untagged(tuple(err["loc"]))
        kind = err["type"]
        secret = bool(loc) and loc[0] == "credentials"
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, Problems):
            out += [(loc + p_loc, msg) for p_loc, msg in cause.problems]
            continue
        if kind == "missing":
            msg = "required field is missing"
        elif kind == "extra_forbidden":
            model = _model_at(loc[:-1])
            known = list(model.model_fields) if model else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(known)}"
            msg = f"unknown field ({hint})"
        elif kind == "value_error" and cause is not None:
            msg = str(cause)
        elif kind in _TYPE_NAMES:
            msg = f"must be {_TYPE_NAMES[kind]}, found {_describe(err.get('input'), secret)}"
            if kind == "string_type" and isinstance(err.get("input"), bool | int | float):
                # 63727941, 1e5, 0123 (octal), yes/no: YAML typed what was meant as text
                msg += " (YAML reads it as a number or boolean: put the value in quotes)"
        elif kind in ("literal_error", "enum"):
            msg = f"must be {ctx.get('expected')}, found {_describe(err.get('input'), secret)}"
        elif kind == "string_pattern_mismatch":
            shown = "" if secret else f" ({_describe(err.get('input'), False)})"
            msg = f"has an invalid format{shown}: must match {ctx.get('pattern')}"
        elif kind == "union_tag_invalid" or kind.startswith("model_"):
            msg = err["msg"]
        else:
            msg = err["msg"]
            if not secret and "input" in err and not isinstance(err["input"], dict | list):
                msg += f", found {_describe(err['input'], False)}"
        out.append((loc, msg))
    return out


def _format_problems(
    source: str,
    problems: list[tuple[tuple[str | int, ...], str]],
    lines: Mapping[tuple[str | int, ...], int],
) -> str:
    def line_of(loc: tuple[str | int, ...]) -> int | None:
        while True:
            if loc in lines:
                return lines[loc]
            if not loc:
                return None
            loc = loc[:-1]

    ranked = []
    for loc, msg in problems:
        line = None if msg.startswith("duplicate key") else line_of(loc)
        where = f"line {line}: " if line else ""
        ranked.append((line or 0, f"  - {where}{fmt_loc(loc)}: {msg}"))
    ranked.sort(key=lambda r: r[0])  # stable: same line keeps the validator's order
    rows = list(dict.fromkeys(row for _, row in ranked))
    noun = "problem" if len(rows) == 1 else "problems"
    return f"invalid system spec {source} ({len(rows)} {noun}):\n" + "\n".join(rows)


def parse_spec(
    text: str, source: str = "<spec>", *, variables: Mapping[str, str] | None = None
) -> SystemSpec:
    """Validate YAML text as a system spec. ``${NAME}`` placeholders in string values are
    replaced from ``variables`` (only there: never from the environment, so the scope a reviewer
    reads is the scope that runs). InputError names the source, line, field and problem."""
    lines: dict[tuple[str | int, ...], int] = {}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                try:
                    _walk_nodes(node, (), lines, problems)
                except InputError as exc:
                    raise InputError(f"invalid system spec {source}: {exc}") from None
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(
            f"invalid system spec {source}: not valid YAML{where}: {problem}"
        ) from None
    if problems:
        raise InputError(_format_problems(source, problems, lines))
    if not isinstance(data, dict):
        found = _YAML_TYPES.get(type(data), type(data).__name__)
        raise InputError(
            f"invalid system spec {source}: the document must be a mapping of fields "
            f"(name, owner, ...), found {found}"
        )
    data = _substitute(data, (), variables or {}, problems)
    if problems:
        raise InputError(_format_problems(source, problems, lines))
    try:
        return SystemSpec.model_validate(data)
    except ValidationError as exc:
        raise InputError(_format_problems(source, _translate(exc), lines)) from None


def load_spec(path: str | Path, *, variables: Mapping[str, str] | None = None) -> SystemSpec:
    """Read and validate a system spec file. See :func:`parse_spec`."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"system spec {p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"system spec {p}: is a directory, expected a YAML file") from None
    except OSError as exc:
        raise InputError(f"system spec {p}: cannot read it ({exc.strerror})") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise InputError(f"invalid system spec {p}: larger than {MAX_SPEC_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid system spec {p}: not UTF-8 (byte {exc.start})") from None
    return parse_spec(text, str(p), variables=variables)


def load_spec_dir(
    directory: str | Path, *, variables: Mapping[str, str] | None = None
) -> list[SystemSpec]:
    """Every ``*.yaml`` / ``*.yml`` spec in a folder, checked pairwise with
    :func:`check_no_overlap`. The first invalid file raises."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"systems folder {d}: not a directory")
    files = sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    specs = [load_spec(p, variables=variables) for p in files]
    problems: list[str] = []
    for i, spec in enumerate(specs):
        try:
            check_no_overlap(spec, specs[i + 1 :])
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        raise InputError(f"systems folder {d}:\n" + "\n".join(problems))
    return specs
