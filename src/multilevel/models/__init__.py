"""Model objectives: the linear mixed model."""

from multilevel.models.lmm import ModelStages

__all__ = ["ModelStages"]
