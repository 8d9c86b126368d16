"""``bridgectl mcp install|uninstall|status`` on a Codex home with other content, then a real
``codex app-server`` that lists the registered server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from bridgehost.codex import AppServerClient
from fakes.codex_model import CODEX_ENV, FakeCodexModel, codex_args

BRIDGECTL = str(Path(sys.executable).with_name("bridgectl"))
BRIDGEHOST = str(Path(sys.executable).with_name("bridgehost"))
OTHER = """\
# my Codex settings
model = "gpt-5.1"   # keep this comment

[profiles.fast]
model_reasoning_effort = "low"

[mcp_servers.docs]
command = "docs-server"
args = ["--stdio"]
"""


def setup(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(OTHER)
    config = tmp_path / "bridge.config.toml"
    config.write_text(f'[codex]\nhome = "{home}"\n[storage]\nroot = "{tmp_path / "state"}"\n')
    return home, config


def ctl(config: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [BRIDGECTL, *args, "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_install_is_idempotent_and_uninstall_gives_back_the_file(tmp_path: Path) -> None:
    home, config = setup(tmp_path)
    first = ctl(config, "mcp", "install")
    assert first["changed"] is True
    text = (home / "config.toml").read_text()
    assert text.startswith(OTHER), "everything before the new table is kept byte for byte"
    assert f'command = "{BRIDGEHOST}"' in text
    assert f'args = ["mcp", "--config", "{config.absolute()}"]' in text
    assert ctl(config, "mcp", "install")["changed"] is False
    assert (home / "config.toml").read_text() == text
    assert ctl(config, "mcp", "status")["registered"] is True
    assert ctl(config, "mcp", "uninstall")["changed"] is True
    assert (home / "config.toml").read_bytes() == OTHER.encode()
    assert ctl(config, "mcp", "uninstall")["changed"] is False
    assert ctl(config, "mcp", "status")["registered"] is False


def test_a_stale_registration_is_replaced_in_place(tmp_path: Path) -> None:
    home, config = setup(tmp_path)
    stale = OTHER + '\n[mcp_servers.bridgehost]\ncommand = "/gone/bridgehost"\n\n[tail]\nx = 1\n'
    (home / "config.toml").write_text(stale)
    assert ctl(config, "mcp", "status")["status"] == "missing"
    assert ctl(config, "mcp", "install")["changed"] is True
    text = (home / "config.toml").read_text()
    assert text.startswith(OTHER) and text.endswith("[tail]\nx = 1\n")
    assert "/gone/" not in text and BRIDGEHOST in text


async def test_codex_app_server_lists_the_registered_server(tmp_path: Path, codex_bin: str) -> None:
    home, config = setup(tmp_path)
    (home / "config.toml").write_text("")
    ctl(config, "mcp", "install")
    with FakeCodexModel() as model:
        client = await AppServerClient.spawn(
            codex_bin, home, args=codex_args(model.port), env=CODEX_ENV, cwd=tmp_path, timeout=30
        )
        try:
            async with asyncio.timeout(40):
                while True:
                    answer = await client.request("mcpServerStatus/list", {})
                    servers = {s["name"]: s for s in answer.get("data") or []}
                    if "bridgehost" in servers and servers["bridgehost"].get("tools"):
                        break
                    await asyncio.sleep(0.5)
        finally:
            await client.close()
    tools = servers["bridgehost"]["tools"]
    names = set(tools) if isinstance(tools, dict) else {t["name"] for t in tools}
    assert names >= {"request_call", "send_message", "ask_user"}
