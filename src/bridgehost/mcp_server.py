"""``bridgehost mcp``: an MCP server on stdio (official ``mcp`` SDK) that lets the Codex agent
reach the person in Telegram.

Codex starts it as a child process (``bridgectl mcp install`` registers it). Each tool is one
request to bridge-telegram's local invite socket (:mod:`bridgehost.invites.client`) with origin
``agent``; the bridge applies the rules and sends the message, so every tool result begins with
what happened: ``sent``, ``accepted``, ``declined``, ``expired``, ``answered``, ``no_answer``,
``quiet_hours``, ``rate_limited``, ``budget_spent``, ``not_ready`` or ``failed``. Nothing but
MCP goes to stdout; logs go to stderr.
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server import MCPServer
from pydantic import Field, ValidationError

from bridgehost import __version__
from bridgehost.config import LoadedConfig
from bridgehost.invites.client import InviteClient, InviteClientError
from bridgehost.protocol.invites import (
    MAX_OPTION,
    MAX_OPTIONS,
    AskRequest,
    InviteRequest,
    MessageRequest,
    Outcome,
)

SERVER_NAME = "bridgehost"

INSTRUCTIONS = """\
These tools reach the person who runs you, in their Telegram chat. Use them sparingly: for a \
decision only they can make, or to report that a long task finished or failed. Every result \
starts with what happened (sent, declined, answered, no_answer, quiet_hours, rate_limited, \
budget_spent, not_ready, failed) followed by a sentence; respect refusals and do not retry \
them in a loop."""

REQUEST_CALL = """\
Invite the person to a live voice call with you, about a decision or a result that is easier \
to talk through than to type. They get a Telegram message with your reason and a button that \
opens the call; when they start it, your reason is the first thing in the call's context. \
Waits briefly for their answer. Results: "accepted" (the call started), "declined" (they \
tapped Not now: do not ask again soon), "sent" (the invite is open until it expires), or a \
refusal: "quiet_hours", "rate_limited" (at most a few invites an hour), "budget_spent" (no call \
time left today), "not_ready" or "failed". A newer invite replaces an older open one."""

SEND_MESSAGE = """\
Post a short text message to the person's Telegram chat, e.g. "The migration finished: 42 \
tables, no errors." It does not wait for a reply. Results: "sent", or a refusal \
("quiet_hours", "rate_limited", "failed")."""

ASK_USER = """\
Ask the person a multiple-choice question in Telegram and wait for their tap, e.g. question \
"Deploy to production now?" with options ["Yes", "Not yet"]. Returns "answered: <choice>" \
with the option they chose, "no_answer" if nobody tapped in time (then decide yourself or \
carry on without it), or a refusal ("quiet_hours", "rate_limited", "failed")."""


def result_text(outcome: Outcome) -> str:
    """The tool result: ``<outcome>: <detail>`` (with the choice, the expiry when known)."""
    if outcome.choice is not None:
        return f"{outcome.outcome.value}: {outcome.choice}"
    text = f"{outcome.outcome.value}: {outcome.detail}"
    if outcome.expires_at and outcome.outcome.value == "sent":
        text += f" (expires_at {outcome.expires_at})"
    return text


def build_server(loaded: LoadedConfig) -> MCPServer:
    """The MCP server with its three tools, talking to the bridge of ``loaded``."""
    config = loaded.config
    server: MCPServer = MCPServer(
        SERVER_NAME, instructions=INSTRUCTIONS, version=__version__, log_level="WARNING"
    )

    async def ask_bridge(kind: str, request: InviteRequest | MessageRequest | AskRequest) -> str:
        try:
            async with InviteClient(config) as bridge:
                if isinstance(request, InviteRequest):
                    outcome = await bridge.invite(request)
                elif isinstance(request, MessageRequest):
                    outcome = await bridge.message(request)
                else:
                    outcome = await bridge.ask(request)
        except InviteClientError as exc:
            return f"failed: could not reach the bridge to {kind} ({exc})"
        return result_text(outcome)

    @server.tool(name="request_call", description=REQUEST_CALL)
    async def request_call(
        reason: Annotated[
            str,
            Field(
                description="One or two sentences for the person: what you want to talk "
                "about and why now.",
                max_length=500,
            ),
        ],
        urgency: Annotated[
            Literal["low", "normal", "high"],
            Field(description="How urgent: high only when work is blocked on them."),
        ] = "normal",
    ) -> str:
        try:
            request = InviteRequest(
                reason=reason,
                urgency=urgency,
                origin="agent",
                wait_s=config.invites.decision_wait_s,
            )
        except ValidationError as exc:
            return f"failed: invalid arguments ({exc.errors()[0]['msg']})"
        return await ask_bridge("send the invite", request)

    @server.tool(name="send_message", description=SEND_MESSAGE)
    async def send_message(
        text: Annotated[str, Field(description="The message, plain text.", max_length=3500)],
    ) -> str:
        try:
            request = MessageRequest(text=text, origin="agent")
        except ValidationError as exc:
            return f"failed: invalid arguments ({exc.errors()[0]['msg']})"
        return await ask_bridge("send the message", request)

    @server.tool(name="ask_user", description=ASK_USER)
    async def ask_user(
        question: Annotated[str, Field(description="The question, plain text.", max_length=3500)],
        options: Annotated[
            list[str],
            Field(
                description=f"1 to {MAX_OPTIONS} short answers, one button each "
                f"(at most {MAX_OPTION} characters each).",
            ),
        ],
    ) -> str:
        try:
            request = AskRequest(question=question, options=options, origin="agent")
        except ValidationError as exc:
            return f"failed: invalid arguments ({exc.errors()[0]['msg']})"
        return await ask_bridge("ask the question", request)

    del request_call, send_message, ask_user
    return server


async def serve_stdio(loaded: LoadedConfig) -> None:
    """Serve MCP on stdin/stdout until the client closes it."""
    await build_server(loaded).run_stdio_async()
