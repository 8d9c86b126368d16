"""A chat message typed during a call, sent to the gateway as ``call.note``.

The gateway logs it as a ``chat.note`` call event (so it reaches the handoff) and hands it to
the live voice model as quoted data. The bridge also keeps it as a call note, so the handoff
has it even when the gateway is not reachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from bridgehost.protocol.bridge import CallNote

if TYPE_CHECKING:
    from bridgehost.telegram.runtime import BridgeRuntime

log = structlog.get_logger("bridgehost.telegram.call_notes")


async def send_call_note(rt: BridgeRuntime, call_id: str, text: str) -> bool:
    """Send ``text`` to the gateway for the live call ``call_id``; False when not connected."""
    if rt.channel is None or not text.strip():
        return False
    sent = await rt.channel.send(CallNote(call_id=call_id, text=text[:4000]))
    log.info("call note sent to the gateway", call_id=call_id, sent=sent, chars=len(text))
    return sent
