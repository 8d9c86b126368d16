"""Builtin providers. Each module is a plugin registered under the ``bridgehost`` entry-point
group in bridgehost's own ``pyproject.toml``, exactly as a third-party plugin would be."""
