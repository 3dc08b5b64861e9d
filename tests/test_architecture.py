"""The package's layers, read from its own imports (docs/architecture.md).

Every import in nbbp — at module level or inside a function — must point down the
layers, and no group of modules may import each other in a loop. A function-level
import is allowed for laziness (``import nbbp`` stays light), never to dodge a loop:
this test counts it like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "nbbp"

# Lower numbers sit lower; a module may import its own layer or any layer below.
LAYERS = {
    "errors": 0,
    "core": 1,
    "files": 2,
    "train": 3,
    "view": 4,
    "widgets": 5,
    "model": 6,
    "build": 7, "tf1": 7, "io": 7, "importers": 7,
    "sweep": 8, "magic": 8,
    "__init__": 9, "optim": 9, "datasets": 9,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The nbbp modules that ``name`` imports, anywhere in its code."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the submodule when there is one
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:       # nbbp.x.y.Name → nbbp.x.y
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> int:
    parts = name.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    return LAYERS[key]


def test_every_module_has_a_layer():
    unknown = sorted({n.split(".")[1] for n in MODULES if n != "nbbp"} - set(LAYERS))
    assert not unknown, f"give these a layer in LAYERS and docs/architecture.md: {unknown}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down_the_layers(name):
    up = sorted(t for t in GRAPH[name] if _layer(t) > _layer(name))
    assert not up, f"{name} (layer {_layer(name)}) imports from higher layers: {up}"


def test_no_import_loops():
    # Tarjan's strongly connected components; __init__ faces that only re-export
    # their own submodules are not loops of logic, so a package may import its
    # submodules while they import siblings (never the package itself).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    loops: list[list[str]] = []
    counter = [0]

    def edges(v: str) -> set[str]:
        return {t for t in GRAPH[v] if t in GRAPH and not (v.startswith(t + "."))}

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not loops, f"import loops: {loops}"


def test_nothing_below_the_model_imports_it():
    users = sorted(n for n, deps in GRAPH.items() if "nbbp.model" in deps and _layer(n) < 6)
    assert not users, f"the model is the façade on top; these import it: {users}"
