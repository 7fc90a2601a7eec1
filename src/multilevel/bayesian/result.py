"""The result of a Bayesian fit: the posterior as ArviZ ``InferenceData`` and the package's
common vocabulary read off it.

``fixef`` are posterior means; ``coef_table()`` gives posterior mean, SD, the 2.5 % / 97.5 %
quantiles, R-hat and bulk / tail ESS (rank-normalised split R-hat and ESS of Vehtari et al.
2021, as brms and the ``posterior`` package report them); ``varcorr`` posterior means of SDs,
variances and correlations; ``ranef`` posterior means of the group effects; ``predict``
averages the response-scale mean over the draws, drawing the effects of new groups from the
population model when asked. ``summary()`` prints brms's layout.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from multilevel.bayesian.density import Density
from multilevel.bayesian.model_spec import BayesModel
from multilevel.bayesian.posterior import map_draws
from multilevel.bayesian.priors import ResolvedPrior, prior_summary_table
from multilevel.bayesian.sampler import Draws, NutsSettings
from multilevel.errors import ArgumentError, DataError, MultilevelWarning, NotApplicableError
from multilevel.results.surface import ResultSurface

RHAT_LIMIT = 1.01


class SamplingWarning(MultilevelWarning):
    """The sampler's diagnostics say the posterior may not be trustworthy: R-hat > 1.01,
    divergent transitions, low effective sample size, or the tree-depth limit reached."""


@dataclass(frozen=True)
class Diagnostics:
    """Convergence diagnostics of a run, with brms's advice when something is wrong."""

    divergences: int
    max_treedepth_hits: int
    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    messages: tuple[str, ...] = field(default=())


