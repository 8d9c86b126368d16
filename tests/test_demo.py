"""``bridgehost demo`` as a user runs it: a real process, every step printed, a handoff file."""

from __future__ import annotations

import re
from pathlib import Path


def test_demo_carries_a_call_from_bootstrap_to_handoff(cli, tmp_path):
    result = cli(["bridgehost", "demo", "--state-dir", str(tmp_path / "demo")], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "surface armed: http://127.0.0.1:" in out
    assert re.search(r"sent 25 audio frames .*; 25 came back", out)
    assert "call.ended reason=user_hangup" in out
    handoff = Path(re.search(r"handoff written: (\S+)", out).group(1))
    assert handoff.is_file() and handoff.is_relative_to(tmp_path)
    assert handoff.read_text().startswith("bridgehost-handoff: ")
    assert "demo finished" in out
