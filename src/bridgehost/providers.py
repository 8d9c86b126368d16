"""Typed records that plugins return from the ``bridgehost_register_*`` hooks.

A provider record is a frozen description: a ``name`` the config selects it by, a one-line
``description`` for ``bridgectl plugins``, and a ``factory`` that builds the live object. A
record also *declares what it needs*, so the host never has to know a provider by name:

- ``settings_model``: the pydantic model of its own ``[plugins.<name>]`` table;
- ``secrets``: the secrets it needs (:class:`SecretNeed`), which ``bridgectl config check``,
  ``capabilities``, the credential helpers and ``install-units`` (``LoadCredential=``) read;
- ``readiness``: extra readiness checks that gate ``/call`` while it is selected;
- capability flags: ``TunnelMode.managed_process``; ``RealtimeBackend.server_side_session``,
  ``.new_session_per_offer``, ``.data_channel_mute`` and ``.push_to_talk``.

Hooks stay synchronous; the objects a factory builds carry the async life cycle (``start``,
``stop``, ``health``) that the services drive.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

    from bridgehost.config import BridgeConfig, Secrets

Service = Literal["gateway", "telegram"]
"""The two services a provider runs in: tunnels and backends in the gateway, sinks in the bridge."""

PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""Provider names: lower-case letters, digits and dashes, as they appear in the config."""


@dataclass(frozen=True, slots=True)
class Health:
    """What a provider says about itself: shown by ``bridgectl capabilities`` and health routes.

    :param ok: whether the provider can do its job right now.
    :param detail: one sentence a person can read ("tunnel up at https://…").
    :param fix: what to do when ``ok`` is false.
    :param checked_at: when this was last checked (UTC), for probes that run in the background.
    """

    ok: bool
    detail: str
    fix: str | None = None
    checked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Everything a provider factory receives.

    :param config: the whole validated ``bridge.config.toml``.
    :param settings: this provider's own ``[plugins.<name>]`` table, validated against its
        ``settings_model`` (``None`` when it declares none).
    :param secrets: secrets from credentials, the environment or ``.env``.
    :param log: a structlog logger bound with ``plugin=<plugin name>``.
    :param plugin: the name of the plugin that registered the provider.
    """

    config: BridgeConfig
    settings: BaseModel | None
    secrets: Secrets
    log: FilteringBoundLogger
    plugin: str


@runtime_checkable
class Lifecycle(Protocol):
    """The async life cycle every provider object has."""

    async def start(self) -> None:
        """Acquire resources; raise :class:`ProviderStartError` with a fix when it cannot."""

    async def stop(self) -> None:
        """Release everything ``start`` acquired; safe to call twice or after a failed start."""

    async def health(self) -> Health:
        """Report current health without side effects that a user would notice."""


UrlChangeCallback = Callable[[str | None, str], Awaitable[None] | None]
"""Hears ``(new_url, reason)`` when a tunnel's origin changes, ``(None, reason)`` when gone."""


@runtime_checkable
class Tunnel(Lifecycle, Protocol):
    """A running tunnel mode: makes the gateway reachable at a public origin.

    ``on_url_change`` is a plain attribute the gateway sets after the host built the object; a
    tunnel whose origin can change by itself (a restarted child process) calls it then. A tunnel
    whose origin never changes keeps it and never calls it.
    """

    on_url_change: UrlChangeCallback | None

    @property
    def public_url(self) -> str | None:
        """The public origin (``https://host``, no trailing slash) once started, else None."""


@dataclass(frozen=True, slots=True)
class SessionSetup:
    """What a backend needs to open one call's voice session.

    :param call_id: the gateway's call id.
    :param instructions: the assembled instructions (persona plus call context parts).
    :param max_call_ms: the hard cap for this call; the gateway enforces it too.
    """

    call_id: str
    instructions: str
    max_call_ms: int


class SessionEvents(Protocol):
    """Where a backend session reports to; the gateway implements it per call."""

    async def event(self, event: Mapping[str, Any]) -> None:
        """Report one event (``user.transcript.final``, ``usage``, …); validated by the gateway."""

    async def audio(self, chunk: bytes) -> None:
        """Relay transport: audio for the caller (PCM16 mono, 24 kHz, little endian)."""

    async def ended(self, reason: str) -> None:
        """The backend ended the session by itself (upstream hang-up, error)."""


@runtime_checkable
class BackendSession(Protocol):
    """One call's live session on a backend."""

    async def answer_offer(self, sdp: str) -> str:
        """WebRTC transport: answer the browser's SDP offer (the gateway proxies it)."""

    async def send_audio(self, chunk: bytes) -> None:
        """Relay transport: audio from the caller (PCM16 mono, 24 kHz, little endian)."""

    async def close(self, reason: str) -> None:
        """End the session upstream; safe to call twice."""


@runtime_checkable
class ContextSession(Protocol):
    """A backend session that takes context during the call (optional for backends).

    The gateway calls :meth:`add_context` with a message the caller typed in the chat; a
    backend that cannot take it implements it as a no-op.
    """

    async def add_context(self, text: str) -> None:
        """Tell the live model ``text`` as data, never as instructions (quoted and framed as
        something the caller typed); it must not make the model answer by itself."""


def supports_context(session: object) -> bool:
    """Whether a backend session has :meth:`ContextSession.add_context`."""
    return isinstance(session, ContextSession)


@runtime_checkable
class Backend(Lifecycle, Protocol):
    """A realtime voice backend instance held by the gateway for its whole life."""

    transport: Literal["webrtc", "relay"]

    async def open_session(self, setup: SessionSetup, events: SessionEvents) -> BackendSession:
        """Open a call's session; raise :class:`ProviderStartError` with a fix on failure."""


