"""The ``openai`` realtime backend: live calls with OpenAI Realtime (GA) over WebRTC.

The browser's media goes straight to OpenAI over WebRTC, but **no key, not even an ephemeral
one, reaches the browser**: the page POSTs its SDP offer to the gateway
(``POST /api/call/webrtc``), and the gateway forwards it to ``POST /v1/realtime/calls`` with the
server key and a session config built on the server (``realtime.model``, ``realtime.voice``,
``realtime.transcription_model`` with input transcription on, the call's instructions, turn
detection). The answer SDP goes back to the page; the call id from the ``Location`` header is
kept. The gateway then attaches a server-side ("sideband") WebSocket to the call
(``{base}/realtime?call_id=…``) and turns OpenAI's events into normalized call events
(transcripts of both sides, VAD, interruptions, usage, errors); see
:mod:`bridgehost.builtin.openai._events`. Ending a call (hang-up, idle timeout, max duration,
daily budget, gateway stop) hangs it up upstream through the calls API, whatever the browser
does. The call ending upstream ends the gateway's call.

The official ``openai`` SDK does every request, so ``OPENAI_BASE_URL`` (and ``OPENAI_ORG_ID``,
``OPENAI_PROJECT_ID``) are honoured exactly as the SDK honours them. Upstream failures become
:class:`~bridgehost.providers.ProviderStartError` with one sentence and a fix.

Optional settings go in ``[plugins.openai]`` (:class:`OpenAISettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bridgehost import hookimpl
from bridgehost.builtin._openai_sdk import SdkBackend
from bridgehost.builtin.openai._settings import NAME, OpenAISettings, session_config
from bridgehost.providers import (
    Health,
    ProviderContext,
    RealtimeBackend,
    SecretNeed,
    SessionEvents,
    SessionSetup,
)

if TYPE_CHECKING:  # the SDK takes ~0.7 s to import: client() imports it on first use
    from openai import AsyncOpenAI

    from bridgehost.builtin.openai._session import OpenAICallSession

__all__ = [
    "NAME",
    "OpenAICallSession",
    "OpenAIRealtimeBackend",
    "OpenAISettings",
    "bridgehost_register_realtime_backends",
]


def __getattr__(name: str) -> object:
    """``OpenAICallSession`` loads on first use (the gateway answers /healthz without it)."""
    if name == "OpenAICallSession":
        from bridgehost.builtin.openai._session import OpenAICallSession

        return OpenAICallSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


@hookimpl
def bridgehost_register_realtime_backends() -> list[RealtimeBackend]:
    """Register the ``openai`` backend: OpenAI Realtime over WebRTC, sessions configured and
    ended on the server, transcripts from a server-side sideband connection."""
    return [
        RealtimeBackend(
            name=NAME,
            description="OpenAI Realtime over WebRTC; the gateway proxies the SDP offer with "
            "the server key and follows the call on a server-side sideband",
            factory=OpenAIRealtimeBackend,
            transport="webrtc",
            server_side_session=True,
            settings_model=OpenAISettings,
            secrets=[
                SecretNeed(
                    "OPENAI_API_KEY",
                    {
                        "gateway": "the gateway opens OpenAI realtime sessions with it",
                        "telegram": "the bridge writes call summaries with it",
                    },
                )
            ],
        )
    ]
