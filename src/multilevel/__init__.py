"""multilevel: multilevel (mixed-effects) models with lme4's formulas.

>>> import multilevel as ml
>>> fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
"""

from typing import TYPE_CHECKING, Any

from multilevel import datasets, errors, families
from multilevel.api import (
    GeneralizedLinearMixedModel,
    LinearMixedModel,
    bayes,
    bayes_nlme,
    glmer,
    gls,
    lme,
    lmer,
    lmer_moments,
    loo,
    nlme,
    posterior_mode,
    prior_predictive,
    priors_from_posterior,
    waic,
)
from multilevel.bayesian.priors import prior
from multilevel.covariance.pdmat import PdBlocked, PdDiag, PdSymm
from multilevel.inference import (
    anova,
    bootstrap,
    center,
    compare,
    design_effect,
    hausman,
    icc,
    mundlak,
    overdispersion,
    power,
    power_curve,
    r2,
    step,
)
from multilevel.inference.marginal_means import MarginalContrasts, MarginalMeans, emmeans, slopes
from multilevel.inference.predictions import predictions
from multilevel.io import load
from multilevel.models.lm_list import LmListResult, lm_list
from multilevel.models.nlme_fit import NlmeControl
from multilevel.models.nls_list import NlsListResult, nls_list
from multilevel.report import report
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.gls_result import GlsResult
from multilevel.results.lmm_result import LinearMixedModelResult
from multilevel.structures import (
    CorAR1,
    CorARMA,
    CorCAR1,
    CorCompSymm,
    CorExp,
    CorGaus,
    CorLin,
    CorRatio,
    CorSpher,
    CorSymm,
    VarComb,
    VarConstPower,
    VarExp,
    VarFixed,
    VarIdent,
    VarPower,
)
from multilevel.tables import table

__version__ = "0.1.0"

if TYPE_CHECKING:
    from multilevel import plotting as plot


def __getattr__(name: str) -> Any:
    """``ml.plot`` imports :mod:`multilevel.plotting` on first use, so that matplotlib (the
    ``plot`` extra) is never imported by ``import multilevel``."""
    if name == "plot":
        import multilevel.plotting as plot
        globals()["plot"] = plot
        return plot
    raise AttributeError(f"module 'multilevel' has no attribute {name!r}")


__all__ = ["CorAR1", "CorARMA", "CorCAR1", "CorCompSymm", "CorExp", "CorGaus", "CorLin",
           "CorRatio", "CorSpher", "CorSymm", "GeneralizedLinearMixedModel",
           "GeneralizedLinearMixedModelResult", "GlsResult", "LinearMixedModel",
           "LinearMixedModelResult", "LmListResult", "MarginalContrasts", "MarginalMeans",
           "NlmeControl", "NlsListResult",
           "PdBlocked", "PdDiag", "PdSymm", "VarComb",
           "VarConstPower", "VarExp", "VarFixed", "VarIdent", "VarPower", "__version__",
           "anova", "bayes", "bayes_nlme", "bootstrap", "center", "compare", "datasets",
           "design_effect", "emmeans", "errors", "load",
           "families", "glmer", "gls", "hausman", "icc", "lm_list", "lme", "lmer", "lmer_moments",
           "loo", "mundlak",
           "nlme", "nls_list", "overdispersion", "plot", "posterior_mode", "power", "power_curve",
           "predictions", "prior",
           "prior_predictive", "priors_from_posterior", "r2", "report", "slopes", "step", "table",
           "waic"]
