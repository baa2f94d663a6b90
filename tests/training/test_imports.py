"""The pipeline's modules import each other in one direction, at the top of the module, and no
checkpoint is unpickled: read from each module's syntax tree and source."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN = ("training", "model")


def module_name(path: Path) -> str:
    """``training/loop.py`` -> ``training.loop``."""
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def project_imports(tree: ast.AST, top_level_only: bool) -> set[str]:
    """The project modules (``training.*``, ``model.*``) a syntax tree imports; ``from training
    import loop`` names ``training.loop``."""
    nodes = ast.iter_child_nodes(tree) if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.startswith(OWN)}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(OWN):
            names |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    return names


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports, anywhere in its source."""
    modules = {module_name(path): path for path in (ROOT / package).rglob("*.py")}
    return {
        name: {
            imported
            for imported in project_imports(ast.parse(path.read_text(encoding="utf-8")), top_level_only=False)
            if imported in modules and imported != name
        }
        for name, path in modules.items()
    }


def import_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` (its modules in order), or [] when there is none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return error.args[1]
    return []


def test_the_graph_sees_an_import_inside_a_function() -> None:
    tree = ast.parse("import os\nfrom training import loop\ndef f():\n    from training.train import run\n")
    assert project_imports(tree, top_level_only=True) == {"training", "training.loop"}
    assert project_imports(tree, top_level_only=False) == {
        "training",
        "training.loop",
        "training.train",
        "training.train.run",
    }


@pytest.mark.parametrize("package", ["training", "model"])
def test_no_import_cycles(package: str) -> None:
    assert import_cycle(import_graph(package)) == []


def test_a_cycle_is_found() -> None:
    cycle = import_cycle({"training.train": {"training.pretrain"}, "training.pretrain": {"training.train"}})
    assert set(cycle) == {"training.train", "training.pretrain"}


@pytest.mark.parametrize("package", ["training", "model"])
def test_project_modules_are_imported_at_the_top(package: str) -> None:
    """An import inside a function can hide a cycle; third-party ones (gensim) may stay there."""
    hidden = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        everywhere = project_imports(tree, top_level_only=False)
        inside = everywhere - project_imports(tree, top_level_only=True)
        if inside:
            hidden[module_name(path)] = sorted(inside)
    assert hidden == {}


def test_no_checkpoint_is_unpickled() -> None:
    """``torch.load`` must not run arbitrary pickled code: ``weights_only=True`` everywhere."""
    found = []
    for folder in ("app", "model", "training", "tests", "benchmarks", "experiments"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("torch.load"):
                    keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                    if keywords.get("weights_only") != "True":
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
