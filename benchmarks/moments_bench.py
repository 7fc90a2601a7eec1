"""The O(N) moments fit on the MovieLens-32M shape (issue 11, item 4).

Generates a synthetic ratings table of the shape of MovieLens-32M (32,000,204 rows, 200,948
users x 84,432 items; smaller sizes keep the rows-per-level ratios), with power-law item
popularity (rank^-1.1, as ``data_synthetic.py``) and milder power-law user activity
(rank^-0.6), every user and item rated at least once, and

    y = 1 + 0.5 x + u_user (sd 0.8) + v_item (sd 0.5) + e (sd 1),   x ~ N(0, 1),

written to Parquet chunk by chunk (never held whole in memory twice), then fits
``y ~ 1 + x + (1|user) + (1|item)`` by the moments method in a fresh process, recording the
wall time of reading and fitting and the peak resident memory of that process
(``resource.getrusage``), and the recovery of the simulated truth.

The fit calls the O(N) core (``multilevel.models.backfitting.fit_moments``) on the Parquet
columns directly: the formula front end (``ml.lmer_moments``) builds a pandas design with
label strings for every level, which at 32 M rows costs more memory than the fit itself.
``--api`` fits through ``ml.lmer_moments`` as well (smaller sizes), to check both give the same.

    .venv/bin/python benchmarks/moments_bench.py --rows 1000000,8000000,32000204
    # -> benchmarks/results/moments_latest.json (numbers also printed)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FULL_ROWS, FULL_USERS, FULL_ITEMS = 32_000_204, 200_948, 84_432
SEED = 20261126
BETA = (1.0, 0.5)
SD_USER, SD_ITEM, SD_RESID = 0.8, 0.5, 1.0
CHUNK = 2_000_000


def shape(rows: int) -> tuple[int, int]:
    """Users and items for ``rows``: MovieLens-32M's rows-per-level ratios."""
    if rows == FULL_ROWS:
        return FULL_USERS, FULL_ITEMS
    return (max(2, round(FULL_USERS * rows / FULL_ROWS)),
            max(2, round(FULL_ITEMS * rows / FULL_ROWS)))


def _power_law_cdf(levels: int, exponent: float) -> np.ndarray:
    p = np.arange(1, levels + 1, dtype=float) ** -exponent
    cdf = np.cumsum(p)
    return cdf / cdf[-1]


