"""Validation errors in words: which field, and what it must be."""

from __future__ import annotations

from pydantic_core import ErrorDetails

_KINDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
}
_RANGE = frozenset(
    {"greater_than_equal", "greater_than", "less_than", "less_than_equal", "finite_number"}
)


def describe_validation(error: ErrorDetails, *, skip: int = 0) -> tuple[str, str]:
    """``(field, problem)`` for one pydantic error, e.g. ``("reply_to", "must be a string")``.

    ``skip`` drops leading parts of the location (the tag of a discriminated union).
    """
    where = ".".join(str(part) for part in error["loc"][skip:])
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind in _KINDS:
        problem = f"must be {_KINDS[kind]}"
    elif kind == "missing":
        problem = "is missing"
    elif kind == "string_too_long":
        problem = f"is longer than {ctx.get('max_length')} characters"
    elif kind == "string_too_short":
        problem = "must not be empty" if ctx.get("min_length") == 1 else "is too short"
    elif kind in _RANGE:
        problem = "is out of range"
    elif kind == "string_unicode":
        problem = "is not valid Unicode text"
    elif kind == "string_pattern_mismatch":
        problem = "has characters that are not allowed"
    elif kind == "value_error":
        problem = str(ctx.get("error") or error["msg"])
    elif kind == "literal_error":
        problem = f"must be {ctx.get('expected')}"
    else:
        problem = f"is not valid ({error['msg']})"
    return where, problem
