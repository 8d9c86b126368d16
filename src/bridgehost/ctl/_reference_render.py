"""The configuration reference as text: ``bridge.config.toml.example`` and
``docs/configuration.md`` (:mod:`bridgehost.ctl._reference` collects what they say)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from bridgehost.ctl._reference import KeyDoc, ProviderDoc, Reference, SecretDoc, TableDoc

WIDTH = 100
"""Lines of both files are wrapped at this many columns."""

REGENERATE = "bash scripts/gen-config-docs.sh"
"""The command that rewrites both committed files (builtin providers only)."""

TOML_HEADER = """\
bridge.config.toml — every key bridgehost reads, with its default.

Copy to ./bridge.config.toml or /etc/bridgehost/bridge.config.toml (or point --config /
$BRIDGE_CONFIG at it). Every key is optional; the values below are the defaults, and keys whose
default is "unset" or derived from the environment are commented out.
Check it with `bridgectl config check`; see what is in effect with `bridgectl config show`.

Secrets never go in this file. They come, in this order, from:
  1. files under $CREDENTIALS_DIRECTORY (systemd LoadCredential=), named after the variable:
     the shipped units say LoadCredential=NAME, so put each secret in /etc/credstore/NAME
     (root-only, mode 0600), e.g. /etc/credstore/OPENAI_API_KEY
  2. the process environment
  3. a .env file next to this file (NAME=value lines; it never changes the environment)
"""

PROVIDER_TABLES = (
    "Each provider may read its own table, [plugins.<provider-name>], validated by that "
    "provider. Put secrets in the environment or credentials, not here. The tables of the "
    "installed providers follow, every key commented out at its default; `bridgectl config "
    "reference` prints this file for the plugins installed on a machine."
)

MARKDOWN_INTRO = """\
bridgehost reads `bridge.config.toml` from `--config`, then `$BRIDGE_CONFIG`, then
`./bridge.config.toml`, then `/etc/bridgehost/bridge.config.toml`. Every key is optional.
[`bridge.config.toml.example`](../bridge.config.toml.example) holds the same reference as a file
to start from. `bridgectl config check` lists every problem with its key and fix,
`bridgectl config show` prints what is in effect, and `bridgectl config reference --format
markdown` prints this page for the plugins installed on a machine.

## Secrets

Secrets never go in the file. They come, in this order, from:

1. files under `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`), named after the variable:
   the shipped units say `LoadCredential=NAME`, so put each secret in `/etc/credstore/NAME`
   (root-only, mode 0600);
2. the process environment;
3. a `.env` file next to the config file (`NAME=value` lines; it never changes the
   environment).
"""

PROVIDERS_INTRO = (
    "Tunnel modes, realtime backends and handoff sinks are plugins; the builtins register "
    "exactly like third-party packages, and `bridgectl plugins` lists what is installed. Each "
    "provider declares the secrets it needs, its capabilities and its own `[plugins.<name>]` "
    "table."
)


_KEEP_TOGETHER = ("Unit: ", "Default: ")
"""A label stays on the line of the value it introduces."""
_NBSP = "\N{NO-BREAK SPACE}"


def _comment(text: str) -> list[str]:
    """``text`` as ``#`` comment lines wrapped at :data:`WIDTH`."""
    for label in _KEEP_TOGETHER:
        text = text.replace(label, label.rstrip() + _NBSP)
    lines = textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent="# ",
        subsequent_indent="# ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(_NBSP, " ") for line in lines]


def _removed_note(key: str, why: str) -> str:
    return (
        f"({key} was removed: {why}. An old file that still sets it loads, and `bridgectl "
        "config check` notes that it is ignored.)"
    )


def _secret_line(secret: SecretDoc) -> str:
    reasons = "; ".join(f"{service}: {why}" for service, why in secret.why.items())
    return f"{secret.name} ({reasons})"


def _toml_key(key: KeyDoc, *, commented: bool) -> list[str]:
    lines = _comment(key.description)
    if key.value is None or commented:
        return [*lines, f"# {key.name} = {key.value or key.example}"]
    return [*lines, f"{key.name} = {key.value}"]


def _toml_table(table: TableDoc) -> list[str]:
    lines = [f"[{table.path}]", *(_comment(table.intro) if table.intro else [])]
    for key in table.keys:
        lines += _toml_key(key, commented=False)
    for name, why in table.removed:
        lines += _comment(_removed_note(name, why))
    return lines


def _toml_provider(provider: ProviderDoc) -> list[str]:
    assert provider.settings is not None
    lines = [f"# [{provider.settings.path}]"]
    lines += _comment(
        f"The {provider.slot} {provider.name} ({provider.config_key}), from plugin "
        f"{provider.plugin}: {provider.description}"
    )
    needs = "; ".join(_secret_line(s) for s in provider.secrets)
    lines += _comment(f"Secrets it needs: {needs}." if needs else "Secrets it needs: none.")
    for key in provider.settings.keys:
        lines += _toml_key(key, commented=True)
    return lines


