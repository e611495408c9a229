"""The package layout is the architecture (docs/design.md, "Layout"): each concern imports only
the concerns below it, and nothing reaches into another module's private names.

Every import statement counts: at module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "optieval"

# Lowest first. A module may import modules of its own concern and of concerns ranked strictly
# below it; concerns of equal rank are independent of each other.
LAYERS: dict[str, int] = {
    "errors": 0,
    "version": 0,
    "compat": 0,
    "core": 1,
    "assets": 2,
    "stats": 2,
    "source": 3,
    "precision": 4,
    "runtime": 5,
    "execution": 6,
    "export": 7,
    "bench": 8,
    "parity": 9,
    "detection": 10,
    "release": 11,
    "cli": 12,
}
# The package root and ``python -m optieval`` sit above everything.
TOP = {"optieval", "optieval.__main__"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _concern(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_alias(path: Path) -> bool:
    """A deprecated alias kept for one release (optieval.compat): it forwards by name."""
    return "optieval.compat" in path.read_text() and "deprecated_alias" in path.read_text()


def _imports(name: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every optieval import in a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "optieval":
                continue
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                if submodule in MODULES:
                    found.append((submodule, None, node.lineno))
                else:
                    found.append((module, alias.name, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "optieval":
                    found.append((alias.name, None, node.lineno))
    return found


def test_every_module_belongs_to_a_known_concern() -> None:
    unknown = sorted({_concern(m) for m in MODULES if m not in TOP and _concern(m) not in LAYERS})
    assert unknown == [], f"add these concerns to LAYERS (and docs/design.md): {unknown}"


def test_concerns_import_only_concerns_below_them() -> None:
    violations = []
    for name, path in MODULES.items():
        if name in TOP or _is_alias(path):
            continue
        own = _concern(name)
        for target, _, line in _imports(name, path):
            other = _concern(target)
            if other == own or target == "optieval.__main__":
                continue
            if target == "optieval" or LAYERS.get(other, 99) >= LAYERS[own]:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {own} -> {target}")
    assert violations == [], "imports against the layering:\n" + "\n".join(violations)


def test_no_private_names_across_modules() -> None:
    violations = []
    for name, path in MODULES.items():
        for target, imported, line in _imports(name, path):
            private_module = any(
                part.startswith("_") and not part.startswith("__") for part in target.split(".")
            )
            private_name = (
                imported is not None and imported.startswith("_") and not imported.startswith("__")
            )
            if target != name and (private_name or private_module):
                shown = f"{target}.{imported}" if imported else target
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {shown}")
    assert violations == [], "private names used from another module:\n" + "\n".join(violations)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        # A package's __init__ re-exports its modules by name; that is a table, not a dependency.
        if path.name == "__init__.py" or name in TOP:
            continue
        for target, _, _ in _imports(name, path):
            if target in MODULES and target != name and MODULES[target].name != "__init__.py":
                graph[name].add(target)
    cycles = _cycles(graph)
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("concern", sorted(c for c in LAYERS if (PACKAGE / c).is_dir()))
def test_each_concern_declares_its_public_surface(concern: str) -> None:
    init = PACKAGE / concern / "__init__.py"
    tree = ast.parse(init.read_text())
    assert ast.get_docstring(tree), f"optieval/{concern}/__init__.py needs a docstring"
    names = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    ]
    assert names, f"optieval/{concern}/__init__.py must list its public names in __all__"


def test_long_modules_say_why() -> None:
    long = []
    for name, path in MODULES.items():
        lines = path.read_text().count("\n")
        if lines > 600 and "Why this module is long" not in path.read_text():
            long.append(f"{name} ({lines} lines)")
    assert long == [], "split these, or say at the top why they are long: " + ", ".join(long)


def test_other_concerns_use_a_concerns_public_surface() -> None:
    """Across concerns, import names from the concern's package (``from optieval.parity import
    compare``), never from its modules: everything but the ``__all__`` of a concern's
    ``__init__`` is private to it."""
    violations = []
    for name, path in MODULES.items():
        if name in TOP or _is_alias(path):
            continue
        own = _concern(name)
        for target, imported, line in _imports(name, path):
            other = _concern(target)
            if other == own or other in ("errors", "version") or target == "optieval":
                continue
            package = f"optieval.{other}"
            exported = _public_names(package)
            if target != package or imported is None or imported not in exported:
                shown = f"{target}.{imported}" if imported else target
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {shown}")
    assert violations == [], "import these through their package:\n" + "\n".join(violations)


def _public_names(package: str) -> set[str]:
    path = MODULES.get(package)
    if path is None or path.name != "__init__.py":
        return set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in ("__all__", "_EXPORTS") for t in node.targets
        ):
            try:
                return set(ast.literal_eval(node.value))
            except ValueError:
                continue
    return set()
