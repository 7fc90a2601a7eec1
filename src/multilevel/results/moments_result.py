"""The result of the O(N) moments fit (``ml.lmer_moments``) in the common vocabulary.

Fixed effects are GLS estimates at moment estimates of the variance components; their tests
are z tests (Wald, normal reference: with millions of rows and thousands of levels a t
reference adds nothing, and the method gives no denominator degrees of freedom). There is no
likelihood: ``loglik``, ``aic``, ``bic``, ``deviance``, ``anova`` and ``profile`` raise
:class:`~multilevel.errors.NotApplicableError` saying so.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.errors import ArgumentError, NotApplicableError, public_methods
from multilevel.results.summary import coefmat_lines
from multilevel.results.surface import ResultSurface

METHOD = "method of moments (Gao & Owen) with GLS by backfitting (Ghosh, Hastie & Owen)"


def _no_likelihood(what: str) -> NotApplicableError:
    return NotApplicableError(
        f"{what} needs a likelihood, and the moments fit has none (its variance components are "
        "method-of-moments estimates); fit the exact model with ml.lmer(formula, data) "
        "(REML or ML) where it is affordable")


@dataclass(frozen=True)
class MomentsSummary:
    """The printed summary of a moments fit (``str(summary)``)."""

    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


@public_methods
@dataclass(frozen=True, eq=False, repr=False)
class MomentsResult(ResultSurface):
    """Crossed random-intercept model fitted in O(N): moment variance components, GLS fixed
    effects by backfitting (see :func:`multilevel.lmer_moments`).

    Attributes
    ----------
    formula : str
    fixed_names : tuple of str
    beta : numpy.ndarray
    vcov_array : numpy.ndarray
        ``(X' V^-1 X)^-1`` at the estimated variance components.
    group_names : tuple of str
    levels : tuple of tuple of str
        Level labels of each grouping factor.
    sigma2_groups : numpy.ndarray
        Variance component of each factor's intercept.
    sigma2_resid : float
    effects : tuple of numpy.ndarray
        Conditional modes of the intercepts, per factor.
    ols_beta, ols_vcov : numpy.ndarray
        Ordinary least squares and its naive covariance, for comparison.
    rounds, sweeps : int
    converged : bool
    at_boundary : tuple of str
        Factors whose moment estimate was negative and was set to zero.
    n_dropped : int
    """

    formula: str
    fixed_names: tuple[str, ...]
    beta: np.ndarray
    vcov_array: np.ndarray
    group_names: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    sigma2_groups: np.ndarray
    sigma2_resid: float
    effects: tuple[np.ndarray, ...]
    ols_beta: np.ndarray
    ols_vcov: np.ndarray
    rounds: int
    sweeps: int
    converged: bool
    at_boundary: tuple[str, ...]
    n_obs: int
    n_dropped: int = 0
    data: Any = field(default=None, repr=False)
    row_index: Any = field(default=None, repr=False)

    method: ClassVar[str] = METHOD
    kind: ClassVar[str] = "moments"  # the fitting function, for dispatch (tidy)

    # -- the common vocabulary -----------------------------------------------------------------
    @property
    def fixef(self) -> pd.Series:
        """GLS fixed effects."""
        return pd.Series(self.beta, index=list(self.fixed_names), name="estimate")

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects, ``(X' V^-1 X)^-1`` at the moment estimates."""
        names = list(self.fixed_names)
        return pd.DataFrame(self.vcov_array, index=names, columns=names)

    def coef_table(self, level: float = 0.95) -> pd.DataFrame:
        """estimate, std_error, statistic (z), df (inf: a z test), p_value (two-sided, normal),
        ci_lower, ci_upper."""
        if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
            raise ArgumentError(f"level must be a number strictly between 0 and 1, got "
                                f"{level!r:.60}")
        se = np.sqrt(np.diag(self.vcov_array))
        z = self.beta / se
        q = stats.norm.ppf(0.5 + level / 2)
        return pd.DataFrame({"estimate": self.beta, "std_error": se, "statistic": z,
                             "df": np.inf, "p_value": 2 * stats.norm.sf(np.abs(z)),
                             "ci_lower": self.beta - q * se, "ci_upper": self.beta + q * se},
                            index=list(self.fixed_names))

    def confint(self, method: str = "wald", level: float = 0.95, **options: Any
                ) -> pd.DataFrame:
        """Wald (normal) intervals of the fixed effects; the variance components have none
        (profile and bootstrap intervals need a likelihood or refits)."""
        if method != "wald" or options:
            raise _no_likelihood(f"confint(method={method!r})")
        table = self.coef_table(level)
        return pd.DataFrame({"lower": table["ci_lower"], "upper": table["ci_upper"]})

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return float(np.sqrt(self.sigma2_resid))

    @property
    def varcorr(self) -> pd.DataFrame:
        """group, term1, term2, variance, sd, corr (as ``lmer``'s)."""
        rows = [{"group": g, "term1": "(Intercept)", "term2": None, "variance": float(v),
                 "sd": float(np.sqrt(v)), "corr": np.nan}
                for g, v in zip(self.group_names, self.sigma2_groups, strict=True)]
        rows.append({"group": "Residual", "term1": np.nan, "term2": None,
                     "variance": self.sigma2_resid, "sd": self.sigma, "corr": np.nan})
        return pd.DataFrame(rows, columns=["group", "term1", "term2", "variance", "sd", "corr"])

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of each factor's intercepts given the fixed effects and the
        variance components (one column, ``(Intercept)``, indexed by level)."""
        return {g: pd.DataFrame({"(Intercept)": u}, index=pd.Index(list(lv), name=g))
                for g, lv, u in zip(self.group_names, self.levels, self.effects, strict=True)}

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return self.n_obs

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels of each grouping factor."""
        return {g: len(lv) for g, lv in zip(self.group_names, self.levels, strict=True)}

    def _kept_data(self) -> tuple[Any, Any]:
        return self.data, self.row_index

    # -- what needs a likelihood ---------------------------------------------------------------
    @property
    def loglik(self) -> float:
        """Not available: raises NotApplicableError (no likelihood)."""
        raise _no_likelihood("loglik")

    @property
    def aic(self) -> float:
        """Not available: raises NotApplicableError (no likelihood)."""
        raise _no_likelihood("aic")

    @property
    def bic(self) -> float:
        """Not available: raises NotApplicableError (no likelihood)."""
        raise _no_likelihood("bic")

    @property
    def deviance(self) -> float:
        """Not available: raises NotApplicableError (no likelihood)."""
        raise _no_likelihood("deviance")

    def anova(self, *others: Any, **options: Any) -> pd.DataFrame:
        """Not available: raises NotApplicableError (likelihood-ratio tests need one)."""
        raise _no_likelihood("anova")

    def profile(self, *args: Any, **options: Any) -> pd.DataFrame:
        """Not available: raises NotApplicableError (profiles are of a likelihood)."""
        raise _no_likelihood("profile")

    # -- reports -------------------------------------------------------------------------------
    def summary(self) -> MomentsSummary:
        """A report naming the method, the variance components and the z-test table."""
        lines = [f"Linear mixed model fit by the {METHOD}",
                 f"Formula: {self.formula}", ""]
        lines.append("Random effects (moment estimates):")
        vc = self.varcorr
        shown = pd.DataFrame({"Groups": vc["group"],
                              "Name": vc["term1"].fillna(""),
                              "Variance": vc["variance"].map(lambda v: f"{v:.4g}"),
                              "Std.Dev.": vc["sd"].map(lambda v: f"{v:.4g}")})
        lines.append(shown.to_string(index=False))
        groups = ", ".join(f"{g}, {n}" for g, n in self.ngroups.items())
        lines.append(f"Number of obs: {self.nobs}, groups:  {groups}")
        if self.at_boundary:
            lines.append("Variance set to zero (negative moment estimate): "
                         + ", ".join(self.at_boundary))
        lines += ["", "Fixed effects (GLS; z tests, normal reference):"]
        table = self.coef_table()[["estimate", "std_error", "statistic", "p_value"]]
        table.columns = ["Estimate", "Std. Error", "z value", "Pr(>|z|)"]
        lines += coefmat_lines(table, [0, 1], 2, has_p=True)  # R's printCoefmat
        lines += ["", f"{self.rounds} moment/GLS rounds; backfitting: at most {self.sweeps} "
                  f"sweeps per solve, {'converged' if self.converged else 'NOT converged'}.",
                  "No likelihood: loglik, AIC, BIC, anova and profiles do not apply."]
        return MomentsSummary("\n".join(lines))

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        return (f"MomentsResult({self.formula!r}, nobs={self.nobs}, "
                f"ngroups={self.ngroups})")

    def _repr_html_(self) -> str:
        # the notebook view: the printed summary (the shared view reads a likelihood)
        return f"<pre>{html.escape(str(self.summary()))}</pre>"

    def to_dict(self) -> dict[str, Any]:
        """The estimates as plain Python values (JSON-ready)."""
        se = np.sqrt(np.diag(self.vcov_array))
        return {"method": "moments", "description": METHOD, "formula": self.formula,
                "nobs": self.nobs, "ngroups": self.ngroups,
                "fixef": {n: float(b) for n, b in zip(self.fixed_names, self.beta, strict=True)},
                "std_error": {n: float(s) for n, s in zip(self.fixed_names, se, strict=True)},
                "variance": {**{g: float(v) for g, v in
                                zip(self.group_names, self.sigma2_groups, strict=True)},
                             "Residual": self.sigma2_resid},
                "rounds": self.rounds, "sweeps": self.sweeps, "converged": self.converged,
                "at_boundary": list(self.at_boundary)}
