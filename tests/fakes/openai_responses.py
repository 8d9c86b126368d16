"""The Responses API part of the fake: ``POST /v1/responses`` bodies, plain and structured.

With ``text.format = {"type": "json_schema", "schema": …}`` the answer is a JSON object built by
walking the schema (``$ref``/``$defs``, ``anyOf``, enums, bounds), with strings derived from the
input text, so it validates and still says something about what was sent. ``stream: true`` gets
the server-sent event sequence of the real API.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .openai_common import RECORD, error_response, new_id

if TYPE_CHECKING:
    from .openai_api import FakeOpenAI

#: What a test can put in ``FakeOpenAI.responses_output``: fixed text, a fixed JSON object, or a
#: function of the request body returning either.
ResponsesOutput = str | dict[str, Any] | Callable[[dict[str, Any]], "str | dict[str, Any]"] | None


def input_text(body: dict[str, Any]) -> str:
    """The text of a Responses request's ``input``: a string, or its user messages' text
    (every message's when there is no user message)."""
    items = body.get("input")
    if isinstance(items, str):
        return items
    items = [i for i in items or [] if isinstance(i, dict)]
    if any(i.get("role") == "user" for i in items):
        items = [i for i in items if i.get("role") == "user"]
    texts: list[str] = []
    for item in items:
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                p.get("text", "")
                for p in content
                if isinstance(p, dict) and p.get("type") in ("input_text", "text", "output_text")
            )
    return "\n".join(t for t in texts if t)


