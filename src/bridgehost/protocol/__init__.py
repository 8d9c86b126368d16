"""The wire protocol, written once: ``/ws/bridge`` frames, call events, control API bodies,
and why calls end.

The gateway, the bridge (bridge-telegram), the demo and ``bridgectl`` all speak through these
pydantic models, so a message added here is added for every side at once.

- :mod:`bridgehost.protocol.bridge`: every ``/ws/bridge`` frame, by direction.
- :mod:`bridgehost.protocol.events`: every call event, who may send it, its bounds.
- :mod:`bridgehost.protocol.control`: the local control API's bodies.
- :mod:`bridgehost.protocol.end_reasons`: :class:`EndReason`, with its words for the page and
  the handoff.
"""

from bridgehost.protocol.end_reasons import EndReason, end_label, end_text

__all__ = ["EndReason", "end_label", "end_text"]
