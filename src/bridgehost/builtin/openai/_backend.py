"""The ``openai`` backend object (see :mod:`bridgehost.builtin.openai`): imported when the
gateway builds the selected backend, not when the plugin registers."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bridgehost.builtin._openai_sdk import SdkBackend
from bridgehost.builtin.openai._settings import NAME, OpenAISettings, session_config
from bridgehost.providers import Health, ProviderContext, SessionEvents, SessionSetup

if TYPE_CHECKING:  # the SDK takes ~0.7 s to import: client() imports it on first use
    from openai import AsyncOpenAI

    from bridgehost.builtin.openai._session import OpenAICallSession

__all__ = ["OpenAIRealtimeBackend"]


class OpenAIRealtimeBackend(SdkBackend["OpenAICallSession"]):
    """The backend object the gateway holds (implements ``providers.Backend``).

    :param context: the provider context: ``realtime.model``, ``realtime.voice``,
        ``realtime.transcription_model``, the ``OPENAI_API_KEY`` secret, and the settings of
        ``[plugins.openai]``.
    """

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context.secrets)
        self.realtime = context.config.realtime
        settings = context.settings
        self.settings = settings if isinstance(settings, OpenAISettings) else OpenAISettings()
        self.log = context.log.bind(backend=NAME)

    # -- life cycle ----------------------------------------------------------------------------

    def client(self) -> AsyncOpenAI:
        """The SDK client (built on first use; the SDK reads ``OPENAI_BASE_URL`` itself)."""
        return self._sdk_client(
            timeout_s=self.settings.request_timeout_s, max_retries=self.settings.max_retries
        )

    async def start(self) -> None:
        """Check that a key is configured and build the client; no request is made."""
        client = self.client()
        self.log.info(
            "openai.backend_ready",
            model=self.realtime.model,
            voice=self.realtime.voice,
            api_host=urlsplit(str(client.base_url)).netloc,
        )

    async def health(self) -> Health:
        """Whether a key is configured (OpenAI is not called: health checks run often)."""
        return self._key_health(
            "OpenAI realtime", f"model {self.realtime.model}, voice {self.realtime.voice}"
        )

    # -- calls ---------------------------------------------------------------------------------

    async def open_session(self, setup: SessionSetup, events: SessionEvents) -> OpenAICallSession:
        """Prepare a call: build its session config; the upstream call starts with the offer."""
        from bridgehost.builtin.openai._session import OpenAICallSession  # with the first call

        client = self.client()
        config = session_config(self.realtime, self.settings, setup.instructions)
        return self._track(
            OpenAICallSession(
                client,
                setup,
                events,
                self.settings,
                config,
                self.log,
                on_closed=self._sessions.discard,
            )
        )
