"""A stand-in for ``cloudflared tunnel --url …`` (a quick tunnel), stdlib only.

It prints to stderr what cloudflared prints (zerolog console
lines ``<RFC3339> <LVL> <msg>``, the ASCII box around the ``https://<words>.trycloudflare.com``
URL, the metrics server line, "Registered tunnel connection") and serves the metrics routes
``/ready`` (503 until "connected", then 200), ``/healthcheck`` and ``/quicktunnel`` on the
``--metrics`` address. It proxies nothing: the public hostname cannot resolve in tests, which map
it to the local gateway through the provider's probe seam instead.

Knobs (environment variables):

``FAKE_CLOUDFLARED_MODE``
    ``ok`` (default); ``rate_limit`` (the 429 / error 1015 lines, exit 1); ``crash_before_url``
    (a network error, exit 1); ``no_url`` (never prints a URL, runs until signalled);
    ``slow_ready`` (``/ready`` says 503 for ``FAKE_CLOUDFLARED_READY_AFTER_S``); ``crash_after``
    (runs normally, then exits 1 after ``FAKE_CLOUDFLARED_CRASH_AFTER_S``).
``FAKE_CLOUDFLARED_URL``
    the URL to print (default: four random words under trycloudflare.com).
``FAKE_CLOUDFLARED_CRASH_ONCE``
    with ``crash_after``: a file path; crash only if it does not exist yet (and create it), so
    the restarted child keeps running.
``FAKE_CLOUDFLARED_RECORD``
    a directory; each run writes ``<pid>.json`` with its argv, environment, pid and ppid.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WORDS = (
    "oklahoma",
    "solo",
    "younger",
    "truck",
    "maple",
    "river",
    "quiet",
    "lantern",
    "cobalt",
    "violin",
    "harbor",
    "meadow",
    "puzzle",
    "orbit",
    "canyon",
    "velvet",
    "tender",
    "gravity",
    "sonic",
    "pepper",
    "amber",
    "falcon",
    "ridge",
    "ocean",
)
BANNER = "Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):"


def log(level: str, message: str) -> None:
    """One zerolog console line on stderr, as cloudflared writes them without a TTY."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sys.stderr.write(f"{stamp} {level} {message}\n")
    sys.stderr.flush()


def log_table(rows: list[str]) -> None:
    """``cliutil.LogTable``: a box padded to the longest row plus two spaces a side."""
    width = max(len(row) for row in rows) + 4
    log("INF", "+" + "-" * width + "+")
    for row in rows:
        log("INF", "|  " + row.ljust(width - 4) + "  |")
    log("INF", "+" + "-" * width + "+")


def parse_args(argv: list[str]) -> dict[str, str]:
    """The flags we care about (``--metrics``, ``--url``, ``--protocol``); others are ignored."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            flags[key] = value
        elif arg in {"--metrics", "--url", "--protocol"} and i + 1 < len(argv):
            flags[arg[2:]] = argv[i + 1]
            i += 1
        i += 1
    return flags


class State:
    """What the metrics server reports."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.connected = False
        self.connector_id = str(uuid.uuid4())


