"""``bridgectl plugins`` as a real process, with plugins installed beside bridgehost."""

from __future__ import annotations

import json

EXT_SINK = """
from bridgehost import hookimpl
from bridgehost.providers import HandoffSink

class Sink:
    def __init__(self, ctx):
        self.ctx = ctx

@hookimpl
def bridgehost_register_handoff_sinks():
    return [HandoffSink(name="ext-sink", description="third-party sink", factory=Sink)]
"""


def _plugin(listing: dict, name: str) -> dict:
    return next(p for p in listing["plugins"] if p["name"] == name)


def test_separately_installed_plugin_is_listed_and_selectable(site_packages, cli, tmp_path):
    site_packages.install(
        "bridgehost-ext", "2.5.0", {"bridgehost_ext": EXT_SINK}, {"ext": "bridgehost_ext"}
    )
    env = site_packages.env()
    result = cli(["bridgectl", "plugins", "--json"], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ext = _plugin(json.loads(result.stdout), "ext")
    assert ext["status"] == "enabled"
    assert ext["version"] == "2.5.0"
    assert ext["distribution"] == "bridgehost-ext"
    assert ext["hooks"] == ["bridgehost_register_handoff_sinks"]
    assert ext["provides"]["handoff_sinks"] == ["ext-sink"]

    config = tmp_path / "bridge.config.toml"
    config.write_text('[handoff]\nsinks = ["file", "ext-sink"]\n')
    check = cli(
        ["bridgectl", "--config", str(config), "config", "check", "--json", "--service", "gateway"],
        env=env,
        cwd=tmp_path,
    )
    problems = json.loads(check.stdout)["problems"]
    assert not [p for p in problems if p["key"] == "handoff.sinks"], problems

    config.write_text('[handoff]\nsinks = ["file", "ext-snk"]\n')
    check = cli(
        ["bridgectl", "--config", str(config), "config", "check", "--json"], env=env, cwd=tmp_path
    )
    assert check.returncode == 1
    sinks = [p for p in json.loads(check.stdout)["problems"] if p["key"] == "handoff.sinks"]
    assert "Choose one of: codex, ext-sink, file, telegram" in sinks[0]["message"]


def test_plugin_raising_on_import_is_failed_and_listing_still_works(site_packages, cli, tmp_path):
    site_packages.install(
        "bridgehost-broken",
        "0.9",
        {"bridgehost_broken": "raise RuntimeError('bad build')"},
        {"broken": "bridgehost_broken"},
    )
    result = cli(["bridgectl", "plugins", "--json"], env=site_packages.env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    broken = _plugin(listing, "broken")
    assert broken["status"] == "failed"
    assert "RuntimeError: bad build" in broken["error"]
    assert _plugin(listing, "file")["status"] == "enabled"

    human = cli(["bridgectl", "plugins"], env=site_packages.env(), cwd=tmp_path)
    assert human.returncode == 0
    assert "broken 0.9 [failed]" in human.stdout
    assert "error: failed to import bridgehost_broken: RuntimeError: bad build" in human.stdout


def test_load_plugins_env_empty_means_builtins_only(site_packages, cli, tmp_path):
    site_packages.install(
        "bridgehost-ext", "2.5.0", {"bridgehost_ext": EXT_SINK}, {"ext": "bridgehost_ext"}
    )
    env = site_packages.env(BRIDGEHOST_LOAD_PLUGINS="")
    listing = json.loads(cli(["bridgectl", "plugins", "--json"], env=env, cwd=tmp_path).stdout)
    assert _plugin(listing, "ext")["status"] == "disabled"
    assert _plugin(listing, "file")["status"] == "enabled"
    env = site_packages.env(BRIDGEHOST_LOAD_PLUGINS="ext")
    listing = json.loads(cli(["bridgectl", "plugins", "--json"], env=env, cwd=tmp_path).stdout)
    assert _plugin(listing, "ext")["status"] == "enabled"


def test_config_disabled_plugin_shows_disabled(cli, tmp_path):
    config = tmp_path / "bridge.config.toml"
    config.write_text('[plugins]\ndisabled = ["static-public-url"]\n')
    result = cli(["bridgectl", "--config", str(config), "plugins", "--json"], cwd=tmp_path)
    plugin = _plugin(json.loads(result.stdout), "static-public-url")
    assert plugin["status"] == "disabled"
    assert "plugins.disabled" in plugin["detail"]
