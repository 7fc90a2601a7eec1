"""Estimated marginal means, their contrasts and simple slopes, as R's emmeans (Lenth;
Searle, Speed & Milliken 1980 for the definition).

A marginal mean is the model's prediction at one combination of the ``specs`` factors, averaged
over the reference grid's other factors (equal weights unless ``weights=``) with covariates at
their means: a linear function l' beta of the coefficients, with standard error
sqrt(l' V l) and denominator df from the fit's kind (see
:mod:`multilevel.inference.reference_grid`). A contrast is a linear combination c' of the means
of one ``by`` group, itself a linear function (c' L) beta. A simple slope is the change of the
linear predictor per unit of a covariate, a forward difference of the grid's model matrix over
0.001 of the covariate's range (as emmeans's ``emtrends``; exact for terms linear in it).

On the response scale (``type="response"`` for a GLMM) means and interval ends are put through
the inverse link, standard errors through its derivative (the delta method), and tests stay on
the link scale; contrasts of log- or logit-link means become ratios (rate or odds ratios).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import ArgumentError, ColumnNotFoundError, public_api, public_methods
from multilevel.inference.arguments import check_probability, check_text
from multilevel.inference.multiplicity import (
    CONTRAST_METHODS,
    DEFAULT_ADJUST,
    adjusted_p,
    check_adjust,
    contrast_coefficients,
    critical_values,
    effective_adjust,
    t_ppf,
    t_sf,
)
from multilevel.inference.reference_grid import (
    WEIGHTS,
    ModelBasis,
    average_rows,
    cell_counts,
    expand,
    grid_values,
    grid_weights,
    model_basis,
)

STAT_COLUMNS = ["estimate", "std_error", "df", "conf_low", "conf_high", "statistic",
                "p_value"]
_RATIO_LINKS = {"log": "ratio", "logit": "odds.ratio"}


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return list(dict.fromkeys(v for v in re.split(r"[\s+*:]+", value.strip()) if v))
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(dict.fromkeys(value))
    raise ArgumentError(f"{what} must be a variable name or a list of names, got "
                        f"{type(value).__name__} {value!r:.60}")


def parse_specs(specs: Any, by: Any) -> tuple[str | None, list[str], list[str]]:
    """``specs`` (a name, names, or emmeans's ``"[method] ~ a + b | c"``) and ``by``: the
    contrast method named in the formula, the means' variables and the by variables."""
    method = None
    if isinstance(specs, str) and "~" in specs:
        lhs, rhs = specs.split("~", 1)
        method = lhs.strip() or None
        if method is not None and method not in CONTRAST_METHODS:
            raise ArgumentError(f"specs {specs!r} names contrast method {method!r}; the left "
                                f"of '~' takes one of {', '.join(CONTRAST_METHODS)}")
        rhs, _, bar = rhs.partition("|")
        names, by_names = _names(rhs, "specs"), _names(bar, "specs")
    else:
        names, by_names = _names(specs, "specs"), []
    by_names = list(dict.fromkeys(by_names + _names(by, "by")))
    if names == ["1"]:  # emmeans's ~ 1: the grand mean (within each by group)
        names = []
    elif not names:
        raise ArgumentError(f"specs names no variable (got {specs!r:.60}); give a factor of "
                            "the model, such as specs='Sex' or '~ Sex | age' ('~ 1' for the "
                            "overall mean)")
    both = set(names) & set(by_names)
    if both:
        raise ArgumentError(f"{sorted(both)[0]!r} is in both specs and by; name it once")
    return method, names, by_names


def _check_variables(basis: ModelBasis, names: list[str], what: str,
                     at: Mapping[str, Any] | None) -> None:
    for v in names:
        if v not in basis.variables:
            raise ArgumentError(f"{what} names {v!r}, which is not a predictor of the model's "
                                f"fixed effects (they are: {', '.join(basis.variables)})")
        if v in basis.covariates and (at is None or v not in at):
            raise ArgumentError(
                f"{what} names {v!r}, a numeric covariate: marginal means are taken over "
                f"factor levels. Give its values with at={{{v!r}: [...]}} to put it in the "
                f"grid, or use multilevel.slopes(fit, {v!r}) for its slope")


def hpd_interval(x: np.ndarray, level: float) -> tuple[float, float]:
    """The shortest interval holding a fraction ``level`` of the draws ``x`` (the
    highest-posterior-density interval of a unimodal posterior, as coda's
    ``HPDinterval``)."""
    x = np.sort(np.asarray(x, dtype=float))
    n = x.size
    gap = max(1, min(n - 1, int(np.floor(n * level + 0.5))))
    widths = x[gap:] - x[: n - gap]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + gap])


