"""Building a model one step at a time.

:func:`step` is lmerTest's ``step``: backward elimination, first of random-effects terms
(``ranova``: a term ``(x | g)`` is reduced to ``(1 | g)``, a ``(1 | g)`` term removed; each
reduction tested by a likelihood-ratio test of the fits with the model's REML/ML criterion,
eliminated while p > ``alpha_random``), then of fixed-effects terms that are not contained in
another term (F tests with Satterthwaite df, eliminated while p > ``alpha_fixed``).
:func:`add_random_slopes` goes the other way: it tries each candidate random slope in turn and
keeps those the likelihood-ratio test supports.

A generalized linear mixed model is reduced the same way on its random part (likelihood-ratio
tests of its maximum-likelihood fits); its fixed-effects terms, which have no F tests with
denominator df, are eliminated by likelihood-ratio tests of the fits without each candidate
term (R's ``drop1(fit, test = "Chisq")``), under the same marginality rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.errors import (
    ArgumentError,
    MultilevelError,
    public_api,
    public_methods,
)
from multilevel.formula.parser import RandomTermSpec, term_labels
from multilevel.inference.arguments import check_fit, check_flag, check_probability
from multilevel.inference.f_tests import contrast_test, type3_hypotheses
from multilevel.inference.refit import formula_text, random_text, refit_formula
from multilevel.inference.reporting import html_report, text_report
from multilevel.results.base import MixedModelResult
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
        eliminated; for a GLMM step, term, npar, loglik, chisq, df (of the fit without the
        term), p_value, eliminated.
    formula : str
        The final model's formula.
    model : LinearMixedModelResult or GeneralizedLinearMixedModelResult
        The final model.
    """

    random: pd.DataFrame
    fixed: pd.DataFrame
    formula: str
    model: MixedModelResult

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
    fit: MixedModelResult
    p: float
    row: dict[str, object]


def _fixed_terms(fit: MixedModelResult) -> list[str]:
    labels = list(term_labels(fit.model.design.formula.fixed))
    if "1" not in labels:
        labels.insert(0, "0")
    return [lab.replace("**", "^") for lab in labels]


def _reduction(spec: RandomTermSpec) -> RandomTermSpec | None:
    """lmerTest's reduce.terms: (x | g) -> (1 | g) when it has an intercept and more; else
    the term goes."""
    labels = term_labels(spec.lhs)
    if "1" in labels and len(labels) > 1:
        return RandomTermSpec(lhs="1", group_factors=spec.group_factors,
                              group_name=spec.group_name)
    return None


def _lrt(full: MixedModelResult, reduced: MixedModelResult) -> tuple[float, int, float]:
    chisq = max(2.0 * (full.loglik - reduced.loglik), 0.0)
    df = abs(full.n_params - reduced.n_params)
    return chisq, df, float(stats.chi2.sf(chisq, df)) if df > 0 else float("nan")


def _marginal(terms: Sequence[str]) -> list[str]:
    """The terms not contained in another (the candidates for elimination under
    marginality)."""
    return [t for t in terms if not any(t != o and set(t.split(":")) < set(o.split(":"))
                                        for o in terms)]


def _fixed_tests(fit: MixedModelResult, response: str, fixed: list[str],
                 random: list[RandomTermSpec], offsets: Sequence[str],
                 ) -> tuple[pd.DataFrame, dict[str, MixedModelResult]]:
    """Tests of the fixed-effects terms that may be eliminated: type-III F tests with
    Satterthwaite df for a linear model (as lmerTest's step), likelihood-ratio tests of the
    fits without each term for a GLMM (with those fits, for the next step)."""
    if isinstance(fit, LinearMixedModelResult):
        hypotheses = type3_hypotheses(fit)
        return pd.DataFrame({t: contrast_test(fit, hypotheses[t])
                             for t in _marginal(list(hypotheses))}).T, {}
    rows: dict[str, dict[str, float]] = {}
    fits: dict[str, MixedModelResult] = {}
    for term in _marginal([t for t in fixed if t not in ("0", "1")]):
        kept = [t for t in fixed if t != term]
        reduced = refit_formula(fit, formula_text(response, kept or ["1"], random, offsets))
        chisq, df, p = _lrt(fit, reduced)
        rows[term] = {"npar": reduced.n_params, "loglik": reduced.loglik, "chisq": chisq,
                      "df": df, "p_value": p}
        fits[term] = reduced
    return pd.DataFrame(rows).T, fits


@public_api
def step(fit: MixedModelResult, alpha_random: float = 0.1, alpha_fixed: float = 0.05,
         reduce_random: bool = True, reduce_fixed: bool = True) -> StepResult:
    """Backward elimination of random- then fixed-effects terms, as lmerTest's ``step``.

    The last random-effects term is never removed (a model without random effects is not a
    mixed model). Models are refitted from the fit's formula and data. For a GLMM the random
    terms are tested as for a linear model (likelihood-ratio tests) and the fixed-effects terms
    by likelihood-ratio tests too (see the module docstring).
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
            reduced = refit_formula(current, formula_text(response, fixed, new_random, offsets))
            chisq, df, p = _lrt(current, reduced)
            trials.append(_Trial(random=new_random, fit=reduced, p=p, row={
                "step": round_, "term": random_text(spec),
                "reduced_to": random_text(smaller) if smaller else "(removed)",
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
        table, reduced_fits = _fixed_tests(current, response, fixed, random, offsets)
        p_values = table["p_value"].astype(float)
        term = str(p_values.idxmax())
        drop = float(p_values[term]) > alpha_fixed
        for name, row in table.iterrows():
            entry: dict[str, object] = {"step": round_, "term": name}
            if isinstance(current, LinearMixedModelResult):
                entry.update(f_value=row["f_value"], num_df=int(row["num_df"]),
                             den_df=row["den_df"])
            else:
                entry.update(npar=int(row["npar"]), loglik=row["loglik"], chisq=row["chisq"],
                             df=int(row["df"]))
            entry.update(p_value=row["p_value"], eliminated=bool(drop and name == term))
            fixed_rows.append(entry)
        if not drop:
            break
        fixed = [t for t in fixed if t != term]
        current = reduced_fits.get(term) or refit_formula(
            current, formula_text(response, fixed or ["1"], random, offsets))
    formula = formula_text(response, fixed or ["1"], random, offsets)
    return StepResult(random=pd.DataFrame(rand_rows), fixed=pd.DataFrame(fixed_rows),
                      formula=formula, model=current)


@public_api
def add_random_slopes(fit: MixedModelResult, candidates: Sequence[str],
                      group: str | None = None, alpha: float = 0.05,
                      ) -> tuple[pd.DataFrame, MixedModelResult]:
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
            raise MultilevelError(f"{x!r} already has a random slope in {random_text(spec)}")
        bigger = RandomTermSpec(lhs=f"{spec.lhs} + {x}", group_factors=spec.group_factors,
                                group_name=spec.group_name)
        new_random = random[:i] + [bigger] + random[i + 1:]
        formula = formula_text(response, fixed, new_random, offsets)
        candidate = refit_formula(current, formula)
        chisq, df, p = _lrt(candidate, current)
        added = bool(p < alpha)
        rows.append({"candidate": x, "formula": formula, "chisq": chisq, "df": df,
                     "p_value": p, "added": added})
        if added:
            random, current = new_random, candidate
    return pd.DataFrame(rows), current
