"""nbbp.tf1 is a front end on nbbp's core: ``import nbbp`` does not load it, and its
own modules import at the top, never inside functions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbbp.tf1

TF1 = Path(nbbp.tf1.__file__).parent


def test_tf1_imports_nothing_inside_functions():
    """Import loops anywhere in nbbp are tests/test_architecture.py's; tf1 also keeps
    every import of its own modules at the top, where a reader sees its layering."""
    inner = [f"{path.stem}:{n.lineno}" for path in sorted(TF1.glob("*.py"))
             for f in ast.walk(ast.parse(path.read_text()))
             if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if isinstance(n, ast.ImportFrom) and n.level == 1]
    assert inner == []


def test_import_nbbp_does_not_load_tf1():
    code = "import sys, nbbp; print('nbbp.tf1' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
