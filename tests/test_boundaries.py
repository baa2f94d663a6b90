"""The product does not lean on the lab: nothing in app/, model/ or training/ imports the
benchmarks, the experiments or the behaviour suite; and the lab and the tests reach the product
through its public names only: none of them replaces a private attribute. Both read from each
module's syntax tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("app", "model", "training")
LAB = {"benchmarks", "experiments", "behaviour"}
OUTSIDE = ("tests", "benchmarks", "experiments", "behaviour")


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


def _is_private(name: str) -> bool:
    """An underscore-prefixed name that is not a dunder (``__doc__`` is public)."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _reaches_private(target: ast.expr) -> bool:
    """Whether ``a.b[k].c`` passes through a private attribute of something other than ``self``
    or ``cls`` (an object's own privates are its business)."""
    names = []
    while isinstance(target, ast.Attribute | ast.Subscript):
        if isinstance(target, ast.Attribute):
            names.append(target.attr)
        target = target.value
    names.reverse()
    if isinstance(target, ast.Name) and target.id in {"self", "cls"}:
        names = names[1:]
    return any(map(_is_private, names))


def _stored(target: ast.expr) -> list[ast.expr]:
    """The attribute and item targets of an assignment, unpacking included."""
    if isinstance(target, ast.Tuple | ast.List):
        return [inner for element in target.elts for inner in _stored(element)]
    if isinstance(target, ast.Starred):
        return _stored(target.value)
    return [target] if isinstance(target, ast.Attribute | ast.Subscript) else []


def _patches_private(call: ast.Call) -> bool:
    """``monkeypatch.setattr(x, "_a", …)``, ``patch.object(x, "_a", …)``, ``setattr(x, "_a", …)``
    (and ``delattr``), or the dotted-string forms ``monkeypatch.setattr("m._a", …)`` and
    ``patch("m._a")``; ``x`` itself must not reach a private either."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    strings = [
        arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
        for arg in call.args
    ]
    if name in {"setattr", "delattr", "object"} and len(strings) >= 2 and strings[1] is not None:
        return _reaches_private(ast.Attribute(call.args[0], strings[1], ast.Store()))
    if name in {"setattr", "delattr", "patch"} and strings and strings[0] and "." in strings[0]:
        return any(map(_is_private, strings[0].split(".")))
    return False


def private_patches(source: str) -> list[int]:
    """The lines of ``source`` that assign, patch or delete a private attribute of another object
    (an instance's or a module's alike: no test needs to replace either)."""
    lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            if any(_reaches_private(stored) for target in targets for stored in _stored(target)):
                lines.add(node.lineno)
        elif isinstance(node, ast.Call) and _patches_private(node):
            lines.add(node.lineno)
    return sorted(lines)


def test_private_patches_are_found_in_every_form() -> None:
    source = "\n".join(
        [
            "service.batcher._on_batch = lambda size, seconds: None",
            "log._handler.emit = lambda record: None",
            "monkeypatch.setattr(service.batcher, '_on_batch', print)",
            "with patch.object(PredictionLog, '_writer'): pass",
            "monkeypatch.setattr('app.store._load', print)",
            "setattr(store, '_model', None); a, store._model = 1, 2",
            "@patch('app.service.SentimentService._observe_batch')",
            "def f(): del store._model",
            "monkeypatch.setattr(log._handler, 'emit', print)",
            # allowed: an object's own privates, public names, dunders
            "self._cache = {}; cls._count += 1; store.model = None; setattr(self, '_seen', 1)",
            "monkeypatch.setattr(ngram, 'CHUNK', 7); patch.object(LoadedModel, 'infer')",
            "f.__doc__ = 'x'; setattr(f, 'name', 1); patch('app.service.predict')",
        ]
    )
    assert private_patches(source) == list(range(1, 10))


@pytest.mark.parametrize("folder", OUTSIDE)
def test_nothing_outside_the_product_replaces_its_private_attributes(folder: str) -> None:
    modules = sorted((ROOT / folder).rglob("*.py"))
    assert modules, f"no modules under {folder}/"
    found = {
        str(path.relative_to(ROOT)): private_patches(path.read_text(encoding="utf-8")) for path in modules
    }
    assert {path: lines for path, lines in found.items() if lines} == {}
