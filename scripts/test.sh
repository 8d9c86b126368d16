#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export BRIDGEHOST_CODEX_BIN="${BRIDGEHOST_CODEX_BIN:-$PWD/.codex-npm/node_modules/.bin/codex}"
echo "==> ruff check src tests plugins"
.venv/bin/ruff check src tests plugins
echo "==> .venv/bin/mypy (strict, over src/bridgehost: pyproject.toml [tool.mypy])"
.venv/bin/mypy
echo "==> .venv/bin/pytest -q${*:+ $*} (in $PWD, HOME=$HOME, codex: $BRIDGEHOST_CODEX_BIN)"
exec .venv/bin/pytest -q "$@"
