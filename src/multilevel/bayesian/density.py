"""The log posterior of a Bayesian multilevel model, on the sampler's unconstrained scale.

Parameters (one dict entry each, all unconstrained reals):

- ``Intercept{i}``, ``b{i}``: the intercept of the centred design (when the part is centred)
  and the other coefficients of linear part ``i``;
- ``sd{j}`` (log scale), ``L{j}`` (a correlation Cholesky factor through numpy's
  ``CorrCholeskyTransform``, for blocks with more than one effect) and ``z{j}`` (standard
  normal, shape (k, levels)) of random-effects block ``j``: the **non-centred**
  parameterisation, r = (diag(sd) L z)^T, which is what makes NUTS mix on hierarchical models
  with few levels or weak data (brms/Stan's choice too);
- ``extra`` (log scale): sigma of the Gaussian, the shape of Gamma / inverse Gaussian /
  negative binomial.

The potential is minus (log likelihood + log prior + log Jacobian of the transforms); the
z's prior is N(0, 1). Constants of the priors are kept (truncated priors are normalised), so
``log_posterior`` is the log density up to the model's evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions.transforms import CorrCholeskyTransform

from multilevel.bayesian.jax_expression import jax_function
from multilevel.bayesian.model_spec import BayesModel
from multilevel.bayesian.priors import ResolvedPrior, Slot, numpyro_distribution

Params = dict[str, jax.Array]

_CORR = CorrCholeskyTransform()


@dataclass(frozen=True)
class _PriorTerm:
    """One prior density applied to some elements of a constrained parameter. Its numbers
    are not kept here but in the data (``prior_args[start:start + n]``): they are arguments
    of the compiled sampler, not constants in it."""

    key: str
    index: int | None  # element of a vector parameter; None: the whole (scalar or matrix) value
    prior: ResolvedPrior
    start: int
    dim: int | None  # the correlation matrix's dimension for lkj

    def distribution(self, data: dict[str, Any]) -> Any:
        """The numpyro distribution with the numbers in ``data`` (None for flat)."""
        d = self.prior.distribution
        if d.name == "flat":
            return None
        values = data["prior_args"]
        args = [values[self.start + i] for i in range(len(d.args))]
        return numpyro_distribution(d, lower=self.prior.lower, dim=self.dim, args=args)


@dataclass(frozen=True)
class Density:
    """The model's log posterior and the maps between the sampler's scale and the model's.

    Attributes
    ----------
    model : BayesModel
    priors : list of ResolvedPrior
    shapes : dict
        Shape of each unconstrained parameter.
    """

    model: BayesModel
    priors: list[ResolvedPrior]
    shapes: dict[str, tuple[int, ...]]
    terms: tuple[_PriorTerm, ...]
    data: dict[str, Any]
    expression: Callable[..., jax.Array] | None

    def structure_key(self) -> tuple[Any, ...]:
        """Everything the log density depends on apart from :attr:`data`'s values: equal keys
        mean the compiled sampler of one serves the other."""
        m = self.model
        fam = m.family
        parts = tuple((p.nlpar, p.centred, p.b_columns.shape, len(p.blocks)) for p in m.parts)
        blocks = tuple((b.k, len(b.levels)) for b in m.blocks)
        # the priors' families and bounds, not their numbers (those are data)
        priors = tuple((r.slot, r.distribution.name, r.lower) for r in self.priors)
        nl = None
        if m.nonlinear is not None:
            import ast
            nl = (ast.dump(m.nonlinear.tree), m.nonlinear.parameters,
                  tuple(sorted(m.nonlinear.columns)),
                  tuple(sorted((k, id(v)) for k, v in m.nonlinear.functions.items())))
        return (fam.name, fam.link, fam.extra, fam.fixed_shape, m.y.shape,
                m.offset is not None, parts, blocks, priors, nl)

    # -- the maps -----------------------------------------------------------------------------
    def constrain(self, u: Params) -> Params:
        """The model's parameters from the unconstrained ones: sd / extra > 0, L a correlation
        Cholesky factor; the others unchanged."""
        out: Params = {}
        for key, value in u.items():
            if key.startswith("sd") or key == "extra":
                out[key] = jnp.exp(value)
            elif key.startswith("L"):
                out[key] = _CORR(value)
            else:
                out[key] = value
        return out

    def random_effects(self, c: Params) -> list[jax.Array]:
        """r of each block, shape (levels, k): (diag(sd) L z)^T."""
        out = []
        for j, block in enumerate(self.model.blocks):
            z = c[f"z{j}"]
            if block.k > 1:
                z = c[f"L{j}"] @ z
            out.append((c[f"sd{j}"][:, None] * z).T)
        return out

    def linear_predictors(self, c: Params, r: list[jax.Array]) -> list[jax.Array]:
        """Each linear part's values per row."""
        out = []
        j = 0
        for i, part in enumerate(self.model.parts):
            eta = self.data[f"Xb{i}"] @ c[f"b{i}"]
            if part.centred:
                eta = eta + c[f"Intercept{i}"]
            for _ in part.blocks:
                eta = eta + jnp.sum(self.data[f"Z{j}"] * r[j][self.data[f"codes{j}"]], axis=1)
                j += 1
            out.append(eta)
        return out

    def eta(self, c: Params) -> jax.Array:
        """The linear predictor of the response (after the model expression, if any)."""
        parts = self.linear_predictors(c, self.random_effects(c))
        if self.expression is None:
            eta = parts[0]
        else:
            phi = {p.nlpar: v for p, v in zip(self.model.parts, parts, strict=True)}
            eta = self.expression(self.data["columns"], phi)
        if self.model.offset is not None:
            eta = eta + self.data["offset"]
        return eta

    def pointwise_loglik(self, c: Params) -> jax.Array:
        """Log density of each observation."""
        fam = self.model.family
        return fam.log_density(self.data["y"], self.eta(c), self.data["wt"], c.get("extra"))

    def log_prior(self, c: Params) -> jax.Array:
        """Sum of the priors' log densities at the constrained values (z's N(0, 1) included)."""
        total = jnp.asarray(0.0)
        for t in self.terms:
            dist = t.distribution(self.data)
            if dist is None:
                continue
            value = c[t.key] if t.index is None else c[t.key][t.index]
            total = total + jnp.sum(dist.log_prob(value))
        for j in range(len(self.model.blocks)):
            z = c[f"z{j}"]
            total = total - 0.5 * jnp.sum(z * z) - 0.5 * z.size * np.log(2 * np.pi)
        return total

    def log_jacobian(self, u: Params) -> jax.Array:
        """log |d constrained / d unconstrained|."""
        total = jnp.asarray(0.0)
        for key, value in u.items():
            if key.startswith("sd") or key == "extra":
                total = total + jnp.sum(value)
            elif key.startswith("L"):
                total = total + _CORR.log_abs_det_jacobian(value, _CORR(value))
        return total

    def potential(self, u: Params) -> jax.Array:
        """Minus the log posterior density on the unconstrained scale (what NUTS uses)."""
        c = self.constrain(u)
        return -(jnp.sum(self.pointwise_loglik(c)) + self.log_prior(c) + self.log_jacobian(u))

    def prior_potential(self, u: Params) -> jax.Array:
        """Minus the log prior density on the unconstrained scale (sampling the prior)."""
        return -(self.log_prior(self.constrain(u)) + self.log_jacobian(u))

    def potential_for(self, data: dict[str, Any], prior_only: bool = False,
                      ) -> Callable[[Params], jax.Array]:
        """The potential with ``data`` (possibly traced arrays) in place of :attr:`data`."""
        bound = replace(self, data=data)
        return bound.prior_potential if prior_only else bound.potential