def _posterior_summary(basis: ModelBasis, L: np.ndarray, level: float, response: bool,
                       ratio: bool) -> pd.DataFrame:
    """A Bayesian fit's l' beta over the posterior draws: median, SD and HPD interval, on the
    link scale, or of the back-transformed (ratio: exponentiated) draws."""
    assert basis.draws is not None
    D = basis.draws @ L.T
    if ratio:
        D = np.exp(D)
    elif response and basis.link is not None:
        D = basis.link.inverse(D)
    bounds = np.array([hpd_interval(D[:, j], level) for j in range(D.shape[1])])
    return pd.DataFrame({"estimate": np.median(D, axis=0), "std_error": D.std(axis=0, ddof=1),
                         "conf_low": bounds[:, 0], "conf_high": bounds[:, 1]})


def _summary(basis: ModelBasis, L: np.ndarray, level: float, response: bool,
             ratio: bool = False, crit: np.ndarray | None = None,
             df: np.ndarray | None = None) -> pd.DataFrame:
    """estimate ... p_value of the rows of L (link scale, or response / ratio scale)."""
    if basis.draws is not None:
        return _posterior_summary(basis, L, level, response, ratio)
    est = L @ basis.beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", L, basis.vcov, L))
    df = basis.df_rule(L) if df is None else df
    stat = est / se
    q = t_ppf((1 + level) / 2, df) if crit is None else crit
    low, high = est - q * se, est + q * se
    out = pd.DataFrame({"estimate": est, "std_error": se, "df": df, "conf_low": low,
                        "conf_high": high, "statistic": stat, "p_value": 2 * t_sf(
                            np.abs(stat), df)})
    if ratio:
        out["estimate"] = np.exp(est)
        out["std_error"] = np.exp(est) * se
        out["conf_low"], out["conf_high"] = np.exp(low), np.exp(high)
        out["null"] = 1.0
    elif response and basis.link is not None:
        inv = basis.link.inverse
        out["estimate"] = inv(est)
        out["std_error"] = np.abs(basis.link.mu_eta(est)) * se
        a, b = inv(low), inv(high)
        out["conf_low"], out["conf_high"] = np.minimum(a, b), np.maximum(a, b)
        out["null"] = float(inv(np.zeros(1))[0])
    return out


def _label(values: Sequence[Any], variables: Sequence[str],
           numeric: Mapping[str, bool]) -> str:
    # emmeans writes the variable's name before levels that read as numbers (period1)
    shown = [f"{x:.7g}" if isinstance(x, float) else str(x) for x in values]
    parts = [f"{v}{x}" if numeric[v] else x for v, x in zip(variables, shown, strict=True)]
    return " ".join(parts)


def _looks_numeric(levels: Sequence[Any]) -> bool:
    try:
        [float(x) for x in levels]
    except (TypeError, ValueError):
        return False
    return True


def _column(frame: pd.DataFrame, key: Any) -> Any:
    """``frame[key]`` for a column name or a list of them; a typed error for anything else
    (pandas would raise a bare KeyError or TypeError)."""
    keys = key if isinstance(key, list) else [key]
    for k in keys:
        if not isinstance(k, str):
            raise ArgumentError(f"look up a column of the results by its name (or a list of "
                                f"names: {', '.join(map(str, frame.columns))}), got "
                                f"{type(k).__name__} {k!r:.60}")
        if k not in frame.columns:
            raise ColumnNotFoundError(k, list(frame.columns), "lookup of the results' frame")
    return frame[key]


