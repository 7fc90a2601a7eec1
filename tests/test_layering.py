"""Imports go downward only (DESIGN.md "Layers"; STYLE.md principle 2).

Layers, bottom to top (a module may import from its own layer or lower ones):

    0  linalg, covariance, families,       pure numerics
       nonlinear, structures
    1  formula, data, datasets             formula -> terms -> design; data sets
    2  optim                               optimizer backends and record
    3  models                              objectives
    4  results                             immutable fit results, reports
    5  inference, bayesian, distributed,   consume results; io saves and loads them
       io
    6  cli, plotting, tables, report       presentation
    7  api.py, __init__.py, __main__.py    the top: may import anything

``errors.py`` may be imported by everyone (and itself imports nothing from the package).
The presentation layer (cli, plotting, tables, report) "calls only the public API"
(DESIGN.md), so it may import ``multilevel.api`` and the package itself; nothing else may
import the top, and the
presentation layer may import nothing from the layers below but the public names
(``multilevel``, ``multilevel.api``, ``multilevel.errors``, ``multilevel.datasets``).

Every import counts, wherever it is: at module level, inside functions and methods (lazy
imports still create the dependency at run time), ``import a.b``, ``from a import b`` and
relative imports. Imports guarded by ``if TYPE_CHECKING:`` are exempt: they never run, and a
result type named in a lower layer's annotation (``def fit(self) -> LinearMixedModelResult``)
is documentation, not a dependency. The checker below is itself tested on small sources, so
that a broken checker cannot pass silently.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "multilevel"
SRC = Path(__file__).resolve().parents[1] / "src" / PACKAGE

LAYERS: list[set[str]] = [
    {"linalg", "covariance", "families", "nonlinear", "structures"},
    {"formula", "data", "datasets"},
    {"optim"},
    {"models"},
    {"results"},
    {"inference", "bayesian", "distributed", "io"},
    {"cli", "plotting", "tables", "report"},
]
TOP = len(LAYERS)  # api.py, __init__.py, __main__.py
ANYONE = {"errors"}  # importable from every layer
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
PRESENTATION = LAYER_OF["cli"]
PUBLIC = {"multilevel", "multilevel.api", "multilevel.errors", "multilevel.datasets",
          "multilevel.families"}


def module_name(path: Path, root: Path = SRC) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(module: str) -> int | None:
    """Layer of a ``multilevel...`` module; None for errors (importable by all)."""
    parts = module.split(".")
    if len(parts) == 1:
        return TOP  # multilevel/__init__.py
    head = parts[1]
    if head in ANYONE:
        return None
    if head in {"api", "__main__"}:
        return TOP
    if head not in LAYER_OF:
        raise KeyError(f"{module}: {head!r} is not assigned to a layer; add it to LAYERS")
    return LAYER_OF[head]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@dataclass(frozen=True)
class Import:
    target: str  # the multilevel module imported
    line: int
    type_checking: bool


def _resolve_from(node: ast.ImportFrom, current: str, is_package: bool,
                  exists) -> list[str]:
    if node.level:
        base = current.split(".") if is_package else current.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return []
    # ``from pkg import name``: name is a submodule if such a module exists
    targets = []
    for alias in node.names:
        sub = f"{module}.{alias.name}"
        targets.append(sub if exists(sub) else module)
    return targets


def package_imports(source: str, current: str, is_package: bool = False,
                    exists=lambda name: False) -> list[Import]:
    """Every import of a ``multilevel`` module in ``source`` (the code of ``current``)."""
    tree = ast.parse(source)
    found: list[Import] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, guarded)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    found.append(Import(alias.name, node.lineno, guarded))
        elif isinstance(node, ast.ImportFrom):
            for target in _resolve_from(node, current, is_package, exists):
                found.append(Import(target, node.lineno, guarded))
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


def violations(source: str, current: str, is_package: bool = False) -> list[Import]:
    """The imports in ``source`` (the code of module ``current``) that break the rule."""
    own = layer(current)
    bad = []
    for imp in package_imports(source, current, is_package, _exists):
        if imp.type_checking:
            continue
        target = layer(imp.target)
        if own is None:  # errors.py imports nothing from the package
            bad.append(imp)
        elif own == PRESENTATION and target != own and target is not None:
            if imp.target not in PUBLIC:  # only the public API, from below or from the top
                bad.append(imp)
        elif target is not None and target > own:
            bad.append(imp)
    return bad


def upward_imports(path: Path) -> list[str]:
    current = module_name(path)
    found = violations(path.read_text(), current, path.name == "__init__.py")
    return [f"{path.relative_to(SRC.parent)}:{imp.line}: {current} (layer {layer(current)}) "
            f"imports {imp.target} (layer {layer(imp.target)})" for imp in found]


MODULES = sorted(SRC.rglob("*.py"))


# -- the checker on small sources -----------------------------------------------------------

def _layer_violations(source: str, current: str, is_package: bool = False) -> list[str]:
    return [imp.target for imp in violations(source, current, is_package)]


def test_checker_finds_module_level_import():
    assert _layer_violations("import multilevel.results.lmm_result\n",
                             "multilevel.models.lmm") == ["multilevel.results.lmm_result"]


def test_checker_finds_import_inside_function():
    src = "def f():\n    from multilevel.cli.main import main\n    return main\n"
    assert _layer_violations(src, "multilevel.results.summary") == ["multilevel.cli.main"]


def test_checker_resolves_relative_imports():
    src = "from ..results import lmm_result\nfrom . import design\n"
    assert _layer_violations(src, "multilevel.data.frame") == ["multilevel.results.lmm_result"]


def test_checker_resolves_from_package_import_name():
    # ``from multilevel import lmer`` reaches the top-level package; ``errors`` is a module
    assert _layer_violations("from multilevel import errors, lmer\n",
                             "multilevel.linalg.cross_products") == ["multilevel"]


def test_checker_exempts_type_checking_only():
    src = ("from typing import TYPE_CHECKING\nimport typing\n"
           "if TYPE_CHECKING:\n    from multilevel.results.lmm_result import R\n"
           "if typing.TYPE_CHECKING:\n    import multilevel.cli.main\n"
           "else:\n    import multilevel.api\n")
    assert _layer_violations(src, "multilevel.models.lmm") == ["multilevel.api"]


def test_checker_allows_downward_and_errors():
    src = ("from multilevel.errors import DataError\nfrom multilevel.linalg import x\n"
           "import multilevel.formula.parser\n")
    assert _layer_violations(src, "multilevel.models.lmm") == []


def test_checker_presentation_uses_only_the_public_api():
    src = ("from multilevel import datasets\nfrom multilevel.api import lmer\n"
           "import multilevel\nfrom multilevel.errors import MultilevelError\n")
    assert _layer_violations(src, "multilevel.cli.main") == []
    src = "from multilevel.models.lmm import LinearMixedModel\n"
    assert _layer_violations(src, "multilevel.cli.main") == ["multilevel.models.lmm"]


def test_checker_only_presentation_may_import_the_top():
    assert _layer_violations("from multilevel.api import lmer\n",
                             "multilevel.results.summary") == ["multilevel.api"]


def test_checker_errors_imports_nothing():
    assert _layer_violations("from multilevel.linalg import x\n",
                             "multilevel.errors") == ["multilevel.linalg"]


def test_every_subpackage_has_a_layer():
    for path in MODULES:
        layer(module_name(path))  # raises KeyError for an unassigned subpackage


def test_the_package_is_found():
    names = {module_name(p) for p in MODULES}
    assert {"multilevel.models.lmm", "multilevel.results.lmm_result",
            "multilevel.formula.parser", "multilevel.cli.main"} <= names


# -- the package ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_upward_import(path):
    problems = upward_imports(path)
    assert not problems, "\n".join(problems)


def test_import_does_not_load_optional_extras():
    code = ("import sys, multilevel\n"
            "heavy = ['matplotlib', 'dask', 'distributed', 'jax', 'numpyro', 'arviz']\n"
            "print(','.join(m for m in heavy if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"import multilevel loaded: {proc.stdout.strip()}"