@runtime_checkable
class Sink(Lifecycle, Protocol):
    """A handoff sink: receives every call's handoff artifact, idempotently by call id."""

    async def deliver(self, artifact: Mapping[str, Any]) -> str:
        """Deliver one artifact; return where it went (a path, a thread id, a message id).

        Must be idempotent: delivering the same ``artifact["call_id"]`` twice has the effect
        of delivering it once. Raise to have the outbox retry with backoff.
        """


@dataclass(frozen=True, slots=True)
class SecretNeed:
    """A secret a provider needs while it is selected.

    :param name: the secret's name, as a variable, a ``.env`` key and a systemd credential
        (``OPENAI_API_KEY``); letters, digits, ``_``, ``.`` and ``-``.
    :param why: per service that needs it, the reason a person reads in ``config check``
        ("the gateway opens realtime sessions with it"). The provider's own service (the
        gateway for tunnels and backends, the bridge for sinks) is the usual one key.
    """

    name: str
    why: Mapping[Service, str]

    def __post_init__(self) -> None:
        from bridgehost.config._secrets import validate_secret_name

        validate_secret_name(self.name)
        if not self.why:
            raise ValueError(f"secret {self.name}: say which service needs it, and why")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Provider:
    name: str
    description: str
    settings_model: type[BaseModel] | None = None
    secrets: Sequence[SecretNeed] = ()
    readiness: Callable[[BridgeConfig], Sequence[ReadinessCheck]] | None = None

    def __post_init__(self) -> None:
        if not PROVIDER_NAME.match(self.name):
            raise ValueError(
                f"provider name {self.name!r} is not valid: use lower-case letters, digits "
                "and dashes (for example 'my-sink')"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class TunnelMode(_Provider):
    """A tunnel mode, selected by ``realtime.tunnel_mode``.

    :param managed_process: the gateway runs the tunnel as its own child process, which
        reaches the gateway over loopback; the gateway then trusts the forwarded client address
        (``CF-Connecting-IP``, ``X-Forwarded-For``) on loopback connections.
    """

    factory: Callable[[ProviderContext], Tunnel]
    managed_process: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RealtimeBackend(_Provider):
    """A realtime backend, selected by ``realtime.backend``.

    :param transport: ``webrtc`` when the browser sends media to the backend through an SDP
        exchange the gateway proxies; ``relay`` when audio travels over ``/ws/call``.
    :param server_side_session: the gateway holds a server-side session with the backend
        (a sideband) that reports transcripts and usage and lets it end the call itself.
    :param new_session_per_offer: (WebRTC) an offer after the first is answered by a new
        upstream session, a new remote peer: a page whose audio dropped then offers from a new
        peer connection at once, since an ICE restart of the old one would keep a data channel
        the new session never sees.
    :param data_channel_mute: (WebRTC) the page's Mute is also sent to the backend, as
        ``session.input_audio.mute`` / ``unmute`` on the ``oai-events`` data channel.
    :param push_to_talk: the page may offer push to talk (hold to speak).
    """

    factory: Callable[[ProviderContext], Backend]
    transport: Literal["webrtc", "relay"] = "webrtc"
    server_side_session: bool = False
    new_session_per_offer: bool = False
    data_channel_mute: bool = False
    push_to_talk: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoffSink(_Provider):
    """A handoff sink, selected by listing its name in ``handoff.sinks``."""

    factory: Callable[[ProviderContext], Sink]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the host knows about a call when it asks plugins for context.

    :param call_id: the gateway's call id.
    :param bridge_id: ``realtime.bridge_id``.
    :param telegram_user_id: the verified Telegram user who started the call.
    :param thread_id: the bound Codex thread, if any.
    """

    call_id: str
    bridge_id: str
    telegram_user_id: int | None = None
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class ContextPart:
    """One part of a call's instructions, contributed by ``bridgehost_call_context``.

    :param title: a short heading ("Recent work in the bound Codex thread").
    :param text: the body; the host trims the whole context to the backend's limit, dropping
        the lowest ``priority`` parts first.
    :param priority: higher survives trimming longer; builtins use 0–100.
    """

    title: str
    text: str
    priority: int = 50


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one readiness check: the shape of ``capabilities --json`` checks."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """A named readiness check contributed by ``bridgehost_readiness_checks``.

    :param name: what is checked, as a person reads it ("Webhook endpoint").
    :param run: an async callable returning a :class:`CheckResult`.
    """

    name: str
    run: Callable[[], Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """How one provider slot is described, hooked and typed."""

    key: str
    hook: str
    record_type: type[TunnelMode] | type[RealtimeBackend] | type[HandoffSink]
    label: str
    config_key: str
    service: Service


SLOTS: Sequence[SlotSpec] = (
    SlotSpec(
        "tunnel_modes",
        "bridgehost_register_tunnel_modes",
        TunnelMode,
        "tunnel mode",
        "realtime.tunnel_mode",
        "gateway",
    ),
    SlotSpec(
        "realtime_backends",
        "bridgehost_register_realtime_backends",
        RealtimeBackend,
        "realtime backend",
        "realtime.backend",
        "gateway",
    ),
    SlotSpec(
        "handoff_sinks",
        "bridgehost_register_handoff_sinks",
        HandoffSink,
        "handoff sink",
        "handoff.sinks",
        "telegram",
    ),
)
"""The three provider slots, in the order they are listed."""


class ProviderStartError(RuntimeError):
    """Raised by a provider's ``start`` when it cannot work; the message says how to fix it."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True, slots=True)
class Provided:
    """A provider record together with the plugin that registered it."""

    record: TunnelMode | RealtimeBackend | HandoffSink
    plugin: str