def metrics_handler(state: State) -> type[BaseHTTPRequestHandler]:
    """A request handler class answering cloudflared's metrics routes from ``state``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/ready":
                ready = 1 if state.connected else 0
                body = {
                    "status": 200 if ready else 503,
                    "readyConnections": ready,
                    "connectorId": state.connector_id,
                }
                self._send(200 if ready else 503, json.dumps(body), "application/json")
            elif self.path == "/healthcheck":
                self._send(200, "OK\n", "text/plain")
            elif self.path == "/quicktunnel":
                self._send(200, json.dumps({"hostname": state.hostname}), "application/json")
            elif self.path == "/metrics":
                self._send(200, "cloudflared_tunnel_ha_connections 1\n", "text/plain")
            else:
                self._send(404, "404 page not found\n", "text/plain")

        def _send(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def record_run(directory: str, argv: list[str]) -> None:
    """Write what this run saw, for tests that check the command line and environment."""
    path = Path(directory) / f"{os.getpid()}.json"
    data = {"argv": argv, "env": dict(os.environ), "pid": os.getpid(), "ppid": os.getppid()}
    path.write_text(json.dumps(data))


def main(argv: list[str]) -> int:
    """Run like ``cloudflared``; returns the exit code."""
    env = os.environ
    mode = env.get("FAKE_CLOUDFLARED_MODE", "ok")
    if env.get("FAKE_CLOUDFLARED_RECORD"):
        record_run(env["FAKE_CLOUDFLARED_RECORD"], argv)
    if not argv or argv[0] != "tunnel":
        log("ERR", f"fake cloudflared only knows 'tunnel', got {argv!r}")
        return 2
    flags = parse_args(argv[1:])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    log(
        "INF",
        "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, "
        "is a quick way to experiment and try it out. However, be aware that these account-less "
        "Tunnels have no uptime guarantee, are subject to the Cloudflare Online Services Terms "
        "of Use (https://www.cloudflare.com/website-terms/), and Cloudflare reserves the right "
        "to investigate your use of Tunnels for violations of such terms. If you intend to use "
        "Tunnels in production you should use a pre-created named tunnel by following: "
        "https://developers.cloudflare.com/cloudflare-one/connections/connect-apps",
    )
    log("INF", "Requesting new quick Tunnel on trycloudflare.com...")
    if mode == "rate_limit":
        log(
            "ERR",
            "Error unmarshaling QuickTunnel response: error code: 1015 "
            "error=\"invalid character 'e' looking for beginning of value\" "
            'status_code="429 Too Many Requests"',
        )
        log(
            "ERR",
            "failed to unmarshal quick Tunnel: invalid character 'e' looking for "
            "beginning of value",
        )
        return 1
    if mode == "crash_before_url":
        log(
            "ERR",
            'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": '
            "dial tcp: lookup api.trycloudflare.com on 127.0.0.53:53: no such host",
        )
        return 1
    if mode == "no_url":
        stop.wait(600)
        log("INF", "Initiating graceful shutdown due to signal terminated ...")
        return 0

    url = env.get("FAKE_CLOUDFLARED_URL") or (
        "https://" + "-".join(random.sample(WORDS, 4)) + ".trycloudflare.com"
    )
    state = State(url.removeprefix("https://"))
    server = None
    if "metrics" in flags:
        host, _, port = flags["metrics"].rpartition(":")
        server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), metrics_handler(state))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    time.sleep(0.05)
    log_table([BANNER, url])
    log(
        "INF",
        "Cannot determine default configuration path. No file [config.yml config.yaml] "
        "in [~/.cloudflared ~/.cloudflare-warp ~/cloudflare-warp /etc/cloudflared "
        "/usr/local/etc/cloudflared]",
    )
    log("INF", "Version 2026.8.0 (Checksum fake)")
    log("INF", "GOOS: linux, GOVersion: go1.24.6, GoArch: amd64")
    settings = " ".join(
        f"{key}:{value}"
        for key, value in sorted({"ha-connections": "1", "no-autoupdate": "true", **flags}.items())
    )
    log("INF", f"Settings: map[{settings}]")
    log("INF", "cloudflared will not automatically update if installed by a package manager.")
    log("INF", f"Generated Connector ID: {state.connector_id}")
    log("INF", f"Initial protocol {flags.get('protocol', 'quic')}")
    if server is not None:
        log("INF", f"Starting metrics server on {flags['metrics']}/metrics")
    if mode == "slow_ready":
        stop.wait(float(env.get("FAKE_CLOUDFLARED_READY_AFTER_S", "1")))
    if stop.is_set():
        return 0
    state.connected = True
    log(
        "INF",
        f"Registered tunnel connection connIndex=0 connection={uuid.uuid4()} event=0 "
        "ip=198.41.192.7 location=fake01 protocol=quic",
    )

    crash = mode == "crash_after"
    once = env.get("FAKE_CLOUDFLARED_CRASH_ONCE")
    if crash and once:
        crash = not Path(once).exists()
    if crash:
        if stop.wait(float(env.get("FAKE_CLOUDFLARED_CRASH_AFTER_S", "1"))):
            return 0
        if once:
            Path(once).touch()
        log("ERR", 'Serve tunnel error error="connection with edge closed" connIndex=0')
        log("ERR", "fake cloudflared crashing as FAKE_CLOUDFLARED_CRASH_AFTER_S asked")
        os._exit(1)
    stop.wait(600)
    log("INF", "Initiating graceful shutdown due to signal terminated ...")
    log("INF", "Tunnel server stopped")
    if server is not None:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
