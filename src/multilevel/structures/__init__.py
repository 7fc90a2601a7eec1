"""nlme's residual variance functions and within-group correlation structures, as pure numerics.

No model fitting here: each structure maps its (unconstrained) parameters and the data's
covariates, strata and times to sd multipliers or correlation matrices, their inverse Cholesky
factors and log-determinants. The names, parameterizations and data rules are nlme's.
"""

from multilevel.structures.correlation import (
    CorAR1,
    CorARMA,
    CorCAR1,
    CorCompSymm,
    CorExp,
    CorGaus,
    CorLin,
    CorRatio,
    CorrelationForm,
    CorrelationStructure,
    CorSpatial,
    CorSpher,
    CorSymm,
    arma_autocorrelation,
    parse_correlation_form,
)
from multilevel.structures.variance import (
    VarComb,
    VarConstPower,
    VarExp,
    VarFixed,
    VarianceForm,
    VarianceFunction,
    VarIdent,
    VarPower,
    parse_variance_form,
)

__all__ = [
    "CorAR1",
    "CorARMA",
    "CorCAR1",
    "CorCompSymm",
    "CorExp",
    "CorGaus",
    "CorLin",
    "CorRatio",
    "CorSpatial",
    "CorSpher",
    "CorSymm",
    "CorrelationForm",
    "CorrelationStructure",
    "VarComb",
    "VarConstPower",
    "VarExp",
    "VarFixed",
    "VarIdent",
    "VarPower",
    "VarianceForm",
    "VarianceFunction",
    "arma_autocorrelation",
    "parse_correlation_form",
    "parse_variance_form",
]
