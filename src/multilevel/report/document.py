"""``ml.report``: gather the facts, notes and figures of a fit and write the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import multilevel
from multilevel.errors import ArgumentError, public_api
from multilevel.report.facts import formula_of, gather, kind_of
from multilevel.report.figures import Figure, figures_for
from multilevel.report.notes import notes_for
from multilevel.report.page import render

DDF_CHOICES = ("satterthwaite", "kenward-roger", "between-within", "residual")


@public_api
def report(fit: Any, path: str | Path | None = None, title: str | None = None,
           data_name: str | None = None, ddf: str | None = "satterthwaite",
           plots: bool = True) -> Path | str:
    """Write one self-contained HTML report of a fitted model.

    The page holds the call (formula, data, method, family), plain-word notes on convergence
    and singularity (for Bayesian fits: divergences, R-hat, effective sample sizes), the
    coefficient table with standard errors, df, t or z values and p-values, the variance
    components with the ICC, the fit statistics (AIC, BIC, log-likelihood, observations,
    groups), the residual diagnostic and caterpillar plots of :mod:`multilevel.plot`, and the
    fit's printed summary. Nothing is fetched from the network: the style is inline and the
    plots are embedded as SVG data URIs. Without matplotlib the page is written without plots
    and says which extra to install.

    Parameters
    ----------
    fit : fitted model
        A result of ``ml.lmer``, ``ml.glmer``, ``ml.lme``, ``ml.gls``, ``ml.nlme``,
        ``ml.bayes`` or ``ml.bayes_nlme``.
    path : str or pathlib.Path, optional
        Where to write the page (UTF-8). None returns the HTML text instead.
    title : str, optional
        The page's heading (default: the model kind and its formula).
    data_name : str, optional
        How the data are named on the page (e.g. the file name; default ``"data"``).
    ddf : str or None, default "satterthwaite"
        Denominator degrees of freedom of a linear mixed model's (``ml.lmer``) t tests:
        ``"satterthwaite"``, ``"kenward-roger"``, ``"between-within"``, ``"residual"``, or
        None for lme4's z tests. Other kinds use their own tests and take only the default.
    plots : bool, default True
        Draw the residual diagnostic and caterpillar plots (about a second each); False
        writes the tables and notes only.

    Returns
    -------
    pathlib.Path or str
        The path written, or the HTML text when ``path`` is None.

    Examples
    --------
    >>> import multilevel as ml
    >>> fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
    >>> page = ml.report(fit, plots=False)  # the HTML text; with a path, the file
    >>> page.startswith("<!DOCTYPE html>")
    True
    >>> ml.report(fit, "sleepstudy_report.html", data_name="sleepstudy").name
    'sleepstudy_report.html'
    """
    kind = kind_of(fit)
    _check(kind, path, title, data_name, ddf, plots)
    facts = gather(fit, data_name, ddf)
    figures = figures_for(fit, facts.has_random_effects) if plots else [
        Figure("residual-plot", "", "", None, "Plots were left out (plots=False).")]
    page = render(title or f"{facts.title}: {formula_of(fit, kind)}", facts,
                  notes_for(fit, kind), figures,
                  footer=f"Written by multilevel {multilevel.__version__} (ml.report).")
    if path is None:
        return page
    target = Path(path)
    try:
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ArgumentError(f"path {str(path)!r} cannot be written ({exc.strerror or exc}); "
                            "give a file in a folder that exists and that you may write "
                            "to") from exc
    return target


def _check(kind: str, path: Any, title: Any, data_name: Any, ddf: Any, plots: Any) -> None:
    if path is not None and not isinstance(path, str | Path):
        raise ArgumentError(f"path must be a file name (str or pathlib.Path) or None, got "
                            f"{type(path).__name__}")
    if path is not None and Path(path).is_dir():
        raise ArgumentError(f"path {str(path)!r} is a folder; give a file name such as "
                            "'report.html'")
    if path is not None and not Path(path).parent.is_dir():  # known before the plots are drawn
        raise ArgumentError(f"path {str(path)!r} cannot be written (its folder "
                            f"{str(Path(path).parent)!r} does not exist); create the folder or "
                            "give another path")
    if not isinstance(plots, bool):
        raise ArgumentError(f"plots must be True or False, got {plots!r}")
    for name, value in (("title", title), ("data_name", data_name)):
        if value is not None and not isinstance(value, str):
            raise ArgumentError(f"{name} must be a str or None, got {type(value).__name__}")
    if ddf is not None and ddf not in DDF_CHOICES:
        raise ArgumentError(f"ddf must be one of {', '.join(map(repr, DDF_CHOICES))} or None, "
                            f"got {ddf!r}")
    if kind != "LinearMixedModelResult" and ddf != "satterthwaite":
        raise ArgumentError(f"ddf={ddf!r} applies to linear mixed models fitted by ml.lmer; "
                            "this fit's tests are its own: leave ddf out")
