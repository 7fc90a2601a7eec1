"""Building a model one step at a time.

:func:`step` is lmerTest's ``step``: backward elimination, first of random-effects terms
(``ranova``: a term ``(x | g)`` is reduced to ``(1 | g)``, a ``(1 | g)`` term removed; each
reduction tested by a likelihood-ratio test of the fits with the model's REML/ML criterion,
eliminated while p > ``alpha_random``), then of fixed-effects terms that are not contained in
another term (F tests with Satterthwaite df, eliminated while p > ``alpha_fixed``).
:func:`add_random_slopes` goes the other way: it tries each candidate random slope in turn and
keeps those the likelihood-ratio test supports.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.errors import (
    ArgumentError,
    MultilevelError,
    MultilevelWarning,
    public_api,
    public_methods,
)
from multilevel.formula.parser import RandomTermSpec, term_labels
from multilevel.inference.arguments import check_fit, check_flag, check_probability
from multilevel.inference.f_tests import contrast_test, type3_hypotheses
from multilevel.inference.reporting import html_report, text_report
from multilevel.results.lmm_result import LinearMixedModelResult


@public_methods
@dataclass(frozen=True)
class StepResult:
    """The path of a stepwise selection.

    Attributes
    ----------
    random : pandas.DataFrame
        One row per random-effects reduction tried: step, term, reduced_to, npar, loglik,
        chisq, df, p_value, eliminated.
    fixed : pandas.DataFrame
        One row per fixed-effects term tested: step, term, f_value, num_df, den_df, p_value,
        eliminated.
    formula : str
        The final model's formula.
    model : LinearMixedModelResult
        The final model.
    """

    random: pd.DataFrame
    fixed: pd.DataFrame
    formula: str
    model: LinearMixedModelResult

    def _tables(self) -> dict[str, pd.DataFrame]:
        return {"Backward reduced random-effects table": self.random,
                "Backward reduced fixed-effects table": self.fixed}

    def __str__(self) -> str:
        return text_report("Stepwise selection", [f"Model found: {self.formula}"],
                           self._tables())

    def _repr_html_(self) -> str:
        return html_report("Stepwise selection", [f"Model found: {self.formula}"],
                           self._tables())


@dataclass
class _Trial:
    """One random-effects reduction tried in a step."""

    random: list[RandomTermSpec]
    fit: LinearMixedModelResult
    p: float
    row: dict[str, object]


def _random_text(spec: RandomTermSpec) -> str:
    lhs = spec.lhs.replace("**", "^")
    return f"({lhs} | {spec.group_text})"


def _formula(response: str, fixed: Sequence[str], random: Sequence[RandomTermSpec],
             offsets: Sequence[str] = ()) -> str:
    rhs = [*fixed, *(f"offset({o.replace('**', '^')})" for o in offsets),
           *(_random_text(r) for r in random)]
    return f"{response.replace('**', '^')} ~ {' + '.join(rhs)}"


def _fixed_terms(fit: LinearMixedModelResult) -> list[str]:
    labels = list(term_labels(fit.model.design.formula.fixed))
    if "1" not in labels:
        labels.insert(0, "0")
    return [lab.replace("**", "^") for lab in labels]


def _refit(fit: LinearMixedModelResult, formula: str) -> LinearMixedModelResult:
    """``formula`` fitted to the fit's data with every other setting of its model kept."""
    if fit.model.data is None:
        raise MultilevelError("this fit does not keep its data (it was built from a design); "
                              "refit it with multilevel.lmer(formula, data) first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MultilevelWarning)
        model = fit.model.replace(formula=formula)
        return LinearMixedModelResult.from_model(model, model.optimize())


def _reduction(spec: RandomTermSpec) -> RandomTermSpec | None:
    """lmerTest's reduce.terms: (x | g) -> (1 | g) when it has an intercept and more; else
    the term goes."""
    labels = term_labels(spec.lhs)
    if "1" in labels and len(labels) > 1:
        return RandomTermSpec(lhs="1", group_factors=spec.group_factors,
                              group_name=spec.group_name)
    return None


def _lrt(full: LinearMixedModelResult, reduced: LinearMixedModelResult,
         ) -> tuple[float, int, float]:
    chisq = max(2.0 * (full.loglik - reduced.loglik), 0.0)
    df = abs(full.n_params - reduced.n_params)
    return chisq, df, float(stats.chi2.sf(chisq, df)) if df > 0 else float("nan")


def _fixed_tests(fit: LinearMixedModelResult) -> pd.DataFrame:
    """Type-III F tests of the fixed-effects terms not contained in another term: the
    candidates for elimination under marginality, as lmerTest's step."""
    hypotheses = type3_hypotheses(fit)
    candidates = [t for t in hypotheses
                  if not any(t != o and set(t.split(":")) < set(o.split(":"))
                             for o in hypotheses)]
    return pd.DataFrame({t: contrast_test(fit, hypotheses[t]) for t in candidates}).T


@public_api
def step(fit: LinearMixedModelResult, alpha_random: float = 0.1, alpha_fixed: float = 0.05,
         reduce_random: bool = True, reduce_fixed: bool = True) -> StepResult:
    """Backward elimination of random- then fixed-effects terms, as lmerTest's ``step``.

    The last random-effects term is never removed (a model without random effects is not a
    mixed model). Models are refitted from the fit's formula and data.
    """
    check_fit(fit)
    alpha_random = check_probability(alpha_random, "alpha_random")
    alpha_fixed = check_probability(alpha_fixed, "alpha_fixed")
    reduce_random = check_flag(reduce_random, "reduce_random")
    reduce_fixed = check_flag(reduce_fixed, "reduce_fixed")
    response = fit.model.design.formula.response
    offsets = fit.model.design.formula.offsets
    random = list(fit.model.design.formula.random)
    fixed = _fixed_terms(fit)
    current = fit
    rand_rows: list[dict[str, object]] = []
    round_ = 0
    while reduce_random:
        round_ += 1
        trials: list[_Trial] = []
        for i, spec in enumerate(random):
            smaller = _reduction(spec)
            if smaller is None and len(random) == 1:
                continue
            new_random = random[:i] + ([smaller] if smaller else []) + random[i + 1:]
            reduced = _refit(current, _formula(response, fixed, new_random, offsets))
            chisq, df, p = _lrt(current, reduced)
            trials.append(_Trial(random=new_random, fit=reduced, p=p, row={
                "step": round_, "term": _random_text(spec),
                "reduced_to": _random_text(smaller) if smaller else "(removed)",
                "npar": reduced.n_params, "loglik": reduced.loglik, "chisq": chisq, "df": df,
                "p_value": p, "eliminated": False}))
        if not trials:
            break
        worst = max(trials, key=lambda t: -1.0 if np.isnan(t.p) else t.p)
        drop = worst.p > alpha_random
        worst.row["eliminated"] = bool(drop)
        rand_rows += [t.row for t in trials]
        if not drop:
            break
        random, current = worst.random, worst.fit
    fixed_rows: list[dict[str, object]] = []
    round_ = 0
    while reduce_fixed and any(t not in ("0", "1") for t in fixed):
        round_ += 1
        table = _fixed_tests(current)
        term = str(table["p_value"].astype(float).idxmax())
        drop = float(table["p_value"].astype(float)[term]) > alpha_fixed
        for name, row in table.iterrows():
            fixed_rows.append({"step": round_, "term": name, "f_value": row["f_value"],
                               "num_df": int(row["num_df"]), "den_df": row["den_df"],
                               "p_value": row["p_value"], "eliminated": bool(drop and
                                                                            name == term)})
        if not drop:
            break
        fixed = [t for t in fixed if t != term]
        current = _refit(current, _formula(response, fixed or ["1"], random, offsets))
    formula = _formula(response, fixed or ["1"], random, offsets)
    return StepResult(random=pd.DataFrame(rand_rows), fixed=pd.DataFrame(fixed_rows),
                      formula=formula, model=current)


@public_api
def add_random_slopes(fit: LinearMixedModelResult, candidates: Sequence[str],
                      group: str | None = None, alpha: float = 0.05,
                      ) -> tuple[pd.DataFrame, LinearMixedModelResult]:
    """Forward step: add each candidate variable as a (correlated) random slope of ``group``
    in turn, keeping it when the likelihood-ratio test against the current model has
    p < ``alpha``.

    Returns the table of tries (candidate, formula, chisq, df, p_value, added) and the final
    model.
    """
    check_fit(fit)
    alpha = check_probability(alpha, "alpha")
    if isinstance(candidates, str) or not all(isinstance(c, str) for c in candidates):
        raise ArgumentError(f"candidates must be a list of column names, got "
                            f"{type(candidates).__name__} {candidates!r}")
    if group is not None and not isinstance(group, str):
        raise ArgumentError(f"group must be the name of a grouping factor or None, got "
                            f"{type(group).__name__} {group!r}")
    response = fit.model.design.formula.response
    offsets = fit.model.design.formula.offsets
    random = list(fit.model.design.formula.random)
    groups = [r.group_name for r in random]
    if group is None:
        if len(set(groups)) != 1:
            raise MultilevelError(f"the model has several grouping factors ({', '.join(groups)})"
                                  "; say which one gets the slopes with group=")
        group = groups[0]
    if group not in groups:
        raise MultilevelError(f"{group!r} is not a grouping factor of the model "
                              f"({', '.join(groups)})")
    fixed = _fixed_terms(fit)
    current = fit
    rows = []
    for x in candidates:
        i = groups.index(group)
        spec = random[i]
        if x in term_labels(spec.lhs):
            raise MultilevelError(f"{x!r} already has a random slope in {_random_text(spec)}")
        bigger = RandomTermSpec(lhs=f"{spec.lhs} + {x}", group_factors=spec.group_factors,
                                group_name=spec.group_name)
        new_random = random[:i] + [bigger] + random[i + 1:]
        formula = _formula(response, fixed, new_random, offsets)
        candidate = _refit(current, formula)
        chisq, df, p = _lrt(candidate, current)
        added = bool(p < alpha)
        rows.append({"candidate": x, "formula": formula, "chisq": chisq, "df": df,
                     "p_value": p, "added": added})
        if added:
            random, current = new_random, candidate
    return pd.DataFrame(rows), current
