"""Pieces the two command lines (``bridgehost`` and ``bridgectl``) share.

**Shared options.** ``--config``, ``--log-level`` and ``--json`` may be given before or after
the subcommand (``bridgectl --config X call status`` and ``bridgectl call status --config X``
mean the same). :func:`shared_options` adds them to a group or command. Every context of one
invocation shares one settings dict, ``ctx.obj``: the program's group stores its defaults there,
then each value given on the command line is stored as click parses it, from the outside in,
so the innermost given value wins. Commands read ``ctx.obj["config_path"]`` and
``ctx.obj["log_level"]``; a callback with a parameter of the option's name (``as_json``) also
receives the settled value.

**Lazy commands.** :class:`LazyGroup` registers commands by import path and imports a command's
module only when that command runs, so ``bridgehost gateway`` loads neither ``bridgehost.ctl``
nor the operator commands, and ``--help`` lists commands from their registered one-line help
without importing any of them.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import click
from click.core import ParameterSource

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}

SharedName = Literal["config", "log_level", "json"]
"""The options :func:`shared_options` knows."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class SharedOption:
    """One option every command line accepts at any level: flag, settings key, click details."""

    flag: str
    key: str
    """Key in the settings dict (``ctx.obj``) and the callback parameter that receives it."""
    attrs: Mapping[str, Any]

    def decorator(self, expose: bool, overrides: Mapping[str, Any]) -> Callable[[F], F]:
        """``@click.option`` for it, storing into the settings dict as it is parsed."""
        attrs = {"default": None, **self.attrs, **overrides}
        return click.option(
            self.flag, self.key, expose_value=expose, callback=_store_setting, **attrs
        )


SHARED_OPTIONS: dict[SharedName, SharedOption] = {
    "config": SharedOption(
        "--config",
        "config_path",
        {
            "type": click.Path(dir_okay=False, path_type=str),
            "metavar": "FILE",
            "help": "Path to bridge.config.toml (default: $BRIDGE_CONFIG, ./bridge.config.toml, "
            "/etc/bridgehost/bridge.config.toml).",
        },
    ),
    "log_level": SharedOption(
        "--log-level",
        "log_level",
        {
            "type": click.Choice(LOG_LEVELS, case_sensitive=False),
            "help": "How much to log (on stderr, or to journald under systemd).",
        },
    ),
    "json": SharedOption(
        "--json",
        "as_json",
        {"is_flag": True, "default": False, "help": "Print one JSON object instead of text."},
    ),
}


def settings(ctx: click.Context) -> dict[str, Any]:
    """The settings dict of this invocation (``ctx.obj``), created on first use."""
    return ctx.ensure_object(dict)


def _store_setting(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Record a given value (or, when nothing is recorded yet, the default); return the
    value now in force."""
    assert param.name is not None
    stored = settings(ctx)
    if ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
        stored[param.name] = value
    else:
        stored.setdefault(param.name, value)
    return stored[param.name]


def shared_options(
    *names: SharedName, overrides: Mapping[SharedName, Mapping[str, Any]] | None = None
) -> Callable[[F], F]:
    """Add the named shared options to a click command or group callback.

    Put it below ``@click.command()``/``@click.group()``. ``overrides`` changes click
    attributes per option (the program's group gives its defaults this way: a default set on a
    subcommand would never apply, because the group stores its own first). When the command
    runs as the innermost command, the program group's ``prepare`` (see :class:`LazyGroup`)
    is called first with the settled settings.
    """
    overrides = overrides or {}

    def decorate(function: F) -> F:
        takes = inspect.signature(function).parameters

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            root = ctx.find_root().command
            if ctx.invoked_subcommand is None and isinstance(root, LazyGroup) and root.prepare:
                root.prepare(settings(ctx))
            return function(*args, **kwargs)

        for name in reversed(names):
            option = SHARED_OPTIONS[name]
            run = option.decorator(option.key in takes, overrides.get(name, {}))(run)
        return run  # type: ignore[return-value]

    return decorate


bridgectl_options = shared_options("config", "log_level", "json")
"""What every ``bridgectl`` command and group takes: ``--config``, ``--log-level``, ``--json``."""


@dataclass(frozen=True)
class LazyCommand:
    """A command registered by import path (``package.module:attribute``) and its one-line
    help for the group's ``--help`` (a test keeps it equal to the command's own)."""

    import_path: str
    short_help: str

    def load(self) -> click.Command:
        """Import the module and return the command."""
        module_name, _, attribute = self.import_path.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.import_path} is not a click command")
        return command


PLUGINS_COMMAND = LazyCommand(
    "bridgehost.ctl.plugins_cmd:plugins",
    "List plugins: name, version, status, hooks and the providers each one registers.",
)
"""``plugins``, in both ``bridgehost`` and ``bridgectl``."""


class LazyGroup(click.Group):
    """A program's top-level group: commands added as usual or registered lazily.

    :param lazy_commands: command name -> :class:`LazyCommand`, imported on first use.
    :param prepare: called with the settled settings just before the innermost command runs
        (after every level's options are parsed), e.g. to set up logging at ``--log-level``.
    """

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, LazyCommand] | None = None,
        prepare: Callable[[dict[str, Any]], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})
        self.prepare = prepare

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Added and lazy commands, sorted."""
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """An added command, or a lazy one imported now (and kept)."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is None:
            return None
        command = lazy.load()
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, with lazy commands described by their registered help."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.commands:
                if self.commands[name].hidden:
                    continue
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                stand_in = click.Command(name, help=self.lazy_commands[name].short_help)
                rows.append((name, stand_in.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def program_group(
    prog_name: str,
    *,
    lazy_commands: Mapping[str, LazyCommand],
    prepare: Callable[[dict[str, Any]], None],
    options: tuple[SharedName, ...],
    overrides: Mapping[SharedName, Mapping[str, Any]] | None = None,
) -> Callable[[Callable[..., Any]], LazyGroup]:
    """``@click.group`` for a program: a :class:`LazyGroup` with ``-h``, ``--version`` and
    the shared options it takes (with the program's defaults in ``overrides``)."""
    from bridgehost import __version__

    def decorate(function: Callable[..., Any]) -> LazyGroup:
        with_options = shared_options(*options, overrides=overrides)(function)
        versioned = click.version_option(__version__, prog_name=prog_name)(with_options)
        group = click.group(
            cls=LazyGroup,
            context_settings=CONTEXT_SETTINGS,
            lazy_commands=lazy_commands,
            prepare=prepare,
        )(versioned)
        assert isinstance(group, LazyGroup)
        return group

    return decorate
