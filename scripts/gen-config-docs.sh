#!/usr/bin/env bash
# Rewrite bridge.config.toml.example and docs/configuration.md from the config models and the
# builtin providers' declarations (`bridgectl config reference`). Run it after changing a setting.
set -euo pipefail
cd "$(dirname "$0")/.."
bridgectl=.venv/bin/bridgectl
[ -x "$bridgectl" ] || bridgectl=bridgectl
write() {  # write <format> <file>: replace the file only once the output is complete
    local tmp
    tmp="$(mktemp "$2.XXXXXX")"
    if ! "$bridgectl" config reference --builtins-only --format "$1" >"$tmp"; then
        rm -f "$tmp"
        exit 1
    fi
    chmod 0644 "$tmp"
    mv "$tmp" "$2"
    echo "wrote $2"
}
write toml bridge.config.toml.example
write markdown docs/configuration.md
