"""Built-in data sets, as R's lme4, nlme, mlmRev and datasets packages ship them.

>>> import multilevel as ml
>>> sleep = ml.datasets.load("sleepstudy")
>>> ml.datasets.list()          # one row per data set
>>> print(ml.datasets.describe("sleepstudy"))

Factor columns are pandas Categoricals with categories in R's level order (so the first
category is R's reference level); R's ordered factors are ordered Categoricals.
"""

from __future__ import annotations

from multilevel.datasets.catalog import available, describe, load, metadata
from multilevel.datasets.catalog import list_datasets as list

__all__ = ["available", "describe", "list", "load", "metadata"]
