"""Problems with a configuration, and the error that carries them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the configuration or the environment around it.

    :param key: what is wrong, as a dotted config key (``realtime.gateway_port``), an environment
        variable name (``OPENAI_API_KEY``) or ``file:line:column`` for TOML syntax errors.
    :param message: a sentence a person can read: what was given and what is expected.
    :param fix: what to do about it, when there is something more specific than the message.
    """

    key: str
    message: str
    fix: str | None = None

    def __str__(self) -> str:
        text = f"{self.key}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text

    def to_dict(self) -> dict[str, str | None]:
        """Plain data: ``{"key", "message", "fix"}``."""
        return asdict(self)


class ConfigError(Exception):
    """The configuration cannot be used; :attr:`problems` lists every reason at once.

    ``str()`` is a readable multi-line list whose first line is
    ``"<path> has N problems:"`` (``bridge.config.toml`` when there is no file).
    """

    def __init__(
        self,
        problems: Sequence[ConfigProblem],
        path: Path | None = None,
        *,
        summary: str | None = None,
    ) -> None:
        self.problems: list[ConfigProblem] = list(problems)
        self.path = path
        self.summary = summary
        super().__init__(self._render())

    def _render(self) -> str:
        if self.summary:
            head = self.summary
        else:
            count = len(self.problems)
            noun = "problem" if count == 1 else "problems"
            head = f"{self.path or 'bridge.config.toml'} has {count} {noun}:"
        return "\n".join([head, *(f"  - {problem}" for problem in self.problems)])

    def __str__(self) -> str:
        return self._render()


@dataclass(frozen=True, slots=True)
class Issue:
    """A cross-field problem found inside a model, before the section prefix is known.

    :param keys: the field names involved, relative to the model (the first one is reported).
    """

    keys: tuple[str, ...]
    message: str
    fix: str | None = None


class CrossFieldError(ValueError):
    """Raised by a model validator with every cross-field :class:`Issue` of that model."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("; ".join(f"{i.keys[0]}: {i.message}" for i in self.issues))


class FieldProblem(ValueError):
    """Raised by a field validator: a message plus an optional fix."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message)
