"""``bridgehost.basics``: lazy exports."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bridgehost.basics import lazy_exports


def test_lazy_exports_import_a_name_on_first_use_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "lazy_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_big.py").write_text("class Big:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_pkg._big", raising=False)
    getattr_ = lazy_exports("lazy_pkg", {"Big": "._big"})
    assert "lazy_pkg._big" not in sys.modules
    assert getattr_("Big").__name__ == "Big" and "lazy_pkg._big" in sys.modules
    with pytest.raises(AttributeError, match="module 'lazy_pkg' has no attribute 'nothing'"):
        getattr_("nothing")
    for name in ("lazy_pkg._big", "lazy_pkg"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_the_builtin_plugins_export_their_lazy_names() -> None:
    from bridgehost.builtin import cloudflared, gpt_live, openai

    assert openai.OpenAIRealtimeBackend.__name__ == "OpenAIRealtimeBackend"
    assert openai.OpenAICallSession.__name__ == "OpenAICallSession"
    assert gpt_live.GptLiveBackend.__name__ == "GptLiveBackend"
    assert cloudflared.ManagedQuickCloudflared.__name__ == "ManagedQuickCloudflared"
    with pytest.raises(AttributeError):
        _ = openai.Missing  # type: ignore[attr-defined]