def _slot_target(model: BayesModel, slot: Slot) -> tuple[str, int | None]:
    """The constrained parameter (and element) a slot's prior applies to."""
    if slot.class_ in ("sigma", "shape"):
        return "extra", None
    if slot.class_ == "Intercept":
        i = next(i for i, p in enumerate(model.parts) if p.nlpar == slot.nlpar)
        return f"Intercept{i}", None
    if slot.class_ == "b":
        i = next(i for i, p in enumerate(model.parts) if p.nlpar == slot.nlpar)
        return f"b{i}", model.parts[i].b_names.index(slot.coef)
    j = next(j for j, b in enumerate(model.blocks)
             if b.group == slot.group and b.nlpar == slot.nlpar
             and (slot.class_ == "cor" or slot.coef in b.terms))
    if slot.class_ == "cor":
        return f"L{j}", None
    return f"sd{j}", model.blocks[j].terms.index(slot.coef)


def build_density(model: BayesModel, priors: list[ResolvedPrior]) -> Density:
    """The log posterior of ``model`` under ``priors`` (one per slot of ``model.slots()``)."""
    shapes: dict[str, tuple[int, ...]] = {}
    data: dict[str, Any] = {"y": jnp.asarray(model.y), "wt": jnp.asarray(model.wt)}
    if model.offset is not None:
        data["offset"] = jnp.asarray(model.offset)
    for i, part in enumerate(model.parts):
        if part.centred:
            shapes[f"Intercept{i}"] = ()
        data[f"Xb{i}"] = jnp.asarray(part.b_columns)
        shapes[f"b{i}"] = (len(part.b_names),)
    for j, block in enumerate(model.blocks):
        shapes[f"sd{j}"] = (block.k,)
        if block.k > 1:
            shapes[f"L{j}"] = (block.k * (block.k - 1) // 2,)
        shapes[f"z{j}"] = (block.k, len(block.levels))
        data[f"Z{j}"] = jnp.asarray(block.Z)
        data[f"codes{j}"] = jnp.asarray(block.codes)
    if model.family.extra is not None:
        shapes["extra"] = ()
    terms = []
    numbers: list[float] = []
    for rp in priors:
        key, index = _slot_target(model, rp.slot)
        dim = None
        if rp.slot.class_ == "cor":
            dim = model.blocks[int(key[1:])].k
        numpyro_distribution(rp.distribution, lower=rp.lower, dim=dim)  # checks it early
        terms.append(_PriorTerm(key, index, rp, len(numbers), dim))
        numbers.extend(float(a) for a in rp.distribution.args)
    data["prior_args"] = jnp.asarray(numbers, dtype=float)
    expression = None
    if model.nonlinear is not None:
        nl = model.nonlinear
        expression = jax_function(nl.tree, nl.parameters, nl.functions, model.formula)
        data["columns"] = {k: jnp.asarray(v) for k, v in nl.columns.items()}
    return Density(model, priors, shapes, tuple(terms), data, expression)
