"""The import rules of docs/architecture.md, checked on the source (every import, also those
inside functions and under ``if TYPE_CHECKING``), and the checker shown to catch a broken rule.

Layers, bottom up: the library (``photodialog`` itself: config, errors, devices, files,
checkpoints, registry, system; and ``data``, ``models``) imports no application package;
``evaluation`` imports the library; ``training`` may import ``evaluation``, never the reverse;
``serving``, ``bench`` and ``demo`` sit on top; ``cli`` may import anything.
No module imports itself back through any chain (zero cycles).

An import inside a function is there for a reason (the command line's start-up time, or a heavy
or optional library only one path needs), and a comment says which: on the line, or on the line
above the run of imports it starts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import photodialog

PACKAGE_ROOT = Path(photodialog.__file__).parent

LIBRARY = "library"
# Which layers a layer may import (itself included); every other edge breaks a rule.
ALLOWED: dict[str, set[str]] = {
    LIBRARY: {LIBRARY},
    "evaluation": {LIBRARY, "evaluation"},
    "training": {LIBRARY, "evaluation", "training"},
    "serving": {LIBRARY, "serving"},
    "bench": {LIBRARY, "evaluation", "training", "bench"},
    "demo": {LIBRARY, "evaluation", "training", "bench", "demo"},
    "cli": {LIBRARY, "evaluation", "training", "serving", "bench", "demo", "cli"},
}
APPLICATION_PACKAGES = set(ALLOWED) - {LIBRARY}


def layer_of(module: str) -> str:
    """``photodialog.training.trainer`` -> ``training``; the library's packages and top-level
    modules -> ``library``; ``photodialog.__main__`` (``python -m photodialog``) -> ``cli``."""
    parts = module.split(".")
    if parts[1:2] == ["__main__"]:
        return "cli"
    return parts[1] if len(parts) > 1 and parts[1] in APPLICATION_PACKAGES else LIBRARY


def module_names(root: Path, package: str = "photodialog") -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name (a package by its own name)."""
    names = {}
    for path in root.rglob("*.py"):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from the module's package, one level up per extra dot
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    # ``from pkg import name``: the submodule pkg.name when there is one, else pkg itself.
    return [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix for alias in node.names]


def import_graph(root: Path, package: str = "photodialog") -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its source (ast, no import runs)."""
    modules = module_names(root, package)
    known = set(modules)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported(name, path.name == "__init__.py", node, known):
                if target.split(".")[0] != package:
                    continue
                while target not in known and "." in target:  # an attribute, not a module
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    graph[name].add(target)
    return graph


def rule_violations(graph: dict[str, set[str]]) -> list[str]:
    """``"a -> b (layer x may not import layer y)"`` for every edge the layer rules forbid."""
    found = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            src, dst = layer_of(source), layer_of(target)
            if dst not in ALLOWED[src]:
                found.append(f"{source} -> {target} ({src} may not import {dst})")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# ------------------------------------------------------------ the package itself


def test_the_package_keeps_the_layer_rules():
    assert rule_violations(import_graph(PACKAGE_ROOT)) == []


def test_the_package_has_no_import_cycles():
    assert cycles(import_graph(PACKAGE_ROOT)) == []


def test_the_graph_sees_the_package():
    graph = import_graph(PACKAGE_ROOT)
    # A graph that missed imports would pass the rules trivially: these edges are known to exist.
    assert "photodialog.models.dialogue_model" in graph["photodialog.system"]
    assert "photodialog.system" in graph["photodialog.training.trainer"]
    assert any(layer_of(t) == "evaluation" for t in graph["photodialog.training.dev_eval"])


# ------------------------------------------------------------ the checker catches what it should


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_a_library_module_importing_training_inside_a_function_is_reported(tmp_path):
    root = _write(tmp_path / "photodialog", {
        "__init__.py": "",
        "system.py": "def load():\n    from photodialog.training.checkpoint import read_state\n    return read_state\n",
        "training/__init__.py": "",
        "training/checkpoint.py": "def read_state():\n    pass\n",
    })
    graph = import_graph(root)
    assert graph["photodialog.system"] == {"photodialog.training.checkpoint"}
    assert rule_violations(graph) == [
        "photodialog.system -> photodialog.training.checkpoint (library may not import training)"
    ]


def test_evaluation_importing_training_is_reported_but_the_reverse_is_allowed(tmp_path):
    root = _write(tmp_path / "photodialog", {
        "__init__.py": "",
        "evaluation/__init__.py": "",
        "evaluation/evaluate.py": "from ..training import trainer\n",
        "training/__init__.py": "",
        "training/trainer.py": "from photodialog.evaluation import evaluate\n",
    })
    assert rule_violations(import_graph(root)) == [
        "photodialog.evaluation.evaluate -> photodialog.training.trainer (evaluation may not import training)"
    ]


def test_a_cycle_hidden_under_type_checking_is_reported(tmp_path):
    root = _write(tmp_path / "photodialog", {
        "__init__.py": "",
        "evaluation/__init__.py": "",
        "evaluation/results.py": "from photodialog.evaluation.aggregate import aggregate_seeds\n",
        "evaluation/aggregate.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from photodialog.evaluation.results import SeedResult\n"
        ),
        "evaluation/tables.py": "from photodialog.evaluation import results\n",
    })
    assert rule_violations(import_graph(root)) == []
    assert cycles(import_graph(root)) == [["photodialog.evaluation.aggregate", "photodialog.evaluation.results"]]


def test_a_three_module_cycle_across_layers_is_one_component():
    graph = {
        "photodialog.system": {"photodialog.training.data"},
        "photodialog.training.data": {"photodialog.evaluation.runner"},
        "photodialog.evaluation.runner": {"photodialog.system"},
        "photodialog.config": set(),
    }
    assert cycles(graph) == [["photodialog.evaluation.runner", "photodialog.system", "photodialog.training.data"]]
    assert len(rule_violations(graph)) == 1  # only library -> training; the other two edges are allowed


# ------------------------------------------------------------ imports inside functions say why


def _commented(lines: list[str], node: ast.stmt) -> bool:
    if "#" in lines[node.lineno - 1]:
        return True
    for index in range(node.lineno - 2, -1, -1):  # up over the run of imports this one belongs to
        text = lines[index].strip()
        if text.startswith("#"):
            return True
        if not (text.startswith(("import ", "from ")) or text.endswith(("(", ",")) or text == ")"):
            return False
    return False


def uncommented_inner_imports(root: Path, package: str = "photodialog") -> list[str]:
    """``"module:line"`` of every import inside a function with no reason comment."""
    found = []
    for name, path in sorted(module_names(root, package).items()):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for function in ast.walk(ast.parse(text)):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(function):
                    if isinstance(node, (ast.Import, ast.ImportFrom)) and not _commented(lines, node):
                        found.append(f"{name}:{node.lineno}")
    return sorted(set(found))


def test_every_import_inside_a_function_says_why():
    assert uncommented_inner_imports(PACKAGE_ROOT) == []


def test_an_inner_import_without_a_reason_is_reported(tmp_path):
    root = _write(tmp_path / "photodialog", {
        "__init__.py": "",
        "a.py": (
            "def draw():\n"
            "    # torch is slow to import: only drawing needs it\n"
            "    import torch\n"
            "    from torch import nn\n"
            "    return torch, nn\n"
            "\n"
            "def plot():\n"
            "    x = 1\n"
            "    import matplotlib\n"
            "    return matplotlib, x\n"
        ),
    })
    assert uncommented_inner_imports(root) == ["photodialog.a:9"]

