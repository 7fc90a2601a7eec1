"""Publication tables of fitted models (``ml.table``): one column per model, rendered to text,
HTML, LaTeX (booktabs), Markdown or a DataFrame. Presentation layer: reads fits through the
public API only.
"""

from __future__ import annotations

from typing import Any

from multilevel.errors import public_api
from multilevel.tables.model_table import AUTO, DEFAULT_STATS, Row, Table, build_table


@public_api
def table(models: Any, names: Any = None, stats: Any = DEFAULT_STATS, ci: bool = False,
          stars: bool = False, digits: int = 3, ddf: Any = AUTO, conf_level: float = 0.95,
          random: bool = True) -> Table:
    """A side-by-side table of fitted models for a paper (R's modelsummary / texreg).

    Parameters
    ----------
    models : fitted model, list of them, or dict name -> model
        Any kinds together (lmer, glmer, lme, gls, nlme, bayes); each gets a column.
    names : list of str, optional
        Column headings (default ``(1)``, ``(2)``, ...; a dict's keys).
    stats : list of str
        Fit statistics under the coefficients, in this order: ``"aic"``, ``"bic"``,
        ``"loglik"``, ``"nobs"``, ``"ngroups"`` (levels per grouping factor), ``"icc"``
        (:func:`multilevel.icc`'s adjusted ICC), ``"r2"`` (:func:`multilevel.r2`'s marginal
        and conditional R2). A model without one (a Bayesian fit's AIC, an lme's ICC) has an
        empty cell.
    ci : bool
        ``[low, high]`` intervals at ``conf_level`` below each coefficient instead of its
        ``(standard error)``; for Bayesian fits posterior SDs and quantiles.
    stars : bool
        Significance stars from each coefficient's p-value (p < .05 ``*``, .01 ``**``,
        .001 ``***``), with their key as a note; Bayesian fits have none.
    digits : int
        Decimals of coefficients, SDs, correlations, ICC and R2 (AIC, BIC and the
        log-likelihood get one).
    ddf : str, optional
        The denominator df of the linear models' t tests (``"satterthwaite"``,
        ``"kenward-roger"``, ``"between-within"`` for lme); by default each fit's own.
        Models whose tests take no df (glmer's z tests, gls, nlme, Bayesian) keep theirs.
    conf_level : float
        Level of the intervals when ``ci=True``.
    random : bool
        Include the variance components (SDs and correlations per grouping factor, the
        residual SD).

    Returns
    -------
    Table
        ``.to_text()``, ``.to_html()``, ``.to_latex()``, ``.to_markdown()``,
        ``.to_frame(numeric=False)``; ``str()`` is the text, notebooks show the HTML.

    Examples
    --------
    >>> import multilevel as ml
    >>> ss = ml.datasets.load("sleepstudy")
    >>> m1 = ml.lmer("Reaction ~ Days + (1 | Subject)", ss)
    >>> m2 = ml.lmer("Reaction ~ Days + (Days | Subject)", ss)
    >>> t = ml.table([m1, m2], names=["intercepts", "slopes"], stars=True)
    >>> t.to_frame(numeric=True).loc[("fixed", "Days", "estimate"), "slopes"].round(3)
    np.float64(10.467)
    """
    return build_table(models, names=names, stats=stats, ci=ci, stars=stars, digits=digits,
                       ddf=ddf, conf_level=conf_level, random=random)


__all__ = ["Row", "Table", "table"]
