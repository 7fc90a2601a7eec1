"""Plots of inference results: likelihood profiles (zeta plots), power curves and bootstrap
distributions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from multilevel.errors import ArgumentError, public_api
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

PROFILE_LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)
# how far short of +-z a profile's end may stop and still mark that level's interval end
ZETA_TOL = 1e-4


def _levels(level: Any) -> list[float]:
    values = [level] if isinstance(level, int | float) else level
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise ArgumentError(f"level must be a probability or a list of them, got {level!r:.60}")
    return sorted(check_level(v) for v in values)


def _panels_on(ax: Any, fig: Any, n: int, what: str) -> tuple[Figure, list[Axes]]:
    """The Axes to draw ``n`` panels on: ``ax`` (one per panel), else a grid on ``fig`` or on
    a new figure."""
    if ax is not None:
        axes = check_axes(ax, n, what)
        return figure_of(axes[0]), axes
    return panel_grid(n, check_figure(fig))


def _panel_per_parameter(parameters: Any, available: list[str], source: str, what: str,
                         ax: Any, fig: Any, draw: Callable[[Axes, str], None]) -> Figure:
    """One panel per parameter (``parameters`` checked against ``available``, the names in
    ``source``), on ``ax`` or ``fig`` as :func:`_panels_on` lays them: ``draw(axes, name)``
    fills each. The figure."""
    names = _check_names(parameters, available, source, "parameters")
    figure, axes = _panels_on(ax, fig, len(names), what)
    for a, name in zip(axes, names, strict=True):
        draw(a, name)
    return figure


def _check_names(wanted: Any, available: list[str], what: str, argument: str) -> list[str]:
    if wanted is None:
        return available
    names = [wanted] if isinstance(wanted, str) else wanted
    if not isinstance(names, list | tuple) or not names \
            or not all(isinstance(n, str) for n in names):
        raise ArgumentError(f"{argument} must be a name or a list of names from {what}, got "
                            f"{wanted!r:.60}")
    for name in names:
        if name not in available:
            raise ArgumentError(f"{argument}: {name!r} is not in {what}; its parameters are: "
                                f"{', '.join(map(repr, available))}")
    return list(names)


# -- profiles -------------------------------------------------------------------------------------
def profile_interval(values: np.ndarray, zeta: np.ndarray, z: float,
                     ) -> tuple[float, float]:
    """Where the profile crosses -z and +z, by linear interpolation of value on zeta (zeta
    rises with value; NaN when the profile does not reach that far). A profile computed to
    exactly this level ends at +-z up to its root finder's tolerance: that end counts."""
    ok = np.isfinite(values) & np.isfinite(zeta)
    order = np.argsort(zeta[ok], kind="stable")
    zs, vs = zeta[ok][order], values[ok][order]
    ends = []
    for target in (-z, z):
        inside = zs.size >= 2 and zs[0] - ZETA_TOL <= target <= zs[-1] + ZETA_TOL
        ends.append(float(np.interp(target, zs, vs)) if inside else float("nan"))
    return ends[0], ends[1]


def _check_profile(prof: Any) -> pd.DataFrame:
    if not isinstance(prof, pd.DataFrame) or not {"parameter", "value", "zeta"} <= set(
            prof.columns):
        raise ArgumentError(f"prof must be a profile, the DataFrame fit.profile() returns "
                            f"(columns parameter, value, zeta), got {type(prof).__name__}")
    if prof.empty:
        raise ArgumentError("prof is an empty profile: nothing to plot")
    return prof


