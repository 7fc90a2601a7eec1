"""One timed Bayesian fit of one benchmark case in this (fresh) process; prints one JSON line.

``benchmarks/bayes_bench.py`` starts this script once per (library, case, run), in the
interpreter that has the library (``multilevel``: the repository's ``.venv``; ``bambi``: its own
venv)::

    python benchmarks/bayes_worker.py multilevel CASE [--draws N] [--warmup N]
    python benchmarks/bayes_worker.py bambi CASE [--sampler pymc|numpyro] [--draws N] [--warmup N]
    python benchmarks/bayes_worker.py LIBRARY --check      # availability / versions only

The clock starts before the library (and with it jax / PyMC) is imported and stops when the fit
has returned, so ``total_s`` is what a user waits in a fresh Python session; the posterior
summary (bulk ESS and R-hat, by ArviZ) is computed afterwards, off the clock. Only the standard
library is imported at module level: the same file runs in both interpreters.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "src" / "multilevel" / "datasets" / "data"
CHAINS = 4
SEED = 1
CASES: tuple[str, ...] = ("sleepstudy", "orange", "cbpp")
# the environment variables that change how many threads / devices a fit uses: recorded, so
# that the report says what the measured processes saw (the benchmark sets none of them)
THREAD_ENV_PREFIXES = ("OMP_", "OPENBLAS_", "MKL_", "XLA_", "JAX_", "PYTENSOR", "NPROC",
                       "RAYON_", "BLIS_", "VECLIB_", "XDG_CACHE_HOME", "MULTILEVEL_")

Record = dict[str, Any]


def loadavg() -> list[str]:
    """The 1, 5 and 15 minute load averages (as text, as /proc/loadavg has them)."""
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return []


def thread_environment() -> dict[str, str]:
    """The thread / device / cache variables set in this process's environment."""
    return {k: v for k, v in os.environ.items() if k.startswith(THREAD_ENV_PREFIXES)}


# ----------------------------------------------------------------------------- multilevel