class BayesResult(ResultSurface):
    """A fitted Bayesian multilevel model (``ml.bayes`` / ``ml.bayes_nlme``).

    Attributes
    ----------
    posterior : arviz.InferenceData
        Groups posterior (brms's variable names), sample_stats, log_likelihood,
        observed_data.
    model : BayesModel
    priors : list of ResolvedPrior
    settings : NutsSettings
    compile_s, sampling_s : float
        Seconds spent compiling the sampler and sampling.
    """

    kind = "bayes"

    def __init__(self, density: Density, draws: Draws, posterior: Any,
                 settings: NutsSettings, data_name: str | None = None) -> None:
        self.density = density
        self.model: BayesModel = density.model
        self.priors: list[ResolvedPrior] = density.priors
        self.posterior = posterior
        self.settings = settings
        self.compile_s = draws.compile_s
        self.sampling_s = draws.sampling_s
        self.interrupted = draws.interrupted
        self._z = draws.z
        self.data_name = data_name

    @property
    def unconstrained_draws(self) -> dict[str, np.ndarray]:
        """The sampler's draws on its unconstrained scale, by parameter block, each of shape
        (chains, draws, ...): what the posterior variables are computed from (a saved fit
        stores these)."""
        return self._z

    # -- draws -----------------------------------------------------------------------------
    def draws(self, name: str) -> np.ndarray:
        """The draws of one posterior variable, shape (chains, draws, ...)."""
        post = self.posterior.posterior
        if name not in post:
            raise ArgumentError(f"{name!r} is not a posterior variable; the model's are: "
                                f"{', '.join(v for v in post.data_vars)}")
        return np.asarray(post[name].values)

    @cached_property
    def _scalar_summary(self) -> pd.DataFrame:
        import arviz as az
        post = self.posterior.posterior
        names = [v for v in post.data_vars if post[v].ndim == 2]
        rows = {}
        for v in names:
            x = np.asarray(post[v].values, dtype=float)
            rows[v] = _summarise(az, x)
        return pd.DataFrame.from_dict(rows, orient="index")

    def posterior_summary(self) -> pd.DataFrame:
        """Every scalar posterior variable: estimate (mean), std_error (SD), ci_lower,
        ci_upper (2.5 % / 97.5 %), rhat, ess_bulk, ess_tail — brms's ``summarise_draws``."""
        return self._scalar_summary.copy()

    # -- fixed effects -----------------------------------------------------------------------
    @property
    def fixed_names(self) -> list[str]:
        """Names of the fixed effects, as ``fixef`` indexes them."""
        return [a for a, _ in self.model.fixed_variables()]

    @property
    def fixef(self) -> pd.Series:
        """Posterior means of the fixed effects."""
        s = self._scalar_summary
        return pd.Series([s.loc[v, "estimate"] for _, v in self.model.fixed_variables()],
                         index=self.fixed_names, name="estimate")

    def coef_table(self) -> pd.DataFrame:
        """Fixed effects: estimate (posterior mean), std_error (posterior SD), ci_lower /
        ci_upper (2.5 % / 97.5 % quantiles), rhat, ess_bulk, ess_tail."""
        s = self._scalar_summary
        rows = [s.loc[v] for _, v in self.model.fixed_variables()]
        return pd.DataFrame(rows, index=self.fixed_names)

    def _kept_data(self) -> tuple[Any, Any]:
        return self.model.rows, None

    def model_matrix(self, newdata: Any = None) -> pd.DataFrame:
        """The population-level model matrix (columns ``fixed_names``) of the rows used, or
        of ``newdata`` with the fit's encoding replayed; a nonlinear model has none."""
        from multilevel.results.prediction import fixed_matrix

        part = self.model.parts[0]
        if self.model.nonlinear is not None or part.design is None:
            raise NotApplicableError("a nonlinear model has no population-level model "
                                     "matrix; use predict(newdata, re_form='NA')")
        M = fixed_matrix(part.fixed_spec, part.design.formula.fixed, list(part.r_names),
                         part.X, newdata)
        M.columns = pd.Index(self.fixed_names)
        return M

    @property
    def vcov(self) -> pd.DataFrame:
        """Posterior covariance of the fixed effects."""
        x = np.stack([self.draws(v).ravel() for _, v in self.model.fixed_variables()])
        return pd.DataFrame(np.atleast_2d(np.cov(x)), index=self.fixed_names,
                            columns=self.fixed_names)

    # -- variance components -----------------------------------------------------------------
    @property
    def sigma(self) -> float:
        """Posterior mean of the residual SD (Gaussian); NaN for other families."""
        if self.model.family.extra != "sigma":
            return float("nan")
        return float(self.draws("sigma").mean())

    @property
    def varcorr(self) -> pd.DataFrame:
        """Posterior means: one row per SD (with the mean of the variance), one per
        correlation, the residual last (Gaussian): columns group, term1, term2, variance,
        sd, corr."""
        rows = []
        for block in self.model.blocks:
            for t in range(block.k):
                sd = self.draws(block.sd_variable(block.terms[t]))
                rows.append({"group": block.group, "term1": block.term_label(t), "term2": "",
                             "variance": float((sd ** 2).mean()), "sd": float(sd.mean()),
                             "corr": np.nan})
            for a in range(block.k):
                for b in range(a + 1, block.k):
                    cor = self.draws(block.cor_variable(block.terms[a], block.terms[b]))
                    rows.append({"group": block.group, "term1": block.term_label(a),
                                 "term2": block.term_label(b), "variance": np.nan,
                                 "sd": np.nan, "corr": float(cor.mean())})
        if self.model.family.extra == "sigma":
            s = self.draws("sigma")
            rows.append({"group": "Residual", "term1": "", "term2": "",
                         "variance": float((s ** 2).mean()), "sd": float(s.mean()),
                         "corr": np.nan})
        return pd.DataFrame(rows, columns=["group", "term1", "term2", "variance", "sd", "corr"])

    def _per_group(self, statistic: Any) -> dict[str, pd.DataFrame]:
        """``statistic`` of each group effect over the draws: group -> (levels x terms)."""
        out: dict[str, pd.DataFrame] = {}
        for block in self.model.blocks:
            r = self.draws(block.r_variable)[..., block.columns]
            frame = pd.DataFrame(statistic(r.reshape(-1, *r.shape[2:])),
                                 index=pd.Index(block.levels, name=block.group),
                                 columns=[block.term_label(t) for t in range(block.k)])
            out[block.group] = frame if block.group not in out else \
                out[block.group].join(frame)
        return out

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Posterior means of the group effects: group -> DataFrame (levels x terms)."""
        return self._per_group(lambda r: r.mean(axis=0))

    @property
    def ranef_condvar(self) -> dict[str, pd.DataFrame]:
        """Posterior variances of the group effects (the Bayesian counterpart of lme4's
        conditional variances), laid out as :attr:`ranef`."""
        return self._per_group(lambda r: r.var(axis=0, ddof=1))

    # -- sizes -------------------------------------------------------------------------------
    @property
    def nobs(self) -> int:
        """Number of observations."""
        return self.model.nobs

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels per grouping factor."""
        return {b.group: len(b.levels) for b in self.model.blocks}

    @property
    def n_dropped(self) -> int:
        """Rows dropped for missing values."""
        return self.model.n_dropped

    @property
    def ndraws(self) -> int:
        """Post-warmup draws over all chains."""
        return int(np.prod(np.shape(next(iter(self._z.values())))[:2]))

    # -- diagnostics -------------------------------------------------------------------------
    @cached_property
    def diagnostics(self) -> Diagnostics:
        """Divergences, tree-depth hits, worst R-hat and ESS, and what to do about them."""
        stats = self.posterior.sample_stats
        div = int(np.asarray(stats["diverging"].values).sum())
        depth = int((np.asarray(stats["tree_depth"].values)
                     >= self.settings.max_tree_depth).sum())
        s = self._scalar_summary
        # R-hat needs two chains: a one-chain fit has none (NaN), and says nothing about it
        max_rhat = float(s["rhat"].max()) if len(s) and s["rhat"].notna().any() else float("nan")
        min_bulk = float(s["ess_bulk"].min()) if len(s) else float("nan")
        min_tail = float(s["ess_tail"].min()) if len(s) else float("nan")
        msgs = []
        if div:
            msgs.append(f"There were {div} divergent transitions after warmup. Raise "
                        f"target_accept above {self.settings.target_accept:g} (brms's "
                        "adapt_delta), e.g. target_accept=0.95, or reparameterise the model; "
                        "a posterior with divergences may be biased.")
        if max_rhat > RHAT_LIMIT:
            worst = s["rhat"].idxmax()
            msgs.append(f"Parts of the model have not converged (R-hat {max_rhat:.3f} > "
                        f"{RHAT_LIMIT} for {worst}): run longer chains (more draws and "
                        "warmup) or use more informative priors.")
        low = 100 * self.settings.chains
        if min_bulk < low:
            msgs.append(f"Bulk effective sample size is low ({min_bulk:.0f} < {low}): "
                        "posterior means and medians may be unreliable; run more draws.")
        if min_tail < low:
            msgs.append(f"Tail effective sample size is low ({min_tail:.0f} < {low}): "
                        "posterior variances and tail quantiles may be unreliable; run more "
                        "draws.")
        if depth:
            msgs.append(f"{depth} transitions hit the maximum tree depth "
                        f"({self.settings.max_tree_depth}): raise max_tree_depth.")
        if self.interrupted:
            msgs.append("Sampling was interrupted: fewer draws than asked for were kept.")
        return Diagnostics(div, depth, max_rhat, min_bulk, min_tail, tuple(msgs))

    @property
    def converged(self) -> bool:
        """R-hat <= 1.01 everywhere and no divergent transitions (False for one chain, whose
        convergence R-hat cannot judge)."""
        d = self.diagnostics
        return d.max_rhat <= RHAT_LIMIT and d.divergences == 0

    def warn(self) -> None:
        """Emit the diagnostics' messages as :class:`SamplingWarning`."""
        for m in self.diagnostics.messages:
            warnings.warn(m, SamplingWarning, stacklevel=5)  # the user's call of ml.bayes

    # -- priors ------------------------------------------------------------------------------
    def prior_summary(self) -> pd.DataFrame:
        """Every prior in use, as brms's ``prior_summary(fit, all = TRUE)``."""
        return prior_summary_table(self.priors)

    # -- predictions -------------------------------------------------------------------------
    def _eta_draws(self, density: Density, z: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(map_draws(lambda u: density.eta(density.constrain(u)), z))

    def fitted(self, scale: str = "response") -> np.ndarray:
        """Posterior mean of each observation's mean (``scale="link"``: linear predictor)."""
        return self.predict(scale=scale)

    def residuals(self) -> np.ndarray:
        """Observed response minus the posterior mean of its mean."""
        return self.model.y - self.fitted()

    def predict(self, newdata: Any = None, re_form: str | None = None,
                allow_new_levels: bool = False, scale: str = "response",
                summary: bool = True, seed: int | None = 1) -> Any:
        """Posterior predictions of the mean.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict (default: the fitted rows).
        re_form : None or "NA" / "~0"
            None: with the group effects; "NA" or "~0": the population level.
        allow_new_levels : bool
            Levels not in the fit get effects drawn from the population model, one per draw
            (brms's ``sample_new_levels = "gaussian"``); otherwise they are an error.
        scale : {"response", "link"}
        summary : bool
            True: the posterior mean per row; False: every draw, shape (draws, rows).
        seed : int, optional
            For the new levels' effects.
        """
        from multilevel.bayesian.prediction import predict_draws
        if scale not in ("response", "link"):
            raise ArgumentError(f"scale must be 'response' or 'link', got {scale!r}")
        eta = predict_draws(self, newdata, re_form, allow_new_levels, seed)
        out = eta if scale == "link" else np.asarray(
            self.model.family.inverse_link(eta))
        flat = out.reshape(-1, out.shape[-1])
        return flat.mean(axis=0) if summary else flat

    def posterior_predictive(self, ndraws: int | None = None, seed: int | None = 1,
                             ) -> np.ndarray:
        """Replicated responses y_rep drawn from the posterior predictive distribution, shape
        (draws, n) — brms's ``posterior_predict``; for a binomial model the proportions."""
        rng = np.random.default_rng(seed)
        eta = self.predict(summary=False, scale="link")
        mu = np.asarray(self.model.family.inverse_link(eta))
        if ndraws is not None:
            if not isinstance(ndraws, int) or ndraws < 1:
                raise ArgumentError(f"ndraws must be a whole number >= 1, got {ndraws!r}")
            take = rng.choice(mu.shape[0], size=min(ndraws, mu.shape[0]), replace=False)
            mu, eta = mu[take], eta[take]
        extra = None
        if self.model.family.extra is not None:
            extra = self.draws(self.model.family.extra).ravel()
            if ndraws is not None:
                extra = extra[take]
        return _draw_responses(self.model, mu, extra, rng)

    # -- information criteria ----------------------------------------------------------------
    def loo(self) -> Any:
        """PSIS-LOO (see :func:`multilevel.bayesian.loo.loo`)."""
        from multilevel.bayesian.loo import loo
        return loo(self)

    def waic(self) -> Any:
        """WAIC (see :func:`multilevel.bayesian.loo.waic`)."""
        from multilevel.bayesian.loo import waic
        return waic(self)

    # -- reports -----------------------------------------------------------------------------
    def summary(self) -> str:
        """The fit in brms's ``summary()`` layout, with the sampler's warnings."""
        from multilevel.bayesian.report import summary_text
        return summary_text(self)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"<BayesResult {self.model.formula!r}: {self.settings.chains} chains x "
                f"{self.ndraws // max(self.settings.chains, 1)} draws>")

    def _repr_html_(self) -> str:
        from multilevel.bayesian.report import summary_html
        return summary_html(self)

    def to_dict(self) -> dict[str, Any]:
        """The fit as plain JSON-ready data: call, settings, posterior summary, priors,
        diagnostics, timings."""
        d = self.diagnostics
        s = self._scalar_summary
        return {
            "kind": self.kind,
            "formula": self.model.formula,
            "family": self.model.family.name,
            "link": self.model.family.link,
            "nobs": self.nobs,
            "ngroups": self.ngroups,
            "settings": {"chains": self.settings.chains, "draws": self.settings.draws,
                         "warmup": self.settings.warmup, "seed": self.settings.seed,
                         "target_accept": self.settings.target_accept,
                         "max_tree_depth": self.settings.max_tree_depth},
            "summary": {k: {c: float(v) for c, v in row.items()}
                        for k, row in s.iterrows()},
            "priors": self.prior_summary().to_dict(orient="records"),
            "diagnostics": {"divergences": d.divergences,
                            "max_treedepth_hits": d.max_treedepth_hits,
                            "max_rhat": d.max_rhat, "min_ess_bulk": d.min_ess_bulk,
                            "min_ess_tail": d.min_ess_tail, "messages": list(d.messages)},
            "timing": {"compile_s": self.compile_s, "sampling_s": self.sampling_s},
        }


