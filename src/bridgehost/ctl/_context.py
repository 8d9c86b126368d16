"""Inputs the operator commands share: the config, the gateway's status, the bridge's store.

The binding and the session owner live in the bridge's own database (``bridge.db``, see
:mod:`bridgehost.state.bridge_store`); ``bridgectl`` reads it directly, because the copy the gateway
holds is only what the bridge last announced. Whether the bridge is *connected* is something
only the gateway knows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bridgehost.ctl._output import EXIT_USAGE, CtlError, gateway_error, note

if TYPE_CHECKING:
    from bridgehost.config import LoadedConfig
    from bridgehost.state.bridge_store import BridgeStore


def config_path(ctx: click.Context) -> str | None:
    """``--config`` of the group, if given."""
    root = ctx.find_root()
    return root.obj.get("config_path") if isinstance(root.obj, dict) else None


def load(ctx: click.Context, *, as_json: bool) -> LoadedConfig:
    """Load and validate the config, or fail with exit code 2 naming the first problem."""
    from bridgehost.config import ConfigError, load_config

    try:
        return load_config(config_path(ctx), env=os.environ)
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else None
        where = str(exc.path) if exc.path else "bridge.config.toml"
        detail = str(first) if first else str(exc).splitlines()[0]
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        raise CtlError(
            f"{where}: {detail}{more}. Run 'bridgectl config check' to see every problem.",
            exit_code=EXIT_USAGE,
            code="config",
            as_json=as_json,
        ) from exc


async def fetch_status(loaded: LoadedConfig, *, as_json: bool) -> dict[str, Any]:
    """``GET /control/status`` or a :class:`CtlError` with the right exit code."""
    from bridgehost.gateway_api import GatewayApi, GatewayApiError

    try:
        async with GatewayApi(loaded.config, loaded.secrets) as api:
            return await api.status()
    except GatewayApiError as exc:
        raise gateway_error(exc, as_json=as_json) from exc


SERVICE_STATE_DIR = Path("/var/lib/bridge-telegram")
"""Where bridge-telegram.service keeps its state (``StateDirectory=bridge-telegram``)."""


def bridge_state_root(loaded: LoadedConfig) -> Path:
    """The bridge's state directory as bridge-telegram sees it.

    ``storage.root`` when the config or ``$STATE_DIRECTORY`` sets it; otherwise, when the default
    directory holds no bridge state but the systemd unit's state directory does, that one, so
    ``bridgectl bind`` next to the services changes what the running bridge reads.
    """
    from bridgehost.state import default_paths

    root = Path(loaded.config.storage.root)
    explicit = "root" in (loaded.raw.get("storage") or {}) or os.environ.get("STATE_DIRECTORY")
    if explicit or default_paths(root).bridge_db.exists():
        return root
    if default_paths(SERVICE_STATE_DIR).bridge_db.exists():
        return SERVICE_STATE_DIR
    return root


def open_bridge_store(loaded: LoadedConfig, *, create: bool, as_json: bool) -> BridgeStore | None:
    """The bridge's database; ``None`` when it does not exist yet and ``create`` is false."""
    from bridgehost.state import StateError, default_paths
    from bridgehost.state.bridge_store import BridgeStore

    root = bridge_state_root(loaded)
    if not create and not default_paths(root).bridge_db.exists():
        return None
    try:
        return BridgeStore.open(root)
    except StateError as exc:
        raise CtlError(
            f"{exc}. bridgectl must run as a user that can write the bridge's state "
            f"({root}), e.g. with sudo -u or as the service user.",
            exit_code=EXIT_USAGE,
            code="state",
            as_json=as_json,
        ) from exc


def read_bridge_store(loaded: LoadedConfig, *, as_json: bool) -> BridgeStore | None:
    """The bridge's store for reading; None when absent or when this user cannot open it
    (then a note says so, and callers fall back to what the gateway knows)."""
    try:
        return open_bridge_store(loaded, create=False, as_json=as_json)
    except CtlError as exc:
        note(f"{exc.message} Showing what the gateway knows instead.")
        return None


def _peer(loaded: LoadedConfig, status: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    bridge_id = loaded.config.realtime.bridge_id
    for peer in (status or {}).get("bridges") or []:
        if isinstance(peer, Mapping) and peer.get("bridge_id") == bridge_id:
            return peer
    return None


def bridge_view(
    loaded: LoadedConfig, status: Mapping[str, Any] | None, store: BridgeStore | None
) -> dict[str, Any]:
    """The bridge as readiness sees it: ``{connected, owner, thread_id, bound_at, source}``.

    ``connected`` comes from the gateway; owner and thread from ``bridge.db`` when it exists
    (else from what the bridge last announced to the gateway). A ``[codex] thread_id`` in the
    config stands in when nothing is bound at runtime.
    """
    peer = _peer(loaded, status)
    owner: str | None
    if store is not None:
        binding = store.binding()
        owner, thread, bound_at, source = (
            binding.owner,
            binding.thread_id,
            binding.bound_at,
            "bridge.db",
        )
    else:
        announced = dict((peer or {}).get("status") or {})
        owner, thread = announced.get("owner"), announced.get("thread_id")
        bound_at = announced.get("bound_at")
        source = "gateway (as the bridge announced)" if peer else "unknown"
    if not thread and loaded.config.codex.thread_id:
        thread, source = loaded.config.codex.thread_id, f"{source}; [codex] thread_id"
    return {
        "connected": peer is not None,
        "owner": owner,
        "thread_id": thread,
        "bound_at": bound_at,
        "source": source,
        "connected_at": (peer or {}).get("connected_at"),
    }


def read_bridge_view(
    loaded: LoadedConfig, status: Mapping[str, Any] | None, *, as_json: bool
) -> dict[str, Any]:
    """:func:`bridge_view` with the store opened (if it exists) and closed again."""
    store = read_bridge_store(loaded, as_json=as_json)
    try:
        return bridge_view(loaded, status, store)
    finally:
        if store is not None:
            store.close()
