"""One finding of ``bridgectl doctor``: what was looked at, its status, and the fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

CheckStatus = Literal["ok", "warn", "missing", "unknown"]
"""How one doctor finding stands."""


@dataclass
class Check:
    """One line of the doctor's report; ``status`` is ``ok``, ``warn``, ``missing`` or
    ``unknown`` (could not look, e.g. credentials without root)."""

    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None

    @property
    def ok(self) -> bool:
        """False only for ``missing``."""
        return self.status != "missing"

    def to_json(self) -> dict[str, Any]:
        """``{"name", "status", "ok", "detail", "fix"}``."""
        return {**asdict(self), "ok": self.ok}
