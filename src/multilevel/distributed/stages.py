"""A linear mixed model whose rows stay on the cluster: built from the summed cross-products.

:class:`ModelStages` needs the rows only to form A = [Z X y]' W [Z X y], the centring of X
and y, and lme4-free starting values; everything after (the profiled objective, the
optimizer, beta, the conditional modes, their variances) reads A alone. The model here is a
:class:`ModelStages` whose design keeps the formula, names, level labels and encodings but no
rows (:class:`RowlessDesign`), whose A comes from :mod:`multilevel.distributed.partial_sums`,
and whose ANOVA start is read off A instead of the rows. Its fit is the usual
:class:`~multilevel.results.lmm_result.LinearMixedModelResult`; the few methods that need the
rows (fitted values, residuals) run as a pass over the partitions
(:class:`DaskLinearMixedModelResult`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from multilevel.data.design import ModelDesign
from multilevel.errors import (
    ConvergenceWarning,
    NotApplicableError,
    SingularFitWarning,
    public_methods,
)
from multilevel.linalg.cross_products import CrossProducts
from multilevel.models.lmm import ModelStages
from multilevel.models.memory import check_fit_memory
from multilevel.models.predictor import Predictor
from multilevel.models.response import GaussianResponse
from multilevel.models.start import MIN_START
from multilevel.results.lmm_result import LinearMixedModelResult

# The per-row fields of a ModelDesign: a rowless design refuses to give them, so that a
# computation that needs the rows fails with a typed error saying why, never with an answer
# computed from no rows.
# (``weights`` and ``offset`` stay readable, empty arrays when given: the report says whether
# the model has them.)
ROW_FIELDS = frozenset({"y", "X", "row_index"})


@dataclass(frozen=True)
class RowlessDesign(ModelDesign):
    """A :class:`ModelDesign` of data that stay partitioned: the names, encodings and levels
    without the rows. Reading ``X``, ``y`` or ``row_index`` raises
    :class:`~multilevel.errors.NotApplicableError`; ``weights`` and ``offset`` are None or,
    when the model has them, empty arrays; the number of rows used is ``n_rows``."""

    n_rows: int = 0

    def __getattribute__(self, name: str) -> Any:
        if name in ROW_FIELDS:
            raise NotApplicableError(
                f"this needs the data's {name!r} row by row on the client, which a fit from "
                "a Dask DataFrame keeps in the partitions; use what the Dask fit computes on "
                "the workers (fitted_lazy(), residuals_lazy()), or fit in memory "
                "(ml.lmer(formula, ddf.compute())) where the data fit")
        return object.__getattribute__(self, name)

    @property
    def nobs(self) -> int:
        """Number of observations used (over all partitions)."""
        return self.n_rows

    def with_rows_used(self, **changes: Any) -> RowlessDesign:
        """A copy with some fields changed (``dataclasses.replace`` would read the per-row
        fields)."""
        values = {f: object.__getattribute__(self, f) for f in self.__dataclass_fields__}
        values.update(changes)
        return RowlessDesign(**values)


@dataclass(frozen=True)
class SummaryFacts:
    """What the model needs from the pass besides A.

    Attributes
    ----------
    x_shift : (p,) column means of X subtracted before A was formed (0 for the intercept), or
        None when X has no intercept; y_shift : the weighted mean of y (0 without intercept)
    log_det_w : sum of the logs of the prior weights
    constants : per block, the constant value of its single Z column (a scaled random
        intercept), or None
    """

    x_shift: np.ndarray | None
    y_shift: float
    log_det_w: float
    constants: list[float | None]


class DaskLinearMixedModel(ModelStages):
    """A linear mixed model fitted from cross-products summed over the partitions of a Dask
    DataFrame. Build it with :func:`multilevel.distributed.lmer.dask_model` (what
    ``ml.lmer(formula, dask_frame)`` calls); ``.objective``, ``.optimize()`` and ``.fit()``
    behave as for an in-memory model. ``data`` is the Dask DataFrame and ``encoder`` the
    encoding shipped to the workers (for fitted values)."""

    encoder: Any
    facts: SummaryFacts

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # ModelStages.replace builds a new model this way when the formula, data, weights or
        # design change (profile(), step(), a bootstrap's new design): that needs the rows
        raise NotApplicableError(
            "this needs a model rebuilt from the rows (a changed formula, data, weights or "
            "design, as profile(), step() and bootstraps build), which a Dask fit keeps in "
            "the partitions; fit the new formula with ml.lmer(formula, dask_dataframe), or "
            "fit in memory. Settings alone (reml, optimizer, start) can be changed")

    @classmethod
    def from_sums(cls, design: RowlessDesign, A: CrossProducts, facts: SummaryFacts,
                  settings: tuple[bool, str, dict[str, Any], bool], start: Any, data: Any,
                  weights: str | None, offset: str | None, encoder: Any,
                  ) -> DaskLinearMixedModel:
        """The model from its rowless design and A (the one constructor)."""
        self = object.__new__(cls)
        self._set_settings(settings)
        self.design = design
        self.data = data
        self.encoder = encoder
        self.facts = facts
        self._weights_source = weights
        self._offset_source = offset
        self.predictor = Predictor(design)
        self.blocks = self.predictor.blocks
        self.layout = self.predictor.layout
        self.start = self._checked_start(start)
        self._sqrt_w = None
        p = len(design.fixed_names)
        self._x_shift_is_intercept = np.array([n == "(Intercept)" for n in design.fixed_names],
                                              dtype=bool).reshape(p)
        self._x_shift = facts.x_shift
        self._log_det_w = facts.log_det_w
        self.response = GaussianResponse(design.nobs, p, facts.log_det_w)
        self.A = A
        self._check_finite_cross_products()
        self._check_response_not_reproduced()
        # the rows stay on the workers: only A and the factor count on the client
        check_fit_memory(A, 0, p + 1 + sum(b.k for b in self.blocks),
                         [design.terms[b.terms[0]].factor.name for b in self.blocks])
        return self

    # -- what the in-memory model reads from the rows ------------------------------------------
    @property
    def n_fixed(self) -> int:
        """Number of fixed-effects coefficients (p)."""
        return len(self.design.fixed_names)

    def fixed_transform(self) -> tuple[np.ndarray, np.ndarray]:
        """``(T, c)`` with beta = T @ beta_centred + c (see :meth:`ModelStages.fixed_transform`),
        from the means found in the pass."""
        p = self.n_fixed
        T = np.eye(p)
        c = np.zeros(p)
        if self._x_shift is None:
            return T, c
        icol = int(np.flatnonzero(self._x_shift_is_intercept)[0])
        T[icol, :] -= self._x_shift
        T[icol, icol] = 1.0
        c[icol] = self.facts.y_shift
        return T, c

    def scale_diagnosis(self) -> str:
        """The tail of a NumericalError: the scales are not inspected row by row here."""
        return ("rescale the response and the predictors (e.g. to unit standard deviation, "
                "as new columns of the Dask DataFrame) and fit again")

    def _start(self) -> tuple[np.ndarray, dict[str, Any]]:
        """The in-memory model's start; its ANOVA estimates read off A instead of the rows."""
        applies = all(c is not None for c in self.facts.constants)
        if isinstance(self.start, np.ndarray) or self.start == "lme4" or not applies:
            return super()._start()
        ratios = anova_start_from_sums(self.A, [float(c) for c in self.facts.constants
                                                if c is not None])
        return self.start_from_ratios(ratios)

    def fit(self) -> DaskLinearMixedModelResult:
        """Optimize on the client and return the fit (the optimizer's messages as warnings)."""
        result = DaskLinearMixedModelResult.from_model(self, self.optimize())
        for msg in result.optsum.messages:
            category = SingularFitWarning if "singular" in msg else ConvergenceWarning
            warnings.warn(msg, category, stacklevel=3)
        assert isinstance(result, DaskLinearMixedModelResult)
        return result


