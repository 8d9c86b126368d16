"""``bridgectl telegram discover`` against the fake Bot API (python-telegram-bot as the client)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ctl_harness import BOT_TOKEN, ctl_env, free_port, one_line_error, run

from fakes.telegram_api import FakeBotApi


def discover_config(tmp_path: Path, api_root: str, chat_id: int | None = None) -> Path:
    lines = ["[telegram]", f'api_base_url = "{api_root}"']
    if chat_id is not None:
        lines.append(f"authorized_chat_id = {chat_id}")
    lines += ["[storage]", f'root = "{tmp_path / "state"}"']
    path = tmp_path / "bridge.config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(token=BOT_TOKEN, max_poll_wait=2.0) as api:
        yield api


async def test_discover_waits_for_start(bot_api: FakeBotApi, tmp_path: Path) -> None:
    config = discover_config(tmp_path, bot_api.root)
    exe = Path(sys.executable).with_name("bridgectl")
    proc = await asyncio.create_subprocess_exec(
        str(exe),
        "--config",
        str(config),
        "telegram",
        "discover",
        "--timeout",
        "20",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ctl_env(),
        cwd=tmp_path,
    )
    try:
        assert proc.stderr is not None
        first = await asyncio.wait_for(proc.stderr.readline(), 15)
        assert first.decode().strip() == (
            "Send /start to your bot @bridgehost_test_bot now… (waiting 20 s)"
        )
        bot_api.push_message(5555, "hello there")  # not /start: skipped
        bot_api.push_message(777001, "/start", first_name="Bob", username="bobby")
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines() == [
        "Found chat 777001 (private chat with Bob, @bobby).",
        f"Add this line under [telegram] in {config}:",
        "  authorized_chat_id = 777001",
    ]
    polls = [c for c in bot_api.calls if c.method == "getUpdates"]
    assert polls and all("allowed_updates" not in c.params for c in polls)
    assert all(float(c.params.get("timeout", 0)) <= 5 for c in polls)


async def test_discover_json_and_already_configured(
    bot_api: FakeBotApi, tmp_path: Path, cli
) -> None:
    config = discover_config(tmp_path, bot_api.root, chat_id=4242)
    bot_api.push_message(4242, "/start@bridgehost_test_bot", first_name="Alice")
    result = await run(cli, config, "telegram", "discover", "--json", "--timeout", "10")
    assert result.code == 0, result
    assert result.json == {
        "chat_id": 4242,
        "chat_type": "private",
        "name": "Alice",
        "username": None,
        "user_id": 4242,
        "config_line": "authorized_chat_id = 4242",
        "config_path": str(config),
        "already_configured": True,
    }
    bot_api.push_message(4242, "/start", first_name="Alice")
    human = await run(cli, config, "telegram", "discover", "--timeout", "10")
    assert f"{config} already has it: authorized_chat_id = 4242" in human.stdout


async def test_discover_times_out(bot_api: FakeBotApi, tmp_path: Path, cli) -> None:
    config = discover_config(tmp_path, bot_api.root)
    result = await run(cli, config, "telegram", "discover", "--timeout", "1")
    assert result.code == 1, result
    assert "nobody sent /start within 1 s" in one_line_error(result)


async def test_discover_refusals(bot_api: FakeBotApi, tmp_path: Path, cli) -> None:
    config = discover_config(tmp_path, bot_api.root)
    missing = await run(cli, config, "telegram", "discover", env=ctl_env(TELEGRAM_BOT_TOKEN=None))
    assert missing.code == 2, missing
    assert "TELEGRAM_BOT_TOKEN is not set" in one_line_error(missing)
    assert (
        json.loads(
            (
                await run(
                    cli,
                    config,
                    "telegram",
                    "discover",
                    "--json",
                    env=ctl_env(TELEGRAM_BOT_TOKEN=None),
                )
            ).stdout
        )["error"]["code"]
        == "no_token"
    )

    wrong = await run(
        cli,
        config,
        "telegram",
        "discover",
        "--timeout",
        "2",
        env=ctl_env(TELEGRAM_BOT_TOKEN="999:wrong-token"),
    )
    assert wrong.code == 2, wrong
    assert "rejected TELEGRAM_BOT_TOKEN" in one_line_error(wrong)

    down = discover_config(tmp_path, f"http://127.0.0.1:{free_port()}")
    unreachable = await run(cli, down, "telegram", "discover", "--timeout", "2")
    assert unreachable.code == 3, unreachable
    assert "cannot reach the Bot API" in one_line_error(unreachable)
