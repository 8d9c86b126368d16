"""docs/troubleshooting.md has an entry for every error code the code can produce.

The codes are read from the source itself, by walking the AST of ``src/bridgehost``:

* ``ApiError(status, code, message)`` and ``error_response(status, code, message)`` (HTTP);
* ``raw_error_response(status, reason, code, message)`` (answers written straight to a socket);
* domain refusals ``BridgeNotConnected(message)`` (classes of ``gateway/domain_errors.py`` with
  a ``code`` and maybe a ``default_message``; their status is ``DOMAIN_STATUS`` of
  ``gateway/errors.py``); ``EndReason.X.value`` stands for the end reason's value;
* ``(code, message)`` tuples of literals and ``code = "..."`` assignments in the gateway;
* ``{"type": "error", "code": ..., "message": ...}`` frames the gateway sends on a socket;
* WebSocket close reasons ``socket.close(code=4xxx, message=b"...")`` in the gateway;
* ``call.error`` event codes built by the realtime backends;
* ``CtlError(...)``/``GatewayApiError(...)`` codes that ``bridgectl --json`` prints, and the
  default codes of those classes;
* ``f"init_data_{exc.reason}"``, expanded with every reason of ``gateway/initdata.py``.

Each code needs a ``### `code` `` heading under ``## Error codes``; every fixed message the code
has (a string or f-string literal) must be quoted in that entry as a ``> `` line (f-string
parts may be shown as ``<placeholder>``), and every HTTP status it is raised with must be named
(``HTTP 410``). No entry may name a code the source no longer produces.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]
SRC = ROOT / "src" / "bridgehost"
DOC = ROOT / "docs" / "troubleshooting.md"

CODE_RE = re.compile(r"[a-z][a-z0-9_]*")
HEADING_RE = re.compile(r"^### `([^`]+)`\s*$", re.MULTILINE)
SERVER_ERRORS = {
    "ApiError": (0, 1, 2),
    "error_response": (0, 1, 2),
    "raw_error_response": (0, 2, 3),
}
"""Gateway error constructors: positions of status, code and message."""
CLIENT_ERRORS = frozenset({"CtlError", "CodexUnavailable", "GatewayApiError"})
"""bridgectl's error types: ``code=`` keyword, message first."""
DYNAMIC_PREFIXES = {"init_data_": ("gateway/initdata.py", "_MESSAGES")}
"""f-string codes and the module-level dict (reason -> message) that completes them."""


def _end_reasons() -> dict[str, str]:
    """``EndReason`` member name -> value, from ``protocol/end_reasons.py``."""
    tree = ast.parse((SRC / "protocol" / "end_reasons.py").read_text())
    members: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "EndReason":
            for item in node.body:
                if (
                    isinstance(item, ast.Assign)
                    and isinstance(item.value, ast.Tuple)
                    and isinstance(target := item.targets[0], ast.Name)
                    and (value := _text(item.value.elts[0])) is not None
                ):
                    members[target.id] = value
    return members


@dataclass(frozen=True)
class Site:
    """One place in the source that produces an error code."""

    code: str
    where: str
    message: re.Pattern[str] | None = None
    status: int | None = None


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _argument(node: ast.Call, position: int, keyword: str) -> ast.expr | None:
    """The argument at ``position`` (or passed as ``keyword``); None behind a ``*args``.

    Codes passed as ``*PAIR`` are found through the ``(code, message)`` tuple itself.
    """
    if len(node.args) > position and not any(
        isinstance(arg, ast.Starred) for arg in node.args[: position + 1]
    ):
        return node.args[position]
    return next((kw.value for kw in node.keywords if kw.arg == keyword), None)


def _text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def message_pattern(node: ast.expr | None) -> re.Pattern[str] | None:
    """A pattern for a literal message: exact text, or an f-string with its holes as ``.+``."""
    if (text := _text(node)) is not None:
        return re.compile(re.escape(text))
    if isinstance(node, ast.JoinedStr):
        parts = [
            re.escape(value.value)
            if isinstance(value, ast.Constant) and isinstance(value.value, str)
            else "(.+?)"
            for value in node.values
        ]
        return re.compile("".join(parts))
    return None


