"""The ``gpt-live`` backend object (see :mod:`bridgehost.builtin.gpt_live`): imported when
the gateway builds the selected backend, not when the plugin registers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridgehost.builtin._openai_sdk import SdkBackend
from bridgehost.builtin.gpt_live._settings import (
    NAME,
    GptLiveSettings,
    effective_model,
    model_problem,
    session_config,
)
from bridgehost.providers import (
    Health,
    ProviderContext,
    ProviderStartError,
    SessionEvents,
    SessionSetup,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from bridgehost.builtin.gpt_live._session import GptLiveCallSession

__all__ = ["GptLiveBackend"]


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
