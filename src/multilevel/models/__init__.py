"""Model objectives: the linear mixed model."""

from multilevel.models.lmm import LinearMixedModel

__all__ = ["LinearMixedModel"]
