"""Inference on fitted models: model comparison and variance partition."""

from multilevel.inference.model_comparison import anova, compare
from multilevel.inference.variance_partition import (
    VarianceDecomposition,
    design_effect,
    icc,
    r2,
    variance_decomposition,
)

__all__ = ["VarianceDecomposition", "anova", "compare", "design_effect", "icc", "r2",
           "variance_decomposition"]
