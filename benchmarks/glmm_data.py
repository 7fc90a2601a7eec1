"""Generate the two simulated GLMM benchmark data sets (seeded, written once, read by all).

``glmm_poisson_crossed.csv.gz`` — 20,000 counts with three crossed grouping factors::

    a: 200 levels, b: 100 levels, c: 50 levels, each drawn uniformly per row;
    x ~ N(0, 1);  eta = 0.5 + 0.3 x + u_a + v_b + w_c,
    u ~ N(0, 0.5^2), v ~ N(0, 0.4^2), w ~ N(0, 0.3^2);  y ~ Poisson(exp(eta)).

    model: y ~ x + (1|a) + (1|b) + (1|c), family poisson (log link)

``glmm_binary_slope.csv.gz`` — 100,000 binary responses in 5,000 groups of 20, with a
correlated random intercept and slope::

    x ~ N(0, 1);  (b0_g, b1_g) ~ N(0, [[0.8^2, 0.2*0.8*0.4], [., 0.4^2]]);
    eta = -0.5 + 1.0 x + b0_g + b1_g x;  y ~ Bernoulli(1 / (1 + exp(-eta))).

    model: y ~ x + (x | g), family binomial (logit link)

Group labels are the integers 1..n_levels (R's ``factor()`` orders them numerically, and so
does ``glmm_cases.read_case_data``); ``x`` is rounded to 5 decimals before it enters ``eta``,
so the file holds exactly the values that generated ``y``, short enough that R's and Python's
CSV readers parse the same doubles.  Every number is determined by the
numpy seeds below; the gzip header carries no time stamp, so rerunning this script reproduces
the committed files byte for byte (given the same numpy ``Generator`` streams).

Usage::

    python benchmarks/glmm_data.py [--force]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import data_synthetic
import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data"
POISSON_PATH = DATA_DIR / "glmm_poisson_crossed.csv.gz"
BINARY_PATH = DATA_DIR / "glmm_binary_slope.csv.gz"

POISSON_SEED = 20261126
POISSON_N = 20_000
POISSON_LEVELS = {"a": 200, "b": 100, "c": 50}
POISSON_SD = {"a": 0.5, "b": 0.4, "c": 0.3}
POISSON_BETA = (0.5, 0.3)

BINARY_SEED = 20261127
BINARY_GROUPS = 5_000
BINARY_PER_GROUP = 20
BINARY_BETA = (-0.5, 1.0)
BINARY_SD = (0.8, 0.4)
BINARY_CORR = 0.2


def poisson_crossed(seed: int = POISSON_SEED) -> pd.DataFrame:
    """The three-factor crossed Poisson data: columns ``y, x, a, b, c``."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(POISSON_N), 5)
    eta = POISSON_BETA[0] + POISSON_BETA[1] * x
    codes = {}
    for name, n_levels in POISSON_LEVELS.items():
        codes[name] = rng.integers(0, n_levels, size=POISSON_N)
        effects = rng.normal(0.0, POISSON_SD[name], size=n_levels)
        eta = eta + effects[codes[name]]
    y = rng.poisson(np.exp(eta))
    return pd.DataFrame({"y": y, "x": x, **{k: v + 1 for k, v in codes.items()}})


def binary_slope(seed: int = BINARY_SEED) -> pd.DataFrame:
    """The binary random-slope data: columns ``y, x, g`` (rows grouped by ``g``)."""
    rng = np.random.default_rng(seed)
    n = BINARY_GROUPS * BINARY_PER_GROUP
    g = np.repeat(np.arange(BINARY_GROUPS), BINARY_PER_GROUP)
    x = np.round(rng.standard_normal(n), 5)
    sd0, sd1 = BINARY_SD
    cov = np.array([[sd0**2, BINARY_CORR * sd0 * sd1], [BINARY_CORR * sd0 * sd1, sd1**2]])
    b = rng.multivariate_normal(np.zeros(2), cov, size=BINARY_GROUPS)
    eta = BINARY_BETA[0] + BINARY_BETA[1] * x + b[g, 0] + b[g, 1] * x
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(np.int64)
    return pd.DataFrame({"y": y, "x": x, "g": g + 1})


def _write(df: pd.DataFrame, path: Path) -> Path:
    return data_synthetic.write_csv_gz(df, path, float_format="%.6g", compresslevel=9)


GENERATORS = {POISSON_PATH: poisson_crossed, BINARY_PATH: binary_slope}


def ensure(path: Path, force: bool = False) -> Path:
    """Write the simulated data set stored at ``path`` unless it exists; return the path."""
    if force or not path.exists():
        _write(GENERATORS[path](), path)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: write both data sets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="regenerate files that exist")
    args = parser.parse_args(argv)
    for path in GENERATORS:
        existed = path.exists()
        ensure(path, force=args.force)
        state = "kept" if existed and not args.force else "wrote"
        print(f"{state} {path} ({path.stat().st_size / 2**10:.0f} KiB)")


if __name__ == "__main__":
    main()
