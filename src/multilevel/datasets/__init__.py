"""Built-in data sets, as R's lme4, nlme, mlmRev and datasets packages ship them.

>>> import multilevel as ml
>>> sleep = ml.datasets.load("sleepstudy")
>>> sleep.shape
(180, 3)
>>> ml.datasets.list().columns[0], len(ml.datasets.list()) > 10   # one row per data set
('name', True)
>>> print(ml.datasets.describe("sleepstudy"))
sleepstudy: Reaction times in a sleep deprivation study
...

Factor columns are pandas Categoricals with categories in R's level order (so the first
category is R's reference level); R's ordered factors are ordered Categoricals.
"""

from __future__ import annotations

from multilevel.datasets.catalog import available, describe, load, metadata
from multilevel.datasets.catalog import list_datasets as list

__all__ = ["available", "describe", "list", "load", "metadata"]
