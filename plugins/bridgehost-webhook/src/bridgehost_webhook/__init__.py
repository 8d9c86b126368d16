"""bridgehost-webhook: POST every call's handoff artifact to a URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from bridgehost import hookimpl
from bridgehost.providers import HandoffSink, Health, ProviderContext


class WebhookSettings(BaseModel):
    """The ``[plugins.webhook]`` table."""

    # Built when the config selects this sink and validates its table, not when the host
    # loads the plugin (every service start does).
    model_config = ConfigDict(extra="forbid", defer_build=True)

    url: AnyHttpUrl = Field(description="where to POST each handoff artifact")
    timeout_s: float = Field(10.0, gt=0, le=120, description="per-request timeout, seconds")
    token_secret: str | None = Field(
        None, description="name of a secret (env, .env or credential) sent as a Bearer token"
    )


class WebhookSink:
    """Delivers artifacts with one POST each, keyed by call id for idempotency."""

    def __init__(self, context: ProviderContext) -> None:
        assert isinstance(context.settings, WebhookSettings)
        self.settings = context.settings
        self._token = (
            context.secrets.get(self.settings.token_secret) if self.settings.token_secret else None
        )
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP session."""
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)

    async def stop(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def health(self) -> Health:
        """Configured is healthy; delivery failures show up in the outbox."""
        return Health(ok=True, detail=f"posting handoffs to {self.settings.url}")

    async def deliver(self, artifact: Mapping[str, Any]) -> str:
        """POST the artifact; raise on any non-2xx answer so the outbox retries."""
        if self._session is None:
            await self.start()
        assert self._session is not None
        headers = {"Idempotency-Key": str(artifact["call_id"])}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        async with self._session.post(
            str(self.settings.url), json=dict(artifact), headers=headers
        ) as resp:
            if resp.status // 100 != 2:
                raise RuntimeError(f"webhook answered HTTP {resp.status}")
        return str(self.settings.url)


@hookimpl
def bridgehost_register_handoff_sinks() -> list[HandoffSink]:
    """Register the ``webhook`` sink."""
    return [
        HandoffSink(
            name="webhook",
            description="POST each handoff artifact as JSON to [plugins.webhook] url",
            factory=WebhookSink,
            settings_model=WebhookSettings,
        )
    ]
