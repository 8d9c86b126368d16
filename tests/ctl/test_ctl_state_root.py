"""bridgectl finds bridge-telegram's state next to the systemd units."""

from __future__ import annotations

from bridgehost.config import load_config
from bridgehost.ctl import _context
from bridgehost.state.bridge_store import BridgeStore


def test_unit_state_dir_is_used_when_storage_root_is_not_set(tmp_path, monkeypatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.chdir(tmp_path)
    service_dir = tmp_path / "var-lib-bridge-telegram"
    monkeypatch.setattr(_context, "SERVICE_STATE_DIR", service_dir)
    loaded = load_config(None, env={})
    assert _context.bridge_state_root(loaded) == loaded.config.storage.root  # nothing there yet
    BridgeStore.open(service_dir).close()
    assert _context.bridge_state_root(loaded) == service_dir


def test_explicit_storage_root_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    service_dir = tmp_path / "var-lib-bridge-telegram"
    BridgeStore.open(service_dir).close()
    monkeypatch.setattr(_context, "SERVICE_STATE_DIR", service_dir)
    config = tmp_path / "bridge.config.toml"
    config.write_text(f'[storage]\nroot = "{tmp_path / "mine"}"\n')
    loaded = load_config(config, env={})
    assert _context.bridge_state_root(loaded) == tmp_path / "mine"
