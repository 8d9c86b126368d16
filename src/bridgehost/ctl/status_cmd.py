"""``bridgectl status`` and ``bridgectl capabilities``: what is running, and is ``/call`` ready."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from bridgehost._cli_common import bridgectl_options
from bridgehost.ctl import _describe as describe
from bridgehost.ctl._context import load, read_bridge_view
from bridgehost.ctl._output import (
    EXIT_NOT_READY,
    EXIT_UNREACHABLE,
    CtlError,
    echo_pairs,
    emit_json,
    gateway_error,
    run,
)
from bridgehost.readiness import cooldown_text, spend_text, tunnel_cooldown

if TYPE_CHECKING:
    from bridgehost.config import LoadedConfig
    from bridgehost.readiness import Readiness


async def collect(
    loaded: LoadedConfig, *, as_json: bool
) -> tuple[Readiness, dict[str, Any] | None, CtlError | None, dict[str, Any]]:
    """Readiness, the gateway's status (or the error asking it) and the bridge's view."""
    from bridgehost.readiness import gather

    views: list[dict[str, Any]] = []

    def bridge(status: Mapping[str, Any] | None) -> dict[str, Any]:
        views.append(read_bridge_view(loaded, status, as_json=as_json))
        return views[-1]

    found = await gather(loaded.config, loaded.secrets, bridge=bridge)
    error = None
    if found.gateway_error is not None:
        error = gateway_error(found.gateway_error, as_json=as_json)
    return found.readiness, found.gateway, error, views[-1]


def _check_json(readiness: Readiness) -> dict[str, Any] | None:
    failed = readiness.first_failure
    if failed is None:
        return None
    return {"name": failed.name, "ok": failed.ok, "detail": failed.detail, "fix": failed.fix}


def _readiness_line(readiness: Readiness) -> str:
    failed = readiness.first_failure
    if failed is None:
        return "yes — send /call in the bot's chat"
    return f"no — {failed.name}: {failed.detail} (see 'bridgectl capabilities')"


@click.command()
@bridgectl_options
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Gateway, call surface, bridge connection, current call, owner, bound thread, budget.

    Exit 0 when the gateway answered (even if /call is not ready), 3 when it is not answering.
    """
    from bridgehost.gateway_api import local_base_url

    loaded = load(ctx, as_json=as_json)
    readiness, data, error, view = run(collect(loaded, as_json=as_json))
    base = local_base_url(loaded.config)
    unreachable = error is not None and error.exit_code == EXIT_UNREACHABLE
    # reachable: true (answered), false (not answering), null (not asked: secret missing...)
    gateway: dict[str, Any] = {
        "reachable": True if data is not None else (False if unreachable else None),
        "url": base,
    }
    if error is not None:
        gateway["error"] = {"code": error.code, "message": error.message}
    else:
        gateway["backend"] = (data or {}).get("backend")
    if as_json:
        emit_json(
            {
                "gateway": gateway,
                "surface": (data or {}).get("surface"),
                "tunnel": (data or {}).get("tunnel"),
                "bridge": view,
                "call": (data or {}).get("call"),
                "budget": (data or {}).get("budget"),
                "ready": readiness.ready,
                "first_failure": _check_json(readiness),
            }
        )
    else:
        pairs: list[tuple[str, str]] = []
        if data is None and error is not None and not unreachable:
            pairs.append(("Gateway", f"{base} could not be asked ({error.code}; see below)"))
        elif data is None:
            pairs.append(("Gateway", f"not answering at {base}"))
        else:
            backend = data.get("backend") or {}
            pairs += [
                (
                    "Gateway",
                    f"reachable at {base} (backend {backend.get('name')}, "
                    f"{backend.get('transport')})",
                ),
                ("Call surface", describe.surface_line(data.get("surface") or {})),
                ("Public origin", describe.tunnel_line(data.get("tunnel") or {})),
                ("Bridge", describe.bridge_line(view)),
                ("Current call", describe.call_line(data.get("call"))),
            ]
        pairs += [
            ("Owner", describe.owner_line(view)),
            ("Bound thread", describe.thread_line(view)),
        ]
        if data is not None:
            pairs.append(("Budget", describe.budget_line(data.get("budget") or {})))
            pairs.append(("Spend", spend_text(data.get("budget") or {}) + " (estimate)"))
            if (cooldown := tunnel_cooldown(data)) is not None:
                pairs.append(("Tunnel", cooldown_text(cooldown)))
        pairs.append(("Ready for /call", _readiness_line(readiness)))
        echo_pairs(pairs)
    if error is not None:
        error.as_json = False  # the JSON object above already went out
        raise error


def _mark(ok: bool) -> str:
    return "[ok]  " if ok else "[FAIL]"


@click.command()
@bridgectl_options
@click.pass_context
def capabilities(ctx: click.Context, as_json: bool) -> None:
    """Every prerequisite of /call, with what is missing and how to fix it.

    Secrets show only as present (with their source) or missing. Exit 0 when /call is ready,
    1 when it is not (including when the gateway is down), 2 when the config is invalid.
    """
    loaded = load(ctx, as_json=as_json)
    readiness, _data, _error, _view = run(collect(loaded, as_json=as_json))
    failed = readiness.first_failure
    if as_json:
        emit_json(readiness.to_json())
    else:
        headline = (
            "Ready: /call will offer the Mini App."
            if failed is None
            else f"Not ready: {failed.name} — {failed.detail}"
        )
        click.echo(headline)
        width = max(len(c.name) for c in [*readiness.checks, *readiness.informational]) + 1
        for check in readiness.checks:
            click.echo(f"  {_mark(check.ok)} {check.name + ':':<{width}} {check.detail}")
            if not check.ok and check.fix:
                click.echo(f"         {'':<{width}} fix: {check.fix}")
        for check in readiness.informational:
            click.echo(f"  [info] {check.name + ':':<{width}} {check.detail}")
    if failed is not None:
        fix = f" Fix: {failed.fix}" if failed.fix else ""
        raise CtlError(
            f"not ready: {failed.name}: {failed.detail.rstrip('.')}.{fix}",
            exit_code=EXIT_NOT_READY,
            code="not_ready",
        )
