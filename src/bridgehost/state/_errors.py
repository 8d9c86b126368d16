"""The error every state operation raises for a condition an operator can act on."""

from __future__ import annotations


class StateError(Exception):
    """State cannot be opened or changed safely; the message names the file and the fix."""
