"""Generate the two simulated nlme-territory benchmark data sets (seeded; read by every library).

``nlme_ar1_10k.csv.gz`` — 10,000 subjects x 10 equally spaced times (100,000 rows), a random
intercept and AR(1) errors within subject::

    time = 1..10, x ~ N(0, 1);  b_i ~ N(0, 1);  e_it AR(1) with phi 0.6, marginal sd 1;
    y = 2 + 0.5 time + 0.3 x + b_i + e_it.

    model: lme(y ~ time + x, random = ~ 1 | subject, correlation = corAR1(form = ~ time | subject))

``nlme_logistic_2k.csv.gz`` — 2,000 subjects x 10 ages (20,000 rows) of logistic growth with
two correlated random parameters, an Orange-like design::

    age = 100, 266, ..., 1600;  (a_i, m_i) ~ N(0, [[25^2, 0.3*25*60], [., 60^2]]);
    y = (190 + a_i) / (1 + exp((700 + m_i - age) / 350)) + e,  e ~ N(0, 6^2).

    model: nlme(y ~ SSlogis(age, Asym, xmid, scal), fixed = Asym + xmid + scal ~ 1,
                random = Asym + xmid ~ 1 | subject, start = c(Asym = 190, xmid = 700, scal = 350))

Subjects are the integers 1..n (R's ``factor()`` orders them numerically, and so does the
benchmark's reader); ``x`` is rounded to 5 decimals before it enters ``y`` and ``y`` is written
with 10 significant digits.  Every number is set by the numpy seeds below and the gzip header has
no time stamp, so rerunning this script reproduces the committed files (given the same numpy
``Generator`` streams); ``nlme_bench.py`` writes them when missing.

Usage::

    python benchmarks/nlme_data.py [--force]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import data_synthetic
import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data"
AR1_PATH = DATA_DIR / "nlme_ar1_10k.csv.gz"
LOGISTIC_PATH = DATA_DIR / "nlme_logistic_2k.csv.gz"

AR1_SEED = 20261128
AR1_SUBJECTS, AR1_TIMES, AR1_PHI = 10_000, 10, 0.6

LOGISTIC_SEED = 20261129
LOGISTIC_SUBJECTS = 2_000
LOGISTIC_AGES = np.linspace(100.0, 1600.0, 10).round()
LOGISTIC_FIXED = (190.0, 700.0, 350.0)  # Asym, xmid, scal
LOGISTIC_SD = (25.0, 60.0)  # Asym, xmid
LOGISTIC_CORR = 0.3
LOGISTIC_SIGMA = 6.0


def ar1_panel(seed: int = AR1_SEED) -> pd.DataFrame:
    """Columns ``subject, time, x, y``, rows by subject then time."""
    rng = np.random.default_rng(seed)
    n = AR1_SUBJECTS * AR1_TIMES
    subject = np.repeat(np.arange(1, AR1_SUBJECTS + 1), AR1_TIMES)
    time = np.tile(np.arange(1, AR1_TIMES + 1), AR1_SUBJECTS)
    x = np.round(rng.standard_normal(n), 5)
    b = rng.standard_normal(AR1_SUBJECTS)
    e = np.empty((AR1_SUBJECTS, AR1_TIMES))
    e[:, 0] = rng.standard_normal(AR1_SUBJECTS)
    innovation_sd = np.sqrt(1.0 - AR1_PHI**2)  # keeps the marginal sd at 1
    for t in range(1, AR1_TIMES):
        e[:, t] = AR1_PHI * e[:, t - 1] + innovation_sd * rng.standard_normal(AR1_SUBJECTS)
    y = 2.0 + 0.5 * time + 0.3 * x + b[subject - 1] + e.ravel()
    return pd.DataFrame({"subject": subject, "time": time, "x": x, "y": y})


def logistic_growth(seed: int = LOGISTIC_SEED) -> pd.DataFrame:
    """Columns ``subject, age, y``, rows by subject then age."""
    rng = np.random.default_rng(seed)
    k = LOGISTIC_AGES.size
    subject = np.repeat(np.arange(1, LOGISTIC_SUBJECTS + 1), k)
    age = np.tile(LOGISTIC_AGES, LOGISTIC_SUBJECTS)
    sa, sm = LOGISTIC_SD
    cov = np.array([[sa**2, LOGISTIC_CORR * sa * sm], [LOGISTIC_CORR * sa * sm, sm**2]])
    re = rng.multivariate_normal(np.zeros(2), cov, size=LOGISTIC_SUBJECTS)
    asym, xmid, scal = LOGISTIC_FIXED
    mean = (asym + re[subject - 1, 0]) / (1.0 + np.exp((xmid + re[subject - 1, 1] - age) / scal))
    y = mean + rng.normal(0.0, LOGISTIC_SIGMA, size=subject.size)
    return pd.DataFrame({"subject": subject, "age": age, "y": y})


GENERATORS = {AR1_PATH: ar1_panel, LOGISTIC_PATH: logistic_growth}


def ensure(path: Path, force: bool = False) -> Path:
    """Write the simulated data set stored at ``path`` unless it exists; return the path."""
    if force or not path.exists():
        data_synthetic.write_csv_gz(GENERATORS[path](), path, float_format="%.10g",
                                    compresslevel=9)
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
