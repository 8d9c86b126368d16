"""The floor for any aiohttp gateway: a bare aiohttp app answering ``GET /healthz`` (and
echoing binary WebSocket messages on ``/ws``, the floor for relayed audio).

Run by the start-up benchmark on the same interpreter as the services, so that the ratio of a
service's start-up and memory to this one's is what bridgehost itself adds. It tells a
``NOTIFY_SOCKET`` ``READY=1`` once it listens, as the services do.

Usage: python bench/floor_app.py PORT
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from aiohttp import web


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type is web.WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


def _notify_ready() -> None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(f"READY=1\nMAINPID={os.getpid()}".encode(), address)


async def main(port: int) -> None:
    """Serve ``/healthz`` on 127.0.0.1:``port`` until cancelled."""
    app = web.Application()
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/ws", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    _notify_ready()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))  # SIGTERM ends it
