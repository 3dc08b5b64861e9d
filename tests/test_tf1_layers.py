"""nbbp.tf1 is a front end on nbbp's core: ``import nbbp`` does not load it, and its
own modules import one way (no cycles, no imports hidden inside functions)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbbp.tf1

TF1 = Path(nbbp.tf1.__file__).parent


def _imports() -> dict[str, tuple[set[str], list[str]]]:
    """Module → (tf1 modules it imports at the top, imports inside functions)."""
    out = {}
    for path in sorted(TF1.glob("*.py")):
        tree = ast.parse(path.read_text())
        top = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                top.update([node.module] if node.module else [a.name for a in node.names])
        inner = [f"{path.stem}:{n.lineno}" for f in ast.walk(tree)
                 if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for n in ast.walk(f) if isinstance(n, ast.ImportFrom) and n.level == 1]
        out[path.stem] = (top, inner)
    return out


def test_tf1_modules_import_one_way():
    graph = {m: top for m, (top, _) in _imports().items()}
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        assert m not in path, "import cycle: " + " → ".join(path + [m])
        if m in done:
            return
        for dep in graph.get(m, ()):
            visit(dep, path + [m])
        done.add(m)

    for m in graph:
        visit(m, [])
    assert [i for _, inner in _imports().values() for i in inner] == []


def test_import_nbbp_does_not_load_tf1():
    code = "import sys, nbbp; print('nbbp.tf1' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
