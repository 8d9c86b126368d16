"""bridge-telegram: the bot, the bridge's side of the control channel, and call hand-over.

Modules: :mod:`~bridgehost.telegram.daemon` (``bridgehost telegram``: build and run),
:mod:`~bridgehost.telegram.commands` (handlers), :mod:`~bridgehost.telegram.launch` (``/call``
and ``/hangup``), :mod:`~bridgehost.telegram.views` (readiness and status texts),
:mod:`~bridgehost.telegram.access` (the one authorized chat), :mod:`~bridgehost.telegram.intents`
("call me"), :mod:`~bridgehost.telegram.control_channel` (``/ws/bridge`` client),
:mod:`~bridgehost.telegram.prepare` (``call.prepare``), :mod:`~bridgehost.telegram.handover`
(events stored once; :class:`~bridgehost.telegram.handover.HandoffPipeline`),
:mod:`~bridgehost.telegram.sending` (Bot API calls that retry and never crash the daemon),
:mod:`~bridgehost.telegram.conversation` (chat messages as turns in the bound Codex thread),
:mod:`~bridgehost.telegram.approvals`, :mod:`~bridgehost.telegram.attachments`,
:mod:`~bridgehost.telegram.rendering` (answers as Telegram HTML) and
:mod:`~bridgehost.telegram.invites` (invites from Codex and bridgectl).
"""