def generate(rows: int, path: Path, item_exponent: float) -> dict[str, object]:
    """Write the synthetic table to ``path`` (Parquet: y, x float64; user, item int32) and
    the realised random effects' variances beside it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    users, items = shape(rows)
    rng = np.random.default_rng(SEED)
    u = SD_USER * rng.standard_normal(users)
    v = SD_ITEM * rng.standard_normal(items)
    # popularity ranks are shuffled over the codes, so that code order means nothing
    user_rank = rng.permutation(users)
    item_rank = rng.permutation(items)
    user_cdf = _power_law_cdf(users, 0.6)
    item_cdf = _power_law_cdf(items, item_exponent)
    schema = pa.schema([("y", pa.float64()), ("x", pa.float64()), ("user", pa.int32()),
                        ("item", pa.int32())])
    start = time.perf_counter()
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, rows, CHUNK):
            n = min(CHUNK, rows - lo)
            user = user_rank[np.searchsorted(user_cdf, rng.random(n))]
            item = item_rank[np.searchsorted(item_cdf, rng.random(n))]
            # the first rows rate every user and every item once
            for codes, total in ((user, users), (item, items)):
                head = np.arange(lo, min(lo + n, total)) - lo
                codes[head] = head + lo
            x = rng.standard_normal(n)
            y = BETA[0] + BETA[1] * x + u[user] + v[item] + SD_RESID * rng.standard_normal(n)
            writer.write_table(pa.table({"y": y, "x": x, "user": user.astype(np.int32),
                                         "item": item.astype(np.int32)}, schema=schema))
    item_count = np.zeros(items)
    for batch in pq.ParquetFile(path).iter_batches(columns=["item"]):
        item_count += np.bincount(batch.column(0).to_numpy(), minlength=items)
    return {"rows": rows, "users": users, "items": items, "item_exponent": item_exponent,
            "top_item_share": float(item_count.max() / rows),
            "generate_s": time.perf_counter() - start,
            "parquet_mib": path.stat().st_size / 2**20,
            "realised_var_user": float(u.var()), "realised_var_item": float(v.var())}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def fit(path: Path, api: bool) -> dict[str, object]:
    """Read the Parquet columns and fit by moments; time and peak memory of this process."""
    import pyarrow.parquet as pq

    from multilevel.models.backfitting import fit_moments
    from multilevel.models.moments import CrossedFactors

    start = time.perf_counter()
    table = pq.read_table(path, columns=["y", "x", "user", "item"])
    y = table.column("y").to_numpy()
    x = table.column("x").to_numpy()
    user = table.column("user").to_numpy()
    item = table.column("item").to_numpy()
    del table
    read_s = time.perf_counter() - start
    start, cpu = time.perf_counter(), _cpu_s()
    X = np.column_stack([np.ones_like(x), x])
    del x
    factors = CrossedFactors.from_codes(["user", "item"], [user, item])
    result = fit_moments(X, y, factors)
    fit_s, fit_cpu_s = time.perf_counter() - start, _cpu_s() - cpu
    se = np.sqrt(np.diag(result.vcov))
    out: dict[str, object] = {
        # CPU time beside wall time: the machine is shared, wall times are inflated by others
        "read_s": read_s, "fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "peak_rss_gib": _peak_gib(),
        "beta": result.beta.tolist(), "se": se.tolist(),
        "ols_se": np.sqrt(np.diag(result.ols_vcov)).tolist(),
        "var_user": float(result.components.sigma2[0]),
        "var_item": float(result.components.sigma2[1]),
        "var_resid": result.components.sigma2_resid,
        "sweeps": result.sweeps, "converged": result.converged}
    if api:
        import pandas as pd

        import multilevel as ml
        frame = pd.DataFrame({"y": y, "x": X[:, 1], "user": user, "item": item})
        del X, y, user, item, factors, result
        start = time.perf_counter()
        via_api = ml.lmer_moments("y ~ 1 + x + (1 | user) + (1 | item)", frame)
        out["api_s"] = time.perf_counter() - start
        out["api_beta"] = via_api.fixef.tolist()
        out["api_var"] = via_api.varcorr["variance"].tolist()
        out["api_peak_rss_gib"] = _peak_gib()
    return out


def reml(path: Path) -> dict[str, object]:
    """The exact REML fit (``ml.lmer``) of the same table, in its own process (own peak)."""
    import pyarrow.parquet as pq

    import multilevel as ml

    frame = pq.read_table(path).to_pandas()
    start, cpu = time.perf_counter(), _cpu_s()
    fit_ = ml.lmer("y ~ 1 + x + (1 | user) + (1 | item)", frame)
    vc = fit_.varcorr["variance"].to_numpy()
    return {"reml_s": time.perf_counter() - start, "reml_cpu_s": _cpu_s() - cpu,
            "reml_peak_rss_gib": _peak_gib(), "reml_beta": fit_.fixef.tolist(),
            "reml_se": fit_.coef_table()["std_error"].tolist(),
            "reml_var_user": float(vc[0]), "reml_var_item": float(vc[1]),
            "reml_var_resid": float(vc[2])}


def _child(args: list[str]) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, __file__, *args], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _recovery(gen: dict, res: dict) -> dict[str, object]:
    beta, se = np.array(res["beta"]), np.array(res["se"])
    return {"beta_z": ((beta - np.array(BETA)) / se).tolist(),
            "var_user_rel_to_realised": res["var_user"] / gen["realised_var_user"] - 1,
            "var_item_rel_to_realised": res["var_item"] / gen["realised_var_item"] - 1,
            "var_resid_rel": res["var_resid"] / SD_RESID**2 - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000000,8000000")
    # the Parquet files are large (~0.6 GiB at 32 M rows): a temporary folder, not the tree
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir())
                                                  / "multilevel_moments_bench"))
    parser.add_argument("--out", default=str(HERE / "results" / "moments_latest.json"))
    parser.add_argument("--api", action="store_true",
                        help="also fit through ml.lmer_moments (sizes up to 8 M rows)")
    parser.add_argument("--keep", action="store_true", help="keep the Parquet files")
    parser.add_argument("--item-exponent", type=float, default=0.6,
                        help="item popularity ~ rank^-exponent (default 0.6)")
    parser.add_argument("--reml-max-rows", type=int, default=0,
                        help="also fit by exact REML (ml.lmer) sizes up to this many rows")
    parser.add_argument("--child", choices=["generate", "fit", "reml"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "generate":
        rows = int(args.rows)
        print(json.dumps(generate(rows, Path(args.path), args.item_exponent)))
        return
    if args.child == "fit":
        print(json.dumps(fit(Path(args.path), args.api)))
        return
    if args.child == "reml":
        print(json.dumps(reml(Path(args.path))))
        return
    runs = []
    for rows in (int(r) for r in args.rows.split(",")):
        path = Path(args.data_dir) / f"movielens_shape_{rows}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        gen = _child(["--child", "generate", "--rows", str(rows), "--path", str(path),
                      "--item-exponent", str(args.item_exponent)])
        fit_args = ["--child", "fit", "--path", str(path)]
        if args.api and rows <= 8_000_000:
            fit_args.append("--api")
        res = _child(fit_args)
        if rows <= args.reml_max_rows:
            res.update(_child(["--child", "reml", "--path", str(path)]))
        run = {**gen, **res, "recovery": _recovery(gen, res)}
        print(json.dumps(run, indent=1), flush=True)
        runs.append(run)
        if not args.keep:
            path.unlink()
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "model": "y ~ 1 + x + (1|user) + (1|item)", "method": "moments (fit_moments)",
            "item_exponent": args.item_exponent,
            "truth": {"beta": BETA, "sd_user": SD_USER, "sd_item": SD_ITEM,
                      "sd_resid": SD_RESID}, "seed": SEED}
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {"runs": []}
    kept = [r for r in previous.get("runs", []) if r["rows"] not in {x["rows"] for x in runs}]
    out.write_text(json.dumps({**meta, "runs": sorted(kept + runs, key=lambda r: r["rows"])},
                              indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
