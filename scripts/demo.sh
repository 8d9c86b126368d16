#!/usr/bin/env bash
# Set up a virtualenv with bridgehost and run the offline demo: one call through a real gateway
# (echo backend, loopback only). Extra arguments go to `bridgehost demo` (try --serve).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    python3 -m venv .venv
fi
echo "==> installing bridgehost into .venv"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/bridgehost demo "$@"
