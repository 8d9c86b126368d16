"""``bridgehost gateway``: run the gateway until told to stop, as a systemd ``Type=notify`` unit.

Start-up order: check the config and secrets, select and start the providers (a missing or broken
selected provider stops here with plugin, version and error), recover calls a crash left open,
listen (on an inherited socket-activation socket, or by binding ``gateway_host:gateway_port``),
then ``READY=1``. While running, ``STATUS=`` says what the gateway is doing and ``WATCHDOG=1``
is sent from the event loop while the housekeeping task is alive. On SIGTERM/SIGINT:
``STOPPING=1``, the live call ends with reason ``gateway_stop``, the tunnel stops, sockets close.

Requests are logged at DEBUG only (:class:`DebugAccessLogger`): at the default INFO level, health
probes and page loads do not fill the journal. Every connection is served by
:class:`~bridgehost.gateway.http_protocol.GuardedRequestHandler`: per-address connection caps and
header/body deadlines from ``[gateway]``, so clients that never finish a request cannot hold the
gateway's sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from bridgehost.config import LoadedConfig, requirements_problems
from bridgehost.gateway.app import Gateway, make_app
from bridgehost.gateway.connections import ConnectionGuard
from bridgehost.gateway.http_protocol import GuardedAppRunner
from bridgehost.plugins import PluginError, PluginHost
from bridgehost.providers import ProviderStartError, RealtimeBackend, TunnelMode
from bridgehost.systemd import (
    Notifier,
    inherited_sockets,
    run_watchdog,
    stop_on_signals,
    watchdog_interval,
)

log = structlog.get_logger("bridgehost.gateway")
access_log = structlog.get_logger("bridgehost.gateway.access")

HOUSEKEEPING_EVERY_S = 5.0


class DebugAccessLogger(AbstractAccessLogger):
    """aiohttp's access log as one DEBUG event per request: method, path (never the query
    string, which can carry a launch token), status and duration. Off unless the log level is
    DEBUG, so nothing is formatted per request otherwise."""

    @property
    def enabled(self) -> bool:
        """Whether DEBUG is on (aiohttp asks once per connection)."""
        return self.logger.isEnabledFor(logging.DEBUG)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log one answered request."""
        access_log.debug(
            "http request",
            method=request.method,
            path=request.path,
            status=response.status,
            duration_ms=round(time * 1000, 1),
        )


class GatewayStartError(RuntimeError):
    """The gateway cannot start; the message lists every reason and its fix."""


def build_gateway(loaded: LoadedConfig, host: PluginHost | None = None) -> Gateway:
    """Check requirements, select providers and assemble a :class:`Gateway` (nothing started)."""
    config = loaded.config
    host = host or PluginHost.for_config(config)
    needs = host.secret_needs(config, "gateway")
    problems = [str(p) for p in requirements_problems(loaded, "gateway", needs)]
    tunnel = backend = record = None
    local_tunnel = False
    try:
        provided = host.select("tunnel_modes", config.realtime.effective_tunnel_mode)
        tunnel = host.build(provided, config, loaded.secrets)
        local_tunnel = isinstance(provided.record, TunnelMode) and provided.record.managed_process
    except (PluginError, ValueError) as exc:
        problems.append(str(exc))
    try:
        provided = host.select("realtime_backends", config.realtime.backend)
        backend = host.build(provided, config, loaded.secrets)
        if isinstance(provided.record, RealtimeBackend):
            record = provided.record
    except (PluginError, ValueError) as exc:
        problems.append(str(exc))
    if problems or tunnel is None or backend is None or record is None:
        raise GatewayStartError("bridge-gateway cannot start:\n- " + "\n- ".join(problems))
    return Gateway.create(
        config,
        loaded.secrets,
        tunnel=tunnel,
        backend=backend,
        backend_record=record,
        tunnel_is_local_process=local_tunnel,
    )


