"""Every hook a bridgehost plugin can implement.

Three hooks fill **slots**: they register named providers and the config selects which one runs
(``realtime.tunnel_mode``, ``realtime.backend``, ``handoff.sinks``). Provider names are unique
across all plugins; order of registration never decides who wins.

Two hooks **collect**: every implementation contributes (call context, readiness checks).

The slot hooks are synchronous; the objects they return carry the async life cycle
(``start``/``stop``/``health``), which the services drive on their event loop.
``bridgehost_call_context`` may also be an ``async def``: the host awaits each implementation
with its own timeout (a synchronous one runs in a worker thread).

Implement a hook by decorating a function of the same name with :data:`bridgehost.hookimpl`
in a module registered under the ``bridgehost`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

import pluggy

from bridgehost import PROJECT_NAME

if TYPE_CHECKING:
    from bridgehost.config import BridgeConfig
    from bridgehost.providers import (
        CallInfo,
        ContextPart,
        HandoffSink,
        ReadinessCheck,
        RealtimeBackend,
        TunnelMode,
    )

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def bridgehost_register_tunnel_modes() -> Sequence[TunnelMode]:
    """Register tunnel modes: ways to make the gateway reachable from Telegram.

    Called once when plugins load. ``realtime.tunnel_mode`` selects one mode by name.
    Builtins: ``managed-quick-cloudflared`` and ``static-public-url``.

    :return: a list of :class:`bridgehost.providers.TunnelMode` records (may be empty).
        Each ``factory(context)`` builds a :class:`bridgehost.providers.Tunnel`.

    **Example:**

    .. code-block:: python

        from bridgehost import hookimpl
        from bridgehost.providers import TunnelMode

        @hookimpl
        def bridgehost_register_tunnel_modes():
            return [TunnelMode(name="ngrok", description="ngrok agent", factory=NgrokTunnel)]
    """


@hookspec
def bridgehost_register_realtime_backends() -> Sequence[RealtimeBackend]:
    """Register realtime voice backends that hold the live conversation.

    Called once when plugins load. ``realtime.backend`` selects one backend by name.
    Builtins: ``openai`` (WebRTC, OpenAI Realtime) and ``echo`` (offline relay that plays
    the caller's audio back).

    :return: a list of :class:`bridgehost.providers.RealtimeBackend` records (may be empty).
        Each ``factory(context)`` builds a :class:`bridgehost.providers.Backend`.

    **Example:**

    .. code-block:: python

        from bridgehost import hookimpl
        from bridgehost.providers import RealtimeBackend

        @hookimpl
        def bridgehost_register_realtime_backends():
            return [
                RealtimeBackend(
                    name="my-voice", description="My voice service",
                    factory=MyBackend, transport="relay",
                )
            ]
    """


@hookspec
def bridgehost_register_handoff_sinks() -> Sequence[HandoffSink]:
    """Register handoff sinks: places a finished call's handoff artifact is delivered to.

    Called once when plugins load. Every sink named in ``handoff.sinks`` receives every
    artifact, through a durable outbox that retries failures; a sink must be idempotent by
    ``call_id``. Builtins: ``file``, ``codex`` and ``telegram``.

    :return: a list of :class:`bridgehost.providers.HandoffSink` records (may be empty).
        Each ``factory(context)`` builds a :class:`bridgehost.providers.Sink`.

    **Example:**

    .. code-block:: python

        from bridgehost import hookimpl
        from bridgehost.providers import HandoffSink

        @hookimpl
        def bridgehost_register_handoff_sinks():
            return [HandoffSink(name="webhook", description="POST to a URL", factory=Webhook)]
    """


@hookspec
def bridgehost_call_context(
    call: CallInfo, config: BridgeConfig
) -> Sequence[ContextPart] | Awaitable[Sequence[ContextPart] | None] | None:
    """Contribute parts of a call's instructions before the voice session starts.

    Called by the bridge for every call it prepares; every implementation contributes, all at
    once. An implementation may be an ``async def`` (it runs on the bridge's event loop, so it
    must not block) or a plain function (it runs in a worker thread). Each one has the call's
    context budget (a few seconds, see ``realtime.startup_timeout_ms``): one that is slower,
    or raises, is logged and left out, so one broken plugin never blocks a call. The builtin
    ``codex`` plugin contributes the bound Codex thread's recent turns this way.

    :param call: the call being prepared (id, bridge id, user, bound thread).
    :param config: the effective configuration.
    :return: a list of :class:`bridgehost.providers.ContextPart`, or ``None`` for nothing (from
        an ``async def``: the same, awaited).

    **Example:**

    .. code-block:: python

        from bridgehost import hookimpl
        from bridgehost.providers import ContextPart

        @hookimpl
        def bridgehost_call_context(call, config):
            return [ContextPart(title="On-call rota", text="Alice is on call this week.")]

        @hookimpl
        async def bridgehost_call_context(call, config):  # or, reading something slow
            rota = await fetch_rota(call.thread_id)
            return [ContextPart(title="On-call rota", text=rota)]
    """


@hookspec
def bridgehost_readiness_checks(config: BridgeConfig) -> Sequence[ReadinessCheck] | None:
    """Contribute extra readiness checks, shown by ``bridgectl capabilities`` and ``/capabilities``.

    Every implementation contributes. A failing check whose plugin provides a selected
    provider makes ``/call`` not ready; other checks are informational.

    :param config: the effective configuration.
    :return: a list of :class:`bridgehost.providers.ReadinessCheck`, or ``None``.

    **Example:**

    .. code-block:: python

        from bridgehost import hookimpl
        from bridgehost.providers import CheckResult, ReadinessCheck

        @hookimpl
        def bridgehost_readiness_checks(config):
            async def run():
                return CheckResult("Webhook URL", ok=True, detail="configured")
            return [ReadinessCheck("Webhook URL", run)]
    """
