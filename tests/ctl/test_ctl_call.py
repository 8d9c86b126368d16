"""``bridgectl call arm|disarm|status|hangup`` against a real gateway."""

from __future__ import annotations

import json
from datetime import datetime

from ctl_harness import (
    RunningGateway,
    free_port,
    one_line_error,
    run,
    variant,
)

from bridgehost.handoff.outbox import Outbox
from bridgehost.state.bridge_store import BridgeStore

pytest_plugins = ("ctl_fixtures",)  # the ctl_gateway fixture


async def test_arm_prints_progress_then_the_launch_url(ctl_gateway, cli) -> None:
    gw = await ctl_gateway()
    armed = await run(cli, gw.loaded.path, "call", "arm")
    assert armed.code == 0, armed
    progress = armed.stderr.splitlines()
    assert progress[0] == f"Asking the gateway at {gw.base} to arm the call surface…"
    assert f"  waiting for {gw.base}/healthz to answer through the public origin…" in progress
    assert "  armed" in progress
    lines = armed.stdout.splitlines()
    assert lines[0] == f"Armed at {gw.base}."
    assert lines[1].startswith("Launch URL (valid until ") and "(in 9 min)" in lines[1]
    assert lines[2].startswith(f"  {gw.base}/miniapp?launch=")
    assert "not ready yet: Bound Codex thread" in armed.stderr  # nothing bound in this test

    data = await run(cli, gw.loaded.path, "call", "arm", "--json")
    assert data.code == 0, data
    result = data.json
    assert set(result) == {"armed", "launch_url", "public_url", "expires_at"}
    assert result["armed"] is True and result["public_url"] == gw.base
    assert result["launch_url"].startswith(f"{gw.base}/miniapp?launch=")
    assert datetime.fromisoformat(result["expires_at"]).tzinfo is not None
    assert result["launch_url"] not in armed.stdout  # every arm mints a fresh token

    status = await run(cli, gw.loaded.path, "call", "status")
    assert status.code == 0, status
    assert "Call surface:  ready — armed at" in status.stdout
    assert "Last probe:    ok at" in status.stdout
    assert "Surface events (newest first):" in status.stdout
    assert "arm ok via bridgectl" in status.stdout
    assert "miniapp?launch=" not in status.stdout  # no token material in status


async def test_disarm_remembers_the_reason(ctl_gateway, cli) -> None:
    gw = await ctl_gateway()
    await gw.arm()
    done = await run(cli, gw.loaded.path, "call", "disarm", "--reason", "maintenance")
    assert done.code == 0, done
    assert done.stdout.startswith("Disarmed (reason: maintenance).")
    data = (await run(cli, gw.loaded.path, "call", "status", "--json")).json
    assert data["surface"]["armed"] is False
    assert data["surface"]["last_disarm_reason"] == "maintenance"
    assert set(data) >= {"surface", "tunnel", "call", "recent_calls", "budget"}

    await run(cli, gw.loaded.path, "call", "disarm")
    human = await run(cli, gw.loaded.path, "call", "status")
    assert "Call surface:  disarmed (manually disarmed at" in human.stdout
    caps = (await run(cli, gw.loaded.path, "capabilities", "--json")).json
    surface = next(c for c in caps["checks"] if c["name"] == "Call surface")
    assert surface["ok"] is False and "bridgectl call arm" in surface["fix"]


async def test_arm_refused_when_realtime_disabled(ctl_gateway, cli) -> None:
    gw = await ctl_gateway()
    config = variant(gw.loaded.path, "disabled.toml", enabled=False)
    result = await run(cli, config, "call", "arm")
    assert result.code == 1, result
    assert "realtime.enabled = false" in one_line_error(result)


async def test_arm_fails_when_the_public_origin_does_not_answer(ctl_gateway, cli) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    gw = await ctl_gateway(public_url=dead, startup_timeout_ms=1000)
    armed = await run(cli, gw.loaded.path, "call", "arm")
    assert armed.code == 1, armed
    assert f"  waiting for {dead}/healthz to answer through the public origin…" in armed.stderr
    error = one_line_error(armed)
    assert f"The public Mini App origin {dead} did not answer in time" in error
    caps = (await run(cli, gw.loaded.path, "capabilities", "--json")).json
    origin = next(c for c in caps["checks"] if c["name"] == "Public Mini App origin")
    assert origin["ok"] is False and origin["fix"]


