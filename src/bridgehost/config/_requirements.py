"""What each service needs beyond a valid file: secrets and the authorized chat."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from bridgehost.config._problems import ConfigProblem
from bridgehost.config._secrets import (
    OPENAI_API_KEY,
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
    (OPENAI_API_KEY, "gateway"): "the gateway opens OpenAI realtime sessions with it",
    (OPENAI_API_KEY, "telegram"): "the bridge writes call summaries with it",
}


def secret_fix(name: str, loaded: LoadedConfig) -> str:
    """How to provide secret ``name``: environment, ``.env`` file, or systemd credential."""
    dotenv = loaded.secrets.dotenv_path
    where = f"add {name}=… to {dotenv}" if dotenv else f"add {name}=… to a .env file"
    return f"export {name}=… in the environment, or {where}, or under systemd " + credstore_hint(
        name
    )


def _missing_secret(name: str, service: Service, loaded: LoadedConfig) -> ConfigProblem:
    why = _WHY.get((name, service), f"the {service} service needs it")
    return ConfigProblem(name, f"missing: {why}", secret_fix(name, loaded))


def requirements_problems(loaded: LoadedConfig, service: Service) -> list[ConfigProblem]:
    """What ``service`` needs beyond a valid file, as problems with fixes.

    - gateway: with ``realtime.enabled``, ``TELEGRAM_BOT_TOKEN``, ``REALTIME_CONTROL_SECRET``,
      ``OPENAI_API_KEY`` (when ``realtime.backend = "openai"``) and
      ``telegram.authorized_chat_id``;
    - telegram: always ``TELEGRAM_BOT_TOKEN`` and ``telegram.authorized_chat_id``; with
      ``realtime.enabled`` also ``REALTIME_CONTROL_SECRET`` and ``OPENAI_API_KEY`` (openai);
    - ctl: with ``realtime.enabled``, ``REALTIME_CONTROL_SECRET``.
    """
    config, secrets = loaded.config, loaded.secrets
    enabled = config.realtime.enabled
    openai = config.realtime.backend == "openai"
    backend_key = [OPENAI_API_KEY] if openai else []
    needed: list[str] = []
    needs_chat = False
    if service == "gateway" and enabled:
        needed = [TELEGRAM_BOT_TOKEN, REALTIME_CONTROL_SECRET, *backend_key]
        needs_chat = True
    elif service == "telegram":
        needed = [TELEGRAM_BOT_TOKEN]
        if enabled:
            needed += [REALTIME_CONTROL_SECRET, *backend_key]
        needs_chat = True
    elif service == "ctl" and enabled:
        needed = [REALTIME_CONTROL_SECRET]
    problems = [
        _missing_secret(name, service, loaded) for name in needed if secrets.get(name) is None
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
