"""Nonlinear model functions for nonlinear mixed models: R's self-starting models."""

from multilevel.nonlinear.selfstart import SELF_STARTING, SelfStartModel, self_starting_model

__all__ = ["SELF_STARTING", "SelfStartModel", "self_starting_model"]