async def _listen(runner: web.AppRunner, gateway: Gateway) -> list[str]:
    inherited = inherited_sockets()
    if inherited:
        sites: list[web.BaseSite] = [web.SockSite(runner, sock) for sock in inherited]
    else:
        rt = gateway.config.realtime
        sites = [web.TCPSite(runner, rt.gateway_host, rt.gateway_port, reuse_address=True)]
    for site in sites:
        try:
            await site.start()
        except OSError as exc:
            raise GatewayStartError(
                f"bridge-gateway cannot listen on {site.name}: {exc.strerror or exc}. Is another "
                "gateway running? Change realtime.gateway_port or stop the other process."
            ) from exc
    return [site.name for site in sites]


async def _restore_surface(gateway: Gateway) -> None:
    """Keep an armed surface across a restart when the public origin is unchanged."""
    state = gateway.surface.state
    if not state.armed:
        return
    try:
        await gateway.tunnel.start()
    except ProviderStartError as exc:
        await gateway.surface.disarm(f"restart: tunnel failed ({exc})"[:64], "gateway")
        return
    if gateway.tunnel.public_url != state.public_url:
        await gateway.surface.disarm("tunnel_url_changed", "gateway")


async def _housekeeping(gateway: Gateway, notifier: Notifier) -> None:
    last_status = ""
    while True:
        await gateway.surface.auto_disarm_if_idle(call_active=gateway.calls.busy)
        line = gateway.status_line()
        if line != last_status:
            notifier.status(line)
            last_status = line
        await asyncio.sleep(HOUSEKEEPING_EVERY_S)


async def serve(
    gateway: Gateway,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[list[str]], None] | None = None,
) -> None:
    """Run ``gateway`` until ``stop`` is set (or SIGTERM/SIGINT arrives)."""
    notifier = Notifier()
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    notifier.status("starting: recovering calls and starting providers")
    recovered = await gateway.calls.recover()
    await gateway.backend.start()
    guard = ConnectionGuard.for_gateway(gateway)
    runner = GuardedAppRunner(
        make_app(gateway), guard=guard, shutdown_timeout=5.0, access_log_class=DebugAccessLogger
    )
    await runner.setup()
    tasks: list[asyncio.Task[None]] = []
    try:
        addresses = await _listen(runner, gateway)
        await _restore_surface(gateway)
        housekeeping = asyncio.create_task(_housekeeping(gateway, notifier))
        tasks.append(housekeeping)
        interval = watchdog_interval()
        if interval:
            tasks.append(
                asyncio.create_task(
                    run_watchdog(notifier, interval, lambda: not housekeeping.done())
                )
            )
        notifier.ready(gateway.status_line())
        log.info(
            "gateway ready",
            listening=addresses,
            recovered_calls=recovered,
            backend=gateway.config.realtime.backend,
            tunnel_mode=gateway.config.realtime.effective_tunnel_mode,
        )
        if on_ready:
            on_ready(addresses)
        await stop.wait()
    finally:
        notifier.stopping("stopping: ending the live call")
        log.info("gateway stopping")
        for site in list(runner.sites):  # new connections wait in the (socket-activated)
            await site.stop()  # listen queue for the next process; open ones stay up
        await gateway.calls.shutdown("gateway_stop")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await gateway.tunnel.stop()
        await gateway.hub.close_all()
        await runner.cleanup()
        guard.close()
        with contextlib.suppress(Exception):
            await gateway.backend.stop()
        gateway.store.close()
        notifier.close()


def bound_address(names: list[str]) -> tuple[str, int] | None:
    """The first ``http://host:port`` site name as ``(host, port)``, for messages."""
    for name in names:
        if name.startswith("http://"):
            host, _, port = name.removeprefix("http://").rpartition(":")
            with contextlib.suppress(ValueError):
                return host.strip("[]"), int(port)
    return None


__all__ = ["GatewayStartError", "build_gateway", "serve"]
