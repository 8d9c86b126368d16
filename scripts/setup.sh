#!/usr/bin/env bash
# Set up a development environment: a virtualenv with bridgehost, its test tools, the example
# third-party plugin, Debian's Chromium (for the Mini App tests) and the codex CLI (npm).
# Safe to run again; each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    python3 -m venv .venv
fi
say "installing bridgehost and test dependencies into .venv"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]' -e plugins/bridgehost-webhook

apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "not root: skipping apt-get install $*; install them yourself for the full test suite"
        return 0
    fi
    if [ -z "${BRIDGEHOST_APT_UPDATED:-}" ]; then
        apt-get update -qq
        export BRIDGEHOST_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v chromium >/dev/null 2>&1; then
    say "installing Debian's chromium (Mini App end-to-end tests)"
    apt_install chromium
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
    say "installing systemd tools (unit checks)"
    apt_install systemd
fi

if [ ! -x .codex-npm/node_modules/.bin/codex ]; then
    if command -v npm >/dev/null 2>&1; then
        say "installing the codex CLI into .codex-npm (npm @openai/codex)"
        npm install --silent --no-audit --no-fund --save-exact --prefix .codex-npm @openai/codex@0.169.0
    else
        echo "npm not found: skipping the codex CLI; Codex tests will be skipped"
    fi
fi
say "setup done"