class _NotedTable:
    """What both result classes are to a reader: a ``frame`` with ``notes`` under it --
    ``len()``, a column by name (``result["estimate"]``), text and HTML."""

    frame: pd.DataFrame
    notes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, key: Any) -> Any:
        return _column(self.frame, key)

    def __str__(self) -> str:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            text = self.frame.to_string(index=False, float_format=lambda x: f"{x:.6g}")
        return "\n".join([text, "", *self.notes]).rstrip()

    def _repr_html_(self) -> str:
        notes_html = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return self.frame.to_html(index=False, float_format=lambda x: f"{x:.6g}") + notes_html


@public_methods
@dataclass(frozen=True)
class MarginalContrasts(_NotedTable):
    """Contrasts of marginal means (emmeans's ``contrast``).

    Attributes
    ----------
    frame : pandas.DataFrame
        contrast, the by variables, estimate, std_error, df, conf_low, conf_high (simultaneous
        at ``level`` for the adjustment), statistic (t, or z where df is infinite), p_value
        (adjusted) and, for ratios on the response scale, null (1).
    L : numpy.ndarray, shape (n_contrasts, p)
        Each contrast as a linear function of the coefficients (link scale).
    adjust : str
        The adjustment applied (a family of one contrast is never adjusted).
    notes : tuple of str
    """

    frame: pd.DataFrame
    L: np.ndarray = field(repr=False)
    adjust: str
    notes: tuple[str, ...] = ()