def _module_dict(relative: str, name: str) -> dict[str, str]:
    tree = ast.parse((SRC / relative).read_text())
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            assert isinstance(value, ast.Dict), f"{relative}: {name} is not a dict literal"
            return {
                key.value: ast.literal_eval(val)
                for key, val in zip(value.keys, value.values, strict=True)
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            }
    raise AssertionError(f"{relative} has no {name}")


def _constants() -> dict[str, set[str]]:
    """Module-level ``NAME = "literal"`` assignments under ``src/bridgehost``, by name."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and (text := _text(node.value)) is not None:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id].add(text)
    return dict(found)


def _local_names(tree: ast.Module) -> set[str]:
    """Names bound inside the module's functions: parameters and assigned variables."""
    names: set[str] = set()
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = func.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            names.update(a.arg for a in every)
            for node in ast.walk(func):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
    return names


CONSTANTS = _constants()


def _codes(node: ast.expr | None, where: str) -> list[tuple[str, re.Pattern[str] | None]]:
    """The code(s) an expression stands for, each with its fixed message if it has one.

    A module-level constant (``COST_CAP_REASON``) stands for its value. A name bound inside a
    function (a parameter of a wrapper, a local variable) is followed elsewhere: through the
    wrapper's callers or the variable's ``code = ...`` assignment.
    """
    if (text := _text(node)) is not None:
        return [(text, None)]
    if isinstance(node, ast.Attribute) and node.attr == "value":
        node = node.value
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "EndReason"
    ):
        return [(END_REASONS[node.attr], None)]
    if isinstance(node, ast.Name | ast.Attribute):
        name = node.id if isinstance(node, ast.Name) else node.attr
        if name in CONSTANTS:
            return [(value, None) for value in sorted(CONSTANTS[name])]
        return []
    if isinstance(node, ast.IfExp):
        return _codes(node.body, where) + _codes(node.orelse, where)
    if isinstance(node, ast.JoinedStr) and node.values:
        prefix = _text(node.values[0]) or ""
        assert prefix in DYNAMIC_PREFIXES, (
            f"{where}: an error code built at run time ({ast.unparse(node)}); add its prefix "
            "and the table of its values to DYNAMIC_PREFIXES"
        )
        table = _module_dict(*DYNAMIC_PREFIXES[prefix])
        return [(prefix + key, re.compile(re.escape(msg))) for key, msg in table.items()]
    return []


def _domain_errors() -> dict[str, tuple[ast.expr, ast.expr | None, int | None]]:
    """Domain refusal class -> (its ``code``, its ``default_message``, its HTTP status)."""
    statuses: dict[str, int] = {}
    for node in ast.walk(ast.parse((SRC / "gateway" / "errors.py").read_text())):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "DOMAIN_STATUS"
            and isinstance(node.value, ast.Dict)
        ):
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if isinstance(key, ast.Name) and isinstance(value, ast.Constant):
                    statuses[key.id] = int(value.value)
    assert statuses, "gateway/errors.py has no DOMAIN_STATUS table"
    found: dict[str, tuple[ast.expr, ast.expr | None, int | None]] = {}
    tree = ast.parse((SRC / "gateway" / "domain_errors.py").read_text())
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        fields = {
            target.id: item.value
            for item in node.body
            if isinstance(item, ast.Assign)
            for target in item.targets
            if isinstance(target, ast.Name)
        }
        if "code" in fields:
            assert node.name in statuses, f"{node.name} has no status in DOMAIN_STATUS"
            found[node.name] = (fields["code"], fields.get("default_message"), statuses[node.name])
    return found


END_REASONS = _end_reasons()
DOMAIN_ERRORS = _domain_errors()


def _call_error_builders(tree: ast.Module) -> dict[str, list[int]]:
    """Functions returning a ``{"type": "call.error", "code": ...}`` dict: code parameters."""
    builders: dict[str, list[int]] = {}
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Dict) and _dict_get(node, "type") == "call.error":
                names = [a.arg for a in func.args.args]
                builders[func.name] = [i for i, n in enumerate(names) if "code" in n]
    return builders


