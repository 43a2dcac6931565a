"""Every public class and function of the core packages says what it is; no docstring sends the
reader to a file outside the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import photodialog

PACKAGE_ROOT = Path(photodialog.__file__).parent
DOCUMENTED = ["system.py", "models", "data", "training"]
OUTSIDE_FILES = re.compile(r"DESIGN\.md|design (file|doc|brief)", re.IGNORECASE)


def _sources(root: Path) -> list[Path]:
    files = []
    for name in DOCUMENTED:
        path = root / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def undocumented(files: list[Path], root: Path) -> list[str]:
    """``"file:line name"`` of every public class, function or method without a docstring."""
    missing = []

    def visit(nodes, path, prefix):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if not ast.get_docstring(node):
                    missing.append(f"{path.relative_to(root)}:{node.lineno} {prefix}{node.name}")
                if isinstance(node, ast.ClassDef):
                    visit(node.body, path, f"{prefix}{node.name}.")

    for path in files:
        visit(ast.parse(path.read_text(encoding="utf-8")).body, path, "")
    return missing


def test_every_public_class_and_function_has_a_docstring():
    assert undocumented(_sources(PACKAGE_ROOT), PACKAGE_ROOT) == []


def test_no_docstring_points_outside_the_repository():
    cited = [str(p.relative_to(PACKAGE_ROOT)) for p in PACKAGE_ROOT.rglob("*.py") if OUTSIDE_FILES.search(p.read_text(encoding="utf-8"))]
    assert cited == []


def test_the_check_finds_a_missing_docstring(tmp_path):
    source = tmp_path / "m.py"
    source.write_text('class A:\n    """An A."""\n\n    def run(self):\n        pass\n\n    def _hidden(self):\n        pass\n', encoding="utf-8")
    assert undocumented([source], tmp_path) == ["m.py:4 A.run"]
