"""bridge-telegram: the bot, the bridge's side of the control channel, and call hand-over.

Modules: :mod:`~bridgehost.telegram.daemon` (``bridgehost telegram``: build and run),
:mod:`~bridgehost.telegram.commands` (handlers), :mod:`~bridgehost.telegram.launch` (``/call``
and ``/hangup``), :mod:`~bridgehost.telegram.views` (readiness and status texts),
:mod:`~bridgehost.telegram.access` (the one authorized chat), :mod:`~bridgehost.telegram.intents`
("call me"), :mod:`~bridgehost.telegram.control_channel` (``/ws/bridge`` client),
:mod:`~bridgehost.telegram.prepare` (``call.prepare``), :mod:`~bridgehost.telegram.handover`
(events stored once; :class:`~bridgehost.telegram.handover.HandoffPipeline`),
:mod:`~bridgehost.telegram.codex_seam` (the Codex reader a test can put in the builtin's place),
:mod:`~bridgehost.telegram.sending` (Bot API calls that retry and never crash the daemon).
"""
