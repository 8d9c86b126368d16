"""A loopback model provider for the real ``codex`` binary, and helpers to drive it in tests.

:class:`FakeCodexModel` answers ``POST /v1/responses`` with the server-sent event stream codex
0.169 consumes (``response.created``, ``output_item.added``, ``output_text.delta``,
``output_item.done``, ``response.completed`` with usage). By default it replies
``FAKE-REPLY to: <last user text>``, so a test can prove what the model saw; tests can script
messages (with a ``phase``), make it slow, or make it fail with an HTTP status. Every request
body is kept in :attr:`FakeCodexModel.requests`. It binds 127.0.0.1 only and runs in a thread,
so it serves codex whichever event loop a test uses.

:func:`codex_args` gives the ``codex app-server`` flags that point codex at it and keep every
connection on loopback (no plugin sync, no analytics, no login-shell snapshot).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bridgehost.codex import AppServerClient

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_CODEX = REPO_ROOT / ".codex-npm" / "node_modules" / ".bin" / "codex"
KEY_ENV = "BRIDGEHOST_FAKE_MODEL_KEY"
CODEX_ENV = {KEY_ENV: "sk-fake-codex-model", "RUST_LOG": "warn"}
"""Environment the app-server needs for the fake provider."""

QUIET_FLAGS = (
    "--disable",
    "plugins",
    "--disable",
    "apps",
    "--disable",
    "remote_plugin",
    "--disable",
    "plugin_sharing",
    "--disable",
    "tool_suggest",
    "--disable",
    "shell_snapshot",
    "-c",
    "analytics.enabled=false",
)


def find_codex_binary() -> str | None:
    """``$BRIDGEHOST_CODEX_BIN``, else ``.codex-npm/node_modules/.bin/codex``, else PATH.

    A relative path in the variable is taken from the current directory, made absolute so that
    it still holds for a child started in another directory; a bare name is looked up on PATH.
    """
    env = os.environ.get("BRIDGEHOST_CODEX_BIN", "").strip()
    if env:
        if os.sep in env:
            return str(Path(env).absolute())
        return shutil.which(env) or env
    if LOCAL_CODEX.exists():
        return str(LOCAL_CODEX)
    return shutil.which("codex")


CODEX_CONFIG_TOML = """\
model_provider = "fake"
model = "fake-model"
sandbox_mode = "read-only"
approval_policy = "never"

[analytics]
enabled = false

[features]
plugins = false
apps = false
remote_plugin = false
plugin_sharing = false
tool_suggest = false
shell_snapshot = false

[model_providers.fake]
name = "fake"
base_url = "http://127.0.0.1:{port}/v1"
wire_api = "responses"
env_key = "{key_env}"
request_max_retries = 0
stream_max_retries = 0
"""


def codex_home_config(port: int, key_env: str = KEY_ENV) -> str:
    """``$CODEX_HOME/config.toml``: the fake provider on ``port`` and no outbound extras, so
    every ``codex app-server`` started on that home (by any process) stays on loopback."""
    return CODEX_CONFIG_TOML.format(port=port, key_env=key_env)


def codex_args(
    port: int | None = None, *, base_url: str | None = None, key_env: str = KEY_ENV
) -> list[str]:
    """``app-server`` flags: the fake provider (on ``port``, or at ``base_url``) plus the
    loopback-only switches."""
    base_url = base_url or f"http://127.0.0.1:{port}/v1"
    provider = (
        f'model_providers.fake={{name="fake", base_url="{base_url}", '
        f'wire_api="responses", env_key="{key_env}", request_max_retries=0, '
        "stream_max_retries=0}"
    )
    return [
        "-c",
        provider,
        "-c",
        'model_provider="fake"',
        "-c",
        'model="fake-model"',
        "-c",
        'sandbox_mode="read-only"',
        "-c",
        'approval_policy="never"',
        *QUIET_FLAGS,
    ]


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message in a Responses request body."""
    for item in reversed(body.get("input") or []):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            texts = [
                p.get("text", "")
                for p in item.get("content") or []
                if p.get("type") in ("input_text", "text")
            ]
            if texts:
                return "\n".join(texts)
    return ""


def input_texts(body: dict[str, Any]) -> list[str]:
    """Every text of every user/assistant message in a request's ``input``, in order."""
    return [
        str(p.get("text"))
        for item in body.get("input") or []
        if item.get("role") in ("user", "assistant")
        for p in item.get("content") or []
        if isinstance(p, dict) and p.get("text")
    ]


TOOL_CALL = "tool_call"
"""The phase of a scripted message that is a function call: its text is
``{"name": ..., "arguments": {...}}`` (see :meth:`FakeCodexModel.script_tool_call`)."""


