"""What the backends built on the official ``openai`` SDK share: ``openai`` and ``gpt-live``.

- :data:`KEY_FIX`: how to configure ``OPENAI_API_KEY``.
- :class:`SdkBackend`: the backend life cycle: one SDK client built on first use from the
  ``OPENAI_API_KEY`` secret (the SDK itself reads ``OPENAI_BASE_URL``), the open sessions,
  ``stop`` closing both, and health by the presence of the key.
- :class:`SdkCallSession`: the parts of one call's session that do not depend on the upstream
  protocol: what it was set up with, the one-offer rule and the single, shielded close.

The SDK takes ~0.7 s to import: nothing here imports it before a client is built.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, Self, TypeVar

from structlog.typing import FilteringBoundLogger

from bridgehost.config import credstore_hint
from bridgehost.providers import Health, ProviderStartError, SessionEvents, SessionSetup

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from bridgehost.config import Secrets

KEY_FIX = (
    "set OPENAI_API_KEY in the environment, in .env next to bridge.config.toml, or under systemd "
    f"{credstore_hint('OPENAI_API_KEY')}, then restart bridge-gateway"
)
"""The fix when no ``OPENAI_API_KEY`` is configured."""


class _ClosableSession(Protocol):
    async def close(self, reason: str) -> None: ...


SessionT = TypeVar("SessionT", bound=_ClosableSession)
SettingsT = TypeVar("SettingsT")


class SdkBackend(Generic[SessionT]):
    """The life cycle of a backend that talks to OpenAI through one SDK client.

    :param secrets: the provider's secrets (``OPENAI_API_KEY``).
    """

    transport: Literal["webrtc", "relay"] = "webrtc"

    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets
        self._client: AsyncOpenAI | None = None
        self._sessions: set[SessionT] = set()

    def _sdk_client(self, *, timeout_s: float, max_retries: int) -> AsyncOpenAI:
        """The client, built on first use; :class:`ProviderStartError` when there is no key."""
        if self._client is None:
            secret = self.secrets.openai_api_key
            if secret is None:
                raise ProviderStartError(
                    "No OpenAI API key is configured", fix=f"{KEY_FIX[0].upper()}{KEY_FIX[1:]}."
                )
            from openai import AsyncOpenAI  # the SDK takes ~0.7 s to import: only when used

            self._client = AsyncOpenAI(
                api_key=secret.get_secret_value(), timeout=timeout_s, max_retries=max_retries
            )
        return self._client

    def _track(self, session: SessionT) -> SessionT:
        """Keep ``session`` until it reports itself closed (see :meth:`stop`)."""
        self._sessions.add(session)
        return session

    async def stop(self) -> None:
        """Close every session still open (hanging its call up) and the HTTP client; safe
        twice."""
        sessions = list(self._sessions)
        if sessions:
            await asyncio.gather(
                *(s.close("gateway_stop") for s in sessions), return_exceptions=True
            )
        self._sessions.clear()
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.close()

    def _key_health(self, label: str, details: str) -> Health:
        """Whether a key is configured (OpenAI is not called: health checks run often).

        :param label: the backend as the operator knows it (``OpenAI realtime``, ``GPT-Live``).
        :param details: what follows the key's source in a healthy answer (model, voice).
        """
        source = self.secrets.source("OPENAI_API_KEY")
        if source is None:
            return Health(ok=False, detail=f"{label}: no OPENAI_API_KEY is configured", fix=KEY_FIX)
        return Health(ok=True, detail=f"{label}: key from {source}; {details}")


class SdkCallSession(Generic[SettingsT]):
    """What one call's session on an SDK backend holds, and its single shielded close.

    A subclass implements ``_close(reason)`` (the protocol's own ending) and sets
    :attr:`task_prefix`, which names the close task in the event loop.
    """

    task_prefix = "openai-sdk"

    def __init__(
        self,
        client: AsyncOpenAI,
        setup: SessionSetup,
        events: SessionEvents,
        settings: SettingsT,
        config: dict[str, Any],
        log: FilteringBoundLogger,
        on_closed: Callable[[Self], None] | None = None,
    ) -> None:
        self.client = client
        self.setup = setup
        self.events = events
        self.settings = settings
        self.config = config
        self.log = log.bind(call_id=setup.call_id)
        self._offer_lock = asyncio.Lock()
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        self._on_closed: Callable[[Self], None] | None = on_closed

    def _refuse_second_offer(self, *, connected: bool) -> None:
        """Raise when this call has ended or already has its upstream call."""
        if self._closing:
            raise ProviderStartError("this call has already ended: start a new call")
        if connected:
            raise ProviderStartError("this call is already connected: hang up and start a new call")

    async def close(self, reason: str) -> None:
        """End the call upstream (bounded, once, whichever task asks); safe twice."""
        self._closing = True
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(
                self._close(reason), name=f"{self.task_prefix}-close-{self.setup.call_id}"
            )
        await asyncio.shield(self._close_task)

    async def _close(self, reason: str) -> None:
        raise NotImplementedError

    def _closed(self: Self) -> None:
        """Tell the backend this session is over (it stops tracking it)."""
        if self._on_closed is not None:
            self._on_closed(self)


__all__ = ["KEY_FIX", "SdkBackend", "SdkCallSession"]
