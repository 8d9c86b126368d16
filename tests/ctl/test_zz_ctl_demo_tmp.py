from ctl_harness import ctl_env, run, free_port, write_config, run_sync, variant
from bridgehost.bridge_state import BridgeStore
from bridgehost.gateway.store import today
pytest_plugins = ("ctl_fixtures",)

def show(title, r):
    print(f"\n$ bridgectl {title}    # exit {r.code}")
    if r.stdout: print(r.stdout.rstrip())
    if r.stderr: print("[stderr] " + r.stderr.rstrip().replace("\n", "\n[stderr] "))

async def test_demo(gateway_factory, cli, tmp_path):
    gw = await gateway_factory(finalize_grace_ms=200)
    c = gw.loaded.path
    show("capabilities", await run(cli, c, "capabilities"))
    show("call arm", await run(cli, c, "call", "arm"))
    show("call arm --json", await run(cli, c, "call", "arm", "--json"))
    show("release", await run(cli, c, "release"))
    show("claim", await run(cli, c, "claim"))
    add = c.read_text() + '[codex]\nbinary = "/nonexistent/codex"\n'
    c.write_text(add)
    show("bind 019a...beef", await run(cli, c, "bind", "019a0000-0000-7000-8000-00000000beef"))
    show("status", await run(cli, c, "status"))
    show("capabilities", await run(cli, c, "capabilities"))
    show("capabilities --json", await run(cli, c, "capabilities", "--json"))
    body = await gw.start_call()
    ws = await gw.http.ws_connect(f"{gw.base}{body['ws_path']}")
    await ws.send_json({"type": "call.auth", "token": body["client_token"]})
    await ws.receive_json(timeout=5)
    await ws.send_json({"type": "call.event", "id": 1, "event": {"type": "call.started"}})
    await gw.bridge.wait_for("call.started")
    show("status (call live)", await run(cli, c, "status"))
    show("call hangup", await run(cli, c, "call", "hangup"))
    store = BridgeStore.open(gw.loaded.config.storage.root)
    for item in gw.bridge.events:
        store.record_event(item["call_id"], item["event"])
    store.close()
    show("call status", await run(cli, c, "call", "status"))
    show("call hangup (none)", await run(cli, c, "call", "hangup"))
    show("call disarm", await run(cli, c, "call", "disarm"))
    show("call status --json", await run(cli, c, "call", "status", "--json"))
    await ws.close()
    gw.gateway.store.charge("x", today(), 600_000)
    show("capabilities (budget)", await run(cli, c, "capabilities"))
    show("status (no secret)", await run(cli, c, "status", env=ctl_env(REALTIME_CONTROL_SECRET=None)))
    down = write_config(tmp_path / "x", free_port()) if (tmp_path / "x").mkdir() is None else None
    show("status (gateway down)", await run(cli, down, "status"))
    show("capabilities (gateway down)", await run(cli, down, "capabilities"))
    show("threads (no codex)", await run(cli, c, "threads"))
    g2 = await gateway_factory(connect_bridge=False)
    show("capabilities (bridge not connected)", await run(cli, g2.loaded.path, "capabilities"))
    o = variant(gw.loaded.path, "o.toml", backend="openai")
    r = await run(cli, o, "capabilities")
    show("capabilities (openai, no key)", r)
