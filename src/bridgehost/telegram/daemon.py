"""``bridgehost telegram``: the bridge daemon (unit ``bridge-telegram``), a ``Type=notify`` service.

Start-up: check the config and secrets (:func:`build_bridge`; a problem stops here with its fix),
open ``bridge.db``, resume hand-overs a crash interrupted, start the control channel task (when
``realtime.enabled``), reach Telegram (``getMe``; network errors are retried, a rejected token
stops the daemon), set the command menu, start long polling, then ``READY=1``. While running:
``STATUS=`` lines ("connected to gateway; thread T bound", "waiting for gateway (…)"),
``WATCHDOG=1`` from the event loop while polling and the channel task are alive. SIGTERM/SIGINT:
``STOPPING=1``, polling stops, hand-overs in flight get a few seconds, everything closes.

python-telegram-bot runs inside our event loop (``async with``-style initialize/start, never
``run_polling``), pointed at ``[telegram] api_base_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder

from bridgehost.basics import iso, utc_now
from bridgehost.builtin.codex_sink import CodexContext, CodexThreadContext
from bridgehost.config import KNOWN_SECRETS, LoadedConfig, requirements_problems
from bridgehost.invites.client import socket_path
from bridgehost.logging import register_secret
from bridgehost.plugins import PluginHost
from bridgehost.state import StateError
from bridgehost.state.bridge_store import BridgeStore
from bridgehost.systemd import Notifier, run_watchdog, stop_on_signals, watchdog_interval
from bridgehost.telegram import commands
from bridgehost.telegram.access import Access
from bridgehost.telegram.control_channel import Backoff, ControlChannel
from bridgehost.telegram.handover import CallTracker, HandoffPipeline
from bridgehost.telegram.invite_socket import InviteSocket
from bridgehost.telegram.invites import InviteDesk
from bridgehost.telegram.invites import register as register_invite_buttons
from bridgehost.telegram.prepare import prepare_call
from bridgehost.telegram.runtime import BridgeRuntime
from bridgehost.telegram.sending import deliver, on_error

log = structlog.get_logger("bridgehost.telegram")

STATUS_EVERY_S = 2.0
STOP_STEP_TIMEOUT_S = 10.0
HANDOVER_DRAIN_S = 5.0
KEEP_UPDATE_IDS = timedelta(days=7)


class BridgeStartError(RuntimeError):
    """The daemon cannot start; the message lists every reason and its fix."""


HandoffFactory = Callable[[BridgeStore], HandoffPipeline]
"""Builds the pipeline on the daemon's own store, e.g. ``bridgehost.handoff.Pipeline``."""


def _default_pipeline(loaded: LoadedConfig, host: PluginHost) -> HandoffFactory:
    """The real handoff pipeline: artifact, summary, outbox, every sink in handoff.sinks."""
    from bridgehost.handoff import Pipeline

    return lambda store: Pipeline(loaded.config, loaded.secrets, store, plugins=host)


def build_bridge(
    loaded: LoadedConfig,
    *,
    handoff: HandoffPipeline | HandoffFactory | None = None,
    codex: CodexContext | None = None,
    host: PluginHost | None = None,
) -> BridgeRuntime:
    """Check requirements and assemble the daemon's parts (nothing started, no network).

    :param handoff: the pipeline ended calls go to, or a factory that builds it on the
        daemon's store; default the real :class:`bridgehost.handoff.Pipeline`.
    :param codex: a Codex reader in place of the builtin ``codex`` plugin's call context
        (which reads the bound thread through ``codex app-server``); tests, embedding.
    :param host: the plugin host; default the installed plugins minus ``plugins.disabled``.
    """
    config = loaded.config
    host = host or PluginHost.for_config(config)
    if codex is not None:
        host.replace_call_context("codex", CodexThreadContext(codex))
    needs = host.secret_needs(config, "telegram")
    problems = [str(p) for p in requirements_problems(loaded, "telegram", needs)]
    problems += host.conflicts()
    if problems:
        raise BridgeStartError("bridge-telegram cannot start:\n- " + "\n- ".join(problems))
    for name in {*KNOWN_SECRETS, *(name for name, _ in needs)}:
        if (value := loaded.secrets.get(name)) is not None:
            register_secret(value.get_secret_value())  # never printed, even in a traceback
    try:
        store = BridgeStore.open(config.storage.root)
    except StateError as exc:
        raise BridgeStartError(f"bridge-telegram cannot open its state: {exc}") from exc
    if handoff is None:
        handoff = _default_pipeline(loaded, host)
    if not isinstance(handoff, HandoffPipeline):
        try:
            handoff = handoff(store)
        except Exception as exc:
            store.close()
            raise BridgeStartError(
                f"bridge-telegram cannot build its handoff pipeline: {exc}"
            ) from exc
    tracker = CallTracker(store, handoff)
    assert config.telegram.authorized_chat_id is not None  # checked by requirements_problems
    rt = BridgeRuntime(
        loaded=loaded,
        store=store,
        host=host,
        access=Access(config.telegram.authorized_chat_id),
        handoff=handoff,
        tracker=tracker,
    )
    secret = loaded.secrets.realtime_control_secret
    if config.realtime.enabled and secret is not None:

        async def prepare(call: dict[str, Any]) -> dict[str, Any]:
            """Answer one ``call.prepare`` with this runtime."""
            return await prepare_call(rt, call)

        rt.channel = ControlChannel(
            config.realtime.effective_control_url,
            secret.get_secret_value(),
            config.realtime.bridge_id,
            tracker=tracker,
            prepare=prepare,
            status=rt.status,
        )
    return rt


