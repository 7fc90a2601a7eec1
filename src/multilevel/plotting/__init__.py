"""Plots of fits and of inference results (the ``plot`` extra: matplotlib), reached as
``ml.plot``. matplotlib is imported when a function draws, never by ``import multilevel``.

Every function returns the matplotlib Figure (or Axes, for one-panel plots), takes ``ax=``
(or ``fig=``) to draw into existing axes, and draws headless (Agg) when there is no display.
"""

from multilevel.plotting.curves import effects, growth
from multilevel.plotting.diagnostics import caterpillar, residuals
from multilevel.plotting.inference_plots import bootstrap, power, profile

__all__ = ["bootstrap", "caterpillar", "effects", "growth", "power", "profile", "residuals"]
