"""Shared test helpers: a private home for every test, installed-looking plugin distributions on
a private sys.path entry, the real CLIs and the real codex binary.

Every test runs with its own ``HOME``, ``CODEX_HOME`` and XDG directories, and without the
variables bridgehost reads from its host (``BRIDGE_CONFIG``, secrets, systemd's per-service
variables), so nothing comes from the developer's home or shell. pip and npm keep this
machine's registry settings: ``PIP_CONFIG_FILE`` and ``NPM_CONFIG_USERCONFIG`` point at the
original user files when they exist, and ``PIP_*``/``NODE_EXTRA_CA_CERTS``/``SSL_CERT_*`` stay.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST_ENV = (
    "BRIDGE_CONFIG",
    "BRIDGEHOST_LOG_LEVEL",
    "BRIDGEHOST_LOAD_PLUGINS",
    "BRIDGEHOST_STRICT_PLUGINS",
    "BRIDGEHOST_JOURNAL_SOCKET",
    "TELEGRAM_BOT_TOKEN",
    "OPENAI_API_KEY",
    "REALTIME_CONTROL_SECRET",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "CREDENTIALS_DIRECTORY",
    "STATE_DIRECTORY",
    "NOTIFY_SOCKET",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "JOURNAL_STREAM",
    "INVOCATION_ID",
    "SUDO_USER",
)
"""What bridgehost reads from the host it runs on; no test inherits these from the developer."""

TOOL_HOMES = {"PYENV_ROOT": ".pyenv", "CARGO_HOME": ".cargo", "RUSTUP_HOME": ".rustup"}
"""Toolchains installed under the real home, found again by their own variables."""


def package_manager_env(real_home: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Variables that keep pip, npm and the toolchains working once ``HOME`` moves elsewhere.

    The user's pip config and ``~/.npmrc`` (registry, certificates) are pointed at where they
    are, unless ``env`` already names one; nothing else from the real home is used.
    """
    found: dict[str, str] = {}
    if "PIP_CONFIG_FILE" not in env:
        config_home = Path(env.get("XDG_CONFIG_HOME") or real_home / ".config")
        for pip_conf in (config_home / "pip" / "pip.conf", real_home / ".pip" / "pip.conf"):
            if os.access(pip_conf, os.R_OK):
                found["PIP_CONFIG_FILE"] = str(pip_conf)
                break
    npmrc = real_home / ".npmrc"
    if not {"NPM_CONFIG_USERCONFIG", "npm_config_userconfig"} & env.keys() and os.access(
        npmrc, os.R_OK
    ):
        found["NPM_CONFIG_USERCONFIG"] = str(npmrc)
    for name, relative in TOOL_HOMES.items():
        if name not in env and (real_home / relative).is_dir():
            found[name] = str(real_home / relative)
    return found


REAL_HOME = Path(os.environ.get("HOME") or Path.home())
"""The home pytest was started from: only its pip/npm settings and toolchains are used."""
_PACKAGE_MANAGER_ENV = package_manager_env(REAL_HOME, dict(os.environ))


def isolate_home(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``HOME``, ``CODEX_HOME`` and the XDG directories under ``root``; drop
    :data:`HOST_ENV`. Returns the new ``HOME`` (``CODEX_HOME`` is ``HOME/.codex``, not created:
    a fresh machine has none).
    """
    home = root / "home"
    home.mkdir()
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    for name in HOST_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in _PACKAGE_MANAGER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CODEX_HOME", str(home / ".codex"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return home


@pytest.fixture(scope="session", autouse=True)
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private home for session- and module-scoped fixtures (they start before any test)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield isolate_home(tmp_path_factory.mktemp("session-home"), monkeypatch)


@pytest.fixture(autouse=True)
def isolated_home(
    session_home: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test's own ``HOME``, ``CODEX_HOME`` and XDG directories (see :func:`isolate_home`)."""
    return isolate_home(tmp_path_factory.mktemp("home"), monkeypatch)


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
