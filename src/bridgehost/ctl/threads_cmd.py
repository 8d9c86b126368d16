"""``bridgectl threads`` and ``bridgectl bind``: which Codex thread calls hand off to."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

from bridgehost._cli_common import bridgectl_options
from bridgehost.ctl import _codex
from bridgehost.ctl._context import load, open_bridge_store, read_bridge_view
from bridgehost.ctl._output import (
    EXIT_USAGE,
    CtlError,
    emit_json,
    note,
    run,
)

if TYPE_CHECKING:
    from bridgehost.codex import ThreadSummary
    from bridgehost.config import LoadedConfig

_THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


@click.command()
@click.option(
    "--limit",
    type=click.IntRange(1, 200),
    default=20,
    show_default=True,
    help="How many threads to list, newest first.",
)
@bridgectl_options
@click.pass_context
def threads(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List Codex threads (newest first), marking the one calls are bound to."""
    loaded = load(ctx, as_json=as_json)
    found = run(_codex.list_threads(loaded, limit, as_json=as_json))
    bound = read_bridge_view(loaded, None, as_json=as_json).get("thread_id")
    if as_json:
        emit_json(
            {
                "bound_thread_id": bound,
                "threads": [{**_codex.thread_json(t), "bound": t.id == bound} for t in found],
            }
        )
        return
    if not found:
        click.echo(
            f"No Codex threads in {loaded.config.codex.home}. Start one in Codex, then "
            "run 'bridgectl bind --latest'."
        )
        return
    for item in found:
        mark = "*" if item.id == bound else " "
        updated = item.updated_at.strftime("%Y-%m-%d %H:%M")
        title = item.title if len(item.title) <= 60 else item.title[:59] + "…"
        click.echo(f"{mark} {item.id}  {updated}  {title}  ({item.cwd or '?'})")
    if bound is None:
        click.echo("Nothing bound yet: 'bridgectl bind THREAD_ID' or 'bridgectl bind --latest'.")
    elif bound not in {t.id for t in found}:
        click.echo(f"Bound to {bound} (not among the {len(found)} newest).")


async def _resolve(
    loaded: LoadedConfig, thread_id: str | None, latest: bool, *, as_json: bool
) -> tuple[ThreadSummary | None, str | None]:
    """The thread to bind and, when it could not be checked, why."""
    if latest:
        return await _codex.latest_thread(loaded, as_json=as_json), None
    assert thread_id is not None
    try:
        return await _codex.find_thread(loaded, thread_id, as_json=as_json), None
    except _codex.CodexUnavailable as exc:
        return None, exc.message


@click.command()
@click.argument("thread_id", required=False)
@click.option("--latest", is_flag=True, help="Bind the most recently updated Codex thread.")
@bridgectl_options
@click.pass_context
def bind(ctx: click.Context, thread_id: str | None, latest: bool, as_json: bool) -> None:
    """Bind calls to a Codex thread: handoffs from the next call go there.

    The thread is checked with Codex when Codex can be reached; when it cannot, THREAD_ID is
    bound anyway with a warning. --latest needs Codex.
    """
    if (thread_id is None) == (not latest):
        raise CtlError(
            "give a THREAD_ID or --latest (one of them); 'bridgectl threads' lists the threads",
            exit_code=EXIT_USAGE,
            code="usage",
            as_json=as_json,
        )
    if thread_id is not None and not _THREAD_ID.fullmatch(thread_id):
        raise CtlError(
            f"{thread_id!r} is not a Codex thread id; 'bridgectl threads' lists them",
            exit_code=EXIT_USAGE,
            code="usage",
            as_json=as_json,
        )
    loaded = load(ctx, as_json=as_json)
    info, unverified = run(_resolve(loaded, thread_id, latest, as_json=as_json))
    chosen = info.id if info is not None else str(thread_id)
    store = open_bridge_store(loaded, create=True, as_json=as_json)
    assert store is not None
    try:
        before = store.binding().thread_id
        binding = store.bind(chosen)
    finally:
        store.close()
    if as_json:
        emit_json(
            {
                **binding.to_json(),
                "previous_thread_id": before,
                "verified": info is not None,
                "thread": _codex.thread_json(info) if info is not None else None,
            }
        )
    else:
        label = f" ({info.title})" if info is not None else ""
        click.echo(
            f"Bound calls to Codex thread {chosen}{label}. Handoffs from the next call go there."
        )
        if before and before != chosen:
            click.echo(f"Previously bound: {before}.")
    if unverified:
        note(f"could not check the thread with Codex ({unverified}); bound it anyway")
