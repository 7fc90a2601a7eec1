"""The GLMM benchmark cases: data, model, targets, and each library's spelling of the model.

One definition serves every library: ``glmm_bench.py`` passes a case's data file, level file,
factor columns, formula and family to ``glmm_bench.R`` on its command line, and the Python
adapters read the same files through ``read_case_data``.

Spellings.  lme4 fits every case as written in ``GlmmCase.formula``.  Where a Python library
cannot read that formula, the same model is written another way, prepared outside the timed
region:

* a two-level factor response (VerbAgg's ``r2``, levels ``N``/``Y``) becomes a 0/1 column
  (``r2_Y``: 1 for the second level, as in R);
* ``cbind(successes, trials - successes)`` (cbpp) becomes ``successes/trials`` (mixedlm's own
  syntax for grouped binomial data), or the proportion ``successes_prop`` with the trials as
  prior weights.

All three spellings give the same likelihood (lme4 itself turns cbind into proportions and
weights).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
REFERENCE_DATA = REPO_ROOT / "tests" / "reference" / "data"
DATA_DIR = BENCH_DIR / "data"


@dataclass(frozen=True)
class GlmmCase:
    """One GLMM benchmark case.

    Attributes
    ----------
    case_id : str
        Short name used on the command line and in the results.
    data_path, levels_path : Path, Path or None
        The CSV file every library reads, and (for R data sets) its ``.levels.json`` giving
        each factor's levels in R's order.
    factors : tuple of str
        Columns read as factors.  Without a level file, their levels are the labels sorted
        numerically where they look numeric (R's ``factor()`` of an integer column).
    response, rhs : str
        The model as lme4 reads it: ``f"{response} ~ {rhs}"``.
    family : str
        ``"binomial"`` or ``"poisson"`` (canonical links).
    factor_response : tuple of (str, str) or None
        ``(column, success_level)`` when the response is a two-level factor.
    grouped : tuple of (str, str) or None
        ``(successes, trials)`` when the response is ``cbind(successes, trials - successes)``.
    default_repeats : int
        Timed fits per library when ``--repeats`` is not given.
    target_seconds : float or None
        ``multilevel``'s median must be at most this.
    target_ratios : dict of str to float
        ``multilevel``'s median divided by that library's (same run, same threads) must be at
        most the value (``{"mixedlm": 1/3}``: at most a third of mixedlm's time).
    generated : bool
        Simulated data, written by ``glmm_data.py`` when missing.
    """

    case_id: str
    description: str
    data_path: Path
    levels_path: Path | None
    factors: tuple[str, ...]
    response: str
    rhs: str
    family: str
    default_repeats: int
    factor_response: tuple[str, str] | None = None
    grouped: tuple[str, str] | None = None
    target_seconds: float | None = None
    target_ratios: tuple[tuple[str, float], ...] = ()
    generated: bool = False

    @property
    def formula(self) -> str:
        """The model formula in lme4's spelling."""
        return f"{self.response} ~ {self.rhs}"

    def target_text(self) -> str:
        """The target in words, e.g. ``"≤ 1/3 of mixedlm's time"``."""
        parts = []
        if self.target_seconds is not None:
            parts.append(f"≤ {self.target_seconds:g} s")
        for lib, ratio in self.target_ratios:
            if ratio == 1.0:
                parts.append(f"at least as fast as {lib}")
            elif ratio < 1.0 and abs(1.0 / ratio - round(1.0 / ratio)) < 1e-9:
                parts.append(f"≤ 1/{round(1.0 / ratio)} of {lib}'s time")
            else:
                parts.append(f"≤ {ratio:g}× {lib}'s time")
        return " and ".join(parts) or "none"


CASES: dict[str, GlmmCase] = {
    case.case_id: case
    for case in (
        GlmmCase(
            case_id="verbagg",
            description="lme4::VerbAgg, 7,584 rows, 316 subjects x 24 items crossed, binary",
            data_path=REFERENCE_DATA / "VerbAgg.csv",
            levels_path=REFERENCE_DATA / "VerbAgg.levels.json",
            factors=("Gender", "item", "id", "btype", "situ", "r2"),
            response="r2",
            rhs="Anger + Gender + btype + situ + (1|id) + (1|item)",
            family="binomial",
            default_repeats=5,
            factor_response=("r2", "Y"),
            target_ratios=(("mixedlm", 1.0 / 3.0),),
        ),
        GlmmCase(
            case_id="cbpp",
            description="lme4::cbpp, 56 rows (herd-periods), 15 herds, grouped binomial",
            data_path=REFERENCE_DATA / "cbpp.csv",
            levels_path=REFERENCE_DATA / "cbpp.levels.json",
            factors=("herd", "period"),
            response="cbind(incidence, size - incidence)",
            rhs="period + (1|herd)",
            family="binomial",
            default_repeats=21,
            grouped=("incidence", "size"),
            target_ratios=(("mixedlm", 1.0),),
        ),
        GlmmCase(
            case_id="poisson_crossed",
            description="simulated, 20,000 counts, 200 x 100 x 50 crossed intercepts",
            data_path=DATA_DIR / "glmm_poisson_crossed.csv.gz",
            levels_path=None,
            factors=("a", "b", "c"),
            response="y",
            rhs="x + (1|a) + (1|b) + (1|c)",
            family="poisson",
            default_repeats=5,
            target_ratios=(("mixedlm", 1.0),),
            generated=True,
        ),
        GlmmCase(
            case_id="binary_slope",
            description="simulated, 100,000 binary rows, 5,000 groups, correlated random slope",
            data_path=DATA_DIR / "glmm_binary_slope.csv.gz",
            levels_path=None,
            factors=("g",),
            response="y",
            rhs="x + (x|g)",
            family="binomial",
            default_repeats=3,
            target_seconds=5.0,
            target_ratios=(("lme4", 0.1),),
            generated=True,
        ),
    )
}


def get_case(case_id: str) -> GlmmCase:
    """The case named ``case_id`` (``KeyError`` lists the known ones)."""
    try:
        return CASES[case_id]
    except KeyError:
        raise KeyError(f"unknown GLMM case {case_id!r}; known: {', '.join(CASES)}") from None


def ensure_data(case: GlmmCase) -> Path:
    """The case's data file, simulated first if it is a missing generated file."""
    if case.generated and not case.data_path.exists():
        import glmm_data

        glmm_data.ensure(case.data_path)
    if not case.data_path.exists():
        raise FileNotFoundError(f"{case.data_path} is missing")
    return case.data_path


def _level_key(label: str) -> tuple[int, float, str]:
    """Numeric-looking labels first, in numeric order, then the rest as strings."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def read_case_data(case: GlmmCase) -> Any:
    """The case's data as a pandas DataFrame, factors as ``category`` in R's level order."""
    import pandas as pd

    df = pd.read_csv(ensure_data(case), dtype={name: str for name in case.factors})
    levels: dict[str, list[str]] = {}
    if case.levels_path is not None:
        levels = json.loads(case.levels_path.read_text())["levels"]
    for name in case.factors:
        labels = df[name].astype(str)
        order = levels.get(name) or sorted(labels.unique(), key=_level_key)
        df[name] = pd.Categorical(labels, categories=order)
    return df


@dataclass(frozen=True)
class Spelling:
    """How one library is given a case's model: formula, prior-weights column, a note."""

    formula: str
    weights: str | None
    note: str


def spell(
    case: GlmmCase, df: Any, *, cbind: bool, slash: bool, factor_response: bool
) -> tuple[Any, Spelling]:
    """Write the case's model in a form the library reads, adding any column it needs.

    ``cbind``, ``slash`` and ``factor_response`` say whether the library reads
    ``cbind(s, n - s)``, ``s/n`` responses and two-level factor responses.  Returns the data
    (a copy when a column was added) and the spelling.
    """
    if case.grouped is not None and not cbind:
        successes, trials = case.grouped
        if slash:
            return df, Spelling(f"{successes}/{trials} ~ {case.rhs}", None, "successes/trials")
        df = df.copy()
        df[f"{successes}_prop"] = df[successes] / df[trials]
        return df, Spelling(
            f"{successes}_prop ~ {case.rhs}", trials, "proportion with trials as weights"
        )
    if case.factor_response is not None and not factor_response:
        column, success = case.factor_response
        df = df.copy()
        name = f"{column}_{success}"
        df[name] = (df[column] == success).astype(float)
        return df, Spelling(f"{name} ~ {case.rhs}", None, f"0/1 response ({column} == {success})")
    return df, Spelling(case.formula, None, "as lme4")
