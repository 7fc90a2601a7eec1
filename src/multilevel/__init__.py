"""multilevel: multilevel (mixed-effects) models with lme4's formulas.

>>> import multilevel as ml
>>> fit = ml.lmer("Reaction ~ Days + (Days | Subject)", ml.datasets.load("sleepstudy"))
"""

from multilevel import datasets, errors, families
from multilevel.api import GeneralizedLinearMixedModel, LinearMixedModel, glmer, lmer
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
from multilevel.models.lm_list import LmListResult, lm_list
from multilevel.models.nls_list import NlsListResult, nls_list
from multilevel.results.glmm_result import GeneralizedLinearMixedModelResult
from multilevel.results.lmm_result import LinearMixedModelResult

__version__ = "0.1.0"

__all__ = ["GeneralizedLinearMixedModel", "GeneralizedLinearMixedModelResult",
           "LinearMixedModel", "LinearMixedModelResult", "LmListResult", "NlsListResult",
           "__version__", "anova",
           "bootstrap", "center", "compare", "datasets", "design_effect", "errors", "families",
           "glmer", "hausman", "icc", "lm_list", "lmer", "mundlak", "nls_list", "overdispersion",
           "power",
           "power_curve", "r2", "step"]
