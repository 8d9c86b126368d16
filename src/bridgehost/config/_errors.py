"""Turn pydantic validation errors into :class:`ConfigProblem` lists people can act on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from inspect import isclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticUndefined

from bridgehost.config._models import BridgeConfig
from bridgehost.config._problems import ConfigProblem, CrossFieldError, FieldProblem

Loc = tuple[int | str, ...]

_KIND = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string in quotes",
    "list_type": 'a list such as ["a", "b"]',
    "path_type": "a path string in quotes",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
}


LEGACY_KEYS = frozenset(
    {"codex.app_server_port", "bridge", "branding", "presentation", "providers"}
)
"""Keys of older bridge configuration files that bridgehost does not read."""


@dataclass(frozen=True, slots=True)
class Found:
    """A translated problem, the keys it involves, and what to drop before re-validating.

    :param remove: the data location to delete so another pass can find the remaining
        (cross-field) problems; ``None`` for cross-field problems.
    """

    problem: ConfigProblem
    involved: frozenset[str]
    remove: Loc | None


def dotted(loc: Sequence[int | str]) -> str:
    """``("realtime", "trusted_proxies", 2)`` → ``realtime.trusted_proxies[2]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def render(value: Any, limit: int = 80) -> str:
    """A value the way it would look in TOML (roughly), shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, (str, list, int, float)):
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _resolve(loc: Loc) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The model containing the last named part of ``loc``, and that part's field (if known)."""
    model: type[BaseModel] | None = BridgeConfig
    parent: type[BaseModel] | None = BridgeConfig
    field: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None:
            return parent, None
        parent = model
        field = model.model_fields.get(part)
        if field is None:
            return model, None
        annotation = field.annotation
        model = annotation if isclass(annotation) and issubclass(annotation, BaseModel) else None
    return parent, field


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model that validates the table at ``loc`` (``BridgeConfig`` for ``()``)."""
    model: type[BaseModel] | None = BridgeConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            return None
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        model = annotation if isclass(annotation) and issubclass(annotation, BaseModel) else None
    return model


def _default_text(field: FieldInfo | None) -> str | None:
    if field is None:
        return None
    default = field.get_default(call_default_factory=True)
    if default is None or default is PydanticUndefined or isinstance(default, BaseModel):
        return None
    return render(default)


def _unknown_key(loc: Loc, value: Any) -> ConfigProblem:
    parent = _model_at(loc[:-1])
    known = list(parent.model_fields) if parent is not None else []
    name = str(loc[-1])
    prefix = dotted(loc[:-1])
    if dotted(loc) in LEGACY_KEYS:
        kind = "section" if isinstance(value, dict) else "key"
        shown = f"[{name}]" if kind == "section" and not prefix else dotted(loc)
        return ConfigProblem(
            dotted(loc),
            f"{shown} is a {kind} of the original bridge that bridgehost does not use",
            "remove it",
        )
    import difflib  # only for a mistyped key: the config loads without it

    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not prefix:
        what = f"unknown section [{name}]" if isinstance(value, dict) else f"unknown key {name}"
        suggestion = f"[{match[0]}]" if match else None
        fix = (
            f"rename it to [{match[0]}]"
            if match
            else "remove it; the sections are " + ", ".join(f"[{k}]" for k in known)
        )
    else:
        what = f"unknown key {prefix}.{name}"
        suggestion = f"{prefix}.{match[0]}" if match else None
        fix = (
            f"rename it to {match[0]}"
            if match
            else f"remove it; [{prefix}] accepts: " + ", ".join(known)
        )
    message = f"{what}; did you mean {suggestion}?" if suggestion else what
    return ConfigProblem(dotted(loc), message, fix)


def _field_message(err: ErrorDetails) -> tuple[str, str | None]:
    """Message and fix for an error that belongs to one key."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    _, field = _resolve(err["loc"])
    default = _default_text(field)
    use_default = f"remove the line to use the default ({default})" if default else None
    got = f"got {render(value)}"
    if kind == "value_error" and isinstance(ctx.get("error"), FieldProblem):
        problem: FieldProblem = ctx["error"]
        return problem.message, problem.fix or use_default
    if kind in _KIND:
        expected = _KIND[kind]
        fix = f"write {expected}" + (f", or {use_default}" if use_default else "")
        return f"expected {expected}, {got}", fix
    bounds = {
        "greater_than": ("greater than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if kind in bounds:
        words, name = bounds[kind]
        allowed = _range_text(field)
        bound_fix = f"use {allowed}" if allowed else None
        if use_default:
            bound_fix = f"{bound_fix}, or {use_default}" if bound_fix else use_default
        return f"must be {words} {ctx.get(name)}, {got}", bound_fix
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, {got}", use_default
    if kind == "string_too_short":
        return "must not be empty", use_default
    if kind == "value_error":
        return f"{ctx.get('error', err['msg'])}, {got}", use_default
    return f"{err['msg']}, {got}", use_default


def _range_text(field: FieldInfo | None) -> str | None:
    """``"a value from 1 to 65535"`` style text for a constrained number field."""
    if field is None:
        return None
    low = high = None
    for meta in field.metadata:
        if getattr(meta, "ge", None) is not None:
            low = meta.ge
        if getattr(meta, "gt", None) is not None:
            low = meta.gt + 1 if isinstance(meta.gt, int) else None
            if low is None:
                return f"a value greater than {meta.gt}"
        if getattr(meta, "le", None) is not None:
            high = meta.le
    if low is not None and high is not None:
        return f"a value from {low} to {high}"
    if low is not None:
        return f"a value of at least {low}"
    if high is not None:
        return f"a value of at most {high}"
    return None


def translate(errors: Sequence[ErrorDetails]) -> list[Found]:
    """Every pydantic error as one or more :class:`Found`, in the order pydantic reported."""
    found: list[Found] = []
    for err in errors:
        loc: Loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        error = ctx.get("error")
        if err["type"] == "value_error" and isinstance(error, CrossFieldError):
            for issue in error.issues:
                keys = frozenset(dotted((*loc, key)) for key in issue.keys)
                found.append(
                    Found(
                        ConfigProblem(dotted((*loc, issue.keys[0])), issue.message, issue.fix),
                        keys,
                        None,
                    )
                )
            continue
        if err["type"] == "extra_forbidden":
            problem = _unknown_key(loc, err.get("input"))
        else:
            message, fix = _field_message(err)
            problem = ConfigProblem(dotted(loc) or "bridge.config.toml", message, fix)
        found.append(Found(problem, frozenset({dotted(loc)}), loc))
    return found
