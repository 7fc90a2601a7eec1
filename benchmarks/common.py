"""Shared definitions for the benchmark harness: models, data files, timing, memory.

Every library reads the same files in ``benchmarks/data``.  Factor columns are
stored as labels and converted to R factors / pandas ``category`` columns when
the data are loaded (outside the timed region).

Peak memory is measured with Linux's ``/proc/self/status``: before each fit the
process's resident-set high-water mark (``VmHWM``) is reset by writing ``5`` to
``/proc/self/clear_refs``; after the fit ``VmHWM`` is the peak resident memory
of the process *during that fit* (interpreter, libraries and loaded data
included).  ``VmHWM`` minus the resident size just before the fit (``VmRSS``) is
the extra memory the fit itself needed.  The R script does the same.
"""

from __future__ import annotations

import gc
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"


@dataclass(frozen=True)
class ModelSpec:
    """One benchmark model: data file, formula, fitting criterion and defaults."""

    model_id: str
    data_file: str
    formula: str
    reml: bool
    factors: tuple[str, ...]
    default_repeats: int
    description: str
    target_seconds: float | None = None
    target_memory_mib: float | None = None
    generated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """Absolute path of the data file."""
        return DATA_DIR / self.data_file


MODELS: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        ModelSpec(
            model_id="sleepstudy",
            data_file="sleepstudy.csv.gz",
            formula="Reaction ~ Days + (Days|Subject)",
            reml=True,
            factors=("Subject",),
            default_repeats=21,
            description="lme4::sleepstudy, 180 rows, correlated random slope",
            target_seconds=0.005,
        ),
        ModelSpec(
            model_id="hsb82",
            data_file="Hsb82.csv.gz",
            formula="mAch ~ meanses * cses + (cses|school)",
            reml=True,
            factors=("school",),
            default_repeats=21,
            description="mlmRev::Hsb82, 7,185 rows, correlated random slope, interaction",
        ),
        ModelSpec(
            model_id="scotssec",
            data_file="ScotsSec.csv.gz",
            formula="attain ~ verbal + sex + (1|primary) + (1|second)",
            reml=True,
            factors=("primary", "second", "sex"),
            default_repeats=21,
            description="mlmRev::ScotsSec, 3,435 rows, crossed intercepts, a factor covariate",
        ),
        ModelSpec(
            model_id="chem97",
            data_file="Chem97.csv.gz",
            formula="score ~ gcsecnt + (1|school) + (1|lea)",
            reml=True,
            factors=("lea", "school"),
            default_repeats=7,
            description="mlmRev::Chem97, 31,022 rows, nested intercepts",
            target_seconds=0.030,
        ),
        ModelSpec(
            model_id="insteval",
            data_file="InstEval.csv.gz",
            formula="y ~ 1 + service + (1|s) + (1|d) + (1|dept:service)",
            reml=False,
            factors=("s", "d", "dept", "service"),
            default_repeats=3,
            description="lme4::InstEval, 73,421 rows, crossed intercepts (ML)",
            target_seconds=1.5,
        ),
        ModelSpec(
            model_id="crossed_1m",
            data_file="crossed_1m.csv.gz",
            formula="y ~ 1 + x + (1|user) + (1|item)",
            reml=True,
            factors=("user", "item"),
            default_repeats=2,
            description="synthetic, 1,000,000 rows, 50,000 users x 2,000 items (power law)",
            target_seconds=8.0,
            target_memory_mib=1024.0,
            generated=True,
        ),
    )
}


def get_model(model_id: str) -> ModelSpec:
    """Return the spec of ``model_id`` (raises ``KeyError`` with the known ids)."""
    try:
        return MODELS[model_id]
    except KeyError:
        raise KeyError(f"unknown model {model_id!r}; known: {', '.join(MODELS)}") from None


def ensure_data(spec: ModelSpec) -> Path:
    """Make sure the data file of ``spec`` exists (generating synthetic data) and return it."""
    if spec.generated and not spec.path.exists():
        import data_synthetic

        data_synthetic.ensure(spec.path)
    if not spec.path.exists():
        raise FileNotFoundError(
            f"{spec.path} is missing; run `Rscript benchmarks/export_data.R` to export it"
        )
    return spec.path


def read_pandas(spec: ModelSpec) -> Any:
    """Read the data of ``spec`` into a pandas DataFrame with factors as ``category``.

    Category levels are the labels sorted the way R's ``factor()`` sorts them
    for numeric-looking labels (numerically), so reference levels agree with R.
    """
    import pandas as pd

    df = pd.read_csv(ensure_data(spec), dtype={name: str for name in spec.factors})
    for name in spec.factors:
        labels = df[name].astype(str)
        levels = sorted(labels.unique(), key=_level_key)
        df[name] = pd.Categorical(labels, categories=levels)
    return df


def _level_key(label: str) -> tuple[int, float, str]:
    """Sort key: numeric labels numerically first, then the rest as strings."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


# ----------------------------------------------------------------------------- memory


def _status_kib(field_name: str) -> int | None:
    """Return a ``kB`` field of ``/proc/self/status`` (``None`` when unavailable)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def reset_peak_rss() -> bool:
    """Reset the process's peak-RSS mark (``VmHWM``); return whether that worked."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def rss_mib() -> float | None:
    """Current resident set size of this process in MiB."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


def peak_rss_mib() -> float | None:
    """Peak resident set size (``VmHWM``) of this process in MiB."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib / 1024


# ----------------------------------------------------------------------------- timing


def time_fits(
    fit_once: Callable[[Any], Any],
    extract: Callable[[Any], dict[str, Any]],
    data: Any,
    repeats: int,
    budget_s: float | None = None,
) -> dict[str, Any]:
    """Fit ``repeats`` times and return timings, memory and the last fit's results.

    When ``budget_s`` is given, repetitions stop early (after at least one fit)
    once the fits have taken ``budget_s`` seconds in total.

    ``fit_once(data)`` performs exactly the user-visible fitting call and returns
    the fitted model; only that call is inside the timed region.
    ``extract(model)`` (untimed) returns ``{"loglik": float, "fixef": {name: value},
    "theta": [...]}``.  Garbage collection and the memory bookkeeping happen
    between fits.
    """
    times: list[float] = []
    cpu_times: list[float] = []
    peaks: list[float] = []
    increments: list[float] = []
    hwm_reset = True
    summary: dict[str, Any] = {}
    for _ in range(max(1, repeats)):
        gc.collect()
        before = rss_mib()
        hwm_reset = reset_peak_rss() and hwm_reset
        c0 = time.process_time()
        t0 = time.perf_counter()
        model = fit_once(data)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
        peak = peak_rss_mib()
        times.append(elapsed)
        cpu_times.append(cpu)
        if peak is not None and before is not None:
            peaks.append(peak)
            increments.append(peak - before)
        summary = extract(model)
        del model
        if budget_s is not None and sum(times) >= budget_s:
            break
    return {
        "times": times,
        "median": statistics.median(times),
        "cpu_times": cpu_times,
        "peak_rss_mib": max(peaks) if peaks else None,
        "fit_increment_mib": max(increments) if increments else None,
        "hwm_reset": hwm_reset,
        "loglik": summary.get("loglik"),
        "fixef": summary.get("fixef"),
        "theta": summary.get("theta"),
    }
