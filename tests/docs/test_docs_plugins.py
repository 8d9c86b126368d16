"""The plugin guide documents every hook with its exact signature."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import bridgehost.hookspecs as hookspecs

GUIDE = Path(__file__).parents[2] / "docs" / "plugins.md"


def _hooks() -> dict[str, str]:
    signatures = {}
    for name in dir(hookspecs):
        if name.startswith("bridgehost_"):
            text = str(inspect.signature(getattr(hookspecs, name)))
            signatures[name] = name + text.replace("'", "")
    return signatures


def test_every_hook_has_a_section_with_its_signature():
    guide = GUIDE.read_text()
    for name, signature in _hooks().items():
        assert f"### {name}\n" in guide, f"docs/plugins.md has no section for {name}"
        assert f"`{signature}`" in guide, f"docs/plugins.md shows another signature for {name}"


def test_every_hook_has_an_example_in_its_docstring():
    for name in _hooks():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "**Example:**" in doc and "@hookimpl" in doc, name
        assert re.search(r":return:", doc), name
