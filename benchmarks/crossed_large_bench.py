"""Two large crossed factors fitted exactly (issue 11, item 2): 2,000,000 rows, 100,000 users
x 20,000 items, ``y ~ 1 + x + (1|user) + (1|item)`` by REML through ``ml.lmer``.

Data (seed 20261127): users uniform, item popularity a power law (rank^-0.9: the item block
before fill then holds 15.6 M non-zeros, 3.9 % -- the figure the issue measured), and

    y = 1 + 0.5 x + u_user (sd 0.8) + v_item (sd 0.5) + e (sd 1),   x ~ N(0, 1).

Each fit runs in a fresh process in the environment this script is started in (the default
one: no thread variables); the record has the wall and CPU time of the fit (data generation
excluded), the peak resident memory of that process above what it held before the fit
(``VmHWM`` after resetting it), the number of objective evaluations, the estimated and the
measured seconds per evaluation, the estimates and the simulated truth. ``--moments`` also
fits ``ml.lmer_moments`` on the same data, for comparison.

    .venv/bin/python benchmarks/crossed_large_bench.py [--rows 2000000] [--moments]
    # -> benchmarks/results/crossed_large_latest.json (also printed)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED = 20261127
FULL = (2_000_000, 100_000, 20_000)
EXPONENT = 0.9
TRUTH = {"(Intercept)": 1.0, "x": 0.5, "sd_user": 0.8, "sd_item": 0.5, "sigma": 1.0}

_WORKER = r"""
import json, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
import multilevel as ml
from multilevel.linalg.tiled_cholesky import measured_flops
from multilevel.models.fit_cost import evaluation_cost
import multilevel.models.lmm as lmm

rows, users, items, exponent, seed, method = sys.argv[1:7]
rows, users, items, seed = int(rows), int(users), int(items), int(seed)
exponent = float(exponent)
rng = np.random.default_rng(seed)
p = np.arange(1, items + 1.0) ** -exponent
p /= p.sum()
user = rng.integers(0, users, rows)
item = rng.choice(items, rows, p=p)
x = rng.standard_normal(rows)
y = (1.0 + 0.5 * x + rng.normal(0, 0.8, users)[user] + rng.normal(0, 0.5, items)[item]
     + rng.standard_normal(rows))
df = pd.DataFrame({"y": y, "x": x, "user": user, "item": item})
del user, item, x, y


def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


times = []
original = lmm.ModelStages._deviance
def timed(self, theta, reml=None):
    started = time.perf_counter()
    value = original(self, theta, reml)
    times.append(time.perf_counter() - started)
    return value
lmm.ModelStages._deviance = timed

Path("/proc/self/clear_refs").write_text("5")
before = status("VmRSS")
wall0, cpu0 = time.perf_counter(), time.process_time()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    if method == "moments":
        fit = ml.lmer_moments("y ~ 1 + x + (1 | user) + (1 | item)", df)
    else:
        fit = ml.lmer("y ~ 1 + x + (1 | user) + (1 | item)", df)
wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
peak = status("VmHWM") - before
vc = fit.varcorr.set_index("group")["sd"]
table = fit.coef_table(ddf=None) if method == "lmer" else fit.coef_table()
record = {"method": method, "rows": rows, "users": users, "items": items,
          "wall_s": wall, "cpu_s": cpu, "peak_bytes_above_data": peak,
          "fixef": {k: float(v) for k, v in fit.fixef.items()},
          "se": {k: float(v) for k, v in table["std_error"].items()},
          "sd": {g: float(vc[g]) for g in ("user", "item")},
          "sigma": float(vc["Residual"]),
          "warnings": [str(w.message) for w in caught]}
if method == "lmer":
    m = fit.model
    names = [m.design.terms[b.terms[0]].factor.name for b in m.blocks]
    cost = evaluation_cost(m.A, names)
    record.update({"evaluations": len(times), "seconds_per_evaluation_measured": times,
                   "seconds_per_evaluation_estimated": cost.seconds,
                   "gflops_measured_product": measured_flops() / 1e9,
                   "optimizer": fit.optsum.backend, "messages": list(fit.optsum.messages),
                   "theta": fit.theta.tolist(), "reml_criterion": float(fit.optsum.fmin)})
print(json.dumps(record))
"""


def run(method: str, rows: int, users: int, items: int) -> dict:
    """One fit in a fresh process; its record."""
    out = subprocess.run([sys.executable, "-c", _WORKER, str(rows), str(users), str(items),
                          str(EXPONENT), str(SEED), method],
                         capture_output=True, text=True, check=False, cwd=ROOT)
    if out.returncode != 0:
        return {"method": method, "rows": rows, "failed": out.returncode,
                "stderr_tail": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=FULL[0],
                        help="rows (users and items scale with them)")
    parser.add_argument("--moments", action="store_true", help="also fit ml.lmer_moments")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "crossed_large_latest.json")
    args = parser.parse_args(argv)
    users = round(FULL[1] * args.rows / FULL[0])
    items = round(FULL[2] * args.rows / FULL[0])
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(),
               "load_before": os.getloadavg(),
               "thread_variables": {k: v for k, v in os.environ.items()
                                    if k.endswith("_NUM_THREADS")}}
    records = [run("lmer", args.rows, users, items)]
    if args.moments:
        records.append(run("moments", args.rows, users, items))
    machine["load_after"] = os.getloadavg()
    result = {"machine": machine, "truth": TRUTH, "item_exponent": EXPONENT, "seed": SEED,
              "records": records}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
