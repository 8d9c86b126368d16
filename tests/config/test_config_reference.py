"""The configuration reference is generated from the declarations and cannot drift.

``bridge.config.toml.example`` and ``docs/configuration.md`` are the output of
``bridgectl config reference`` for the builtin providers; every core key and every provider
setting appears in both, and a third-party provider's table and secrets appear exactly like a
builtin's.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from importlib.metadata import EntryPoint, entry_points
from inspect import isclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bridgehost.builtin.cloudflared._settings import CloudflaredSettings
from bridgehost.builtin.codex_sink import CodexSinkSettings
from bridgehost.builtin.echo import EchoSettings
from bridgehost.builtin.openai._settings import OpenAISettings
from bridgehost.config import BridgeConfig, validate_config
from bridgehost.config._removed import REMOVED_SETTINGS
from bridgehost.ctl import main
from bridgehost.ctl._reference import Reference, collect_reference, load_host
from bridgehost.ctl._reference_render import REGENERATE, WIDTH, render_markdown, render_toml
from fakes import acme_voice_plugin as acme

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "bridge.config.toml.example"
MARKDOWN = ROOT / "docs" / "configuration.md"
BUILTIN_SETTINGS: dict[str, type[BaseModel]] = {
    "managed-quick-cloudflared": CloudflaredSettings,
    "openai": OpenAISettings,
    "codex": CodexSinkSettings,
    "echo": EchoSettings,
}
"""Every builtin provider that has a ``[plugins.<name>]`` table, with its settings model."""


@pytest.fixture(scope="module")
def builtins() -> Reference:
    return collect_reference(load_host(builtins_only=True))


@pytest.fixture(scope="module")
def example(builtins: Reference) -> str:
    return render_toml(builtins)


@pytest.fixture(scope="module")
def markdown(builtins: Reference) -> str:
    return render_markdown(builtins)


def leaf_fields(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], FieldInfo]]:
    """``((table..., key), field)`` for every key of ``model``, nested models as sub-tables."""
    found: list[tuple[tuple[str, ...], FieldInfo]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isclass(annotation) and issubclass(annotation, BaseModel):
            found += leaf_fields(annotation, (*prefix, name))
        else:
            found.append(((*prefix, name), field))
    return found


def toml_keys(text: str) -> set[tuple[str, str]]:
    """``(table, key)`` for every key line of the example, commented out or not."""
    found: set[tuple[str, str]] = set()
    table = ""
    for line in text.splitlines():
        if header := re.match(r"^(?:# )?\[([a-z0-9_.-]+)\]$", line):
            table = header.group(1)
        elif key := re.match(r"^(?:# )?([a-z_][a-z0-9_]*) = ", line):
            found.add((table, key.group(1)))
    return found


def markdown_keys(text: str) -> set[tuple[str, str]]:
    """``(table, key)`` for every row of every key table of the Markdown reference."""
    found: set[tuple[str, str]] = set()
    table = ""
    for line in text.splitlines():
        if header := re.match(r"^(?:## )?`\[([a-z0-9_.-]+)\]`:?$", line):
            table = header.group(1)
        elif row := re.match(r"^\| `([a-z_][a-z0-9_]*)` \|", line):
            found.add((table, row.group(1)))
    return found


def uncommented(text: str) -> str:
    """The example with every commented-out table header and key line switched on."""
    return "\n".join(
        line[2:] if re.match(r"^# (\[[a-z0-9_.-]+\]$|[a-z_][a-z0-9_]* = )", line) else line
        for line in text.splitlines()
    )


def stale(path: Path, expected: str) -> str:
    diff = difflib.unified_diff(
        path.read_text().splitlines(), expected.splitlines(), "committed", "generated", lineterm=""
    )
    shown = "\n".join(list(diff)[:40])
    return f"{path.name} is out of date: regenerate it with `{REGENERATE}`\n{shown}"


# --- the committed files ----------------------------------------------------------------


def test_the_committed_example_is_the_generated_one(example: str) -> None:
    assert EXAMPLE.read_text() == example, stale(EXAMPLE, example)


def test_the_committed_markdown_is_the_generated_one(markdown: str) -> None:
    assert MARKDOWN.read_text() == markdown, stale(MARKDOWN, markdown)


# --- what the generator writes ------------------------------------------------------------


def test_the_generated_example_loads_to_the_defaults(example: str) -> None:
    assert validate_config(tomllib.loads(example), env={}) == validate_config({}, env={})


def test_every_commented_out_value_is_valid(example: str) -> None:
    data = tomllib.loads(uncommented(example))
    validate_config({k: v for k, v in data.items() if k != "plugins"}, env={})
    tables = data["plugins"]
    assert set(BUILTIN_SETTINGS) <= set(tables)
    for name, model in BUILTIN_SETTINGS.items():
        model.model_validate(tables[name])  # raises if an example value is not valid


def test_every_core_key_appears_in_both(example: str, markdown: str) -> None:
    expected = {(".".join(path[:-1]), path[-1]) for path, _ in leaf_fields(BridgeConfig)}
    assert len(expected) > 60
    assert expected - toml_keys(example) == set()
    assert expected - markdown_keys(markdown) == set()


def test_every_key_carries_its_description_unit_and_default(example: str) -> None:
    lines = example.splitlines()
    flat = " ".join(line.removeprefix("# ") for line in lines)
    for path, field in leaf_fields(BridgeConfig):
        assert field.description is not None
        assert field.description in flat, ".".join(path)
    assert "Unit: ms. Default: 45000." in flat


def test_keys_without_a_plain_default_are_commented_out(example: str) -> None:
    lines = example.splitlines()
    for key in ("tunnel_mode", "authorized_chat_id", "home", "thread_id", "root"):
        assert not any(line.startswith(f"{key} =") for line in lines), key
        assert any(line.startswith(f"# {key} = ") for line in lines), key
    assert "enabled = false" in lines and "gateway_port = 8890" in lines


def test_lines_fit_in_the_width(example: str, markdown: str) -> None:
    assert max(len(line) for line in example.splitlines()) <= WIDTH
    prose = [line for line in markdown.splitlines() if not line.startswith("|")]
    assert max(len(line) for line in prose) <= WIDTH


def test_every_builtin_provider_setting_appears_in_both(example: str, markdown: str) -> None:
    for name, model in BUILTIN_SETTINGS.items():
        table = f"plugins.{name}"
        assert f"# [{table}]" in example.splitlines(), name
        assert f"`[{table}]`:" in markdown.splitlines(), name
        for key, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{key} has no description"
            assert (table, key) in toml_keys(example), f"{table}.{key}"
            assert (table, key) in markdown_keys(markdown), f"{table}.{key}"


def test_every_builtin_provider_is_described(markdown: str, builtins: Reference) -> None:
    names = {provider.name for provider in builtins.providers}
    assert {"static-public-url", "file", "telegram", *BUILTIN_SETTINGS} <= names
    for provider in builtins.providers:
        assert f"#### `{provider.name}`" in markdown
    assert "`transport`: webrtc, `server_side_session`: yes" in markdown
    assert "`managed_process`: yes" in markdown


def test_the_secrets_come_from_the_declarations(example: str, markdown: str) -> None:
    (names,) = [line for line in example.splitlines() if line.startswith("# Names: ")]
    for secret in ("TELEGRAM_BOT_TOKEN", "REALTIME_CONTROL_SECRET", "OPENAI_API_KEY"):
        assert secret in names
        assert f"| `{secret}` |" in markdown
    assert "# Secrets it needs: OPENAI_API_KEY (gateway: the gateway opens OpenAI" in example
    assert "- `OPENAI_API_KEY` (telegram): the bridge writes call summaries with it" in markdown


def test_removed_keys_are_explained(example: str, markdown: str) -> None:
    for removed in REMOVED_SETTINGS.values():
        for key in removed:
            assert f"# ({key} was removed: " in example
            assert f"`{key}` (" in markdown


def test_the_committed_files_hold_only_the_builtins() -> None:
    assert "[plugins.webhook]" not in EXAMPLE.read_text()
    assert acme.KEY not in EXAMPLE.read_text() + MARKDOWN.read_text()


# --- a third-party provider -----------------------------------------------------------


@pytest.fixture
def acme_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the Acme plugin beside the builtins, as its distribution would."""

    def with_acme() -> list[EntryPoint]:
        return [*entry_points(group="bridgehost"), acme.ENTRY_POINT]

    monkeypatch.setattr("bridgehost.plugins._installed_entry_points", with_acme)


