"""Exact linear mixed-model fits from data that stay partitioned (Dask).

``ml.lmer(formula, dask_dataframe)`` (or a path or glob of Parquet files) lands here: one cheap
pass finds the levels of every factor (:mod:`~multilevel.distributed.levels`), one map-reduce
pass sums the model's cross-products over the partitions on the workers
(:mod:`~multilevel.distributed.partial_sums`), and only those -- of the size of the levels,
not of the rows -- reach the client, where the usual optimizer runs
(:mod:`~multilevel.distributed.stages`). Nothing here imports Dask at ``import multilevel``:
the extra is imported when a Dask fit is asked for, and a missing one is a
:class:`~multilevel.errors.MissingExtraError` naming the ``pip install``.
"""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Any

from multilevel.errors import MissingExtraError

if TYPE_CHECKING:
    from multilevel.results.lmm_result import LinearMixedModelResult

INSTALL_HINT = 'pip install "multilevel[dask]"  (dask[dataframe], distributed)'


def require() -> None:
    """Import the ``dask`` extra's packages or raise :class:`MissingExtraError` naming them."""
    missing = []
    for name in ("dask", "dask.dataframe", "distributed"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name.split(".")[0])
    if missing:
        raise MissingExtraError(
            f"fits from Dask DataFrames or Parquet files need {', '.join(dict.fromkeys(missing))}"
            f", which is not installed: run {INSTALL_HINT}")


def is_partitioned_input(data: Any) -> bool:
    """True for what the Dask path takes: a Dask DataFrame (checked without importing Dask),
    or a path, directory or glob of Parquet files."""
    if type(data).__module__.split(".")[0] in ("dask", "dask_expr"):
        return hasattr(data, "npartitions")
    if isinstance(data, str | os.PathLike):
        text = os.fspath(data)
        if text.endswith((".parquet", ".parq", ".pq")) or os.path.isdir(text):
            return True
        return any(ch in text for ch in "*?[") and bool(glob.glob(text))
    return False


def dask_lmer(formula: str, data: Any, **settings: Any) -> LinearMixedModelResult:
    """``ml.lmer`` on a Dask DataFrame or Parquet path (see :func:`multilevel.lmer`)."""
    require()
    from multilevel.distributed.lmer import dask_model

    return dask_model(formula, data, **settings).fit()


__all__ = ["INSTALL_HINT", "dask_lmer", "is_partitioned_input", "require"]
