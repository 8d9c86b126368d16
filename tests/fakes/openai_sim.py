"""``/sim/`` control API of the fake OpenAI, for tests that run it as a separate process.

No auth (it listens on loopback only). Routes:

- ``GET  /sim/state`` → ``{"calls": {id: summary}, "requests": [...], "responses_requests": [...],
  "ws_sessions": [{"events": [...types], "client_events": [...types], "transcript": [...]}]}``
- ``POST /sim/script`` ``{"script": [["user text", "assistant text"], ...]}``
- ``POST /sim/fail`` ``{"route": "responses", "status": 429, "times": 1, "delay": 0,
  "retry_after": 1, "code": null, "message": null}``; ``DELETE /sim/fail`` clears faults
- ``POST /sim/responses_output`` ``{"output": "text" | {...} | null}``
- ``POST /sim/calls/{call_id}/hangup`` ends a call from OpenAI's side
- ``POST /sim/calls/{call_id}/emit`` ``{...server event...}`` sends an event on the call
- ``POST /sim/reset`` forgets records, faults and the responses override
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .openai_common import Fault

if TYPE_CHECKING:
    from .openai_api import FakeOpenAI


def add_sim_routes(app: web.Application, fake: FakeOpenAI) -> None:
    """Register the ``/sim/`` routes that steer and inspect ``fake``."""

    async def state(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "calls": {cid: call.summary() for cid, call in fake.calls.items()},
                "requests": [r.as_dict() for r in fake.requests],
                "responses_requests": fake.responses_requests,
                "ws_sessions": [
                    {
                        "events": [e["type"] for e in m.events],
                        "client_events": [e.get("type") for e in m.client_events],
                        "transcript": m.transcript,
                    }
                    for m in fake.ws_sessions
                ],
            }
        )

    async def script(request: web.Request) -> web.Response:
        body = await _json(request)
        fake.script = [(str(u), str(a)) for u, a in body.get("script") or []]
        return web.json_response({"script": fake.script})

    async def fail(request: web.Request) -> web.Response:
        body = await _json(request)
        fields = {
            k: body[k]
            for k in ("status", "times", "delay", "retry_after", "code", "message")
            if k in body
        }
        try:
            fake.faults.add(Fault(route=str(body.get("route", "*")), **fields))
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def clear_faults(request: web.Request) -> web.Response:
        fake.faults.clear()
        return web.json_response({"ok": True})

    async def responses_output(request: web.Request) -> web.Response:
        fake.responses_output = (await _json(request)).get("output")
        return web.json_response({"ok": True})

    async def hangup(request: web.Request) -> web.Response:
        call = fake.calls.get(request.match_info["call_id"])
        if call is None:
            return web.json_response({"error": "no such call"}, status=404)
        await call.end("server")
        return web.json_response(call.summary())

    async def emit(request: web.Request) -> web.Response:
        call = fake.calls.get(request.match_info["call_id"])
        if call is None:
            return web.json_response({"error": "no such call"}, status=404)
        await call.emit(await _json(request))
        return web.json_response({"ok": True})

    async def reset(request: web.Request) -> web.Response:
        fake.requests.clear()
        fake.responses_requests.clear()
        fake.faults.clear()
        fake.responses_output = None
        return web.json_response({"ok": True})

    app.router.add_get("/sim/state", state)
    app.router.add_post("/sim/script", script)
    app.router.add_post("/sim/fail", fail)
    app.router.add_delete("/sim/fail", clear_faults)
    app.router.add_post("/sim/responses_output", responses_output)
    app.router.add_post("/sim/calls/{call_id}/hangup", hangup)
    app.router.add_post("/sim/calls/{call_id}/emit", emit)
    app.router.add_post("/sim/reset", reset)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
