"""The ``gpt-live`` realtime backend: live calls with OpenAI GPT-Live over WebRTC.

GPT-Live holds the conversation and *delegates* work to the application (client delegation):
here, to the Codex agent in the bound thread, through the gateway and the bridge. As with the
``openai`` backend, **no key of any kind reaches the browser**: the page POSTs its SDP offer to
the gateway, which sends it with the server key and the startup session config to
``POST /v1/live/sessions`` and attaches a sideband to ``/v1/live/sessions/{id}/attach``. See
``reference/gpt-live.md`` for the protocol; :mod:`._settings` for the session config;
:mod:`._session` for one call; :mod:`._transcript` for grouping transcript deltas into turns.

``realtime.model`` applies (default ``gpt-live-1.1`` with this backend); a Realtime model name
is a configuration problem, reported by this provider's readiness check and by ``start``.
Optional settings go in ``[plugins.gpt-live]`` (:class:`GptLiveSettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridgehost import hookimpl
from bridgehost.basics import lazy_exports
from bridgehost.builtin.gpt_live._settings import (
    NAME,
    GptLiveSettings,
    effective_model,
    model_problem,
)
from bridgehost.providers import (
    CheckResult,
    ProviderContext,
    ReadinessCheck,
    RealtimeBackend,
    SecretNeed,
)

if TYPE_CHECKING:  # the backend loads when the gateway builds it, its session with a call
    from bridgehost.builtin.gpt_live._backend import GptLiveBackend
    from bridgehost.config import BridgeConfig

__all__ = ["NAME", "GptLiveBackend", "GptLiveSettings", "bridgehost_register_realtime_backends"]


# The backend loads on first use: registering the plugin (every gateway start does, whichever
# backend is selected) does not need it.
__getattr__ = lazy_exports(__name__, {"GptLiveBackend": "._backend"})


def gpt_live_backend(context: ProviderContext) -> GptLiveBackend:
    """Build the backend (the factory of ``gpt-live``)."""
    from bridgehost.builtin.gpt_live._backend import GptLiveBackend

    return GptLiveBackend(context)


def readiness(config: BridgeConfig) -> list[ReadinessCheck]:
    """The model check, while this backend is selected (it gates ``/call``)."""

    async def run() -> CheckResult:
        problem = model_problem(config)
        if problem is None:
            return CheckResult(
                "GPT-Live model", True, f"realtime.model {effective_model(config.realtime)}"
            )
        detail, _, fix = problem.partition(": ")
        return CheckResult("GPT-Live model", False, detail, fix)

    return [ReadinessCheck("GPT-Live model", run)]


@hookimpl
def bridgehost_register_realtime_backends() -> list[RealtimeBackend]:
    """Register ``gpt-live``: OpenAI GPT-Live over WebRTC, with work delegated to Codex."""
    return [
        RealtimeBackend(
            name=NAME,
            description="OpenAI GPT-Live over WebRTC; the gateway creates the session with the "
            "server key, follows it on a sideband and answers its delegations through Codex",
            factory=gpt_live_backend,
            transport="webrtc",
            server_side_session=True,
            new_session_per_offer=True,
            data_channel_mute=True,
            settings_model=GptLiveSettings,
            readiness=readiness,
            secrets=[
                SecretNeed(
                    "OPENAI_API_KEY",
                    {
                        "gateway": "the gateway opens GPT-Live sessions with it",
                        "telegram": "the bridge writes call summaries with it",
                    },
                )
            ],
        )
    ]
