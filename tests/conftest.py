"""Shared test helpers: installed-looking plugin distributions on a private sys.path entry."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class SitePackages:
    """A directory laid out like site-packages, for distributions a test "installs"."""

    path: Path

    def install(
        self, dist: str, version: str, modules: dict[str, str], entry_points: dict[str, str]
    ) -> None:
        """Write modules plus a ``.dist-info`` with METADATA and ``[bridgehost]`` entry points."""
        for module, source in modules.items():
            (self.path / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[bridgehost]\n{lines}")

    def env(self, **extra: str) -> dict[str, str]:
        """An environment whose Python also sees this directory."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.path), env.get("PYTHONPATH")]))
        env.update(extra)
        return env


@pytest.fixture
def site_packages(tmp_path: Path) -> SitePackages:
    """A fresh directory to install fake plugin distributions into."""
    path = tmp_path / "site"
    path.mkdir()
    return SitePackages(path)


def run_cli(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an installed console script (``bridgectl``/``bridgehost``) as a real process."""
    exe = Path(sys.executable).with_name(args[0])
    return subprocess.run(
        [str(exe), *args[1:]],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.fixture
def cli():
    """Run ``bridgectl``/``bridgehost`` as real processes: ``cli(["bridgectl", "plugins"])``."""
    return run_cli


@pytest.fixture(scope="session")
def codex_bin() -> str:
    """The real codex CLI (installed by scripts/setup.sh), or a skip that says how to get it."""
    from fakes.codex_model import find_codex_binary

    found = find_codex_binary()
    if not found:
        pytest.skip(
            "codex binary not found: run `npm install --prefix .codex-npm "
            "@openai/codex@0.169.0` or set BRIDGEHOST_CODEX_BIN"
        )
    return found
