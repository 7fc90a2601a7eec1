"""The posterior mode of the hyperparameters, group effects integrated out (blme's estimate).

The marginal posterior of the population parameters h = (fixed effects, SDs, correlations,
sigma / shape) is p(h | y) ∝ p(h) ∫ p(y | h, z) N(z; 0, I) dz. The integral over the
standardised group effects z is taken by the Laplace approximation — exact for the Gaussian
family, lme4's ``nAGQ = 1`` for the others — with the inner mode found by Newton's method on
the dense Hessian in z (so this is for models with up to a few thousand group effects). The
outer maximisation is BFGS on the unconstrained scale *without* the Jacobian, so that the mode
is that of the density of the natural parameters (SDs, correlations, sigma): with flat priors
everywhere it is the maximum-likelihood fit (``lmer(REML = FALSE)`` / ``glmer``), which is how
it is tested; with proper priors it is the penalised estimate of blme.

An LKJ(eta) prior is used as the density of the correlation matrix R, det(R)^(eta - 1) (flat
for eta = 1), not of its Cholesky factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from multilevel.bayesian.density import Density
from multilevel.bayesian.posterior import population_parameters
from multilevel.errors import NumericalError

# Newton steps for the group effects' conditional mode (quadratic problems need one; GLMMs
# converge in a handful from the previous outer step's mode)
_NEWTON = 25


@dataclass(frozen=True)
class PosteriorMode:
    """The marginal posterior mode (see the module docstring).

    Attributes
    ----------
    fixef : pandas.Series
        Fixed effects (R's names, as ``lmer``'s ``fixef``).
    parameters : pandas.Series
        Every population parameter under brms's names (``b_Days``, ``sd_Subject__Days``,
        ``cor_Subject__Intercept__Days``, ``sigma``).
    log_posterior : float
        The log marginal posterior density at the mode (up to the evidence); with flat priors
        the log-likelihood.
    converged : bool
    iterations : int
    """

    fixef: pd.Series
    parameters: pd.Series
    log_posterior: float
    converged: bool
    iterations: int


def _split(density: Density) -> tuple[list[str], list[str]]:
    keys = list(density.shapes)
    return [k for k in keys if not k.startswith("z")], [k for k in keys if k.startswith("z")]


def _start(density: Density, hyper: list[str]) -> dict[str, np.ndarray]:
    model = density.model
    y = model.y
    gaussian = model.family.name == "gaussian"
    out: dict[str, np.ndarray] = {}
    for k in hyper:
        shape = density.shapes[k]
        value = np.zeros(shape)
        if k.startswith("Intercept") and gaussian:
            value = np.asarray(float(np.mean(y)))
        elif k.startswith("sd") or k == "extra":
            value = np.full(shape, np.log(np.std(y)) if gaussian else 0.0)
        out[k] = value
    return out


def posterior_mode(density: Density, maxiter: int = 500) -> PosteriorMode:
    """The marginal posterior mode of ``density``'s model (see the module docstring)."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from scipy.optimize import minimize

    hyper, zkeys = _split(density)
    zshapes = {k: density.shapes[k] for k in zkeys}
    z0 = {k: jnp.zeros(s) for k, s in zshapes.items()}
    z_flat0, unravel_z = ravel_pytree(z0)

    def hyper_prior(c: dict[str, Any]) -> Any:
        total = jnp.asarray(0.0)
        for t in density.terms:
            dist = t.distribution(density.data)
            if dist is None:
                continue
            if t.key.startswith("L"):
                L = c[t.key]
                eta = dist.concentration
                total = total + (eta - 1.0) * 2.0 * jnp.sum(jnp.log(jnp.diagonal(L)))
                continue
            value = c[t.key] if t.index is None else c[t.key][t.index]
            total = total + jnp.sum(dist.log_prob(value))
        return total

    def joint(h: dict[str, Any], zf: Any) -> Any:
        u = dict(h)
        u.update(unravel_z(zf))
        c = density.constrain(u)
        return jnp.sum(density.pointwise_loglik(c)) - 0.5 * jnp.sum(zf * zf)

    def laplace(h: dict[str, Any]) -> Any:
        grad = jax.grad(joint, argnums=1)
        hess = jax.hessian(joint, argnums=1)

        def newton(_: int, zf: Any) -> Any:
            return zf - jnp.linalg.solve(hess(h, zf), grad(h, zf))

        zf = jax.lax.fori_loop(0, _NEWTON, newton, jax.lax.stop_gradient(z_flat0))
        zf = jax.lax.stop_gradient(zf)
        # one more step outside stop_gradient: its derivative in h is the implicit one
        zf = zf - jnp.linalg.solve(hess(h, zf), grad(h, zf))
        sign, logdet = jnp.linalg.slogdet(-hess(h, zf))
        value = joint(h, zf) - 0.5 * logdet
        return jnp.where(sign > 0, value, -jnp.inf)

    def objective(h: dict[str, Any]) -> Any:
        return -(laplace(h) + hyper_prior(density.constrain(h)))

    h0 = _start(density, hyper)
    flat0, unravel_h = ravel_pytree({k: jnp.asarray(v) for k, v in h0.items()})
    f = jax.jit(jax.value_and_grad(lambda x: objective(unravel_h(x))))

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = f(jnp.asarray(x))
        v = float(value)
        return (v if np.isfinite(v) else 1e300), np.nan_to_num(np.asarray(grad, dtype=float))

    res = minimize(fun, np.asarray(flat0, dtype=float), jac=True, method="BFGS",
                   options={"maxiter": maxiter, "gtol": 1e-7})
    if not np.isfinite(res.fun) or res.fun >= 1e299:
        raise NumericalError("the posterior mode search found no finite log posterior: give "
                             "proper priors or check the model")
    h = unravel_h(jnp.asarray(res.x))
    c = {k: np.asarray(v) for k, v in density.constrain(h).items()}
    params = {k: float(v) for k, v in population_parameters(density, c).items()}
    fixef = pd.Series({ours: params[var] for ours, var in density.model.fixed_variables()})
    return PosteriorMode(fixef=fixef, parameters=pd.Series(params), log_posterior=-float(
        res.fun), converged=bool(res.success), iterations=int(res.nit))