def anova_start_from_sums(A: CrossProducts, constants: list[float]) -> np.ndarray | None:
    """:func:`multilevel.models.start.anova_start` computed from A: the OLS residuals' sums per
    level are linear in A's blocks (each block's single Z column is the constant c)."""
    p = A.p
    S = A.xy
    with np.errstate(all="ignore"):
        try:
            beta = np.linalg.lstsq(S[:p, :p], S[:p, p], rcond=None)[0]
        except np.linalg.LinAlgError:
            return None
        rss = float(S[p, p] - S[p, :p] @ beta)
        out = []
        for diag, xy_re, const in zip(A.diag, A.xy_re, constants, strict=True):
            n = diag[:, 0, 0] / const**2          # sum of the weights per level
            n_obs = float(n.sum())
            groups = len(n)
            rsum = (xy_re[:, p, 0] - xy_re[:, :p, 0] @ beta) / const
            mean = rsum / np.where(n > 0, n, 1.0)
            between = float(np.sum(n * mean**2))
            msb = between / max(groups - 1, 1)
            msw = (rss - between) / max(n_obs - groups, 1.0)
            n0 = (n_obs - float(np.sum(n**2)) / n_obs) / max(groups - 1, 1)
            ratio = max((msb - msw) / (n0 * msw), 0.0) if msw > 0 and n0 > 0 else 1.0
            if not math.isfinite(ratio):
                return None
            out.append(max(math.sqrt(ratio) / abs(const), MIN_START))
    theta = np.array(out)
    return theta if np.all(np.isfinite(theta)) else None


# denominator-df methods that need the model matrices row by row
ROW_DDF = ("kenward-roger", "between-within")


def _refuse_row_ddf(ddf: Any) -> None:
    if isinstance(ddf, str) and ddf.lower().replace("_", "-") in ROW_DDF:
        raise NotApplicableError(
            f"ddf={ddf!r} needs the model matrices X and Z row by row, which stay in the "
            "partitions of a Dask fit; use ddf='satterthwaite' (computed from the "
            "cross-products, as in memory) or 'residual'")