class SchemaFiller:
    """Builds an instance of a JSON schema (the subset Structured Outputs allows, and more)."""

    def __init__(self, root: dict[str, Any], text: str) -> None:
        self.root = root
        self.words = text.split() or ["call"]
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
        self.sentences = sentences or [" ".join(self.words[:8])]

    def first_words(self, n: int) -> str:
        """The first ``n`` words of the input."""
        return " ".join(self.words[:n])

    def fill(self, schema: Any, name: str = "value", depth: int = 0) -> Any:
        """An instance of ``schema``; ``name`` is the property it is for (guides strings)."""
        if not isinstance(schema, dict) or depth > 12:
            return None
        if "$ref" in schema:
            return self.fill(self._resolve(schema["$ref"]), name, depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            if options:
                usable = [
                    o for o in options if not (isinstance(o, dict) and o.get("type") == "null")
                ]
                if key == "allOf":
                    merged: dict[str, Any] = {}
                    for option in options:
                        merged.update(self._resolve(option["$ref"]) if "$ref" in option else option)
                    return self.fill(merged, name, depth + 1)
                return self.fill((usable or options)[0], name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        return getattr(self, f"_fill_{kind}", self._fill_null)(schema, name, depth)

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.root
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")] if part else node
        return node

    def _fill_object(self, schema: dict[str, Any], name: str, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        return {key: self.fill(sub, key, depth + 1) for key, sub in props.items()}

    def _fill_array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        count = max(int(schema.get("minItems", 0)), min(2, len(self.sentences)), 1)
        count = min(count, int(schema.get("maxItems", count)))
        items = schema.get("items") or {}
        plain = self._resolve(items["$ref"]) if "$ref" in items else items
        varied = plain.get("type") == "string" and not {"enum", "const"} & plain.keys()
        return [
            self._string_for(plain, name, index=i) if varied else self.fill(items, name, depth + 1)
            for i in range(count)
        ]

    def _fill_string(self, schema: dict[str, Any], name: str, depth: int) -> str:
        return self._string_for(schema, name)

    def _string_for(self, schema: dict[str, Any], name: str, index: int = 0) -> str:
        fmt = schema.get("format")
        if fmt == "date-time":
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if fmt == "date":
            return time.strftime("%Y-%m-%d", time.gmtime())
        lowered = name.lower()
        if "summary" in lowered or "description" in lowered:
            value = f"Summary: {self.first_words(12)}"
        elif "title" in lowered or "subject" in lowered or "name" in lowered:
            value = self.first_words(5).strip(" .,;:!?")
            value = value[:1].upper() + value[1:]
        else:
            value = self.sentences[index % len(self.sentences)]
        value = value[: int(schema.get("maxLength", len(value)))]
        return value.ljust(int(schema.get("minLength", 0)), ".")

    def _fill_integer(self, schema: dict[str, Any], name: str, depth: int) -> int:
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 2) - 1)
        return int(max(low, min(high, max(low, 1))))

    def _fill_number(self, schema: dict[str, Any], name: str, depth: int) -> float:
        return float(self._fill_integer(schema, name, depth))

    def _fill_boolean(self, schema: dict[str, Any], name: str, depth: int) -> bool:
        return False

    def _fill_null(self, schema: dict[str, Any], name: str, depth: int) -> None:
        return None


def output_for(body: dict[str, Any], override: ResponsesOutput) -> str:
    """The ``output_text`` the fake answers for a request body."""
    if callable(override):
        override = override(body)
    if isinstance(override, dict):
        return json.dumps(override)
    if isinstance(override, str):
        return override
    fmt = (body.get("text") or {}).get("format") or {}
    text = input_text(body)
    if fmt.get("type") == "json_schema":
        schema = fmt.get("schema") or {}
        return json.dumps(SchemaFiller(schema, text).fill(schema))
    if fmt.get("type") == "json_object":
        return json.dumps({"summary": f"Summary: {' '.join(text.split()[:12])}"})
    return f"Summary: {' '.join(text.split()[:24])}"


def response_object(body: dict[str, Any], text: str) -> dict[str, Any]:
    """A completed ``response`` object, shaped as the real API returns it."""
    words = input_text(body).split() + str(body.get("instructions") or "").split()
    in_tokens = max(1, len(words))
    out_tokens = max(1, len(text.split()))
    message = {
        "id": new_id("msg", 32),
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    fmt = (body.get("text") or {}).get("format") or {"type": "text"}
    return {
        "id": new_id("resp", 32),
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model", ""),
        "output": [message],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": fmt, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": in_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": in_tokens + out_tokens,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def stream_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The server-sent events of a streamed response, ending in ``response.completed``."""
    message = response["output"][0]
    text = message["content"][0]["text"]
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    ids = {"item_id": message["id"], "output_index": 0, "content_index": 0}
    empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **ids, "part": empty_part},
    ]
    events += [
        {"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": []}
        for piece in re.findall(r"\s*\S+\s*", text) or [text]
    ]
    events += [
        {"type": "response.output_text.done", **ids, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **ids, "part": message["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": response},
    ]
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


def strict_schema_problem(schema: Any, name: str) -> str | None:
    """What the real API says about a schema that Structured Outputs' strict mode rejects."""
    prefix = f"Invalid schema for response_format '{name}'"
    if not isinstance(schema, dict) or schema.get("type") != "object":
        kind = schema.get("type") if isinstance(schema, dict) else type(schema).__name__
        return (
            f"{prefix}: schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{kind}\"'."
        )

    def walk(node: Any, context: tuple[str, ...]) -> str | None:
        if isinstance(node, list):
            return next((p for i, n in enumerate(node) if (p := walk(n, (*context, str(i))))), None)
        if not isinstance(node, dict):
            return None
        where = f"In context=({', '.join(repr(c) for c in context)})"
        if node.get("type") == "object" or "properties" in node:
            if node.get("additionalProperties") is not False:
                return (
                    f"{prefix}: {where}, 'additionalProperties' is required to be supplied "
                    "and to be false."
                )
            missing = [k for k in node.get("properties") or {} if k not in node.get("required", [])]
            if missing:
                return (
                    f"{prefix}: {where}, 'required' is required to be supplied and to be an "
                    f"array including every key in properties. Missing '{missing[0]}'."
                )
        for key in ("properties", "$defs", "definitions"):
            for sub_name, sub in (node.get(key) or {}).items():
                if problem := walk(sub, (*context, key, sub_name)):
                    return problem
        for key in ("items", "anyOf", "allOf", "oneOf"):
            if key in node and (problem := walk(node[key], (*context, key))):
                return problem
        return None

    return walk(schema, ())


async def handle_responses(fake: FakeOpenAI, request: web.Request) -> web.StreamResponse:
    """``POST /v1/responses``: validate like the real API, answer JSON or server-sent events."""
    body = request[RECORD].json
    if not isinstance(body, dict) or not body.get("model"):
        return error_response(
            400,
            "Missing required parameter: 'model'.",
            code="missing_required_parameter",
            param="model",
        )
    fake.responses_requests.append(body)
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        if not fmt.get("name"):
            return error_response(
                400,
                "Missing required parameter: 'text.format.name'.",
                code="missing_required_parameter",
                param="text.format.name",
            )
        if fmt.get("strict") and (problem := strict_schema_problem(fmt.get("schema"), fmt["name"])):
            return error_response(
                400, problem, code="invalid_json_schema", param="text.format.schema"
            )
    response = response_object(body, output_for(body, fake.responses_output))
    if not body.get("stream"):
        return web.json_response(response)
    stream = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await stream.prepare(request)
    for event in stream_events(response):
        await stream.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
    await stream.write_eof()
    return stream
