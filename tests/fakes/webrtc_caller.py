"""The browser's media side for tests: an aiortc peer with a microphone and ``oai-events``."""

from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack


class Caller:
    """An aiortc peer with a microphone track and the ``oai-events`` data channel."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # never a public STUN
        self.pc.addTrack(AudioStreamTrack())
        self.channel = self.pc.createDataChannel("oai-events")

    async def offer(self) -> str:
        """Gather and return the SDP offer."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def connect(self, answer: str) -> None:
        """Apply the answer and wait (bounded) until media flows."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        async with asyncio.timeout(10):
            while self.pc.connectionState != "connected":
                await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Hang up the peer."""
        await self.pc.close()
