"""The layering holds: the import-linter contracts of pyproject.toml, no import cycle, no import
of another module's private names, and no module of pingan/ so long that it hides its parts.

docs/ARCHITECTURE.md explains the layers these tests keep true.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from pingan.core.settings import REPO_ROOT

PACKAGES = ("pingan", "models", "tasks", "flows", "deployments")
MAX_LINES = 600
LONG_REASON = "Why this module is long:"


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES)


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py"))


def test_the_import_linter_contracts_hold():
    # In a process of its own: import-linter configures logging, which would silence the loggers
    # later tests read.
    done = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
                           "--config", str(REPO_ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_module_takes_part_in_an_import_cycle(graph):
    """Function-level (lazy) imports count: a cycle hidden in a function is still a cycle."""
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and imported in graph.modules and graph.chain_exists(importer=imported, imported=module):
                chain = graph.find_shortest_chain(importer=imported, imported=module)
                cycles.add(" -> ".join([module, *chain]))
    assert not cycles, "\n".join(sorted(cycles))


def test_no_module_imports_another_modules_private_names():
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} from {node.module} import {', '.join(private)}")
    assert not found, "\n".join(found)


def test_long_modules_say_why_at_their_top():
    long = []
    for path in sorted((REPO_ROOT / "pingan").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if LONG_REASON not in docstring:
                long.append(f"{path.relative_to(REPO_ROOT)}: {text.count(chr(10))} lines")
    assert not long, f"split these, or say in the docstring '{LONG_REASON} …':\n" + "\n".join(long)


def test_each_domain_package_says_what_it_owns():
    for package in sorted(p for p in (REPO_ROOT / "pingan").iterdir() if (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc) > 30, f"{package.name}/__init__.py needs a docstring saying what it owns"