def _summarise(az: Any, x: np.ndarray) -> dict[str, float]:
    """Mean, SD, 2.5 % / 97.5 % quantiles, rank-normalised R-hat, bulk and tail ESS."""
    flat = x.ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = float(az.rhat(x, method="rank")) if x.shape[0] > 1 else float("nan")
        bulk = float(az.ess(x, method="bulk"))
        tail = float(az.ess(x, method="tail"))
    return {"estimate": float(flat.mean()), "std_error": float(flat.std(ddof=1)),
            "ci_lower": float(np.quantile(flat, 0.025)),
            "ci_upper": float(np.quantile(flat, 0.975)),
            "rhat": rhat, "ess_bulk": bulk, "ess_tail": tail}


def _draw_responses(model: BayesModel, mu: np.ndarray, extra: np.ndarray | None,
                    rng: np.random.Generator) -> np.ndarray:
    """One response per draw and row from the family (``mu``: (draws, n))."""
    name = model.family.name
    wt = model.wt if mu.shape[-1] == model.nobs else np.ones(mu.shape[-1])
    if name == "gaussian":
        assert extra is not None
        return rng.normal(mu, extra[:, None] / np.sqrt(wt))
    if name == "binomial":
        n = np.rint(wt).astype(np.int64)
        return rng.binomial(n, np.clip(mu, 0.0, 1.0)) / np.maximum(n, 1)
    if name == "poisson":
        return rng.poisson(mu).astype(float)
    if name == "Gamma":
        assert extra is not None
        shape = extra[:, None] * wt
        return rng.gamma(shape, mu / shape)
    if name == "inverse.gaussian":
        assert extra is not None
        return rng.wald(mu, extra[:, None] * wt)
    if name == "negative.binomial":
        size = extra[:, None] if extra is not None else np.asarray(model.family.fixed_shape)
        return rng.negative_binomial(size, size / (size + mu)).astype(float)
    raise DataError(f"no posterior predictive draws for the {name} family")