def fit_multilevel(case: str, draws: int, warmup: int) -> tuple[Any, Record]:
    """Fit ``case`` with ``ml.bayes`` / ``ml.bayes_nlme``; the clock includes the import."""
    import multilevel as ml

    t_imported = time.perf_counter()
    common = {"chains": CHAINS, "draws": draws, "warmup": warmup, "seed": SEED,
              "progress": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case == "sleepstudy":
            fit = ml.bayes("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"),
                           **common)
        elif case == "orange":
            fit = ml.bayes_nlme(
                "circumference ~ Asym / (1 + exp((xmid - age) / scal))",
                ml.datasets.load("Orange"),
                params={"Asym": "1 + (1 | Tree)", "xmid": "1", "scal": "1"},
                priors=[ml.prior("normal(200, 50)", nlpar="Asym"),
                        ml.prior("normal(700, 200)", nlpar="xmid"),
                        ml.prior("normal(350, 100)", nlpar="scal"),
                        ml.prior("student_t(3, 0, 40)", class_="sd", nlpar="Asym"),
                        ml.prior("student_t(3, 0, 20)", class_="sigma")],
                **common)
        elif case == "cbpp":
            fit = ml.bayes("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                           ml.datasets.load("cbpp"), family="binomial", **common)
        else:
            raise SystemExit(f"unknown case {case!r}; known: {', '.join(CASES)}")
    t_end = time.perf_counter()
    return fit, {
        "import_s": t_imported - T_START,
        "fit_s": t_end - t_imported,
        "total_s": t_end - T_START,
        "compile_s": float(fit.compile_s),
        "sampling_s": float(fit.sampling_s),
        # what ml.bayes spends besides compiling and sampling (model building, the
        # InferenceData and its pointwise log-likelihood, ...)
        "other_fit_s": (t_end - t_imported) - float(fit.compile_s) - float(fit.sampling_s),
    }


def summarise_multilevel(fit: Any) -> Record:
    """Minimum bulk / tail ESS and worst R-hat over the scalar variables, divergences."""
    import arviz as az
    import numpy as np

    s = fit.posterior_summary()
    post = fit.posterior.posterior
    all_ess = [float(np.nanmin(np.asarray(az.ess(post[[v]], method="bulk")[v].values)))
               for v in post.data_vars]
    return {
        "min_ess_bulk": float(s["ess_bulk"].min()),
        "min_ess_bulk_variable": str(s["ess_bulk"].idxmin()),
        "min_ess_bulk_all": float(min(all_ess)),
        "min_ess_tail": float(s["ess_tail"].min()),
        "max_rhat": float(s["rhat"].max()),
        "divergences": int(fit.diagnostics.divergences),
        "ndraws": int(fit.ndraws),
    }


def versions_multilevel() -> Record:
    import arviz
    import jax
    import numpyro

    import multilevel

    return {"multilevel": getattr(multilevel, "__version__", "?"), "jax": jax.__version__,
            "numpyro": numpyro.__version__, "arviz": arviz.__version__}


# ----------------------------------------------------------------------------- bambi


def read_csv_factors(name: str, factors: tuple[str, ...]) -> Any:
    """The package's CSV of ``name`` with ``factors`` as categoricals in the JSON's level order
    (what R's factor() does in bayes_bench.R)."""
    import pandas as pd

    data = pd.read_csv(DATA_DIR / f"{name}.csv")
    meta = json.loads((DATA_DIR / f"{name}.json").read_text())
    for col in meta["columns"]:
        if col["name"] in factors:
            data[col["name"]] = pd.Categorical(data[col["name"]].astype(str),
                                               categories=[str(v) for v in col["levels"]])
    return data


def fit_bambi(case: str, draws: int, warmup: int, sampler: str) -> tuple[Any, Record]:
    """Fit ``case`` with bambi's defaults (PyMC NUTS, or numpyro's through bambi)."""
    import bambi as bmb

    t_imported = time.perf_counter()
    if case == "sleepstudy":
        model = bmb.Model("Reaction ~ Days + (Days | Subject)",
                          read_csv_factors("sleepstudy", ("Subject",)))
    elif case == "cbpp":
        model = bmb.Model("p(incidence, size) ~ period + (1 | herd)",
                          read_csv_factors("cbpp", ("herd", "period")), family="binomial")
    else:
        raise SystemExit(f"bambi has no {case!r} case (a nonlinear model is not a bambi formula)")
    t_built = time.perf_counter()
    kwargs: Record = {"draws": draws, "tune": warmup, "chains": CHAINS, "cores": 2,
                      "random_seed": SEED, "progressbar": False}
    if sampler != "pymc":
        kwargs["inference_method"] = sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = model.fit(**kwargs)
    t_end = time.perf_counter()
    return idata, {
        "import_s": t_imported - T_START,
        "build_s": t_built - t_imported,
        "sampling_s": t_end - t_built,  # bambi/PyMC compile inside fit(): included here
        "fit_s": t_end - t_imported,
        "total_s": t_end - T_START,
    }


def summarise_bambi(idata: Any) -> Record:
    """The same numbers as for multilevel, from bambi's InferenceData."""
    import arviz as az
    import numpy as np

    post = idata.posterior
    scalar = [v for v in post.data_vars if post[v].ndim == 2]
    bulk = az.ess(post, method="bulk")
    tail = az.ess(post, method="tail")
    rhat = az.rhat(post)
    ess_scalar = {v: float(bulk[v].values) for v in scalar}
    worst = min(ess_scalar, key=lambda v: ess_scalar[v])
    div = idata.sample_stats["diverging"].values if "sample_stats" in idata else np.array([0])
    return {
        "min_ess_bulk": ess_scalar[worst],
        "min_ess_bulk_variable": worst,
        "min_ess_bulk_all": float(min(np.nanmin(bulk[v].values) for v in post.data_vars)),
        "min_ess_tail": float(min(float(tail[v].values) for v in scalar)),
        "max_rhat": float(max(float(rhat[v].values) for v in scalar)),
        "divergences": int(np.asarray(div).sum()),
        "variables": list(post.data_vars),
    }


def versions_bambi() -> Record:
    import arviz
    import bambi
    import pymc

    out = {"bambi": bambi.__version__, "pymc": pymc.__version__, "arviz": arviz.__version__}
    try:
        import numpyro

        out["numpyro"] = numpyro.__version__
    except ImportError:
        out["numpyro"] = None
    return out


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: one fit (or ``--check``), one JSON line on stdout."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("library", choices=("multilevel", "bambi"))
    p.add_argument("case", nargs="?", default=None)
    p.add_argument("--check", action="store_true")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--sampler", default="pymc", help="bambi only: pymc or numpyro")
    args = p.parse_args(argv)
    record: Record = {"library": args.library, "case": args.case, "python": sys.version.split()[0],
                      "thread_env": thread_environment(), "cpu_count": os.cpu_count()}
    # everything the libraries print goes to stderr: stdout carries the JSON line alone
    real_stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        if args.check:
            versions = versions_multilevel() if args.library == "multilevel" else versions_bambi()
            record.update(available=True, versions=versions)
        else:
            if args.case is None:
                p.error("give a CASE or --check")
            record["loadavg_start"] = loadavg()
            record.update(chains=CHAINS, draws=args.draws, warmup=args.warmup, seed=SEED)
            if args.library == "multilevel":
                fit, times = fit_multilevel(args.case, args.draws, args.warmup)
                record.update(times)
                record.update(summarise_multilevel(fit))
            else:
                record["sampler"] = args.sampler
                idata, times = fit_bambi(args.case, args.draws, args.warmup, args.sampler)
                record.update(times)
                record.update(summarise_bambi(idata))
            record["loadavg_end"] = loadavg()
            record["available"] = True
    finally:
        sys.stdout = real_stdout
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