@public_api
def profile(prof: Any, level: float | Sequence[float] = PROFILE_LEVELS,
            parameters: str | list[str] | None = None, ax: Any = None,
            fig: Any = None) -> Figure:
    """Zeta plots of a likelihood profile (lme4's ``xyplot(profile(fit))``): for each
    parameter, zeta (the signed square root of the change in deviance) against the parameter's
    value, with horizontal lines at +-z of each ``level`` and the profile interval's ends
    marked by vertical segments. A straight line means a quadratic log-likelihood, where Wald
    intervals are good.

    Parameters
    ----------
    prof : DataFrame
        ``fit.profile()`` (columns parameter, value, zeta).
    level : float or list of float
        Interval levels to mark (default 0.5, 0.8, 0.9, 0.95, 0.99). An end is marked where the
        profile reaches it (``fit.profile(level=...)`` sets how far it goes).
    parameters : str or list of str, optional
        Which parameters to draw (default: all, in the profile's order).
    ax : Axes or list of Axes, optional
        One per parameter; or ``fig``, a figure to lay the panels on.

    Returns
    -------
    matplotlib.figure.Figure
        Each panel's profile line has gid ``"zeta"``; the level lines ``"level"``; the
        interval ends a LineCollection with gid ``"interval-ends"``.

    Examples
    --------
    >>> fit = ml.lmer("Yield ~ 1 + (1 | Batch)", ml.datasets.load("Dyestuff"))
    >>> fig = ml.plot.profile(fit.profile())
    """
    prof = _check_profile(prof)
    levels = _levels(level)

    def draw(a: Axes, name: str) -> None:
        rows = prof[prof["parameter"].astype(str) == name]
        values = rows["value"].to_numpy(dtype=float)
        zeta = rows["zeta"].to_numpy(dtype=float)
        order = np.argsort(values, kind="stable")
        a.plot(values[order], zeta[order], "o-", color="C0", ms=3, gid="zeta")
        xs, lows, highs = [], [], []
        for p in levels:
            z = float(ndtri(0.5 + p / 2))
            for s in (-z, z):
                a.axhline(s, color="0.7", lw=0.8, ls=":", gid="level")
            lo, hi = profile_interval(values, zeta, z)
            for end, s in ((lo, -z), (hi, z)):
                if np.isfinite(end):
                    xs.append(end)
                    lows.append(min(0.0, s))
                    highs.append(max(0.0, s))
        if xs:
            a.vlines(xs, lows, highs, color="C1", lw=1, gid="interval-ends")
        a.axhline(0.0, color="0.5", lw=0.8, gid="zero")
        a.set(xlabel=name, ylabel="zeta", title=name)

    return _panel_per_parameter(parameters, list(dict.fromkeys(prof["parameter"].astype(str))),
                                "the profile", "profile plot", ax, fig, draw)


# -- power ----------------------------------------------------------------------------------------
def _check_curve(curve: Any) -> pd.DataFrame:
    if not isinstance(curve, pd.DataFrame) or not {"power", "ci_lower", "ci_upper"} <= set(
            curve.columns):
        raise ArgumentError(f"curve must be the table ml.power_curve returns (columns power, "
                            f"ci_lower, ci_upper), got {type(curve).__name__}")
    if curve.empty:
        raise ArgumentError("curve is an empty power curve: nothing to plot")
    return curve


@public_api
def power(curve: Any, target: float | None = 0.8, ax: Any = None) -> Axes:
    """A power curve (simr's ``plot(powerCurve(...))``): estimated power against the design
    size that varies (the table's index: number of groups or rows per group), with the 95%
    Clopper-Pearson (binomial) interval of each Monte-Carlo estimate as error bars, and the
    target power as a horizontal line. A table that varies both sizes draws one line per value
    of the second.

    Parameters
    ----------
    curve : DataFrame
        ``ml.power_curve(...)``.
    target : float or None
        Power to aim at (drawn as a line; None: no line).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Each series is an ``errorbar`` container (points gid ``"power"``).

    Examples
    --------
    >>> fit = ml.lmer("Reaction ~ Days + (1 | Subject)", ml.datasets.load("sleepstudy"))
    >>> curve = ml.power_curve(fit, "Days", n_groups=[4, 8], nsim=20, seed=1,
    ...                        progress=False)  # doctest: +SKIP
    >>> ax = ml.plot.power(curve)  # doctest: +SKIP
    """
    curve = _check_curve(curve)
    if target is not None:
        target = check_level(target, "target")
    if ax is None:
        plt = pyplot()
        figure = plt.figure(figsize=(5.5, 4), layout="constrained")
        ax = figure.add_subplot()
    else:
        ax = check_axes(ax, 1, "power plot")[0]
    table = curve.reset_index()
    index_names = [n for n in curve.index.names if n is not None]
    x_name = index_names[0] if index_names else "index"
    if x_name not in table.columns:
        x_name = table.columns[0]
    series: list[tuple[str | None, pd.DataFrame]] = [(None, table)]
    if len(index_names) > 1:
        other = index_names[1]
        series = [(f"{other} = {v}", part) for v, part in table.groupby(other, sort=True)]
    for label, part in series:
        part = part.sort_values(x_name)
        x = part[x_name].to_numpy(dtype=float)
        p = part["power"].to_numpy(dtype=float)
        err = np.vstack([p - part["ci_lower"].to_numpy(dtype=float),
                         part["ci_upper"].to_numpy(dtype=float) - p])
        container = ax.errorbar(x, p, yerr=err, fmt="o-", capsize=3, label=label)
        container.lines[0].set_gid("power")
    if target is not None:
        ax.axhline(target, color="C3", lw=1, ls="--", gid="target",
                   label=f"target {target:.0%}")
    ax.set_ylim(-0.02, 1.02)
    ax.set(xlabel=x_name, ylabel="power", title="Power (95% Monte-Carlo intervals)")
    ax.legend(fontsize=8, loc="lower right")
    return ax