def reference(*args: str) -> str:
    result = CliRunner().invoke(main, ["config", "reference", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.usefixtures("acme_installed")
def test_an_installed_plugin_documents_its_table_and_secret() -> None:
    example = reference("--format", "toml")
    lines = example.splitlines()
    (names,) = [line for line in lines if line.startswith("# Names: ")]
    assert acme.KEY in names
    assert f"# [plugins.{acme.NAME}]" in lines
    assert '# region = "eu"' in lines
    assert (
        f"# Secrets it needs: {acme.KEY} (gateway: the gateway opens Acme voice sessions with it)."
        in lines
    )
    assert tomllib.loads(uncommented(example))["plugins"][acme.NAME] == {"region": "eu"}

    markdown = reference("--format", "markdown")
    assert f"#### `{acme.NAME}`" in markdown
    assert "- Plugin: `acme-voice` (third-party)" in markdown
    assert f"- `{acme.KEY}` (gateway): the gateway opens Acme voice sessions with it" in markdown
    assert "`transport`: relay" in markdown
    assert (f"plugins.{acme.NAME}", "region") in markdown_keys(markdown)


@pytest.mark.usefixtures("acme_installed")
def test_builtins_only_leaves_installed_plugins_out() -> None:
    assert reference("--builtins-only") == EXAMPLE.read_text()
    assert acme.KEY not in reference("--builtins-only", "--format", "markdown")


@pytest.mark.usefixtures("acme_installed")
def test_the_reference_as_json() -> None:
    data = json.loads(reference("--json"))
    assert [table["path"] for table in data["tables"]][:2] == ["realtime", "gateway"]
    (provider,) = [p for p in data["providers"] if p["name"] == acme.NAME]
    assert provider["secrets"] == [
        {"name": acme.KEY, "why": {"gateway": "the gateway opens Acme voice sessions with it"}}
    ]
    assert provider["settings"]["keys"][0]["name"] == "region"
