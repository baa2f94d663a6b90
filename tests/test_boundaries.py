"""The product does not lean on the lab: nothing in app/, model/ or training/ imports the
benchmarks (or the experiments, once they exist), read from each module's syntax tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("app", "model", "training")
LAB = {"benchmarks", "experiments", "behaviour"}


def imported_packages(source: str) -> set[str]:
    """The top-level package of every import in ``source``, wherever it sits (a function body
    too); relative imports stay inside their own package and are left out."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_imports_are_read_anywhere_in_a_module() -> None:
    source = "\n".join(
        [
            "import os",
            "from benchmarks.service import x",
            "def f():",
            "    import experiments.a as b",
            "from . import y",
        ]
    )
    assert imported_packages(source) == {"os", "benchmarks", "experiments"}


@pytest.mark.parametrize("package", PRODUCT)
def test_the_product_never_imports_the_lab(package: str) -> None:
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"no modules under {package}/"
    leaks = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path.read_text(encoding="utf-8")) & LAB)
        for path in modules
    }
    assert {path: lab for path, lab in leaks.items() if lab} == {}
