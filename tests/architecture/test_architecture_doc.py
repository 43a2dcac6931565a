"""docs/architecture.md lists every module (generated from the docstrings), shows the registries as
they are, and every file it names exists. Run this file to regenerate the module list."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import photodialog
from photodialog import registry

PACKAGE_ROOT = Path(photodialog.__file__).parent
REPO = PACKAGE_ROOT.parents[1]
DOC = REPO / "docs" / "architecture.md"
TABLE = re.compile(r"<!-- registry table:[^>]*-->\n(.*?)<!-- end of registry table -->", re.DOTALL)


MODULES = re.compile(r"(<!-- module list: generated[^>]*-->\n)(.*?)(<!-- end of module list -->)", re.DOTALL)
# The packages in the order of the layers (tests/architecture/test_import_layers.py), bottom up.
LIBRARY = ("", "data", "data/download", "data/synth", "models")
APPLICATIONS = ("evaluation", "training", "serving", "bench", "demo", "cli", "cli/data")


def first_paragraph(path: Path) -> str:
    """A module's docstring up to its first blank line, on one line (``|`` escaped for a table)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("|", "\\|")


def module_list() -> str:
    """The doc's module list: a table per package, the layers' order, each module's first paragraph."""
    packages = {p.parent.relative_to(PACKAGE_ROOT).as_posix().replace(".", "") for p in PACKAGE_ROOT.rglob("*.py")}
    unplaced = sorted(packages - set(LIBRARY) - set(APPLICATIONS))
    assert unplaced == [], f"place these packages in LIBRARY or APPLICATIONS: {unplaced}"
    lines = []
    for heading, group in (("### The library", LIBRARY), ("### Applications on top", APPLICATIONS)):
        lines += [heading, ""]
        for package in group:
            folder = PACKAGE_ROOT / package
            title = f"**`photodialog{'/' + package if package else ''}`**"
            if package:
                title += f": {first_paragraph(folder / '__init__.py')}"
            lines += [title, "", "| module | what it is |", "| --- | --- |"]
            for path in sorted(folder.glob("*.py")):
                if path.name != "__init__.py" or not package:
                    lines.append(f"| `{path.relative_to(PACKAGE_ROOT).as_posix()}` | {first_paragraph(path)} |")
            lines.append("")
    return "\n".join(lines)


def test_the_module_list_is_generated_from_the_docstrings():
    found = MODULES.search(DOC.read_text(encoding="utf-8"))
    assert found, "docs/architecture.md lost its module list markers"
    assert found.group(2) == module_list(), "run `python tests/architecture/test_architecture_doc.py` to regenerate it"


def test_the_registry_table_is_the_registry():
    found = TABLE.search(DOC.read_text(encoding="utf-8"))
    assert found, "docs/architecture.md lost its registry table markers"
    assert found.group(1) == registry.markdown(), "run `python -m photodialog.registry` and paste its table"


def test_every_file_the_doc_names_exists():
    text = DOC.read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:src/photodialog|tests|docs|configs|scripts)/[^`<>*\s]+)`", text))
    assert paths, "the doc names no file: the pattern is wrong"
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert missing == []


def test_every_module_the_doc_lists_exists():
    rows = re.findall(r"^\| `([\w/]+\.py)` \|", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert rows, "the module tables are gone"
    assert sorted(row for row in rows if not (PACKAGE_ROOT / row).is_file()) == []


if __name__ == "__main__":  # regenerate the doc's module list
    text = DOC.read_text(encoding="utf-8")
    found = MODULES.search(text)
    DOC.write_text(text[: found.start(2)] + module_list() + text[found.end(2):], encoding="utf-8")


# Test folders that are about the whole system rather than one package or module.
CROSS_CUTTING_TESTS = {"architecture", "robustness"}


def test_the_tests_mirror_the_source_tree():
    """A package's tests live under its path in tests/ (tests/data/download for data/download, tests/export for
    export.py), so a module's tests are found where the module is; a folder below a package (tests/evaluation/loop:
    the evaluation runner end to end) groups tests of that package."""
    tests = REPO / "tests"
    sources = {p.relative_to(PACKAGE_ROOT).with_suffix("").as_posix() for p in PACKAGE_ROOT.rglob("*.py")}
    sources |= {p.relative_to(PACKAGE_ROOT).as_posix() for p in PACKAGE_ROOT.rglob("*") if p.is_dir()}
    top = [d.name for d in tests.iterdir() if d.is_dir() and not d.name.startswith((".", "__"))]
    assert sorted(name for name in top if name not in sources and name not in CROSS_CUTTING_TESTS) == []
    for folder in tests.rglob("*"):
        if folder.is_dir() and folder.parent != tests and not folder.name.startswith((".", "__")) and "fixtures" not in folder.parts:
            package = folder.parent.relative_to(tests).as_posix()
            assert package in sources, f"{folder.relative_to(REPO)} is under tests/{package}, which names no package"
