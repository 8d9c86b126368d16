"""``bridgectl config``: check and show ``bridge.config.toml``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from bridgehost._cli_common import bridgectl_options
from bridgehost.config import (
    ConfigError,
    ConfigProblem,
    LoadedConfig,
    Service,
    load_config,
    mask_config,
    render_toml,
    requirements_problems,
)
from bridgehost.config._removed import ignored_settings
from bridgehost.plugins import PluginHost, check_config_problems

SERVICES: dict[str, tuple[Service, ...]] = {
    "all": ("gateway", "telegram"),
    "gateway": ("gateway",),
    "telegram": ("telegram",),
    "none": (),
}


def _config_path(ctx: click.Context) -> str | None:
    return ctx.obj.get("config_path") if isinstance(ctx.obj, dict) else None


def plugin_problems(loaded: LoadedConfig, host: PluginHost) -> list[ConfigProblem]:
    """Plugin conflicts and problems with the selected providers and their settings."""
    try:
        return check_config_problems(loaded, host)
    except Exception as exc:  # a broken plugin must not hide the rest of the report
        return [
            ConfigProblem(
                "plugins",
                f"checking the selected providers failed: {type(exc).__name__}: {exc}",
                "run `bridgectl plugins` to see which plugin fails",
            )
        ]


@dataclass
class CheckReport:
    """What ``config check`` found: the loaded config (when valid), problems and a headline."""

    loaded: LoadedConfig | None
    problems: list[ConfigProblem]
    path: str | None
    headline: str | None = None


def collect_problems(config_path: str | None, service: str) -> CheckReport:
    """Load the config and gather every problem: file, plugins, service requirements."""
    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        path = str(exc.path) if exc.path else config_path
        return CheckReport(None, exc.problems, path, str(exc).splitlines()[0])
    host = PluginHost.for_config(loaded.config)
    problems = plugin_problems(loaded, host)
    for name in SERVICES[service]:
        needs = host.secret_needs(loaded.config, name)
        problems.extend(requirements_problems(loaded, name, needs))
    unique: dict[tuple[str, str], ConfigProblem] = {}
    for problem in problems:  # a secret both services need is reported once
        dedupe = problem.message if problem.key == "plugins" else ""
        unique.setdefault((problem.key, dedupe), problem)
    path = str(loaded.path) if loaded.path else None
    return CheckReport(loaded, list(unique.values()), path)


def _emit_json(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def _echo_problems(
    path: str | None, problems: list[ConfigProblem], *, err: bool, headline: str | None = None
) -> None:
    noun = "problem" if len(problems) == 1 else "problems"
    click.echo(headline or f"{path or 'bridge.config.toml'} has {len(problems)} {noun}:", err=err)
    for problem in problems:
        click.echo(f"  {problem}", err=err)


@click.group("config")
@bridgectl_options
def config() -> None:
    """Check and show bridge.config.toml (secrets are never shown)."""


@config.command("check")
@bridgectl_options
@click.option(
    "--service",
    type=click.Choice(list(SERVICES)),
    default="all",
    show_default=True,
    help="Also check what this service needs (secrets, authorized chat); "
    "'none' checks the file alone.",
)
@click.pass_context
def check(ctx: click.Context, as_json: bool, service: str) -> None:
    """Validate the config, the selected plugins and what the services need.

    Exit 0 when everything is in order, 1 when there are problems.
    """
    report = collect_problems(_config_path(ctx), service)
    ignored = ignored_settings(report.loaded.raw) if report.loaded else []
    if as_json:
        payload: dict[str, Any] = {
            "ok": not report.problems,
            "path": report.path,
            "service": service,
            "problems": [problem.to_dict() for problem in report.problems],
        }
        if ignored:  # removed keys an older file still sets: accepted, without effect
            payload["ignored"] = [{"key": key, "why": why} for key, why in ignored]
        _emit_json(payload)
    elif report.problems:
        _echo_problems(report.path, report.problems, err=False, headline=report.headline)
    else:
        keys = report.loaded.keys_set if report.loaded else 0
        where = report.path or "no config file found, using the defaults"
        click.echo(f"OK: {where} ({keys} key{'' if keys == 1 else 's'} set)")
    if not as_json:
        for key, why in ignored:
            click.echo(f"  note: {key} is ignored: it was removed ({why}); delete the line")
    if report.problems:
        ctx.exit(1)


@config.command("show")
@bridgectl_options
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective configuration with defaults and derived values; secrets masked."""
    try:
        loaded = load_config(_config_path(ctx))
    except ConfigError as exc:
        path = str(exc.path) if exc.path else None
        if as_json:
            _emit_json(
                {
                    "ok": False,
                    "path": path,
                    "problems": [problem.to_dict() for problem in exc.problems],
                }
            )
        else:
            _echo_problems(path, exc.problems, err=True, headline=str(exc).splitlines()[0])
        ctx.exit(1)
        return
    data = mask_config(loaded.config, loaded.secrets)
    path = str(loaded.path) if loaded.path else None
    if as_json:
        _emit_json({"path": path, "config": data})
        return
    source = path or "defaults (no config file found)"
    click.echo(
        render_toml(
            data,
            header=f"Effective configuration from {source}.\n"
            "Secrets are masked; derived values are filled in.",
        ),
        nl=False,
    )


@config.command("reference")
@bridgectl_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["toml", "markdown"]),
    default="toml",
    show_default=True,
    help="toml: a commented bridge.config.toml; markdown: the configuration reference page.",
)
@click.option(
    "--builtins-only",
    is_flag=True,
    help="Document only the builtin providers, not the third-party plugins installed here.",
)
def reference(as_json: bool, output_format: str, builtins_only: bool) -> None:
    """Print every key with its meaning, unit and default, and every provider's settings and
    secrets."""
    from bridgehost.ctl._reference import collect_reference, load_host
    from bridgehost.ctl._reference_render import render_markdown
    from bridgehost.ctl._reference_render import render_toml as render_example

    documented = collect_reference(load_host(builtins_only=builtins_only))
    if as_json:
        _emit_json(documented.to_json())
        return
    render = render_example if output_format == "toml" else render_markdown
    click.echo(render(documented), nl=False)