@public_methods
@dataclass(frozen=True)
class MarginalMeans(_NotedTable):
    """Estimated marginal means (or simple slopes) of a fitted model, as emmeans's summary.

    Attributes
    ----------
    frame : pandas.DataFrame
        The specs and by variables, then estimate, std_error, df, conf_low, conf_high,
        statistic (t, or z where df is infinite), p_value (of estimate = 0 on the link
        scale) and, on a GLMM's response scale, null (the inverse link of 0).
    L : numpy.ndarray, shape (n_means, p)
        Each mean as a linear function of the coefficients (link scale).
    specs, by : tuple of str
    type : str
        ``"link"`` or ``"response"``.
    level : float
    estimate_name : str
        What the estimate is: emmeans's ``emmean``, ``prob``, ``rate``, ``response`` or
        ``<var>.trend``.
    contrasts : MarginalContrasts or None
        Set when specs named a method (``"pairwise ~ Sex"``).
    notes : tuple of str
    """

    frame: pd.DataFrame
    L: np.ndarray = field(repr=False)
    specs: tuple[str, ...]
    by: tuple[str, ...]
    type: str
    level: float
    estimate_name: str
    basis: ModelBasis = field(repr=False)
    contrasts: MarginalContrasts | None = None
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = super().__str__()
        if self.contrasts is not None:
            text += "\n\nContrasts:\n" + str(self.contrasts)
        return text

    def _repr_html_(self) -> str:
        out = super()._repr_html_()
        if self.contrasts is not None:
            out += "<h4>Contrasts</h4>" + self.contrasts._repr_html_()
        return out

    def contrast(self, method: Any = "pairwise", adjust: str | None = None,
                 by: Any = "default", level: float | None = None) -> MarginalContrasts:
        """Contrasts of the means within each ``by`` group.

        Parameters
        ----------
        method : str or dict
            ``"pairwise"`` (each mean minus each later one), ``"revpairwise"`` (later minus
            earlier), ``"trt.vs.ctrl"`` (each minus the first), ``"consec"`` (each minus the
            one before), or a dict name -> weights (one per mean of a group, in the frame's
            order).
        adjust : str or None
            ``"tukey"``, ``"dunnettx"``, ``"sidak"``, ``"bonferroni"``, ``"holm"`` or
            ``"none"``; None: the method's default (tukey for pairwise, dunnettx for
            trt.vs.ctrl, sidak for consec — emmeans uses its "mvt" there — none for a dict).
        by : str, list of str or None
            The groups within which means are compared; default: the means' own ``by``.
        level : float
            Confidence level of the (simultaneous) intervals; default: the means' level.
        """
        by_names = list(self.by) if isinstance(by, str) and by == "default" else _names(
            by, "by")
        for v in by_names:
            if v not in self.frame.columns or v in STAT_COLUMNS:
                raise ArgumentError(f"by names {v!r}, which is not a variable of these means "
                                    f"(they have: {', '.join([*self.specs, *self.by])})")
        level = self.level if level is None else check_probability(level, "level")
        kind = "custom" if isinstance(method, Mapping) else method
        if adjust is None:
            adjust = DEFAULT_ADJUST.get(kind, "none") if isinstance(kind, str) else "none"
        adjust = check_adjust(adjust)
        others = [v for v in [*self.specs, *self.by] if v not in by_names]
        numeric = {v: _looks_numeric(list(self.frame[v].unique())) for v in others}
        ratio_name = _RATIO_LINKS.get(getattr(self.basis.link, "name", ""))
        ratio = self.type == "response" and ratio_name is not None
        groups: dict[Any, np.ndarray] = (
            {k: np.asarray(v) for k, v in
             self.frame.groupby(by_names, sort=False, observed=True).indices.items()}
            if by_names else {(): np.arange(len(self.frame))})
        frames, Ls, notes, used = [], [], [], "none"
        for key, rows in groups.items():
            labels = [_label(r, others, numeric) for r in
                      self.frame.iloc[rows][others].itertuples(index=False)]
            names, C, family, pairwise = contrast_coefficients(method, labels)
            if ratio:
                names = [n.replace(" - ", " / ") for n in names]
            Lc = C @ self.L[rows]
            if self.basis.draws is not None:  # posterior summaries: nothing to adjust
                used, note = "none", None
                part = _summary(self.basis, Lc, level, False, ratio=ratio)
            else:
                used, note = effective_adjust(adjust, pairwise, len(names))
                df = self.basis.df_rule(Lc)
                crit = critical_values(level, df, used, len(rows))
                part = _summary(self.basis, Lc, level, False, ratio=ratio, crit=crit, df=df)
                part["p_value"] = adjusted_p(part["statistic"].to_numpy(), df, used,
                                             len(rows))
            part.insert(0, "contrast", names)
            key_values = key if isinstance(key, tuple) else (key,)
            for i, v in enumerate(by_names):
                part.insert(1 + i, v, key_values[i])
            frames.append(part)
            Ls.append(Lc)
            if note:
                notes.append(note)
        frame = pd.concat(frames, ignore_index=True)
        footer = _method_notes(self.basis, level)
        if used != "none":
            footer.append(f"P value adjustment: {used} method"
                          + (f" for comparing a family of {len(next(iter(groups.values())))}"
                             " estimates" if used == "tukey" else ""))
        if ratio and self.basis.draws is not None:
            footer.append("Estimates and intervals are ratios (exponentiated draws)")
        elif ratio:
            scale = "log-odds" if ratio_name == "odds.ratio" else "log"
            footer.append(f"Tests are performed on the {scale} scale; estimates and intervals "
                          "are ratios")
        elif self.type == "response" and self.basis.link is not None:
            footer.append(f"Contrasts are on the {self.basis.link.name} (link) scale")
        return MarginalContrasts(frame=frame, L=np.vstack(Ls), adjust=used,
                                 notes=tuple(dict.fromkeys(notes + footer)))


def _method_notes(basis: ModelBasis, level: float) -> list[str]:
    if basis.draws is not None:
        return [f"Point estimate: posterior median of {basis.draws.shape[0]} draws; "
                f"highest-density intervals at level {level:g}"]
    return [f"Degrees-of-freedom method: {basis.df_method}",
            f"Confidence level used: {level:g}"]


def _estimate_name(basis: ModelBasis, response: bool) -> str:
    if not response or basis.link is None:
        return "emmean"
    return {"logit": "prob", "probit": "prob", "cloglog": "prob", "cauchit": "prob",
            "log": "rate"}.get(basis.link.name, "response")


