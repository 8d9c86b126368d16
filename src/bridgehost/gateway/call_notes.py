"""Messages the caller types in the Telegram chat during a call (``call.note`` from the bridge).

The gateway owns the live session, so the bridge sends each note here. :meth:`ChatNotes.take`
appends it to the call's log as a ``chat.note`` event (the bridge gets it back like every
event, and the handoff lists it among the call's notes) and passes it to the backend session
through :meth:`~bridgehost.providers.ContextSession.add_context`, which hands it to the live
model as quoted data, never as instructions. A note for a call that is not live (ended, or
another call) is dropped with a log line: the bridge keeps its own copy for the handoff.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from bridgehost.protocol.bridge import CallNote
from bridgehost.providers import ContextSession, supports_context

if TYPE_CHECKING:
    from bridgehost.gateway.calls import CallManager

log = structlog.get_logger("bridgehost.gateway.call_notes")


class ChatNotes:
    """Takes ``call.note`` frames for the gateway's live call."""

    def __init__(self, calls: CallManager) -> None:
        self.calls = calls

    async def take(self, frame: CallNote) -> bool:
        """Log the note and tell the live model; False when the call is not live."""
        session = self.calls.current
        if session is None or session.call_id != frame.call_id or session.is_ending:
            log.info("dropped a chat note for a call that is not live", call_id=frame.call_id)
            return False
        await self.calls.gateway_event(session, {"type": "chat.note", "text": frame.text})
        backend = session.backend
        if backend is not None and supports_context(backend):
            assert isinstance(backend, ContextSession)
            try:
                await backend.add_context(frame.text)
            except Exception:  # the voice session may be going away; the log has the note
                log.exception("could not pass a chat note to the voice model")
        log.info("chat note taken", call_id=frame.call_id, chars=len(frame.text))
        return True


__all__ = ["ChatNotes"]
