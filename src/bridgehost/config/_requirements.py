"""What each service needs beyond a valid file: secrets and the authorized chat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from bridgehost.config._problems import ConfigProblem
from bridgehost.config._secrets import (
    REALTIME_CONTROL_SECRET,
    TELEGRAM_BOT_TOKEN,
    credstore_hint,
)

if TYPE_CHECKING:
    from bridgehost.config._load import LoadedConfig

Service = Literal["gateway", "telegram", "ctl"]

_WHY = {
    (TELEGRAM_BOT_TOKEN, "gateway"): "the gateway checks Mini App init data with it",
    (TELEGRAM_BOT_TOKEN, "telegram"): "the bot cannot reach Telegram without it",
    (REALTIME_CONTROL_SECRET, "gateway"): "the gateway authenticates the bridge and bridgectl "
    "with it",
    (REALTIME_CONTROL_SECRET, "telegram"): "the bridge connects to the gateway's control "
    "channel with it",
    (REALTIME_CONTROL_SECRET, "ctl"): "bridgectl talks to the gateway's control API with it",
}


def secret_fix(name: str, loaded: LoadedConfig) -> str:
    """How to provide secret ``name``: environment, ``.env`` file, or systemd credential."""
    dotenv = loaded.secrets.dotenv_path
    where = f"add {name}=… to {dotenv}" if dotenv else f"add {name}=… to a .env file"
    return f"export {name}=… in the environment, or {where}, or under systemd " + credstore_hint(
        name
    )


def core_secrets(enabled: bool, service: Service) -> list[str]:
    """The secrets bridgehost itself needs in ``service`` (providers declare their own).

    - gateway: with ``realtime.enabled``, ``TELEGRAM_BOT_TOKEN`` and ``REALTIME_CONTROL_SECRET``;
    - telegram: always ``TELEGRAM_BOT_TOKEN``; with ``realtime.enabled`` also
      ``REALTIME_CONTROL_SECRET``;
    - ctl: with ``realtime.enabled``, ``REALTIME_CONTROL_SECRET``.
    """
    if service == "telegram":
        return [TELEGRAM_BOT_TOKEN, REALTIME_CONTROL_SECRET] if enabled else [TELEGRAM_BOT_TOKEN]
    if not enabled:
        return []
    if service == "gateway":
        return [TELEGRAM_BOT_TOKEN, REALTIME_CONTROL_SECRET]
    return [REALTIME_CONTROL_SECRET]


def requirements_problems(
    loaded: LoadedConfig,
    service: Service,
    provider_secrets: Sequence[tuple[str, str]] = (),
) -> list[ConfigProblem]:
    """What ``service`` needs beyond a valid file, as problems with fixes.

    :param provider_secrets: ``(name, why)`` for the secrets the selected providers declare
        for this service (:meth:`bridgehost.plugins.PluginHost.secret_needs`).

    The gateway and the bridge also need ``telegram.authorized_chat_id`` (the gateway only
    with ``realtime.enabled``).
    """
    config, secrets = loaded.config, loaded.secrets
    why = {
        **{
            name: _WHY.get((name, service), f"the {service} service needs it")
            for name in core_secrets(config.realtime.enabled, service)
        },
        **dict(provider_secrets),
    }
    needs_chat = service == "telegram" or (service == "gateway" and config.realtime.enabled)
    problems = [
        ConfigProblem(name, f"missing: {reason}", secret_fix(name, loaded))
        for name, reason in why.items()
        if secrets.get(name) is None
    ]
    if needs_chat and config.telegram.authorized_chat_id is None:
        problems.append(
            ConfigProblem(
                "telegram.authorized_chat_id",
                f"not set: the {service} service only serves the authorized chat",
                "send any message to your bot, run `bridgectl telegram discover` to see the chat "
                "id, then set telegram.authorized_chat_id = <id> in "
                f"{loaded.path or 'bridge.config.toml'}",
            )
        )
    return problems
