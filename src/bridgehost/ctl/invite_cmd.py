"""``bridgectl call invite --reason TEXT``: invite the person to a call from a script.

The request goes to bridge-telegram's local invite socket, the same path the ``bridgehost mcp``
tools take (origin ``operator``): the bridge applies the invite rules, arms the call surface
if needed and sends the chat the reason with a Mini App button.
"""

from __future__ import annotations

import click

from bridgehost._cli_common import bridgectl_options
from bridgehost.ctl import _describe as describe
from bridgehost.ctl._context import load
from bridgehost.ctl._output import EXIT_UNREACHABLE, CtlError, emit_json, run

REFUSED_EXIT = 1


@click.command("invite")
@click.option(
    "--reason",
    required=True,
    help="Why you want the call; shown in the chat and placed first in the call's context.",
)
@click.option(
    "--urgency",
    type=click.Choice(["low", "normal", "high"]),
    default="normal",
    show_default=True,
    help="How urgent (high marks the message).",
)
@bridgectl_options
@click.pass_context
def invite(ctx: click.Context, reason: str, urgency: str, as_json: bool) -> None:
    """Send the authorized chat an invite: the reason and a button that opens the call.

    Arms the call surface if needed. Prints the launch URL and when the invite expires;
    --json prints {"outcome", "detail", "invite_id", "launch_url", "expires_at"}. Exit 1 when
    the rules refuse (quiet hours, rate limit, budget spent, not ready), 3 when bridge-telegram
    is not reachable.
    """
    from pydantic import ValidationError

    from bridgehost.invites.client import InviteClient, InviteClientError
    from bridgehost.protocol.invites import InviteRequest, Outcome, OutcomeKind

    loaded = load(ctx, as_json=as_json)
    try:
        request = InviteRequest(reason=reason, urgency=urgency, origin="operator")
    except ValidationError as exc:
        raise CtlError(
            f"--reason: {exc.errors()[0]['msg']} (give 1 to 500 characters)",
            exit_code=2,
            code="bad_reason",
            as_json=as_json,
        ) from exc

    async def _go() -> Outcome:
        async with InviteClient(loaded.config) as bridge:
            return await bridge.invite(request)

    try:
        outcome = run(_go())
    except InviteClientError as exc:
        exit_code = EXIT_UNREACHABLE if exc.code == "bridge_unreachable" else REFUSED_EXIT
        raise CtlError(str(exc), exit_code=exit_code, code=exc.code, as_json=as_json) from exc
    if outcome.outcome is not OutcomeKind.SENT:
        raise CtlError(
            outcome.detail, exit_code=REFUSED_EXIT, code=outcome.outcome.value, as_json=as_json
        )
    if as_json:
        emit_json(outcome.model_dump(mode="json", exclude={"choice"}))
        return
    click.echo(f"Invite {outcome.invite_id} sent to the chat.")
    click.echo(f"Launch URL (valid until {describe.when(outcome.expires_at)}):")
    click.echo(f"  {outcome.launch_url}")
