"""Linear mixed models with nlme's residual variance functions and correlation structures, as
nlme's ``lme``: y = X beta + Z b + e, Var(e_g) = sigma^2 S_g C_g S_g within each group g of the
correlation structure (S_g the variance function's sd multipliers, C_g the correlation matrix).

For given variance and correlation parameters psi, the rows are whitened group by group with
F_g S_g^-1 (F_g' F_g = C_g^-1, nlme's ``corFactor``), which turns the model into an ordinary
linear mixed model on the whitened y, X and Z. Whitening mixes rows only within a correlation
group, so each group must lie within one level of every random-effects grouping factor (nlme's
rule: the correlation's group is the innermost level). The criterion is then the profiled
ML/REML deviance of that model (the blocked-Cholesky engine of :mod:`multilevel.models.lmm`)
plus the Jacobian of the whitening, 2 sum_g log|S_g C_g^{1/2}|, and psi is optimized outside
the profiled theta (BOBYQA over nlme's unconstrained scale, a full LMM fit inside each step).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from multilevel.data.design import ModelDesign, build_design
from multilevel.data.frame import to_pandas
from multilevel.errors import ArgumentError, DataError, MultilevelWarning
from multilevel.linalg.blocked_cholesky import (
    NotPositiveDefinite,
    profiled_terms,
    solve_fixed_and_modes,
)
from multilevel.linalg.cross_products import cross_products
from multilevel.models.lmm import ModelStages
from multilevel.models.predictor import make_blocks
from multilevel.models.whitening import Optimum, Whitening, alternate_fitted
from multilevel.optim.optsummary import OptSummary
from multilevel.structures.correlation import CorrelationStructure
from multilevel.structures.variance import VarComb, VarianceFunction

METHODS = ("REML", "ML")


@dataclass(frozen=True)
class LmeFit:
    """What :func:`lme_fit` returns: the linear mixed model on the whitened data at the
    optimum (fit it for the estimates), the criterion with the whitening's Jacobian, and the
    structures' parameters on nlme's natural scale."""

    model: ModelStages
    opt: OptSummary
    deviance: float
    variance_parameters: np.ndarray
    correlation_parameters: np.ndarray
    outer: OptSummary | None
    psi: np.ndarray | None = None  # the structures' unconstrained parameters (nlme reuses)
    design: ModelDesign | None = None  # the data-scale design (the results' fitted values)
    structures: Whitening | None = None  # the structures on the rows (residuals, intervals)


@dataclass(frozen=True)
class LmeSetup:
    """An ``lme`` model before any optimization, as :func:`lme_setup` builds it: the design on
    the data's scale, the residual structures initialized on its rows, and the criterion.
    :func:`lme_fit` optimizes it; :meth:`fit_at` gives the fit at given parameters without
    optimizing (a saved fit loaded again).

    Attributes
    ----------
    design : ModelDesign
        The formula's design (fixed and random effects) on the data's scale.
    structures : Whitening
        The variance function and correlation structure on the design's rows (the
        correlation's group set to nlme's default, the innermost level, when not given).
    reml : bool
        REML (else ML) criterion.
    """

    design: ModelDesign
    structures: Whitening
    reml: bool

    def with_structures(self, structures: Whitening) -> LmeSetup:
        """The same set-up with other structures on the same rows (e.g. with the fitted
        values a fitted-value variance function last read: ``structures.with_fitted``)."""
        return replace(self, structures=structures)

    def fit_at(self, theta: np.ndarray, psi: np.ndarray, opt: OptSummary) -> LmeFit:
        """The fit at the relative covariance parameters ``theta`` and the structures'
        unconstrained parameters ``psi`` without optimizing: the linear mixed model of the
        rows whitened at ``psi``, with the optimizer record ``opt`` (its ``initial`` the
        model's start) and the criterion evaluated at ``theta``.

        Raises
        ------
        ArgumentError
            ``psi`` or ``theta`` of another length than the structures' or the model's
            parameters.
        """
        psi = np.asarray(psi, dtype=float)
        theta = np.asarray(theta, dtype=float)
        if psi.shape != self.structures.start.shape:
            raise ArgumentError(f"psi has {psi.size} values; the structures on these rows "
                                f"have {self.structures.start.size} parameters")
        model, logdet = whitened_stages(self.design, self.structures, psi, self.reml,
                                        start=opt.initial, calc_derivs=True)
        if theta.shape != (model.layout.n_theta,):
            raise ArgumentError(f"theta has {theta.size} values; the model's random effects "
                                f"have {model.layout.n_theta} parameters")
        deviance = float(model.objective(theta)) + 2.0 * logdet
        return _lme_fit_record(model, opt, deviance, None, psi, self.design, self.structures)


def lme_setup(formula: str, data: Any, random: str | None = None,
              weights: VarianceFunction | VarComb | None = None,
              correlation: CorrelationStructure | None = None, method: str = "REML",
              design: ModelDesign | None = None) -> LmeSetup:
    """The steps of an ``lme`` fit before its optimization: check the arguments, build the
    design of ``formula`` plus nlme's one-sided ``random`` on ``data`` (or take ``design``,
    already built on ``data``), and initialize the structures on its rows (see
    :class:`LmeSetup`)."""
    if method not in METHODS:
        raise ArgumentError(f"method must be 'REML' or 'ML', got {method!r:.60}")
    if random is not None:
        if not isinstance(random, str) or "|" not in random or "~" not in random:
            raise ArgumentError(f"random must be nlme's one-sided formula such as "
                                f"'~ 1 | Subject', got {random!r:.60}")
        lhs, group = random.split("~", 1)[1].split("|")
        formula = f"{formula} + ({lhs.strip()} | {group.strip()})"
    frame = to_pandas(data)
    if design is None:
        design = build_design(formula, frame)
    if design.offset is not None or design.weights is not None:
        raise ArgumentError("lme does not take offsets or prior weights yet")
    rows: Any = frame.iloc[design.row_index].reset_index(drop=True)
    if correlation is not None:
        form = correlation.parsed
        # nlme: the innermost level (a nested a/b names its columns' combination)
        group_col = form.group_text or innermost_group(design, random)
        if not form.groups:
            correlation = replace(correlation, form=f"{correlation.form.strip()} | {group_col}")
        missing = [c for c in correlation.parsed.groups if c not in rows.columns]
        if missing:
            raise DataError(f"lme: the correlation's grouping column {missing[0]!r} is not in "
                            "the data")
    structures = Whitening.build(weights, correlation, rows)
    for term in design.terms:
        if not structures.constant_within_groups(term.factor.codes):
            raise DataError(
                f"lme: correlation group {group_col!r} is not nested in the random-"
                f"effects factor {term.factor.name!r} (a group spans several of its "
                "levels); the correlation's group must be the innermost level")
    return LmeSetup(design=design, structures=structures, reml=method == "REML")


def whitened_design(design: ModelDesign, structures: Whitening,
                    psi: np.ndarray) -> tuple[ModelDesign, float]:
    """``design`` with y, X and every Z whitened at the structures' parameters ``psi``, and
    the whitening's log-Jacobian sum_g log|S_g C_g^{1/2}|."""
    (X, y, *Zs), logdet = structures.whiten(psi, [design.X, design.y,
                                                  *(t.Z for t in design.terms)])
    terms = tuple(replace(t, Z=z) for t, z in zip(design.terms, Zs, strict=True))
    return replace(design, X=X, y=y, terms=terms), logdet


