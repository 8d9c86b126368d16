"""A client for the gateway's local control API, used by ``bridgectl`` and the bridge daemon.

It talks to ``http://{gateway_host}:{gateway_port}`` over loopback with the control secret as a
Bearer token. Every failure becomes a :class:`GatewayApiError` whose message says what to do
(start the gateway, set the secret), never a stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
from pydantic import ValidationError

from bridgehost.config import BridgeConfig, Secrets
from bridgehost.protocol.control import (
    DEFAULT_ARM_SOURCE,
    DEFAULT_DISARM_REASON,
    ArmProgress,
    ArmRequest,
    ArmResult,
    Body,
    DisarmRequest,
    DisarmResponse,
    ErrorResponse,
    HangupRequest,
    HangupResponse,
)
from bridgehost.protocol.end_reasons import EndReason

DEFAULT_TIMEOUT_S = 10.0
ARM_KEEPALIVE_S = 4.0
"""While arming, the gateway writes a progress line at least this often (seconds)."""
ARM_READ_TIMEOUT_S = 3 * ARM_KEEPALIVE_S
"""The shortest read timeout :meth:`GatewayApi.arm` uses: three keep-alives may go missing."""


class GatewayApiError(RuntimeError):
    """The gateway could not be asked, or said no; ``code`` is its machine code if it answered."""

    def __init__(self, message: str, *, code: str = "unreachable", status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


def local_base_url(config: BridgeConfig) -> str:
    """The gateway's local origin (wildcard bind addresses map to loopback)."""
    rt = config.realtime
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
        rt.gateway_host, rt.gateway_host
    )
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{rt.gateway_port}"


class GatewayApi:
    """``async with GatewayApi(config, secrets) as api: await api.status()``."""

    def __init__(
        self, config: BridgeConfig, secrets: Secrets, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.base = local_base_url(config)
        self._secret = secrets.realtime_control_secret
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GatewayApi:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self) -> dict[str, str]:
        if self._secret is None:
            raise GatewayApiError(
                "REALTIME_CONTROL_SECRET is not set, so the gateway's control API cannot be "
                "used. Put the same secret in the environment, .env or credentials of both "
                "bridge-gateway and this command.",
                code="no_secret",
            )
        return {"Authorization": f"Bearer {self._secret.get_secret_value()}"}

    async def _request(self, method: str, path: str, body: Body | None = None) -> Any:
        assert self._session is not None, "use 'async with GatewayApi(...)'"
        payload = body.model_dump() if body is not None else None
        try:
            async with self._session.request(
                method, self.base + path, json=payload, headers=self._headers()
            ) as resp:
                data = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self._unreachable(exc) from exc
        if status >= 400:
            raise _answered_error(data, status)
        return data

    def _unreachable(self, exc: BaseException) -> GatewayApiError:
        reason = str(exc) or type(exc).__name__
        return GatewayApiError(
            f"The gateway at {self.base} is not answering ({reason}). Start it with "
            "'systemctl start bridge-gateway' (or 'bridgehost gateway') and try again."
        )

    async def healthy(self) -> bool:
        """``GET /healthz`` answered ``{"ok": true}``."""
        assert self._session is not None
        try:
            async with self._session.get(self.base + "/healthz") as resp:
                return resp.status == 200 and (await resp.json()).get("ok") is True
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False

    async def status(self) -> dict[str, Any]:
        """``GET /control/status``: surface, tunnel, bridges, current and recent calls, budget."""
        data = await self._request("GET", "/control/status")
        if not isinstance(data, dict):
            raise GatewayApiError(
                "The gateway's status answer is not a JSON object.", code="bad_answer"
            )
        return data

    async def disarm(self, reason: str = DEFAULT_DISARM_REASON) -> dict[str, Any]:
        """``POST /control/disarm``: ``{"armed": false, "reason"}``."""
        data = await self._request("POST", "/control/disarm", DisarmRequest(reason=reason))
        return _answer(DisarmResponse, data)

    async def hangup(
        self, reason: str = EndReason.OPERATOR_HANGUP, call_id: str | None = None
    ) -> dict[str, Any]:
        """``POST /control/hangup``: ``{"ok": true, "call_id", "reason"}``."""
        body = HangupRequest(reason=reason, call_id=call_id)
        return _answer(HangupResponse, await self._request("POST", "/control/hangup", body))

    async def arm(
        self, progress: Callable[[str], None] | None = None, source: str = DEFAULT_ARM_SOURCE
    ) -> dict[str, Any]:
        """``POST /control/arm {source}``, reporting progress lines; returns the result object.

        The gateway says something at least every :data:`ARM_KEEPALIVE_S` while it waits for the
        tunnel or the public origin, so a read timeout of :data:`ARM_READ_TIMEOUT_S` (or the
        client's own, if longer) holds however long a healthy arm takes.

        :param source: who arms (``armed_by`` in the gateway's status): ``bridgectl``,
            ``telegram``…
        """
        assert self._session is not None, "use 'async with GatewayApi(...)'"
        read_s = max(self._timeout.sock_read or 0.0, ARM_READ_TIMEOUT_S)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeout.sock_connect, sock_read=read_s
        )
        try:
            async with self._session.post(
                self.base + "/control/arm",
                json=ArmRequest(source=source).model_dump(),
                headers=self._headers(),
                timeout=timeout,
            ) as resp:
                if resp.status >= 400:
                    raise _answered_error(await resp.json(content_type=None), resp.status)
                async for raw in resp.content:
                    line = json.loads(raw) if raw.strip() else {}
                    if "progress" in line and progress is not None:
                        progress(ArmProgress.model_validate(line).progress)
                    elif "result" in line:
                        return ArmResult.model_validate(line).result
                    elif "error" in line:
                        raise _answered_error(line, 503)
        except ValidationError as exc:
            raise _malformed("/control/arm", exc) from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self._unreachable(exc) from exc
        raise GatewayApiError("The gateway closed the arm request without a result.")


def _answered_error(data: Any, status: int) -> GatewayApiError:
    try:
        error = ErrorResponse.model_validate(data).error
    except ValidationError:
        return GatewayApiError(
            f"The gateway answered HTTP {status}.", code="http_error", status=status
        )
    return GatewayApiError(error.message, code=error.code, status=status)


def _answer(model: type[Body], data: Any) -> dict[str, Any]:
    """A control API answer checked against its model, as plain data."""
    try:
        return model.model_validate(data).model_dump()
    except ValidationError as exc:
        raise _malformed(model.__name__, exc) from None


def _malformed(what: str, exc: ValidationError) -> GatewayApiError:
    return GatewayApiError(
        f"The gateway's answer ({what}) is not what this bridgehost expects ({exc.error_count()} "
        "problems): run the same bridgehost version for bridge-gateway and this command.",
        code="bad_answer",
    )
