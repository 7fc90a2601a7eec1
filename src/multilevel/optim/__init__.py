"""Optimizer backends by name and the optimizer record."""

from multilevel.optim.backends import BACKENDS, minimize_theta
from multilevel.optim.optsummary import OptSummary

__all__ = ["BACKENDS", "OptSummary", "minimize_theta"]