async def _live_call(gw: RunningGateway) -> str:
    """Start a relay call and report it started, as the Mini App does."""
    body = await gw.start_call()
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": body["client_token"]})
    assert (await ws.receive_json(timeout=5))["type"] == "call.auth.ok"
    await ws.send_json({"type": "call.event", "id": 1, "event": {"type": "call.started"}})
    await gw.bridge.wait_for("call.started")
    gw.test_socket = ws  # type: ignore[attr-defined]  # kept open until the test ends
    return body["call_id"]


async def test_hangup_ends_the_live_call(ctl_gateway, cli) -> None:
    gw = await ctl_gateway(finalize_grace_ms=200)
    call_id = await _live_call(gw)

    status = await run(cli, gw.loaded.path, "status")
    assert f"Current call:    {call_id} active" in status.stdout, status
    refused = await run(cli, gw.loaded.path, "call", "disarm")
    assert refused.code == 1 and "hang it up first" in one_line_error(refused)

    hung = await run(cli, gw.loaded.path, "call", "hangup")
    assert hung.code == 0, hung
    assert hung.stdout.strip() == f"Call {call_id} ended (operator_hangup)."
    ended = await gw.bridge.wait_for("call.ended")
    assert ended["reason"] == "operator_hangup" and ended["ended_by"] == "operator"
    assert gw.gateway.calls.current is None

    again = await run(cli, gw.loaded.path, "call", "hangup", "--json")
    assert again.code == 1
    assert again.json["error"]["code"] == "no_call"
    assert "no call is running" in one_line_error(again)

    # The bridge records what it received and queues the handoff (as bridge-telegram does);
    # call status joins the gateway's record, the bridge's side and the deliveries per sink.
    store = BridgeStore.open(gw.loaded.config.storage.root)
    try:
        for item in gw.bridge.events:
            store.record_event(item["call_id"], item["event"])
        outbox = Outbox(store)
        outbox.enqueue(call_id, {"call_id": call_id}, ["file", "codex"], summarized=False)
        outbox.claim(call_id, "file")
        outbox.mark_delivered(call_id, "file", "calls/handoff.md")
        outbox.claim(call_id, "codex")
        outbox.mark_attempt_failed(call_id, "codex", "thread busy", retry_in_s=30)
    finally:
        store.close()
    data = (await run(cli, gw.loaded.path, "call", "status", "--json")).json
    record = next(r for r in data["recent_calls"] if r["call_id"] == call_id)
    assert record["status"] == "ended" and record["end_reason"] == "operator_hangup"
    assert record["bridge"]["status"] == "ended"
    assert record["bridge"]["events_received"] == ended["seq"]
    sinks = {d["sink"]: d for d in record["deliveries"]}
    assert sinks["file"]["status"] == "delivered" and sinks["file"]["receipt"] == "calls/handoff.md"
    assert sinks["codex"]["status"] == "pending" and sinks["codex"]["attempts"] == 1
    assert sinks["codex"]["last_error"] == "thread busy"
    human = await run(cli, gw.loaded.path, "call", "status")
    assert f"  {call_id}  ended  created " in human.stdout
    assert "(operator_hangup by operator)" in human.stdout
    assert f"bridge: ended, {ended['seq']} events received" in human.stdout
    assert "handoff: file delivered after 1 attempt (calls/handoff.md)" in human.stdout
    assert "codex pending after 1 attempt, next try " in human.stdout
    assert "last error: thread busy" in human.stdout
    await gw.test_socket.close()  # type: ignore[attr-defined]


async def test_hangup_no_wait_and_by_id(ctl_gateway, cli) -> None:
    gw = await ctl_gateway(finalize_grace_ms=200)
    call_id = await _live_call(gw)
    wrong = await run(cli, gw.loaded.path, "call", "hangup", "--call-id", "someone-else")
    assert wrong.code == 1 and gw.gateway.calls.current is not None
    assert "call someone-else is not the live call" in one_line_error(wrong)
    done = await run(
        cli,
        gw.loaded.path,
        "call",
        "hangup",
        "--call-id",
        call_id,
        "--no-wait",
        "--json",
        "--reason",
        "operator_test",
    )
    assert done.code == 0, done
    assert json.loads(done.stdout) == {
        "ok": True,
        "call_id": call_id,
        "reason": "operator_test",
        "ended": False,
    }
    ended = await gw.bridge.wait_for("call.ended")
    assert ended["reason"] == "operator_test"
    await gw.test_socket.close()  # type: ignore[attr-defined]
