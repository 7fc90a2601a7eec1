"""Generate the synthetic crossed random-effects benchmark data set ``crossed_1m``.

The design: 1,000,000 observations of 50,000 users crossed with 2,000 items.
Users are drawn uniformly; item popularity follows a power law, item ``k``
(1-based popularity rank) having probability proportional to ``k ** -1.1``.

    y = 1 + 0.5 x + u_user + v_item + e,
    x ~ N(0, 1), u ~ N(0, 0.8^2), v ~ N(0, 0.5^2), e ~ N(0, 1).

The model fitted to it is ``y ~ 1 + x + (1|user) + (1|item)`` (REML).  The file is
written to ``benchmarks/data/crossed_1m.csv.gz`` (about 20 MB, git-ignored) and is
fully determined by the numpy seed 20261125.

Usage::

    python benchmarks/data_synthetic.py [--out PATH] [--force]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261125
N_OBS = 1_000_000
N_USERS = 50_000
N_ITEMS = 2_000
ITEM_EXPONENT = 1.1
BETA = (1.0, 0.5)
SD_USER = 0.8
SD_ITEM = 0.5
SD_RESID = 1.0

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "crossed_1m.csv.gz"


def generate(seed: int = SEED) -> pd.DataFrame:
    """Return the synthetic ``crossed_1m`` data as a DataFrame.

    Columns: ``y`` (float), ``x`` (float), ``user`` (int, 1..50000) and
    ``item`` (int, 1..2000, 1 = most popular).
    """
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, N_ITEMS + 1, dtype=float)
    p_item = ranks**-ITEM_EXPONENT
    p_item /= p_item.sum()

    user = rng.integers(0, N_USERS, size=N_OBS)
    item = rng.choice(N_ITEMS, size=N_OBS, p=p_item)
    x = rng.standard_normal(N_OBS)
    u = rng.normal(0.0, SD_USER, size=N_USERS)
    v = rng.normal(0.0, SD_ITEM, size=N_ITEMS)
    e = rng.normal(0.0, SD_RESID, size=N_OBS)
    y = BETA[0] + BETA[1] * x + u[user] + v[item] + e
    return pd.DataFrame({"y": y, "x": x, "user": user + 1, "item": item + 1})


def write(path: Path = DEFAULT_PATH, seed: int = SEED) -> Path:
    """Generate the data and write it to ``path`` as gzip-compressed CSV."""
    return write_csv_gz(generate(seed), path, float_format="%.10g", compresslevel=6)


def write_csv_gz(df: pd.DataFrame, path: Path, float_format: str, compresslevel: int) -> Path:
    """Write ``df`` to ``path`` as gzip-compressed CSV with no time stamp in the gzip header
    (so the file is reproducible), through a ``.partial`` file renamed when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    df.to_csv(
        tmp,
        index=False,
        float_format=float_format,
        compression={"method": "gzip", "compresslevel": compresslevel, "mtime": 0},
    )
    tmp.replace(path)
    return path


def ensure(path: Path = DEFAULT_PATH) -> Path:
    """Write the data set unless ``path`` already exists; return the path."""
    if not path.exists():
        write(path)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="output .csv.gz path")
    parser.add_argument("--force", action="store_true", help="regenerate even if it exists")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        print(f"{args.out} exists (use --force to regenerate)")
        return
    path = write(args.out)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