def build_application(rt: BridgeRuntime) -> Application[Any, Any, Any, Any, Any, Any]:
    """The python-telegram-bot application, pointed at ``[telegram] api_base_url``."""
    token = rt.secrets.telegram_bot_token
    assert token is not None  # checked by requirements_problems
    root = rt.config.telegram.api_base_url
    application = (
        ApplicationBuilder()
        .token(token.get_secret_value())
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .get_updates_read_timeout(rt.config.telegram.poll_timeout_s + 10.0)
        .build()
    )
    from bridgehost.codex.turns import TurnRunner
    from bridgehost.telegram.conversation import Conversation

    conversation = Conversation(rt, TurnRunner.for_config(rt.config.codex), application.bot)
    application.bot_data["conversation"] = conversation
    if rt.channel is not None:
        from bridgehost.telegram.call_delegations import CallDelegator

        rt.channel.on_delegate = CallDelegator(
            conversation.runner,
            thread_of=conversation.thread_id,
            send=rt.channel.send,
            post=conversation.post_markdown,
            sandbox=rt.config.codex.call_sandbox,
            approve=conversation.approvals.ask,
        ).on_frame
    for handler in conversation.handlers():
        application.add_handler(handler)
    commands.register(application, rt)
    rt.invites = InviteDesk(rt, application.bot)
    register_invite_buttons(application, rt.invites)
    application.add_error_handler(on_error)
    return application


async def _until_done(
    what: str, step: Callable[[], Awaitable[Any]], stop: asyncio.Event, notifier: Notifier
) -> bool:
    """Run ``step`` until it succeeds (True) or ``stop`` is set (False); a rejected bot token
    is fatal, any other Telegram error is retried with backoff."""
    backoff = Backoff(1.0, 30.0)
    while not stop.is_set():
        try:
            await step()
            return True
        except InvalidToken as exc:
            raise BridgeStartError(
                "Telegram rejected TELEGRAM_BOT_TOKEN. Copy the token from @BotFather into "
                "the bridge's secrets (environment, .env or credentials) and restart."
            ) from exc
        except TelegramError as exc:
            notifier.status(f"waiting for Telegram ({what}: {exc})")
            log.warning("telegram not reachable yet; retrying", step=what, error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff.next())
    return False


async def _status_loop(rt: BridgeRuntime, notifier: Notifier) -> None:
    last = ""
    while True:
        line = rt.status_line()
        if line != last:
            notifier.status(line)
            log.info("status", status=line)
            last = line
        await asyncio.sleep(STATUS_EVERY_S)


async def _lifecycle(handoff: HandoffPipeline, name: str) -> None:
    """Call the pipeline's optional ``start``/``stop``; a failing ``stop`` is only logged."""
    method = getattr(handoff, name, None)
    if method is None:
        return
    if name == "start":
        await method()
        return
    try:
        await asyncio.wait_for(method(), STOP_STEP_TIMEOUT_S * 2)
    except Exception as exc:
        log.warning("handoff pipeline did not stop cleanly", error=str(exc))


def _polling_error(error: TelegramError) -> None:
    log.warning("telegram polling failed; python-telegram-bot retries", error=str(error))


