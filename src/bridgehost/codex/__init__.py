"""Codex integration: the ``codex app-server`` client, threads, handoffs and call context."""

from __future__ import annotations

from bridgehost.codex._errors import (
    CodexError,
    CodexThreadBusy,
    CodexThreadNotFound,
    CodexThreadNotMaterialized,
)
from bridgehost.codex._marker import HandoffMode
from bridgehost.codex._subscription import Subscription
from bridgehost.codex.appserver import (
    AppServerClient,
    control_socket_path,
    loaded_thread_ids,
    login_problem,
    open_app_server,
)
from bridgehost.codex.context import call_context_parts
from bridgehost.codex.handoff import AppendReceipt, append_handoff, find_handoff
from bridgehost.codex.threads import (
    ThreadSummary,
    Turn,
    latest_thread,
    list_threads,
    read_thread,
    recent_turns,
)

__all__ = [
    "AppServerClient",
    "AppendReceipt",
    "CodexError",
    "CodexThreadBusy",
    "CodexThreadNotFound",
    "CodexThreadNotMaterialized",
    "HandoffMode",
    "Subscription",
    "ThreadSummary",
    "Turn",
    "append_handoff",
    "call_context_parts",
    "control_socket_path",
    "find_handoff",
    "latest_thread",
    "list_threads",
    "loaded_thread_ids",
    "login_problem",
    "open_app_server",
    "read_thread",
    "recent_turns",
]
