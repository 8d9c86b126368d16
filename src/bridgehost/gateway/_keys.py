"""Typed application keys shared by the gateway's route modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from bridgehost.gateway.app import Gateway

GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Any)  # type: ignore[arg-type]
"""The :class:`bridgehost.gateway.app.Gateway` an application serves."""
