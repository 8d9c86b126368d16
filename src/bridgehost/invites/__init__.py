"""Invites: the agent (through ``bridgehost mcp``) or a script (``bridgectl call invite``) asks
the person for a call, posts a message or asks a question in the chat.

Both go through one path: a local Unix socket of ``bridge-telegram``
(:mod:`bridgehost.telegram.invite_socket`), whose :class:`~bridgehost.telegram.invites.InviteDesk`
applies the rules (:mod:`bridgehost.invites.rules`), arms the call surface through the gateway,
and sends the message through the bridge's one Telegram sender.
"""
