"""Timings of the inference procedures against the issue's targets, written into the
inference section of BENCHMARKS.md (between the marker and the end of the file).

Run: ``python benchmarks/inference_bench.py`` (PYTHONPATH=src from a checkout). Each timing
is the median of ``--repeats`` runs in this process, after one warm-up; BLAS threads are the
library defaults.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import run

import multilevel as ml

MARKER = "<!-- inference-benchmarks -->"
ROOT = Path(__file__).resolve().parent.parent


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Time the procedures and rewrite the inference section of BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sleep = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    hsb = ml.lmer("mAch ~ meanses * cses + (cses | school)", ml.datasets.load("Hsb82"))
    chem = ml.lmer("score ~ gcsecnt + (1 | school) + (1 | lea)", ml.datasets.load("Chem97"))
    rows = [
        ("Satterthwaite df, Hsb82 (7,185 rows, random slopes)", "well under 1 s",
         _median_seconds(lambda: hsb.coef_table(ddf="satterthwaite"), args.repeats)),
        ("Kenward-Roger df, Chem97 (31,022 rows, 2,541 random effects)", "seconds",
         _median_seconds(lambda: chem.coef_table(ddf="kenward-roger"), 1)),
        ("profile intervals, sleepstudy", "< 1 s",
         _median_seconds(lambda: sleep.confint(method="profile"), args.repeats)),
        ("1,000 parametric bootstrap refits, sleepstudy, all cores", "< 5 s on 2 cores",
         _median_seconds(lambda: ml.bootstrap(sleep, n=1000, seed=1, progress=False), 1)),
    ]
    lines = [MARKER, "", "## Inference procedures", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
             f"{platform.processor() or platform.machine()}, Python {platform.python_version()},"
             " by `python benchmarks/inference_bench.py` (median of repeated runs; library "
             "default threads).", "",
             "| procedure | target | median |", "| --- | --- | ---: |"]
    lines += [f"| {name} | {target} | {seconds:.3f} s |" for name, target, seconds in rows]
    # this section only: the GLMM and nlme sections below it are kept
    run.replace_section(ROOT / "BENCHMARKS.md", MARKER, "\n".join(lines[2:]))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