def _means(basis: ModelBasis, values: dict[str, list[Any]], kept: list[str], weights: str,
           X: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    grid = expand(values)
    X = basis.encode(grid) if X is None else X
    w = grid_weights(weights, grid, cell_counts(basis, grid), kept)
    return average_rows(grid, X, values, kept, w)


def _notes(basis: ModelBasis, values: dict[str, list[Any]], kept: list[str], level: float,
           response: bool, trend: str | None = None) -> list[str]:
    averaged = [v for v in basis.factors if v not in kept and len(values[v]) > 1]
    notes = _method_notes(basis, level)
    if averaged:
        notes.insert(0, f"Results are averaged over the levels of: {', '.join(averaged)}")
    if response and basis.link is not None:
        notes.append(f"Intervals are back-transformed from the {basis.link.name} scale"
                     if basis.draws is None else
                     f"Draws are back-transformed from the {basis.link.name} scale")
    if basis.in_interaction(kept + ([trend] if trend else [])):
        notes.append("NOTE: Results may be misleading due to involvement in interactions")
    return notes


@public_api
def emmeans(fit: Any, specs: Any, by: Any = None, at: Mapping[str, Any] | None = None,
            ddf: str | None = None, type: str = "link", level: float = 0.95,
            weights: str = "equal", adjust: str | None = None) -> MarginalMeans:
    """Estimated marginal means of ``fit`` at each combination of ``specs`` (R's
    ``emmeans(fit, specs, by, at = ...)``).

    Parameters
    ----------
    fit : LinearMixedModelResult, GeneralizedLinearMixedModelResult, LmeResult, GlsResult
        or BayesResult (``ml.bayes``: summaries over the posterior draws of l' beta, see
        below)
    specs : str or list of str
        The factor(s) whose means are wanted: ``"Sex"``, ``["A", "B"]``, or emmeans's formula
        ``"~ Sex | age"`` / ``"pairwise ~ Sex"`` (the left side, one of ``"pairwise"``,
        ``"revpairwise"``, ``"trt.vs.ctrl"``, ``"consec"``, also computes those contrasts,
        in ``.contrasts``).
    by : str or list of str, optional
        Variables whose levels give separate groups of means (and of contrasts).
    at : dict, optional
        Grid values: ``{"age": [8, 14]}`` for a covariate (default: its mean over the rows
        used), a subset of levels for a factor.
    ddf : str, optional
        Denominator df; default the kind's emmeans default: ``"satterthwaite"`` (lmer; also
        ``"kenward-roger"``, ``"asymptotic"``), ``"asymptotic"`` (glmer: z tests),
        ``"containment"`` (lme), ``"df.error"`` (gls).
    type : {"link", "response"}
        For a GLMM, ``"response"`` back-transforms means and intervals by the inverse link.
    level : float
        Confidence level of the intervals.
    weights : str
        How the averaged-over cells are weighted: ``"equal"`` (default), ``"proportional"``
        (to the averaged factors' joint frequencies in the data), ``"outer"`` (to the
        product of their marginal frequencies), ``"cells"`` (to each cell's frequency),
        ``"flat"`` (equal over the non-empty cells).
    adjust : str, optional
        The adjustment of the contrasts that a formula ``specs`` names (``"pairwise ~ Sex"``);
        default the method's (see :meth:`MarginalMeans.contrast`).

    Returns
    -------
    MarginalMeans
        ``.frame``, ``.contrast(method, adjust=, by=)``, and ``.contrasts`` when ``specs``
        named a method.

    Notes
    -----
    For a Bayesian fit (emmeans on a brmsfit) each mean is summarised over the posterior
    draws of l' beta: estimate the posterior median, std_error the posterior SD,
    conf_low / conf_high the highest-density interval at ``level``; there are no df, tests or
    multiplicity adjustments. On the response scale the draws are back-transformed first.

    Examples
    --------
    >>> import multilevel as ml
    >>> fit = ml.lmer("distance ~ age * Sex + (1 | Subject)", ml.datasets.load("Orthodont"))
    >>> means = ml.emmeans(fit, "Sex")
    >>> round(float(means.frame["estimate"].iloc[0]), 3)
    24.969
    >>> pairs = means.contrast("pairwise")
    """
    return means_on_basis(model_basis(fit, ddf), specs, by=by, at=at, type=type, level=level,
                          weights=weights, adjust=adjust)


def means_on_basis(basis: ModelBasis, specs: Any, by: Any = None,
                   at: Mapping[str, Any] | None = None, type: str = "link",
                   level: float = 0.95, weights: str = "equal",
                   adjust: str | None = None) -> MarginalMeans:
    """:func:`emmeans` on a model's :class:`ModelBasis` (its coefficients, covariance and df
    rule; a test can give it another model's numbers)."""
    type = check_text(type, "type", ("link", "response"))
    level = check_probability(level, "level")
    weights = check_text(weights, "weights", WEIGHTS)
    method, names, by_names = parse_specs(specs, by)
    if adjust is not None:
        check_adjust(adjust)
        if method is None:
            raise ArgumentError(f"adjust={adjust!r} applies to contrasts, and specs names no "
                                "contrast method; write specs as 'pairwise ~ ...' or call "
                                ".contrast(method, adjust=...) on the means")
    _check_variables(basis, names, "specs", at)
    _check_variables(basis, by_names, "by", at)
    values = grid_values(basis, at)
    kept = [*names, *by_names]
    keys, L = _means(basis, values, kept, weights)
    response = type == "response"
    frame = pd.concat([keys, _summary(basis, L, level, response)], axis=1)
    means = MarginalMeans(frame=frame, L=L, specs=tuple(names), by=tuple(by_names),
                          type=type, level=level,
                          estimate_name=_estimate_name(basis, response), basis=basis,
                          notes=tuple(_notes(basis, values, kept, level, response)))
    if method is None:
        return means
    return replace(means, contrasts=means.contrast(method, adjust=adjust))


@public_api
def slopes(fit: Any, var: str, by: Any = None, at: Mapping[str, Any] | None = None,
           ddf: str | None = None, level: float = 0.95,
           weights: str = "equal") -> MarginalMeans:
    """Simple slopes: the change of the linear predictor per unit of the covariate ``var`` at
    each combination of ``by`` (R's ``emtrends(fit, ~ by, var = var)``), averaged over the
    other factors; covariates (``var`` too) at their means unless ``at`` gives values.

    The slope is a forward difference of the reference grid's model matrix over 0.001 of
    ``var``'s range in the data, as emtrends takes it (exact for terms linear in ``var``). It is
    on the link scale. Compare the slopes with ``.contrast("pairwise")``.

    Parameters
    ----------
    fit, at, ddf, level, weights
        As :func:`emmeans`.
    var : str
        A numeric covariate of the fixed effects.
    by : str or list of str, optional
        The factor(s) at whose levels the slopes are wanted (None: one overall slope).

    Examples
    --------
    >>> import multilevel as ml
    >>> fit = ml.lmer("distance ~ age * Sex + (1 | Subject)", ml.datasets.load("Orthodont"))
    >>> trends = ml.slopes(fit, "age", by="Sex")
    >>> round(float(trends.frame["estimate"].iloc[0]), 6)
    0.784375
    """
    if not isinstance(var, str):
        raise ArgumentError(f"var must be the name of a numeric covariate, got "
                            f"{type(var).__name__} {var!r:.60}")
    level = check_probability(level, "level")
    weights = check_text(weights, "weights", WEIGHTS)
    _, names, _ = parse_specs(by, None) if by is not None else (None, [], [])
    basis = model_basis(fit, ddf)
    if var not in basis.covariates:
        what = "a factor" if var in basis.factors else "not a predictor of the fixed effects"
        raise ArgumentError(f"var {var!r} is {what}; slopes are taken along a numeric "
                            f"covariate (the model's: {', '.join(basis.covariates) or 'none'})")
    _check_variables(basis, names, "by", at)
    values = grid_values(basis, at)
    x = basis.data[var].to_numpy(dtype=float)
    delta = 0.001 * float(x.max() - x.min())
    if delta == 0:
        raise ArgumentError(f"covariate {var!r} takes one value in the data; it has no slope")
    grid = expand(values)
    moved = grid.copy()
    moved[var] = moved[var].astype(float) + delta
    X = (basis.encode(moved) - basis.encode(grid)) / delta
    keys, L = _means(basis, values, names, weights, X=X)
    frame = pd.concat([keys, _summary(basis, L, level, False)], axis=1)
    return MarginalMeans(frame=frame, L=L, specs=tuple(names), by=(), type="link",
                         level=level, estimate_name=f"{var}.trend", basis=basis,
                         notes=tuple(_notes(basis, values, names, level, False, trend=var)))
