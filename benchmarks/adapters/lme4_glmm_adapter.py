"""GLMM adapter for R's lme4: runs ``benchmarks/glmm_bench.R`` (``glmer()``) with ``Rscript``.

Only the standard library is needed here.  The R script reads the case's data file (and level
file), makes the factor columns, does an untimed warm-up fit of lme4's cbpp model, then times
``glmer(formula, data, family)`` calls with lme4's defaults (nAGQ = 1, glmerControl()); it
prints one JSON object.  Availability and versions are checked by ``lme4_adapter``.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import glmm_cases

from adapters import lme4_adapter

NAME = "lme4"
SCRIPT = glmm_cases.BENCH_DIR / "glmm_bench.R"

available = lme4_adapter.available
version = lme4_adapter.version
r_version = lme4_adapter.r_version


def command(case: glmm_cases.GlmmCase, repeats: int, budget_s: float | None) -> list[str]:
    """The ``Rscript glmm_bench.R ...`` command line for ``case``."""
    cmd = [
        "Rscript",
        str(SCRIPT),
        "--data",
        str(glmm_cases.ensure_data(case)),
        "--formula",
        case.formula,
        "--family",
        case.family,
        "--factors",
        ",".join(case.factors),
        "--repeats",
        str(repeats),
    ]
    if case.levels_path is not None:
        cmd += ["--levels", str(case.levels_path)]
    if budget_s is not None:
        cmd += ["--budget", str(budget_s)]
    return cmd


def time_case(
    case_id: str,
    repeats: int,
    budget_s: float | None = None,
    timeout_s: float = 1800,
    env: dict[str, str] | None = None,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """Run the R script for ``case_id`` (environment ``env``) and return its JSON record.

    ``extra`` is appended to the command line, e.g. ``["--evaluate", "estimates.json"]``.
    """
    case = glmm_cases.get_case(case_id)
    proc = subprocess.run(
        command(case, repeats, budget_s) + (extra or []),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"glmm_bench.R failed ({proc.returncode}): {proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    result: dict[str, Any] = json.loads(line)
    return result
