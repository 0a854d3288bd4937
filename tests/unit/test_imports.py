"""The direction of imports, read from the source (no module is imported): a simulator checks a
driver only if it does not share the driver's code, so it imports protocol tables and framings
but never a driver or a device; servers and the GUI never depend on the command line or the
launcher; the core has no import circle.

Every import statement counts, those inside functions too: a circle that only a late import
keeps from failing is still a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("device_servers", "gui", "simulators", "tangolab")
COMMAND_LINE = ("tangolab.cli", "tangolab.commands", "tangolab.launcher", "tangolab.__main__")
#: The core's pure encodings (no link, no Tango), which protocol modules and simulators share.
SIMULATOR_MAY_IMPORT = tuple(
    f"device_servers.core.{name}" for name in ("framing", "errors", "limits", "spelling", "registers")
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
}


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module of `from .x import y` in `module`."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_in(module: str, source: str) -> frozenset[str]:
    """Every project module that the import statements of `module`'s source name, wherever they
    stand; `from p import m` names the module p.m when there is one, else p."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return frozenset(name for name in found if name in MODULES)


@cache
def imported_by(module: str) -> frozenset[str]:
    return imports_in(module, MODULES[module].read_text())


def loaded_with(module: str) -> list[str]:
    """A module and the packages Python runs before it (a.b.c: a, a.b)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def reaches(start: str, forbidden: Iterable[str]) -> list[str] | None:
    """The chain of imports from `start` to a forbidden module (or a module inside a forbidden
    package), if there is one: start, ..., the forbidden module."""
    forbidden = tuple(forbidden)
    parents: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        module = queue.pop(0)
        if module != start and any(module == f or module.startswith(f + ".") for f in forbidden):
            chain = [module]
            while (module := parents[module]) is not None:
                chain.append(module)
            return chain[::-1]
        for target in sorted(imported_by(module)):
            for loaded in loaded_with(target):
                if loaded in MODULES and loaded not in parents:
                    parents[loaded] = module
                    queue.append(loaded)
    return None


def in_package(package: str) -> list[str]:
    return [m for m in MODULES if m == package or m.startswith(package + ".")]


@pytest.mark.parametrize("simulator", [m for m in in_package("simulators") if m != "simulators"])
def test_a_simulator_imports_protocol_modules_and_framings_never_a_driver_or_a_device(simulator):
    """Followed through every module Python runs on the way, package `__init__` files included
    (a package that re-exports its driver would bring the driver with its protocol)."""

    def allowed(target: str) -> bool:
        last = target.rpartition(".")[2]
        return (
            target in SIMULATOR_MAY_IMPORT or last == "protocol" or last.endswith("_protocol")
            or MODULES[target].name == "__init__.py"
        )

    others = [m for m in in_package("device_servers") if not allowed(m)]
    chain = reaches(simulator, others)
    assert chain is None, (
        f"{' -> '.join(chain)}: a simulator imports only device_servers.<kind>.protocol (or <model>_protocol) "
        f"and the core's pure encodings ({', '.join(SIMULATOR_MAY_IMPORT)}), never a driver or a device"
    )


def test_the_gui_imports_nothing_of_the_command_line_or_the_launcher():
    chains = [chain for module in in_package("gui") if (chain := reaches(module, COMMAND_LINE))]
    assert not chains, "gui/ reaches the command line: " + "; ".join(" -> ".join(c) for c in chains)


def test_servers_never_import_the_launcher_the_command_line_or_the_gui():
    chains = [chain for module in in_package("device_servers") if (chain := reaches(module, (*COMMAND_LINE, "gui")))]
    assert not chains, "a server reaches a client: " + "; ".join(" -> ".join(c) for c in chains)


def circles(modules: list[str], edges: Callable[[str], Iterable[str]] = imported_by) -> list[list[str]]:
    """The import circles among `modules`: strongly connected groups of more than one (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in edges(module):
            if target not in modules:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while (member := stack.pop()) != module:
                group.append(member)
            group.append(module)
            if len(group) > 1 or module in edges(module):
                found.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_the_core_has_no_import_circle():
    found = circles(in_package("device_servers.core"))
    assert not found, "import circles in device_servers/core: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_checks_see_what_they_look_for():
    """The graph is read right: relative imports resolved, late ones counted, a circle is a circle."""
    late = "from . import schema\nfrom .registry import Registry\ndef f():\n    import tangolab.launcher\n"
    assert imports_in("tangolab.archive.writing", late) == {
        "tangolab.archive.schema", "tangolab.archive.registry", "tangolab.launcher"}
    assert reaches("tangolab.cli", ["tangolab.commands"]) == ["tangolab.cli", "tangolab.commands"]
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(["a", "b", "c", "d"], graph.__getitem__) == [["a", "b", "c"]]
    assert circles(["a", "b", "d"], graph.__getitem__) == []
