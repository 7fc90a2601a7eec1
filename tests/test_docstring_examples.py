"""Every ``>>>`` example in the package's docstrings runs, and the README's Python blocks run in
order (issue 10, "every function's docstring example runs").

Docstring examples run under doctest with ELLIPSIS and NORMALIZE_WHITESPACE, each module in a
fresh namespace holding ``ml`` (``import multilevel as ml``), ``np`` and ``pd``, with the working
directory a temporary folder (examples that write files leave nothing behind) and matplotlib's
headless Agg backend. An example whose output is not shown must not print any: doctest compares
what it prints with what the docstring shows. Modules whose examples fit Bayesian models (a
minute or more) run in the slow suite.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import io
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import multilevel as ml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "multilevel"
README = ROOT / "README.md"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples() -> list[str]:
    """Module names (dotted) whose source has a ``>>>`` line inside a docstring; found from the
    source text so that no module is imported to be listed."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if ">>>" not in text:
            continue
        docstrings = [ast.get_docstring(node, clean=False) or ""
                      for node in ast.walk(ast.parse(text))
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                           ast.AsyncFunctionDef))]
        if any(re.search(r"^\s*>>>", doc, re.M) for doc in docstrings):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _samples(name: str) -> bool:
    """Whether the module's examples fit a Bayesian model (seconds to minutes each)."""
    parts = name.split(".")[1:]
    path = PACKAGE.joinpath(*parts)
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return bool(re.search(r"^\s*(>>>|\.\.\.) .*ml\.bayes(_nlme)?\(", path.read_text(), re.M))


def _param(name: str) -> Any:
    return pytest.param(name, marks=pytest.mark.slow) if _samples(name) else name


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    # the package's own docstring and the data sets' carry examples: a finder that found
    # nothing would make every test below vacuous
    assert "multilevel" in MODULES and "multilevel.datasets" in MODULES


@pytest.mark.parametrize("module_name", [_param(name) for name in MODULES])
def test_docstring_examples_run(module_name: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    tests = [test for test in doctest.DocTestFinder().find(module, module_name)
             if test.examples and test.name.startswith(module_name)]
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = io.StringIO()
    for test in tests:
        test.globs.update({"ml": ml, "np": np, "pd": pd})
        runner.run(test, out=report.write)
    ran = sum(len(test.examples) for test in tests)
    assert ran > 0, f"{module_name}: no example collected"
    assert runner.failures == 0, f"{module_name}: failing docstring examples\n{report.getvalue()}"


# --- the README's Python blocks, in order, in one namespace ---------------------------------

#: Blocks that sketch a call on data the README never builds (columns ``y``, ``x``, ``g``, a
#: data frame ``rates``, a column ``x2`` of sleepstudy, the user's Parquet files), keyed by a
#: text each contains: they are parsed but not run. The test checks that each block still
#: exists and that the name it lacks is still undefined before it, so that this list cannot
#: silently outlive the README.
SKETCHES = {
    'weights="n_trials"': "w",
    "add_random_slopes(fit, [\"Days\", \"x2\"])": "x2",
    'family="poisson")\nml.glmer': "rates",
    "dd.read_parquet(parquet_files)": "parquet_files",
}
#: Placeholders the README uses for "your own value": a statement that uses one (or ``...``)
#: is not run, nor any later statement of its block that uses what it would have assigned.
PLACEHOLDERS = {"new_y", "newdata", "design_df"}
#: Blocks that are runnable but take minutes at the README's sizes (nsim=1000 power
#: simulations, 1000 bootstrap refits, four Bayesian chains): run in the slow suite.
SLOW = ["ml.bootstrap(fit, n=1000", "ml.power(fit, \"Days\", nsim=1000", "ml.bayes("]
#: Statements the README shows raising a typed error (its comment says "-> SomeError").
ERROR_COMMENT = re.compile(r"#\s*->\s*(\w+Error)")


def _readme_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)


def _kind(block: str) -> str:
    if any(key in block for key in SKETCHES):
        return "sketch"
    if any(key in block for key in SLOW):
        return "slow"
    return "run"


def _uses_placeholder(node: ast.stmt, missing: set[str]) -> bool:
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    ellipsis = any(isinstance(n, ast.Constant) and n.value is Ellipsis for n in ast.walk(node))
    return ellipsis or bool(names & missing)


def _run_block(block: str, namespace: dict[str, Any]) -> int:
    """Run a block statement by statement; a statement whose line says ``# -> XError`` must
    raise that error (from multilevel.errors). Returns the number of statements run."""
    lines = block.splitlines()
    missing = set(PLACEHOLDERS)
    ran = 0
    for node in ast.parse(block).body:
        if _uses_placeholder(node, missing):
            missing |= {n.id for n in ast.walk(node)
                        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            continue
        source = "\n".join(lines[node.lineno - 1:node.end_lineno])
        expected = ERROR_COMMENT.search(source)
        code = compile(ast.Module(body=[node], type_ignores=[]), "<README>", "exec")
        if expected:
            error = getattr(ml.errors, expected.group(1))
            with pytest.raises(error):
                exec(code, namespace)
        else:
            exec(code, namespace)
        ran += 1
    return ran


def _run_readme(kinds: set[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "readme"}
    ran = 0
    with redirect_stdout(io.StringIO()):
        for block in _readme_blocks():
            kind = _kind(block)
            if kind == "sketch":
                continue
            if kind in kinds:
                ran += _run_block(block, namespace)
            elif kind == "slow":
                # later blocks may use what a slow block defines: run its cheap statements
                # (assignments of data sets and fits), not its long simulations
                _run_block("\n".join(line for line in block.splitlines()
                                     if re.match(r"^\w+ = ml\.datasets\.load", line)), namespace)
    return ran


def test_readme_sketches_are_sketches() -> None:
    blocks = _readme_blocks()
    assert len(blocks) >= 10
    for key, undefined in SKETCHES.items():
        matching = [i for i, block in enumerate(blocks) if key in block]
        assert matching, f"README no longer has the block with {key!r}: update SKETCHES"
        before = "\n".join(blocks[:matching[0]])
        assert not re.search(rf"^\s*{re.escape(undefined)}\s*=", before, re.M), (
            f"{undefined!r} is now defined before the block with {key!r}: run that block")
    everything = "\n".join(blocks)
    for name in PLACEHOLDERS:
        assert re.search(rf"\b{name}\b", everything), f"README no longer uses {name!r}"
        assert not re.search(rf"^\s*{name}\s*=", everything, re.M), f"README defines {name!r}"


def test_readme_blocks_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _run_readme({"run"}, monkeypatch, tmp_path) >= 40     # statements run


@pytest.mark.slow
def test_readme_blocks_run_slow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _run_readme({"run", "slow"}, monkeypatch, tmp_path) >= 60
