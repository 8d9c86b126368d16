"""bridgehost's layers: every import points down (or sideways within a layer), and none is circular.

The layers, lowest first (a module may import its own layer and the layers below it only):

0. ``bridgehost`` (the package: ``hookimpl``, ``__version__``), ``basics`` (clocks, call ids,
   atomic writes; standard library only), ``_journald``.
1. Foundations: ``logging``, ``systemd``, ``config``, ``protocol``, ``state``, ``cost``,
   ``gateway_api`` (the typed client of the gateway's control API).
2. The plugin host: ``providers`` (the provider slots and what providers declare),
   ``delegation`` (what a delegating backend session offers), ``hookspecs``, ``plugins``,
   ``readiness``, and ``invites`` (the invite rules and the client of the bridge's invite socket).
3. The parts: ``codex``, ``handoff``, ``gateway``, ``telegram``, ``builtin`` (the builtin
   providers, each a plugin like any other).
4. Entry points: ``cli``, ``_cli_common``, ``ctl`` (bridgectl), ``demo``, ``testing``,
   ``mcp_server`` (``bridgehost mcp``).

Every import counts for the order: module level, under ``if TYPE_CHECKING:`` and inside
functions. The module graph of module-level and ``TYPE_CHECKING`` imports has no cycle (an import
inside a function runs late, once both modules are loaded, so it may close one: the artifact
renders itself with ``handoff._markdown``, which types its argument as the artifact). The graph
of the top-level parts, every import included, has no cycle either, so each part can be read
(and tested) on top of the ones it uses.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "bridgehost"

LAYERS: list[set[str]] = [
    {"__init__", "basics", "_journald"},
    {"logging", "systemd", "config", "protocol", "state", "cost", "gateway_api"},
    {"providers", "delegation", "hookspecs", "plugins", "readiness", "invites"},
    {"codex", "handoff", "gateway", "telegram", "builtin"},
    {"cli", "_cli_common", "ctl", "demo", "testing", "mcp_server"},
]
"""The top-level parts of ``bridgehost`` by layer, lowest first (see the module docstring)."""


def module_name(path: Path) -> str:
    """``src/bridgehost/gateway/app.py`` -> ``bridgehost.gateway.app``."""
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def _import_nodes(tree: ast.Module, *, in_functions: bool) -> list[ast.stmt]:
    """The import statements of ``tree``: module level, ``if TYPE_CHECKING:`` and, when
    ``in_functions``, those inside functions too."""
    found: list[ast.stmt] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append(child)
            elif in_functions or not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                pending.append(child)
    return found


def imports_of(name: str, path: Path, known: set[str], *, in_functions: bool = True) -> set[str]:
    """The bridgehost modules ``name`` imports (inside functions too, if ``in_functions``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text()), in_functions=in_functions):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(c for c in candidates if c in known and c != name)
    return found


def graph(*, in_functions: bool = True) -> dict[str, set[str]]:
    """Module -> the bridgehost modules it imports."""
    found = modules()
    known = set(found)
    return {
        name: imports_of(name, path, known, in_functions=in_functions)
        for name, path in found.items()
    }


def part(module: str) -> str:
    """The top-level part a module belongs to (``bridgehost.gateway.app`` -> ``gateway``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(module: str) -> int:
    """The layer index of ``module``'s part."""
    name = part(module)
    for index, layer in enumerate(LAYERS):
        if name in layer:
            return index
    raise AssertionError(f"{module}: its part {name!r} has no layer; add it to LAYERS")


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_import_reader_sees_every_kind_of_import() -> None:
    edges = graph()
    assert "bridgehost.basics" in edges["bridgehost.state._db"]  # module level
    assert "bridgehost.state.bridge_store" in edges["bridgehost.handoff.outbox"]  # TYPE_CHECKING
    assert "bridgehost.handoff._markdown" in edges["bridgehost.handoff.artifact"]  # in a function
    module_level = graph(in_functions=False)
    assert "bridgehost.handoff._markdown" not in module_level["bridgehost.handoff.artifact"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_basics_imports_only_the_standard_library() -> None:
    tree = ast.parse((SRC / "basics.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    import sys

    assert imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names


def test_every_part_has_a_layer() -> None:
    for module in graph():
        layer_of(module)


def test_imports_never_point_up() -> None:
    upward = sorted(
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_import_cycle_between_modules() -> None:
    cycle = find_cycle(graph(in_functions=False))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycle_between_parts() -> None:
    parts: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph().items():
        parts[part(module)].update(part(t) for t in targets if part(t) != part(module))
    cycle = find_cycle(parts)
    assert cycle is None, "cycle between parts: " + " -> ".join(cycle or [])