async def _start(
    rt: BridgeRuntime, application: Any, stop: asyncio.Event, notifier: Notifier
) -> bool:
    """Reach Telegram, set the menu, start polling; False if stopped first."""
    if not await _until_done("getMe", application.initialize, stop, notifier):
        return False
    await deliver("setMyCommands", lambda: application.bot.set_my_commands(commands.COMMANDS))
    await commands.confirm_handled_updates(rt, application.bot)
    await application.start()
    return await _until_done(
        "polling",
        lambda: application.updater.start_polling(
            timeout=rt.config.telegram.poll_timeout_s,
            allowed_updates=["message", "callback_query"],
            error_callback=_polling_error,
        ),
        stop,
        notifier,
    )


async def _stop_telegram(application: Any) -> None:
    steps = [
        (
            "updater",
            lambda: application.updater.stop() if application.updater.running else asyncio.sleep(0),
        ),
        ("application", lambda: application.stop() if application.running else asyncio.sleep(0)),
        ("shutdown", application.shutdown),
    ]
    for name, step in steps:
        try:
            await asyncio.wait_for(step(), STOP_STEP_TIMEOUT_S)
        except Exception as exc:  # stopping must always get to the end
            log.warning("telegram shutdown step failed", step=name, error=str(exc))


async def run_bridge(
    rt: BridgeRuntime,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[BridgeRuntime], None] | None = None,
) -> None:
    """Run an assembled bridge until ``stop`` is set (or SIGTERM/SIGINT arrives)."""
    notifier = Notifier()
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    notifier.status("starting: reaching Telegram")
    application = build_application(rt)
    tasks: list[asyncio.Task[None]] = []
    invite_socket = InviteSocket(rt.invites, socket_path(rt.config))
    try:
        rt.store.prune_processed_updates(iso(utc_now() - KEEP_UPDATE_IDS) or "")
        await _lifecycle(rt.handoff, "start")
        rt.tracker.recover()
        if rt.channel is not None:
            tasks.append(asyncio.create_task(rt.channel.run(), name="control-channel"))
        if not await _start(rt, application, stop, notifier):
            return
        rt.invites.resume()
        await invite_socket.start()
        tasks.append(asyncio.create_task(_status_loop(rt, notifier), name="status"))
        conversation = application.bot_data.get("conversation")
        if conversation is not None:
            tasks.append(asyncio.create_task(conversation.run(), name="conversation"))
        interval = watchdog_interval()
        if interval:
            alive = list(tasks)
            tasks.append(
                asyncio.create_task(
                    run_watchdog(
                        notifier,
                        interval,
                        lambda: (
                            bool(application.updater and application.updater.running)
                            and not any(t.done() for t in alive)
                        ),
                    )
                )
            )
        notifier.ready(rt.status_line())
        log.info(
            "bridge ready",
            chat_id=rt.chat_id,
            realtime=rt.config.realtime.enabled,
            control_url=rt.channel.url if rt.channel else None,
        )
        if on_ready:
            on_ready(rt)
        await stop.wait()
    finally:
        notifier.stopping("stopping: closing Telegram polling and the control channel")
        log.info("bridge stopping")
        await invite_socket.close()
        await _stop_telegram(application)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if rt.channel is not None:
            await rt.channel.close()
        await rt.invites.close()
        await rt.tracker.drain(HANDOVER_DRAIN_S)
        await _lifecycle(rt.handoff, "stop")
        if (conversation := application.bot_data.get("conversation")) is not None:
            with contextlib.suppress(Exception):
                await conversation.runner.close()
        rt.store.close()
        notifier.close()


async def serve_bridge(
    loaded: LoadedConfig,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[BridgeRuntime], None] | None = None,
    handoff: HandoffPipeline | HandoffFactory | None = None,
    codex: CodexContext | None = None,
) -> None:
    """Build the bridge from ``loaded`` (see :func:`build_bridge`) and run it until stopped.

    :param handoff: where ended calls go, or a factory taking the daemon's ``BridgeStore``
        (default: the real :class:`bridgehost.handoff.Pipeline`).
    :param codex: a Codex reader in place of the builtin ``codex`` plugin's (tests).
    :raises BridgeStartError: a requirement is missing or Telegram rejects the token.
    """
    rt = build_bridge(loaded, handoff=handoff, codex=codex)
    await run_bridge(rt, stop=stop, on_ready=on_ready)


__all__ = ["BridgeStartError", "HandoffFactory", "build_bridge", "run_bridge", "serve_bridge"]
