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
from bridgehost.builtin._openai_sdk import SdkBackend
from bridgehost.builtin.gpt_live._settings import (
    NAME,
    GptLiveSettings,
    effective_model,
    model_problem,
    session_config,
)
from bridgehost.providers import (
    CheckResult,
    Health,
    ProviderContext,
    ProviderStartError,
    ReadinessCheck,
    RealtimeBackend,
    SecretNeed,
    SessionEvents,
    SessionSetup,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from bridgehost.builtin.gpt_live._session import GptLiveCallSession
    from bridgehost.config import BridgeConfig

__all__ = ["NAME", "GptLiveBackend", "GptLiveSettings", "bridgehost_register_realtime_backends"]


class GptLiveBackend(SdkBackend["GptLiveCallSession"]):
    """The backend object the gateway holds (implements ``providers.Backend``)."""

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context.secrets)
        self.config = context.config
        self.realtime = context.config.realtime
        settings = context.settings
        self.settings = settings if isinstance(settings, GptLiveSettings) else GptLiveSettings()
        self.log = context.log.bind(backend=NAME)
        self.model = effective_model(self.realtime)

    def client(self) -> AsyncOpenAI:
        """The SDK client (``OPENAI_BASE_URL`` honoured); never retries a creation, which is
        billed each time it succeeds."""
        return self._sdk_client(timeout_s=self.settings.request_timeout_s, max_retries=0)

    async def start(self) -> None:
        """Check the model and the key and build the client; no request is made."""
        problem = model_problem(self.config)
        if problem is not None:
            raise ProviderStartError(problem)
        self.client()
        self.log.info("gpt_live.backend_ready", model=self.model, voice=self.realtime.voice)

    async def health(self) -> Health:
        """Whether the model suits GPT-Live and a key is configured (no request)."""
        problem = model_problem(self.config)
        if problem is not None:
            return Health(ok=False, detail=f"GPT-Live: {problem}")
        return self._key_health("GPT-Live", f"model {self.model}, voice {self.realtime.voice}")

    async def open_session(self, setup: SessionSetup, events: SessionEvents) -> GptLiveCallSession:
        """Prepare a call; the Live session is created with the browser's offer."""
        # The session (websockets, the OpenAI error mapping) loads with the first call, not
        # when the plugin registers: the gateway answers /healthz without it.
        from bridgehost.builtin.gpt_live._session import GptLiveCallSession

        config = session_config(self.realtime, setup.instructions)
        return self._track(
            GptLiveCallSession(
                self.client(),
                setup,
                events,
                self.settings,
                config,
                self.log,
                on_closed=self._sessions.discard,
            )
        )


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
            factory=GptLiveBackend,
            transport="webrtc",
            server_side_session=True,
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
