"""``bridgectl call arm|disarm|status|hangup``: the call surface and the live call."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import click

from bridgehost._cli_common import bridgectl_options
from bridgehost.ctl import _describe as describe
from bridgehost.ctl._call_status import call_status
from bridgehost.ctl._context import fetch_status, load
from bridgehost.ctl._output import (
    CtlError,
    emit_json,
    gateway_error,
    note,
    progress,
    run,
)
from bridgehost.ctl.invite_cmd import invite

if TYPE_CHECKING:
    from bridgehost.config import LoadedConfig

ARM_SLACK_S = 30.0
"""How much longer than ``realtime.startup_timeout_ms`` ``call arm`` waits for the gateway."""


@click.group("call")
@bridgectl_options
def call() -> None:
    """Arm or disarm the call surface, see calls, hang up the live call."""


call.add_command(call_status)
call.add_command(invite)


async def _arm(loaded: LoadedConfig, *, as_json: bool) -> dict[str, Any]:
    from bridgehost.gateway_api import GatewayApi, GatewayApiError

    timeout = loaded.config.realtime.startup_timeout_ms / 1000 + ARM_SLACK_S
    try:
        async with GatewayApi(loaded.config, loaded.secrets, timeout_s=timeout) as api:
            progress(f"Asking the gateway at {api.base} to arm the call surface…")
            return await api.arm(
                lambda text: progress(f"  {text}…" if text != "armed" else f"  {text}")
            )
    except GatewayApiError as exc:
        raise gateway_error(exc, as_json=as_json) from exc


async def _not_ready_after_arm(loaded: LoadedConfig) -> str | None:
    """What would still stop /call once armed (None when nothing would)."""
    from bridgehost.ctl.status_cmd import collect

    try:
        readiness, *_rest = await collect(loaded, as_json=False)
    except CtlError:
        return None
    failed = readiness.first_failure
    if failed is None:
        return None
    return f"/call is not ready yet: {failed.name}: {failed.detail.rstrip('.')}" + (
        f". Fix: {failed.fix}" if failed.fix else ""
    )


@call.command("arm")
@bridgectl_options
@click.pass_context
def arm(ctx: click.Context, as_json: bool) -> None:
    """Bring up the public origin, wait until it answers, and mint a launch URL.

    Progress goes to stderr while the tunnel starts and the public origin warms up; the launch
    URL and its expiry go to stdout. --json prints {"armed": true, "launch_url", "public_url",
    "expires_at"}.
    """
    loaded = load(ctx, as_json=as_json)
    if not loaded.config.realtime.enabled:
        raise CtlError(
            "live calls are disabled (realtime.enabled = false); set enabled = true "
            "under [realtime] in bridge.config.toml and restart both services",
            code="disabled",
            as_json=as_json,
        )
    result = run(_arm(loaded, as_json=as_json))
    remaining = run(_not_ready_after_arm(loaded))
    if as_json:
        emit_json(
            {
                "armed": True,
                "launch_url": result.get("launch_url"),
                "public_url": result.get("public_url"),
                "expires_at": result.get("expires_at"),
            }
        )
    else:
        click.echo(f"Armed at {result.get('public_url')}.")
        click.echo(f"Launch URL (valid until {describe.when(result.get('expires_at'))}):")
        click.echo(f"  {result.get('launch_url')}")
        click.echo("Send /call in the bot's chat to get the Mini App button.")
    if remaining:
        note(remaining)


@call.command("disarm")
@click.option(
    "--reason",
    default="bridgectl call disarm",
    show_default=True,
    help="Why, as remembered in 'call status'.",
)
@click.option("--force", is_flag=True, help="Disarm even while a call is live (it will drop).")
@bridgectl_options
@click.pass_context
def disarm(ctx: click.Context, reason: str, force: bool, as_json: bool) -> None:
    """Stop the tunnel and invalidate the launch URL."""
    from bridgehost.gateway_api import GatewayApi, GatewayApiError

    loaded = load(ctx, as_json=as_json)

    async def _go() -> dict[str, Any]:
        if not force:
            live = (await fetch_status(loaded, as_json=as_json)).get("call")
            if live:
                raise CtlError(
                    f"call {live.get('call_id')} is live; hang it up first with "
                    "'bridgectl call hangup' (or disarm with --force)",
                    code="call_in_progress",
                    as_json=as_json,
                )
        try:
            async with GatewayApi(loaded.config, loaded.secrets) as api:
                return await api.disarm(reason)
        except GatewayApiError as exc:
            raise gateway_error(exc, as_json=as_json) from exc

    answer = run(_go())
    if as_json:
        emit_json({"armed": False, "reason": answer.get("reason", reason)})
        return
    click.echo(
        f"Disarmed (reason: {answer.get('reason', reason)}). The last launch URL no "
        "longer works; 'bridgectl call arm' arms again."
    )


async def _wait_ended(
    loaded: LoadedConfig, call_id: str, *, as_json: bool
) -> dict[str, Any] | None:
    """Poll until the gateway no longer has ``call_id`` live; its record, or None on timeout."""
    deadline = time.monotonic() + loaded.config.realtime.finalize_grace_ms / 1000 + 10
    while time.monotonic() < deadline:
        data = await fetch_status(loaded, as_json=as_json)
        current = data.get("call") or {}
        if current.get("call_id") != call_id:
            return next(
                (r for r in data.get("recent_calls") or [] if r.get("call_id") == call_id),
                {"call_id": call_id},
            )
        await asyncio.sleep(0.2)
    return None


@call.command("hangup")
@click.option("--call-id", default=None, help="Only hang up this call (default: the live one).")
@click.option(
    "--reason",
    default="operator_hangup",
    show_default=True,
    help="End reason recorded on the call.",
)
@click.option("--no-wait", is_flag=True, help="Return once the gateway accepted the request.")
@bridgectl_options
@click.pass_context
def hangup(
    ctx: click.Context, call_id: str | None, reason: str, no_wait: bool, as_json: bool
) -> None:
    """End the live call; waits (bounded) until the gateway has written call.ended.

    Exit 1 when no call is running.
    """
    from bridgehost.gateway_api import GatewayApi, GatewayApiError

    loaded = load(ctx, as_json=as_json)

    async def _go() -> tuple[dict[str, Any], dict[str, Any] | None]:
        try:
            async with GatewayApi(loaded.config, loaded.secrets) as api:
                answer = await api.hangup(reason, call_id)
        except GatewayApiError as exc:
            if exc.code == "no_call":
                what = (
                    f"call {call_id} is not the live call"
                    if call_id
                    else "no call is running, so there is nothing to hang up"
                )
                raise CtlError(
                    f"{what} ('bridgectl call status' shows the live and recent calls)",
                    code="no_call",
                    as_json=as_json,
                ) from exc
            raise gateway_error(exc, as_json=as_json) from exc
        if no_wait:
            return answer, None
        return answer, await _wait_ended(loaded, str(answer.get("call_id")), as_json=as_json)

    answer, ended = run(_go())
    ended_reason = (ended or {}).get("end_reason") or answer.get("reason")
    if as_json:
        emit_json(
            {
                "ok": True,
                "call_id": answer.get("call_id"),
                "reason": ended_reason,
                "ended": ended is not None,
            }
        )
        return
    if ended is not None:
        click.echo(f"Call {answer.get('call_id')} ended ({ended_reason}).")
    else:
        click.echo(f"Hang-up requested for call {answer.get('call_id')} ({ended_reason}).")
        if not no_wait:
            note("the call is still ending; check 'bridgectl call status'")
