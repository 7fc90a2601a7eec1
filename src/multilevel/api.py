"""The one-call fitting functions: compositions of the public stages."""

from __future__ import annotations

from typing import Any

from multilevel.models.lmm import LinearMixedModel
from multilevel.results.lmm_result import LinearMixedModelResult


def lmer(formula: str, data: Any, reml: bool = True, weights: Any = None, offset: Any = None,
         optimizer: str = "bobyqa", start: Any = None,
         optimizer_settings: dict[str, Any] | None = None) -> LinearMixedModelResult:
    """Fit a linear mixed model, as lme4's ``lmer``.

    Parameters
    ----------
    formula : str
        lme4 formula: ``"Reaction ~ Days + (Days | Subject)"``. Random terms ``(x | g)``,
        ``(x || g)`` (uncorrelated), ``(1 | a/b)`` (nested), ``(1 | a:b)``, crossed terms.
    data : pandas.DataFrame or polars.DataFrame
        Rows with missing values in used columns are dropped (and counted on the result).
    reml : bool, default True
        REML (lme4's default) or maximum likelihood.
    weights, offset : array-like or column name, optional
        Prior weights and a known offset, one value per row of ``data``.
    optimizer : {"bobyqa", "cobyqa", "lbfgsb"}
        Backend for the theta optimization; bobyqa (NLopt) as lme4.
    start : array-like, optional
        Starting theta in lme4's order.
    optimizer_settings : dict, optional
        Backend options (bobyqa: ``xtol_abs``, ``ftol_abs``, ``maxeval``).

    Returns
    -------
    LinearMixedModelResult
    """
    model = LinearMixedModel(formula, data, reml=reml, weights=weights, offset=offset,
                             optimizer=optimizer, start=start,
                             optimizer_settings=optimizer_settings)
    return model.fit()
