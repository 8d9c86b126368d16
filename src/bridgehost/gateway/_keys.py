"""Typed application keys shared by the gateway's route modules."""

from __future__ import annotations

from aiohttp import web

from bridgehost.gateway.core import Gateway

GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
"""The :class:`bridgehost.gateway.core.Gateway` an application serves."""