def _wrappers(tree: ast.Module) -> dict[str, tuple[int, int | None]]:
    """Local helpers that pass their own parameters on as an error's code (and message).

    ``def fail(message, exit_code, code): return CtlError(message, code=code)`` maps to
    ``{"fail": (2, 0)}``: positions of the code and the message among its parameters.
    """
    wrappers: dict[str, tuple[int, int | None]] = {}
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        params = [a.arg for a in func.args.args]
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if name in SERVER_ERRORS:
                code = _argument(node, SERVER_ERRORS[name][1], "code")
                message = _argument(node, SERVER_ERRORS[name][2], "message")
            elif name in CLIENT_ERRORS:
                code, message = _argument(node, 99, "code"), _argument(node, 0, "message")
            else:
                continue
            if isinstance(code, ast.Name) and code.id in params:
                at_message = (
                    params.index(message.id)
                    if isinstance(message, ast.Name) and message.id in params
                    else None
                )
                wrappers[func.name] = (params.index(code.id), at_message)
    return wrappers


def _dict_get(node: ast.Dict, key: str) -> str | None:
    for k, v in zip(node.keys, node.values, strict=True):
        if _text(k) == key:
            return _text(v)
    return None


def _dict_value(node: ast.Dict, key: str) -> ast.expr | None:
    return next((v for k, v in zip(node.keys, node.values, strict=True) if _text(k) == key), None)


def _sites_in(path: Path) -> list[Site]:
    relative = path.relative_to(SRC).as_posix()
    in_gateway = relative.startswith("gateway/")
    names_codes = in_gateway or relative.startswith("ctl/") or relative == "gateway_api.py"
    tree = ast.parse(path.read_text())
    builders = _call_error_builders(tree)
    wrappers = _wrappers(tree)
    local_names = _local_names(tree)
    sites: list[Site] = []

    def add(
        code_node: ast.expr | None,
        line: int,
        message: ast.expr | None = None,
        status: ast.expr | None = None,
    ) -> None:
        where = f"{relative}:{line}"
        if isinstance(code_node, ast.Name) and code_node.id not in CONSTANTS:
            assert code_node.id in local_names, (
                f"{where}: cannot tell which error code {code_node.id} stands for; teach "
                "tests/docs/test_docs_troubleshooting.py"
            )
        fixed = message_pattern(message)
        number = status.value if isinstance(status, ast.Constant) else None
        number = number if isinstance(number, int) else None
        for code, table_message in _codes(code_node, where):
            sites.append(Site(code, where, table_message or fixed, number))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name in SERVER_ERRORS:
                at_status, at_code, at_message = SERVER_ERRORS[name]
                add(
                    _argument(node, at_code, "code"),
                    node.lineno,
                    _argument(node, at_message, "message"),
                    _argument(node, at_status, "status"),
                )
            elif name in CLIENT_ERRORS:
                add(_argument(node, 99, "code"), node.lineno, _argument(node, 0, "message"))
            elif name in DOMAIN_ERRORS:
                code_node, default, status = DOMAIN_ERRORS[name]
                message = _argument(node, 0, "message") or default
                add(code_node, node.lineno, message, ast.Constant(status))
            elif name in wrappers:
                at_wrapped, at_text = wrappers[name]
                text = None if at_text is None else _argument(node, at_text, "message")
                add(_argument(node, at_wrapped, "code"), node.lineno, text)
            elif name in builders:
                for position in builders[name]:
                    add(_argument(node, position, "code"), node.lineno)
            elif in_gateway and name == "close":
                reason = next((kw.value for kw in node.keywords if kw.arg == "message"), None)
                if isinstance(reason, ast.Constant) and isinstance(reason.value, bytes):
                    closed = reason.value.decode()
                    if CODE_RE.fullmatch(closed):
                        sites.append(Site(closed, f"{relative}:{node.lineno}"))
        elif isinstance(node, ast.Dict) and in_gateway and _dict_get(node, "type") == "error":
            add(_dict_value(node, "code"), node.lineno, _dict_value(node, "message"))
        elif isinstance(node, ast.Assign) and names_codes:
            if any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets):
                add(node.value, node.lineno)
        elif isinstance(node, ast.FunctionDef) and node.name == "__init__":
            defaults = zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
            for arg, default in defaults:
                if arg.arg == "code" and default is not None:
                    add(default, node.lineno)
    if in_gateway:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Tuple)
                and len(node.elts) == 2
                and (code := _text(node.elts[0])) is not None
                and CODE_RE.fullmatch(code)
                and " " in (_text(node.elts[1]) or "")
            ):
                add(node.elts[0], node.lineno, node.elts[1])
    return sites


