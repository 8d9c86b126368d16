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

from bridgehost import hookimpl
from bridgehost.basics import lazy_exports
from bridgehost.builtin.openai._settings import NAME, OpenAISettings
from bridgehost.providers import ProviderContext, RealtimeBackend, SecretNeed

if TYPE_CHECKING:  # the backend loads when the gateway builds it, its session with a call
    from bridgehost.builtin.openai._backend import OpenAIRealtimeBackend
    from bridgehost.builtin.openai._session import OpenAICallSession

__all__ = [
    "NAME",
    "OpenAICallSession",
    "OpenAIRealtimeBackend",
    "OpenAISettings",
    "bridgehost_register_realtime_backends",
]


# The backend and its call session load on first use: registering the plugin (every gateway
# start does, whichever backend is selected) and answering /healthz need neither.
__getattr__ = lazy_exports(
    __name__, {"OpenAIRealtimeBackend": "._backend", "OpenAICallSession": "._session"}
)


def openai_realtime_backend(context: ProviderContext) -> OpenAIRealtimeBackend:
    """Build the backend (the factory of ``openai``)."""
    from bridgehost.builtin.openai._backend import OpenAIRealtimeBackend

    return OpenAIRealtimeBackend(context)


@hookimpl
def bridgehost_register_realtime_backends() -> list[RealtimeBackend]:
    """Register the ``openai`` backend: OpenAI Realtime over WebRTC, sessions configured and
    ended on the server, transcripts from a server-side sideband connection."""
    return [
        RealtimeBackend(
            name=NAME,
            description="OpenAI Realtime over WebRTC; the gateway proxies the SDP offer with "
            "the server key and follows the call on a server-side sideband",
            factory=openai_realtime_backend,
            transport="webrtc",
            server_side_session=True,
            new_session_per_offer=True,
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