def whitened_stages(design: ModelDesign, structures: Whitening, psi: np.ndarray, reml: bool,
                    start: np.ndarray | None = None,
                    calc_derivs: bool = False) -> tuple[ModelStages, float]:
    """The linear mixed model of :func:`whitened_design` (not optimized) and the
    log-Jacobian."""
    d, logdet = whitened_design(design, structures, psi)
    with warnings.catch_warnings():
        # the whitened columns' scales say nothing about the user's data
        warnings.simplefilter("ignore", MultilevelWarning)
        model = ModelStages(d.formula, None, reml=reml, calc_derivs=calc_derivs,
                            start=start, design=d)
    return model, logdet


def _lme_fit_record(model: ModelStages, opt: OptSummary, deviance: float,
                    outer: OptSummary | None, psi: np.ndarray, design: ModelDesign,
                    structures: Whitening) -> LmeFit:
    var_nat, cor_nat = structures.natural(psi)
    return LmeFit(model=model, opt=opt, deviance=deviance,
                  variance_parameters=var_nat, correlation_parameters=cor_nat, outer=outer,
                  psi=np.asarray(psi, dtype=float), design=design, structures=structures)


def lme_fit(formula: str, data: Any, random: str | None = None,
            weights: VarianceFunction | VarComb | None = None,
            correlation: CorrelationStructure | None = None,
            method: str = "REML", fitted: np.ndarray | None = None,
            design: ModelDesign | None = None) -> LmeFit:
    """Estimate an ``lme`` model (see the module docstring); the public wrapper turns the
    result into a fitted model. ``fitted`` holds a fitted-value variance function's fitted
    values fixed (nlme's LME step inside ``nlme``) instead of refreshing them from the fit;
    ``design``, the formula's design on ``data`` already built (nlme's repeated LME steps on
    new columns of the same structure), skips building it. The set-up before the
    optimization is :func:`lme_setup`."""
    setup = lme_setup(formula, data, random, weights, correlation, method, design)
    design, structures, reml = setup.design, setup.structures, setup.reml

    # the closures read the current structures: the optimization below swaps in structures
    # with refreshed fitted values
    def whitened(psi: np.ndarray) -> tuple[ModelDesign, float]:
        return whitened_design(design, structures, psi)

    def stages(psi: np.ndarray, start: np.ndarray | None = None,
               calc_derivs: bool = False) -> tuple[ModelStages, float]:
        return whitened_stages(design, structures, psi, reml, start, calc_derivs)

    def inner(psi: np.ndarray, start: np.ndarray | None = None,
              calc_derivs: bool = False) -> tuple[ModelStages, OptSummary, float]:
        model, logdet = stages(psi, start, calc_derivs)
        opt = model.optimize()
        return model, opt, float(opt.fmin) + 2.0 * logdet

    # theta and psi are optimized together, as nlme does: an outer optimizer over psi
    # around a full inner fit sees the inner optimizer's stopping noise and stops early
    model, opt, _ = inner(structures.start)
    n_theta = model.layout.n_theta
    layout, response, n_levels = model.layout, model.response, model.A.n_levels
    # the engine's dense blocks: [X y] and every block after the first (glmm's measure)
    dense_order = model.n_fixed + 1 + sum(nl * b.k for nl, b in zip(
        model.predictor.n_levels[1:], model.blocks[1:], strict=True))
    lower = np.r_[model.layout.lower_bounds(), np.full(structures.start.size, -np.inf)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MultilevelWarning)
        original = ModelStages(design.formula, None, reml=reml, calc_derivs=False,
                               design=design)

    def joint(x: np.ndarray) -> float:
        # the criterion ModelStages(whitened design).objective(theta) computes, without
        # building the model (its layout, scale and memory checks): that was most of an
        # evaluation's time on small data. The same arrays in the same order, so the same
        # numbers to the last bit.
        # the optimizer's trial points may overflow (a variance function's weights at extreme
        # parameters): such a point's criterion is not finite and is rejected, silently
        with np.errstate(all="ignore"):
            d, logdet = whitened(x[n_theta:])
            blocks = make_blocks(d)
            A = cross_products([b.codes for b in blocks], [b.Z for b in blocks], n_levels,
                               centred_xy(d.X, d.y), None)
            try:
                terms = profiled_terms(A, layout.templates(x[:n_theta]))
            except NotPositiveDefinite:
                return math.inf
            return response.criterion(*terms, reml) + 2.0 * logdet

    def optimize(current: Whitening, start: np.ndarray) -> Optimum:
        nonlocal structures
        structures = current
        return structures.optimize(joint, start, lower, dense_order)

    def estimate(current: Whitening, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # nlme's lme: the fitted values of the innermost level, X beta + Z b, on the data's
        # scale (b, the conditional modes, are the same in the whitened model)
        nonlocal structures
        structures = current
        theta = x[:n_theta]
        model = stages(x[n_theta:])[0]
        beta_centred, u = solve_fixed_and_modes(model.A, model.factor(theta))
        T, c = model.fixed_transform()
        fitted = design.X @ (T @ beta_centred + c)
        for blk, modes, tmpl in zip(original.blocks, u, original.layout.templates(theta),
                                    strict=True):
            fitted += np.einsum("nk,nk->n", blk.Z, (modes @ tmpl.T)[blk.codes])
        return fitted, np.empty(0)

    outer: OptSummary | None = None
    if structures.start.size and fitted is not None and structures.uses_fitted:
        structures = structures.with_fitted(fitted)
        x, outer = optimize(structures, np.r_[opt.final, structures.start])
        psi = x[n_theta:]
        model, opt, deviance = inner(psi, start=x[:n_theta], calc_derivs=True)
    elif structures.start.size:
        structures, x, outer = alternate_fitted(structures, np.r_[opt.final, structures.start],
                                                optimize, estimate)
        psi = x[n_theta:]
        model, opt, deviance = inner(psi, start=x[:n_theta], calc_derivs=True)
    else:
        psi = structures.start
        model, opt, deviance = inner(psi, start=opt.final, calc_derivs=True)
    return _lme_fit_record(model, opt, deviance, outer, psi, design, structures)


def innermost_group(design: ModelDesign, random: str | None) -> str:
    """nlme's default correlation group, the innermost random-effects level, as a form's
    grouping: ``random``'s own ``a/b`` when given, else the factor with the most levels
    (a nested factor ``b:a``, lme4's expansion of ``a/b``, as ``a/b``)."""
    if random is not None:  # an interaction a:b groups as a/b's innermost level
        return random.split("|", 1)[1].strip().replace(":", "/")
    factor = max((t.factor for t in design.terms), key=lambda f: len(f.levels))
    return "/".join(reversed(factor.name.split(":")))


def centred_xy(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[X y] as :class:`ModelStages` hands it to the cross-products for a design without
    prior weights or offset: when a column of X is all ones (the intercept), the other
    columns and y centred on their means (an exact reparametrization that keeps [X y]'[X y]
    from cancelling), else as they are."""
    is_one = np.all(X == 1.0, axis=0)
    if not is_one.any():
        return np.column_stack([X, y])
    shift = np.average(X, axis=0, weights=None)
    shift[is_one] = 0.0
    return np.column_stack([X - shift, y - float(np.average(y, weights=None))])
