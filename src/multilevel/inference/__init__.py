"""Inference on fitted models: model comparison (likelihood-ratio tests, information criteria)."""

from multilevel.inference.model_comparison import anova, compare

__all__ = ["anova", "compare"]
