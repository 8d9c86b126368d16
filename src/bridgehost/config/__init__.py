"""bridgehost configuration: ``bridge.config.toml`` models, secrets and loading.

Typical use::

    from bridgehost.config import load_config

    loaded = load_config(cli_config_path)      # raises ConfigError listing every problem
    loaded.config.realtime.gateway_port         # validated, defaults applied
    loaded.secrets.openai_api_key               # SecretStr | None

The file is found by ``--config``, ``$BRIDGE_CONFIG``, ``./bridge.config.toml``, then
``/etc/bridgehost/bridge.config.toml``. Secrets come from ``$CREDENTIALS_DIRECTORY/<NAME>``
(systemd ``LoadCredential=``; the shipped units load ``/etc/credstore/<NAME>``), the
environment, then ``.env`` next to the config file.
"""

from bridgehost.config._gateway import GatewayConfig
from bridgehost.config._handoff import HandoffConfig, PricesConfig
from bridgehost.config._invites import InvitesConfig
from bridgehost.config._load import (
    CONFIG_FILE_NAME,
    SYSTEM_CONFIG_PATH,
    LoadedConfig,
    find_config_path,
    load_config,
    read_toml,
    validate_config,
)
from bridgehost.config._mask import mask_config, render_toml
from bridgehost.config._models import (
    BridgeConfig,
    CodexConfig,
    PluginsConfig,
    StorageConfig,
    TelegramConfig,
)
from bridgehost.config._problems import ConfigError, ConfigProblem
from bridgehost.config._realtime import MANAGED_TUNNEL, STATIC_TUNNEL, RealtimeConfig
from bridgehost.config._requirements import (
    Service,
    core_secrets,
    requirements_problems,
    secret_fix,
)
from bridgehost.config._secrets import (
    CREDSTORE_DIR,
    KNOWN_SECRETS,
    Secrets,
    credstore_hint,
    validate_secret_name,
)

__all__ = [
    "CONFIG_FILE_NAME",
    "CREDSTORE_DIR",
    "KNOWN_SECRETS",
    "MANAGED_TUNNEL",
    "STATIC_TUNNEL",
    "SYSTEM_CONFIG_PATH",
    "BridgeConfig",
    "CodexConfig",
    "ConfigError",
    "ConfigProblem",
    "GatewayConfig",
    "HandoffConfig",
    "InvitesConfig",
    "LoadedConfig",
    "PluginsConfig",
    "PricesConfig",
    "RealtimeConfig",
    "Secrets",
    "Service",
    "StorageConfig",
    "TelegramConfig",
    "core_secrets",
    "credstore_hint",
    "find_config_path",
    "load_config",
    "mask_config",
    "read_toml",
    "render_toml",
    "requirements_problems",
    "secret_fix",
    "validate_config",
    "validate_secret_name",
]
