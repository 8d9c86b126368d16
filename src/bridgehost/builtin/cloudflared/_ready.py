"""Waiting for a new quick tunnel to work: cloudflared's metrics ``/ready``, then the public probe.

Both waits are bounded by a deadline on the event loop's clock. The public probe is a callable
(``ProbeFn``) so that tests, which cannot resolve ``*.trycloudflare.com``, can map the public URL
to the local gateway; in production it is :func:`bridgehost.builtin._probe.probe_public_origin`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import aiohttp

from bridgehost.basics import utc_now
from bridgehost.builtin.cloudflared._process import TunnelChild
from bridgehost.providers import Health

ProbeFn = Callable[[str], Awaitable[Health]]
"""Probe a public origin (``https://host``): does ``/healthz`` reach the gateway through it?"""

READY_POLL_S = 0.2
PROBE_BACKOFF_S = (0.25, 0.5, 1.0, 2.0)  # then 2 s between attempts


async def wait_until_ready(metrics: str, child: TunnelChild, deadline: float) -> tuple[bool, str]:
    """Poll ``http://{metrics}/ready`` until it says 200 (an edge connection is up).

    Returns ``(True, detail)`` once ready, ``(False, last answer)`` when the child exits or the
    deadline passes.
    """
    loop = asyncio.get_running_loop()
    url = f"http://{metrics}/ready"
    last = "no answer yet"
    async with aiohttp.ClientSession() as session:
        while child.running:
            remaining = deadline - loop.time()
            try:
                timeout = aiohttp.ClientTimeout(total=max(min(1.0, remaining), 0.05))
                async with session.get(url, timeout=timeout) as resp:
                    if resp.status == 200:
                        return True, "ready"
                    last = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}".rstrip(": ")
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False, last
            await asyncio.sleep(min(READY_POLL_S, remaining))
    return False, "cloudflared exited"


def stamped(health: Health) -> Health:
    """``health`` with ``checked_at`` filled in when a probe left it empty."""
    if health.checked_at is not None:
        return health
    return dataclasses.replace(health, checked_at=utc_now())


async def probe_once(probe: ProbeFn, url: str, timeout_s: float) -> Health:
    """Run ``probe(url)`` once, bounded by ``timeout_s``; exceptions become a failed Health."""
    try:
        return stamped(await asyncio.wait_for(probe(url), max(timeout_s, 0.05)))
    except TimeoutError:
        detail = f"the probe of {url} did not finish within {timeout_s:.1f} s"
    except Exception as exc:  # a broken probe must not kill the tunnel
        detail = f"the probe of {url} failed: {type(exc).__name__}: {exc}"
    return Health(ok=False, detail=detail, checked_at=utc_now())


async def probe_until_up(
    probe: ProbeFn,
    url: str,
    *,
    deadline: float,
    on_attempt: Callable[[int, Health], None],
    alive: Callable[[], bool] = lambda: True,
) -> Health:
    """Probe ``url`` with backoff until it answers, the deadline passes or ``alive()`` turns
    false; returns the last result.

    A fresh ``trycloudflare.com`` hostname often fails DNS for a while ("it may take some time
    to be reachable"), so failures are expected at first; ``on_attempt`` hears about each one.
    """
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        health = await probe_once(probe, url, max(deadline - loop.time(), 0.5))
        attempt += 1
        if health.ok:
            return health
        on_attempt(attempt, health)
        remaining = deadline - loop.time()
        if remaining <= 0 or not alive():
            return health
        delay = PROBE_BACKOFF_S[min(attempt - 1, len(PROBE_BACKOFF_S) - 1)]
        await asyncio.sleep(min(delay, remaining))


class StartFailure(Exception):
    """Why a new child did not come up: ``reason`` (short), ``detail`` (its output or the probe),
    whether Cloudflare rate-limited us, and an optional specific ``fix``."""

    def __init__(
        self, reason: str, detail: str, *, rate_limited: bool = False, fix: str | None = None
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.rate_limited = rate_limited
        self.fix = fix


async def bring_up(
    child: TunnelChild,
    *,
    metrics: str,
    deadline: float,
    wait_text: str,
    probe: ProbeFn,
    progress: Callable[..., None],
    probe_fix: str,
    connect_fix: str,
) -> tuple[str, Health]:
    """URL from the log, then metrics ``/ready``, then the public probe; all before ``deadline``.

    Returns the public URL and the successful probe; raises :class:`StartFailure` otherwise.
    """
    loop = asyncio.get_running_loop()
    url = await child.wait_url(deadline - loop.time())
    code = child.proc.returncode
    if url is None and code is not None and child.rate_limited:
        raise StartFailure(
            "Cloudflare rate-limited new quick tunnels (HTTP 429, error 1015)",
            child.summary(),
            rate_limited=True,
        )
    if url is None and code is not None:
        raise StartFailure(
            f"cloudflared exited with code {code} before printing a public URL", child.summary()
        )
    if url is None:
        raise StartFailure(f"cloudflared printed no public URL within {wait_text}", child.summary())
    progress(f"cloudflared issued {url}; waiting for its edge connection", url=url)
    ready, answer = await wait_until_ready(metrics, child, deadline)
    if not ready and not child.running:
        raise StartFailure(
            f"cloudflared exited with code {child.proc.returncode} before connecting to Cloudflare",
            child.summary(),
        )
    if not ready:
        raise StartFailure(
            f"cloudflared printed {url} but did not connect to Cloudflare within "
            f"{wait_text} (metrics /ready: {answer})",
            child.summary(),
            fix=connect_fix,
        )
    progress(f"connected; waiting for {url}/healthz to reach the gateway", url=url)

    def on_attempt(attempt: int, health: Health) -> None:
        progress(
            f"{url} not reachable yet (attempt {attempt}): {health.detail}",
            url=url,
            attempt=attempt,
        )

    health = await probe_until_up(
        probe, url, deadline=deadline, on_attempt=on_attempt, alive=lambda: child.running
    )
    if not child.running:
        raise StartFailure(
            f"cloudflared exited with code {child.proc.returncode} while {url} was being probed",
            child.summary(),
        )
    if not health.ok:
        raise StartFailure(
            f"{url} did not reach the gateway within {wait_text}", health.detail, fix=probe_fix
        )
    progress(f"public origin {url} reaches the gateway", url=url, pid=child.pid)
    return url, health
