"""The nlme-territory benchmark cases: ``gls``, ``lme`` and ``nlme`` fits, each written once for
R's nlme and once for ``multilevel``, on the same data file.

The reference cases are the calls recorded in ``tests/reference/{gls,lme,nlme}/*.json`` (the
fits the tests check ``multilevel`` against), on the data files the tests read
(``tests/reference/data``; factor levels from the ``.levels.json`` beside each).  Two large
simulated cases carry the issue's absolute targets (``nlme_data.py`` writes their data).

Spelling.  ``r_call`` is evaluated by ``nlme_bench.R`` with nlme attached and the data frame
bound to ``data``; ``py_call`` is evaluated by ``adapters/multilevel_nlme_adapter.py`` with the
package bound to ``ml`` and the pandas DataFrame to ``data``.  Where our formulas cannot say
what R's say (``sin(2 * pi * Time)``, nlme's ``Dog/Side`` grouping), both calls use the columns
the R scripts computed into the reference data (``sin2piTime``, ``cos2piTime``, ``DogSide``), so
the two libraries fit the same model.  Only the standard library is needed here.
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

REFERENCE_REPEATS = 11
LARGE_REPEATS = 3


@dataclass(frozen=True)
class NlmeCase:
    """One benchmark case.

    Attributes
    ----------
    case_id : str
        ``"<engine>/<name>"``, e.g. ``"gls/orthodont_ar1"``.
    engine : str
        ``"gls"``, ``"lme"`` or ``"nlme"``.
    data_path, levels_path : Path, Path or None
        The CSV file both libraries read and its level file (None: factor levels sorted
        numerically, R's ``factor()`` of integers).
    factors : tuple of str
        Columns read as factors.
    r_call, py_call : str
        The fit, in nlme's and in ``multilevel``'s spelling.
    source : str
        Where the call comes from (a reference file, or the simulation).
    default_repeats : int
    target_seconds : float or None
        ``multilevel``'s median must be at most this.
    target_ratio : float
        ``multilevel``'s median over nlme's (same run, same threads) must be at most this
        (issue 8: at least as fast on every reference model, 1/5 on the large nlme case).
    generated : bool
        Simulated data (``nlme_data.py``).
    """

    case_id: str
    engine: str
    data_path: Path
    levels_path: Path | None
    factors: tuple[str, ...]
    r_call: str
    py_call: str
    source: str
    description: str = ""
    default_repeats: int = REFERENCE_REPEATS
    target_seconds: float | None = None
    target_ratio: float = 1.0
    generated: bool = False

    def target_text(self) -> str:
        """The target in words."""
        parts = [f"≤ {self.target_seconds:g} s"] if self.target_seconds is not None else []
        if self.target_ratio == 1.0:
            parts.append("at least as fast as nlme")
        else:
            parts.append(f"≤ 1/{round(1.0 / self.target_ratio)} of nlme's time")
        return " and ".join(parts)


def _reference(engine: str, name: str, dataset: str, r_call: str, py_call: str,
               source: str) -> NlmeCase:
    meta = json.loads((REFERENCE_DATA / f"{dataset}.levels.json").read_text())
    return NlmeCase(case_id=f"{engine}/{name}", engine=engine,
                    data_path=REFERENCE_DATA / f"{dataset}.csv",
                    levels_path=REFERENCE_DATA / f"{dataset}.levels.json",
                    factors=tuple(meta["levels"]), r_call=r_call, py_call=py_call,
                    source=source, description=f"{dataset}, {meta['nrow']} rows")


OVARY = "follicles ~ sin2piTime + cos2piTime"
DIALYZER = "rate ~ (pressure + I(pressure^2)) * QB"
BODYWEIGHT = "weight ~ Time * Diet"
WHEAT = "yield ~ variety - 1"
SPACE = "~ latitude + longitude"

# (name, dataset, R arguments after the formula and data, Python keyword arguments)
_GLS = [
    # tests/reference/gls/orthodont.json
    ("orthodont_plain_reml", "Orthodont", "distance ~ age", "", ""),
    ("orthodont_plain_ml", "Orthodont", "distance ~ age", "method = 'ML'", "method='ML'"),
    ("orthodont_ar1", "Orthodont", "distance ~ age * Sex",
     "correlation = corAR1(form = ~ 1 | Subject)", "correlation=ml.CorAR1(form='~ 1 | Subject')"),
    ("orthodont_varident_ml", "Orthodont", "distance ~ age * Sex",
     "weights = varIdent(form = ~ 1 | Sex), method = 'ML'",
     "weights=ml.VarIdent(form='~ 1 | Sex'), method='ML'"),
    ("orthodont_compsymm_varident", "Orthodont", "distance ~ age * Sex",
     "correlation = corCompSymm(form = ~ 1 | Subject), weights = varIdent(form = ~ 1 | Sex)",
     "correlation=ml.CorCompSymm(form='~ 1 | Subject'), weights=ml.VarIdent(form='~ 1 | Sex')"),
    ("orthodont_varpower_car1", "Orthodont", "distance ~ age + Sex",
     "weights = varPower(form = ~ age), correlation = corCAR1(form = ~ age | Subject)",
     "weights=ml.VarPower(form='~ age'), correlation=ml.CorCAR1(form='~ age | Subject')"),
    # tests/reference/gls/results.json (its other cases repeat orthodont.json's)
    ("orthodont_compsymm_varident_ml", "Orthodont", "distance ~ age * Sex",
     "weights = varIdent(form = ~ 1 | Sex), correlation = corCompSymm(form = ~ 1 | Subject), "
     "method = 'ML'",
     "weights=ml.VarIdent(form='~ 1 | Sex'), correlation=ml.CorCompSymm(form='~ 1 | Subject'), "
     "method='ML'"),
    ("bodyweight_varpower_car1", "BodyWeight", BODYWEIGHT,
     "weights = varPower(form = ~ Time), correlation = corCAR1(form = ~ Time | Rat)",
     "weights=ml.VarPower(form='~ Time'), correlation=ml.CorCAR1(form='~ Time | Rat')"),
    # tests/reference/gls/classic.json
    ("ovary_ar1", "Ovary", OVARY, "correlation = corAR1(form = ~ 1 | Mare)",
     "correlation=ml.CorAR1(form='~ 1 | Mare')"),
    ("ovary_arma11_ml", "Ovary", OVARY,
     "correlation = corARMA(form = ~ 1 | Mare, p = 1, q = 1), method = 'ML'",
     "correlation=ml.CorARMA(form='~ 1 | Mare', p=1, q=1), method='ML'"),
    ("ovary_arma20", "Ovary", OVARY, "correlation = corARMA(form = ~ 1 | Mare, p = 2)",
     "correlation=ml.CorARMA(form='~ 1 | Mare', p=2)"),
    ("ovary_car1", "Ovary", OVARY, "correlation = corCAR1(form = ~ Time | Mare)",
     "correlation=ml.CorCAR1(form='~ Time | Mare')"),
    ("dialyzer_varpower", "Dialyzer", DIALYZER, "weights = varPower(form = ~ pressure)",
     "weights=ml.VarPower(form='~ pressure')"),
    ("dialyzer_varexp_ml", "Dialyzer", DIALYZER,
     "weights = varExp(form = ~ pressure), method = 'ML'",
     "weights=ml.VarExp(form='~ pressure'), method='ML'"),
    ("dialyzer_varconstpower", "Dialyzer", DIALYZER, "weights = varConstPower(form = ~ pressure)",
     "weights=ml.VarConstPower(form='~ pressure')"),
    ("dialyzer_varcomb", "Dialyzer", DIALYZER,
     "weights = varComb(varIdent(form = ~ 1 | QB), varPower(form = ~ pressure))",
     "weights=ml.VarComb(ml.VarIdent(form='~ 1 | QB'), ml.VarPower(form='~ pressure'))"),
    ("dialyzer_varpower_strata_ar1", "Dialyzer", DIALYZER,
     "weights = varPower(form = ~ pressure | QB), correlation = corAR1(form = ~ 1 | Subject)",
     "weights=ml.VarPower(form='~ pressure | QB'), correlation=ml.CorAR1(form='~ 1 | Subject')"),
    ("dialyzer_varpower_fitted", "Dialyzer", DIALYZER, "weights = varPower()",
     "weights=ml.VarPower()"),
    ("dialyzer_varexp_fitted_ml", "Dialyzer", DIALYZER, "weights = varExp(), method = 'ML'",
     "weights=ml.VarExp(form='~ fitted(.)'), method='ML'"),
    ("bodyweight_varfixed", "BodyWeight", BODYWEIGHT, "weights = varFixed(~ Time)",
     "weights=ml.VarFixed(form='~ Time')"),
    ("bodyweight_compsymm_ml", "BodyWeight", BODYWEIGHT,
     "correlation = corCompSymm(form = ~ 1 | Rat), method = 'ML'",
     "correlation=ml.CorCompSymm(form='~ 1 | Rat'), method='ML'"),
    ("orthodont_corsymm_varident", "Orthodont", "distance ~ age * Sex",
     "correlation = corSymm(form = ~ 1 | Subject), weights = varIdent(form = ~ 1 | age)",
     "correlation=ml.CorSymm(form='~ 1 | Subject'), weights=ml.VarIdent(form='~ 1 | age')"),
    ("wheat2_exp", "Wheat2", WHEAT, f"correlation = corExp(form = {SPACE})",
     f"correlation=ml.CorExp(form='{SPACE}')"),
    ("wheat2_exp_nugget_ml", "Wheat2", WHEAT,
     f"correlation = corExp(form = {SPACE}, nugget = TRUE), method = 'ML'",
     f"correlation=ml.CorExp(form='{SPACE}', nugget=True), method='ML'"),
    ("ovary_exp_nugget", "Ovary", OVARY,
     "correlation = corExp(form = ~ Time | Mare, nugget = TRUE)",
     "correlation=ml.CorExp(form='~ Time | Mare', nugget=True)"),
    ("wheat2_gaus_nugget", "Wheat2", WHEAT, f"correlation = corGaus(form = {SPACE}, nugget = TRUE)",
     f"correlation=ml.CorGaus(form='{SPACE}', nugget=True)"),
    ("wheat2_spher_nugget", "Wheat2", WHEAT,
     f"correlation = corSpher(c(28, 0.2), form = {SPACE}, nugget = TRUE)",
     f"correlation=ml.CorSpher(value=[28, 0.2], form='{SPACE}', nugget=True)"),
    ("wheat2_lin_nugget", "Wheat2", WHEAT,
     f"correlation = corLin(c(30, 0.2), form = {SPACE}, nugget = TRUE)",
     f"correlation=ml.CorLin(value=[30, 0.2], form='{SPACE}', nugget=True)"),
    ("wheat2_ratio_nugget", "Wheat2", WHEAT,
     f"correlation = corRatio(c(12.5, 0.2), form = {SPACE}, nugget = TRUE)",
     f"correlation=ml.CorRatio(value=[12.5, 0.2], form='{SPACE}', nugget=True)"),
]

# (name, dataset, formula, random, R arguments, Python keyword arguments)
_LME = [
    # tests/reference/lme/orthodont.json and results.json
    ("orthodont_plain", "Orthodont", "distance ~ age", "~ 1 | Subject", "", ""),
    ("orthodont_slope", "Orthodont", "distance ~ age", "~ age | Subject", "", ""),
    ("orthodont_ar1", "Orthodont", "distance ~ age * Sex", "~ 1 | Subject",
     "correlation = corAR1()", "correlation=ml.CorAR1()"),
    ("orthodont_varident_ml", "Orthodont", "distance ~ age * Sex", "~ 1 | Subject",
     "weights = varIdent(form = ~ 1 | Sex), method = 'ML'",
     "weights=ml.VarIdent(form='~ 1 | Sex'), method='ML'"),
    ("orthodont_slope_car1", "Orthodont", "distance ~ age", "~ age | Subject",
     "correlation = corCAR1(form = ~ age | Subject)",
     "correlation=ml.CorCAR1(form='~ age | Subject')"),
    ("bodyweight_varpower_car1_rat", "BodyWeight", BODYWEIGHT, "~ Time | Rat",
     "weights = varPower(form = ~ Time), correlation = corCAR1(form = ~ Time | Rat)",
     "weights=ml.VarPower(form='~ Time'), correlation=ml.CorCAR1(form='~ Time | Rat')"),
    # tests/reference/lme/classic.json
    ("bodyweight_varpower_car1", "BodyWeight", BODYWEIGHT, "~ Time | Rat",
     "weights = varPower(), correlation = corCAR1(form = ~ Time)",
     "weights=ml.VarPower(), correlation=ml.CorCAR1(form='~ Time')"),
    ("bodyweight_varpower_time_ml", "BodyWeight", BODYWEIGHT, "~ Time | Rat",
     "weights = varPower(form = ~ Time), method = 'ML'",
     "weights=ml.VarPower(form='~ Time'), method='ML'"),
    ("bodyweight_varexp_time", "BodyWeight", BODYWEIGHT, "~ Time | Rat",
     "weights = varExp(form = ~ Time)", "weights=ml.VarExp(form='~ Time')"),
    ("bodyweight_varexp_fitted_ml", "BodyWeight", BODYWEIGHT, "~ Time | Rat",
     "weights = varExp(), method = 'ML'", "weights=ml.VarExp(), method='ML'"),
    ("bodyweight_exp_nugget", "BodyWeight", BODYWEIGHT, "~ Time | Rat",
     "correlation = corExp(form = ~ Time, nugget = TRUE)",
     "correlation=ml.CorExp(form='~ Time', nugget=True)"),
    ("dialyzer_varident", "Dialyzer", DIALYZER, "~ pressure | Subject",
     "weights = varIdent(form = ~ 1 | QB)", "weights=ml.VarIdent(form='~ 1 | QB')"),
    ("ovary_ar1", "Ovary", OVARY, "~ 1 | Mare", "correlation = corAR1()",
     "correlation=ml.CorAR1()"),
    ("ovary_arma11", "Ovary", OVARY, "~ 1 | Mare", "correlation = corARMA(p = 1, q = 1)",
     "correlation=ml.CorARMA(p=1, q=1)"),
    ("ovary_exp_nugget", "Ovary", OVARY, "~ 1 | Mare",
     "correlation = corExp(form = ~ Time, nugget = TRUE)",
     "correlation=ml.CorExp(form='~ Time', nugget=True)"),
    ("pixel_compsymm", "PixelDogSide", "pixel ~ day + I(day^2)", "~ day | Dog",
     "correlation = corCompSymm(form = ~ 1 | Dog/Side)",
     "correlation=ml.CorCompSymm(form='~ 1 | DogSide')"),
    ("orthodont_corsymm", "Orthodont", "distance ~ age * Sex", "~ age - 1 | Subject",
     "correlation = corSymm()", "correlation=ml.CorSymm()"),
]

# tests/reference/nlme/orange_nlme_shared.json and loblolly.json
_NLME = [
    ("orange_logistic", "Orange", "circumference ~ SSlogis(age, Asym, xmid, scal)",
     "Asym + xmid + scal ~ 1", "Asym ~ 1 | Tree", {"Asym": 192, "xmid": 728, "scal": 353},
     "ML"),
    ("loblolly_asym", "Loblolly", "height ~ SSasymp(age, Asym, R0, lrc)",
     "Asym + R0 + lrc ~ 1", "Asym ~ 1 | Seed", {"Asym": 103, "R0": -8.5, "lrc": -3.3}, "ML"),
    ("loblolly_asym_lrc_reml", "Loblolly", "height ~ SSasymp(age, Asym, R0, lrc)",
     "Asym + R0 + lrc ~ 1", "Asym + lrc ~ 1 | Seed", {"Asym": 103, "R0": -8.5, "lrc": -3.3},
     "REML"),
]


def _join(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def _nlme_calls(formula: str, fixed: str, random: str, start: dict[str, float],
                method: str) -> tuple[str, str]:
    r_start = ", ".join(f"{k} = {v}" for k, v in start.items())
    r_call = (f"nlme({formula}, data = data, fixed = {fixed}, random = {random}, "
              f"start = c({r_start}), method = '{method}')")
    py_call = (f"ml.nlme('{formula}', data, fixed='{fixed}', random='{random}', "
               f"start={start!r}, method='{method}')")
    return r_call, py_call


def _build() -> dict[str, NlmeCase]:
    cases: list[NlmeCase] = []
    for name, dataset, formula, r_args, py_args in _GLS:
        cases.append(_reference(
            "gls", name, dataset, f"gls({_join(formula, 'data = data', r_args)})",
            f"ml.gls({_join(repr(formula), 'data', py_args)})",
            "tests/reference/gls/"))
    for name, dataset, formula, random, r_args, py_args in _LME:
        cases.append(_reference(
            "lme", name, dataset,
            f"lme({_join(formula, 'data = data', f'random = {random}', r_args)})",
            f"ml.lme({_join(repr(formula), 'data', f'random={random!r}', py_args)})",
            "tests/reference/lme/"))
    for name, dataset, formula, fixed, random, start, method in _NLME:
        r_call, py_call = _nlme_calls(formula, fixed, random, start, method)
        cases.append(_reference("nlme", name, dataset, r_call, py_call,
                                "tests/reference/nlme/"))
    cases.append(NlmeCase(
        case_id="lme/ar1_10k", engine="lme", data_path=DATA_DIR / "nlme_ar1_10k.csv.gz",
        levels_path=None, factors=("subject",),
        r_call="lme(y ~ time + x, data = data, random = ~ 1 | subject, "
               "correlation = corAR1(form = ~ time | subject))",
        py_call="ml.lme('y ~ time + x', data, random='~ 1 | subject', "
                "correlation=ml.CorAR1(form='~ time | subject'))",
        source="nlme_data.py", description="simulated, 10,000 subjects x 10 times, AR(1)",
        default_repeats=LARGE_REPEATS, target_seconds=5.0, generated=True))
    r_call, py_call = _nlme_calls("y ~ SSlogis(age, Asym, xmid, scal)", "Asym + xmid + scal ~ 1",
                                  "Asym + xmid ~ 1 | subject",
                                  {"Asym": 190, "xmid": 700, "scal": 350}, "ML")
    cases.append(NlmeCase(
        case_id="nlme/logistic_2k", engine="nlme", data_path=DATA_DIR / "nlme_logistic_2k.csv.gz",
        levels_path=None, factors=("subject",), r_call=r_call, py_call=py_call,
        source="nlme_data.py",
        description="simulated, 2,000 subjects x 10 ages (20,000 rows), two random parameters",
        default_repeats=LARGE_REPEATS, target_seconds=10.0, target_ratio=0.2, generated=True))
    return {c.case_id: c for c in cases}


CASES: dict[str, NlmeCase] = _build()


def get_case(case_id: str) -> NlmeCase:
    """The case named ``case_id`` (``KeyError`` lists the known ones)."""
    try:
        return CASES[case_id]
    except KeyError:
        raise KeyError(f"unknown nlme case {case_id!r}; known: {', '.join(CASES)}") from None


def select(spec: str) -> list[str]:
    """Case ids from a comma-separated list of ids, engines (``gls``, ``lme``, ``nlme``),
    ``reference``, ``large`` or ``all``."""
    out: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item == "all":
            chosen = list(CASES)
        elif item == "reference":
            chosen = [c for c, v in CASES.items() if not v.generated]
        elif item == "large":
            chosen = [c for c, v in CASES.items() if v.generated]
        elif item in ("gls", "lme", "nlme"):
            chosen = [c for c, v in CASES.items() if v.engine == item]
        else:
            chosen = [get_case(item).case_id]
        out += [c for c in chosen if c not in out]
    return out


def ensure_data(case: NlmeCase) -> Path:
    """The case's data file, simulated first if it is a missing generated file."""
    if case.generated and not case.data_path.exists():
        import nlme_data

        nlme_data.ensure(case.data_path)
    if not case.data_path.exists():
        raise FileNotFoundError(f"{case.data_path} is missing")
    return case.data_path


def _level_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def read_case_data(case: NlmeCase) -> Any:
    """The case's data as a pandas DataFrame, factors as ``category`` in R's level order
    (ordered where R's are)."""
    import pandas as pd

    df = pd.read_csv(ensure_data(case), dtype={name: str for name in case.factors},
                     float_precision="round_trip")
    meta: dict[str, Any] = {}
    if case.levels_path is not None:
        meta = json.loads(case.levels_path.read_text())
    for name in case.factors:
        labels = df[name].astype(str)
        order = meta.get("levels", {}).get(name) or sorted(labels.unique(), key=_level_key)
        ordered = bool(meta.get("ordered", {}).get(name, False))
        df[name] = pd.Categorical(labels, categories=order, ordered=ordered)
    return df