def render_toml(reference: Reference) -> str:
    """``bridge.config.toml.example``: header, every table and key, then the providers'."""
    names = ", ".join(reference.secret_names)
    lines = [f"# {line}".rstrip() for line in TOML_HEADER.splitlines()]
    lines += _comment(f"Names: {names} (plus any a plugin asks for).")
    for table in reference.tables:
        lines += ["", *_toml_table(table)]
    lines += ["", *_comment(PROVIDER_TABLES)]
    for provider in reference.providers:
        if provider.settings is not None:
            lines += ["", *_toml_provider(provider)]
    return "\n".join(lines) + "\n"


# -- Markdown ------------------------------------------------------------------------------


def _md(text: str, *, cell: bool = True) -> str:
    """``text`` safe in Markdown: ``<`` outside code spans as ``&lt;``, and in a table cell
    pipes escaped."""
    parts = text.split("`")
    for index, part in enumerate(parts):
        part = part.replace("|", "\\|") if cell else part
        parts[index] = part if index % 2 else part.replace("<", "&lt;")
    return "`".join(parts)


def _paragraph(text: str) -> list[str]:
    return textwrap.wrap(
        _md(text, cell=False), width=WIDTH, break_long_words=False, break_on_hyphens=False
    )


def _md_default(key: KeyDoc) -> str:
    return f"`{_md(key.value)}`" if key.value == key.default else _md(key.default)


def _md_keys(keys: Iterable[KeyDoc]) -> list[str]:
    rows = ["| key | default | unit | meaning |", "|---|---|---|---|"]
    rows += [
        f"| `{key.name}` | {_md_default(key)} | {_md(key.unit or '')} | {_md(key.meaning)} |"
        for key in keys
    ]
    return rows


def _md_table(table: TableDoc) -> list[str]:
    lines = [f"## `[{table.path}]`", ""]
    if table.intro:
        lines += [*_paragraph(table.intro), ""]
    lines += _md_keys(table.keys)
    if table.removed:
        removed = "; ".join(f"`{name}` ({why})" for name, why in table.removed)
        lines += [
            "",
            *_paragraph(
                "Removed keys, still accepted so that an old file loads (`bridgectl config "
                f"check` notes them as ignored): {removed}."
            ),
        ]
    return lines


def _md_secrets(reference: Reference) -> list[str]:
    rows = ["| secret | needed by | which service, and why |", "|---|---|---|"]
    entries = [("bridgehost itself", s) for s in reference.core_secrets]
    entries += [(f"{p.slot} `{p.name}`", s) for p in reference.providers for s in p.secrets]
    for owner, secret in entries:
        why = "; ".join(f"{service}: {text}" for service, text in secret.why.items())
        rows.append(f"| `{secret.name}` | {owner} | {_md(why)} |")
    return rows


def _md_provider(provider: ProviderDoc) -> list[str]:
    origin = "builtin" if provider.builtin else "third-party"
    description = provider.description[:1].upper() + provider.description[1:]
    lines = [f"#### `{provider.name}`", "", *_paragraph(description), ""]
    lines.append(f"- Plugin: `{provider.plugin}` ({origin})")
    if provider.flags:
        flags = ", ".join(f"`{name}`: {value}" for name, value in provider.flags.items())
        wrapped = textwrap.wrap(
            f"- Capabilities: {flags}",
            width=WIDTH,
            subsequent_indent="  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines += wrapped
    if provider.own_readiness:
        lines.append("- Readiness: adds its own checks to `bridgectl capabilities` while selected")
    if not provider.secrets:
        lines.append("- Secrets: none")
    else:
        lines.append("- Secrets:")
        for secret in provider.secrets:
            for service, why in secret.why.items():
                lines.append(f"  - `{secret.name}` ({service}): {_md(why)}")
    if provider.settings is None:
        lines.append(f"- Settings: none (no `[plugins.{provider.name}]` table)")
    else:
        lines += ["", f"`[{provider.settings.path}]`:", "", *_md_keys(provider.settings.keys)]
    return lines


def _md_providers(providers: list[ProviderDoc]) -> list[str]:
    lines = ["## Providers", "", *_paragraph(PROVIDERS_INTRO)]
    slots = list(dict.fromkeys((p.slot, p.config_key) for p in providers))
    for slot, config_key in slots:
        lines += ["", f"### {slot.capitalize()}s, selected by `{config_key}`"]
        for provider in providers:
            if (provider.slot, provider.config_key) == (slot, config_key):
                lines += ["", *_md_provider(provider)]
    return lines


def render_markdown(reference: Reference) -> str:
    """``docs/configuration.md``: secrets, one key table per config table, then providers."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from the config models and the providers' declarations by",
        f"     `{REGENERATE}` (bridgectl config reference --format markdown);",
        "     change those, not this file. -->",
        "",
        *MARKDOWN_INTRO.splitlines(),
        "",
        *_md_secrets(reference),
    ]
    for table in reference.tables:
        lines += ["", *_md_table(table)]
    lines += ["", *_md_providers(reference.providers)]
    return "\n".join(lines) + "\n"


__all__ = ["REGENERATE", "WIDTH", "render_markdown", "render_toml"]
