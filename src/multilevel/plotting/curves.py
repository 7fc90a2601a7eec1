"""Curves of a fit: growth curves per group (lattice ``xyplot`` / spaghetti style) and effect
plots with confidence bands (ggeffects / interactions' ``interact_plot``).

Both draw what :func:`multilevel.predictions` computes, so every kind it takes (lmer, glmer,
lme, gls, nlme, bayes) is drawn the same way. The rows a fit was made from are read from the
fit (``model_frame()``; ``data=`` gives them otherwise).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import multilevel
from multilevel.errors import ArgumentError, ColumnNotFoundError, DataError, public_api
from multilevel.plotting._backend import (
    check_axes,
    check_figure,
    check_level,
    figure_of,
    panel_grid,
    pyplot,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# lattice draws every group; past this many panels a page is unreadable, so the default shows
# the first ones and says so (``groups=`` chooses others, ``max_panels=`` raises the limit)
MAX_PANELS = 24
GRID_POINTS = 50
# the smooth curve through a group's grid is drawn only where it reproduces the fit's own
# fitted values at the observed times (else a covariate other than time varies within groups)
_SMOOTH_RTOL = 1e-6


# -- the fit's rows ----------------------------------------------------------------------------
def _as_pandas(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        return pd.DataFrame(data)
    if hasattr(data, "to_pandas"):  # polars
        return data.to_pandas()
    raise ArgumentError(f"data must be a pandas or polars DataFrame (or a dict of columns), "
                        f"got {type(data).__name__}")


def _rows(fit: Any, data: Any) -> pd.DataFrame:
    nobs = getattr(fit, "nobs", None)
    if data is None:
        return fit.model_frame()
    rows = _as_pandas(data).reset_index(drop=True)
    if isinstance(nobs, int) and len(rows) != nobs:
        raise DataError(f"data has {len(rows)} rows but the fit used {nobs}: pass the rows "
                        "the model was fitted to (after dropping rows with missing values)")
    return rows


def _vector(values: Any) -> np.ndarray:
    return np.asarray(getattr(values, "to_numpy", lambda: values)(), dtype=float).ravel()


def _observed(fit: Any) -> tuple[np.ndarray, np.ndarray]:
    """The response (on the response scale) and the within-group fitted values of the rows
    used: fitted() at its default (the innermost level, the mean for a GLMM)."""
    fitted = _vector(fit.fitted())
    response = getattr(fit, "response", None)
    if isinstance(fit, multilevel.LinearMixedModelResult | multilevel.
                  GeneralizedLinearMixedModelResult):
        return fitted + _vector(fit.residuals("response")), fitted
    if response is not None and not callable(response):
        return _vector(response), fitted
    return fitted + _vector(fit.residuals()), fitted  # bayes: y minus the mean's posterior mean


def _column(rows: pd.DataFrame, name: Any, argument: str) -> str:
    if not isinstance(name, str):
        raise ArgumentError(f"{argument} must be the name of a column, got "
                            f"{type(name).__name__} {name!r:.60}")
    if name not in rows.columns:
        raise ColumnNotFoundError(name, [str(c) for c in rows.columns], f"{argument} argument")
    return name


def _is_numeric(values: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
            and not isinstance(values.dtype, pd.CategoricalDtype))


def _levels(values: pd.Series) -> list[Any]:
    """A factor's levels in the fit's order (a categorical's own, else sorted as R sorts)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        return [c for c in values.cat.categories if c in present]
    return sorted(values.dropna().unique(), key=str)


def _formula_text(fit: Any) -> str:
    """The model's formula as written, for labels (empty when the fit keeps none)."""
    for path in (("model", "design", "formula", "text"), ("call", "formula"), ("formula",),
                 ("model", "formula"), ("call", "model")):
        obj = fit
        for name in path:
            obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if isinstance(obj, str):
            return obj
    return ""


def _response_label(fit: Any) -> str:
    return _formula_text(fit).split("~", 1)[0].strip() or "response"


# -- growth curves -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupCurves:
    """One group's trajectory: the observed points, the group's fitted curve and the
    population curve at the group's covariates (``smooth``: on a grid of ``time``; otherwise
    at the observed times only, when a covariate other than time varies within groups)."""

    label: str
    time: np.ndarray
    observed: np.ndarray
    curve_time: np.ndarray
    fitted: np.ndarray
    population: np.ndarray
    smooth: bool


def _chosen_groups(rows: pd.DataFrame, group: str, groups: Any, max_panels: int,
                   ) -> tuple[list[Any], int]:
    levels = _levels(rows[group])
    if groups is None:
        return levels[:max_panels], len(levels)
    wanted = [groups] if isinstance(groups, str | int | float) else groups
    if not isinstance(wanted, Sequence | np.ndarray | pd.Index) or not len(wanted):
        raise ArgumentError(f"groups must be a list of levels of {group!r}, got {groups!r:.60}")
    by_text = {str(v): v for v in levels}
    chosen = []
    for g in wanted:
        if str(g) not in by_text:
            raise DataError(f"groups names {g!r}, which is not a level of {group!r} in the "
                            f"fitted rows (levels: {', '.join(map(str, levels[:10]))}"
                            f"{' ...' if len(levels) > 10 else ''})")
        chosen.append(by_text[str(g)])
    return chosen, len(levels)


def growth_curves(fit: Any, time: str, group: str, groups: Any = None, data: Any = None,
                  max_panels: int = MAX_PANELS, points: int = GRID_POINTS) -> list[GroupCurves]:
    """The curves :func:`growth` draws, one :class:`GroupCurves` per chosen group."""
    rows = _rows(fit, data)
    time = _column(rows, time, "time")
    group = _column(rows, group, "group")
    if not _is_numeric(rows[time]):
        raise DataError(f"time column {time!r} is not numeric ({rows[time].dtype}): growth "
                        f"curves need a numeric time; convert it and refit")
    if isinstance(max_panels, bool) or not isinstance(max_panels, int) or max_panels < 1:
        raise ArgumentError(f"max_panels must be a whole number >= 1, got {max_panels!r:.60}")
    chosen, _ = _chosen_groups(rows, group, groups, max_panels)
    observed, fitted = _observed(fit)
    label = rows[group].astype(str).to_numpy()
    members = [np.flatnonzero(label == str(g)) for g in chosen]
    # every chosen group's grid (its time range and its observed times, the group's other
    # columns from its first row), predicted in one call per level
    grids, parts = [], []
    for idx in members:
        t = rows[time].to_numpy(dtype=float)[idx]
        grid = np.union1d(np.linspace(t.min(), t.max(), points), t)
        part = rows.iloc[np.repeat(idx[:1], grid.size)].reset_index(drop=True)
        part[time] = grid
        grids.append(grid)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    within = multilevel.predictions(fit, frame, re_form=None)["estimate"].to_numpy()
    population = multilevel.predictions(fit, frame, re_form="NA")["estimate"].to_numpy()
    bounds = np.cumsum([0] + [g.size for g in grids])
    curves = []
    smooth = True
    for k, idx in enumerate(members):
        t = rows[time].to_numpy(dtype=float)[idx]
        at = np.searchsorted(grids[k], t) + bounds[k]
        scale = max(float(np.max(np.abs(fitted[idx]))), 1.0)
        smooth &= bool(np.allclose(within[at], fitted[idx], rtol=_SMOOTH_RTOL,
                                   atol=_SMOOTH_RTOL * scale))
    if not smooth:
        # time-varying covariates: the fit's own values at the observed rows
        population_rows = multilevel.predictions(fit, rows.iloc[np.concatenate(members)],
                                                 re_form="NA")["estimate"].to_numpy()
        starts = np.cumsum([0] + [idx.size for idx in members])
    for k, (g, idx) in enumerate(zip(chosen, members, strict=True)):
        t = rows[time].to_numpy(dtype=float)[idx]
        order = np.argsort(t, kind="stable")
        if smooth:
            span = slice(bounds[k], bounds[k + 1])
            curves.append(GroupCurves(str(g), t[order], observed[idx][order], grids[k],
                                      within[span], population[span], True))
        else:
            pop = population_rows[starts[k]:starts[k + 1]]
            curves.append(GroupCurves(str(g), t[order], observed[idx][order], t[order],
                                      fitted[idx][order], pop[order], False))
    return curves


def _draw_group(ax: Axes, c: GroupCurves, color: Any, alpha: float, with_population: bool,
                ) -> None:
    ax.plot(c.time, c.observed, marker="o", linestyle="-", color=color, alpha=alpha,
            markersize=3.5, linewidth=0.8, gid="observed", label="observed")
    ax.plot(c.curve_time, c.fitted, linestyle="-", color=color, linewidth=1.6, gid="fitted",
            label="group fit")
    if with_population:
        ax.plot(c.curve_time, c.population, linestyle="--", color="black", linewidth=1.4,
                gid="population", label="population")


@public_api
def growth(fit: Any, time: str, group: str, groups: Any = None, panels: bool = True,
           data: Any = None, max_panels: int = MAX_PANELS, ax: Any = None, fig: Any = None,
           ) -> Figure | Axes:
    """Growth curves: each group's observed trajectory (points joined by lines) with its own
    fitted curve and the population curve (lattice's ``xyplot(y ~ time | group)`` with the
    fits overlaid; ``panels=False``: all groups in one axes, the spaghetti plot).

    The curves are the fit's predictions (:func:`multilevel.predictions`) on a grid of 50
    times over each group's observed range, the group's other columns taken from its rows:
    the group curve with its random effects (``re_form=None``), the population curve at level
    0 (``re_form="NA"``), for a GLMM on the response scale, for a Bayesian fit the posterior
    mean. When the fit has a covariate other than ``time`` that varies within a group, a grid
    cannot hold it: the curves then join the fitted values at the observed rows.

    Parameters
    ----------
    fit : fitted model
        From ``lmer``, ``glmer``, ``lme``, ``gls``, ``nlme`` or ``bayes``.
    time : str
        The numeric time column (x axis).
    group : str
        The grouping column whose groups are drawn (one panel each).
    groups : list, optional
        The levels of ``group`` to draw (default: the first ``max_panels``).
    panels : bool, default True
        One panel per group (True) or every group in one axes (False).
    data : DataFrame, optional
        The rows the model was fitted to, for a fit that does not keep them.
    max_panels : int, default 24
        At most this many panels when ``groups`` is not given (the spaghetti plot draws every
        group).
    ax : matplotlib Axes (spaghetti) or list of Axes (one per group), optional
    fig : matplotlib Figure, optional
        The figure to draw the panels on.

    Returns
    -------
    matplotlib.figure.Figure (panels) or matplotlib.axes.Axes (spaghetti)
        Lines carry ``gid`` "observed", "fitted" and "population".

    Examples
    --------
    >>> import multilevel as ml
    >>> fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    >>> fig = ml.plot.growth(fit, time="Days", group="Subject")  # doctest: +SKIP
    """
    if not isinstance(panels, bool):
        raise ArgumentError(f"panels must be True or False, got {panels!r:.60}")
    fig = check_figure(fig)
    plt = pyplot()
    if isinstance(max_panels, bool) or not isinstance(max_panels, int) or max_panels < 1:
        raise ArgumentError(f"max_panels must be a whole number >= 1, got {max_panels!r:.60}")
    # the limit is the panels'; a spaghetti plot draws every group by default
    curves = growth_curves(fit, time, group, groups, data,
                           max_panels if panels else sys.maxsize)
    rows = _rows(fit, data)
    shown, total = len(curves), len(_levels(rows[group]))
    ylabel = _response_label(fit)
    if not panels:
        if fig is not None and ax is None:
            ax = fig.add_subplot()
        target = (check_axes(ax, 1, "spaghetti plot")[0] if ax is not None
                  else plt.figure(figsize=(6.4, 4.8), layout="constrained").add_subplot())
        colors = plt.get_cmap("tab20")
        drawn: set[tuple[float, ...]] = set()
        for k, c in enumerate(curves):
            # one population curve per distinct set of covariates (e.g. one per sex)
            key = tuple(np.round(np.concatenate([c.curve_time, c.population]), 10))
            _draw_group(target, c, colors(k % 20), 0.5, key not in drawn)
            drawn.add(key)
        target.set_xlabel(time)
        target.set_ylabel(ylabel)
        target.set_title(f"{group}: {shown} of {total} groups" if shown < total else group)
        handles = {h.get_gid(): h for h in target.get_lines()}
        target.legend([handles[g] for g in ("observed", "fitted", "population")],
                      ["observed", "group fit", "population"], fontsize="small")
        return target
    if ax is not None:
        axes = check_axes(ax, shown, "growth plot")
        figure = figure_of(axes[0])
    else:
        figure, axes = panel_grid(shown, fig, ncols=min(6, shown), width=2.4, height=2.0)
    for a, c in zip(axes, curves, strict=True):
        _draw_group(a, c, "C0", 1.0, True)
        a.set_title(c.label, fontsize="small")
    # lattice: one scale for every panel
    lo = min(min(c.observed.min(), c.fitted.min(), c.population.min()) for c in curves)
    hi = max(max(c.observed.max(), c.fitted.max(), c.population.max()) for c in curves)
    pad = 0.05 * (hi - lo or 1.0)
    tmin = min(c.curve_time.min() for c in curves)
    tmax = max(c.curve_time.max() for c in curves)
    tpad = 0.05 * (tmax - tmin or 1.0)
    for a in axes:
        a.set_ylim(lo - pad, hi + pad)
        a.set_xlim(tmin - tpad, tmax + tpad)
        a.tick_params(labelsize="small")
    figure.supxlabel(time)
    figure.supylabel(ylabel)
    note = f" (first {shown} of {total}; choose with groups=)" if shown < total else ""
    figure.suptitle(f"{group}: observed (points), group fit (solid), population (dashed)"
                    f"{note}", fontsize="medium")
    return figure


# -- effect plots ------------------------------------------------------------------------------
def _predictor_columns(fit: Any, rows: pd.DataFrame) -> list[str]:
    """Columns the fixed part of the formula names (for the title's held values): the
    identifiers of the right-hand side, random terms (inside parentheses with a bar) left
    out. Empty when the fit keeps no formula."""
    text = _formula_text(fit)
    if "~" not in text:
        return []
    rhs = re.sub(r"\([^()]*\|[^()]*\)", " ", text.split("~", 1)[1])
    tokens = set(re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", rhs))
    return [c for c in rows.columns if str(c) in tokens]


def _typical(values: pd.Series) -> Any:
    """A numeric column's mean; a factor's reference (first) level."""
    return float(values.mean()) if _is_numeric(values) else _levels(values)[0]


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _moderator_values(rows: pd.DataFrame, by: str) -> list[tuple[Any, str]]:
    """(value, legend label) per line: a factor's levels; a numeric moderator at its mean
    minus one SD, its mean and its mean plus one SD (interactions' ``interact_plot``)."""
    values = rows[by]
    if not _is_numeric(values):
        return [(v, str(v)) for v in _levels(values)]
    m, s = float(values.mean()), float(values.std(ddof=1))
    return [(m - s, f"mean - 1 SD ({m - s:.4g})"), (m, f"mean ({m:.4g})"),
            (m + s, f"mean + 1 SD ({m + s:.4g})")]


def _column_like(rows: pd.DataFrame, name: str, values: Any, n: int) -> pd.Series:
    """``values`` (one or ``n``) as a column of ``n`` rows with the fitted column's dtype, so
    that a factor keeps its levels."""
    dtype = rows[name].dtype
    data = np.repeat(np.asarray([values], dtype=object), n) if np.ndim(values) == 0 else values
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical(list(data), dtype=dtype))
    # a numeric column held at its mean (or a grid over it) is float even if the column is not
    return pd.Series(np.asarray(list(data)), dtype=float if _is_numeric(rows[name]) else None)


def effect_grid(fit: Any, term: str, by: str | None = None, at: dict[str, Any] | None = None,
                data: Any = None, points: int = GRID_POINTS) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows :func:`effects` predicts: ``term`` over a grid (``points`` values over its
    observed range, or its levels), crossed with the moderator's values, every other column
    held at ``at`` or its typical value. Returns the grid and the held values shown."""
    rows = _rows(fit, data)
    term = _column(rows, term, "term")
    if by is not None:
        by = _column(rows, by, "by")
        if by == term:
            raise ArgumentError(f"by must be another column than term ({term!r})")
    at = {} if at is None else at
    if not isinstance(at, dict):
        raise ArgumentError(f"at must be a dict of column -> value, got {type(at).__name__}")
    for name in at:
        _column(rows, name, "at")
        if name in (term, by):
            raise ArgumentError(f"at gives {name!r}, which the plot varies (term or by); "
                                "leave it out of at")
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ArgumentError(f"points must be a whole number >= 2, got {points!r:.60}")
    x = rows[term]
    xs = (np.linspace(float(x.min()), float(x.max()), points) if _is_numeric(x)
          else np.asarray(_levels(x), dtype=object))
    moderator = _moderator_values(rows, by) if by is not None else [(None, "")]
    parts = []
    for value, _label in moderator:
        part = pd.DataFrame({term: _column_like(rows, term, xs, len(xs))})
        if by is not None:
            part[by] = _column_like(rows, by, value, len(xs))
        parts.append(part)
    grid = pd.concat(parts, ignore_index=True)
    held: dict[str, Any] = {}
    shown = set(_predictor_columns(fit, rows))
    for name in rows.columns:
        if name in (term, by):
            continue
        value = at[name] if name in at else _typical(rows[name])
        grid[name] = _column_like(rows, name, value, len(grid))
        if name in shown or name in at:
            held[str(name)] = value
    return grid, held


@public_api
def effects(fit: Any, term: str, by: str | None = None, at: dict[str, Any] | None = None,
            level: float = 0.95, scale: str = "response", data: Any = None,
            points: int = GRID_POINTS, ax: Any = None) -> Axes:
    """The predicted response across the predictor ``term`` with its confidence band
    (ggeffects' ``plot(ggpredict(fit, terms))``); with ``by=``, one line and band per value of
    a moderator: the cross-level interaction plot (interactions' ``interact_plot``).

    ``term`` runs over 50 values across its observed range (a factor: its levels, drawn as
    points with error bars); ``by`` takes a factor's levels, or a numeric moderator's mean
    minus one SD, mean and mean plus one SD. Every other column is held at ``at``'s value or
    else at its mean (numeric) or reference level (factor); the title names the held values.
    Estimates and intervals are :func:`multilevel.predictions` at the population level
    (intervals from the fixed effects' covariance; for a GLMM built on the link scale).

    Parameters
    ----------
    fit : fitted model
        From ``lmer``, ``glmer``, ``lme``, ``gls``, ``nlme`` or ``bayes``.
    term : str
        The predictor on the x axis.
    by : str, optional
        The moderator.
    at : dict, optional
        Values at which to hold other columns.
    level : float, default 0.95
        Confidence level of the band.
    scale : {"response", "link"}
        For generalized models.
    data : DataFrame, optional
        The rows the model was fitted to, for a fit that does not keep them.
    points : int, default 50
        Grid size of a numeric ``term``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        One line (``gid`` "effect") and one band (``gid`` "band") per moderator value, or
        error bars (``gid`` "effect") for a factor ``term``.

    Examples
    --------
    >>> import multilevel as ml
    >>> fit = ml.lmer("distance ~ age * Sex + (1 | Subject)", ml.datasets.load("Orthodont"))
    >>> ax = ml.plot.effects(fit, "age", by="Sex")  # doctest: +SKIP
    """
    level = check_level(level)
    plt = pyplot()
    grid, held = effect_grid(fit, term, by, at, data, points)
    pred = multilevel.predictions(fit, grid, level=level, scale=scale)
    target = (check_axes(ax, 1, "effects plot")[0] if ax is not None
              else plt.figure(figsize=(6.4, 4.8), layout="constrained").add_subplot())
    rows = _rows(fit, data)
    moderator = _moderator_values(rows, by) if by is not None else [(None, "")]
    numeric = _is_numeric(rows[term])
    n = len(pred) // len(moderator)
    for k, (_value, label) in enumerate(moderator):
        part = pred.iloc[k * n:(k + 1) * n]
        color = f"C{k % 10}"
        est = part["estimate"].to_numpy()
        low, high = part["conf_low"].to_numpy(), part["conf_high"].to_numpy()
        if numeric:
            x = part[term].to_numpy(dtype=float)
            target.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0, gid="band")
            target.plot(x, est, color=color, gid="effect", label=label or None)
        else:
            # levels side by side, the moderator's values dodged around each level
            offset = (k - (len(moderator) - 1) / 2) * 0.12
            x = np.arange(n) + offset
            target.errorbar(x, est, yerr=[est - low, high - est], fmt="o", color=color,
                            capsize=3, gid="effect", label=label or None)
    if not numeric:
        target.set_xticks(np.arange(n), [str(v) for v in pred[term].iloc[:n]])
    target.set_xlabel(term)
    name = _response_label(fit)
    target.set_ylabel(f"predicted {name}" + (" (link scale)" if scale == "link" else ""))
    if by is not None:
        target.legend(title=by, fontsize="small")
    shown = ", ".join(f"{k} = {_format(v)}" for k, v in held.items())
    target.set_title(f"{int(round(level * 100))} % confidence band"
                     + (f"; held at {shown}" if shown else ""), fontsize="medium")
    return target
