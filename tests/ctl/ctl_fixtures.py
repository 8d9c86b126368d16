"""Fixtures for the operator-command tests, loaded with ``pytest_plugins = ("ctl_fixtures",)``.

``gateway_factory`` starts a real gateway in the test's event loop (``tests/gateway/conftest.py``).
"""

from __future__ import annotations

from gateway.conftest import gateway_factory

__all__ = ["gateway_factory"]
