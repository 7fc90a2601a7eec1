"""One self-contained HTML page about a fitted model (``ml.report``): the call, the summary,
the coefficient table with df and p-values, variance components and ICC, fit statistics, the
diagnostic and caterpillar plots (embedded, no network) and plain-word notes on convergence
and singularity.

Presentation layer: it reads fits only through their public vocabulary (``coef_table``,
``varcorr``, ``summary``, ...) and the public API (``ml.icc``, ``ml.plot``).
"""

from multilevel.report.document import report

__all__ = ["report"]