def response_stream(messages: Sequence[tuple[str | None, str]], model: str) -> bytes:
    """The SSE body of one response carrying ``messages`` as (phase, text) pairs."""
    resp_id, created = f"resp_{uuid.uuid4().hex[:16]}", int(time.time())
    base = {"id": resp_id, "object": "response", "created_at": created, "model": model}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**base, "status": "in_progress", "output": []}}
    ]
    done_items = []
    for index, (phase, text) in enumerate(messages):
        if phase == TOOL_CALL:
            call = json.loads(text)
            item = {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex[:16]}",
                "status": "completed",
                "call_id": f"call_{uuid.uuid4().hex[:16]}",
                "name": call["name"],
                "arguments": json.dumps(call["arguments"]),
            }
            events += [
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "arguments": ""},
                },
                {"type": "response.output_item.done", "output_index": index, "item": item},
            ]
            done_items.append(item)
            continue
        item = {
            "type": "message",
            "id": f"msg_{uuid.uuid4().hex[:16]}",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        if phase:
            item["phase"] = phase
        events += [
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**item, "status": "in_progress", "content": []},
            },
            {
                "type": "response.output_text.delta",
                "item_id": item["id"],
                "output_index": index,
                "content_index": 0,
                "delta": text,
            },
            {"type": "response.output_item.done", "output_index": index, "item": item},
        ]
        done_items.append(item)
    events.append(
        {
            "type": "response.completed",
            "response": {
                **base,
                "status": "completed",
                "output": done_items,
                "usage": {
                    "input_tokens": 10,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": 5,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": 15,
                },
            },
        }
    )
    return b"".join(_sse(e) for e in events)


class FakeCodexModel:
    """The fake Responses API; use as a context manager or call :meth:`close`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.delay_s = 0.0
        self.scripts: list[list[tuple[str | None, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def script(self, *messages: tuple[str | None, str]) -> None:
        """Answer the next request with these (phase, text) messages instead of the echo."""
        with self._lock:
            self.scripts.append(list(messages))

    def script_tool_call(self, name: str, arguments: dict[str, Any]) -> None:
        """Answer the next request with a call of tool ``name`` (e.g. ``exec_command``)."""
        self.script((TOOL_CALL, json.dumps({"name": name, "arguments": arguments})))

    def posts(self) -> list[dict[str, Any]]:
        """Bodies of the ``/responses`` requests so far."""
        with self._lock:
            return list(self.requests)

    def _next(self, body: dict[str, Any]) -> tuple[int, float, list[tuple[str | None, str]]]:
        with self._lock:
            self.requests.append(body)
            script = self.scripts.pop(0) if self.scripts else None
            status, delay = self.status, self.delay_s
        return status, delay, script or [(None, f"FAKE-REPLY to: {last_user_text(body)}")]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(200, b'{"models": [], "data": [], "object": "list"}', "application/json")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                if not self.path.split("?")[0].endswith("/responses"):
                    self._send(404, b'{"error": {"message": "no such route"}}', "application/json")
                    return
                status, delay, messages = model._next(body)
                if delay and model._stop.wait(delay):
                    return
                if status != 200:
                    error = {
                        "error": {
                            "message": "fake upstream failure",
                            "type": "server_error",
                            "code": None,
                        }
                    }
                    self._send(status, json.dumps(error).encode(), "application/json")
                    return
                stream = response_stream(messages, str(body.get("model", "fake-model")))
                self._send(200, stream, "text/event-stream")

        return Handler

    def close(self) -> None:
        """Stop serving (slow requests are released first)."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeCodexModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``), children first."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies count as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


async def run_turn(
    client: AppServerClient, thread_id: str, text: str, timeout: float = 30.0
) -> dict[str, Any]:
    """Start a turn with ``text`` and return its ``turn/completed`` turn."""
    with client.subscribe({"turn/completed"}) as sub:
        started = await client.request(
            "turn/start",
            {"threadId": thread_id, "input": [{"type": "text", "text": text, "text_elements": []}]},
        )
        while True:
            note = await sub.get(timeout=timeout)
            if note["params"]["turn"]["id"] == started["turn"]["id"]:
                return note["params"]["turn"]


async def seed_thread(
    client: AppServerClient, cwd: Path, texts: Sequence[str], name: str | None = None
) -> str:
    """A new thread in ``cwd`` with one completed turn per text; returns its id."""
    thread = (await client.request("thread/start", {"cwd": str(cwd)}))["thread"]
    if name:
        await client.request("thread/name/set", {"threadId": thread["id"], "name": name})
    for text in texts:
        turn = await run_turn(client, thread["id"], text)
        assert turn["status"] == "completed", turn
    return str(thread["id"])