@public_methods
@dataclass(frozen=True)
class DaskLinearMixedModelResult(LinearMixedModelResult):
    """The fit of a :class:`DaskLinearMixedModel`: a
    :class:`~multilevel.results.lmm_result.LinearMixedModelResult` whose rows stay on the
    cluster. Everything read from A (fixef, vcov, coef_table, varcorr, ranef, ranef_condvar,
    loglik, AIC, profile, anova against another Dask fit of the same data) is as in memory.
    Fitted values and residuals are one more pass over the partitions: ``fitted_lazy()`` and
    ``residuals_lazy()`` give Dask Series (nothing is collected), ``fitted()`` and
    ``residuals()`` collect one number per row on the client. ``simulate`` and ``predict()``
    without ``newdata`` need the rows on the client and raise NotApplicableError."""

    def _effects_and_beta(self) -> tuple[np.ndarray, list[np.ndarray]]:
        return self.beta, self._block_effects()

    def save(self, path: Any) -> Any:
        """Not available: a saved fit stores the model's data, and these rows stay on the
        cluster."""
        raise NotApplicableError(
            "a fit of Dask data cannot be saved: a saved fit stores the data it was fitted to, "
            "and these rows stay on the cluster. Keep the formula and the data's path (the fit "
            "is the same when repeated), or fit the computed data in memory to save it")

    def fitted_lazy(self) -> Any:
        """Fitted values X beta + Z b (+ offset) of the rows used, as a Dask Series (one
        partition per partition of the data; rows dropped for missing values left out)."""
        from multilevel.distributed.lmer import fitted_series

        return fitted_series(self, kind="fitted", scaled=False)

    def residuals_lazy(self, kind: str = "response", scaled: bool = False) -> Any:
        """Residuals (``"response"`` or ``"pearson"``, optionally divided by sigma) as a Dask
        Series, computed on the workers."""
        from multilevel.distributed.lmer import fitted_series

        return fitted_series(self, kind=kind, scaled=scaled)

    def fitted(self) -> np.ndarray:
        """Fitted values of the rows used, computed on the workers and collected (one float
        per row reaches the client; use :meth:`fitted_lazy` to keep them distributed)."""
        return np.asarray(self.fitted_lazy().compute(), dtype=float)

    def residuals(self, kind: str = "response", scaled: bool = False) -> np.ndarray:
        """Residuals of the rows used, computed on the workers and collected (see
        :meth:`residuals_lazy`)."""
        return np.asarray(self.residuals_lazy(kind, scaled).compute(), dtype=float)

    def coef_table(self, ddf: str | None = "satterthwaite", level: float = 0.95,
                   ) -> pd.DataFrame:
        """As the in-memory fit's; the denominator-df methods that read the rows
        (``"kenward-roger"``, ``"between-within"``) raise NotApplicableError."""
        _refuse_row_ddf(ddf)
        return super().coef_table(ddf, level)

    def contrast(self, L: Any, ddf: str | None = "satterthwaite") -> pd.Series:
        """As the in-memory fit's (see :meth:`coef_table` for the df methods available)."""
        _refuse_row_ddf(ddf)
        return super().contrast(L, ddf)

    def model_matrix(self, newdata: Any = None) -> pd.DataFrame:
        """The fixed-effects model matrix of ``newdata`` (an in-memory frame) with the fit's
        encoding; the fit's own rows stay in the partitions."""
        from multilevel.results.prediction import fixed_matrix

        design = self.model.design
        if newdata is None:
            raise NotApplicableError(
                "model_matrix() of the fit's own rows would bring them to the client; pass "
                "newdata")
        return fixed_matrix(design.fixed_spec, design.formula.fixed, self.fixed_names, None,
                            newdata)

    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Not available: simulation returns one value per row on the client."""
        raise NotApplicableError(
            "simulate() returns the simulated responses of every row on the client, which the "
            "Dask path avoids; refit in memory (ml.lmer(formula, ddf.compute())) to simulate")

    def predict(self, newdata: Any = None, re_form: str | None = None,
                allow_new_levels: bool = False, offset: Any = None) -> np.ndarray:
        """Predictions for ``newdata`` (an in-memory frame), as the in-memory fit's; without
        ``newdata``, use :meth:`fitted_lazy`."""
        if newdata is None:
            raise NotApplicableError(
                "predict() without newdata would return one value per row of the Dask data on "
                "the client; use fit.fitted_lazy() (a Dask Series) or pass newdata")
        return super().predict(newdata, re_form, allow_new_levels, offset)

    def model_frame(self) -> pd.DataFrame:
        """Not available: the rows used stay in the partitions."""
        raise NotApplicableError(
            "model_frame() needs the rows on the client; the Dask fit keeps them in the "
            "partitions (use the Dask DataFrame itself)")