# -- bootstrap ------------------------------------------------------------------------------------
@public_api
def bootstrap(boot: Any, parameters: str | list[str] | None = None, level: float = 0.95,
              bins: int | str = "auto", ax: Any = None, fig: Any = None) -> Figure:
    """Bootstrap distributions (lme4's ``bootMer`` replicates as ``boot``'s ``plot`` shows
    them): for each parameter a histogram of the replicates, the original estimate and the
    percentile interval.

    Parameters
    ----------
    boot : BootstrapResult
        ``ml.bootstrap(fit, n=...)`` (failed replicates, rows of NaN, are left out).
    parameters : str or list of str, optional
        Which parameters (default: all).
    level : float
        Coverage of the percentile interval (``boot.intervals(level)``).
    bins : int or str
        Histogram bins, as matplotlib's ``hist``.
    ax : Axes or list of Axes, optional
        One per parameter; or ``fig``, a figure to lay the panels on.

    Returns
    -------
    matplotlib.figure.Figure
        Each panel's bars are its patches; the estimate line has gid ``"estimate"``, the
        interval's two lines ``"interval"``.

    Examples
    --------
    >>> fit = ml.lmer("Yield ~ 1 + (1 | Batch)", ml.datasets.load("Dyestuff"))
    >>> fig = ml.plot.bootstrap(ml.bootstrap(fit, n=50, seed=1, progress=False))
    """
    replicates = getattr(boot, "replicates", None)
    estimate = getattr(boot, "estimate", None)
    if not isinstance(replicates, pd.DataFrame) or not isinstance(estimate, pd.Series) \
            or not callable(getattr(boot, "intervals", None)):
        raise ArgumentError(f"boot must be the result of ml.bootstrap(fit, n=...), got "
                            f"{type(boot).__name__}")
    level = check_level(level)
    if isinstance(bins, bool) or not (isinstance(bins, str) or (isinstance(bins, int)
                                                               and bins > 0)):
        raise ArgumentError(f"bins must be a positive number of bins or a rule name "
                            f"('auto'), got {bins!r:.60}")
    intervals = boot.intervals(level)

    def draw(a: Axes, name: str) -> None:
        x = replicates[name].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        if x.size:
            a.hist(x, bins=bins, color="C0", alpha=0.6)
        a.axvline(float(estimate[name]), color="C3", lw=1.5, gid="estimate")
        for end in (intervals.loc[name, "lower"], intervals.loc[name, "upper"]):
            if np.isfinite(end):
                a.axvline(float(end), color="0.3", lw=1, ls="--", gid="interval")
        a.set(xlabel=name, ylabel="replicates",
              title=f"{name}\n{x.size} replicates, {level:.0%} percentile interval")
        a.title.set_fontsize(9)

    return _panel_per_parameter(parameters, [str(c) for c in replicates.columns],
                                "the bootstrap replicates", "bootstrap plot", ax, fig, draw)