def collect_sites() -> dict[str, list[Site]]:
    """Every error code under ``src/bridgehost`` with the places that produce it."""
    found: dict[str, list[Site]] = defaultdict(list)
    for path in sorted(SRC.rglob("*.py")):
        for site in _sites_in(path):
            found[site.code].append(site)
    return dict(found)


def doc_entries() -> dict[str, str]:
    """``code -> entry text`` for every ``### `code` `` heading under ``## Error codes``."""
    text = DOC.read_text()
    start = text.index("\n## Error codes")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    matches = list(HEADING_RE.finditer(section))
    entries = {}
    for index, match in enumerate(matches):
        stop = matches[index + 1].start() if index + 1 < len(matches) else len(section)
        entries[match.group(1)] = section[match.end() : stop]
    return entries


def _quoted(entry: str) -> list[str]:
    return [line[2:].strip() for line in entry.splitlines() if line.startswith("> ")]


def test_the_collector_finds_the_codes_it_is_meant_to_find() -> None:
    codes = collect_sites()
    for known in (
        "launch_expired",
        "init_data_stale",
        "init_data_bad_hash",
        "malformed_json",
        "method_not_allowed",
        "internal_error",
        "bridge_not_connected",
        "bad_message",
        "auth_timeout",
        "transcription_failed",
        "no_secret",
        "unreachable",
        "too_many_connections",
        "daily_cost_cap",
    ):
        assert known in codes, f"the collector no longer finds {known!r}"
    assert all(CODE_RE.fullmatch(code) for code in codes), sorted(codes)


def test_every_error_code_has_an_entry() -> None:
    entries = doc_entries()
    missing = {
        code: [site.where for site in sites]
        for code, sites in sorted(collect_sites().items())
        if code not in entries
    }
    assert not missing, (
        "docs/troubleshooting.md has no '### `code`' entry under '## Error codes' for: "
        + "; ".join(f"{code} ({', '.join(where)})" for code, where in missing.items())
    )


def test_no_entry_for_a_code_that_is_gone() -> None:
    stale = sorted(set(doc_entries()) - set(collect_sites()))
    assert not stale, f"docs/troubleshooting.md documents codes nothing produces: {stale}"


def test_entries_quote_the_exact_messages() -> None:
    entries = doc_entries()
    wrong = []
    for code, sites in sorted(collect_sites().items()):
        quoted = _quoted(entries.get(code, ""))
        for site in sites:
            if site.message is not None and not any(site.message.fullmatch(q) for q in quoted):
                wrong.append(
                    f"{code}: no '> ' line matches /{site.message.pattern}/ ({site.where})"
                )
    assert not wrong, "docs/troubleshooting.md quotes other messages:\n" + "\n".join(wrong)


def test_entries_name_their_http_status() -> None:
    entries = doc_entries()
    wrong = [
        f"{code}: HTTP {site.status} ({site.where})"
        for code, sites in sorted(collect_sites().items())
        for site in sites
        if site.status is not None and f"HTTP {site.status}" not in entries.get(code, "")
    ]
    assert not wrong, "docs/troubleshooting.md does not name these statuses:\n" + "\n".join(wrong)


def test_every_entry_has_a_fix() -> None:
    entries = doc_entries()
    without = [code for code, entry in entries.items() if "**Fix:**" not in entry]
    assert not without, f"entries without a '**Fix:**' paragraph: {without}"


def test_message_patterns_accept_placeholders() -> None:
    pattern = message_pattern(ast.parse('f"Too many ({which} limit)."', mode="eval").body)
    assert pattern is not None
    assert pattern.fullmatch("Too many (<which> limit).")
    assert not pattern.fullmatch("Too many attempts.")


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    slugs = set()
    for heading in re.findall(r"^#+ (.+)$", path.read_text(), re.MULTILINE):
        text = heading.strip().lower().replace("`", "")
        slugs.add(re.sub(r"[^a-z0-9_ -]", "", text).replace(" ", "-"))
    return slugs


def test_links_between_the_guides_resolve() -> None:
    broken = []
    for name in ("getting-started.md", "troubleshooting.md", "security.md"):
        page = ROOT / "docs" / name
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part) if file_part else page
            if not linked.exists():
                broken.append(f"{name}: {target} (no such file)")
            elif anchor and anchor not in _anchors(linked):
                broken.append(f"{name}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)
