"""Fixtures for the operator-command tests, loaded with ``pytest_plugins = ("ctl_fixtures",)``.

``gateway_factory`` starts a real gateway in the test's event loop (``tests/gateway/conftest.py``).
``ctl_gateway`` does the same and then adds ``plugins.disabled = ["openai"]`` to the config file
bridgectl reads: the test gateways use the echo backend, and loading the openai builtin costs
each bridgectl process most of a second (it imports the OpenAI SDK), which adds up over the
many processes these tests start. The OpenAI-backend test uses ``gateway_factory`` directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from ctl_harness import add_section

from gateway.conftest import GatewayFactory, RunningGateway, gateway_factory

__all__ = ["ctl_gateway", "gateway_factory"]


@pytest.fixture
def ctl_gateway(gateway_factory: GatewayFactory) -> Callable[..., Awaitable[RunningGateway]]:
    """``await ctl_gateway(**realtime)``: a running gateway whose config bridgectl reads fast."""

    async def start(connect_bridge: bool = True, **realtime: Any) -> RunningGateway:
        gw: RunningGateway = await gateway_factory(connect_bridge=connect_bridge, **realtime)
        add_section(gw.loaded.path, '[plugins]\ndisabled = ["openai"]')
        return gw

    return start
