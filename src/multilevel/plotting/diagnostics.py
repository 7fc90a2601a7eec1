"""Diagnostic plots of a fit: the caterpillar plot of the random effects and the 2x2 residual
figure.

Both read only the public result vocabulary (``ranef``, ``ranef_condvar``, ``fitted``,
``residuals``, ``sigma``), so every model kind that answers it is drawn the same way: lmer and
glmer fits directly, lme and nlme fits through the linear mixed model they carry (their
conditional variances), Bayesian fits through their posterior draws.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from multilevel.errors import ArgumentError, NotApplicableError, public_api
from multilevel.plotting._backend import (
    check_axes,
    check_figure,
    check_level,
    figure_of,
    pyplot,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# at most this many level labels on a caterpillar panel's axis; more would overprint
MAX_LABELS = 60


@dataclass(frozen=True)
class EffectPanel:
    """One caterpillar panel: the conditional modes of one term of one grouping factor and,
    where the fit has them, the interval around each (NaN-free arrays, levels' order)."""

    group: str
    term: str
    levels: list[str]
    mode: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    interval: str  # what the interval is, for the axis label


def normal_quantile(p: Any) -> np.ndarray:
    """Standard normal quantiles of the probabilities ``p``."""
    return np.asarray(ndtri(np.asarray(p, dtype=float)), dtype=float)


def plotting_positions(n: int) -> np.ndarray:
    """R's ``ppoints(n)``: (i - a) / (n + 1 - 2a), a = 3/8 for n <= 10, else 1/2 (the
    probabilities at which ``qqnorm`` places the sorted sample)."""
    a = 0.375 if n <= 10 else 0.5
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def qq_points(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """``qqnorm``'s points: (theoretical normal quantiles, sorted finite sample)."""
    x = np.asarray(values, dtype=float).ravel()
    x = np.sort(x[np.isfinite(x)])
    return normal_quantile(plotting_positions(x.size)), x


def local_linear_smooth(x: np.ndarray, y: np.ndarray, span: float = 2 / 3,
                        points: int = 50) -> tuple[np.ndarray, np.ndarray] | None:
    """A loess-like trend line: local linear fits with tricube weights over the nearest
    ``span`` share of the points, at ``points`` values across x (one pass of lowess without
    its robustness steps; enough to see a trend, and linear in the number of rows)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 5 or np.ptp(x) == 0:
        return None
    grid = np.linspace(x.min(), x.max(), points)
    k = max(int(np.ceil(span * x.size)), 3) - 1
    out = np.empty(points)
    for i, g in enumerate(grid):
        d = np.abs(x - g)
        h = np.partition(d, k)[k] * 1.0001 or 1.0
        w = np.clip(1 - (d / h) ** 3, 0, None) ** 3
        sw = w.sum()
        mx, my = (w @ x) / sw, (w @ y) / sw
        sxx = w @ (x - mx) ** 2
        slope = (w @ ((x - mx) * (y - my))) / sxx if sxx > 0 else 0.0
        out[i] = my + slope * (g - mx)
    return grid, out


# -- the random effects of any fit ----------------------------------------------------------------
def _ranef(fit: Any) -> dict[str, pd.DataFrame]:
    ranef = getattr(fit, "ranef", None) if not isinstance(fit, type) else None
    if ranef is None and hasattr(fit, "fixef") and callable(getattr(fit, "fitted", None)):
        raise NotApplicableError(f"this {type(fit).__name__} has no random effects (a gls "
                                 "fit models the residuals only): there is nothing for a "
                                 "caterpillar plot; use ml.plot.residuals(fit)")
    if not isinstance(ranef, dict):
        raise ArgumentError(f"fit must be a fitted multilevel model (ml.lmer, ml.glmer, ml.lme, "
                            f"ml.nlme or ml.bayes), got {type(fit).__name__}")
    if not ranef:
        raise NotApplicableError(f"this {type(fit).__name__} has no random effects to plot")
    return ranef


def _select_groups(ranef: dict[str, pd.DataFrame], group: Any) -> list[str]:
    names = list(ranef)
    if group is None:
        return names
    wanted = [group] if isinstance(group, str) else group
    if not isinstance(wanted, list | tuple) or not all(isinstance(g, str) for g in wanted):
        raise ArgumentError(f"group must be a grouping factor's name or a list of names, got "
                            f"{group!r:.60}")
    for g in wanted:
        if g not in ranef:
            raise ArgumentError(f"group {g!r} is not a grouping factor of this fit; its "
                                f"grouping factors are: {', '.join(map(repr, names))}")
    return list(wanted)


def _condvar_sd(condvar: Any, frame: pd.DataFrame) -> pd.DataFrame | None:
    """Conditional SDs laid out as ``frame`` (levels x terms): from lme4's (levels, k, k)
    array or from a frame of variances (the Bayesian posterior variances)."""
    if isinstance(condvar, pd.DataFrame):
        var = condvar.reindex(index=frame.index, columns=frame.columns).to_numpy(dtype=float)
    else:
        arr = np.asarray(condvar, dtype=float)
        if arr.shape != (frame.shape[0], frame.shape[1], frame.shape[1]):
            return None
        var = np.diagonal(arr, axis1=1, axis2=2)
    if var.shape != frame.shape:
        return None
    return pd.DataFrame(np.sqrt(np.clip(var, 0, None)), index=frame.index, columns=frame.columns)


def _inner_condvar(fit: Any, ranef: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Conditional SDs of an lme or nlme fit, from the linear mixed model it carries (``fit``
    for lme, ``lme`` for nlme: the last linearization). Groups are matched by name, else by
    position; levels by label; terms by position; a group is used only where the carried
    model's modes are the fit's own, so that no interval is drawn around the wrong point."""
    inner = getattr(fit, "lme", None) or getattr(fit, "fit", None)
    inner_ranef = getattr(inner, "ranef", None)
    condvar = getattr(inner, "ranef_condvar", None)
    if not isinstance(inner_ranef, dict) or not isinstance(condvar, dict):
        return {}
    by_name = set(inner_ranef) == set(ranef)
    if not by_name and len(inner_ranef) != len(ranef):
        return {}
    out = {}
    for pos, (group, frame) in enumerate(ranef.items()):
        inner_group = group if by_name else list(inner_ranef)[pos]
        modes = inner_ranef[inner_group]
        if modes.shape != frame.shape:
            continue
        sd = _condvar_sd(condvar[inner_group], modes)
        if sd is None:
            continue
        labels = modes.index.astype(str)
        sd.index, modes = labels, modes.set_axis(labels)
        sd.columns = modes.columns = frame.columns
        wanted = frame.index.astype(str)
        if not wanted.isin(labels).all():
            continue
        here, there = frame.to_numpy(dtype=float), modes.loc[wanted].to_numpy(dtype=float)
        scale = max(float(np.abs(here).max(initial=0.0)), 1e-12)
        if np.allclose(here, there, rtol=1e-3, atol=1e-4 * scale):
            out[group] = sd.loc[wanted].set_axis(frame.index)
    return out


def _posterior_quantiles(fit: Any, group: str, frame: pd.DataFrame,
                         level: float) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Equal-tailed posterior intervals of a Bayesian fit's group effects, from its draws
    (``fit.draws`` of each block's variable); None for fits without draws."""
    blocks = getattr(getattr(fit, "model", None), "blocks", None)
    draws = getattr(fit, "draws", None)
    if not callable(draws) or not blocks:
        return None
    lo, hi = (1 - level) / 2, (1 + level) / 2
    lower, upper = [], []
    for block in blocks:
        if block.group != group:
            continue
        r = np.asarray(draws(block.r_variable), dtype=float)[..., block.columns]
        r = r.reshape(-1, *r.shape[2:])  # (draws of all chains, levels, terms)
        q = np.quantile(r, [lo, hi], axis=0)
        names = [block.term_label(t) for t in range(block.k)]
        index = pd.Index(block.levels)
        lower.append(pd.DataFrame(q[0], index=index, columns=names))
        upper.append(pd.DataFrame(q[1], index=index, columns=names))
    if not lower:
        return None
    low, up = pd.concat(lower, axis=1), pd.concat(upper, axis=1)
    labels = frame.index.astype(str)
    low.index, up.index = low.index.astype(str), up.index.astype(str)
    if not (labels.isin(low.index).all() and frame.columns.isin(low.columns).all()):
        return None
    return (low.loc[labels, frame.columns].set_axis(frame.index),
            up.loc[labels, frame.columns].set_axis(frame.index))


def effect_panels(fit: Any, group: Any = None, level: float = 0.95) -> list[EffectPanel]:
    """The caterpillar plot's numbers: one :class:`EffectPanel` per (grouping factor, term),
    with intervals mode +- z sqrt(condvar) (z the normal quantile of ``level``) where the fit
    has conditional variances, posterior quantiles for a Bayesian fit, none otherwise."""
    ranef = _ranef(fit)
    groups = _select_groups(ranef, group)
    z = float(normal_quantile(0.5 + level / 2))
    own = getattr(fit, "ranef_condvar", None)
    condvar = own if isinstance(own, dict) else None
    inner = _inner_condvar(fit, ranef) if condvar is None else {}
    panels = []
    for g in groups:
        frame = ranef[g]
        bounds: tuple[pd.DataFrame, pd.DataFrame] | None = None
        interval = "no conditional variances: points only"
        quantiles = _posterior_quantiles(fit, g, frame, level) if condvar is not None \
            and isinstance(condvar.get(g), pd.DataFrame) else None
        if quantiles is not None:
            bounds, interval = quantiles, f"{level:.0%} posterior interval"
        else:
            sd = (_condvar_sd(condvar[g], frame) if condvar is not None and g in condvar
                  else inner.get(g))
            if sd is not None:
                bounds = (frame - z * sd, frame + z * sd)
                interval = f"{level:.0%} interval: mode +- {z:.3g} conditional SD"
        for term in frame.columns:
            mode = frame[term].to_numpy(dtype=float)
            panels.append(EffectPanel(
                group=g, term=str(term), levels=[str(v) for v in frame.index], mode=mode,
                lower=None if bounds is None else bounds[0][term].to_numpy(dtype=float),
                upper=None if bounds is None else bounds[1][term].to_numpy(dtype=float),
                interval=interval))
    return panels


def _draw_caterpillar(ax: Axes, panel: EffectPanel, order: np.ndarray) -> None:
    y = np.arange(order.size)
    if panel.lower is not None and panel.upper is not None:
        ax.hlines(y, panel.lower[order], panel.upper[order], color="0.45", lw=1.2,
                  gid="intervals")
    ax.plot(panel.mode[order], y, "o", color="C0", ms=4, gid="modes")
    ax.axvline(0.0, color="0.6", lw=0.8, ls=":", gid="zero")
    if order.size <= MAX_LABELS:
        ax.set_yticks(y, [panel.levels[i] for i in order], fontsize=7)
    else:
        ax.set_yticks([])
    ax.set_ylim(-0.7, order.size - 0.3)
    ax.set_title(f"{panel.group}: {panel.term}", fontsize=10)
    ax.set_xlabel(panel.interval, fontsize=8)


@public_api
def caterpillar(fit: Any, group: str | list[str] | None = None, level: float = 0.95,
                sort: bool = True, ax: Any = None) -> Figure:
    """Caterpillar plot of the random effects: each level's conditional mode with its
    interval, one panel per term of each grouping factor (lme4's
    ``dotplot(ranef(fit, condVar = TRUE))``).

    Parameters
    ----------
    fit : a fitted model
        ``ml.lmer``, ``ml.glmer``, ``ml.lme`` or ``ml.nlme`` (intervals mode +- z times the
        conditional SD from ``ranef_condvar``; for lme and nlme that of the linear mixed model
        they carry), or ``ml.bayes`` (posterior means with equal-tailed posterior intervals
        from the draws). A fit without conditional variances is drawn as points, and the axis
        label says so.
    group : str or list of str, optional
        The grouping factor(s) to draw (default: all).
    level : float
        Coverage of the intervals.
    sort : bool
        Order the levels by the mode of the group's first term (the same order on every panel
        of a group, so that a level keeps its row); False keeps the fit's order.
    ax : matplotlib Axes or list of Axes, optional
        Where to draw: one Axes per panel (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
        Panels' artists carry gids: ``"modes"`` (the points), ``"intervals"`` (a
        LineCollection of the intervals), ``"zero"``.

    Examples
    --------
    >>> fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    >>> fig = ml.plot.caterpillar(fit)
    >>> fig.savefig("caterpillar.png")  # doctest: +SKIP
    """
    level = check_level(level)
    if not isinstance(sort, bool):
        raise ArgumentError(f"sort must be True or False, got {sort!r:.60}")
    panels = effect_panels(fit, group, level)
    plt = pyplot()
    if ax is not None:
        axes = check_axes(ax, len(panels), "caterpillar plot")
        fig = figure_of(axes[0])
    else:
        groups = list(dict.fromkeys(p.group for p in panels))
        sizes = [len(next(p for p in panels if p.group == g).levels) for g in groups]
        terms = [sum(p.group == g for p in panels) for g in groups]
        ncols = max(terms)
        heights = [min(0.17 * n + 1.0, 12.0) for n in sizes]
        fig = plt.figure(figsize=(3.4 * ncols, sum(heights)), layout="constrained")
        grid = fig.add_gridspec(len(groups), ncols, height_ratios=heights)
        axes = [fig.add_subplot(grid[r, c]) for r, k in enumerate(terms) for c in range(k)]
    first: dict[str, np.ndarray] = {}
    for a, panel in zip(axes, panels, strict=True):
        if panel.group not in first:
            first[panel.group] = (np.argsort(panel.mode, kind="stable") if sort
                                  else np.arange(panel.mode.size))
        _draw_caterpillar(a, panel, first[panel.group])
    return fig


# -- residual diagnostics -------------------------------------------------------------------------
@dataclass(frozen=True)
class ResidualDiagnostics:
    """The residual figure's numbers: fitted values, the fit's default residuals, standardized
    residuals (for scale-location and the QQ plot) and the standardized conditional modes
    (label -> values; empty for a fit without random effects)."""

    fitted: np.ndarray
    residuals: np.ndarray
    residual_label: str
    standardized: np.ndarray
    standardized_label: str
    effects: dict[str, np.ndarray]


def _vector(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=float).ravel()


def residual_diagnostics(fit: Any) -> ResidualDiagnostics:
    """What :func:`residuals` draws. The residuals are the fit's default ones (response; a
    GLMM's deviance residuals); the standardized ones are Pearson residuals divided by sigma
    (lmer, glmer: ``residuals("pearson", scaled=True)``; lme, gls, nlme: ``type="pearson"``;
    Bayesian: residuals over the posterior mean of sigma). Each random-effect term's
    conditional modes are divided by their standard deviation, so that a normal sample lies
    on the line y = x of the QQ panel."""
    fitted_of, residuals_of = getattr(fit, "fitted", None), getattr(fit, "residuals", None)
    if isinstance(fit, type) or not callable(fitted_of) or not callable(residuals_of):
        raise ArgumentError(f"fit must be a fitted multilevel model (ml.lmer, ml.glmer, ml.lme, "
                            f"ml.gls, ml.nlme or ml.bayes), got {type(fit).__name__}")
    params = inspect.signature(residuals_of).parameters
    fitted, raw = _vector(fitted_of()), _vector(residuals_of())
    if "scaled" in params:  # lme4's vocabulary: kind=, scaled=
        default = params["kind"].default if "kind" in params else "response"
        label = f"{default} residuals"
        std = _vector(residuals_of("pearson", scaled=True))
        std_label = "Pearson residuals / sigma"
    elif "type" in params:  # nlme's vocabulary: type=
        label = "residuals"
        std = _vector(residuals_of(type="pearson"))
        std_label = "Pearson residuals"
    else:
        label = "residuals (posterior mean)"
        sigma = getattr(fit, "sigma", float("nan"))
        sigma = float(sigma) if isinstance(sigma, int | float) else float("nan")
        if np.isfinite(sigma) and sigma > 0:
            std, std_label = raw / sigma, "residuals / sigma"
        else:
            spread = float(np.nanstd(raw, ddof=1)) if raw.size > 1 else 0.0
            std = raw / spread if spread > 0 else raw
            std_label = "residuals / their SD"
    effects: dict[str, np.ndarray] = {}
    ranef = getattr(fit, "ranef", None)
    if isinstance(ranef, dict):
        for group, frame in ranef.items():
            for term in frame.columns:
                b = frame[term].to_numpy(dtype=float)
                spread = float(np.std(b, ddof=1)) if b.size > 1 else 0.0
                effects[f"{group}: {term}"] = b / spread if spread > 0 else b
    return ResidualDiagnostics(fitted, raw, label, std, std_label, effects)


def _reference_line(ax: Axes, x: np.ndarray) -> None:
    if x.size:
        lo, hi = float(np.min(x)), float(np.max(x))
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--", gid="reference")


def _smooth(ax: Axes, x: np.ndarray, y: np.ndarray) -> None:
    line = local_linear_smooth(x, y)
    if line is not None:
        ax.plot(*line, color="C3", lw=1.5, gid="smooth")


@public_api
def residuals(fit: Any, fig: Any = None) -> Figure:
    """The 2x2 residual diagnostics of a fit (R's ``plot(fit)``, ``qqnorm``, lattice's
    ``qqmath(ranef(fit))``, performance's ``check_model``).

    Panels: residuals against fitted values with a zero line and a local linear trend;
    scale-location (sqrt of |standardized residuals| against fitted values, with the trend);
    normal QQ plot of the standardized residuals; normal QQ plot of each random-effect term's
    conditional modes, standardized by their SD (one marker series per grouping factor and
    term). A fit without random effects (gls) says so in the fourth panel.

    Parameters
    ----------
    fit : a fitted model
        ``ml.lmer``, ``ml.glmer`` (deviance residuals; Pearson ones standardized), ``ml.lme``,
        ``ml.gls``, ``ml.nlme`` or ``ml.bayes`` (posterior-mean fitted values and residuals).
    fig : matplotlib Figure, optional
        An empty figure to draw on (default: a new one).

    Returns
    -------
    matplotlib.figure.Figure
        Its four Axes in reading order. Scatter points are PathCollections; lines carry gids
        ``"zero"``, ``"smooth"``, ``"reference"``. The numbers are
        :func:`residual_diagnostics`'.

    Examples
    --------
    >>> fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    >>> fig = ml.plot.residuals(fit)
    """
    given = check_figure(fig)
    d = residual_diagnostics(fit)
    plt = pyplot()
    figure = given if given is not None else plt.figure(figsize=(9.5, 8), layout="constrained")
    grid = figure.subplots(2, 2, squeeze=False)
    (a1, a2), (a3, a4) = grid
    a1.scatter(d.fitted, d.residuals, s=10, alpha=0.6, gid="points")
    a1.axhline(0.0, color="0.5", lw=1, ls="--", gid="zero")
    _smooth(a1, d.fitted, d.residuals)
    a1.set(xlabel="fitted values", ylabel=d.residual_label, title="Residuals vs fitted")
    root = np.sqrt(np.abs(d.standardized))
    a2.scatter(d.fitted, root, s=10, alpha=0.6, gid="points")
    _smooth(a2, d.fitted, root)
    a2.set(xlabel="fitted values", ylabel=f"sqrt(|{d.standardized_label}|)",
           title="Scale-location")
    theory, sample = qq_points(d.standardized)
    a3.scatter(theory, sample, s=10, alpha=0.6, gid="points")
    _reference_line(a3, theory)
    a3.set(xlabel="normal quantiles", ylabel=d.standardized_label,
           title="Normal QQ: residuals")
    if d.effects:
        every = []
        for label, values in d.effects.items():
            t, s = qq_points(values)
            a4.scatter(t, s, s=14, alpha=0.8, label=label, gid=label)
            every.append(t)
        _reference_line(a4, np.concatenate(every))
        a4.legend(fontsize=7, loc="upper left")
        a4.set(xlabel="normal quantiles", ylabel="conditional modes / their SD",
               title="Normal QQ: random effects")
    else:
        a4.text(0.5, 0.5, "no random effects in this model\n(nothing to plot)",
                ha="center", va="center", transform=a4.transAxes, gid="no-effects")
        a4.set(xticks=[], yticks=[], title="Normal QQ: random effects")
    return figure
