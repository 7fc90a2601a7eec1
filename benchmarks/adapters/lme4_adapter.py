"""Adapter for R's lme4: runs ``benchmarks/lme4_bench.R`` with ``Rscript``.

Only the standard library is needed here.  The R script reads the same data
file as the Python libraries, converts the factor columns, does an untimed
warm-up fit, and then times ``lmer()`` calls; it prints one JSON object.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import common

NAME = "lme4"
SCRIPT = common.BENCH_DIR / "lme4_bench.R"


def _rscript() -> str | None:
    return shutil.which("Rscript")


def available() -> tuple[bool, str]:
    """Return ``(True, version)`` if Rscript and lme4 are installed, else ``(False, why)``."""
    if _rscript() is None:
        return False, "Rscript not found"
    v = version()
    if v is None:
        return False, "R package lme4 is not installed"
    return True, v


def _r_eval(expr: str) -> str | None:
    rscript = _rscript()
    if rscript is None:
        return None
    proc = subprocess.run(
        [rscript, "-e", expr], capture_output=True, text=True, timeout=120, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def version() -> str | None:
    """The installed lme4 version, or ``None``."""
    return _r_eval('cat(as.character(packageVersion("lme4")))')


def r_version() -> str | None:
    """The R version (``major.minor``), or ``None``."""
    return _r_eval('cat(R.version$major, R.version$minor, sep = ".")')


def time_model(
    model_id: str,
    repeats: int,
    budget_s: float | None = None,
    timeout_s: float = 1800,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the R script for ``model_id``; return its JSON (timings, memory, estimates).

    ``env`` is the environment of the R process (e.g. with thread limits).
    """
    spec = common.get_model(model_id)
    path = common.ensure_data(spec)
    rscript = _rscript()
    if rscript is None:
        raise RuntimeError("Rscript not found")
    cmd = [
        rscript,
        str(SCRIPT),
        "--data",
        str(path),
        "--formula",
        spec.formula,
        "--reml",
        "TRUE" if spec.reml else "FALSE",
        "--factors",
        ",".join(spec.factors),
        "--repeats",
        str(repeats),
        "--warmup",
        str(common.get_model("sleepstudy").path),
    ]
    if budget_s is not None:
        cmd += ["--budget", str(budget_s)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout_s, check=False, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"lme4_bench.R failed ({proc.returncode}): {proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    result: dict[str, Any] = json.loads(line)
    return result


def fit(model_id: str) -> dict[str, Any]:
    """Fit ``model_id`` once in R: ``{"loglik", "fixef", "theta", "seconds"}``."""
    res = time_model(model_id, repeats=1)
    return {
        "loglik": res["loglik"],
        "fixef": res["fixef"],
        "theta": res["theta"],
        "seconds": res["times"][0],
    }
