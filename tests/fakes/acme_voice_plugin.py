"""A third-party realtime backend, as an outside package would write it.

It needs its own secret (``ACME_VOICE_KEY``), has its own ``[plugins.acme-voice]`` table and a
readiness check of its own. The host must treat all three exactly as it treats a builtin's.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint

from pydantic import BaseModel, ConfigDict

from bridgehost import hookimpl
from bridgehost.config import BridgeConfig
from bridgehost.providers import (
    CheckResult,
    ProviderContext,
    ReadinessCheck,
    RealtimeBackend,
    SecretNeed,
)

NAME = "acme-voice"
KEY = "ACME_VOICE_KEY"
ENTRY_POINT = EntryPoint(NAME, __name__, "bridgehost")
"""How an installed distribution would list this plugin."""


class AcmeSettings(BaseModel):
    """``[plugins.acme-voice]``."""

    model_config = ConfigDict(extra="forbid")
    region: str = "eu"


class AcmeBackend:
    """Never started in these tests: the host only reads what the record declares."""

    transport = "relay"

    def __init__(self, context: ProviderContext) -> None:
        self.context = context


def _region_check(config: BridgeConfig) -> list[ReadinessCheck]:
    region = config.plugins.table(NAME).get("region", "eu")

    async def run() -> CheckResult:
        ok = region in {"eu", "us"}
        return CheckResult("Acme region", ok, region, None if ok else 'set region = "eu"')

    return [ReadinessCheck("Acme region", run)]


@hookimpl
def bridgehost_register_realtime_backends() -> list[RealtimeBackend]:
    """Register ``acme-voice``."""
    return [
        RealtimeBackend(
            name=NAME,
            description="Acme's voice service",
            factory=AcmeBackend,  # type: ignore[arg-type]
            transport="relay",
            settings_model=AcmeSettings,
            secrets=[SecretNeed(KEY, {"gateway": "the gateway opens Acme voice sessions with it"})],
            readiness=_region_check,
        )
    ]
