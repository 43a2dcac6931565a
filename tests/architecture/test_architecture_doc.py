"""docs/architecture.md names every module, shows the registries as they are, and every file it
names exists."""

from __future__ import annotations

import re
from pathlib import Path

import photodialog
from photodialog import registry

PACKAGE_ROOT = Path(photodialog.__file__).parent
REPO = PACKAGE_ROOT.parents[1]
DOC = REPO / "docs" / "architecture.md"
TABLE = re.compile(r"<!-- registry table:[^>]*-->\n(.*?)<!-- end of registry table -->", re.DOTALL)


def test_every_module_is_named():
    text = DOC.read_text(encoding="utf-8")
    modules = [p.relative_to(PACKAGE_ROOT).as_posix() for p in PACKAGE_ROOT.rglob("*.py")]
    named = [m for m in modules if m.endswith("__init__.py") and m != "__init__.py"]  # a package is named by its folder
    missing = sorted(m for m in modules if m not in named and f"`{m}`" not in text)
    assert missing == [], f"add a row to docs/architecture.md's module tables for: {missing}"


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
