"""The people's surface every fitted model shares, whatever its kind: tidy frames
(broom.mixed's long format), saving to an open file format, and the notebook view.

A mixin rather than a base class: the frequentist kinds (``MixedModelResult``), the nlme kinds
(``LmeResult``, ``GlsResult``, ``NlmeResult``) and the Bayesian ``BayesResult`` keep their own
bases; each gets these methods by listing :class:`ResultSurface` among its bases. The methods
delegate to one function each, so that a new model kind gets them by providing the common
vocabulary (``coef_table``, ``varcorr``, ``ranef``, ``summary``) those functions read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class ResultSurface:
    """``tidy``, ``save``, ``model_frame`` and ``_repr_html_`` for every fitted model kind."""

    def _kept_data(self) -> tuple[Any, Any]:
        """Hook: the data the fit keeps and the positions of the rows used in it (None: all
        of them, in order); (None, None) when it keeps none."""
        raise NotImplementedError

    def model_frame(self) -> pd.DataFrame:
        """The data rows the fit used (rows with missing values or zero weight left out), in
        the model's order and indexed 0..n-1 like ``fitted()``: what plots, marginal means
        and predictions on the model's own data start from (R's ``model.frame``, with every
        column of the data kept)."""
        from multilevel.data.frame import to_pandas
        from multilevel.errors import NotApplicableError

        data, rows = self._kept_data()
        if data is None:
            raise NotApplicableError(
                f"this {type(self).__name__} keeps no data (the model was built without it); "
                "refit it, or pass the data to the function that needs it")
        frame = to_pandas(data)
        if rows is not None:
            frame = frame.iloc[np.asarray(rows)]
        return frame.reset_index(drop=True)

    def tidy(self, effects: str = "fixed", conf_int: bool = True, conf_level: float = 0.95,
             **options: Any) -> pd.DataFrame:
        """The fit in broom.mixed's long format, one row per estimate: effect, group, term,
        estimate, std_error, statistic, df, p_value, conf_low, conf_high.

        ``effects`` is ``"fixed"`` (the coefficient table), ``"ran_pars"`` (standard deviations
        and correlations of the random effects, and the residual SD) or ``"ran_vals"`` (the
        conditional modes of each group level with their conditional SDs). Further options
        (such as ``ddf=`` for linear mixed models) go to the fit's ``coef_table``.
        """
        from multilevel.results.tidy import tidy

        return tidy(self, effects=effects, conf_int=conf_int, conf_level=conf_level,
                    **options)

    def save(self, path: str | Path) -> Path:
        """Write the fit to ``path`` in multilevel's open, versioned format (a zip of JSON and
        NumPy arrays; never pickle). Read it back with :func:`multilevel.load`."""
        # base imports this module, so the hook table is looked up when called
        from multilevel.results.base import INFERENCE_HOOKS

        return INFERENCE_HOOKS["save"](self, path)

    def _repr_html_(self) -> str:
        # The notebook view: fit statistics, variance parameters and coefficients as HTML
        # tables (read off tidy) above the printed summary; kinds with a richer view override.
        from multilevel.results.tidy import html_view

        return html_view(self)
