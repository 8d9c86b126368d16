"""The ``managed-quick-cloudflared`` tunnel itself (see :mod:`bridgehost.builtin.cloudflared`):
imported when the gateway builds the selected tunnel, not when the plugin registers."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from bridgehost.basics import utc_now
from bridgehost.builtin import _probe
from bridgehost.builtin.cloudflared._policy import (
    COOLDOWN_FILENAME,
    Clock,
    CooldownFile,
    CooldownTracker,
    RestartBudget,
)
from bridgehost.builtin.cloudflared._process import (
    TunnelChild,
    build_command,
    free_local_port,
    tunnel_target,
)
from bridgehost.builtin.cloudflared._ready import ProbeFn, StartFailure, bring_up, probe_once
from bridgehost.builtin.cloudflared._settings import (
    CONNECT_FIX,
    INSTALL_URL,
    NAME,
    STATIC_FIX,
    CloudflaredSettings,
    ProgressCallback,
    resolve_binary,
)
from bridgehost.providers import (
    Health,
    ProviderContext,
    ProviderStartError,
    UrlChangeCallback,
)
from bridgehost.systemd import child_environment

__all__ = ["ManagedQuickCloudflared"]


class ManagedQuickCloudflared:
    """A cloudflared quick tunnel owned by the gateway (implements ``providers.Tunnel``).

    :param context: the provider context (``realtime.tunnel_bin``, ``gateway_host``,
        ``gateway_port``, ``startup_timeout_ms``; settings from ``[plugins.<name>]``).
    :param probe: probes a public origin; default
        :func:`bridgehost.builtin._probe.probe_public_origin`. Tests map the public URL to the
        local gateway here.
    :param on_progress: hears each step of a start or restart, as a sentence.
    :param on_url_change: hears ``(new_url, reason)`` after an automatic restart and
        ``(None, reason)`` when the tunnel died for good; may be a coroutine function.
    :param clock: monotonic clock for cooldowns and the restart budget (tests).

    ``probe``, ``on_progress`` and ``on_url_change`` are plain attributes the gateway may set
    after the plugin host built the object.
    """

    def __init__(
        self,
        context: ProviderContext,
        *,
        probe: ProbeFn | None = None,
        on_progress: ProgressCallback | None = None,
        on_url_change: UrlChangeCallback | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        realtime = context.config.realtime
        settings = context.settings
        self.settings = (
            settings if isinstance(settings, CloudflaredSettings) else (CloudflaredSettings())
        )
        self.tunnel_bin: str = realtime.tunnel_bin
        self.target = tunnel_target(realtime.gateway_host, realtime.gateway_port)
        self.startup_timeout_s = realtime.startup_timeout_ms / 1000
        self.probe: ProbeFn = probe or _probe.probe_public_origin
        self.on_progress = on_progress
        self.on_url_change = on_url_change
        self._log = context.log.bind(tunnel_mode=NAME)
        self._cooldown = CooldownTracker(
            clock,
            normal_s=self.settings.cooldown_s,
            rate_limit_s=self.settings.rate_limit_cooldown_s,
            store=CooldownFile(Path(context.config.storage.root) / COOLDOWN_FILENAME),
        )
        self._restarts = RestartBudget(
            clock, limit=self.settings.max_restarts, window_s=self.settings.restart_window_s
        )
        self._lock = asyncio.Lock()
        self._child: TunnelChild | None = None
        self._public_url: str | None = None
        self._last: Health | None = None
        self._down: str | None = None
        self._stopping = False
        self._restarting = False
        self._watcher: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    # -- the Tunnel protocol -------------------------------------------------------------

    @property
    def public_url(self) -> str | None:
        """``https://<words>.trycloudflare.com`` while the tunnel is up, else None."""
        return self._public_url

    @property
    def pid(self) -> int | None:
        """The running cloudflared's process id, if any."""
        return self._child.pid if self._child is not None and self._child.running else None

    def cooldown_status(self) -> dict[str, Any]:
        """The running cooldown: ``cooldown_until`` (ISO 8601), ``cooldown_s`` (seconds left),
        ``cooldown_reason`` and ``rate_limited``; all None when starts are allowed."""
        return self._cooldown.status()

    async def start(self) -> None:
        """Start cloudflared and wait until the public origin reaches the gateway.

        Does nothing when already up. Raises :class:`ProviderStartError` (message and ``fix``)
        when the binary is missing, during a cooldown, or when the child fails to come up.
        """
        self._stopping = False
        async with self._lock:
            if self._public_url is not None and self.pid is not None:
                return
            if (cooldown := self._cooldown.active()) is not None:
                raise ProviderStartError(
                    self._cooldown.message(cooldown), fix=(f"wait until then, or {STATIC_FIX}")
                )
            await self._launch(resolve_binary(self.tunnel_bin))
            self._down = None

    async def stop(self) -> None:
        """Stop cloudflared (SIGTERM, SIGKILL after ``stop_timeout_s``) and wait for it."""
        self._stopping = True
        current = asyncio.current_task()
        tasks = [t for t in (self._watcher, self._refresher) if t and t is not current]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        child, self._child = self._child, None
        self._public_url = None
        self._down = None
        if child is not None:
            code = await child.terminate(self.settings.stop_timeout_s)
            self._log.info("tunnel.stopped", pid=child.pid, exit_code=code)

    async def health(self) -> Health:
        """The last probe of the public origin (cached; refreshed in the background).

        Never waits for the network: when the cached result is older than
        ``probe_interval_s`` a refresh is scheduled and the cached result returned.
        """
        if self._restarting and self._last is not None:
            return self._last
        if self.pid is None or self._public_url is None:
            if (cooldown := self._cooldown.active()) is not None:
                return Health(
                    ok=False,
                    detail=self._cooldown.message(cooldown),
                    fix=f"wait, or {STATIC_FIX}",
                    checked_at=utc_now(),
                )
            detail = self._down or "the managed quick tunnel is not running"
            last_at = self._last.checked_at if self._last else None
            return Health(
                ok=False,
                detail=detail,
                checked_at=last_at or utc_now(),
                fix="arm the call surface (bridgectl call arm) to start a new tunnel",
            )
        last = self._last
        stale = (
            last is None
            or last.checked_at is None
            or (utc_now() - last.checked_at >= timedelta(seconds=self.settings.probe_interval_s))
        )
        if stale and (self._refresher is None or self._refresher.done()):
            self._refresher = asyncio.create_task(self._refresh(self._public_url))
        return last or Health(ok=False, detail=f"probing {self._public_url}", checked_at=utc_now())

    # -- starting ------------------------------------------------------------------------

    async def _launch(self, binary: str) -> str:
        """Spawn a child and bring it up; on any failure it is stopped again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout_s
        metrics = f"127.0.0.1:{free_local_port()}"
        protocol = None if self.settings.protocol == "auto" else self.settings.protocol
        argv = build_command(binary, metrics=metrics, target=self.target, protocol=protocol)
        self._progress(f"starting cloudflared for {self.target}", argv=argv)
        try:
            child = await TunnelChild.spawn(argv, env=child_environment(), log=self._log)
        except OSError as exc:
            raise ProviderStartError(
                f"could not run cloudflared at {binary}: {exc}",
                fix=f"reinstall cloudflared ({INSTALL_URL})",
            ) from exc
        self._child = child
        try:
            url, self._last = await bring_up(
                child,
                metrics=metrics,
                deadline=deadline,
                probe=self.probe,
                wait_text=f"{self.startup_timeout_s:g} s (realtime.startup_timeout_ms)",
                progress=self._progress,
                connect_fix=CONNECT_FIX,
                probe_fix=f"check that the gateway answers on {self.target}/healthz; a new "
                "hostname can take a while to resolve, so try again in a minute",
            )
        except BaseException as exc:
            await child.terminate(self.settings.stop_timeout_s)
            if self._child is child:
                self._child = None
            if isinstance(exc, StartFailure) and self._stopping:
                raise ProviderStartError("the tunnel was stopped while it was starting") from None
            if isinstance(exc, StartFailure):
                self._fail(exc)
            raise
        self._public_url = url
        self._cooldown.clear()
        self._watcher = asyncio.create_task(self._watch(child), name=f"cloudflared-{child.pid}")
        return url

    def _fail(self, failure: StartFailure) -> NoReturn:
        """Start a cooldown for ``failure`` and raise it as a :class:`ProviderStartError`."""
        limited = failure.rate_limited
        cooldown = self._cooldown.begin(failure.reason, failure.detail, rate_limited=limited)
        length = self._cooldown.remaining_s(cooldown)
        self._log.warning(
            "tunnel.start_failed",
            reason=failure.reason,
            detail=failure.detail,
            rate_limited=limited,
            cooldown_s=length,
        )
        fix = failure.fix or (
            f"wait {length:.0f} s and arm again, or {STATIC_FIX}"
            if limited
            else f"see the cloudflared output in the message, arm again later, or {STATIC_FIX}"
        )
        raise ProviderStartError(f"{failure}. Not retrying for {length:.0f} s", fix=fix) from None

    # -- running -------------------------------------------------------------------------

    async def _watch(self, child: TunnelChild) -> None:
        """Wait for the child's exit; an unexpected one triggers restarts within the budget."""
        code = await child.wait_exit()
        if self._stopping or self._child is not child:
            return
        reason = f"cloudflared (pid {child.pid}) exited with code {code}"
        if summary := child.summary():
            reason += f" ({summary})"
        self._public_url = None
        self._last = Health(ok=False, detail=f"{reason}; restarting", checked_at=utc_now())
        self._log.warning("tunnel.exited", pid=child.pid, exit_code=code, output=summary)
        new_url, outcome = await self._restart(reason)
        if not self._stopping:
            await self._announce(new_url, outcome)

    async def _restart(self, reason: str) -> tuple[str | None, str]:
        """One restart attempt within the budget; ``(new_url | None, reason)``.

        A failed attempt is not retried here: it started a cooldown, and the gateway hears
        ``None`` with the reason (it disarms; arming again later calls :meth:`start`).
        """
        self._restarting = True
        try:
            async with self._lock:
                if self._stopping:
                    return None, "stopped"
                if (cooldown := self._cooldown.active()) is not None:
                    return self._give_up(f"{reason}; {self._cooldown.message(cooldown)}")
                if not self._restarts.take():
                    return self._give_up(f"{reason}; gave up after {self._restarts.describe()}")
                self._progress(
                    f"restarting cloudflared ({self._restarts.used} of "
                    f"{self._restarts.describe()}) after: {reason}"
                )
                try:
                    url = await self._launch(resolve_binary(self.tunnel_bin))
                except ProviderStartError as exc:
                    return self._give_up(f"{reason}; the restart failed: {exc}")
                self._down = None
                self._log.info("tunnel.restarted", url=url, reason=reason)
                return url, f"{reason}; restarted at {url}"
        finally:
            self._restarting = False

    def _give_up(self, reason: str) -> tuple[None, str]:
        self._down = reason
        self._last = Health(
            ok=False,
            detail=reason,
            checked_at=utc_now(),
            fix="arm the call surface again (bridgectl call arm) later, or " + STATIC_FIX,
        )
        self._log.error("tunnel.gave_up", reason=reason)
        return None, reason

    async def _announce(self, url: str | None, reason: str) -> None:
        callback = self.on_url_change
        if callback is None:
            return
        try:
            result = callback(url, reason)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self._log.exception("tunnel.on_url_change_failed", url=url)

    async def _refresh(self, url: str) -> None:
        health = await probe_once(self.probe, url, _probe.PROBE_TIMEOUT_S + 1)
        if self._public_url == url:
            if self._last is None or self._last.ok != health.ok:
                self._log.info("tunnel.probe", url=url, ok=health.ok, detail=health.detail)
            self._last = health

    def _progress(self, message: str, **fields: object) -> None:
        self._log.info("tunnel.progress", message=message, **fields)
        if self.on_progress is not None:
            try:
                self.on_progress(message)
            except Exception:
                self._log.exception("tunnel.on_progress_failed")
